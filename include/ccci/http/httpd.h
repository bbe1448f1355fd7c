/* The HTTP/1.1 server on the loop: http-parser (Debian libhttp-parser-dev
 * 2.9.4) behind a small adapter, with our own connections, limits,
 * timeouts and backpressure (docs/http.md). No TLS: a proxy is in front. */
#ifndef CCCI_HTTPD_H
#define CCCI_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/util.h"

struct ccci_httpd;
/** One request, from its complete head (and body) to its response's end. */
struct ccci_http_req;

enum ccci_http_method {
  CCCI_HTTP_GET,
  CCCI_HTTP_HEAD,
  CCCI_HTTP_POST,
  CCCI_HTTP_OTHER, /**< any other method the parser knows */
};

/** The server's limits (ccci_httpd_limits_default() gives the defaults). */
struct ccci_httpd_limits {
  size_t max_head;           /**< request line + headers; 431 past it */
  size_t max_body;           /**< no route takes more (body_limit caps each) */
  unsigned max_conns;        /**< open connections; one more gets 503 */
  uint64_t head_timeout_ms;  /**< first byte of a request to its whole head */
  uint64_t body_timeout_ms;  /**< whole head to whole body */
  uint64_t idle_timeout_ms;  /**< keep-alive: between requests */
  uint64_t write_timeout_ms; /**< queued bytes and no write progress */
  size_t high_water;         /**< a stream is full past this many queued */
};

/** 16 KiB head, 1 MiB body, 1024 connections, 10 s head and body, 60 s
 * idle, 30 s write stall, 64 KiB high water. */
struct ccci_httpd_limits ccci_httpd_limits_default(void);

/** What the owner lends the server. */
struct ccci_httpd_env {
  uv_loop_t *loop;
  struct ccci_httpd_limits limits;
  /**
   * The request's head is complete: the most body bytes it may carry
   * (0: none; a larger Content-Length, or a chunked body that grows past
   * it, gets 413 and the connection closes). Only the head accessors may
   * be used here.
   */
  size_t (*body_limit)(void *arg, const struct ccci_http_req *req);
  /**
   * A whole request: answer it exactly once, now or later, with
   * ccci_http_respond(), ccci_http_respond_ref() or ccci_http_stream_begin()
   * (then ccci_http_stream_end()). Requests pipelined behind it wait, so
   * responses go out in request order.
   */
  void (*handle)(void *arg, struct ccci_http_req *req);
  void *arg;
};

/**
 * Listen on @p listen ("host:port", IPv4 or [IPv6]; port 0: any). Returns
 * 0, or a negative errno with a message in @p err naming the address.
 */
int ccci_httpd_new(const struct ccci_httpd_env *env, const char *listen,
                   struct ccci_httpd **out, char **err) CCCI_WUR;

/** The address bound, as "host:port" with the real port. */
const char *ccci_httpd_address(const struct ccci_httpd *h);

/** Status codes counted one by one; any other is counted as its class. */
/* clang-format off */
#define CCCI_HTTPD_CODES                                                      \
  X(200) X(201) X(202) X(204) X(206) X(301) X(302) X(304) X(400) X(401)       \
  X(403) X(404) X(405) X(408) X(411) X(413) X(414) X(416) X(431) X(500)       \
  X(501) X(503) X(505)
/* clang-format on */
enum {
#define X(c) CCCI_HTTPD_C##c,
  CCCI_HTTPD_CODES
#undef X
      CCCI_HTTPD_NCODES
};

struct ccci_httpd_counters {
  uint64_t connections;                /**< open now */
  uint64_t connections_total;          /**< accepted since start */
  uint64_t refused_busy;               /**< answered 503 past max_conns */
  uint64_t requests;                   /**< responses started */
  uint64_t streams;                    /**< stream responses open now */
  uint64_t timeouts;                   /**< connections closed by a deadline */
  uint64_t bytes_out;                  /**< bytes written to clients */
  uint64_t by_code[CCCI_HTTPD_NCODES]; /**< responses by status code */
  uint64_t other_by_class[6];          /**< the rest by class: [5] = 5xx */
};

/** The status code at index @p i of CCCI_HTTPD_CODES. */
int ccci_httpd_code_at(unsigned i);

void ccci_httpd_counters(const struct ccci_httpd *h,
                         struct ccci_httpd_counters *out);

/**
 * Stop: the listener closes, every connection closes (requests still in a
 * handler's hands become gone; see ccci_http_watch), @p done is called once
 * every handle is closed and the server is freed after it returns.
 */
void ccci_httpd_free(struct ccci_httpd *h, void (*done)(void *arg), void *arg);

/* ---- the request (valid until its response ends) ---- */

enum ccci_http_method ccci_http_method(const struct ccci_http_req *r);
/** "GET", "HEAD", ... */
const char *ccci_http_method_name(const struct ccci_http_req *r);
/**
 * The target's path, percent-decoded (a target whose path decodes to a NUL
 * byte, or that is not origin-form, gets 400 before any handler).
 */
const char *ccci_http_path(const struct ccci_http_req *r);
/** The raw query after '?', or "" when none. */
const char *ccci_http_query(const struct ccci_http_req *r);
/**
 * The first query parameter @p name, percent-decoded ('+' is a space),
 * valid as long as the request; NULL when absent.
 */
const char *ccci_http_query_param(struct ccci_http_req *r, const char *name);
/** The first header @p name (any case), trimmed; NULL when absent. */
const char *ccci_http_header(const struct ccci_http_req *r, const char *name);
/** The body (NUL-terminated after @p len bytes); "" and 0 when none. */
const char *ccci_http_body(const struct ccci_http_req *r, size_t *len);
/** The peer's address as "host:port" (for the log). */
const char *ccci_http_peer(const struct ccci_http_req *r);

/**
 * Be told, on the loop, when the request's client goes (closed, reset,
 * timed out, server stopping: @p gone) and when a full stream falls below
 * the high-water mark (@p drained). After @p gone the request still waits
 * for its response call (respond or stream_end), which then only frees it.
 */
void ccci_http_watch(struct ccci_http_req *r, void (*gone)(void *arg),
                     void (*drained)(void *arg), void *arg);
/** Has the client gone? */
bool ccci_http_gone(const struct ccci_http_req *r);

/* ---- responses ---- */

/**
 * The whole response: status line, `Content-Type: @p ctype` (NULL: none),
 * @p extra (whole header lines, each ending in "\r\n", or NULL), then the
 * server's own: Content-Length, Date, Connection, and
 * `X-Content-Type-Options: nosniff`. A HEAD request gets the same headers
 * and no body. @p body is copied.
 */
void ccci_http_respond(struct ccci_http_req *r, int status, const char *ctype,
                       const char *extra, const void *body, size_t len);

/**
 * As ccci_http_respond, but @p body is not copied: it must stay valid
 * until @p release(@p arg) is called (once, on the loop, when the bytes are
 * written or the client is gone; @p release may be NULL for static bytes).
 */
void ccci_http_respond_ref(struct ccci_http_req *r, int status,
                           const char *ctype, const char *extra,
                           const void *body, size_t len,
                           void (*release)(void *arg), void *arg);

/**
 * Start a response of unknown length (SSE): the head without
 * Content-Length and with `Connection: close`; the connection closes after
 * ccci_http_stream_end (requests pipelined behind it are not answered).
 * A HEAD request gets the head and then ends by itself: stream_write then
 * only returns -EPIPE, and stream_end is still called.
 */
void ccci_http_stream_begin(struct ccci_http_req *r, int status,
                            const char *ctype, const char *extra);
/**
 * Queue @p len bytes (copied). 0, or -EPIPE when the client has gone. The
 * caller stops writing while ccci_http_stream_full() and goes on when the
 * drained callback comes; a stream that makes no write progress for
 * write_timeout_ms is closed (gone).
 */
int ccci_http_stream_write(struct ccci_http_req *r, const void *p, size_t len);
/** Bytes queued and not yet written past the high-water mark? */
bool ccci_http_stream_full(const struct ccci_http_req *r);
/** End the stream: what is queued is written, then the connection closes.
 * The request is freed; it must not be used again. */
void ccci_http_stream_end(struct ccci_http_req *r);

/** The reason phrase of @p status ("Not Found"), "" for an unknown one. */
const char *ccci_http_reason(int status);

#endif
