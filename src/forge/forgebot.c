/* The forge bot: polls the enrolled repos for `!testme`, authorises,
 * accepts runs durably, and reports back through a persisted outbox
 * (docs/forge.md). */
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
#include "ccci/forge/ledger.h"
#include "ccci/forge/trigger.h"
#include "ccci/logs/redact.h"
#include "ccci/runs/results.h"
#include "ccci/runs/run.h"

#define PAGE 50
/* `since` reaches this far behind the watermark (forge clocks round). */
#define OVERLAP_S 60
/* Seen comment ids are kept this far behind the watermark. */
#define SEEN_KEEP_S 86400
#define BACKOFF_MAX_MS (5u * 60u * 1000u)
#define OUTBOX_MIN_MS 1000u
#define STATE_MAX (16u * 1024u * 1024u)
/* Polls start on a grid of slots this long (at most a quarter of the poll
 * interval), so the repos whose random phases fall in one slot poll in one
 * loop iteration: on this kind of machine a wakeup from idle costs about as
 * much CPU as a poll itself (docs/perf.md). */
#define POLL_SLOT_MS 250u

struct seen {
  int64_t id, created;
};

struct prid {
  int64_t pr, id;
};

struct repo {
  struct ccci_forgebot *b;
  char *full, *owner, *state_path;
  uv_timer_t timer;
  uint64_t due; /* when the poll is (or was last) due, loop time in ms;
                   its timer starts at the next slot boundary */
  bool removed;
  /* persisted */
  bool enrolled;
  int64_t watermark, enrolled_at;
  struct seen *seen;
  size_t nseen;
  char **replied; /* "user#pr" */
  size_t nreplied;
  struct prid *results; /* the results comment of each PR */
  size_t nresults;
  bool dirty; /* changed since the state file was written */
  /* the poll going on */
  bool busy;
  unsigned page, backoff;
  size_t fetched; /* comments read in this poll */
  int64_t max_updated;
  struct ccci_forge_comment_list cand; /* comments that may trigger */
  size_t next;
};

struct member {
  char *key; /* "org/user" */
  bool yes;
  uint64_t until_ms;
};

/* A forge write, persisted in outbox/<seq>.json until the forge took it. */
struct obx {
  uint64_t seq;
  json_t *j;
  struct obx *next;
};

struct ccci_forgebot {
  uv_loop_t *loop;
  struct ccci_runs *runs;
  struct ccci_config *(*config)(void *arg);
  void *arg;
  char *state_dir, *forge_dir, *outbox_dir;
  char *base; /* <url>/api/v1 */
  char *auth; /* "Authorization: token ..." (wiped when replaced) */
  struct ccci_httpc *http;
  char *bot;         /* the bot's login, once known */
  char *check_error; /* the self-check's complaint, or NULL */
  struct repo **repos;
  size_t nrepos;
  struct member *members;
  size_t nmembers;
  struct obx *ob_head, *ob_tail;
  uint64_t ob_seq;
  bool ob_busy;
  unsigned ob_backoff;
  uv_timer_t ob_timer, check_timer;
  struct ccci_fileq files; /* the state, outbox and marker files, in order */
  struct req *reqs;
  struct trig *trigs; /* comments on their way through acceptance */
  unsigned pending;   /* file writes and run acceptances in flight */
  unsigned handles;
  bool stopping, warned_no_url;
  void (*done)(void *);
  void *done_arg;
  struct {
    uint64_t polls, poll_errors, requests, triggers, unauthorised, sent,
        send_errors;
  } n;
};

static void ob_kick(struct ccci_forgebot *b);
static void on_ob_timer(uv_timer_t *t);
static void maybe_freed(struct ccci_forgebot *b);

/* ---- small helpers ---- */

static uint64_t jitter(uint64_t ms)
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
  maybe_freed(b);
}

/* Write @p data (taken; NULL: unlink @p path, taken) after every write
 * queued before, then call @p done. Each file is written whole, so a
 * waiting write of the same file that the queue replaces by this one
 * (the latest text wins) was never needed on disk: the state file is a
 * snapshot of the repo's ledger, the outbox and marker files are written
 * once and unlinked once (an unlink is never merged into a write). */
static void put_file(struct ccci_forgebot *b, char *path, char *data,
                     void (*done)(struct ccci_forgebot *, void *, int),
                     void *arg)
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
  struct req *prev, *next; /* in flight: freed at close if never answered */
};

static void req_unlink(struct ccci_forgebot *b, struct req *q)
{
  if (q->prev != NULL)
    q->prev->next = q->next;
  else
    b->reqs = q->next;
  if (q->next != NULL)
    q->next->prev = q->prev;
}

static void on_response(void *arg, const struct ccci_httpc_response *resp)
{
  struct req *q = arg;
  struct ccci_forgebot *b = q->b;
  req_unlink(b, q);
  q->cb(b, q->arg, resp);
  free(q);
}

/* One API call: @p method on `<url>/api/v1<path>`, @p body JSON (taken) or
 * NULL. @p cb is called later, never inline; on a send failure it gets a
 * response with error set. */
static void call(struct ccci_forgebot *b, const char *method, char *path,
                 json_t *body,
                 void (*cb)(struct ccci_forgebot *, void *,
                            const struct ccci_httpc_response *),
                 void *arg)
{
  const char *headers[4] = {b->auth, "Accept: application/json", NULL, NULL};
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
  b->n.requests++;
  rc = ccci_httpc_send(b->http, &rq, on_response, q, NULL);
  free(url);
  free(text);
  if (rc == 0) {
    q->next = b->reqs;
    if (b->reqs != NULL)
      b->reqs->prev = q;
    b->reqs = q;
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

static bool ok_status(const struct ccci_httpc_response *resp)
{
  return resp->error == 0 && resp->status >= 200 && resp->status < 300;
}

/* Whether a failed call is worth trying again (network, 5xx, 429). */
static bool transient(const struct ccci_httpc_response *resp)
{
  return resp->error != 0 || resp->status == 429 || resp->status >= 500 ||
         resp->status == 0;
}

static void describe(char *buf, size_t n, const struct ccci_httpc_response *r)
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

static void state_save(struct repo *r,
                       void (*done)(struct ccci_forgebot *, void *, int),
                       void *arg)
{
  r->dirty = false;
  put_file(r->b, ccci_xstrdup(r->state_path), state_text(r), done, arg);
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

static bool is_seen(const struct repo *r, int64_t id)
{
  size_t i;
  for (i = 0; i < r->nseen; i++)
    if (r->seen[i].id == id)
      return true;
  return false;
}

static void mark_seen(struct repo *r, int64_t id, int64_t created)
{
  if (is_seen(r, id))
    return;
  r->seen = ccci_xrealloc(r->seen, (r->nseen + 1) * sizeof(*r->seen));
  r->seen[r->nseen].id = id;
  r->seen[r->nseen++].created = created;
  r->dirty = true;
}

static struct repo *repo_of(struct ccci_forgebot *b, const char *full)
{
  size_t i;
  for (i = 0; i < b->nrepos; i++)
    if (strcmp(b->repos[i]->full, full) == 0)
      return b->repos[i];
  return NULL;
}

static int64_t results_id(const struct repo *r, int64_t pr)
{
  size_t i;
  for (i = 0; i < r->nresults; i++)
    if (r->results[i].pr == pr)
      return r->results[i].id;
  return 0;
}

static void set_results_id(struct repo *r, int64_t pr, int64_t id)
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

/* ---- the outbox ---- */

static char *ob_path(const struct ccci_forgebot *b, uint64_t seq)
{
  return ccci_xasprintf("%s/%020llu.json", b->outbox_dir,
                        (unsigned long long)seq);
}

static void ob_append(struct ccci_forgebot *b, struct obx *o)
{
  if (b->ob_tail != NULL)
    b->ob_tail->next = o;
  else
    b->ob_head = o;
  b->ob_tail = o;
}

static void ob_written(struct ccci_forgebot *b, void *arg, int rc)
{
  (void)arg;
  (void)rc; /* kept in memory either way; a failed file is logged */
  ob_kick(b);
}

/* Queue a forge write @p j (taken), durably; a status replaces a waiting
 * one of the same commit and context. It is sent once its file is written. */
static void ob_push(struct ccci_forgebot *b, json_t *j)
{
  struct obx *o = ccci_xcalloc(1, sizeof(*o)), **pp;
  const char *kind = json_string_value(json_object_get(j, "kind"));
  char *text;

  /* The newest status of a commit and context wins: a waiting older one
   * (not the one being sent) is dropped. */
  for (pp = &b->ob_head;
       kind != NULL && strcmp(kind, "status") == 0 && *pp != NULL;) {
    struct obx *x = *pp;
    static const char *const keys[] = {"kind", "repo", "sha", "context"};
    bool same = !(x == b->ob_head && b->ob_busy);
    size_t i;
    for (i = 0; i < CCCI_ARRAY_LEN(keys) && same; i++)
      same = json_equal(json_object_get(x->j, keys[i]),
                        json_object_get(j, keys[i]));
    if (!same) {
      pp = &x->next;
      continue;
    }
    *pp = x->next;
    put_file(b, ob_path(b, x->seq), NULL, NULL, NULL);
    json_decref(x->j);
    free(x);
  }
  for (b->ob_tail = b->ob_head; b->ob_tail != NULL && b->ob_tail->next != NULL;)
    b->ob_tail = b->ob_tail->next;
  o->seq = ++b->ob_seq;
  o->j = j;
  text = json_dumps(j, JSON_COMPACT);
  ob_append(b, o);
  put_file(b, ob_path(b, o->seq), text, ob_written, NULL);
}

static void ob_sent(struct ccci_forgebot *b);

static void on_ob_response(struct ccci_forgebot *b, void *arg,
                           const struct ccci_httpc_response *resp)
{
  struct obx *o = arg;
  char why[160];
  if (b->stopping)
    return;
  if (ok_status(resp)) {
    const char *kind = json_string_value(json_object_get(o->j, "kind"));
    if (kind != NULL && strcmp(kind, "results") == 0 &&
        json_integer_value(json_object_get(o->j, "comment_id")) == 0) {
      /* Created: keep its id so later runs edit it. */
      struct ccci_forge_comment c;
      struct repo *r =
          repo_of(b, json_string_value(json_object_get(o->j, "repo")));
      if (r != NULL &&
          ccci_forge_parse_comment(resp->body, resp->body_len, &c, NULL) == 0) {
        set_results_id(r, json_integer_value(json_object_get(o->j, "pr")),
                       c.id);
        ccci_forge_comment_close(&c);
        state_save(r, NULL, NULL);
      }
    }
    b->n.sent++;
    ob_sent(b);
    return;
  }
  describe(why, sizeof(why), resp);
  b->n.send_errors++;
  /* A create whose answer was lost may have happened: look again for the
   * marker before the next try. */
  json_object_del(o->j, "searched");
  if (transient(resp)) {
    uint64_t wait = (uint64_t)OUTBOX_MIN_MS
                    << (b->ob_backoff < 9 ? b->ob_backoff : 9);
    wait = jitter(wait);
    if (wait > BACKOFF_MAX_MS)
      wait = BACKOFF_MAX_MS;
    if (resp->retry_after_s > 0 && (uint64_t)resp->retry_after_s * 1000u > wait)
      wait = (uint64_t)resp->retry_after_s * 1000u;
    b->ob_backoff++;
    ccci_warn("forge", "outbox: %s failed (%s); again in %llu ms",
              json_string_value(json_object_get(o->j, "kind")), why,
              (unsigned long long)wait);
    b->ob_busy = false;
    uv_timer_start(&b->ob_timer, on_ob_timer, wait, 0);
    return;
  }
  if (resp->status == 404 &&
      json_integer_value(json_object_get(o->j, "comment_id")) != 0) {
    /* The results comment is gone: post a new one. */
    json_object_set_new(o->j, "comment_id", json_integer(0));
    b->ob_busy = false;
    ob_kick(b);
    return;
  }
  ccci_error("forge", "outbox: %s refused by the forge (%s); dropped",
             json_string_value(json_object_get(o->j, "kind")), why);
  ob_sent(b);
}

/* The head entry is done (sent, or dropped as refused): next one. */
static void ob_sent(struct ccci_forgebot *b)
{
  struct obx *o = b->ob_head;
  b->ob_head = o->next;
  if (b->ob_head == NULL)
    b->ob_tail = NULL;
  b->ob_busy = false;
  b->ob_backoff = 0;
  put_file(b, ob_path(b, o->seq), NULL, NULL, NULL);
  json_decref(o->j);
  free(o);
  ob_kick(b);
}

/* The results comment of a PR whose id is not known: look for the bot's
 * comment with the marker before creating one. */
static void on_pr_comments(struct ccci_forgebot *b, void *arg,
                           const struct ccci_httpc_response *resp)
{
  struct obx *o = arg;
  struct ccci_forge_comment_list l;
  size_t i;
  int64_t found = 0;
  if (b->stopping)
    return;
  if (!ok_status(resp)) {
    on_ob_response(b, o, resp);
    return;
  }
  if (ccci_forge_parse_comments(resp->body, resp->body_len, &l, NULL) < 0) {
    /* A bad answer is tried again like a server error. */
    struct ccci_httpc_response bad = *resp;
    bad.status = 502;
    on_ob_response(b, o, &bad);
    return;
  }
  for (i = 0; i < l.n && found == 0; i++)
    if (b->bot != NULL && strcmp(l.items[i].user_login, b->bot) == 0 &&
        l.items[i].body != NULL &&
        ccci_forge_has_marker(l.items[i].body, strlen(l.items[i].body)))
      found = l.items[i].id;
  ccci_forge_comment_list_close(&l);
  json_object_set_new(o->j, "comment_id", json_integer(found));
  json_object_set_new(o->j, "searched", json_true());
  b->ob_busy = false;
  ob_kick(b);
}

static void ob_send(struct ccci_forgebot *b, struct obx *o)
{
  json_t *j = o->j;
  const char *kind = json_string_value(json_object_get(j, "kind"));
  const char *repo = json_string_value(json_object_get(j, "repo"));

  b->ob_busy = true;
  if (kind == NULL || repo == NULL) {
    ob_sent(b);
  } else if (strcmp(kind, "reaction") == 0) {
    call(b, "POST",
         ccci_xasprintf(
             "/repos/%s/issues/comments/%lld/reactions", repo,
             (long long)json_integer_value(json_object_get(j, "comment_id"))),
         json_pack("{s:s}", "content", "eyes"), on_ob_response, o);
  } else if (strcmp(kind, "status") == 0) {
    json_t *body =
        json_pack("{s:O,s:O,s:O}", "state", json_object_get(j, "state"),
                  "context", json_object_get(j, "context"), "description",
                  json_object_get(j, "description"));
    if (json_is_string(json_object_get(j, "target_url")))
      json_object_set(body, "target_url", json_object_get(j, "target_url"));
    call(b, "POST",
         ccci_xasprintf("/repos/%s/statuses/%s", repo,
                        json_string_value(json_object_get(j, "sha"))),
         body, on_ob_response, o);
  } else if (strcmp(kind, "reply") == 0) {
    call(
        b, "POST",
        ccci_xasprintf("/repos/%s/issues/%lld/comments", repo,
                       (long long)json_integer_value(json_object_get(j, "pr"))),
        json_pack("{s:O}", "body", json_object_get(j, "body")), on_ob_response,
        o);
  } else if (strcmp(kind, "results") == 0) {
    struct repo *r = repo_of(b, repo);
    int64_t pr = json_integer_value(json_object_get(j, "pr"));
    int64_t id = json_integer_value(json_object_get(j, "comment_id"));
    if (id == 0 && r != NULL)
      id = results_id(r, pr);
    if (id != 0) {
      json_object_set_new(j, "comment_id", json_integer(id));
      call(
          b, "PATCH",
          ccci_xasprintf("/repos/%s/issues/comments/%lld", repo, (long long)id),
          json_pack("{s:O}", "body", json_object_get(j, "body")),
          on_ob_response, o);
    } else if (!json_is_true(json_object_get(j, "searched"))) {
      call(
          b, "GET",
          ccci_xasprintf("/repos/%s/issues/%lld/comments", repo, (long long)pr),
          NULL, on_pr_comments, o);
    } else {
      call(
          b, "POST",
          ccci_xasprintf("/repos/%s/issues/%lld/comments", repo, (long long)pr),
          json_pack("{s:O}", "body", json_object_get(j, "body")),
          on_ob_response, o);
    }
  } else {
    ccci_error("forge", "outbox: unknown entry kind '%s'; dropped", kind);
    ob_sent(b);
  }
}

static void on_ob_timer(uv_timer_t *t)
{
  ob_kick(t->data);
}

static void ob_kick(struct ccci_forgebot *b)
{
  if (b->stopping || b->ob_busy || b->ob_head == NULL ||
      uv_is_active((uv_handle_t *)&b->ob_timer))
    return;
  ob_send(b, b->ob_head);
}

/* Entries an earlier daemon left, in their order. */
static void ob_load(struct ccci_forgebot *b)
{
  char **names = NULL;
  size_t n = 0, i;
  uv_fs_t req;
  uv_dirent_t de;
  if (uv_fs_scandir(NULL, &req, b->outbox_dir, 0, NULL) >= 0) {
    while (uv_fs_scandir_next(&req, &de) != UV_EOF) {
      size_t l = strlen(de.name);
      if (l > 5 && strcmp(de.name + l - 5, ".json") == 0) {
        names = ccci_xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = ccci_xstrdup(de.name);
      }
    }
  }
  uv_fs_req_cleanup(&req);
  /* scandir sorts; the names are zero-padded sequence numbers. */
  for (i = 0; i < n; i++) {
    char *path = ccci_xasprintf("%s/%s", b->outbox_dir, names[i]), *text = NULL;
    size_t len = 0;
    uint64_t seq = strtoull(names[i], NULL, 10);
    json_t *j = NULL;
    if (ccci_read_file(path, 1 << 20, &text, &len) == 0)
      j = json_loadb(text, len, 0, NULL);
    free(text);
    if (json_is_object(j) && seq > 0) {
      struct obx *o = ccci_xcalloc(1, sizeof(*o));
      o->seq = seq;
      o->j = j;
      ob_append(b, o);
      if (seq > b->ob_seq)
        b->ob_seq = seq;
    } else {
      ccci_warn("forge", "outbox: %s is damaged; removed", path);
      json_decref(j);
      unlink(path);
    }
    free(path);
    free(names[i]);
  }
  free(names);
  if (b->ob_head != NULL)
    ccci_info("forge", "outbox: %llu entries left by an earlier daemon",
              (unsigned long long)(b->ob_seq));
}

/* ---- reporting ---- */

static char *link_of(struct ccci_forgebot *b, const char *id)
{
  struct ccci_config *cfg = b->config(b->arg);
  char *url = NULL;
  if (cfg->http.public_url != NULL) {
    size_t l = strlen(cfg->http.public_url);
    url = ccci_xasprintf(
        "%.*s/runs/%s",
        (int)(l > 0 && cfg->http.public_url[l - 1] == '/' ? l - 1 : l),
        cfg->http.public_url, id);
  } else if (!b->warned_no_url) {
    b->warned_no_url = true;
    ccci_warn("forge", "http.public_url is not set: statuses and comments "
                       "carry no link to the log");
  }
  ccci_config_unref(cfg);
  return url;
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
  put_file(b, ccci_xasprintf("%s/%s", dir, name), ccci_xstrdup("1\n"), NULL,
           NULL);
}

static bool has_mark(const char *dir, const char *name)
{
  char *p = ccci_xasprintf("%s/%s", dir, name);
  bool yes = access(p, F_OK) == 0;
  free(p);
  return yes;
}

static void ack_run(struct ccci_forgebot *b, const struct ccci_run_meta *m,
                    const char *dir)
{
  json_t *cid = json_object_get(m->trigger, "comment_id");
  if (json_is_integer(cid))
    ob_push(b, json_pack("{s:s,s:s,s:O}", "kind", "reaction", "repo", m->repo,
                         "comment_id", cid));
  ob_push(b,
          status_entry(b, m->repo, m->sha, m->id, "pending", "ccci: queued"));
  mark_run(b, dir, "forge-acked");
}

/* A tier name from results.json, if it is a plain word (nothing else of the
 * harness's free text is posted). */
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

/* What results.json says that may be posted: the level (-1: none) and a
 * table of the tiers whose name and status are plain words. */
static int read_results(const char *dir, struct ccci_buf *tiers)
{
  char *path = ccci_xasprintf("%s/results.json", dir);
  struct ccci_results res;
  size_t i;
  int level, rc = 0;

  (void)ccci_results_read(path, &res); /* none or unreadable: no table */
  free(path);
  for (i = 0; i < res.ntiers && rc == 0; i++)
    if (plain_word(res.tiers[i].name) && plain_word(res.tiers[i].status))
      rc = ccci_buf_printf(tiers, "| %s | %s |\n", res.tiers[i].name,
                           res.tiers[i].status);
  level = res.level;
  ccci_results_clear(&res);
  return level;
}

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

struct newer {
  const struct ccci_run_meta *m;
  bool found;
};

static void find_newer(void *arg, const struct ccci_run_meta *o,
                       const char *dir)
{
  struct newer *n = arg;
  (void)dir;
  if (o->state != CCCI_RUN_FINISHED && o->pr == n->m->pr &&
      strcmp(o->repo, n->m->repo) == 0 && strcmp(o->id, n->m->id) > 0 &&
      is_forge_run(o))
    n->found = true;
}

static void report_run(struct ccci_forgebot *b, const struct ccci_run_meta *m,
                       const char *dir)
{
  struct newer newer = {m, false};
  struct ccci_buf tiers, body;
  const char *reason = ccci_run_reason_name(m->reason);
  const char *state = m->reason == CCCI_REASON_SUCCESS ? "success"
                      : m->reason == CCCI_REASON_FAILURE ||
                              m->reason == CCCI_REASON_DEPLOY_BUDGET
                          ? "failure"
                          : "error";
  char desc[64], lvl[24] = "", *url = link_of(b, m->id), *deploys = NULL, *text;
  long long secs = m->finished_at > m->started_at && m->started_at > 0
                       ? (long long)(m->finished_at - m->started_at)
                       : 0;
  int level, rc;
  size_t dl = 0;

  ccci_buf_init(&tiers, 64 * 1024);
  level = read_results(dir, &tiers);
  if (level >= 0 && m->reason == CCCI_REASON_SUCCESS)
    snprintf(desc, sizeof(desc), "ccci: level L%d", level);
  else
    snprintf(desc, sizeof(desc), "ccci: %s", reason ? reason : "error");
  /* A newer run of the PR is queued or running: its status stands. */
  ccci_runs_foreach(b->runs, find_newer, &newer);
  if (!newer.found)
    ob_push(b, status_entry(b, m->repo, m->sha, m->id, state, desc));
  {
    char *p = ccci_xasprintf("%s/state/deploys", dir);
    if (ccci_read_file(p, 64, &deploys, &dl) < 0)
      deploys = NULL;
    free(p);
  }
  ccci_buf_init(&body, 256 * 1024);
  if (level >= 0)
    snprintf(lvl, sizeof(lvl), ", level L%d", level);
  if (deploys != NULL)
    deploys[strcspn(deploys, " \t\r\n")] = '\0';
  rc = ccci_buf_printf(&body,
                       "%s\n**ccci** run `%s` of %.12s: **%s**%s\n\n"
                       "duration %lldm%02llds · deploys %s%s%s%s\n",
                       ccci_forge_marker(), m->id, m->sha,
                       reason ? reason : "?", lvl, secs / 60, secs % 60,
                       deploys != NULL && deploys[0] != '\0' ? deploys : "-",
                       url != NULL ? " · [log](" : "", url != NULL ? url : "",
                       url != NULL ? ")" : "");
  if (rc == 0 && tiers.len > 0)
    rc = ccci_buf_printf(&body, "\n| tier | result |\n|---|---|\n%s",
                         tiers.data);
  (void)rc;
  text = redacted(b, body.data != NULL ? body.data : "");
  ob_push(b,
          json_pack("{s:s,s:s,s:I,s:i,s:s}", "kind", "results", "repo", m->repo,
                    "pr", (json_int_t)m->pr, "comment_id", 0, "body", text));
  free(text);
  free(deploys);
  free(url);
  ccci_buf_close(&body);
  ccci_buf_close(&tiers);
  mark_run(b, dir, "forge-reported");
}

static void on_run_finished(void *arg, const struct ccci_run_meta *m,
                            const char *dir)
{
  struct ccci_forgebot *b = arg;
  if (!b->stopping && is_forge_run(m))
    report_run(b, m, dir);
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
      report_run(b, m, dir);
  } else if (!has_mark(dir, "forge-acked")) {
    ack_run(b, m, dir);
  }
}

/* ---- polling ---- */

static void on_repo_timer(uv_timer_t *t);

/* Poll @p r in @p ms. */
static void repo_next(struct repo *r, uint64_t ms)
{
  if (r->removed || r->b->stopping)
    return;
  r->due = uv_now(r->b->loop) + ms;
  uv_timer_start(&r->timer, on_repo_timer, ms, 0);
}

/* Poll @p r at @p at (loop time, not in the past), started at the first
 * slot boundary from there. */
static void repo_at(struct repo *r, uint64_t at, uint64_t interval_ms)
{
  uint64_t slot = interval_ms / 4, now = uv_now(r->b->loop), start;
  if (r->removed || r->b->stopping)
    return;
  if (slot > POLL_SLOT_MS)
    slot = POLL_SLOT_MS;
  start = slot > 1 ? (at + slot - 1) / slot * slot : at;
  r->due = at;
  uv_timer_start(&r->timer, on_repo_timer, start - now, 0);
}

/* The next regular poll: one interval after the last one was due (not
 * after it ended), so the period is the interval on average, each one
 * within a slot of it. */
static void repo_again(struct repo *r)
{
  struct ccci_config *cfg = r->b->config(r->b->arg);
  uint64_t iv = cfg->forge.poll_interval_ms, at = r->due + iv;
  uint64_t now = uv_now(r->b->loop);
  /* A poll that took longer than the interval (many pages, a slow forge)
   * is followed a whole interval later, never back to back. */
  if (at < now)
    at = now + iv;
  repo_at(r, at, iv);
  ccci_config_unref(cfg);
}

static void poll_failed(struct repo *r, const char *what,
                        const struct ccci_httpc_response *resp)
{
  struct ccci_config *cfg = r->b->config(r->b->arg);
  uint64_t wait = cfg->forge.poll_interval_ms;
  char why[160];
  unsigned k = r->backoff < 16 ? r->backoff : 16;
  ccci_config_unref(cfg);
  while (k-- > 0 && wait < BACKOFF_MAX_MS)
    wait *= 2;
  /* Jitter spreads the repos (within the cap); Retry-After is a floor,
   * never shortened. */
  wait = jitter(wait);
  if (wait > BACKOFF_MAX_MS)
    wait = BACKOFF_MAX_MS;
  if (resp != NULL && resp->retry_after_s > 0 &&
      (uint64_t)resp->retry_after_s * 1000u > wait)
    wait = (uint64_t)resp->retry_after_s * 1000u;
  r->backoff++;
  r->b->n.poll_errors++;
  if (resp != NULL)
    describe(why, sizeof(why), resp);
  else
    snprintf(why, sizeof(why), "%s", "bad answer");
  ccci_warn("forge", "%s: %s failed (%s); polling again in %llu ms", r->full,
            what, why, (unsigned long long)wait);
  ccci_forge_comment_list_close(&r->cand);
  r->busy = false;
  repo_next(r, wait);
}

static void poll_done(struct repo *r)
{
  size_t i, k = 0;
  if (r->max_updated > r->watermark) {
    r->watermark = r->max_updated;
    r->dirty = true;
  }
  for (i = 0; i < r->nseen; i++)
    if (r->seen[i].created >= r->watermark - SEEN_KEEP_S)
      r->seen[k++] = r->seen[i];
  r->dirty = r->dirty || k != r->nseen;
  r->nseen = k;
  ccci_forge_comment_list_close(&r->cand);
  r->busy = false;
  r->backoff = 0;
  r->b->n.polls++;
  /* An idle repo's poll writes nothing. */
  if (r->dirty)
    state_save(r, NULL, NULL);
  repo_again(r);
}

/* ---- the acceptance path ---- */

/* One comment on its way from "read" to a final verdict of the ledger: the
 * facts it asks for (the PR, the membership, the run) are looked up one
 * request at a time, and it is decided again with each. */
struct trig {
  struct ccci_forgebot *b;
  char *repo;
  struct ccci_forge_comment c; /* its strings copied; no body */
  enum ccci_forge_trigger kind;
  struct ccci_forge_pull pull;
  enum ccci_ledger_pull pull_fact;
  enum ccci_ledger_auth auth;
  enum ccci_ledger_run run;
  enum ccci_ledger_verdict verdict; /* accept or supersede, once decided */
  char id[CCCI_RUN_ID_MAX + 1];     /* the run it names */
  void (*cb)(void *arg, const struct ccci_forgebot_verdict *v);
  void *arg;
  struct trig *prev, *next; /* in b->trigs: freed at close if unanswered */
};

/* The comment's and the repo's facts (@p r NULL: not enrolled). */
static void case_of(const struct ccci_forgebot *b, const struct repo *r,
                    const struct ccci_forge_comment *c,
                    enum ccci_forge_trigger kind, struct ccci_ledger_case *lc)
{
  memset(lc, 0, sizeof(*lc));
  lc->created_at = c->created_at;
  lc->on_pr = c->on_pr && c->issue_number > 0;
  lc->trigger = kind != CCCI_FORGE_TRIGGER_NONE;
  lc->own = b->bot == NULL || strcmp(c->user_login, b->bot) == 0;
  lc->keep_s = SEEN_KEEP_S;
  if (r == NULL)
    return;
  lc->repo =
      r->enrolled ? CCCI_LEDGER_REPO_ENROLLED : CCCI_LEDGER_REPO_BASELINE;
  lc->seen = is_seen(r, c->id);
  lc->enrolled_at = r->enrolled_at;
  lc->watermark = r->watermark;
}

static char *replied_key(const char *login, int64_t pr)
{
  return ccci_xasprintf("%s#%lld", login, (long long)pr);
}

static bool has_replied(const struct repo *r, const char *key)
{
  size_t i;
  for (i = 0; i < r->nreplied; i++)
    if (strcmp(r->replied[i], key) == 0)
      return true;
  return false;
}

struct pending_of {
  const char *repo;
  int64_t pr;
  bool found;
};

static void find_pending(void *arg, const struct ccci_run_meta *m,
                         const char *dir)
{
  struct pending_of *p = arg;
  (void)dir;
  if (m->state == CCCI_RUN_QUEUED && m->pr == p->pr && m->repo != NULL &&
      strcmp(m->repo, p->repo) == 0)
    p->found = true;
}

static enum ccci_ledger_verdict judge(struct trig *t)
{
  struct ccci_forgebot *b = t->b;
  struct repo *r = repo_of(b, t->repo);
  struct ccci_ledger_case lc;

  case_of(b, r, &t->c, t->kind, &lc);
  lc.pull = t->pull_fact;
  lc.auth = t->auth;
  lc.run = t->run;
  if (r != NULL && t->pull_fact == CCCI_LEDGER_PULL_OPEN) {
    char *key = replied_key(t->c.user_login, t->pull.number);
    lc.replied = has_replied(r, key);
    free(key);
  }
  if (t->auth == CCCI_LEDGER_AUTH_YES && t->run == CCCI_LEDGER_RUN_NONE) {
    struct pending_of p = {t->repo, t->pull.number, false};
    ccci_runs_foreach(b->runs, find_pending, &p);
    lc.pr_pending = p.found;
  }
  return ccci_ledger_decide(&lc);
}

static void trig_free(struct trig *t)
{
  struct ccci_forgebot *b = t->b;
  if (t->prev != NULL)
    t->prev->next = t->next;
  else
    b->trigs = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  free(t->repo);
  ccci_forge_comment_close(&t->c);
  ccci_forge_pull_close(&t->pull);
  free(t);
}

/* A final verdict: a consumed comment id is seen from now on (saved with
 * the repo's state after its next poll; the run dir holds the truth of an
 * acceptance before that). */
static void settle(struct repo *r, const struct ccci_forge_comment *c,
                   enum ccci_ledger_verdict v)
{
  if (r != NULL && ccci_ledger_consumes(v))
    mark_seen(r, c->id, c->created_at);
}

/* Tell the caller and free @p t. */
static void trig_done(struct trig *t, enum ccci_ledger_verdict v,
                      const char *what, const struct ccci_httpc_response *resp)
{
  struct ccci_forgebot_verdict out;
  memset(&out, 0, sizeof(out));
  out.verdict = v;
  out.run_id = ccci_ledger_runs(v) || v == CCCI_LEDGER_DUPLICATE ? t->id : NULL;
  out.what = what;
  out.resp = resp;
  settle(repo_of(t->b, t->repo), &t->c, v);
  t->cb(t->arg, &out);
  trig_free(t);
}

static void trig_step(struct trig *t);

static void on_accepted(const char *id, const char *err, void *arg)
{
  struct trig *t = arg;
  struct ccci_forgebot *b = t->b;
  struct ccci_runs_view v;

  b->pending--;
  if (b->stopping) {
    trig_free(t); /* the comment is read again next time */
    maybe_freed(b);
    return;
  }
  if (id == NULL) {
    ccci_error("forge", "%s: cannot accept a run: %s", t->repo, err);
    t->run = CCCI_LEDGER_RUN_FAILED;
    trig_done(t, judge(t), "acceptance", NULL);
    return;
  }
  b->n.triggers++;
  if (ccci_runs_view(b->runs, id, &v) == 0) {
    json_t *tj = json_pack("{s:s,s:I}", "kind", "forge", "comment_id",
                           (json_int_t)t->c.id);
    struct ccci_run_meta m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", id);
    m.repo = t->repo;
    m.sha = t->pull.head_sha;
    m.pr = t->pull.number;
    m.trigger = tj;
    ack_run(b, &m, v.dir);
    json_decref(tj);
  }
  ccci_log(CCCI_LOG_INFO, "forge", id, "accepted: %s#%lld by %s at %.12s",
           t->repo, (long long)t->pull.number, t->c.user_login,
           t->pull.head_sha);
  trig_done(t, t->verdict, NULL, NULL);
}

/* Acceptance, durable before anything else: the run dir named after the
 * comment, so a comment read again finds it. */
static void take_trigger(struct trig *t, enum ccci_ledger_verdict verdict)
{
  struct ccci_forgebot *b = t->b;
  struct ccci_runs_forge f;
  char *err = NULL;
  int rc;

  memset(&f, 0, sizeof(f));
  f.id = t->id;
  f.repo = t->repo;
  f.pr = t->pull.number;
  f.sha = t->pull.head_sha;
  f.ref = t->pull.head_ref[0] != '\0' ? t->pull.head_ref : NULL;
  f.quick = t->kind == CCCI_FORGE_TRIGGER_TESTME_QUICK;
  f.trigger = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "kind", "forge", "repo",
                        t->repo, "pr", (json_int_t)t->pull.number, "comment_id",
                        (json_int_t)t->c.id, "commenter", t->c.user_login,
                        "comment_url", t->c.pull_request_url);
  t->verdict = verdict;
  rc = ccci_runs_accept(b->runs, &f, on_accepted, t, &err);
  json_decref(f.trigger);
  if (rc == 0) {
    b->pending++;
    return;
  }
  if (rc == -EEXIST) {
    t->run = CCCI_LEDGER_RUN_EXISTS; /* read again: accepted before */
  } else {
    ccci_error("forge", "%s: cannot accept a run: %s", t->repo, err);
    t->run = CCCI_LEDGER_RUN_FAILED;
  }
  free(err);
  trig_done(t, judge(t), "acceptance", NULL);
}

/* One polite reply per (user, PR), recorded before it is sent. */
static void reply_unauthorised(struct trig *t, enum ccci_ledger_verdict v)
{
  struct ccci_forgebot *b = t->b;
  struct repo *r = repo_of(b, t->repo);
  char *text;

  b->n.unauthorised++;
  ccci_info("forge", "%s#%lld: %s may not trigger runs%s", t->repo,
            (long long)t->pull.number, t->c.user_login,
            v == CCCI_LEDGER_ALREADY_TOLD ? " (already told)" : "");
  if (v == CCCI_LEDGER_NOT_AUTHORISED) {
    r->replied =
        ccci_xrealloc(r->replied, (r->nreplied + 1) * sizeof(*r->replied));
    r->replied[r->nreplied++] = replied_key(t->c.user_login, t->pull.number);
    /* Recorded before it is sent: the state file is written first. */
    state_save(r, NULL, NULL);
    text = ccci_xasprintf(
        "@%s thanks for asking, but only members of `%s` (or users on this "
        "CI's allowlist) can start test runs with `!testme`.",
        t->c.user_login, r->owner);
    ob_push(b, json_pack("{s:s,s:s,s:I,s:s}", "kind", "reply", "repo", t->repo,
                         "pr", (json_int_t)t->pull.number, "body", text));
    free(text);
  }
  trig_done(t, v, NULL, NULL);
}

static struct member *member_find(struct ccci_forgebot *b, const char *key)
{
  size_t i;
  for (i = 0; i < b->nmembers; i++)
    if (strcmp(b->members[i].key, key) == 0)
      return &b->members[i];
  return NULL;
}

static char *owner_of(const char *repo)
{
  return ccci_xstrndup(repo, strcspn(repo, "/"));
}

static void on_member(struct ccci_forgebot *b, void *arg,
                      const struct ccci_httpc_response *resp)
{
  struct trig *t = arg;
  struct ccci_config *cfg;
  struct member *m;
  char *owner, *key;
  if (b->stopping)
    return;
  owner = owner_of(t->repo);
  if (resp->error != 0 || (resp->status != 204 && resp->status != 404)) {
    if (resp->status == 303)
      ccci_error("forge",
                 "the membership check of %s in %s answered 303: the bot is "
                 "not a member of %s (a setup error: see docs/enroll.md)",
                 t->c.user_login, owner, owner);
    free(owner);
    t->auth = CCCI_LEDGER_AUTH_CANNOT_TELL;
    trig_done(t, judge(t), "the membership check", resp);
    return;
  }
  key = ccci_xasprintf("%s/%s", owner, t->c.user_login);
  free(owner);
  m = member_find(b, key);
  if (m == NULL) {
    b->members =
        ccci_xrealloc(b->members, (b->nmembers + 1) * sizeof(*b->members));
    m = &b->members[b->nmembers++];
    m->key = key;
  } else {
    free(key);
  }
  cfg = b->config(b->arg);
  m->yes = resp->status == 204;
  m->until_ms = uv_now(b->loop) + cfg->forge.auth_cache_ms;
  ccci_config_unref(cfg);
  t->auth = m->yes ? CCCI_LEDGER_AUTH_YES : CCCI_LEDGER_AUTH_NO;
  trig_step(t);
}

/* The allowlist, then a cached answer, else ask the owner org. */
static void authorise(struct trig *t)
{
  struct ccci_forgebot *b = t->b;
  struct ccci_config *cfg = b->config(b->arg);
  char *owner = owner_of(t->repo);
  char *key = ccci_xasprintf("%s/%s", owner, t->c.user_login);
  struct member *m = member_find(b, key);
  bool allowed = false;
  size_t i;
  for (i = 0; i < cfg->forge.allowlist.n && !allowed; i++)
    allowed = strcmp(cfg->forge.allowlist.v[i], t->c.user_login) == 0;
  ccci_config_unref(cfg);
  free(key);
  if (allowed || (m != NULL && m->yes && m->until_ms > uv_now(b->loop))) {
    t->auth = CCCI_LEDGER_AUTH_YES;
  } else if (m != NULL && !m->yes && m->until_ms > uv_now(b->loop)) {
    t->auth = CCCI_LEDGER_AUTH_NO;
  } else {
    call(b, "GET",
         ccci_xasprintf("/orgs/%s/members/%s", owner, t->c.user_login), NULL,
         on_member, t);
    free(owner);
    return;
  }
  free(owner);
  trig_step(t);
}

static void on_pull(struct ccci_forgebot *b, void *arg,
                    const struct ccci_httpc_response *resp)
{
  struct trig *t = arg;
  char *err = NULL;
  if (b->stopping)
    return;
  ccci_forge_pull_close(&t->pull);
  if (resp->status == 404 && resp->error == 0) {
    t->pull_fact = CCCI_LEDGER_PULL_MISSING;
  } else if (!ok_status(resp) ||
             ccci_forge_parse_pull(resp->body, resp->body_len, &t->pull, &err) <
                 0) {
    if (err != NULL)
      ccci_warn("forge", "%s: the pull request answer: %s", t->repo, err);
    free(err);
    t->pull_fact = CCCI_LEDGER_PULL_FAILED;
    trig_done(t, judge(t), "reading a pull request",
              ok_status(resp) ? NULL : resp);
    return;
  } else {
    t->pull_fact = t->pull.state == CCCI_FORGE_PR_OPEN
                       ? CCCI_LEDGER_PULL_OPEN
                       : CCCI_LEDGER_PULL_CLOSED;
  }
  trig_step(t);
}

/* Look up the fact the ledger asks for, or carry its verdict out. */
static void trig_step(struct trig *t)
{
  enum ccci_ledger_verdict v = judge(t);
  switch (v) {
  case CCCI_LEDGER_NEED_PULL:
    call(t->b, "GET",
         ccci_xasprintf("/repos/%s/pulls/%lld", t->repo,
                        (long long)t->c.issue_number),
         NULL, on_pull, t);
    break;
  case CCCI_LEDGER_NEED_AUTH:
    authorise(t);
    break;
  case CCCI_LEDGER_NOT_AUTHORISED:
  case CCCI_LEDGER_ALREADY_TOLD:
    reply_unauthorised(t, v);
    break;
  case CCCI_LEDGER_ACCEPT:
  case CCCI_LEDGER_SUPERSEDE:
    take_trigger(t, v);
    break;
  default:
    trig_done(t, v, NULL, NULL);
    break;
  }
}

static enum ccci_forge_trigger kind_of(const struct ccci_forge_comment *c)
{
  return c->body != NULL ? ccci_forge_trigger(c->body, strlen(c->body))
                         : CCCI_FORGE_TRIGGER_NONE;
}

/* The ledger's verdict on the comment and the repo's ledger alone; a final
 * one is settled here. */
static enum ccci_ledger_verdict first_look(struct ccci_forgebot *b,
                                           struct repo *r,
                                           const struct ccci_forge_comment *c)
{
  struct ccci_ledger_case lc;
  enum ccci_ledger_verdict v;

  case_of(b, r, c, kind_of(c), &lc);
  v = b->stopping ? CCCI_LEDGER_RETRY : ccci_ledger_decide(&lc);
  if (v != CCCI_LEDGER_NEED_PULL)
    settle(r, c, v);
  return v;
}

enum ccci_ledger_verdict ccci_forgebot_accept_trigger(
    struct ccci_forgebot *b, const char *repo,
    const struct ccci_forge_comment *c,
    void (*cb)(void *arg, const struct ccci_forgebot_verdict *v), void *arg)
{
  enum ccci_ledger_verdict v = first_look(b, repo_of(b, repo), c);
  struct trig *t;
  char stamp[24];
  struct tm tm;
  time_t ct = (time_t)c->created_at;

  if (v != CCCI_LEDGER_NEED_PULL)
    return v;
  t = ccci_xcalloc(1, sizeof(*t));
  t->b = b;
  t->repo = ccci_xstrdup(repo);
  t->c.id = c->id;
  t->c.user_login = ccci_xstrdup(c->user_login);
  t->c.user_id = c->user_id;
  t->c.pull_request_url = ccci_xstrdup(c->pull_request_url);
  t->c.issue_url = ccci_xstrdup(c->issue_url);
  t->c.created_at = c->created_at;
  t->c.updated_at = c->updated_at;
  t->c.issue_number = c->issue_number;
  t->c.on_pr = c->on_pr;
  t->kind = kind_of(c);
  /* The run id is derived from the comment: replaying it is idempotent. */
  gmtime_r(&ct, &tm);
  strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  snprintf(t->id, sizeof(t->id), "%s-c%lld", stamp, (long long)c->id);
  t->cb = cb;
  t->arg = arg;
  t->next = b->trigs;
  if (b->trigs != NULL)
    b->trigs->prev = t;
  b->trigs = t;
  trig_step(t);
  return v;
}

/* ---- the poll's candidates ---- */

static void poll_next_candidate(struct repo *r);

static void on_candidate(void *arg, const struct ccci_forgebot_verdict *v)
{
  struct repo *r = arg;
  if (v->verdict == CCCI_LEDGER_RETRY) {
    poll_failed(r, v->what, v->resp);
    return;
  }
  r->next++;
  poll_next_candidate(r);
}

/* The comments that may trigger, one at a time through the acceptance
 * path; the watermark advances only after all of them. */
static void poll_next_candidate(struct repo *r)
{
  for (; r->next < r->cand.n; r->next++)
    if (ccci_forgebot_accept_trigger(r->b, r->full, &r->cand.items[r->next],
                                     on_candidate, r) == CCCI_LEDGER_NEED_PULL)
      return;
  poll_done(r);
}

static void get_page(struct repo *r);

/* The first poll read every page: the last page's Date is the enrolment
 * time and the watermark, so every comment it returned was made by then
 * and a comment it did not return counts. */
static void enrol(struct repo *r, int64_t date)
{
  r->enrolled = true;
  r->watermark = r->enrolled_at = date;
  ccci_info("forge", "%s: enrolled; comments from %lld on count", r->full,
            (long long)date);
  r->max_updated = r->watermark;
  r->dirty = true;
  poll_done(r);
}

static void on_comments(struct ccci_forgebot *b, void *arg,
                        const struct ccci_httpc_response *resp)
{
  struct repo *r = arg;
  struct ccci_forge_comment_list l;
  char *err = NULL;
  size_t i;
  if (b->stopping)
    return;
  if (!ok_status(resp)) {
    poll_failed(r, "listing comments", resp);
    return;
  }
  if (!r->enrolled && resp->date <= 0) {
    poll_failed(r, "the first poll (no Date header)", NULL);
    return;
  }
  if (ccci_forge_parse_comments(resp->body, resp->body_len, &l, &err) < 0) {
    ccci_warn("forge", "%s: the comments answer: %s", r->full, err);
    free(err);
    poll_failed(r, "listing comments", NULL);
    return;
  }
  for (i = 0; i < l.n; i++) {
    struct ccci_forge_comment *c = &l.items[i];
    if (c->updated_at > r->max_updated)
      r->max_updated = c->updated_at;
    /* The first poll's comments all predate enrolment, even one made in
     * the second of its Date: the ledger calls them baseline. */
    if (first_look(b, r, c) != CCCI_LEDGER_NEED_PULL)
      continue;
    /* Moved into the candidates (the list keeps ownership otherwise). */
    r->cand.items =
        ccci_xrealloc(r->cand.items, (r->cand.n + 1) * sizeof(*r->cand.items));
    r->cand.items[r->cand.n++] = *c;
    memset(c, 0, sizeof(*c));
  }
  i = l.n;
  r->fetched += i;
  ccci_forge_comment_list_close(&l);
  /* A full page, or fewer than the forge counts (a server whose page is
   * smaller than ours): there is more. */
  if (i >= PAGE || (i > 0 && resp->total_count > 0 &&
                    r->fetched < (size_t)resp->total_count)) {
    r->page++;
    get_page(r);
    return;
  }
  if (!r->enrolled) {
    enrol(r, resp->date);
    return;
  }
  r->next = 0;
  poll_next_candidate(r);
}

/* One page of the comments listing; the first poll has no watermark yet
 * and reads them all. */
static void get_page(struct repo *r)
{
  char since[32];
  if (!r->enrolled) {
    call(r->b, "GET",
         ccci_xasprintf("/repos/%s/issues/comments?limit=%d&page=%u", r->full,
                        PAGE, r->page),
         NULL, on_comments, r);
    return;
  }
  ccci_forge_format_time(r->watermark - OVERLAP_S, since);
  call(r->b, "GET",
       ccci_xasprintf("/repos/%s/issues/comments?since=%s&limit=%d&page=%u",
                      r->full, since, PAGE, r->page),
       NULL, on_comments, r);
}

static void on_repo_timer(uv_timer_t *t)
{
  struct repo *r = ccci_container_of(t, struct repo, timer);
  if (r->busy || r->b->stopping)
    return;
  if (r->b->bot == NULL) {
    repo_next(r, 1000); /* the bot's login comes first */
    return;
  }
  r->busy = true;
  r->page = 1;
  r->fetched = 0;
  r->max_updated = r->watermark;
  memset(&r->cand, 0, sizeof(r->cand));
  get_page(r);
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
  maybe_freed(b);
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
  repo_at(r, uv_now(b->loop) + phase, interval_ms);
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
    if (repo_of(b, cfg->forge.repos.v[k]) == NULL)
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
    describe(why, sizeof(why), resp);
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
  if (!ok_status(resp) ||
      ccci_forge_parse_user(resp->body, resp->body_len, &u, &err) < 0) {
    describe(why, sizeof(why), resp);
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
    call(b, "GET", ccci_xasprintf("/orgs/%s/members/%s", orgs[k], b->bot), NULL,
         on_bot_member, orgs[k]);
  free(orgs);
}

static void check_start(struct ccci_forgebot *b)
{
  if (!b->stopping)
    call(b, "GET", ccci_xstrdup("/user"), NULL, on_user, NULL);
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
  ob_load(b);
  ccci_runs_foreach(b->runs, catch_up, b);
  ccci_runs_on_finish(b->runs, on_run_finished, b);
  repos_sync(b);
  check_start(b);
  ob_kick(b);
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

json_t *ccci_forgebot_counters(struct ccci_forgebot *b)
{
  size_t backlog = 0;
  struct obx *o;
  for (o = b->ob_head; o != NULL; o = o->next)
    backlog++;
  return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "forge_polls",
                   (json_int_t)b->n.polls, "forge_poll_errors",
                   (json_int_t)b->n.poll_errors, "forge_requests",
                   (json_int_t)b->n.requests, "forge_triggers",
                   (json_int_t)b->n.triggers, "forge_unauthorised",
                   (json_int_t)b->n.unauthorised, "outbox_backlog",
                   (json_int_t)backlog, "outbox_sent", (json_int_t)b->n.sent,
                   "outbox_errors", (json_int_t)b->n.send_errors);
}

void ccci_forgebot_problems(struct ccci_forgebot *b, json_t *problems)
{
  if (b->check_error != NULL)
    json_array_append_new(problems, json_string(b->check_error));
}

static void maybe_freed(struct ccci_forgebot *b)
{
  struct obx *o;
  void (*done)(void *);
  void *arg;
  if (!b->stopping || b->pending > 0 || b->handles > 0 || b->http != NULL ||
      ccci_fileq_busy(&b->files))
    return;
  while (b->reqs != NULL) {
    struct req *q = b->reqs;
    b->reqs = q->next;
    free(q);
  }
  while (b->trigs != NULL)
    trig_free(b->trigs);
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
  maybe_freed(b);
}

static void on_bot_handle_closed(uv_handle_t *h)
{
  struct ccci_forgebot *b = h->data;
  b->handles--;
  maybe_freed(b);
}

void ccci_forgebot_free(struct ccci_forgebot *b, void (*done)(void *arg),
                        void *arg)
{
  size_t i;
  struct ccci_httpc *http = b->http;
  b->stopping = true;
  b->done = done;
  b->done_arg = arg;
  ccci_runs_on_finish(b->runs, NULL, NULL);
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
