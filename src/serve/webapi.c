/* The JSON API, the Drone-shaped log API, every SSE stream and the runs'
 * artifacts (docs/http.md, "JSON API, Drone log API and SSE"). Step files
 * and artifacts are read on the thread pool; SSE clients are tail sinks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ccci/core/log.h"
#include "ccci/http/html.h"
#include "ccci/logs/logline.h"
#include "ccci/logs/logstore.h"
#include "ccci/runs/run.h"
#include "ccci/runs/runs.h"
#include "ccci/serve/tail.h"
#include "web_int.h"

/* /api/runs paging. */
#define PER_PAGE_DEFAULT 50
#define PER_PAGE_MAX 200
/* Rendered /api/runs/<id> answers of finished runs kept. */
#define RUN_CACHE_ENTRIES 256
#define RUN_CACHE_BYTES (8u << 20)
/* Log arrays of finished steps kept. */
#define LOG_CACHE_ENTRIES 1024
#define LOG_CACHE_BYTES (64u << 20)
/* The largest step served as one JSON array (413 past it: the SSE stream
 * serves any size). */
#define ARRAY_MAX (64u << 20)
/* Bytes of arrays read and not cached, being built or sent, at most (503
 * with Retry-After past it). */
#define ARRAY_INFLIGHT_MAX (256u << 20)
/* The largest artifact served. */
#define ARTIFACT_MAX (16u << 20)
/* SSE: the timer's period, the ping's, and how long a full stream may wait
 * for a drain before it is given up (the engine's write-stall timeout is
 * 30 s: the client gets the error event first). */
#define SSE_TICK_MS 5000
#define SSE_PING_MS 30000
#define SSE_GIVE_UP_MS 20000
/* The buffer SSE lines are framed in is freed past this. */
#define SSE_SCRATCH_KEEP (1u << 20)

#define SSE_TYPE "text/event-stream; charset=utf-8"
#define SSE_HEADERS "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
#define NO_STORE "Cache-Control: no-store\r\n"

/* ---- small caches of rendered bytes, least recently used first out ---- */

struct cache;

struct centry {
  struct ccci_list node; /* in its cache, most recently used first */
  struct cache *c;       /* NULL once out of the cache */
  char key[CCCI_RUN_ID_MAX + 16];
  char *data;
  size_t len;
  unsigned refs; /* the cache's, plus one per response sending it */
};

struct cache {
  struct ccci_list entries;
  size_t n, bytes, max_n, max_bytes;
};

/* What webapi.c keeps across requests (struct ccci_web's api). */
struct ccci_web_api {
  struct cache runs, logs;
  /* The secrets the runs cache was masked with (a reference): other
   * secrets now empty it. */
  struct ccci_redact_set *set;
  size_t inflight; /* bytes of uncached arrays being built or sent */
  /* The last batch of lines framed for an SSE client: the clients that
   * keep up with a run get the same batches (the store's bursts), framed
   * once for all of them. A step's lines never change, so the run, step,
   * first position and length name the bytes. */
  struct {
    bool valid, page;
    unsigned url_step, n;
    uint64_t pos;
    size_t len, lines;
    char id[CCCI_RUN_ID_MAX + 1];
  } memo;
  struct ccci_buf scratch; /* the memo's framed bytes */
};

static void cache_init(struct cache *c, size_t max_n, size_t max_bytes)
{
  ccci_list_init(&c->entries);
  c->n = c->bytes = 0;
  c->max_n = max_n;
  c->max_bytes = max_bytes;
}

static void entry_unref(struct centry *e)
{
  if (--e->refs > 0)
    return;
  free(e->data);
  free(e);
}

static void entry_unlink(struct centry *e)
{
  ccci_list_remove(&e->node);
  e->c->n--;
  e->c->bytes -= e->len;
  e->c = NULL;
  entry_unref(e);
}

static void cache_clear(struct cache *c)
{
  while (!ccci_list_empty(&c->entries))
    entry_unlink(
        ccci_container_of(ccci_list_first(&c->entries), struct centry, node));
}

static struct centry *cache_get(struct cache *c, const char *key)
{
  struct ccci_list *it, *nx;
  ccci_list_foreach_safe(it, nx, &c->entries)
  {
    struct centry *e = ccci_container_of(it, struct centry, node);
    if (strcmp(e->key, key) == 0) {
      ccci_list_remove(&e->node);
      ccci_list_add_head(&c->entries, &e->node);
      return e;
    }
  }
  return NULL;
}

/* Keep @p data (taken) under @p key, evicting the least recently used; an
 * entry larger than the whole cache is not kept (NULL: the caller still
 * owns @p data). */
static struct centry *cache_put(struct cache *c, const char *key, char *data,
                                size_t len)
{
  struct centry *e = cache_get(c, key);
  if (e != NULL)
    entry_unlink(e);
  if (len > c->max_bytes)
    return NULL;
  while (c->n + 1 > c->max_n || c->bytes + len > c->max_bytes)
    entry_unlink(
        ccci_container_of(c->entries.prev, struct centry, node)); /* oldest */
  e = ccci_xcalloc(1, sizeof(*e));
  snprintf(e->key, sizeof(e->key), "%s", key);
  e->data = data;
  e->len = len;
  e->refs = 1;
  e->c = c;
  ccci_list_add_head(&c->entries, &e->node);
  c->n++;
  c->bytes += len;
  return e;
}

static void entry_release(void *arg)
{
  entry_unref(arg);
}

static void respond_entry(struct ccci_http_req *r, struct centry *e,
                          const char *ctype, const char *extra)
{
  e->refs++;
  ccci_http_respond_ref(r, 200, ctype, extra, e->data, e->len, entry_release,
                        e);
}

static struct ccci_web_api *api_of(struct ccci_web *w)
{
  if (w->api == NULL) {
    w->api = ccci_xcalloc(1, sizeof(*w->api));
    cache_init(&w->api->runs, RUN_CACHE_ENTRIES, RUN_CACHE_BYTES);
    cache_init(&w->api->logs, LOG_CACHE_ENTRIES, LOG_CACHE_BYTES);
    ccci_buf_init(&w->api->scratch, SIZE_MAX);
  }
  return w->api;
}

static void api_free(struct ccci_web *w)
{
  struct ccci_web_api *a = w->api;
  if (a == NULL)
    return;
  cache_clear(&a->runs);
  cache_clear(&a->logs);
  if (a->set != NULL)
    ccci_redact_set_unref(a->set);
  ccci_buf_close(&a->scratch);
  free(a);
  w->api = NULL;
}

/* The runs cache holds bytes masked with the secrets of then: other
 * secrets now (a file changed, SIGHUP) empty it. The reference kept makes
 * the comparison of pointers exact. */
static void runs_cache_check(struct ccci_web *w)
{
  struct ccci_web_api *a = api_of(w);
  struct ccci_runs *rs = ccci_web_runs(w);
  struct ccci_redact_set *set = rs != NULL ? ccci_runs_secrets(rs) : NULL;
  if (set == a->set) {
    if (set != NULL)
      ccci_redact_set_unref(set);
    return;
  }
  cache_clear(&a->runs);
  if (a->set != NULL)
    ccci_redact_set_unref(a->set);
  a->set = set;
}

/* ---- shared bits ---- */

/* The front can answer: else 503 (stopping, or the runs closed). */
static struct ccci_runs *runs_or_503(struct ccci_web *w,
                                     struct ccci_http_req *r)
{
  struct ccci_runs *rs = w->stopping ? NULL : ccci_web_runs(w);
  if (rs == NULL)
    ccci_web_error(w, r, 503, "the daemon is stopping");
  return rs;
}

static bool id_ok(const char *id)
{
  return strlen(id) <= CCCI_RUN_ID_MAX;
}

/* "L3", or null when @p level is none (< 0). */
static json_t *level_json(int level)
{
  char s[16];
  if (level < 0)
    return json_null();
  snprintf(s, sizeof(s), "L%d", level);
  return json_string(s);
}

/* Append @p len bytes at @p p as a JSON string (the bytes are UTF-8). */
static int json_str(struct ccci_buf *b, const char *p, size_t len)
{
  size_t i, from = 0;
  int rc = ccci_buf_append(b, "\"", 1);
  for (i = 0; i < len && rc == 0; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch != '"' && ch != '\\' && ch >= 0x20)
      continue;
    rc = ccci_buf_append(b, p + from, i - from);
    if (rc == 0 && (ch == '"' || ch == '\\'))
      rc = ccci_buf_printf(b, "\\%c", ch);
    else if (rc == 0)
      rc = ccci_buf_printf(b, "\\u%04x", ch);
    from = i + 1;
  }
  if (rc == 0)
    rc = ccci_buf_append(b, p + from, len - from);
  if (rc == 0)
    rc = ccci_buf_append(b, "\"", 1);
  return rc;
}

static char *dump(json_t *j, size_t *len)
{
  char *text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  size_t n;
  if (text == NULL)
    abort();
  n = strlen(text);
  text = ccci_xrealloc(text, n + 2);
  text[n] = '\n';
  text[n + 1] = '\0';
  *len = n + 1;
  return text;
}

/* Send @p j (stolen) with extra headers, redacted. */
static void send_json(struct ccci_web *w, struct ccci_http_req *r, json_t *j,
                      const char *extra)
{
  struct ccci_buf b;
  size_t len;
  char *text = dump(j, &len);
  json_decref(j);
  ccci_buf_init(&b, SIZE_MAX);
  if (ccci_buf_append(&b, text, len) < 0)
    abort();
  free(text);
  ccci_web_send(w, r, 200, CCCI_WEB_JSON, extra, &b, true);
}

/* Where a step of a run is now. */
struct step_at {
  char name[CCCI_LOGLINE_NAME_MAX + 8];
  uint64_t bytes; /* whole lines so far */
  bool final;     /* the run is over and no store is open: it is complete */
};

/* Step @p k of the run @p v shows: 0, or -ENOENT. A run without a live
 * store has its steps in a small local directory, scanned on the loop as
 * the tail engine does. */
static int step_find(const struct ccci_runs_view *v, unsigned k,
                     struct step_at *out)
{
  struct ccci_logstore_file *files;
  char *logs;
  unsigned n;

  if (v->logs != NULL) {
    struct ccci_logstore_stepinfo si;
    if (k >= ccci_logstore_nsteps(v->logs))
      return -ENOENT;
    ccci_logstore_stepinfo(v->logs, k, &si);
    snprintf(out->name, sizeof(out->name), "%s", si.name);
    out->bytes = si.bytes;
    out->final = false;
    return 0;
  }
  if (k >= CCCI_TAIL_MAX_STEPS)
    return -ENOENT;
  files = ccci_xcalloc(CCCI_TAIL_MAX_STEPS, sizeof(*files));
  logs = ccci_xasprintf("%s/logs", v->dir);
  n = ccci_logstore_scan(logs, files, CCCI_TAIL_MAX_STEPS);
  free(logs);
  if (k < n) {
    snprintf(out->name, sizeof(out->name), "%s", files[k].name);
    out->bytes = files[k].bytes;
    out->final = v->state == CCCI_RUN_FINISHED;
  }
  free(files);
  return k < n ? 0 : -ENOENT;
}

/* ---- GET /api/runs ---- */

/* Append @p s percent-encoded for a query value. */
static void pct(struct ccci_buf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  for (; *s != '\0'; s++) {
    unsigned char ch = (unsigned char)*s;
    char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || strchr("-._~/", ch) != NULL;
    if (ccci_buf_append(b, plain ? (const char *)&ch : e, plain ? 1 : 3) < 0)
      abort();
  }
}

/* The link to page @p page, with the filters of the request. */
static void link_to(struct ccci_web *w, struct ccci_buf *b,
                    const char *const filters[4][2], uint64_t page,
                    uint64_t per_page, const char *rel)
{
  size_t i;
  if (b->len > 0 && ccci_buf_append(b, ", ", 2) < 0)
    abort();
  if (ccci_buf_printf(b, "<%s/api/runs?", ccci_web_public_url(w)) < 0)
    abort();
  for (i = 0; i < 4; i++) {
    if (filters[i][1] == NULL)
      continue;
    if (ccci_buf_printf(b, "%s=", filters[i][0]) < 0)
      abort();
    pct(b, filters[i][1]);
    if (ccci_buf_append(b, "&", 1) < 0)
      abort();
  }
  if (ccci_buf_printf(b, "page=%" PRIu64 "&per_page=%" PRIu64 ">; rel=\"%s\"",
                      page, per_page, rel) < 0)
    abort();
}

/* A run's record without the server's paths: the run dir and, for a local
 * submission, the directory it was copied from. */
static void public_meta(json_t *m)
{
  json_object_del(m, "dir");
  json_object_del(json_object_get(m, "trigger"), "dir");
}

/* A query parameter that must be a whole number in [@p min, @p max]. */
static int param_u64(struct ccci_http_req *r, const char *name, uint64_t dflt,
                     uint64_t min, uint64_t max, uint64_t *out)
{
  const char *s = ccci_http_query_param(r, name);
  if (s == NULL) {
    *out = dflt;
    return 0;
  }
  if (ccci_parse_u64(s, out) < 0 || *out < min || *out > max)
    return -EINVAL;
  return 0;
}

void ccci_web_api_runs(struct ccci_web *w, struct ccci_http_req *r,
                       const char *const *arg)
{
  struct ccci_runs *rs = runs_or_503(w, r);
  const char *filters[4][2] = {
      {"state", NULL}, {"recipe", NULL}, {"repo", NULL}, {"pr", NULL}};
  uint64_t page, per_page, pr = 0, total = 0, last, skip;
  enum ccci_run_state st;
  json_t *all, *out, *m;
  struct ccci_buf links;
  char *extra;
  size_t i;

  (void)arg;
  if (rs == NULL)
    return;
  for (i = 0; i < 4; i++)
    filters[i][1] = ccci_http_query_param(r, filters[i][0]);
  if (filters[0][1] != NULL && ccci_run_state_parse(filters[0][1], &st) < 0) {
    ccci_web_error(w, r, 400, "unknown state '%s'", filters[0][1]);
    return;
  }
  if (filters[3][1] != NULL && ccci_parse_u64(filters[3][1], &pr) < 0) {
    ccci_web_error(w, r, 400, "'pr' must be a whole number");
    return;
  }
  if (param_u64(r, "page", 1, 1, UINT32_MAX, &page) < 0 ||
      param_u64(r, "per_page", PER_PAGE_DEFAULT, 1, PER_PAGE_MAX, &per_page) <
          0) {
    ccci_web_error(w, r, 400, "'page' must be >= 1, 'per_page' 1 to %d",
                   PER_PAGE_MAX);
    return;
  }
  all = ccci_runs_list(rs, filters[0][1], filters[1][1]);
  out = json_array();
  skip = (page - 1) * per_page;
  json_array_foreach(all, i, m)
  {
    const char *repo = json_string_value(json_object_get(m, "repo"));
    json_t *jpr = json_object_get(m, "pr");
    if (filters[2][1] != NULL &&
        (repo == NULL || strcmp(repo, filters[2][1]) != 0))
      continue;
    if (filters[3][1] != NULL &&
        (!json_is_integer(jpr) || (uint64_t)json_integer_value(jpr) != pr))
      continue;
    if (total++ < skip || json_array_size(out) >= per_page)
      continue;
    public_meta(m);
    json_object_set_new(
        m, "level",
        level_json(ccci_web_level(
            w, json_string_value(json_object_get(m, "id")) != NULL
                   ? json_string_value(json_object_get(m, "id"))
                   : "")));
    json_array_append(out, m);
  }
  json_decref(all);
  last = total == 0 ? 1 : (total + per_page - 1) / per_page;
  ccci_buf_init(&links, SIZE_MAX);
  if (page > 1) {
    link_to(w, &links, filters, 1, per_page, "first");
    link_to(w, &links, filters, page - 1 < last ? page - 1 : last, per_page,
            "prev");
  }
  if (page < last) {
    link_to(w, &links, filters, page + 1, per_page, "next");
    link_to(w, &links, filters, last, per_page, "last");
  }
  extra = ccci_xasprintf(NO_STORE "X-Total-Count: %" PRIu64 "\r\n%s%s%s", total,
                         links.len > 0 ? "Link: " : "",
                         links.len > 0 ? links.data : "",
                         links.len > 0 ? "\r\n" : "");
  ccci_buf_close(&links);
  send_json(w, r, out, extra);
  free(extra);
}

/* ---- GET /api/runs/<id> ---- */

struct run_call {
  struct ccci_web *w;
  struct ccci_http_req *r;
  json_t *meta;
  bool finished;
  char id[CCCI_RUN_ID_MAX + 1];
};

static void run_results(void *arg, const struct ccci_web_results *res)
{
  struct run_call *rc = arg;
  struct ccci_web *w = rc->w;
  json_t *j;
  struct ccci_buf b;
  struct centry *e = NULL;
  size_t len;
  char *text;

  json_object_set_new(rc->meta, "level",
                      level_json(rc->finished ? res->level : -1));
  j = json_pack("{s:o,s:O}", "run", rc->meta, "results",
                res->json != NULL ? res->json : json_null());
  text = dump(j, &len);
  json_decref(j);
  ccci_buf_init(&b, SIZE_MAX);
  if (ccci_buf_append(&b, text, len) < 0)
    abort();
  free(text);
  if (!ccci_web_redact(w, &b)) {
    ccci_buf_close(&b);
    ccci_web_unmasked(w, rc->r);
    free(rc);
    return;
  }
  if (rc->finished && !w->stopping) {
    size_t n = b.len; /* before the detach empties the buffer */
    runs_cache_check(w);
    e = cache_put(&api_of(w)->runs, rc->id, ccci_buf_detach(&b), n);
  }
  if (e != NULL) {
    respond_entry(rc->r, e, CCCI_WEB_JSON, NO_STORE);
  } else
    ccci_web_send(w, rc->r, 200, CCCI_WEB_JSON, NO_STORE, &b, false);
  ccci_buf_close(&b);
  free(rc);
}

void ccci_web_api_run(struct ccci_web *w, struct ccci_http_req *r,
                      const char *const *arg)
{
  struct ccci_runs *rs = runs_or_503(w, r);
  struct ccci_runs_view v;
  struct run_call *rc;
  struct centry *e;

  if (rs == NULL)
    return;
  if (!id_ok(arg[0]) || ccci_runs_view(rs, arg[0], &v) < 0) {
    ccci_web_error(w, r, 404, "no run '%s'", arg[0]);
    return;
  }
  /* A finished run without a log store open changes no more. */
  if (v.state == CCCI_RUN_FINISHED && v.logs == NULL) {
    runs_cache_check(w);
    e = cache_get(&api_of(w)->runs, arg[0]);
    if (e != NULL) {
      respond_entry(r, e, CCCI_WEB_JSON, NO_STORE);
      return;
    }
  }
  rc = ccci_xcalloc(1, sizeof(*rc));
  rc->w = w;
  rc->r = r;
  rc->meta = ccci_runs_show(rs, arg[0]);
  if (rc->meta == NULL)
    rc->meta = json_object();
  /* The run dir is the server's business. */
  public_meta(rc->meta);
  rc->finished = v.state == CCCI_RUN_FINISHED && v.logs == NULL;
  snprintf(rc->id, sizeof(rc->id), "%s", arg[0]);
  ccci_web_results(w, arg[0], run_results, rc);
}

/* ---- the Drone build/stage/step of a URL ---- */

/* Run number @p b of repo @p o/@p n, stage @p stage, step @p step (Drone's,
 * from 1): the run's id and our step index, or an answer already given. */
static int drone_step(struct ccci_web *w, struct ccci_http_req *r,
                      struct ccci_runs *rs, const char *const *arg,
                      char id[CCCI_RUN_ID_MAX + 1], unsigned *k)
{
  uint64_t b, stage, step;
  char *repo;
  int rc;

  if (ccci_parse_u64(arg[2], &b) < 0 || ccci_parse_u64(arg[3], &stage) < 0 ||
      ccci_parse_u64(arg[4], &step) < 0) {
    ccci_web_error(w, r, 404, "build, stage and step are numbers");
    return -ENOENT;
  }
  repo = ccci_xasprintf("%s/%s", arg[0], arg[1]);
  rc = ccci_runs_find(rs, repo, b, id);
  if (rc < 0)
    ccci_web_error(w, r, 404, "no build %s#%s", repo, arg[2]);
  else if (stage != 1) {
    ccci_web_error(w, r, 404, "no stage %s: a build has one stage, 1", arg[3]);
    rc = -ENOENT;
  } else if (step < 1 || step > CCCI_TAIL_MAX_STEPS) {
    ccci_web_error(w, r, 404, "no step %s", arg[4]);
    rc = -ENOENT;
  } else
    *k = (unsigned)(step - 1);
  free(repo);
  return rc;
}

/* ---- GET /api/repos/{o}/{n}/builds/{b}/logs/{stage}/{step} ---- */

/* A step's array read on the pool. */
struct array_read {
  uv_work_t work;
  struct ccci_web *w;
  struct ccci_http_req *r;
  char id[CCCI_RUN_ID_MAX + 1];
  char key[CCCI_RUN_ID_MAX + 16];
  unsigned k;
  bool final;
  char *path;
  uint64_t want; /* the step's bytes known when asked (and counted) */
  char *buf;     /* '[' then the lines; room for one byte more */
  size_t len;    /* bytes of lines after the '[' */
  int err;
};

/* An array answered without the cache. */
struct owned {
  struct ccci_web *w;
  char *data;
  size_t len, counted;
};

static void owned_release(void *arg)
{
  struct owned *o = arg;
  if (o->w->api != NULL)
    o->w->api->inflight -= o->counted;
  free(o->data);
  free(o);
}

static void array_work(uv_work_t *work)
{
  struct array_read *ar = ccci_container_of(work, struct array_read, work);
  size_t got = 0;
  int fd = open(ar->path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) {
    ar->err = -errno;
    return;
  }
  ar->buf = malloc(ar->want + 2);
  if (ar->buf == NULL) {
    ar->err = -ENOMEM;
    close(fd);
    return;
  }
  while (got < ar->want) {
    ssize_t n = pread(fd, ar->buf + 1 + got, ar->want - got, (off_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      ar->err = -errno;
      break;
    }
    if (n == 0)
      break; /* the writes are behind the store: what is there */
    got += (size_t)n;
  }
  close(fd);
  /* Whole lines only. */
  while (got > 0 && ar->buf[got] != '\n')
    got--;
  ar->len = got;
}

/* Lines (each ending in '\n') at @p buf + 1, @p len bytes, into the array
 * "[" + lines joined by "," + "]" in place; returns its length. */
static size_t to_array(char *buf, size_t len)
{
  char *p = buf + 1, *end = buf + 1 + len, *nl;
  buf[0] = '[';
  if (len == 0) {
    buf[1] = ']';
    return 2;
  }
  while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    *nl = ',';
    p = nl + 1;
  }
  end[-1] = ']';
  return len + 1;
}

/* A step still written: the whole lines past what the file had, from the
 * store's memory. */
static void array_more(struct array_read *ar)
{
  struct ccci_runs *rs = ccci_web_runs(ar->w);
  struct ccci_runs_view v;
  const char *p;
  size_t n;

  if (rs == NULL || ccci_runs_view(rs, ar->id, &v) < 0 || v.logs == NULL ||
      ar->k >= ccci_logstore_nsteps(v.logs))
    return;
  while ((n = ccci_logstore_peek(v.logs, ar->k, ar->len, &p)) > 0 &&
         ar->len + n <= ARRAY_MAX) {
    ar->buf = ccci_xrealloc(ar->buf, ar->len + n + 2);
    memcpy(ar->buf + 1 + ar->len, p, n);
    ar->len += n;
  }
}

static void array_done(uv_work_t *work, int status)
{
  struct array_read *ar = ccci_container_of(work, struct array_read, work);
  struct ccci_web *w = ar->w;
  struct ccci_web_api *a = w->api;
  struct centry *e = NULL;
  struct owned *o;
  size_t len;

  if (status < 0 || ar->err < 0) {
    if (ar->err == -ENOENT)
      ccci_web_error(w, ar->r, 404, "no step %u", ar->k + 1);
    else
      ccci_web_error(w, ar->r, 500, "cannot read step %u: %s", ar->k + 1,
                     uv_strerror(status < 0 ? status : ar->err));
    if (a != NULL)
      a->inflight -= ar->want;
    free(ar->buf);
    goto out;
  }
  if (!ar->final && !w->stopping)
    array_more(ar);
  len = to_array(ar->buf, ar->len);
  if (ar->final && !w->stopping && a != NULL)
    e = cache_put(&a->logs, ar->key, ar->buf, len);
  if (e != NULL) {
    a->inflight -= ar->want;
    respond_entry(ar->r, e, CCCI_WEB_JSON, NO_STORE);
  } else {
    o = ccci_xcalloc(1, sizeof(*o));
    o->w = w;
    o->data = ar->buf;
    o->len = len;
    o->counted = a != NULL ? ar->want : 0;
    ccci_http_respond_ref(ar->r, 200, CCCI_WEB_JSON, NO_STORE, o->data, o->len,
                          owned_release, o);
  }
out:
  free(ar->path);
  free(ar);
  ccci_web_unpend(w);
}

void ccci_web_api_logs(struct ccci_web *w, struct ccci_http_req *r,
                       const char *const *arg)
{
  struct ccci_runs *rs = runs_or_503(w, r);
  struct ccci_web_api *a;
  struct ccci_runs_view v;
  struct array_read *ar;
  struct step_at sa;
  struct centry *e;
  char id[CCCI_RUN_ID_MAX + 1], key[CCCI_RUN_ID_MAX + 16];
  unsigned k;

  if (rs == NULL || drone_step(w, r, rs, arg, id, &k) < 0)
    return;
  a = api_of(w);
  snprintf(key, sizeof(key), "%s/%u", id, k);
  if (ccci_runs_view(rs, id, &v) < 0) {
    ccci_web_error(w, r, 404, "no build %s", arg[2]);
    return;
  }
  if (v.state == CCCI_RUN_FINISHED && v.logs == NULL &&
      (e = cache_get(&a->logs, key)) != NULL) {
    respond_entry(r, e, CCCI_WEB_JSON, NO_STORE);
    return;
  }
  if (step_find(&v, k, &sa) < 0) {
    ccci_web_error(w, r, 404, "no step %u in build %s", k + 1, arg[2]);
    return;
  }
  if (sa.bytes > ARRAY_MAX) {
    ccci_web_error(w, r, 413,
                   "step %u is %" PRIu64 " bytes, over the %u the array "
                   "serves: read it from /api/stream/",
                   k + 1, sa.bytes, ARRAY_MAX);
    return;
  }
  if (a->inflight + sa.bytes > ARRAY_INFLIGHT_MAX) {
    ccci_http_respond(r, 503, CCCI_WEB_JSON, "Retry-After: 1\r\n",
                      "{\"error\":{\"code\":503,\"message\":\"busy\"}}\n", 41);
    return;
  }
  ar = ccci_xcalloc(1, sizeof(*ar));
  ar->w = w;
  ar->r = r;
  snprintf(ar->id, sizeof(ar->id), "%s", id);
  snprintf(ar->key, sizeof(ar->key), "%s", key);
  ar->k = k;
  ar->final = sa.final;
  ar->path = ccci_xasprintf("%s/logs/%u-%s.jsonl", v.dir, k, sa.name);
  ar->want = sa.bytes;
  a->inflight += ar->want;
  ccci_web_pend(w);
  if (uv_queue_work(w->env.loop, &ar->work, array_work, array_done) < 0) {
    ar->err = -EAGAIN;
    array_done(&ar->work, UV_EAGAIN);
  }
}

/* ---- SSE: a tail sink per client ---- */

struct sse {
  struct ccci_tail_sink sink;
  struct ccci_web *w;
  struct ccci_http_req *r; /* NULL once the stream ended */
  struct ccci_list node;   /* in w->sse while r */
  uv_timer_t timer;
  /* The timer handle's, plus one while the end waits for the results. */
  unsigned refs;
  bool page;    /* the page's stream, else Drone's */
  bool tailing; /* a tail session streams into the sink */
  /* Inside a call of the tail engine: the client's going or draining is
   * told to it later, from the timer (never from inside its calls). */
  unsigned in_tail;
  bool gone, drain_due;
  unsigned url_step;         /* Drone: the step of the URL (from 1) */
  uint64_t full_since;       /* uv_now when found full with no drain since */
  uint64_t last_ping;        /* uv_now of the last ping (or the start) */
  struct ccci_runs_view end; /* the run at the end, for the end event */
  char id[CCCI_RUN_ID_MAX + 1];
};

static struct sse *of_sink(const struct ccci_tail_sink *s)
{
  return ccci_container_of(s, struct sse, sink);
}

static void sse_unref(struct sse *c)
{
  if (--c->refs == 0)
    free(c);
}

static void sse_write(struct sse *c, const char *p, size_t len)
{
  if (c->r != NULL)
    (void)ccci_http_stream_write(c->r, p, len);
}

static void on_timer_closed(uv_handle_t *h)
{
  struct sse *c = ccci_container_of((uv_timer_t *)h, struct sse, timer);
  struct ccci_web *w = c->w;
  sse_unref(c);
  ccci_web_unpend(w);
}

/* End the stream, @p last written first (NULL: nothing, the client is
 * gone): the tail session stops, the response ends. */
static void sse_finish(struct sse *c, const char *last)
{
  struct ccci_web *w = c->w;
  struct ccci_http_req *r = c->r;
  if (r == NULL)
    return;
  if (c->tailing) {
    c->tailing = false;
    ccci_tail_sink_gone(&c->sink);
  }
  /* A write may tell of the client's going at once: that finds the stream
   * over already. */
  c->r = NULL;
  if (last != NULL)
    (void)ccci_http_stream_write(r, last, strlen(last));
  ccci_http_stream_end(r);
  ccci_list_remove(&c->node);
  w->c.sse_clients--;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* An `event: error` with @p msg, then the end. */
static void sse_fail(struct sse *c, const char *msg)
{
  struct ccci_buf b;
  ccci_buf_init(&b, SIZE_MAX);
  if (ccci_buf_printf(&b, "event: error\ndata: {\"message\":") < 0 ||
      json_str(&b, msg, strlen(msg)) < 0 || ccci_buf_append(&b, "}\n\n", 3))
    abort();
  sse_finish(c, b.data);
  ccci_buf_close(&b);
}

/* The engine's calls of the sink: a write can tell of the client's going
 * at once (a reset), which must wait for the call's end. */
static void tail_enter(struct sse *c)
{
  c->in_tail++;
}

static void tail_leave(struct sse *c)
{
  c->in_tail--;
}

static void sink_begin(struct ccci_tail_sink *s, const char *id,
                       enum ccci_run_state state)
{
  (void)s, (void)id, (void)state;
}

static void sink_step(struct ccci_tail_sink *s, unsigned n, const char *name)
{
  struct sse *c = of_sink(s);
  struct ccci_buf b;
  if (!c->page)
    return;
  ccci_buf_init(&b, SIZE_MAX);
  if (ccci_buf_printf(&b, "event: step\ndata: {\"n\":%u,\"name\":", n) < 0 ||
      json_str(&b, name, strlen(name)) < 0 || ccci_buf_append(&b, "}\n\n", 3))
    abort();
  tail_enter(c);
  sse_write(c, b.data, b.len);
  tail_leave(c);
  ccci_buf_close(&b);
}

/* One line of the page's stream: its out as HTML, without the newline. */
static void page_line(struct ccci_buf *b, struct ccci_buf *html, unsigned n,
                      const char *q, size_t len)
{
  json_t *j = json_loadb(q, len, 0, NULL);
  json_t *out = json_object_get(j, "out");
  const char *text = json_string_value(out);
  size_t tl = json_string_length(out);
  json_int_t pos = json_integer_value(json_object_get(j, "pos"));
  json_int_t t = json_integer_value(json_object_get(j, "time"));

  if (text == NULL) {
    /* Not a log line: the step files are written by us, so never. */
    json_decref(j);
    return;
  }
  if (tl > 0 && text[tl - 1] == '\n')
    tl--;
  if (tl > 0 && text[tl - 1] == '\r')
    tl--;
  html->len = 0;
  if (ccci_html_ansi(html, text, tl) < 0 ||
      ccci_buf_printf(b,
                      "id: %u:%" JSON_INTEGER_FORMAT "\ndata: {\"step\":%u,"
                      "\"pos\":%" JSON_INTEGER_FORMAT
                      ",\"time\":%" JSON_INTEGER_FORMAT ",\"html\":",
                      n, pos, n, pos, t) < 0 ||
      json_str(b, html->data != NULL ? html->data : "", html->len) < 0 ||
      ccci_buf_append(b, "}\n\n", 3) < 0)
    abort();
  json_decref(j);
}

/* Each encoded line framed as one event (`id: <step>:<pos>`), the batch
 * sent as one write. */
static bool memo_is(const struct ccci_web_api *a, const struct sse *c,
                    unsigned n, uint64_t pos, size_t len)
{
  return a->memo.valid && a->memo.page == c->page &&
         a->memo.url_step == c->url_step && a->memo.n == n &&
         a->memo.pos == pos && a->memo.len == len &&
         strcmp(a->memo.id, c->id) == 0;
}

/* Append @p v in decimal: the framing of every SSE line, cheaper than
 * printf (bench/sse.py found the formatting first in the profile). */
static int put_u64(struct ccci_buf *b, uint64_t v)
{
  char t[20];
  size_t i = sizeof(t);
  do {
    t[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return ccci_buf_append(b, t + i, sizeof(t) - i);
}

/* Each encoded line framed as one event (`id: <step>:<pos>`), the batch
 * sent as one write. */
static void sink_lines(struct ccci_tail_sink *s, unsigned n, uint64_t pos,
                       const char *p, size_t len)
{
  struct sse *c = of_sink(s);
  struct ccci_web_api *a = api_of(c->w);
  struct ccci_buf *b = &a->scratch, html;
  const char *q, *end = p + len, *nl;
  uint64_t lines = 0;

  if (!memo_is(a, c, n, pos, len)) {
    a->memo.valid = false;
    if (b->cap > SSE_SCRATCH_KEEP)
      ccci_buf_close(b);
    b->len = 0;
    ccci_buf_init(&html, SIZE_MAX);
    for (q = p; q < end; q = nl + 1) {
      nl = memchr(q, '\n', (size_t)(end - q));
      if (c->page)
        page_line(b, &html, n, q, (size_t)(nl - q));
      else if (ccci_buf_append(b, "id: ", 4) < 0 ||
               put_u64(b, c->url_step) < 0 || ccci_buf_append(b, ":", 1) < 0 ||
               put_u64(b, pos + lines) < 0 ||
               ccci_buf_append(b, "\ndata: ", 7) < 0 ||
               ccci_buf_append(b, q, (size_t)(nl - q)) < 0 ||
               ccci_buf_append(b, "\n\n", 2) < 0)
        abort();
      lines++;
    }
    ccci_buf_close(&html);
    a->memo.valid = true;
    a->memo.page = c->page;
    a->memo.url_step = c->url_step;
    a->memo.n = n;
    a->memo.pos = pos;
    a->memo.len = len;
    a->memo.lines = lines;
    memcpy(a->memo.id, c->id, sizeof(a->memo.id));
  }
  c->w->c.sse_lines += a->memo.lines;
  tail_enter(c);
  sse_write(c, b->data != NULL ? b->data : "", b->len);
  tail_leave(c);
}

static bool sink_full(const struct ccci_tail_sink *s)
{
  struct sse *c = of_sink(s);
  if (c->gone)
    return true; /* the timer tells the engine */
  if (c->r == NULL || !ccci_http_stream_full(c->r))
    return false;
  if (c->full_since == 0)
    c->full_since = uv_now(c->w->env.loop) + 1;
  return true;
}

static void end_results(void *arg, const struct ccci_web_results *res)
{
  struct sse *c = arg;
  const char *reason = ccci_run_reason_name(c->end.reason);
  bool finished = c->end.state == CCCI_RUN_FINISHED;
  json_t *j = json_object();
  size_t len;
  char *text, *ev;

  json_object_set_new(j, "state",
                      json_string(ccci_run_state_name(c->end.state)));
  json_object_set_new(j, "reason",
                      finished && reason != NULL ? json_string(reason)
                                                 : json_null());
  json_object_set_new(j, "exit_code",
                      finished && c->end.exit_code >= 0
                          ? json_integer(c->end.exit_code)
                          : json_null());
  json_object_set_new(j, "level", level_json(finished ? res->level : -1));
  text = dump(j, &len);
  json_decref(j);
  text[len - 1] = '\0';
  ev = ccci_xasprintf("event: end\ndata: %s\n\n", text);
  sse_finish(c, ev);
  free(ev);
  free(text);
  sse_unref(c);
}

static void sink_end(struct ccci_tail_sink *s, const struct ccci_runs_view *v)
{
  struct sse *c = of_sink(s);
  c->tailing = false;
  if (!c->page) {
    sse_finish(c, "event: error\ndata: eof\n\n");
    return;
  }
  c->end = *v;
  c->refs++;
  ccci_web_results(c->w, c->id, end_results, c);
}

static void sink_error(struct ccci_tail_sink *s, int err)
{
  struct sse *c = of_sink(s);
  c->tailing = false;
  sse_fail(c, err == -ENOENT      ? "the run is gone"
              : err == -EIO       ? "a step file cannot be read"
              : err == -ECANCELED ? "the daemon stops"
                                  : "the stream stopped");
}

static void on_tick(uv_timer_t *t);

static const struct ccci_tail_sink_ops sse_ops = {
    .begin = sink_begin,
    .step = sink_step,
    .lines = sink_lines,
    .full = sink_full,
    .end = sink_end,
    .error = sink_error,
};

static void on_gone(void *arg)
{
  struct sse *c = arg;
  if (c->r == NULL || c->gone)
    return;
  if (c->in_tail > 0) {
    c->gone = true;
    uv_timer_start(&c->timer, on_tick, 0, SSE_TICK_MS);
    return;
  }
  /* Closed by the engine while we waited for a drain: it could not keep
   * up (the write-stall timeout). */
  if (c->full_since != 0)
    c->w->c.sse_dropped++;
  sse_finish(c, NULL);
}

static void on_drained(void *arg)
{
  struct sse *c = arg;
  c->full_since = 0;
  if (c->in_tail > 0) {
    c->drain_due = true;
    uv_timer_start(&c->timer, on_tick, 0, SSE_TICK_MS);
    return;
  }
  if (c->tailing)
    ccci_tail_sink_drained(&c->sink);
}

static void on_tick(uv_timer_t *t)
{
  struct sse *c = ccci_container_of(t, struct sse, timer);
  uint64_t now = uv_now(c->w->env.loop);
  if (c->r == NULL)
    return;
  if (c->gone) {
    c->gone = false;
    on_gone(c);
    return;
  }
  if (c->drain_due) {
    c->drain_due = false;
    on_drained(c);
    if (c->r == NULL)
      return;
  }
  if (c->full_since != 0 && now + 1 - c->full_since >= SSE_GIVE_UP_MS) {
    c->w->c.sse_dropped++;
    sse_fail(c, "the client does not keep up: resume with Last-Event-ID");
    return;
  }
  if (now - c->last_ping >= SSE_PING_MS && !ccci_http_stream_full(c->r)) {
    c->last_ping = now;
    sse_write(c, ": ping\n\n", 8);
  }
}

/* "<step>:<pos>" (Last-Event-ID, ?after=): 0, or -EINVAL. */
static int parse_event_id(const char *s, uint64_t *step, uint64_t *pos)
{
  const char *colon = strchr(s, ':');
  char head[24];
  if (colon == NULL || (size_t)(colon - s) >= sizeof(head))
    return -EINVAL;
  memcpy(head, s, (size_t)(colon - s));
  head[colon - s] = '\0';
  if (ccci_parse_u64(head, step) < 0 || ccci_parse_u64(colon + 1, pos) < 0 ||
      *pos == UINT64_MAX)
    return -EINVAL;
  return 0;
}

static void sse_start(struct ccci_web *w, struct ccci_http_req *r,
                      const struct ccci_tail_request *tr, bool page,
                      unsigned url_step)
{
  struct sse *c;

  ccci_http_stream_begin(r, 200, SSE_TYPE, SSE_HEADERS);
  /* HEAD gets the head only; a client gone already gets nothing. */
  if (ccci_http_method(r) == CCCI_HTTP_HEAD || ccci_http_gone(r)) {
    ccci_http_stream_end(r);
    return;
  }
  c = ccci_xcalloc(1, sizeof(*c));
  c->w = w;
  c->r = r;
  c->refs = 1;
  c->page = page;
  c->url_step = url_step;
  c->sink.ops = &sse_ops;
  c->last_ping = uv_now(w->env.loop);
  snprintf(c->id, sizeof(c->id), "%s", tr->id);
  ccci_web_pend(w);
  if (uv_timer_init(w->env.loop, &c->timer) < 0)
    abort();
  uv_timer_start(&c->timer, on_tick, SSE_TICK_MS, SSE_TICK_MS);
  ccci_list_add_tail(&w->sse, &c->node);
  w->c.sse_clients++;
  w->c.sse_started++;
  ccci_http_watch(r, on_gone, on_drained, c);
  c->tailing = true;
  ccci_tail_start(w->env.ops->tail, tr, &c->sink);
}

/* The resume point of @p r: Last-Event-ID, else ?after=; 1 when there is
 * one, 0 when none, -EINVAL when malformed. */
static int resume_point(struct ccci_http_req *r, bool after, uint64_t *step,
                        uint64_t *pos)
{
  const char *s = ccci_http_header(r, "Last-Event-ID");
  if (s == NULL && after)
    s = ccci_http_query_param(r, "after");
  if (s == NULL || s[0] == '\0')
    return 0;
  return parse_event_id(s, step, pos) < 0 ? -EINVAL : 1;
}

/* GET /api/stream/{o}/{n}/{b}/{stage}/{step} */
void ccci_web_api_stream(struct ccci_web *w, struct ccci_http_req *r,
                         const char *const *arg)
{
  struct ccci_runs *rs = runs_or_503(w, r);
  struct ccci_tail_request tr;
  struct ccci_runs_view v;
  struct step_at sa;
  char id[CCCI_RUN_ID_MAX + 1];
  uint64_t rstep = 0, rpos = 0;
  unsigned k;
  int rp;

  if (rs == NULL || drone_step(w, r, rs, arg, id, &k) < 0)
    return;
  if (w->env.ops->tail == NULL || ccci_runs_view(rs, id, &v) < 0) {
    ccci_web_error(w, r, 503, "the daemon is stopping");
    return;
  }
  /* A run that is over has all the steps it will have. */
  if (v.state == CCCI_RUN_FINISHED && v.logs == NULL &&
      step_find(&v, k, &sa) < 0) {
    ccci_web_error(w, r, 404, "no step %u in build %s", k + 1, arg[2]);
    return;
  }
  rp = resume_point(r, false, &rstep, &rpos);
  if (rp < 0) {
    ccci_web_error(w, r, 400, "Last-Event-ID must be <step>:<pos>");
    return;
  }
  memset(&tr, 0, sizeof(tr));
  tr.id = id;
  tr.follow = true;
  tr.step = (int)k;
  tr.end_with_step = true;
  /* An id of another step does not say where to resume in this one. */
  tr.from = rp > 0 && rstep == (uint64_t)k + 1 ? rpos + 1 : 0;
  sse_start(w, r, &tr, false, k + 1);
}

/* GET /runs/<id>/events */
void ccci_web_page_events(struct ccci_web *w, struct ccci_http_req *r,
                          const char *const *arg)
{
  struct ccci_runs *rs = runs_or_503(w, r);
  struct ccci_tail_request tr;
  struct ccci_runs_view v;
  uint64_t rstep = 0, rpos = 0;
  int rp;

  if (rs == NULL)
    return;
  if (!id_ok(arg[0]) || ccci_runs_view(rs, arg[0], &v) < 0) {
    ccci_web_error(w, r, 404, "no run '%s'", arg[0]);
    return;
  }
  if (w->env.ops->tail == NULL) {
    ccci_web_error(w, r, 503, "the daemon is stopping");
    return;
  }
  rp = resume_point(r, true, &rstep, &rpos);
  if (rp < 0 || (rp > 0 && rstep >= CCCI_TAIL_MAX_STEPS)) {
    ccci_web_error(w, r, 400, "the resume point must be <step>:<pos>");
    return;
  }
  memset(&tr, 0, sizeof(tr));
  tr.id = arg[0];
  tr.follow = true;
  tr.step = -1;
  tr.from_step = rp > 0 ? (unsigned)rstep : 0;
  tr.from = rp > 0 ? rpos + 1 : 0;
  sse_start(w, r, &tr, true, 0);
}

void ccci_web_sse_stop(struct ccci_web *w)
{
  struct ccci_list *it, *nx;
  ccci_list_foreach_safe(it, nx, &w->sse)
  {
    struct sse *c = ccci_container_of(it, struct sse, node);
    sse_fail(c, "the daemon stops");
  }
  api_free(w);
}

/* ---- GET /runs/<id>/artifacts/<name> ---- */

struct art_read {
  uv_work_t work;
  struct ccci_web *w;
  struct ccci_http_req *r;
  char *rel;  /* "artifacts/<name>" */
  char *path; /* the run dir */
  char *text;
  size_t len;
  int err;
};

/* The type an artifact is served as, and whether it is masked (all but
 * the images).
 * HTML and SVG are served as plain text: a run's files never run as pages
 * of this origin. */
static const char *art_type(const char *rel, bool *text)
{
  static const struct {
    const char *ext, *type;
    bool text;
  } types[] = {
      {".png", "image/png", false},
      {".jpg", "image/jpeg", false},
      {".jpeg", "image/jpeg", false},
      {".gif", "image/gif", false},
      {".webp", "image/webp", false},
      {".json", "application/json", true},
      {".txt", "text/plain; charset=utf-8", true},
      {".log", "text/plain; charset=utf-8", true},
      {".html", "text/plain; charset=utf-8", true},
      {".htm", "text/plain; charset=utf-8", true},
      {".svg", "text/plain; charset=utf-8", true},
  };
  size_t i, l = strlen(rel);
  for (i = 0; i < CCCI_ARRAY_LEN(types); i++) {
    size_t el = strlen(types[i].ext);
    if (l > el && strcasecmp(rel + l - el, types[i].ext) == 0) {
      *text = types[i].text;
      return types[i].type;
    }
  }
  /* Unknown bytes may hold a secret as well as text does. */
  *text = true;
  return "application/octet-stream";
}

static void art_work(uv_work_t *work)
{
  struct art_read *ar = ccci_container_of(work, struct art_read, work);
  /* The harness wrote the run dir: no link out of it, no FIFO. */
  ar->err = ccci_read_file_beneath(ar->path, ar->rel, ARTIFACT_MAX, &ar->text,
                                   &ar->len);
}

static void art_done(uv_work_t *work, int status)
{
  struct art_read *ar = ccci_container_of(work, struct art_read, work);
  struct ccci_web *w = ar->w;
  bool text;
  const char *type = art_type(ar->rel, &text);

  if (status < 0)
    ar->err = status;
  if (ar->err == -ENOENT || ar->err == -ELOOP || ar->err == -EXDEV ||
      ar->err == -EINVAL)
    ccci_web_error(w, ar->r, 404,
                   "no artifact '%s' (a regular file in the run)", ar->rel);
  else if (ar->err == -EFBIG)
    ccci_web_error(w, ar->r, 413, "artifact '%s' is over %u bytes", ar->rel,
                   ARTIFACT_MAX);
  else if (ar->err < 0)
    ccci_web_error(w, ar->r, 500, "cannot read artifact '%s': %s", ar->rel,
                   uv_strerror(ar->err));
  else {
    struct ccci_buf b;
    ccci_buf_init(&b, SIZE_MAX);
    if (ccci_buf_append(&b, ar->text, ar->len) < 0)
      abort();
    ccci_web_send(w, ar->r, 200, type,
                  NO_STORE "Content-Security-Policy: default-src 'none'; "
                           "sandbox\r\n",
                  &b, text);
  }
  free(ar->text);
  free(ar->rel);
  free(ar->path);
  free(ar);
  ccci_web_unpend(w);
}

static bool listed(const struct ccci_results_artifacts *l, const char *rel)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    if (strcmp(l->path[i], rel) == 0)
      return true;
  return false;
}

static void art_results(void *arg, const struct ccci_web_results *res)
{
  struct art_read *ar = arg;
  struct ccci_web *w = ar->w;
  bool ok = false;
  size_t i;

  if (res->res != NULL) {
    ok = listed(&res->res->artifacts, ar->rel);
    for (i = 0; !ok && i < res->res->ntiers; i++)
      ok = listed(&res->res->tiers[i].artifacts, ar->rel);
  }
  if (!ok || w->stopping) {
    ccci_web_error(w, ar->r, 404, "no artifact '%s'", ar->rel);
    free(ar->rel);
    free(ar->path);
    free(ar);
    return;
  }
  ccci_web_pend(w);
  if (uv_queue_work(w->env.loop, &ar->work, art_work, art_done) < 0) {
    ar->err = -EAGAIN;
    art_done(&ar->work, UV_EAGAIN);
  }
}

void ccci_web_artifact(struct ccci_web *w, struct ccci_http_req *r,
                       const char *const *arg)
{
  struct ccci_runs *rs = runs_or_503(w, r);
  struct ccci_runs_view v;
  struct art_read *ar;
  char *rel;

  if (rs == NULL)
    return;
  if (!id_ok(arg[0]) || ccci_runs_view(rs, arg[0], &v) < 0) {
    ccci_web_error(w, r, 404, "no run '%s'", arg[0]);
    return;
  }
  rel = ccci_xasprintf("artifacts/%s", arg[1]);
  if (!ccci_results_artifact_ok(rel)) {
    ccci_web_error(w, r, 404, "no artifact '%s'", rel);
    free(rel);
    return;
  }
  ar = ccci_xcalloc(1, sizeof(*ar));
  ar->w = w;
  ar->r = r;
  ar->rel = rel;
  ar->path = ccci_xstrdup(v.dir);
  ccci_web_results(w, arg[0], art_results, ar);
}
