/* The control socket: a Unix stream listener on the loop, one JSON request
 * per line, each answered by one handler. */
#ifndef CCCI_CTL_H
#define CCCI_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ccci/core/util.h"

/** At most this many clients at once; more are told `busy` and closed. */
#define CCCI_CTL_MAX_CLIENTS 1024
/** Bytes of replies queued for one client before its reads pause. */
#define CCCI_CTL_CLIENT_HIGH_WATER (1024 * 1024)

struct ccci_ctl;

/** What an op handler knows about the client that asked. */
struct ccci_ctl_peer {
  uid_t uid; /**< from SO_PEERCRED */
  gid_t gid;
  pid_t pid;
};

/** A request being answered; see CCCI_CTL_LATER. */
struct ccci_ctl_call;

/** Returned by a handler that will answer later with ccci_ctl_reply(). */
extern json_t ccci_ctl_later;
#define CCCI_CTL_LATER (&ccci_ctl_later)

/**
 * The handler: returns the reply (new reference; `{"ok":...}`) to the
 * request @p req from @p peer, an envelope ccci_proto_parse_request
 * accepted, or CCCI_CTL_LATER and then calls ccci_ctl_reply(@p call, ...)
 * exactly once (later requests of the same client wait, so replies stay in
 * order). @p arg is the one given to ccci_ctl_start.
 */
typedef json_t *(*ccci_ctl_handler)(struct ccci_ctl_call *call,
                                    const struct ccci_ctl_peer *peer,
                                    json_t *req, void *arg);

/**
 * Answer a call a handler deferred. Takes the reference to @p reply. If the
 * client went away meanwhile, the reply is dropped.
 */
void ccci_ctl_reply(struct ccci_ctl_call *call, json_t *reply);

/**
 * Streams: a handler that returned CCCI_CTL_LATER may, instead of one
 * ccci_ctl_reply(), send any number of protocol lines and then end the
 * stream, which closes the connection once the lines are written (requests
 * the client pipelined after it are not answered).
 */

/** Bytes queued for a stream's client past which producers should wait. */
#define CCCI_CTL_STREAM_HIGH_WATER (128 * 1024)

/**
 * Send @p len bytes of whole protocol lines at @p data (taken: freed by
 * ctl). Returns 0, or -EPIPE when the client is gone (@p data is freed).
 */
int ccci_ctl_stream_send(struct ccci_ctl_call *call, char *data, size_t len);
/** Send one JSON object as a line (takes the reference); see above. */
int ccci_ctl_stream_json(struct ccci_ctl_call *call, json_t *msg);
/** Bytes sent on the stream and not yet written to the client. */
size_t ccci_ctl_stream_queued(const struct ccci_ctl_call *call);
/**
 * Watch a stream: @p cb(@p arg, false) when its queued bytes fell below
 * CCCI_CTL_STREAM_HIGH_WATER / 2 after a write (so a producer that stopped
 * at the high-water mark can go on), and @p cb(@p arg, true) once, when the
 * client is gone; then the producer must call ccci_ctl_stream_end().
 */
void ccci_ctl_stream_watch(struct ccci_ctl_call *call,
                           void (*cb)(void *arg, bool gone), void *arg);
/** End the stream and free @p call; the client is closed after its writes. */
void ccci_ctl_stream_end(struct ccci_ctl_call *call);

/** Counters of the control socket. */
struct ccci_ctl_counters {
  uint64_t clients;   /**< connected now */
  uint64_t accepted;  /**< connections accepted since start */
  uint64_t requests;  /**< request lines answered */
  uint64_t errors;    /**< of which answered with an error */
  uint64_t too_large; /**< connections closed for an oversized request */
};

/**
 * Check @p path and prepare its directory: the path must fit in sun_path;
 * a missing directory is made 0750; an existing socket file that nobody
 * answers on is stale and removed; one that answers, or a path that is not a
 * socket, is an error. Call it while holding the single-instance lock.
 * Returns 0 or a negative errno with an allocated message in @p err.
 */
int ccci_ctl_prepare_path(const char *path, char **err) CCCI_WUR;

/**
 * Listen on @p path (see ccci_ctl_prepare_path) with mode 0660 and answer
 * every request with @p fn on @p loop. Returns 0 and the server in @p out,
 * or a negative errno with a message in @p err.
 */
int ccci_ctl_start(uv_loop_t *loop, const char *path, ccci_ctl_handler fn,
                   void *arg, struct ccci_ctl **out, char **err) CCCI_WUR;

/** Read the counters. */
void ccci_ctl_counters(const struct ccci_ctl *ctl,
                       struct ccci_ctl_counters *out);

/**
 * Close the listener and every client, remove the socket file, free the
 * server once its handles are closed (the loop must run for that).
 */
void ccci_ctl_stop(struct ccci_ctl *ctl);

#endif
