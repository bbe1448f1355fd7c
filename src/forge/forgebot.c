/* The forge bot: its life (start, SIGHUP, status, stop), the forge
 * requests, the ordered writes, the repo state files, the self-check and
 * the reporter (docs/forge.md). The pollers are poller.c, the acceptance
 * path accept.c, the outbox outbox.c. */
#include "ccci/forge/forgebot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccci/core/fileq.h"
#include "ccci/core/log.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/httpc.h"
#include "ccci/forge/trigger.h"
#include "ccci/logs/logstore.h"
#include "ccci/logs/redact.h"
#include "ccci/runs/levels.h"
#include "ccci/runs/outcome.h"
#include "ccci/runs/results.h"
#include "ccci/runs/run.h"
#include "forgebot_int.h"

#define STATE_MAX (16u * 1024u * 1024u)

/* ---- small helpers ---- */

uint64_t fb_jitter(uint64_t ms)
{
  return ms * 3 / 4 + (uint64_t)rand() % (ms / 2 + 1);
}

static char *read_token(const char *path, char **err)
{
  char *text = NULL;
  size_t len = 0, n;
  int rc = ccci_read_file(path, 4096, &text, &len);
  char *tok;
  if (rc < 0) {
    *err = ccci_xasprintf("cannot read forge.token_file %s: %s", path,
                          strerror(-rc));
    return NULL;
  }
  n = strcspn(text, "\r\n");
  tok = text;
  while (n > 0 && (*tok == ' ' || *tok == '\t')) {
    tok++;
    n--;
  }
  while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
    n--;
  if (n == 0) {
    ccci_wipe_free(text, len);
    *err = ccci_xasprintf("forge.token_file %s is empty", path);
    return NULL;
  }
  tok = ccci_xasprintf("Authorization: token %.*s", (int)n, tok);
  ccci_wipe_free(text, len);
  return tok;
}

/* ---- ordered durable writes ---- */

/* The caller of one write, told once it is done. */
struct written {
  struct ccci_forgebot *b;
  char *path; /* for the log */
  void (*done)(struct ccci_forgebot *b, void *arg, int rc);
  void *arg;
};

static void on_written(void *arg, int rc)
{
  struct written *w = arg;
  struct ccci_forgebot *b = w->b;
  if (rc < 0)
    ccci_error("forge", "cannot write %s: %s", w->path, strerror(-rc));
  if (w->done != NULL)
    w->done(b, w->arg, rc);
  free(w->path);
  free(w);
  b->pending--;
  fb_maybe_freed(b);
}

/* Write @p data (taken; NULL: unlink @p path, taken) after every write
 * queued before, then call @p done. Each file is written whole, so a
 * waiting write of the same file that the queue replaces by this one
 * (the latest text wins) was never needed on disk: the state file is a
 * snapshot of the repo's ledger, the outbox and marker files are written
 * once and unlinked once (an unlink is never merged into a write). */
void fb_put_file(struct ccci_forgebot *b, char *path, char *data,
                 void (*done)(struct ccci_forgebot *, void *, int), void *arg)
{
  struct written *w = ccci_xcalloc(1, sizeof(*w));
  w->b = b;
  w->path = ccci_xstrdup(path);
  w->done = done;
  w->arg = arg;
  b->pending++;
  ccci_fileq_put(&b->files, path, data, data != NULL ? strlen(data) : 0,
                 data != NULL ? CCCI_FILEQ_MKDIR : 0, on_written, w);
}

/* ---- requests ---- */

struct req {
  struct ccci_forgebot *b;
  void (*cb)(struct ccci_forgebot *b, void *arg,
             const struct ccci_httpc_response *resp);
  void *arg;
  void (*drop)(void *arg); /* frees @p arg if never answered, or NULL */
  struct ccci_list link;   /* in b->reqs: freed at close if never answered */
};

static void on_response(void *arg, const struct ccci_httpc_response *resp)
{
  struct req *q = arg;
  ccci_list_remove(&q->link);
  q->cb(q->b, q->arg, resp);
  free(q);
}

/* fb_call, with @p drop to free @p arg when the bot stops before the
 * answer (the callback then never comes), and the `Accept` line @p accept. */
static void call_accepting(struct ccci_forgebot *b, const char *method,
                           char *path, json_t *body, const char *accept,
                           void (*cb)(struct ccci_forgebot *, void *,
                                      const struct ccci_httpc_response *),
                           void *arg, void (*drop)(void *arg))
{
  const char *headers[4] = {b->auth, accept, NULL, NULL};
  struct ccci_httpc_request rq;
  struct req *q = ccci_xcalloc(1, sizeof(*q));
  char *url = ccci_xasprintf("%s%s", b->base, path);
  char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
  int rc;

  free(path);
  json_decref(body);
  if (text != NULL)
    headers[2] = "Content-Type: application/json";
  memset(&rq, 0, sizeof(rq));
  rq.method = method;
  rq.url = url;
  rq.headers = headers;
  rq.body = text;
  rq.body_len = text != NULL ? strlen(text) : 0;
  /* A POST creates something (a comment): never resent by curl itself. */
  rq.fresh_connection = strcmp(method, "POST") == 0;
  q->b = b;
  q->cb = cb;
  q->arg = arg;
  q->drop = drop;
  b->n.requests++;
  rc = ccci_httpc_send(b->http, &rq, on_response, q, NULL);
  free(url);
  free(text);
  if (rc == 0) {
    ccci_list_add_tail(&b->reqs, &q->link);
    return;
  }
  {
    /* Only a malformed request fails here (a path from the forge's own
     * data): the caller sees a transport error and backs off. */
    struct ccci_httpc_response fail;
    memset(&fail, 0, sizeof(fail));
    fail.error = rc;
    fail.error_text = "the request could not be sent";
    fail.date = -1;
    fail.retry_after_s = -1;
    ccci_error("forge", "cannot send a %s request: %s", method, strerror(-rc));
    cb(b, arg, &fail);
    free(q);
  }
}

static void call_owning(struct ccci_forgebot *b, const char *method, char *path,
                        json_t *body,
                        void (*cb)(struct ccci_forgebot *, void *,
                                   const struct ccci_httpc_response *),
                        void *arg, void (*drop)(void *arg))
{
  call_accepting(b, method, path, body, "Accept: application/json", cb, arg,
                 drop);
}

/* One API call: @p method on `<url>/api/v1<path>`, @p body JSON (taken) or
 * NULL. @p cb is called later on the loop; only on a send failure (a
 * malformed request) it gets a response with error set before the
 * return. */
void fb_call(struct ccci_forgebot *b, const char *method, char *path,
             json_t *body,
             void (*cb)(struct ccci_forgebot *, void *,
                        const struct ccci_httpc_response *),
             void *arg)
{
  call_owning(b, method, path, body, cb, arg, NULL);
}

void fb_get_file(struct ccci_forgebot *b, char *path,
                 void (*cb)(struct ccci_forgebot *, void *,
                            const struct ccci_httpc_response *),
                 void *arg)
{
  /* The raw file endpoints produce application/octet-stream (both
   * swaggers); their errors are JSON. */
  call_accepting(b, "GET", path, NULL,
                 "Accept: application/octet-stream, application/json", cb, arg,
                 NULL);
}

bool fb_ok_status(const struct ccci_httpc_response *resp)
{
  return resp->error == 0 && resp->status >= 200 && resp->status < 300;
}

/* Whether a failed call is worth trying again (network, 5xx, 429). */
bool fb_transient(const struct ccci_httpc_response *resp)
{
  return resp->error != 0 || resp->status == 429 || resp->status >= 500 ||
         resp->status == 0;
}

void fb_describe(char *buf, size_t n, const struct ccci_httpc_response *r)
{
  if (r->error != 0)
    snprintf(buf, n, "%s", r->error_text ? r->error_text : strerror(-r->error));
  else
    snprintf(buf, n, "HTTP %ld", r->status);
}

/* ---- repo state ---- */

static char *state_text(const struct repo *r)
{
  json_t *j = json_object(), *seen = json_array(), *rep = json_array(),
         *res = json_object();
  char key[32], *s;
  size_t i;
  for (i = 0; i < r->nseen; i++)
    json_array_append_new(seen, json_pack("[I,I]", (json_int_t)r->seen[i].id,
                                          (json_int_t)r->seen[i].created));
  for (i = 0; i < r->nreplied; i++)
    json_array_append_new(rep, json_string(r->replied[i]));
  for (i = 0; i < r->nresults; i++) {
    snprintf(key, sizeof(key), "%lld", (long long)r->results[i].pr);
    json_object_set_new(res, key, json_integer(r->results[i].id));
  }
  json_object_set_new(j, "version", json_integer(1));
  json_object_set_new(j, "repo", json_string(r->full));
  json_object_set_new(j, "enrolled", json_boolean(r->enrolled));
  json_object_set_new(j, "watermark", json_integer(r->watermark));
  json_object_set_new(j, "enrolled_at", json_integer(r->enrolled_at));
  json_object_set_new(j, "seen", seen);
  json_object_set_new(j, "replied", rep);
  json_object_set_new(j, "results_comments", res);
  s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

void fb_state_save(struct repo *r,
                   void (*done)(struct ccci_forgebot *, void *, int), void *arg)
{
  r->dirty = false;
  fb_put_file(r->b, ccci_xstrdup(r->state_path), state_text(r), done, arg);
}

/* Read the repo's state file at start; a damaged one starts over (a new
 * enrolment: nothing older than the next first poll triggers). */
static void state_load(struct repo *r)
{
  char *text = NULL;
  size_t len = 0;
  json_t *j, *v, *e;
  const char *key;
  size_t i;

  if (ccci_read_file(r->state_path, STATE_MAX, &text, &len) < 0)
    return;
  j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  free(text);
  if (!json_is_object(j) || !json_is_integer(json_object_get(j, "watermark"))) {
    ccci_warn("forge", "%s is damaged; %s is enrolled again", r->state_path,
              r->full);
    json_decref(j);
    return;
  }
  r->enrolled = json_is_true(json_object_get(j, "enrolled"));
  r->watermark = json_integer_value(json_object_get(j, "watermark"));
  r->enrolled_at = json_integer_value(json_object_get(j, "enrolled_at"));
  v = json_object_get(j, "seen");
  json_array_foreach(v, i, e)
  {
    r->seen = ccci_xrealloc(r->seen, (r->nseen + 1) * sizeof(*r->seen));
    r->seen[r->nseen].id = json_integer_value(json_array_get(e, 0));
    r->seen[r->nseen++].created = json_integer_value(json_array_get(e, 1));
  }
  v = json_object_get(j, "replied");
  json_array_foreach(v, i, e)
  {
    if (!json_is_string(e))
      continue;
    r->replied =
        ccci_xrealloc(r->replied, (r->nreplied + 1) * sizeof(*r->replied));
    r->replied[r->nreplied++] = ccci_xstrdup(json_string_value(e));
  }
  v = json_object_get(j, "results_comments");
  json_object_foreach(v, key, e)
  {
    r->results =
        ccci_xrealloc(r->results, (r->nresults + 1) * sizeof(*r->results));
    r->results[r->nresults].pr = strtoll(key, NULL, 10);
    r->results[r->nresults++].id = json_integer_value(e);
  }
  json_decref(j);
}

bool fb_is_seen(const struct repo *r, int64_t id)
{
  size_t i;
  for (i = 0; i < r->nseen; i++)
    if (r->seen[i].id == id)
      return true;
  return false;
}

void fb_mark_seen(struct repo *r, int64_t id, int64_t created)
{
  if (fb_is_seen(r, id))
    return;
  r->seen = ccci_xrealloc(r->seen, (r->nseen + 1) * sizeof(*r->seen));
  r->seen[r->nseen].id = id;
  r->seen[r->nseen++].created = created;
  r->dirty = true;
}

struct repo *fb_repo_of(struct ccci_forgebot *b, const char *full)
{
  size_t i;
  for (i = 0; i < b->nrepos; i++)
    if (strcmp(b->repos[i]->full, full) == 0)
      return b->repos[i];
  return NULL;
}

int64_t fb_results_id(const struct repo *r, int64_t pr)
{
  size_t i;
  for (i = 0; i < r->nresults; i++)
    if (r->results[i].pr == pr)
      return r->results[i].id;
  return 0;
}

void fb_set_results_id(struct repo *r, int64_t pr, int64_t id)
{
  size_t i;
  for (i = 0; i < r->nresults; i++)
    if (r->results[i].pr == pr) {
      r->results[i].id = id;
      return;
    }
  r->results =
      ccci_xrealloc(r->results, (r->nresults + 1) * sizeof(*r->results));
  r->results[r->nresults].pr = pr;
  r->results[r->nresults++].id = id;
}

/* ---- reporting ---- */

static char *link_of(struct ccci_forgebot *b, const char *id)
{
  const char *base = b->public_url != NULL ? b->public_url(b->arg) : NULL;
  if (base != NULL)
    return ccci_xasprintf("%s/runs/%s", base, id);
  if (!b->warned_no_url) {
    b->warned_no_url = true;
    ccci_warn("forge", "no HTTP front: statuses and comments carry no link "
                       "to the log");
  }
  return NULL;
}

static json_t *status_entry(struct ccci_forgebot *b, const char *repo,
                            const char *sha, const char *id, const char *state,
                            const char *description)
{
  struct ccci_config *cfg = b->config(b->arg);
  char *url = link_of(b, id);
  json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kind", "status", "repo",
                        repo, "sha", sha, "state", state, "context",
                        cfg->forge.status_context, "description", description);
  if (url != NULL)
    json_object_set_new(j, "target_url", json_string(url));
  free(url);
  ccci_config_unref(cfg);
  return j;
}

static const char *trigger_str(const struct ccci_run_meta *m, const char *key)
{
  return json_string_value(json_object_get(m->trigger, key));
}

static bool is_forge_run(const struct ccci_run_meta *m)
{
  const char *kind = trigger_str(m, "kind");
  return kind != NULL && strcmp(kind, "forge") == 0 && m->sha != NULL &&
         m->pr > 0;
}

/* After the entries are durable, a marker in the run dir says so. */
static void mark_run(struct ccci_forgebot *b, const char *dir, const char *name)
{
  fb_put_file(b, ccci_xasprintf("%s/%s", dir, name), ccci_xstrdup("1\n"), NULL,
              NULL);
}

static bool has_mark(const char *dir, const char *name)
{
  char *p = ccci_xasprintf("%s/%s", dir, name);
  bool yes = access(p, F_OK) == 0;
  free(p);
  return yes;
}

void fb_ack_run(struct ccci_forgebot *b, const struct ccci_run_meta *m,
                const char *dir)
{
  json_t *cid = json_object_get(m->trigger, "comment_id");
  if (json_is_integer(cid))
    fb_ob_push(b, json_pack("{s:s,s:s,s:O}", "kind", "reaction", "repo",
                            m->repo, "comment_id", cid));
  fb_ob_push(
      b, status_entry(b, m->repo, m->sha, m->id, "pending", "ccci: queued"));
  mark_run(b, dir, "forge-acked");
}

/* A tier name or status from results.json, if it is a plain word. */
static bool plain_word(const char *s)
{
  size_t i;
  if (s == NULL || s[0] == '\0' || strlen(s) > 32)
    return false;
  for (i = 0; s[i] != '\0'; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-' || s[i] == '_'))
      return false;
  return true;
}

/* @p text with every secret masked (allocated). */
static char *redacted(struct ccci_forgebot *b, const char *text)
{
  struct ccci_redact_set *set = ccci_runs_secrets(b->runs);
  struct ccci_redact *rd;
  struct ccci_buf out;
  const char *p;
  size_t n;
  int rc = 0;
  if (set == NULL)
    return ccci_xstrdup(text);
  rd = ccci_redact_new(set, NULL);
  ccci_redact_set_unref(set);
  ccci_buf_init(&out, SIZE_MAX);
  if (ccci_redact_feed(rd, text, strlen(text), &p, &n) == 0)
    rc = ccci_buf_append(&out, p, n);
  if (rc == 0 && ccci_redact_finish(rd, &p, &n) == 0)
    rc = ccci_buf_append(&out, p, n);
  ccci_redact_free(rd);
  (void)rc;
  return ccci_buf_detach(&out);
}

/* The longest free text (a tier's reason, the harness's error) posted, in
 * bytes before escaping. */
#define TEXT_CELL_MAX 200

/* @p raw as a code span on one line: its secrets masked first (the
 * escaping and the cut below would hide a secret from the redactor of the
 * whole comment), nothing in it that can end the span, the table cell or
 * the line, cut at TEXT_CELL_MAX bytes (at a character boundary; results.c
 * keeps only valid UTF-8). Nothing for an empty or NULL text. */
static int code_span(struct ccci_forgebot *fb, struct ccci_buf *b,
                     const char *raw)
{
  char *s;
  size_t i, n;
  int rc;
  if (raw == NULL || raw[0] == '\0')
    return 0;
  s = redacted(fb, raw);
  n = strlen(s);
  if (n > TEXT_CELL_MAX) {
    n = TEXT_CELL_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  rc = ccci_buf_append(b, "`", 1);
  for (i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '|')
      rc = ccci_buf_append(b, "\\|", 2);
    else if (c == '`')
      rc = ccci_buf_append(b, "'", 1);
    else if (c < 0x20 || c == 0x7f)
      rc = ccci_buf_append(b, " ", 1);
    else
      rc = ccci_buf_append(b, s + i, 1);
  }
  if (rc == 0 && n < strlen(s))
    rc = ccci_buf_append(b, "…", strlen("…"));
  if (rc == 0)
    rc = ccci_buf_append(b, "`", 1);
  free(s);
  return rc;
}

/* A duration in seconds as the comment shows it ("1.5s", "2m05s"); "-"
 * when unknown. */
static void duration_text(double s, char out[32])
{
  if (s < 0)
    snprintf(out, 32, "-");
  else if (s < 60)
    snprintf(out, 32, "%.1fs", s);
  else
    snprintf(out, 32, "%llum%02llus", (unsigned long long)(s / 60),
             (unsigned long long)s % 60);
}

/* A step of the run's log, for the per-tier links: the number `<n>` of
 * logs/<n>-<name>.jsonl (SPEC section 6), the anchor `#s<n>` of the run
 * page (docs/forge.md). */
struct steps {
  struct ccci_logstore_file f[CCCI_LOGSTORE_MAX_STEPS + 8];
  unsigned n;
};

/* The number of the first step named @p name, or -1. */
static int step_number(const struct steps *st, const char *name)
{
  unsigned i;
  for (i = 0; name != NULL && i < st->n; i++)
    if (strcmp(st->f[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* The artifacts @p a: links under the run page @p url, else their paths
 * relative to the run directory, each after @p sep. The paths hold only
 * [A-Za-z0-9._/-] (ccci_results_artifact_ok), nothing a link or a table
 * cell needs escaped. */
static int artifact_links(struct ccci_buf *b,
                          const struct ccci_results_artifacts *a,
                          const char *url, const char *sep)
{
  size_t i;
  int rc = 0;
  for (i = 0; i < a->n && rc == 0; i++) {
    const char *name = a->path[i] + strlen("artifacts/");
    if (url != NULL)
      rc = ccci_buf_printf(b, "%s[%s](%s/%s)", i > 0 ? " · " : sep, name, url,
                           a->path[i]);
    else
      rc = ccci_buf_printf(b, "%s`%s`", i > 0 ? " · " : sep, a->path[i]);
  }
  return rc;
}

/* The log cell of tier @p t: with the run page @p url a link to the tier's
 * step on it (the page itself when the step is not in the log), else the
 * command that shows it; "-" for a tier with no step; then the tier's
 * artifacts. */
static int log_cell(struct ccci_buf *b, const struct ccci_results_tier *t,
                    const struct steps *st, const char *id, const char *url)
{
  int n = step_number(st, t->step), rc;
  if (t->step == NULL)
    rc = ccci_buf_printf(b, "-");
  else if (url != NULL && n >= 0)
    rc = ccci_buf_printf(b, "[%s](%s#s%d)", t->step, url, n);
  else if (url != NULL)
    rc = ccci_buf_printf(b, "[%s](%s)", t->step, url);
  else if (n >= 0)
    rc = ccci_buf_printf(b, "`ccci tail %s --step %d`", id, n);
  else
    rc = ccci_buf_printf(b, "`ccci tail %s --step %s`", id, t->step);
  if (rc == 0)
    rc = artifact_links(b, &t->artifacts, url, " · ");
  return rc;
}

/* The results comment's tier table: one row per tier in run order (tier,
 * status, duration, reason, log); tiers whose name or status is not a
 * plain word are left out. */
static int tier_table(struct ccci_forgebot *fb, struct ccci_buf *b,
                      const struct ccci_results *res, const struct steps *st,
                      const char *id, const char *url)
{
  size_t i;
  int rc = 0;
  bool head = false;
  for (i = 0; i < res->ntiers && rc == 0; i++) {
    const struct ccci_results_tier *t = &res->tiers[i];
    char dur[32];
    if (!plain_word(t->name) || !plain_word(t->status))
      continue;
    if (!head)
      rc = ccci_buf_printf(b, "\n| tier | status | duration | reason | log |\n"
                              "|---|---|---|---|---|\n");
    head = true;
    duration_text(t->duration_s, dur);
    if (rc == 0)
      rc = ccci_buf_printf(b, "| %s | %s | %s | ", t->name, t->status, dur);
    if (rc == 0)
      rc = code_span(fb, b, t->reason);
    if (rc == 0)
      rc = ccci_buf_printf(b, " | ");
    if (rc == 0)
      rc = log_cell(b, t, st, id, url);
    if (rc == 0)
      rc = ccci_buf_printf(b, " |\n");
  }
  return rc;
}

/* @p s as plain text on one line: every ASCII character markdown gives a
 * meaning inline (emphasis, code, links, HTML, entities, tables, @mentions
 * and #references) escaped with a backslash, control characters as
 * spaces. */
static int md_text(struct ccci_buf *b, const char *s)
{
  int rc = 0;
  for (; *s != '\0' && rc == 0; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      rc = ccci_buf_append(b, " ", 1);
    else if (strchr("\\`*_[]()<>!|~&@#", c) != NULL)
      rc = ccci_buf_printf(b, "\\%c", c);
    else
      rc = ccci_buf_append(b, s, 1);
  }
  return rc;
}

/* The line under the headline that says what keeps the run at @p level
 * (ccci_level_explain), the tier reason in it masked before it is cut and
 * escaped; nothing when there is no level. */
static int explain_line(struct ccci_forgebot *fb, struct ccci_buf *b,
                        const struct ccci_results *res, int level)
{
  char *masked[CCCI_TIER_COUNT] = {NULL};
  const char *reasons[CCCI_TIER_COUNT] = {NULL};
  char line[CCCI_LEVEL_EXPLAIN_MAX];
  size_t i;
  int rc = 0;
  if (level < 0)
    return 0;
  for (i = 0; i < res->ntiers; i++)
    if (res->tiers[i].tier >= 0 && res->tiers[i].reason != NULL)
      reasons[res->tiers[i].tier] = masked[res->tiers[i].tier] =
          redacted(fb, res->tiers[i].reason);
  ccci_level_explain(level, res->st, reasons, res->quick, line);
  if (line[0] != '\0') {
    rc = md_text(b, line);
    if (rc == 0)
      rc = ccci_buf_printf(b, "\n\n");
  }
  for (i = 0; i < CCCI_TIER_COUNT; i++)
    free(masked[i]);
  return rc;
}

/* The commit status description (SPEC section 9): the level and its name
 * for a success ("ccci: L3 backup and restore"), the failing tier and the
 * level for a failure ("ccci: failure in upgrade (L1 install)"), else the
 * reason. Within STATUS_DESC_MAX bytes: GitHub's limit, which Gitea and
 * Forgejo (no limit of their own in their API) take as well. */
#define STATUS_DESC_MAX 140
static void status_description(const struct ccci_run_meta *m,
                               const struct ccci_results *res, int level,
                               char out[STATUS_DESC_MAX + 1])
{
  const char *reason = ccci_run_reason_name(m->reason);
  const struct ccci_results_tier *bad = ccci_results_first_failed(res);
  char lv[48] = "";
  if (level >= 0)
    snprintf(lv, sizeof(lv), "%s %s", ccci_level_text(level),
             ccci_level_name(level));
  if (m->reason == CCCI_REASON_SUCCESS && level >= 0)
    snprintf(out, STATUS_DESC_MAX + 1, "ccci: %s", lv);
  else if (m->reason == CCCI_REASON_FAILURE && bad != NULL &&
           plain_word(bad->name))
    snprintf(out, STATUS_DESC_MAX + 1, "ccci: failure in %s%s%s%s", bad->name,
             level >= 0 ? " (" : "", lv, level >= 0 ? ")" : "");
  else if (m->reason == CCCI_REASON_FAILURE && level >= 0)
    snprintf(out, STATUS_DESC_MAX + 1, "ccci: failure (%s)", lv);
  else
    snprintf(out, STATUS_DESC_MAX + 1, "ccci: %s", reason ? reason : "error");
}

/* Whether run @p o holds back the final status of the finished run @p m
 * on their commit (docs/forge.md, "Reporting"): it was accepted later (the
 * repo's run number counts up with each acceptance; the run id, which
 * sorts by the comment's second and then its id as text, only breaks a tie)
 * and it is not finished (its pending stands, its own final status
 * follows) or it started (its final status is the commit's). A run that
 * finished without starting (superseded, cancelled while queued) tested
 * nothing and holds nothing back. */
static bool holds_back(const struct ccci_run_meta *o,
                       const struct ccci_run_meta *m)
{
  bool newer =
      o->number != m->number ? o->number > m->number : strcmp(o->id, m->id) > 0;
  return newer && (o->state != CCCI_RUN_FINISHED || o->started_at != 0);
}

/* The first forge run of @p m's repo and commit (any PR: a commit has one
 * status per context) that holds @p m's status back, or NULL. */
struct newer {
  const struct ccci_run_meta *m;
  const struct ccci_run_meta *by;
};

static void find_newer(void *arg, const struct ccci_run_meta *o,
                       const char *dir)
{
  struct newer *n = arg;
  (void)dir;
  if (n->by == NULL && strcmp(o->id, n->m->id) != 0 && is_forge_run(o) &&
      strcmp(o->repo, n->m->repo) == 0 && strcmp(o->sha, n->m->sha) == 0 &&
      holds_back(o, n->m))
    n->by = o;
}

/* The results comment (SPEC section 9, docs/forge.md): the outcome and
 * the level with its name, the line explaining the level, duration, deploy
 * count, the log link, the harness's error, the tier table with each
 * tier's log and artifacts, and the run's artifacts. The run's log steps
 * are in @p dir/logs. */
static int results_body(struct ccci_forgebot *fb, struct ccci_buf *body,
                        const struct ccci_run_meta *m, const char *dir,
                        const struct ccci_results *res, int level,
                        const char *deploys, const char *url)
{
  struct steps *st = ccci_xcalloc(1, sizeof(*st));
  char *logs = ccci_xasprintf("%s/logs", dir);
  const char *reason = ccci_run_reason_name(m->reason);
  long long secs = m->finished_at > m->started_at && m->started_at > 0
                       ? (long long)(m->finished_at - m->started_at)
                       : 0;
  char lvl[64] = "", dn[24] = "-";
  int rc;

  if (level >= 0)
    snprintf(lvl, sizeof(lvl), " · level **%s** %s", ccci_level_text(level),
             ccci_level_name(level));
  if (deploys != NULL && deploys[0] != '\0' &&
      strspn(deploys, "0123456789") == strlen(deploys))
    snprintf(dn, sizeof(dn), "%.20s", deploys);
  else if (res->deploys >= 0)
    snprintf(dn, sizeof(dn), "%lld", res->deploys);
  st->n = ccci_logstore_scan(logs, st->f, CCCI_ARRAY_LEN(st->f));
  free(logs);
  rc = ccci_buf_printf(body, "%s\n**ccci** run `%s` of %.12s: **%s**%s\n\n",
                       ccci_forge_marker(), m->id, m->sha,
                       reason ? reason : "?", lvl);
  if (rc == 0)
    rc = explain_line(fb, body, res, level);
  if (rc == 0)
    rc = ccci_buf_printf(body, "duration %lldm%02llds · deploys %s%s%s%s\n",
                         secs / 60, secs % 60, dn,
                         url != NULL ? " · [log](" : "", url != NULL ? url : "",
                         url != NULL ? ")" : "");
  if (rc == 0 && res->error != NULL) {
    rc = ccci_buf_printf(body, "\nharness error: ");
    if (rc == 0)
      rc = code_span(fb, body, res->error);
    if (rc == 0)
      rc = ccci_buf_printf(body, "\n");
  }
  if (rc == 0)
    rc = tier_table(fb, body, res, st, m->id, url);
  if (rc == 0 && res->artifacts.n > 0) {
    rc = ccci_buf_printf(body, "\nartifacts%s",
                         url != NULL ? "" : " (in the run's directory)");
    if (rc == 0)
      rc = artifact_links(body, &res->artifacts, url, ": ");
    if (rc == 0)
      rc = ccci_buf_printf(body, "\n");
  }
  free(st);
  return rc;
}

/* Post a finished run's commit status and results comment. @p given is
 * the results.json the daemon read on the thread pool when the harness
 * ended; NULL (a run the janitor took over, or one caught up with at
 * start) reads it here, capped at CCCI_RESULTS_MAX_BYTES
 * (docs/concurrency.md). */
static void report_run(struct ccci_forgebot *b, const struct ccci_run_meta *m,
                       const char *dir, const struct ccci_results *given)
{
  const struct ccci_results *rp = given;
  struct newer newer = {m, NULL};
  struct ccci_results res;
  struct ccci_buf body;
  const char *state = ccci_run_reason_commit_status(m->reason);
  char desc[STATUS_DESC_MAX + 1], *url = link_of(b, m->id), *deploys = NULL;
  char *text, *p;
  int level;

  if (rp == NULL) {
    p = ccci_xasprintf("%s/results.json", dir);
    (void)ccci_results_read(p, &res); /* none or unreadable: no table */
    free(p);
    rp = &res;
  } else {
    memset(&res, 0, sizeof(res)); /* cleared below, holds nothing */
  }
  level = ccci_outcome_level(m->reason, rp);
  status_description(m, rp, level, desc);
  /* A newer run of the commit, queued, running or finished, holds this
   * run's status back: its status stands, whatever order the runs end or
   * are caught up with at start in. The run is reported all the same (the
   * mark below): nothing is retried. A newer run on another commit (the
   * PR was pushed to) does not hold this commit's status back: it would
   * stay pending. */
  ccci_runs_foreach(b->runs, find_newer, &newer);
  if (newer.by == NULL)
    fb_ob_push(b, status_entry(b, m->repo, m->sha, m->id, state, desc));
  else
    ccci_log(CCCI_LOG_INFO, "forge", m->id,
             "status not posted: the status of %.12s is newer run %s's", m->sha,
             newer.by->id);
  p = ccci_xasprintf("%s/state/deploys", dir);
  if (ccci_read_file(p, 64, &deploys, NULL) < 0)
    deploys = NULL;
  free(p);
  if (deploys != NULL)
    deploys[strcspn(deploys, " \t\r\n")] = '\0';
  ccci_buf_init(&body, 256 * 1024);
  (void)results_body(b, &body, m, dir, rp, level, deploys, url);
  text = redacted(b, body.data != NULL ? body.data : "");
  fb_ob_push(b, json_pack("{s:s,s:s,s:I,s:i,s:s}", "kind", "results", "repo",
                          m->repo, "pr", (json_int_t)m->pr, "comment_id", 0,
                          "body", text));
  free(text);
  free(deploys);
  free(url);
  ccci_buf_close(&body);
  ccci_results_clear(&res);
  mark_run(b, dir, "forge-reported");
}

static void on_run_finished(void *arg, const struct ccci_run_meta *m,
                            const char *dir, const struct ccci_results *res)
{
  struct ccci_forgebot *b = arg;
  if (!b->stopping && is_forge_run(m))
    report_run(b, m, dir, res);
}

/* At start: what an earlier daemon accepted or finished but did not get
 * into the outbox. */
static void catch_up(void *arg, const struct ccci_run_meta *m, const char *dir)
{
  struct ccci_forgebot *b = arg;
  if (!is_forge_run(m))
    return;
  if (m->state == CCCI_RUN_FINISHED) {
    if (!has_mark(dir, "forge-reported"))
      report_run(b, m, dir, NULL);
  } else if (!has_mark(dir, "forge-acked")) {
    fb_ack_run(b, m, dir);
  }
}

/* ---- repos and the self-check ---- */

static void on_repo_closed(uv_handle_t *h)
{
  struct repo *r = h->data;
  struct ccci_forgebot *b = r->b;
  size_t i;
  for (i = 0; i < r->nreplied; i++)
    free(r->replied[i]);
  free(r->replied);
  free(r->seen);
  free(r->results);
  ccci_forge_comment_list_close(&r->cand);
  free(r->full);
  free(r->owner);
  free(r->state_path);
  free(r);
  b->handles--;
  fb_maybe_freed(b);
}

static void repo_add(struct ccci_forgebot *b, const char *full, uint64_t phase,
                     uint64_t interval_ms)
{
  struct repo *r = ccci_xcalloc(1, sizeof(*r));
  r->b = b;
  r->full = ccci_xstrdup(full);
  r->owner = ccci_xstrndup(full, strcspn(full, "/"));
  r->state_path = ccci_xasprintf("%s/%s.json", b->forge_dir, full);
  state_load(r);
  uv_timer_init(b->loop, &r->timer);
  r->timer.data = r;
  b->handles++;
  b->repos = ccci_xrealloc(b->repos, (b->nrepos + 1) * sizeof(*b->repos));
  b->repos[b->nrepos++] = r;
  fb_repo_at(r, uv_now(b->loop) + phase, interval_ms);
}

/* Follow forge.repos: new repos start (random phase), removed ones stop. */
static void repos_sync(struct ccci_forgebot *b)
{
  struct ccci_config *cfg = b->config(b->arg);
  size_t i, k;
  for (i = 0; i < b->nrepos;) {
    struct repo *r = b->repos[i];
    bool keep = false;
    for (k = 0; k < cfg->forge.repos.n && !keep; k++)
      keep = strcmp(cfg->forge.repos.v[k], r->full) == 0;
    if (keep || r->busy) {
      i++;
      continue;
    }
    r->removed = true;
    uv_close((uv_handle_t *)&r->timer, on_repo_closed);
    b->repos[i] = b->repos[--b->nrepos];
    ccci_info("forge", "%s: no longer enrolled", r->full);
  }
  for (k = 0; k < cfg->forge.repos.n; k++)
    if (fb_repo_of(b, cfg->forge.repos.v[k]) == NULL)
      repo_add(b, cfg->forge.repos.v[k],
               (uint64_t)rand() % (cfg->forge.poll_interval_ms + 1),
               cfg->forge.poll_interval_ms);
  ccci_config_unref(cfg);
}

static void set_check_error(struct ccci_forgebot *b, char *msg)
{
  free(b->check_error);
  b->check_error = msg;
  if (msg != NULL)
    ccci_error("forge", "self-check: %s", msg);
}

static void check_start(struct ccci_forgebot *b);

static void on_check_timer(uv_timer_t *t)
{
  check_start(t->data);
}

static void on_bot_member(struct ccci_forgebot *b, void *arg,
                          const struct ccci_httpc_response *resp)
{
  char *org = arg, why[160];
  if (!b->stopping && resp->status != 204) {
    fb_describe(why, sizeof(why), resp);
    set_check_error(
        b, ccci_xasprintf("the bot %s is not a member of %s (%s): membership "
                          "checks cannot work (docs/enroll.md)",
                          b->bot, org, why));
  }
  free(org);
}

static void on_user(struct ccci_forgebot *b, void *arg,
                    const struct ccci_httpc_response *resp)
{
  struct ccci_forge_user u;
  struct ccci_config *cfg;
  char why[160], *err = NULL, **orgs = NULL;
  size_t i, k, n = 0;
  (void)arg;
  if (b->stopping)
    return;
  if (!fb_ok_status(resp) ||
      ccci_forge_parse_user(resp->body, resp->body_len, &u, &err) < 0) {
    fb_describe(why, sizeof(why), resp);
    set_check_error(
        b, ccci_xasprintf("GET /user failed (%s%s%s): check forge.url and the "
                          "token in forge.token_file",
                          err != NULL ? err : why,
                          resp->status == 401 ? "; the token is refused" : "",
                          ""));
    free(err);
    uv_timer_start(&b->check_timer, on_check_timer, 30000, 0);
    return;
  }
  set_check_error(b, NULL);
  free(b->bot);
  b->bot = ccci_xstrdup(u.login);
  ccci_forge_user_close(&u);
  ccci_info("forge", "the bot is %s", b->bot);
  cfg = b->config(b->arg);
  for (i = 0; i < cfg->forge.repos.n; i++) {
    const char *full = cfg->forge.repos.v[i];
    size_t ol = strcspn(full, "/");
    bool dup = false;
    for (k = 0; k < n && !dup; k++)
      dup = strlen(orgs[k]) == ol && strncmp(orgs[k], full, ol) == 0;
    if (dup)
      continue;
    orgs = ccci_xrealloc(orgs, (n + 1) * sizeof(*orgs));
    orgs[n++] = ccci_xstrndup(full, ol);
  }
  ccci_config_unref(cfg);
  for (k = 0; k < n; k++)
    call_owning(b, "GET",
                ccci_xasprintf("/orgs/%s/members/%s", orgs[k], b->bot), NULL,
                on_bot_member, orgs[k], free);
  free(orgs);
}

static void check_start(struct ccci_forgebot *b)
{
  if (!b->stopping)
    fb_call(b, "GET", ccci_xstrdup("/user"), NULL, on_user, NULL);
}

/* ---- life ---- */

int ccci_forgebot_new(const struct ccci_forgebot_env *env,
                      struct ccci_forgebot **out, char **err)
{
  struct ccci_config *cfg = env->config(env->arg);
  struct ccci_httpc_opts ho;
  struct ccci_forgebot *b;
  size_t l;
  int rc;

  *out = NULL;
  *err = NULL;
  if (cfg->forge.token_file == NULL) {
    *err = ccci_xstrdup("forge.url is set but forge.token_file is not");
    ccci_config_unref(cfg);
    return -EINVAL;
  }
  b = ccci_xcalloc(1, sizeof(*b));
  b->auth = read_token(cfg->forge.token_file, err);
  if (b->auth == NULL) {
    ccci_config_unref(cfg);
    free(b);
    return -EINVAL;
  }
  memset(&ho, 0, sizeof(ho));
  ho.max_connections = (unsigned)cfg->forge.max_connections;
  ho.connect_timeout_ms = 10000;
  ho.total_timeout_ms = 60000;
  ho.max_response_bytes = CCCI_FORGE_RESPONSE_MAX;
  rc = ccci_httpc_new(env->loop, &ho, &b->http);
  if (rc < 0) {
    *err = ccci_xasprintf("cannot start the HTTP client: %s", strerror(-rc));
    ccci_wipe_free_str(b->auth);
    free(b);
    ccci_config_unref(cfg);
    return rc;
  }
  b->loop = env->loop;
  b->runs = env->runs;
  b->config = env->config;
  b->public_url = env->public_url;
  b->arg = env->arg;
  b->state_dir = ccci_xstrdup(env->state_dir);
  b->forge_dir = ccci_xasprintf("%s/forge", env->state_dir);
  b->outbox_dir = ccci_xasprintf("%s/outbox", env->state_dir);
  l = strlen(cfg->forge.url);
  b->base = ccci_xasprintf(
      "%.*s/api/v1", (int)(l > 0 && cfg->forge.url[l - 1] == '/' ? l - 1 : l),
      cfg->forge.url);
  ccci_config_unref(cfg);
  uv_timer_init(b->loop, &b->ob_timer);
  uv_timer_init(b->loop, &b->check_timer);
  b->ob_timer.data = b->check_timer.data = b;
  b->handles = 2;
  ccci_fileq_init(&b->files, b->loop);
  ccci_list_init(&b->reqs);
  ccci_list_init(&b->trigs);
  fb_ob_load(b);
  ccci_runs_foreach(b->runs, catch_up, b);
  b->finished.fn = on_run_finished;
  b->finished.arg = b;
  ccci_runs_finish_observe(b->runs, &b->finished);
  repos_sync(b);
  check_start(b);
  fb_ob_kick(b);
  *out = b;
  return 0;
}

void ccci_forgebot_reload(struct ccci_forgebot *b)
{
  struct ccci_config *cfg = b->config(b->arg);
  char *err = NULL, *tok = NULL;
  if (cfg->forge.token_file != NULL)
    tok = read_token(cfg->forge.token_file, &err);
  if (tok != NULL) {
    ccci_wipe_free_str(b->auth);
    b->auth = tok;
  } else {
    ccci_error("forge", "%s; keeping the token read before",
               err != NULL ? err : "forge.token_file is not set");
    free(err);
  }
  ccci_config_unref(cfg);
  repos_sync(b);
  check_start(b);
}

json_t *ccci_forgebot_status(struct ccci_forgebot *b)
{
  json_t *j = json_object(), *repos = json_array();
  size_t i;
  char *base = ccci_xstrndup(b->base, strlen(b->base) - strlen("/api/v1"));
  for (i = 0; i < b->nrepos; i++)
    json_array_append_new(
        repos, json_pack("{s:s,s:b,s:I,s:I}", "repo", b->repos[i]->full,
                         "enrolled", b->repos[i]->enrolled, "watermark",
                         (json_int_t)b->repos[i]->watermark, "backoff",
                         (json_int_t)b->repos[i]->backoff));
  json_object_set_new(j, "url", json_string(base));
  json_object_set_new(j, "bot", b->bot ? json_string(b->bot) : json_null());
  json_object_set_new(j, "self_check",
                      b->check_error ? json_string(b->check_error)
                                     : json_string(b->bot ? "ok" : "pending"));
  json_object_set_new(j, "repos", repos);
  free(base);
  return j;
}

void ccci_forgebot_counters(struct ccci_forgebot *b,
                            struct ccci_forgebot_counters *out)
{
  struct obx *o;
  *out = b->n;
  out->outbox_backlog = 0;
  for (o = b->ob_head; o != NULL; o = o->next)
    out->outbox_backlog++;
}

void ccci_forgebot_problems(struct ccci_forgebot *b, json_t *problems)
{
  if (b->check_error != NULL)
    json_array_append_new(problems, json_string(b->check_error));
}

void fb_maybe_freed(struct ccci_forgebot *b)
{
  struct ccci_list *it, *nx;
  struct obx *o;
  void (*done)(void *);
  void *arg;
  if (!b->stopping || b->pending > 0 || b->handles > 0 || b->http != NULL ||
      ccci_fileq_busy(&b->files))
    return;
  ccci_list_foreach_safe(it, nx, &b->reqs)
  {
    struct req *q = ccci_container_of(it, struct req, link);
    ccci_list_remove(it);
    if (q->drop != NULL)
      q->drop(q->arg);
    free(q);
  }
  fb_trigs_free(b);
  while ((o = b->ob_head) != NULL) {
    b->ob_head = o->next;
    json_decref(o->j);
    free(o);
  }
  for (; b->nmembers > 0; b->nmembers--)
    free(b->members[b->nmembers - 1].key);
  free(b->members);
  free(b->repos);
  ccci_wipe_free_str(b->auth);
  free(b->bot);
  free(b->check_error);
  free(b->base);
  free(b->state_dir);
  free(b->forge_dir);
  free(b->outbox_dir);
  done = b->done;
  arg = b->done_arg;
  free(b);
  if (done != NULL)
    done(arg);
}

static void on_http_closed(void *arg)
{
  struct ccci_forgebot *b = arg;
  b->http = NULL;
  fb_maybe_freed(b);
}

static void on_bot_handle_closed(uv_handle_t *h)
{
  struct ccci_forgebot *b = h->data;
  b->handles--;
  fb_maybe_freed(b);
}

void ccci_forgebot_free(struct ccci_forgebot *b, void (*done)(void *arg),
                        void *arg)
{
  size_t i;
  struct ccci_httpc *http = b->http;
  b->stopping = true;
  b->done = done;
  b->done_arg = arg;
  ccci_runs_finish_unobserve(b->runs, &b->finished);
  for (i = 0; i < b->nrepos; i++) {
    b->repos[i]->removed = true;
    uv_close((uv_handle_t *)&b->repos[i]->timer, on_repo_closed);
  }
  b->nrepos = 0;
  uv_close((uv_handle_t *)&b->ob_timer, on_bot_handle_closed);
  uv_close((uv_handle_t *)&b->check_timer, on_bot_handle_closed);
  /* Requests in flight are dropped (their callbacks never come). */
  ccci_httpc_close(http, on_http_closed, b);
}
