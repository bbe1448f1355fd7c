/* The forge bot's acceptance path: one comment, read by poll or by hook,
 * through the trigger ledger's decision (ledger.h) to a run or a refusal
 * (docs/forge.md, "From comment to run"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccci/core/log.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/ledger.h"
#include "ccci/forge/trigger.h"
#include "ccci/harness/meta.h"
#include "ccci/runs/runs.h"
#include "forgebot_int.h"

/* The recipe's placement keys are read from this file at the pinned head. */
#define RECIPE_META "tests/recipe_meta.yml"

/* One comment on its way from "read" to a final verdict of the ledger: the
 * facts it asks for (the PR, the membership, the run) are looked up one
 * request at a time, and it is decided again with each. An accepted one
 * reads the head's tests/recipe_meta.yml before its run is written. */
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
  bool meta_read;                   /* the head's recipe_meta.yml was asked */
  char *meta;                       /* its text, NULL: none */
  size_t meta_len;
  char id[CCCI_RUN_ID_MAX + 1]; /* the run it names */
  void (*cb)(void *arg, const struct ccci_forgebot_verdict *v);
  void *arg;
  struct ccci_list link; /* in b->trigs: freed at close if unanswered */
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
  lc->own = b->bot != NULL && strcmp(c->user_login, b->bot) == 0;
  lc->keep_s = SEEN_KEEP_S;
  if (r == NULL)
    return;
  lc->repo =
      r->enrolled ? CCCI_LEDGER_REPO_ENROLLED : CCCI_LEDGER_REPO_BASELINE;
  lc->seen = fb_is_seen(r, c->id);
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
  struct repo *r = fb_repo_of(b, t->repo);
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
  ccci_list_remove(&t->link);
  free(t->repo);
  ccci_forge_comment_close(&t->c);
  ccci_forge_pull_close(&t->pull);
  free(t->meta);
  free(t);
}

/* A final verdict: a consumed comment id is seen from now on (saved with
 * the repo's state after its next poll; the run dir holds the truth of an
 * acceptance before that). */
static void settle(struct repo *r, const struct ccci_forge_comment *c,
                   enum ccci_ledger_verdict v)
{
  if (r != NULL && ccci_ledger_consumes(v))
    fb_mark_seen(r, c->id, c->created_at);
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
  settle(fb_repo_of(t->b, t->repo), &t->c, v);
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
    fb_maybe_freed(b);
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
    fb_ack_run(b, &m, v.dir);
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
  f.recipe_meta = t->meta;
  f.recipe_meta_len = t->meta_len;
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
  struct repo *r = fb_repo_of(b, t->repo);
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
    fb_state_save(r, NULL, NULL);
    text = ccci_xasprintf(
        "@%s thanks for asking, but only members of `%s` (or users on this "
        "CI's allowlist) can start test runs with `!testme`.",
        t->c.user_login, r->owner);
    fb_ob_push(b,
               json_pack("{s:s,s:s,s:I,s:s}", "kind", "reply", "repo", t->repo,
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
    fb_call(b, "GET",
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
  } else if (!fb_ok_status(resp) ||
             ccci_forge_parse_pull(resp->body, resp->body_len, &t->pull, &err) <
                 0) {
    if (err != NULL)
      ccci_warn("forge", "%s: the pull request answer: %s", t->repo, err);
    free(err);
    t->pull_fact = CCCI_LEDGER_PULL_FAILED;
    trig_done(t, judge(t), "reading a pull request",
              fb_ok_status(resp) ? NULL : resp);
    return;
  } else {
    t->pull_fact = t->pull.state == CCCI_FORGE_PR_OPEN
                       ? CCCI_LEDGER_PULL_OPEN
                       : CCCI_LEDGER_PULL_CLOSED;
  }
  trig_step(t);
}

static void on_meta(struct ccci_forgebot *b, void *arg,
                    const struct ccci_httpc_response *resp)
{
  struct trig *t = arg;
  if (b->stopping)
    return;
  if (resp->status == 404 && resp->error == 0) {
    t->meta_read = true; /* the recipe has none: placed anywhere */
  } else if (!fb_ok_status(resp)) {
    /* As a failed PR lookup: nothing is recorded, the comment is read
     * again after the poll's backoff (a hook answers 503). */
    trig_done(t, CCCI_LEDGER_RETRY, "reading " RECIPE_META, resp);
    return;
  } else {
    /* A file past the recipe_meta.yml limit is passed cut one byte past
     * it, so the placement refuses it as too large, the run is placed
     * anywhere and its note says why (the harness refuses the same file
     * at setup, ccci_meta_load). */
    t->meta_len = resp->body_len;
    if (t->meta_len > CCCI_META_MAX_BYTES) {
      ccci_warn(
          "forge",
          "%s#%lld: " RECIPE_META " at %.12s is %zu bytes, over the "
          "%u bytes a recipe_meta.yml may have: the run is placed anywhere",
          t->repo, (long long)t->pull.number, t->pull.head_sha, resp->body_len,
          (unsigned)CCCI_META_MAX_BYTES);
      t->meta_len = CCCI_META_MAX_BYTES + 1;
    }
    t->meta = ccci_xmalloc(t->meta_len + 1);
    memcpy(t->meta, resp->body, t->meta_len);
    t->meta[t->meta_len] = '\0';
    t->meta_read = true;
  }
  trig_step(t);
}

/* The recipe's tests/recipe_meta.yml at the pinned head (its placement
 * keys), through the bot's client and its limits. */
static void read_meta(struct trig *t)
{
  fb_get_file(t->b,
              ccci_xasprintf("/repos/%s/raw/" RECIPE_META "?ref=%s", t->repo,
                             t->pull.head_sha),
              on_meta, t);
}

/* Look up the fact the ledger asks for, or carry its verdict out. */
static void trig_step(struct trig *t)
{
  enum ccci_ledger_verdict v = judge(t);
  switch (v) {
  case CCCI_LEDGER_NEED_PULL:
    fb_call(t->b, "GET",
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
    /* Decided again once the file is read: the facts are current then. */
    if (!t->meta_read)
      read_meta(t);
    else
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
enum ccci_ledger_verdict fb_first_look(struct ccci_forgebot *b, struct repo *r,
                                       const struct ccci_forge_comment *c)
{
  struct ccci_ledger_case lc;
  enum ccci_ledger_verdict v;

  case_of(b, r, c, kind_of(c), &lc);
  /* Until the self-check knows the bot's login, its own comments cannot be
   * told apart (the poll waits for it; a hook may come before). */
  v = b->stopping || b->bot == NULL ? CCCI_LEDGER_RETRY
                                    : ccci_ledger_decide(&lc);
  if (v != CCCI_LEDGER_NEED_PULL)
    settle(r, c, v);
  return v;
}

enum ccci_ledger_verdict ccci_forgebot_accept_trigger(
    struct ccci_forgebot *b, const char *repo,
    const struct ccci_forge_comment *c,
    void (*cb)(void *arg, const struct ccci_forgebot_verdict *v), void *arg)
{
  enum ccci_ledger_verdict v = fb_first_look(b, fb_repo_of(b, repo), c);
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
  ccci_list_add_tail(&b->trigs, &t->link);
  trig_step(t);
  return v;
}

void fb_trigs_free(struct ccci_forgebot *b)
{
  struct ccci_list *it, *nx;
  ccci_list_foreach_safe(it, nx, &b->trigs)
  {
    trig_free(ccci_container_of(it, struct trig, link));
  }
}
