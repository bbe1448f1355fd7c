/* The HTTP client glue: one libcurl multi handle driven by the libuv loop
 * (curl's sockets on uv_poll, its timer on a uv_timer), with request and
 * response plumbing. No policy: retries, backoff and JSON live above it. */
#ifndef CCCI_HTTPC_H
#define CCCI_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/util.h"

/** Header lines longer than this are not parsed (treated as absent). */
#define CCCI_HTTPC_MAX_HEADER_LINE 8192

/** A client: one curl multi handle, its connection cache and its handles. */
struct ccci_httpc;
/** One request in flight, from ccci_httpc_send() until its callback. */
struct ccci_httpc_xfer;

/** How a client behaves; copied by ccci_httpc_new(). */
struct ccci_httpc_opts {
  /** At most this many connections open at once (>= 1); more requests wait
   * in curl's queue for a free one. Idle connections are kept for reuse. */
  unsigned max_connections;
  /** Connection (TCP + TLS) timeout in ms; 0 means curl's default (300 s). */
  uint64_t connect_timeout_ms;
  /** Whole-request timeout in ms, counted from ccci_httpc_send(): time spent
   * waiting in the queue for a free connection counts; 0 means none. */
  uint64_t total_timeout_ms;
  /** Largest response body accepted (>= 1 byte); a larger one fails the
   * request with -EFBIG and is never buffered beyond this. */
  size_t max_response_bytes;
  /** User-Agent sent with every request; NULL means `ccci/<version>`. */
  const char *user_agent;
};

/** A request; everything is copied by ccci_httpc_send(). */
struct ccci_httpc_request {
  /** "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", ...: an upper-case
   * token of at most 16 characters. */
  const char *method;
  /** An absolute http:// or https:// URL. Do not put secrets in it: it may
   * appear in error texts; send tokens in a header. */
  const char *url;
  /** "Name: value" lines, NULL-terminated, or NULL. No CR or LF allowed.
   * "Name:" removes a header curl would add; "Name;" sends it empty. Values
   * (e.g. `Authorization: token ...`) never reach a log or an error text
   * and are wiped from memory when the transfer ends. */
  const char *const *headers;
  /** The body (may be NULL when @p body_len is 0). POST, PUT and PATCH
   * always send one with its Content-Length, 0 included; other methods only
   * when @p body_len > 0; HEAD never. Without a Content-Type line in
   * @p headers none is sent (not curl's form type). `Expect: 100-continue`
   * is never sent unless given. */
  const void *body;
  size_t body_len;
  /** Send it on a new connection. libcurl resends a request by itself when
   * a kept-alive connection turns out closed before any answer; for a write
   * that is not idempotent (creating a comment) that could do it twice, so
   * such writes ask for a connection of their own. */
  bool fresh_connection;
};

/**
 * What came back. Every pointer is valid only during the callback; copy
 * what you keep.
 */
struct ccci_httpc_response {
  /** HTTP status of the final response (a 303 is not followed), 0 when no
   * response arrived. */
  long status;
  /**
   * 0, or a negative errno for a transport failure (then @p status may
   * still be set, e.g. when the body was too large):
   * -ECONNREFUSED (nothing listens; another connect errno such as
   * -ENETUNREACH when that is what failed),
   * -ETIMEDOUT (connect or total timeout),
   * -ECONNRESET (connection reset or closed before a complete response),
   * -EFBIG (body larger than max_response_bytes),
   * -EHOSTUNREACH (name not resolved or host unreachable),
   * -EPROTO (TLS or HTTP protocol error), -ENOMEM, -EIO (anything else).
   */
  int error;
  /** curl's message for @p error ("" when 0). Never contains a request
   * header value; may contain the host and port. */
  const char *error_text;
  /** The body, NUL-terminated (the NUL is not in @p body_len); never NULL.
   * After an error, whatever arrived before it (at most the cap). */
  const char *body;
  size_t body_len;
  /** The `Date` header in epoch seconds, or -1 when absent or invalid. */
  int64_t date;
  /** `Retry-After` in seconds from now, or -1 when absent or invalid. An
   * HTTP-date is counted from the response's own `Date` when present (the
   * server's clock), else from the local clock, and never below 0. */
  int64_t retry_after_s;
  /** The `Link` header value, or NULL when absent. */
  const char *link;
  /** The `X-Total-Count` header, or -1 when absent or invalid. */
  long long total_count;
  /** Milliseconds from ccci_httpc_send() to completion, queueing included. */
  uint64_t elapsed_ms;
};

/**
 * Called once per request on the loop, never from inside ccci_httpc_send().
 * @p resp and everything it points to are valid only during the call. The
 * callback may send, cancel other transfers, or close the client.
 */
typedef void (*ccci_httpc_cb)(void *arg,
                              const struct ccci_httpc_response *resp);

/** Counters of a client since ccci_httpc_new(). */
struct ccci_httpc_stats {
  uint64_t requests;  /**< accepted by ccci_httpc_send() */
  uint64_t completed; /**< callbacks delivered */
  uint64_t errors;    /**< of which with error != 0 */
  uint64_t too_large; /**< of which with -EFBIG */
  uint64_t cancelled; /**< cancelled, or dropped by ccci_httpc_close() */
  uint64_t connects;  /**< connections opened (CURLINFO_NUM_CONNECTS summed) */
  uint64_t in_flight; /**< sent, neither completed nor cancelled */
  uint64_t sockets;   /**< curl sockets with a poll handle now (open
                           connections, idle ones included) */
  uint64_t watch_changes; /**< times a socket's poll was started, changed
                               or stopped (each is epoll_ctl calls) */
};

/**
 * Initialise libcurl for the process. Call it once at start, before any
 * thread exists (curl_global_init is not thread-safe everywhere); later
 * calls do nothing. Returns 0, -ENOMEM, or -ENOTSUP when libcurl is older
 * than 7.85 or lacks http/https.
 */
int ccci_httpc_global_init(void) CCCI_WUR;

/**
 * An HTTP date (a `Date` or `Retry-After` value, @p n bytes, not
 * terminated) as seconds since the epoch, or -1 when it is not one. The
 * usual form ("Sun, 06 Nov 1994 08:49:37 GMT") is parsed directly, any
 * other by curl_getdate(); both give the same answer for it.
 */
int64_t ccci_httpc_parse_date(const char *v, size_t n);

/** Release libcurl's global state; after every client is closed. */
void ccci_httpc_global_cleanup(void);

/**
 * Create a client on @p loop with the options @p o (copied). Returns 0 and
 * the client in @p out, or -EINVAL (bad options, or ccci_httpc_global_init()
 * was not called) or -ENOMEM. Close it with ccci_httpc_close().
 */
int ccci_httpc_new(uv_loop_t *loop, const struct ccci_httpc_opts *o,
                   struct ccci_httpc **out) CCCI_WUR;

/**
 * Start the request @p r (copied, headers and body included). On success
 * @p cb(@p arg, resp) is called exactly once on the loop, later, unless the
 * transfer is cancelled or the client closed first. When @p xfer_out is not
 * NULL it receives the transfer for ccci_httpc_cancel(); it is valid until
 * the callback returns.
 * Returns 0; -EINVAL for a bad method, URL (not http/https) or header line;
 * -ESHUTDOWN once ccci_httpc_close() was called; -ENOMEM. On failure @p cb is
 * never called.
 */
int ccci_httpc_send(struct ccci_httpc *h, const struct ccci_httpc_request *r,
                    ccci_httpc_cb cb, void *arg,
                    struct ccci_httpc_xfer **xfer_out) CCCI_WUR;

/**
 * Abort the transfer @p x (a connection it holds is closed, not reused)
 * and free it; its callback is never called. Called from inside @p x's own
 * callback it does nothing. @p x must not be used afterwards, nor after its
 * callback returned.
 */
void ccci_httpc_cancel(struct ccci_httpc_xfer *x);

/**
 * Cancel every transfer (no callback runs), close every connection and
 * handle, and free @p h once the last uv_close callback ran; then call
 * @p done(@p arg) (may be NULL) on the loop. The loop must run for that.
 * May be called from a response callback; until control returns to the
 * loop ccci_httpc_send() on @p h fails with -ESHUTDOWN, after that @p h is
 * gone. A second call does nothing.
 */
void ccci_httpc_close(struct ccci_httpc *h, void (*done)(void *arg), void *arg);

/** Copy the counters of @p h into @p s. */
void ccci_httpc_stats(const struct ccci_httpc *h, struct ccci_httpc_stats *s);

#endif
