/* Inside the HTTP front: the router's state and the seams between its
 * modules (web.c: routing, responses, the results cache and the level
 * index; webpages.c: the HTML pages and assets; webapi.c: the JSON API, the
 * Drone log API and every SSE stream, artifacts; webmisc.c: badge, metrics,
 * health; webhook.c: POST /hook). docs/http.md is the contract. */
#ifndef CCCI_WEB_INT_H
#define CCCI_WEB_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "ccci/core/list.h"
#include "ccci/http/httpd.h"
#include "ccci/runs/results.h"
#include "ccci/serve/ops.h"
#include "ccci/serve/web.h"

/** The Content-Security-Policy of every page: no inline script or style,
 * nothing from elsewhere. */
#define CCCI_WEB_CSP                                                           \
  "default-src 'none'; script-src 'self'; style-src 'self'; "                  \
  "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "                \
  "form-action 'self'; frame-ancestors 'none'"

/** Header lines of every HTML page (CSP, no caching). */
#define CCCI_WEB_PAGE_HEADERS                                                  \
  "Content-Security-Policy: " CCCI_WEB_CSP "\r\n"                              \
  "Cache-Control: no-store\r\n"                                                \
  "Referrer-Policy: same-origin\r\n"

#define CCCI_WEB_HTML "text/html; charset=utf-8"
#define CCCI_WEB_JSON "application/json"

struct ccci_web {
  struct ccci_web_env env;
  struct ccci_httpd *httpd;
  char *public_url; /**< see ccci_web_public_url */
  /** Counters the modules keep (http is read from httpd). */
  struct ccci_web_counters c;
  bool stopping;
  /** webapi.c: SSE streams open (ended with an error event on stop). */
  struct ccci_list sse;
  /** webapi.c: its caches (private; made at first use, freed on stop). */
  struct ccci_web_api *api;
  /** webhook.c: hook requests waiting for the acceptance path. */
  struct ccci_list hooks;
  /** webhook.c: the secret of forge.webhook_secret_file, or NULL. */
  char *hook_secret;
  size_t hook_secret_len;
  /** web.c: the results cache and the level index (private). */
  struct ccci_web_cache *cache;
  /** Work on the pool in flight (the front is freed when it is 0). */
  unsigned pending;
  void (*done)(void *arg);
  void *done_arg;
};

/* ---- web.c: what every handler uses ---- */

/**
 * Work the front started on the thread pool (a file read): call
 * ccci_web_pend() before queueing it and ccci_web_unpend() once its
 * completion ran on the loop (after answering its request), so that
 * ccci_web_free waits for it.
 */
void ccci_web_pend(struct ccci_web *w);
void ccci_web_unpend(struct ccci_web *w);

/** The runs, or NULL once they closed (answer 503). */
struct ccci_runs *ccci_web_runs(struct ccci_web *w);
/** The current configuration (a new reference; ccci_config_unref it). */
struct ccci_config *ccci_web_config(struct ccci_web *w);

/**
 * Mask every secret value the runs mask now in @p b, in place (the buffer
 * may grow or shrink; its cap is raised as needed). Run data (results,
 * errors, pages) goes through this before it is sent; the step files are
 * the redactor's output already and are sent as they are. Returns false,
 * with @p b emptied, while the secrets are not known (before the first
 * read of the secret files succeeded, or once the runs closed): then answer
 * with ccci_web_unmasked.
 */
bool ccci_web_redact(struct ccci_web *w, struct ccci_buf *b) CCCI_WUR;
/** 503 with Retry-After: the secrets are not known, nothing is shown. */
void ccci_web_unmasked(struct ccci_web *w, struct ccci_http_req *r);

/** Respond @p status with @p b's bytes (taken, redacted first when
 * @p redact), @p ctype and @p extra as ccci_http_respond. */
void ccci_web_send(struct ccci_web *w, struct ccci_http_req *r, int status,
                   const char *ctype, const char *extra, struct ccci_buf *b,
                   bool redact);

/** Respond @p status with @p j (stolen) as compact JSON, redacted. */
void ccci_web_json(struct ccci_web *w, struct ccci_http_req *r, int status,
                   json_t *j);

/**
 * An error: under /api/ as `{"error":{"code":<status>,"message":...}}`,
 * elsewhere as a small HTML page (ccci_web_page_error). The message is
 * printf-formatted and redacted.
 */
void ccci_web_error(struct ccci_web *w, struct ccci_http_req *r, int status,
                    const char *fmt, ...) CCCI_PRINTF(4, 5);

/** What the front knows of one run's results.json. */
struct ccci_web_results {
  json_t *json;                   /**< the file, redacted; NULL: none */
  const struct ccci_results *res; /**< parsed; NULL: none or not valid */
  int level;                      /**< 0..4, or -1 */
};

/**
 * Call @p cb with run @p id's results: from the cache for a finished run,
 * else read on the thread pool. @p cb may be called before this returns;
 * it is always called once (with an empty ccci_web_results for a run that
 * has none or is unknown), even while the front stops.
 */
void ccci_web_results(struct ccci_web *w, const char *id,
                      void (*cb)(void *arg, const struct ccci_web_results *res),
                      void *arg);

/**
 * The level of finished run @p id: 0..4; -1 when it has none (no valid
 * results.json, or not finished); -2 while the index is still read at
 * start. Kept by a finish observer and one scan at start.
 */
int ccci_web_level(struct ccci_web *w, const char *id);

/* ---- the handlers: each answers @p r exactly once. @p arg holds the
 * path's wildcard segments in order (the last may hold slashes for a
 * "**" pattern); see the route table in web.c. ---- */

typedef void ccci_web_handler(struct ccci_web *w, struct ccci_http_req *r,
                              const char *const *arg);

/* webpages.c */
ccci_web_handler ccci_web_page_index; /**< GET / */
ccci_web_handler ccci_web_page_run;   /**< GET /runs/<id> */
ccci_web_handler
    ccci_web_page_log; /**< GET /runs/<id>/log/<n> (a page of lines) */
ccci_web_handler ccci_web_page_recipe; /**< GET /recipes/<recipe> */
ccci_web_handler ccci_web_asset;       /**< GET /static/<name> */
/** An HTML error page with @p status and @p msg (escaped). */
void ccci_web_page_error(struct ccci_web *w, struct ccci_http_req *r,
                         int status, const char *msg);

/* webapi.c */
ccci_web_handler ccci_web_api_runs; /**< GET /api/runs */
ccci_web_handler ccci_web_api_run;  /**< GET /api/runs/<id> */
ccci_web_handler
    ccci_web_api_logs; /**< GET
                          /api/repos/{o}/{n}/builds/{b}/logs/{stage}/{step} */
ccci_web_handler
    ccci_web_api_stream; /**< GET /api/stream/{o}/{n}/{b}/{stage}/{step} */
ccci_web_handler
    ccci_web_page_events; /**< GET /runs/<id>/events (the page's SSE) */
ccci_web_handler ccci_web_artifact; /**< GET /runs/<id>/artifacts/<name> */
/** The front stops: every SSE stream ends with an error event. */
void ccci_web_sse_stop(struct ccci_web *w);

/* webmisc.c */
ccci_web_handler ccci_web_badge;   /**< GET /badge/<recipe>.svg */
ccci_web_handler ccci_web_metrics; /**< GET /metrics */
ccci_web_handler ccci_web_healthz; /**< GET /healthz */

/* webhook.c */
ccci_web_handler ccci_web_hook; /**< POST /hook */
/** Read forge.webhook_secret_file again (start and SIGHUP); a problem is
 * logged and /hook answers 503 until a read succeeds. */
void ccci_web_hook_reload(struct ccci_web *w, const struct ccci_config *cfg);
/** The front stops: waiting hook requests are answered 503. */
void ccci_web_hook_stop(struct ccci_web *w);

#endif
