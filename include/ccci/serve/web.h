/* The daemon's HTTP front (docs/http.md): run pages, the Drone-shaped log
 * API and its SSE streams, badges, metrics, health and the forge webhook,
 * on the daemon's loop through ccci_httpd. */
#ifndef CCCI_WEB_H
#define CCCI_WEB_H

#include <stdint.h>
#include <uv.h>

#include "ccci/core/config.h"
#include "ccci/http/httpd.h"

struct ccci_web;
struct ccci_ops_env;

/** What the daemon lends the front; it keeps the ops env current. */
struct ccci_web_env {
  uv_loop_t *loop;
  const struct ccci_ops_env *ops; /**< runs, tail, forge, the daemon's facts */
  /** The current configuration (a new reference). */
  struct ccci_config *(*config)(void *arg);
  void *arg;
};

/** The front's counters (`status`, `/metrics`). */
struct ccci_web_counters {
  struct ccci_httpd_counters http;
  uint64_t sse_clients;   /**< SSE streams open now */
  uint64_t sse_started;   /**< SSE streams started since start */
  uint64_t sse_lines;     /**< log lines sent to SSE clients */
  uint64_t sse_dropped;   /**< SSE clients closed for not keeping up */
  uint64_t hooks;         /**< POST /hook requests with a good signature */
  uint64_t hooks_refused; /**< POST /hook requests refused (401) */
  uint64_t hook_triggers; /**< runs accepted through /hook */
};

/**
 * Listen on the configuration's `http.listen` and serve. Returns 0, or a
 * negative errno with a message in @p err (a bad or busy address).
 */
int ccci_web_new(const struct ccci_web_env *env, const struct ccci_config *cfg,
                 struct ccci_web **out, char **err) CCCI_WUR;

/** The address bound ("host:port", the real port when 0 was asked). */
const char *ccci_web_address(const struct ccci_web *w);

/** The base of links: `http.public_url` without a trailing '/', else
 * `http://<address>` (valid until the next reload). */
const char *ccci_web_public_url(const struct ccci_web *w);

/**
 * The daemon stops and its forge bot is gone: hook deliveries waiting for
 * a verdict are answered 503 at once (the front goes on serving the rest
 * until ccci_web_free).
 */
void ccci_web_stopping(struct ccci_web *w);

/** SIGHUP: a new configuration (`http.public_url`, the webhook secret). */
void ccci_web_reload(struct ccci_web *w, const struct ccci_config *cfg);

void ccci_web_counters(const struct ccci_web *w, struct ccci_web_counters *out);

/**
 * Stop: streams end, the server closes; @p done once every handle is
 * closed and nothing is in flight on the pool, and @p w is freed after it.
 */
void ccci_web_free(struct ccci_web *w, void (*done)(void *arg), void *arg);

#endif
