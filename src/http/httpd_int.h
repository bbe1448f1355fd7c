/* The HTTP engine's seam for its fuzzer (fuzz/fuzz_httpd.c): a server with
 * no listener whose connections are driven without a socket, so the byte
 * processing (parser adapter, limits, responses, the state machine) runs
 * on arbitrary input. Not for other modules. */
#ifndef CCCI_HTTPD_INT_H
#define CCCI_HTTPD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/http/httpd.h"

/** A connection of a fake server. */
struct ccci_hconn;

/** Where a fake connection's bytes go. */
struct ccci_httpd_sink {
  /** The socket takes the first bytes of @p p (returns how many, <= @p n);
   * the rest is queued until ccci_hconn_flush. */
  size_t (*take)(void *arg, const void *p, size_t n);
  void *arg;
};

/**
 * A server with no socket: @p env->loop is not used (may be NULL); time is
 * a counter moved by ccci_hconn_advance. Free it with ccci_httpd_free (its
 * done callback is called before ccci_httpd_free returns).
 */
struct ccci_httpd *ccci_httpd_new_fake(const struct ccci_httpd_env *env,
                                       const struct ccci_httpd_sink *sink);
/** A new connection, as if accepted (refused with 503 past the connection
 * cap). Valid until ccci_httpd_free, even once closed: the calls below are
 * then no-ops. */
struct ccci_hconn *ccci_hconn_open(struct ccci_httpd *h);
/** Bytes arrive (dropped when the connection does not read now). */
void ccci_hconn_feed(struct ccci_hconn *c, const void *p, size_t n);
/** The peer closes its side (@p reset: with an error). */
void ccci_hconn_eof(struct ccci_hconn *c, bool reset);
/** The socket writes everything queued. */
void ccci_hconn_flush(struct ccci_hconn *c);
/** Time passes: @p ms milliseconds (deadlines fire). */
void ccci_hconn_advance(struct ccci_httpd *h, uint64_t ms);
/** Has the connection closed its socket? */
bool ccci_hconn_closed(const struct ccci_hconn *c);

#endif
