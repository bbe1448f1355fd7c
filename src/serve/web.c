/* The HTTP front: the route table, the responses every handler uses, the
 * results cache and the level index (docs/http.md). The handlers live in
 * webpages.c, webapi.c, webmisc.c and webhook.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/log.h"
#include "ccci/logs/redact.h"
#include "ccci/runs/run.h"
#include "ccci/runs/runs.h"
#include "web_int.h"

/* The largest results.json the front reads. */
#define RESULTS_MAX (1024 * 1024)
/* Finished runs whose results stay in memory. */
#define CACHE_RUNS 64
/* The largest request body any route takes (POST /hook). */
#define HOOK_BODY_MAX (1024 * 1024)
/* Wildcard segments a route has at most. */
#define MAX_ARGS 6
/* Segments a path has at most. */
#define MAX_SEGS 16

/* ---- the route table ---- */

enum { M_GET = 1, M_POST = 2 };

struct route {
  unsigned methods;
  /* Segments after '/', split by '/': a literal, "*" (one segment, passed
   * on), "*.svg" (one segment ending in ".svg", passed on without it) or,
   * last, "**" (the rest, slashes and all). "" is the root. */
  const char *pattern;
  ccci_web_handler *fn;
};

static const struct route routes[] = {
    {M_GET, "", ccci_web_page_index},
    {M_GET, "runs/*", ccci_web_page_run},
    {M_GET, "runs/*/log/*", ccci_web_page_log},
    {M_GET, "runs/*/events", ccci_web_page_events},
    {M_GET, "runs/*/artifacts/**", ccci_web_artifact},
    {M_GET, "recipes/*", ccci_web_page_recipe},
    {M_GET, "static/*", ccci_web_asset},
    {M_GET, "api/runs", ccci_web_api_runs},
    {M_GET, "api/runs/*", ccci_web_api_run},
    {M_GET, "api/repos/*/*/builds/*/logs/*/*", ccci_web_api_logs},
    {M_GET, "api/stream/*/*/*/*/*", ccci_web_api_stream},
    {M_GET, "badge/*.svg", ccci_web_badge},
    {M_GET, "metrics", ccci_web_metrics},
    {M_GET, "healthz", ccci_web_healthz},
    {M_POST, "hook", ccci_web_hook},
};

/* Does @p path (after its leading '/') match @p pat? Fills @p args (which
 * point into @p buf, a copy of the path cut at the separators). */
static bool match(const char *pat, const char *path, char *buf,
                  const char *args[MAX_ARGS + 1])
{
  size_t na = 0;
  char *p;

  memcpy(buf, path, strlen(path) + 1);
  p = buf;
  if (pat[0] == '\0')
    return p[0] == '\0';
  for (;;) {
    const char *pe = strchr(pat, '/');
    size_t pl = pe != NULL ? (size_t)(pe - pat) : strlen(pat);
    char *se = strchr(p, '/');
    size_t sl = se != NULL ? (size_t)(se - p) : strlen(p);

    if (pl == 2 && memcmp(pat, "**", 2) == 0) {
      if (p[0] == '\0' || na == MAX_ARGS)
        return false;
      args[na++] = p;
      break;
    }
    if (sl == 0)
      return false;
    if (pl == 1 && pat[0] == '*') {
      if (na == MAX_ARGS)
        return false;
      args[na++] = p;
    } else if (pl > 1 && pat[0] == '*') {
      size_t suf = pl - 1;
      if (sl <= suf || memcmp(p + sl - suf, pat + 1, suf) != 0 ||
          na == MAX_ARGS)
        return false;
      p[sl - suf] = '\0';
      args[na++] = p;
    } else if (pl != sl || memcmp(pat, p, pl) != 0)
      return false;
    if (pe == NULL && se == NULL)
      break;
    if (pe == NULL || se == NULL)
      return false;
    *se = '\0';
    pat = pe + 1;
    p = se + 1;
  }
  args[na] = NULL;
  return true;
}

/* The route of @p path for @p method: NULL, with the methods the path
 * allows in @p allowed (0: no such path). */
static const struct route *route_of(const char *path, unsigned method,
                                    char *buf, const char *args[MAX_ARGS + 1],
                                    unsigned *allowed)
{
  size_t i;
  *allowed = 0;
  if (path[0] != '/')
    return NULL;
  for (i = 0; i < CCCI_ARRAY_LEN(routes); i++) {
    if (!match(routes[i].pattern, path + 1, buf, args))
      continue;
    *allowed |= routes[i].methods;
    if (routes[i].methods & method)
      return &routes[i];
  }
  return NULL;
}

static unsigned method_bit(const struct ccci_http_req *r)
{
  switch (ccci_http_method(r)) {
  case CCCI_HTTP_GET:
  case CCCI_HTTP_HEAD:
    return M_GET;
  case CCCI_HTTP_POST:
    return M_POST;
  case CCCI_HTTP_OTHER:
    break;
  }
  return 0;
}

static size_t body_limit(void *arg, const struct ccci_http_req *r)
{
  (void)arg;
  return ccci_http_method(r) == CCCI_HTTP_POST &&
                 strcmp(ccci_http_path(r), "/hook") == 0
             ? HOOK_BODY_MAX
             : 0;
}

static void handle(void *arg, struct ccci_http_req *r)
{
  struct ccci_web *w = arg;
  const char *path = ccci_http_path(r);
  size_t len = strlen(path);
  const char *args[MAX_ARGS + 1];
  const struct route *rt;
  unsigned allowed;
  char *buf;

  if (len > 4096) {
    ccci_web_error(w, r, 414, "the path is too long");
    return;
  }
  buf = ccci_xmalloc(len + 1);
  rt = route_of(path, method_bit(r), buf, args, &allowed);
  if (rt != NULL)
    rt->fn(w, r, args);
  else if (allowed != 0) {
    char extra[64];
    snprintf(extra, sizeof(extra), "Allow: %s\r\n",
             allowed == M_POST ? "POST" : "GET, HEAD");
    ccci_http_respond(r, 405, "text/plain; charset=utf-8", extra,
                      "method not allowed\n", 19);
  } else
    ccci_web_error(w, r, 404, "nothing at this address");
  free(buf);
}

/* ---- responses ---- */

struct ccci_runs *ccci_web_runs(struct ccci_web *w)
{
  return w->env.ops->runs;
}

struct ccci_config *ccci_web_config(struct ccci_web *w)
{
  return w->env.config(w->env.arg);
}

bool ccci_web_redact(struct ccci_web *w, struct ccci_buf *b)
{
  struct ccci_runs *rs = ccci_web_runs(w);
  struct ccci_redact_set *set = rs != NULL ? ccci_runs_secrets(rs) : NULL;
  struct ccci_redact *rd;
  struct ccci_buf out;
  const char *p;
  size_t n;
  int rc;

  if (set == NULL) {
    /* The secrets are not known (not read yet, unreadable, or the runs
     * closed): nothing of run data may go out unmasked. */
    if (b->data != NULL)
      explicit_bzero(b->data, b->len);
    b->len = 0;
    return false;
  }
  if (ccci_redact_set_values(set) == 0) {
    ccci_redact_set_unref(set);
    return true;
  }
  rd = ccci_redact_new(set, NULL);
  ccci_redact_set_unref(set);
  ccci_buf_init(&out, SIZE_MAX);
  rc = ccci_redact_feed(rd, b->data != NULL ? b->data : "", b->len, &p, &n);
  if (rc == 0)
    rc = ccci_buf_append(&out, p, n);
  if (rc == 0)
    rc = ccci_redact_finish(rd, &p, &n);
  if (rc == 0)
    rc = ccci_buf_append(&out, p, n);
  ccci_redact_free(rd);
  if (rc != 0) {
    /* Not one byte of what could not be masked goes out. */
    ccci_buf_close(&out);
    out.len = 0;
  }
  if (b->data != NULL)
    explicit_bzero(b->data, b->len);
  ccci_buf_close(b);
  out.max = SIZE_MAX;
  *b = out;
  return rc == 0;
}

void ccci_web_unmasked(struct ccci_web *w, struct ccci_http_req *r)
{
  (void)w;
  ccci_http_respond(r, 503, "text/plain; charset=utf-8", "Retry-After: 5\r\n",
                    "the secrets to mask are not known yet: try again\n", 49);
}

void ccci_web_send(struct ccci_web *w, struct ccci_http_req *r, int status,
                   const char *ctype, const char *extra, struct ccci_buf *b,
                   bool redact)
{
  if (redact && !ccci_web_redact(w, b)) {
    ccci_buf_close(b);
    ccci_web_unmasked(w, r);
    return;
  }
  ccci_http_respond(r, status, ctype, extra, b->data != NULL ? b->data : "",
                    b->len);
  ccci_buf_close(b);
}

void ccci_web_json(struct ccci_web *w, struct ccci_http_req *r, int status,
                   json_t *j)
{
  struct ccci_buf b;
  char *text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(j);
  ccci_buf_init(&b, SIZE_MAX);
  if (text == NULL || ccci_buf_append(&b, text, strlen(text)) < 0 ||
      ccci_buf_append(&b, "\n", 1) < 0) {
    free(text);
    ccci_buf_close(&b);
    static const char internal[] =
        "{\"error\":{\"code\":500,\"message\":\"internal\"}}\n";
    ccci_http_respond(r, 500, CCCI_WEB_JSON, NULL, internal,
                      sizeof(internal) - 1);
    return;
  }
  free(text);
  ccci_web_send(w, r, status, CCCI_WEB_JSON, "Cache-Control: no-store\r\n", &b,
                true);
}

void ccci_web_error(struct ccci_web *w, struct ccci_http_req *r, int status,
                    const char *fmt, ...)
{
  struct ccci_buf b;
  va_list ap;
  char *msg;
  int n;

  va_start(ap, fmt);
  n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  ccci_buf_init(&b, SIZE_MAX);
  if (ccci_buf_append(&b, msg, (size_t)n) < 0)
    abort();
  free(msg);
  if (!ccci_web_redact(w, &b) &&
      ccci_buf_append(&b, "(not shown: the secrets are not known yet)", 42) < 0)
    abort();
  if (strncmp(ccci_http_path(r), "/api/", 5) == 0) {
    json_t *j = json_pack("{s:{s:i,s:s%}}", "error", "code", status, "message",
                          b.data != NULL ? b.data : "", b.len);
    ccci_buf_close(&b);
    ccci_web_json(w, r, status, j != NULL ? j : json_object());
    return;
  }
  if (ccci_buf_append(&b, "", 1) < 0)
    abort();
  ccci_web_page_error(w, r, status, b.data);
  ccci_buf_close(&b);
}

/* ---- the results cache and the level index ---- */

struct level_entry {
  char id[CCCI_RUN_ID_MAX + 1];
  int level;
};

struct cached {
  char id[CCCI_RUN_ID_MAX + 1];
  json_t *json;
  struct ccci_results res;
  bool has_res;
  int level;
  uint64_t used; /* for least-recently-used eviction */
};

struct ccci_web_cache {
  /* The level of each finished run (open addressing, power of two). */
  struct level_entry *levels;
  size_t nlevels, cap_levels;
  bool scanned; /* the start scan is done */
  struct cached runs[CACHE_RUNS];
  uint64_t clock;
  struct ccci_runs_finish_observer observer;
};

static uint64_t hash_id(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s != '\0'; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static struct level_entry *level_slot(struct ccci_web_cache *c, const char *id)
{
  size_t mask = c->cap_levels - 1;
  size_t i = (size_t)hash_id(id) & mask;
  while (c->levels[i].id[0] != '\0' && strcmp(c->levels[i].id, id) != 0)
    i = (i + 1) & mask;
  return &c->levels[i];
}

static void level_set(struct ccci_web_cache *c, const char *id, int level)
{
  struct level_entry *e;
  if (strlen(id) > CCCI_RUN_ID_MAX)
    return;
  if (2 * (c->nlevels + 1) > c->cap_levels) {
    struct level_entry *old = c->levels;
    size_t n = c->cap_levels, i;
    c->cap_levels = n != 0 ? 2 * n : 256;
    c->levels = ccci_xcalloc(c->cap_levels, sizeof(*c->levels));
    for (i = 0; i < n; i++)
      if (old[i].id[0] != '\0')
        *level_slot(c, old[i].id) = old[i];
    free(old);
  }
  e = level_slot(c, id);
  if (e->id[0] == '\0') {
    c->nlevels++;
    snprintf(e->id, sizeof(e->id), "%s", id);
  }
  e->level = level;
}

int ccci_web_level(struct ccci_web *w, const char *id)
{
  struct ccci_web_cache *c = w->cache;
  struct level_entry *e;
  if (c->cap_levels != 0) {
    e = level_slot(c, id);
    if (e->id[0] != '\0')
      return e->level;
  }
  return c->scanned ? -1 : -2;
}

/* A results.json read on the pool: the text (redacted on the loop). */
struct results_read {
  uv_work_t work;
  struct ccci_web *w;
  char id[CCCI_RUN_ID_MAX + 1];
  char *path;
  bool finished; /* cache what is read */
  struct ccci_buf text;
  int err;
  void (*cb)(void *arg, const struct ccci_web_results *res);
  void *arg;
};

static void results_work(uv_work_t *work)
{
  struct results_read *rr = ccci_container_of(work, struct results_read, work);
  char *text = NULL;
  size_t len = 0;
  rr->err = ccci_read_file_beneath(rr->path, "results.json", RESULTS_MAX, &text,
                                   &len);
  ccci_buf_init(&rr->text, SIZE_MAX);
  if (rr->err == 0 && ccci_buf_append(&rr->text, text, len) < 0)
    rr->err = -ENOMEM;
  free(text);
}

static struct cached *cache_find(struct ccci_web_cache *c, const char *id)
{
  size_t i;
  for (i = 0; i < CACHE_RUNS; i++)
    if (c->runs[i].id[0] != '\0' && strcmp(c->runs[i].id, id) == 0) {
      c->runs[i].used = ++c->clock;
      return &c->runs[i];
    }
  return NULL;
}

static void cached_clear(struct cached *e)
{
  json_decref(e->json);
  if (e->has_res)
    ccci_results_clear(&e->res);
  memset(e, 0, sizeof(*e));
}

static struct cached *cache_victim(struct ccci_web_cache *c)
{
  struct cached *v = &c->runs[0];
  size_t i;
  for (i = 0; i < CACHE_RUNS; i++) {
    if (c->runs[i].id[0] == '\0')
      return &c->runs[i];
    if (c->runs[i].used < v->used)
      v = &c->runs[i];
  }
  cached_clear(v);
  return v;
}

static void results_done(uv_work_t *work, int status)
{
  struct results_read *rr = ccci_container_of(work, struct results_read, work);
  struct ccci_web *w = rr->w;
  struct ccci_web_results out = {NULL, NULL, -1};
  struct cached tmp, *e = &tmp;

  memset(&tmp, 0, sizeof(tmp));
  tmp.level = -1;
  /* Results that cannot be masked are none, and not kept. */
  if (status == 0 && rr->err == 0 && !ccci_web_redact(w, &rr->text))
    rr->finished = false;
  else if (status == 0 && rr->err == 0) {
    tmp.json = json_loadb(rr->text.data != NULL ? rr->text.data : "",
                          rr->text.len, JSON_REJECT_DUPLICATES, NULL);
    if (tmp.json != NULL &&
        ccci_results_parse(rr->text.data, rr->text.len, &tmp.res) == 0) {
      tmp.has_res = true;
      tmp.level = tmp.res.complete ? tmp.res.level : -1;
    }
  }
  if (rr->finished && !w->stopping) {
    level_set(w->cache, rr->id, tmp.level);
    e = cache_find(w->cache, rr->id);
    if (e != NULL)
      cached_clear(e);
    e = cache_victim(w->cache);
    *e = tmp;
    snprintf(e->id, sizeof(e->id), "%s", rr->id);
    e->used = ++w->cache->clock;
  }
  out.json = e->json;
  out.res = e->has_res ? &e->res : NULL;
  out.level = e->level;
  rr->cb(rr->arg, &out);
  if (e == &tmp)
    cached_clear(&tmp);
  if (rr->text.data != NULL)
    explicit_bzero(rr->text.data, rr->text.len);
  ccci_buf_close(&rr->text);
  free(rr->path);
  free(rr);
  ccci_web_unpend(w);
}

void ccci_web_results(struct ccci_web *w, const char *id,
                      void (*cb)(void *arg, const struct ccci_web_results *res),
                      void *arg)
{
  static const struct ccci_web_results none = {NULL, NULL, -1};
  struct ccci_runs *rs = ccci_web_runs(w);
  struct ccci_runs_view v;
  struct results_read *rr;
  struct cached *e;

  if (rs == NULL || strlen(id) > CCCI_RUN_ID_MAX ||
      ccci_runs_view(rs, id, &v) < 0) {
    cb(arg, &none);
    return;
  }
  if (v.state == CCCI_RUN_FINISHED && (e = cache_find(w->cache, id)) != NULL) {
    struct ccci_web_results out = {e->json, e->has_res ? &e->res : NULL,
                                   e->level};
    cb(arg, &out);
    return;
  }
  rr = ccci_xcalloc(1, sizeof(*rr));
  rr->w = w;
  snprintf(rr->id, sizeof(rr->id), "%s", id);
  rr->path = ccci_xstrdup(v.dir);
  rr->finished = v.state == CCCI_RUN_FINISHED;
  rr->cb = cb;
  rr->arg = arg;
  ccci_web_pend(w);
  if (uv_queue_work(w->env.loop, &rr->work, results_work, results_done) < 0) {
    free(rr->path);
    free(rr);
    ccci_web_unpend(w);
    cb(arg, &none);
  }
}

/* The start scan: the level of every finished run, read on the pool. */
struct scan {
  uv_work_t work;
  struct ccci_web *w;
  size_t n;
  char (*ids)[CCCI_RUN_ID_MAX + 1];
  char **dirs;
  int *levels;
};

static void scan_collect(void *arg, const struct ccci_run_meta *m,
                         const char *dir)
{
  struct scan *s = arg;
  if (m->state != CCCI_RUN_FINISHED)
    return;
  s->ids = ccci_xrealloc(s->ids, (s->n + 1) * sizeof(*s->ids));
  s->dirs = ccci_xrealloc(s->dirs, (s->n + 1) * sizeof(*s->dirs));
  snprintf(s->ids[s->n], sizeof(s->ids[s->n]), "%s", m->id);
  s->dirs[s->n++] = ccci_xstrdup(dir);
}

static int level_of_file(const char *dir)
{
  struct ccci_results res;
  char *text = NULL;
  size_t len = 0;
  int level = -1;
  if (ccci_read_file_beneath(dir, "results.json", RESULTS_MAX, &text, &len) ==
          0 &&
      ccci_results_parse(text, len, &res) == 0) {
    if (res.complete)
      level = res.level;
    ccci_results_clear(&res);
  }
  free(text);
  return level;
}

static void scan_work(uv_work_t *work)
{
  struct scan *s = ccci_container_of(work, struct scan, work);
  size_t i;
  s->levels = ccci_xcalloc(s->n + 1, sizeof(*s->levels));
  for (i = 0; i < s->n; i++)
    s->levels[i] = level_of_file(s->dirs[i]);
}

static void scan_done(uv_work_t *work, int status)
{
  struct scan *s = ccci_container_of(work, struct scan, work);
  struct ccci_web *w = s->w;
  size_t i;
  for (i = 0; i < s->n; i++) {
    /* A run the finish observer saw meanwhile keeps what it said. */
    if (status == 0 && !w->stopping &&
        (w->cache->cap_levels == 0 ||
         level_slot(w->cache, s->ids[i])->id[0] == '\0'))
      level_set(w->cache, s->ids[i], s->levels[i]);
    free(s->dirs[i]);
  }
  w->cache->scanned = true;
  free(s->levels);
  free(s->dirs);
  free(s->ids);
  free(s);
  ccci_web_unpend(w);
}

static void scan_start(struct ccci_web *w)
{
  struct scan *s = ccci_xcalloc(1, sizeof(*s));
  s->w = w;
  ccci_runs_foreach(ccci_web_runs(w), scan_collect, s);
  ccci_web_pend(w);
  if (uv_queue_work(w->env.loop, &s->work, scan_work, scan_done) < 0)
    scan_done(&s->work, UV_ECANCELED);
}

static void level_read(void *arg, const struct ccci_web_results *res)
{
  (void)arg;
  (void)res;
}

static void on_finished(void *arg, const struct ccci_run_meta *m,
                        const char *dir, const struct ccci_results *res)
{
  struct ccci_web *w = arg;
  (void)dir;
  if (res != NULL)
    level_set(w->cache, m->id, res->complete ? res->level : -1);
  else /* read on the pool; results_done sets the level of a finished run */
    ccci_web_results(w, m->id, level_read, NULL);
}

/* ---- life ---- */

static char *default_public_url(const char *address)
{
  return ccci_xasprintf("http://%s", address);
}

static char *public_url_of(const struct ccci_config *cfg, const char *address)
{
  const char *u = cfg->http.public_url;
  size_t l;
  if (u == NULL)
    return default_public_url(address);
  l = strlen(u);
  while (l > 0 && u[l - 1] == '/')
    l--;
  return ccci_xasprintf("%.*s", (int)l, u);
}

int ccci_web_new(const struct ccci_web_env *env, const struct ccci_config *cfg,
                 struct ccci_web **out, char **err)
{
  struct ccci_web *w = ccci_xcalloc(1, sizeof(*w));
  struct ccci_httpd_env he;
  int r;

  w->env = *env;
  ccci_list_init(&w->sse);
  ccci_list_init(&w->hooks);
  w->cache = ccci_xcalloc(1, sizeof(*w->cache));
  he.loop = env->loop;
  he.limits = ccci_httpd_limits_default();
  he.body_limit = body_limit;
  he.handle = handle;
  he.arg = w;
  r = ccci_httpd_new(&he, cfg->http.listen, &w->httpd, err);
  if (r < 0) {
    free(w->cache);
    free(w);
    return r;
  }
  w->public_url = public_url_of(cfg, ccci_httpd_address(w->httpd));
  ccci_info("http", "serving on http://%s", ccci_httpd_address(w->httpd));
  if (cfg->http.public_url == NULL)
    ccci_warn("http",
              "http.public_url is not set: links posted to the forge use %s, "
              "which is not reachable from outside this host",
              w->public_url);
  ccci_web_hook_reload(w, cfg);
  w->cache->observer.fn = on_finished;
  w->cache->observer.arg = w;
  ccci_runs_finish_observe(ccci_web_runs(w), &w->cache->observer);
  scan_start(w);
  *out = w;
  return 0;
}

const char *ccci_web_address(const struct ccci_web *w)
{
  return ccci_httpd_address(w->httpd);
}

const char *ccci_web_public_url(const struct ccci_web *w)
{
  return w->public_url;
}

void ccci_web_reload(struct ccci_web *w, const struct ccci_config *cfg)
{
  free(w->public_url);
  w->public_url = public_url_of(cfg, ccci_httpd_address(w->httpd));
  ccci_web_hook_reload(w, cfg);
}

void ccci_web_stopping(struct ccci_web *w)
{
  ccci_web_hook_stop(w);
}

void ccci_web_counters(const struct ccci_web *w, struct ccci_web_counters *out)
{
  *out = w->c;
  ccci_httpd_counters(w->httpd, &out->http);
}

void ccci_web_pend(struct ccci_web *w)
{
  w->pending++;
}

static void httpd_closed(void *arg)
{
  struct ccci_web *w = arg;
  size_t i;
  void (*done)(void *) = w->done;
  void *done_arg = w->done_arg;

  for (i = 0; i < CACHE_RUNS; i++)
    cached_clear(&w->cache->runs[i]);
  free(w->cache->levels);
  free(w->cache);
  if (w->hook_secret != NULL)
    explicit_bzero(w->hook_secret, w->hook_secret_len);
  free(w->hook_secret);
  free(w->public_url);
  free(w);
  if (done != NULL)
    done(done_arg);
}

void ccci_web_unpend(struct ccci_web *w)
{
  w->pending--;
  if (w->stopping && w->pending == 0)
    ccci_httpd_free(w->httpd, httpd_closed, w);
}

void ccci_web_free(struct ccci_web *w, void (*done)(void *arg), void *arg)
{
  w->stopping = true;
  w->done = done;
  w->done_arg = arg;
  if (w->env.ops->runs != NULL)
    ccci_runs_finish_unobserve(w->env.ops->runs, &w->cache->observer);
  ccci_web_sse_stop(w);
  ccci_web_hook_stop(w);
  /* The server closes once no work on the pool can still answer. */
  ccci_web_pend(w);
  ccci_web_unpend(w);
}
