/* The daemon's runs: their directories under <state_dir>/runs, the queue,
 * admission, the run lifecycle from start to a finished meta.json, cancel,
 * and the daemon's stop. */
#include "ccci/runs/runs.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ccci/core/fileq.h"
#include "ccci/core/log.h"
#include "ccci/logs/logstore.h"
#include "ccci/logs/redact.h"
#include "ccci/logs/secrets.h"
#include "ccci/runs/domlock.h"
#include "ccci/runs/env.h"
#include "ccci/runs/janitor.h"
#include "ccci/runs/outcome.h"
#include "ccci/runs/pool.h"
#include "ccci/runs/probe.h"
#include "ccci/runs/recipe.h"
#include "ccci/runs/results.h"
#include "ccci/runs/retention.h"
#include "ccci/runs/run.h"
#include "ccci/runs/runner.h"
#include "ccci/runs/sched.h"
#include "ccci/runs/supervise.h"

/* Admission is retried this often while something blocks it. */
#define RETRY_MS 5000
/* Probing a domain lock held outside the daemon: 10 ms growing to 1 s. */
#define PROBE_MIN_MS 10
#define PROBE_MAX_MS 1000
/* A failed teardown is tried again this many times, 10 s, 20 s, ... apart. */
#define TEARDOWN_TRIES 5
#define TEARDOWN_RETRY_MS 10000

/* PH_TD_WAIT: a teardown failed and waits for its next try. */
enum phase { PH_IDLE, PH_PREP, PH_MAIN, PH_TEARDOWN, PH_TD_WAIT };

/* A look at the secret files (SPEC section 7), on the thread pool: the
 * daemon's set is kept when the files' fingerprint (path, inode, mtime,
 * size) is unchanged, else they are read again and a set is built when the
 * values changed. */
struct secload {
  /* in: the daemon's set when the look began, and its fingerprint */
  struct ccci_config *cfg;
  struct ccci_redact_set *known;
  char *known_fp;
  /* out */
  struct ccci_redact_set *set;
  char *fp;      /* the fingerprint seen (NULL: unchanged) */
  bool new_set;  /* a set was built: the values changed */
  char *err;     /* a file cannot be read: fail closed */
  char **shorts; /* files whose value is shorter than min_secret_len */
  size_t nshorts;
};

struct run {
  struct ccci_runs *rs;
  struct ccci_run_meta m;
  char *dir;
  bool queued;  /* waiting for admission (queued or waiting-lock) */
  uint64_t seq; /* its place in rs->all, kept by the queue */
  enum phase phase;
  bool cancel_req, daemon_stop;
  int lock_fd;   /* the domain lock while the daemon holds it, or -1 */
  bool detached; /* another instance's run whose supervisor holds the lock */
  bool stuck;    /* ... past its whole budget */
  bool orphan;   /* taken over by the janitor (teardown, then finished) */
  enum ccci_run_reason adopt; /* the reason an orphan finishes with */
  unsigned td_tries;          /* teardowns tried */
  uint64_t td_next_ms;        /* PH_TD_WAIT: when to try again */
  struct ccci_config *cfg;
  struct ccci_redact_set *secrets;
  bool sec_wait;     /* admitted, waiting for the look at the secrets */
  uint64_t sec_need; /* the look it waits for (rs->looks_started + 1) */
  struct ccci_logstore *logs;
  struct ccci_logstore *closing_logs; /* being closed: still readable */
  struct ccci_runner *runner;
  struct ccci_runner_result res;
  enum ccci_run_reason reason;
  uv_work_t work;
  /* The end of the harness, read on the thread pool (end_work). */
  struct ccci_outcome_case end_case;
  struct ccci_results end_results; /* kept for the finish observers */
  bool end_read;                   /* end_results holds what was read */
  int end_exit, end_signal;
  /* state/server as read at the end: 1 read, 0 none, -1 malformed */
  int end_srv_state;
  const char *end_srv_why;
  struct ccci_outcome_server end_srv;
  /* meta.json: written on the thread pool, one write at a time, the newest
   * record replacing one still waiting. */
  struct ccci_fileq meta_q;
  uint64_t meta_failed; /* the write whose failure was logged (meta_q.done) */
  char *prep_err;
  char **env;
  /* The pool server whose slot it holds (a copy of the name), or NULL. */
  char *slot_server;
  /* meta.json records with its placement not on disk yet: the harness
   * starts only once none is (SPEC section 12), and none failed. */
  unsigned place_pending;
  int place_rc;
  bool prep_ready;     /* prepared, waiting for the placement record */
  bool prep_cancelled; /* its prep was cancelled (the daemon stops) */
  char *place_err;     /* recipe_meta.yml's placement could not be read */
};

/* A domain line: the runs whose domain has this first DNS label, whatever
 * their server's suffix (SPEC section 12). */
struct dom {
  char *name;        /* the label */
  struct run *owner; /* running, tearing down or detached on it */
  uint64_t backoff_ms, next_probe_ms; /* for a lock held outside */
};

struct number {
  char *repo;
  uint64_t n;
};

struct ccci_runs {
  uv_loop_t *loop;
  char *state_dir, *runs_dir, *instance, *self_exe;
  struct ccci_config *(*config)(void *arg);
  void *arg;
  struct run **all;
  size_t nall;
  uint64_t next_seq;
  /* The queued runs in rs->all's order (seq): what a decision looks at. */
  struct run **q;
  size_t nq;
  /* Domains with a run in the daemon (holding or waiting for it). */
  struct dom **doms;
  size_t ndoms;
  char *locks_dir;
  char *rr_repo;   /* the repo the last admission served (round-robin) */
  unsigned active; /* runs holding a slot (until their logs are closed) */
  unsigned saving; /* meta.json records not on disk yet, a look at the
                    * secrets, a retention job: a stop waits for them */
  bool retention_busy;
  void (*observer)(void *arg, const char *id);
  void *observer_arg;
  struct ccci_list finish_observers; /* ccci_runs_finish_observer.link */
  struct ccci_list *finish_next;     /* the next one told, while telling */
  bool draining, stopping;
  uint64_t last_id_ms;
  struct number *numbers;
  size_t nnumbers;
  char **reported; /* short secrets already reported, by file */
  size_t nreported;
  uv_timer_t retry, grace, lock_timer, janitor, td_timer;
  unsigned timers_open;
  char *problem;    /* what blocks admission, for status */
  bool secrets_bad; /* the last look at the secrets failed */
  uint64_t redacted_bytes, redacted_masks; /* through the runners */
  uint64_t janitor_acts[CCCI_JANITOR_VERDICT_COUNT];
  struct ccci_redact_set *secrets; /* the newest secrets seen */
  char *secrets_fp;                /* the fingerprint of their files */
  /* The look at the secret files (at start, on SIGHUP, and for the runs
   * admitted), one at a time; a request meanwhile queues one more. */
  uv_work_t refresh_work;
  struct secload refresh;
  bool refresh_busy, refresh_again;
  uint64_t looks_started; /* looks queued so far; the one in flight is this */
  /* The pool of servers, merged from pool_cfg (the config it follows). */
  struct ccci_pool pool;
  struct ccci_config *pool_cfg;
  bool pool_explicit; /* `servers:` is set: placement counts */
  char *rr_server;    /* the server the last admission chose */
  char *pool_path;    /* <state_dir>/servers.json */
  struct ccci_fileq pool_q;
  unsigned pool_saving; /* servers.json writes not done */
  uv_timer_t probe_timer;
  struct ccci_list probes; /* struct probe_run.link */
  unsigned probing;        /* probes whose process is not gone */
  int (*placement)(void *arg, const struct ccci_config *cfg, const char *recipe,
                   const char *own_path, const char *own_text, size_t own_len,
                   struct ccci_strlist *servers, struct ccci_strlist *labels,
                   char **err);
  void (*stop_done)(void *);
  void *stop_arg;
};

static void admit(struct ccci_runs *rs);
static void finish(struct run *r);

/* Tell the finish observers, in the order they came; a call may remove
 * any of them (the walk's next one is moved on by the removal). */
static void tell_finished(struct ccci_runs *rs, const struct run *r)
{
  struct ccci_list *it = rs->finish_observers.next;
  while (it != &rs->finish_observers) {
    struct ccci_runs_finish_observer *o =
        ccci_container_of(it, struct ccci_runs_finish_observer, link);
    rs->finish_next = it->next;
    o->fn(o->arg, &r->m, r->dir, r->end_read ? &r->end_results : NULL);
    it = rs->finish_next;
  }
  rs->finish_next = NULL;
}

/* ---- helpers ---- */

/* Append to a buffer without a cap that matters (SIZE_MAX). */
static void buf_add(struct ccci_buf *b, const void *p, size_t n)
{
  if (ccci_buf_append(b, p, n) < 0)
    return; /* out of room: the text is cut */
}

static char *unplaceable_note(const struct ccci_runs *rs, const struct run *r);

static struct run *find(struct ccci_runs *rs, const char *id)
{
  size_t i;
  for (i = 0; i < rs->nall; i++)
    if (strcmp(rs->all[i]->m.id, id) == 0)
      return rs->all[i];
  return NULL;
}

static void add_run(struct ccci_runs *rs, struct run *r)
{
  rs->all = ccci_xrealloc(rs->all, (rs->nall + 1) * sizeof(*rs->all));
  rs->all[rs->nall++] = r;
  r->seq = rs->next_seq++;
}

static uint64_t next_number(struct ccci_runs *rs, const char *repo,
                            uint64_t seen)
{
  size_t i;
  for (i = 0; i < rs->nnumbers; i++) {
    if (strcmp(rs->numbers[i].repo, repo) == 0) {
      if (seen != 0) {
        if (seen > rs->numbers[i].n)
          rs->numbers[i].n = seen;
        return seen;
      }
      return ++rs->numbers[i].n;
    }
  }
  rs->numbers =
      ccci_xrealloc(rs->numbers, (rs->nnumbers + 1) * sizeof(*rs->numbers));
  rs->numbers[rs->nnumbers].repo = ccci_xstrdup(repo);
  rs->numbers[rs->nnumbers].n = seen != 0 ? seen : 1;
  return rs->numbers[rs->nnumbers++].n;
}

/* The position of seq @p seq in the queue (where it is or would go). */
static size_t queue_pos(const struct ccci_runs *rs, uint64_t seq)
{
  size_t lo = 0, hi = rs->nq;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rs->q[mid]->seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The queue is the runs in rs->all's (creation) order with `queued` set,
 * kept as its own array so a decision costs the queue, not the history. */
static void enqueue(struct run *r)
{
  struct ccci_runs *rs = r->rs;
  size_t i;
  if (r->queued)
    return;
  r->queued = true;
  i = queue_pos(rs, r->seq);
  rs->q = ccci_xrealloc(rs->q, (rs->nq + 1) * sizeof(*rs->q));
  memmove(&rs->q[i + 1], &rs->q[i], (rs->nq - i) * sizeof(*rs->q));
  rs->q[i] = r;
  rs->nq++;
}

static void dequeue(struct run *r)
{
  struct ccci_runs *rs = r->rs;
  size_t i;
  if (!r->queued)
    return;
  r->queued = false;
  i = queue_pos(rs, r->seq);
  memmove(&rs->q[i], &rs->q[i + 1], (rs->nq - i - 1) * sizeof(*rs->q));
  rs->nq--;
}

/* The length of @p domain's first DNS label (its line's key). */
static size_t label_len(const char *domain)
{
  return strcspn(domain, ".");
}

/* The index of the line of domain @p domain in rs->doms (added when new). */
static size_t dom_index(struct ccci_runs *rs, const char *domain)
{
  size_t i, n = label_len(domain);
  for (i = 0; i < rs->ndoms; i++)
    if (strncmp(rs->doms[i]->name, domain, n) == 0 &&
        rs->doms[i]->name[n] == '\0')
      return i;
  rs->doms = ccci_xrealloc(rs->doms, (rs->ndoms + 1) * sizeof(*rs->doms));
  rs->doms[rs->ndoms] = ccci_xcalloc(1, sizeof(struct dom));
  rs->doms[rs->ndoms]->name = ccci_xstrndup(domain, n);
  return rs->ndoms++;
}

static struct dom *dom_get(struct ccci_runs *rs, const char *name)
{
  size_t i = dom_index(rs, name); /* before rs->doms is read: it may move */
  return rs->doms[i];
}

static char *run_path(const struct run *r, const char *rel)
{
  return ccci_xasprintf("%s/%s", r->dir, rel);
}

static void check_stopped(struct ccci_runs *rs);

/* A meta.json write is done; a stopping daemon waits for the last. */
static void saved(void *arg, int rc)
{
  struct run *r = arg;
  /* Records merged into one write hear of it each: it is logged once. */
  if (rc < 0 && r->meta_failed != r->meta_q.done) {
    r->meta_failed = r->meta_q.done;
    ccci_log(CCCI_LOG_ERROR, "runs", r->m.id, "cannot write %s/meta.json: %s",
             r->dir, strerror(-rc));
  }
  r->rs->saving--;
  check_stopped(r->rs);
}

/* Record the run's meta.json (durably, off the loop), @p done told when it
 * is on disk. Returns false when it cannot be encoded (nothing queued). */
static bool save_with(struct run *r, ccci_fileq_done done)
{
  size_t len;
  char *t = ccci_run_meta_text(&r->m, &len);
  if (t == NULL) {
    ccci_log(CCCI_LOG_ERROR, "runs", r->m.id, "cannot encode meta.json");
    return false;
  }
  r->rs->saving++;
  ccci_fileq_put(&r->meta_q, run_path(r, "meta.json"), t, len, 0, done, r);
  if (r->rs->observer != NULL)
    r->rs->observer(r->rs->observer_arg, r->m.id);
  return true;
}

static void save(struct run *r)
{
  (void)save_with(r, saved);
}

static void prep_go(struct run *r);

/* A record with the run's server and domain is on disk (or failed): once
 * every such record is, the prepared run may start. */
static void placed_saved(void *arg, int rc)
{
  struct run *r = arg;
  if (rc < 0)
    r->place_rc = rc;
  if (r->place_pending > 0)
    r->place_pending--;
  saved(arg, rc);
  if (r->place_pending == 0 && r->prep_ready)
    prep_go(r);
}

/* Record where the run goes before it starts (SPEC section 12: a kill -9
 * at any moment leaves every started run with its server on disk). */
static void save_placed(struct run *r)
{
  r->place_rc = 0;
  if (save_with(r, placed_saved))
    r->place_pending++;
  else
    r->place_rc = -ENOMEM;
}

static void set_problem(struct ccci_runs *rs, char *p)
{
  if (p != NULL && (rs->problem == NULL || strcmp(p, rs->problem) != 0))
    ccci_error("runs", "%s", p);
  free(rs->problem);
  rs->problem = p;
}

static void free_strv(char **v, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Prepare a look at the secrets: the daemon's set and fingerprint now. */
static void secload_begin(struct secload *l, struct ccci_runs *rs,
                          struct ccci_config *cfg)
{
  l->cfg = ccci_config_ref(cfg);
  l->known = rs->secrets != NULL ? ccci_redact_set_ref(rs->secrets) : NULL;
  l->known_fp = rs->secrets_fp != NULL ? ccci_xstrdup(rs->secrets_fp) : NULL;
}

static void secload_clear(struct secload *l)
{
  ccci_config_unref(l->cfg);
  ccci_redact_set_unref(l->known);
  ccci_redact_set_unref(l->set);
  free(l->known_fp);
  free(l->fp);
  free(l->err);
  free_strv(l->shorts, l->nshorts);
  memset(l, 0, sizeof(*l));
}

/* The look itself, on the thread pool. */
static void secload_run(struct secload *l)
{
  const struct ccci_config *cfg = l->cfg;
  struct ccci_secrets sec;
  struct ccci_redact_value *vals;
  char *err = NULL, *fp = NULL;
  bool optional = strcmp(cfg->secrets_dir, "/run/secrets") == 0;
  size_t i;
  int rc;

  /* Unchanged files are not read again. */
  if (l->known != NULL && l->known_fp != NULL &&
      ccci_secrets_fingerprint(cfg->secrets_dir, optional,
                               (const char *const *)cfg->secret_files.v,
                               cfg->secret_files.n, &fp, &err) == 0 &&
      strcmp(fp, l->known_fp) == 0) {
    free(fp);
    l->set = ccci_redact_set_ref(l->known);
    return;
  }
  free(fp);
  free(err);
  err = NULL;
  rc = ccci_secrets_load(cfg->secrets_dir, optional,
                         (const char *const *)cfg->secret_files.v,
                         cfg->secret_files.n, &sec, &err);
  if (rc < 0) {
    l->err = err;
    return;
  }
  l->fp = sec.fingerprint;
  sec.fingerprint = NULL;
  vals = ccci_xcalloc(sec.n ? sec.n : 1, sizeof(*vals));
  for (i = 0; i < sec.n; i++) {
    vals[i].data = sec.v[i].value;
    vals[i].len = sec.v[i].len;
    if (sec.v[i].len < cfg->min_secret_len) {
      l->shorts = ccci_xrealloc(l->shorts, (l->nshorts + 1) * sizeof(char *));
      l->shorts[l->nshorts++] = ccci_xstrdup(sec.v[i].path);
    }
  }
  for (i = 0; i < sec.nwarnings; i++)
    ccci_warn("secrets", "%s", sec.warnings[i]);
  /* The set is rebuilt only when the values changed. */
  if (l->known != NULL &&
      ccci_redact_set_same(l->known, vals, sec.n, cfg->min_secret_len)) {
    l->set = ccci_redact_set_ref(l->known);
  } else {
    rc = ccci_redact_set_new(vals, sec.n, cfg->min_secret_len, &l->set);
    l->new_set = rc == 0;
    if (rc < 0)
      l->err =
          ccci_xasprintf("cannot build the secret patterns: %s", strerror(-rc));
  }
  free(vals);
  ccci_secrets_free(&sec);
}

/* What one attempt holds: freed when it ends, and with the run. */
static void drop_attempt(struct run *r)
{
  if (r->runner != NULL)
    ccci_runner_free(r->runner);
  r->runner = NULL;
  ccci_env_free(r->env);
  r->env = NULL;
  ccci_redact_set_unref(r->secrets);
  r->secrets = NULL;
  r->sec_wait = false;
  r->prep_ready = r->prep_cancelled = false;
  ccci_config_unref(r->cfg);
  r->cfg = NULL;
}

static struct run *run_new(struct ccci_runs *rs)
{
  struct run *r = ccci_xcalloc(1, sizeof(*r));
  r->rs = rs;
  r->lock_fd = -1;
  ccci_fileq_init(&r->meta_q, rs->loop);
  return r;
}

static void run_free(struct run *r)
{
  drop_attempt(r);
  ccci_results_clear(&r->end_results);
  ccci_run_meta_clear(&r->m);
  free(r->dir);
  free(r->prep_err);
  free(r->slot_server);
  free(r->place_err);
  free(r);
}

/* ---- run lifecycle ---- */

static bool opstate_deployed(const struct run *r)
{
  char *path = run_path(r, "state/opstate"), *text = NULL;
  bool deployed = false;
  if (ccci_read_file(path, 4096, &text, NULL) == 0)
    deployed = strncmp(text + strspn(text, " \t\r\n"), "deployed", 8) == 0;
  free(text);
  free(path);
  return deployed;
}

static void note(struct run *r, const char *fmt, ...) CCCI_PRINTF(2, 3);

/* A line of the daemon's own in the run's log (never a secret). */
static void note(struct run *r, const char *fmt, ...)
{
  va_list ap;
  char *msg, *line;
  if (r->logs == NULL)
    return;
  va_start(ap, fmt);
  msg = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  line = ccci_xasprintf("[ccci] %s\n", msg);
  ccci_logstore_line(r->logs, line, strlen(line), false);
  ccci_logstore_flush(r->logs);
  free(line);
  free(msg);
}

/* A stopping daemon is told once no run holds a slot (a slot is held until
 * the run's logs are closed). */
static void check_stopped(struct ccci_runs *rs)
{
  if (rs->stopping && rs->active == 0 && rs->saving == 0 && rs->probing == 0 &&
      rs->stop_done != NULL) {
    void (*done)(void *) = rs->stop_done;
    rs->stop_done = NULL;
    done(rs->stop_arg);
  }
}

/* Let go of the run's slot and domain (its lock, if the daemon holds it:
 * a janitor's orphan unlinks the lock file while still holding it). */
static void release(struct run *r)
{
  struct ccci_runs *rs = r->rs;
  struct dom *d = dom_get(rs, r->m.domain);
  if (r->lock_fd >= 0)
    ccci_domlock_release(rs->locks_dir, r->m.domain, r->lock_fd, r->orphan);
  r->lock_fd = -1;
  if (d->owner == r)
    d->owner = NULL;
  ccci_pool_release(&rs->pool, r->slot_server);
  free(r->slot_server);
  r->slot_server = NULL;
  drop_attempt(r);
  r->phase = PH_IDLE;
  rs->active--;
}

/* The record changes only once the run's logs are all on disk, so a client
 * that sees `finished` can read complete logs and a closed index. */
static void finish_saved(void *arg)
{
  struct run *r = arg;
  struct ccci_runs *rs = r->rs;

  r->closing_logs = NULL;
  if (r->daemon_stop && (r->orphan || r->m.teardown == CCCI_TEARDOWN_FAILED ||
                         r->m.teardown == CCCI_TEARDOWN_FORCED)) {
    /* A deployment may be left: the state stays (cancelling, of this
     * instance), so the next daemon's janitor tears it down. */
  } else if (r->daemon_stop) {
    r->m.state = CCCI_RUN_QUEUED;
    r->m.reason = CCCI_REASON_NONE;
  } else {
    r->m.state = CCCI_RUN_FINISHED;
    r->m.reason = r->reason;
    r->m.finished_at = time(NULL);
  }
  save(r);
  if (r->m.state == CCCI_RUN_FINISHED)
    tell_finished(rs, r);
  ccci_results_clear(&r->end_results);
  r->end_read = false;
  release(r);
  check_stopped(rs);
  admit(rs);
}

static void finish(struct run *r)
{
  struct ccci_logstore *ls = r->logs;

  if (r->daemon_stop) {
    /* Stopped with the daemon: queued again for a new attempt. */
    note(r, "stopped with the daemon; queued again for the next start");
    ccci_log(CCCI_LOG_INFO, "runs", r->m.id,
             "stopped with the daemon; queued again");
  } else {
    note(r, "finished: %s", ccci_run_reason_name(r->reason));
    ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "finished: %s (exit %d)",
             ccci_run_reason_name(r->reason), r->m.exit_code);
  }
  if (ls == NULL) {
    finish_saved(r);
    return;
  }
  /* The runner lets go of the log store first. */
  if (r->runner != NULL)
    ccci_runner_free(r->runner);
  r->runner = NULL;
  r->logs = NULL;
  r->closing_logs = ls;
  ccci_logstore_close(ls, finish_saved, r);
}

/* What the harness and the teardown share: the run's environment, user,
 * secrets, logs and timings. */
static void runner_spec(struct run *r, struct ccci_runner_spec *sp,
                        const char *state, char *const *argv,
                        uint64_t deadline_ms)
{
  memset(sp, 0, sizeof(*sp));
  sp->run_id = r->m.id;
  sp->self_exe = r->rs->self_exe;
  sp->state_dir = state;
  sp->argv = argv;
  sp->env = r->env;
  sp->user = r->cfg->harness.user;
  sp->lock_fd = -1;
  sp->deadline_ms = deadline_ms;
  sp->kill_grace_ms = r->cfg->kill_grace_ms;
  sp->drain_timeout_ms = r->cfg->drain_timeout_ms;
  sp->secrets = r->secrets;
  sp->logs = r->logs;
  sp->redacted_bytes = &r->rs->redacted_bytes;
  sp->redacted_masks = &r->rs->redacted_masks;
}

static void run_teardown(struct run *r);

static void on_td_timer(uv_timer_t *t)
{
  struct ccci_runs *rs = t->data;
  uint64_t now = uv_now(rs->loop), next = 0;
  size_t i;
  for (i = 0; i < rs->nall; i++) {
    struct run *r = rs->all[i];
    if (r->phase != PH_TD_WAIT)
      continue;
    if (r->td_next_ms <= now)
      run_teardown(r);
    else if (next == 0 || r->td_next_ms < next)
      next = r->td_next_ms;
  }
  if (next != 0)
    uv_timer_start(&rs->td_timer, on_td_timer, next - now, 0);
}

/* The end of a teardown try: done, or tried again later (the run keeps
 * its domain meanwhile), or given up after TEARDOWN_TRIES. */
static void teardown_ended(struct run *r, enum ccci_teardown outcome)
{
  struct ccci_runs *rs = r->rs;
  r->m.teardown = outcome;
  note(r, "teardown: %s", ccci_teardown_name(outcome));
  ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "teardown: %s (try %u)",
           ccci_teardown_name(outcome), r->td_tries);
  if (outcome != CCCI_TEARDOWN_CLEAN && r->td_tries < TEARDOWN_TRIES &&
      !r->daemon_stop) {
    uint64_t wait = (uint64_t)TEARDOWN_RETRY_MS << (r->td_tries - 1);
    r->phase = PH_TD_WAIT;
    r->td_next_ms = uv_now(rs->loop) + wait;
    note(r, "teardown %s; trying again in %llu s (try %u of %u)",
         ccci_teardown_name(outcome), (unsigned long long)wait / 1000,
         r->td_tries + 1, TEARDOWN_TRIES);
    save(r);
    on_td_timer(&rs->td_timer);
    return;
  }
  if (outcome != CCCI_TEARDOWN_CLEAN && !r->daemon_stop)
    set_problem(
        rs, ccci_xasprintf("the teardown of %s (run %s) failed %u times; its "
                           "deployment may be left: remove it by hand",
                           r->m.domain, r->m.id, r->td_tries));
  if (r->orphan)
    r->reason = r->adopt;
  finish(r);
}

static void on_teardown_done(struct ccci_runner *runner,
                             const struct ccci_runner_result *res, void *arg)
{
  struct run *r = arg;
  (void)runner;
  teardown_ended(r, ccci_outcome_teardown(res->timed_out || res->backstop,
                                          (long long)res->exit_status));
}

/* Run harness.teardown_command for the run's domain under teardown_grace,
 * holding the domain lock (taken again if the supervisor had it), its
 * output in a new step `teardown`. */
static void run_teardown(struct run *r)
{
  struct ccci_runner_spec sp;
  char *state = run_path(r, "state"), *err = NULL;
  int rc;

  if (r->runner != NULL)
    ccci_runner_free(r->runner);
  r->runner = NULL;
  r->td_tries++;
  r->phase = PH_TEARDOWN;
  ccci_logstore_step(r->logs, "teardown");
  if (r->lock_fd < 0) {
    rc = ccci_domlock_try(r->rs->locks_dir, r->m.domain);
    if (rc < 0) {
      note(r, "cannot take the lock of %s for the teardown: %s", r->m.domain,
           rc == -EWOULDBLOCK ? "another process holds it" : strerror(-rc));
      free(state);
      teardown_ended(r, CCCI_TEARDOWN_FAILED);
      return;
    }
    r->lock_fd = rc;
  }
  runner_spec(r, &sp, state, r->cfg->harness.teardown_command.v,
              r->cfg->teardown_grace_ms);
  sp.lock_fd = r->lock_fd;
  ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "running the teardown of %s",
           r->m.domain);
  rc = ccci_runner_start(r->rs->loop, &sp, on_teardown_done, r, &r->runner,
                         &err);
  free(state);
  if (rc < 0) {
    note(r, "cannot start the teardown: %s", err);
    ccci_log(CCCI_LOG_ERROR, "runs", r->m.id, "cannot start the teardown: %s",
             err);
    free(err);
    teardown_ended(r, CCCI_TEARDOWN_FAILED);
  }
}

/* A number from a harness state file, or -1 (missing:
 * CCCI_OUTCOME_NO_FILE). */
static long long state_number(const struct run *r, const char *name)
{
  char *path = run_path(r, name), *text = NULL, *end;
  long long v = CCCI_OUTCOME_NO_FILE;
  int rc = ccci_read_file(path, 4096, &text, NULL);
  free(path);
  if (rc == 0) {
    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || errno != 0 || v < 0 ||
        end[strspn(end, " \t\r\n")] != '\0')
      v = -1;
  }
  free(text);
  return v;
}

/* Cold dependencies in the deps file: lines `<name> cold` (`<name> warm`
 * is one that was already running and was not deployed). */
static long long cold_deps(const struct run *r)
{
  char *path = run_path(r, "state/deps"), *text = NULL, *line, *save_ptr;
  long long n = 0;
  if (ccci_read_file(path, 1 << 20, &text, NULL) == 0) {
    for (line = strtok_r(text, "\n", &save_ptr); line != NULL;
         line = strtok_r(NULL, "\n", &save_ptr)) {
      char name[256], kind[16];
      if (sscanf(line, "%255s %15s", name, kind) == 2 &&
          strcmp(kind, "cold") == 0)
        n++;
    }
  }
  free(text);
  free(path);
  return n;
}

/* state/server, which the harness keeps (SPEC section 12), on the thread
 * pool; it is the harness's, so read beneath the run dir and capped. */
static void read_server_file(struct run *r)
{
  char *text = NULL;
  size_t len = 0;
  int rc = ccci_read_file_beneath(r->dir, "state/server",
                                  CCCI_OUTCOME_SERVER_MAX, &text, &len);
  r->end_srv_state = 0;
  r->end_srv_why = NULL;
  if (rc == -ENOENT)
    return;
  if (rc == -EFBIG)
    r->end_srv_why = "it is larger than 4 KiB";
  else if (rc < 0)
    r->end_srv_why = "it cannot be read";
  else if (ccci_outcome_server_parse(text, len, &r->end_srv, &r->end_srv_why) ==
           0)
    r->end_srv_state = 1;
  if (r->end_srv_state == 0)
    r->end_srv_state = -1;
  free(text);
}

/* The facts of the run's end for the outcome, on the thread pool: the exit
 * detail the supervisor wrote, the state files and results.json (read
 * there, not on the loop: a harness writes what it likes into them). The
 * runner's result and a cancel were taken on the loop before. */
static void end_work(uv_work_t *w)
{
  struct run *r = ccci_container_of(w, struct run, work);
  struct ccci_outcome_case *c = &r->end_case;
  struct ccci_supervise_exit e;
  char *state = run_path(r, "state"), *path = run_path(r, "results.json");

  r->end_exit = -1;
  r->end_signal = 0;
  if (ccci_supervise_exit_read(state, &e) == 0) {
    r->end_exit = e.exit_code;
    r->end_signal = e.signal;
  } else if (r->res.exit_status >= 0) {
    r->end_exit = (int)r->res.exit_status;
  }
  c->exit_code = r->end_exit;
  c->signal = r->end_signal;
  c->deploys = state_number(r, "state/deploys");
  c->cold_deps = cold_deps(r);
  c->opstate_deployed = opstate_deployed(r);
  read_server_file(r);
  c->unreachable = r->end_srv_state > 0 && r->end_srv.unreachable[0] != '\0';
  ccci_results_clear(&r->end_results);            /* an earlier attempt's */
  (void)ccci_results_read(path, &r->end_results); /* any error: incomplete */
  c->results = &r->end_results;
  free(path);
  free(state);
}

static void probe_schedule(struct ccci_runs *rs);

/* The end of a run on its server feeds the server's health (SPEC section
 * 12): connection errors in a row make it unhealthy, and probed. */
static void feed_health(struct run *r)
{
  struct ccci_runs *rs = r->rs;
  const char *srv = r->slot_server;
  uint64_t now = uv_now(rs->loop), first;
  if (srv == NULL)
    return;
  first = ccci_pool_backoff(0, r->cfg->pool.probe_min_ms,
                            r->cfg->pool.probe_max_ms);
  if (ccci_pool_feed(
          &rs->pool, srv, r->end_srv.reached, r->end_srv.connection_errors,
          r->end_srv.error[0] != '\0' ? r->end_srv.error : NULL,
          r->cfg->pool.unhealthy_after, now,
          ccci_pool_jitter(first, (unsigned)rand())) == CCCI_POOL_UNHEALTHY) {
    struct ccci_pool_server *s = ccci_pool_find(&rs->pool, srv);
    s->backoff_ms = first;
    ccci_log(CCCI_LOG_WARN, "runs", r->m.id,
             "server %s is unhealthy: %llu connection errors in a row (%s); "
             "no new run goes there until a probe reaches it",
             srv, (unsigned long long)s->fails,
             s->last_error != NULL ? s->last_error : "?");
    probe_schedule(rs);
  }
}

static void end_done(uv_work_t *w, int status)
{
  struct run *r = ccci_container_of(w, struct run, work);
  struct ccci_outcome_case *c = &r->end_case;
  struct ccci_outcome o;
  (void)status; /* never cancelled: a run in PH_MAIN is not uv_cancel'd */
  r->m.exit_code = r->end_exit;
  r->m.signal = r->end_signal;
  o = ccci_outcome_decide(c);
  c->results = NULL;
  r->end_read = true; /* kept until the finish observers have seen it */
  r->reason = o.reason;
  if (r->res.drain_timeout)
    note(r,
         "output pipes were still open %llu ms after the harness ended; "
         "closed",
         (unsigned long long)r->cfg->drain_timeout_ms);
  if (r->end_srv_state < 0)
    note(r, "state/server ignored: %s", r->end_srv_why);
  if (o.unreachable)
    note(r, "server %s unreachable: %s", r->m.server ? r->m.server : "?",
         r->end_srv.unreachable);
  if (r->end_srv_state > 0)
    feed_health(r);
  if (o.budget == CCCI_BUDGET_NOT_COUNT)
    note(r, "deploy budget: state/deploys is not a count");
  else if (o.budget == CCCI_BUDGET_OVER)
    note(r,
         "deploy budget: %lld deploys, expected 1 + %lld cold "
         "dependencies",
         c->deploys, c->cold_deps);
  if (o.teardown) {
    run_teardown(r);
    return;
  }
  finish(r);
}

/* The harness ended: the end's facts are read on the thread pool, then
 * end_done decides. A cancel that comes after this moment does not change
 * the outcome (the harness had ended). */
static void on_main_done(struct ccci_runner *runner,
                         const struct ccci_runner_result *res, void *arg)
{
  struct run *r = arg;
  struct ccci_outcome_case *c = &r->end_case;
  (void)runner;
  r->res = *res;
  memset(c, 0, sizeof(*c));
  c->cancelled = r->res.cancelled || r->cancel_req;
  c->timed_out = r->res.timed_out;
  c->supervisor_died = r->res.term_signal != 0 || r->res.backstop;
  /* uv_queue_work fails only without a work callback. */
  (void)uv_queue_work(r->rs->loop, &r->work, end_work, end_done);
}

static void start_main(struct run *r)
{
  struct ccci_runner_spec sp;
  char *state = run_path(r, "state"), *logs = run_path(r, "logs");
  char *err = NULL;
  int rc;

  rc = ccci_logstore_open(r->rs->loop, logs, r->m.id, r->cfg->log_max_bytes,
                          &r->logs, &err);
  free(logs);
  if (rc < 0) {
    ccci_log(CCCI_LOG_ERROR, "runs", r->m.id, "%s", err);
    free(err);
    free(state);
    r->reason = CCCI_REASON_ERROR;
    finish(r);
    return;
  }
  r->env = ccci_env_build(&r->m, r->dir, r->cfg, r->cfg->deadline_ms / 1000u);
  runner_spec(r, &sp, state, r->cfg->harness.command.v, r->cfg->deadline_ms);
  sp.lock_fd = r->lock_fd;
  r->m.state = CCCI_RUN_RUNNING;
  if (r->m.started_at != 0)
    r->m.attempt++;
  r->m.started_at = time(NULL);
  free(r->m.daemon_instance);
  r->m.daemon_instance = ccci_xstrdup(r->rs->instance);
  rc = ccci_runner_start(r->rs->loop, &sp, on_main_done, r, &r->runner, &err);
  free(state);
  /* The supervisor holds the lock now, until every process of the run is
   * gone; the daemon's copy goes. */
  close(r->lock_fd);
  r->lock_fd = -1;
  if (rc < 0) {
    note(r, "cannot start: %s", err);
    ccci_log(CCCI_LOG_ERROR, "runs", r->m.id, "cannot start: %s", err);
    free(err);
    r->reason = CCCI_REASON_ERROR;
    finish(r);
    return;
  }
  r->phase = PH_MAIN;
  save(r);
  ccci_log(CCCI_LOG_INFO, "runs", r->m.id,
           "started %s (attempt %u, supervisor pid %d, domain %s)", r->m.recipe,
           r->m.attempt, ccci_runner_pid(r->runner), r->m.domain);
}

/* The janitor took over a run another daemon instance left: its log goes
 * on after the steps already there, then its domain is torn down. */
static void start_orphan(struct run *r)
{
  char *logs = run_path(r, "logs"), *err = NULL;
  int rc =
      ccci_logstore_reopen(r->rs->loop, logs, r->m.id, r->cfg->log_max_bytes,
                           "janitor", &r->logs, &err);
  free(logs);
  if (rc < 0) {
    ccci_log(CCCI_LOG_ERROR, "runs", r->m.id, "janitor: %s", err);
    free(err);
    r->m.teardown = CCCI_TEARDOWN_FAILED;
    r->reason = r->adopt;
    set_problem(r->rs,
                ccci_xasprintf("cannot tear down %s (run %s): its log cannot "
                               "be written",
                               r->m.domain, r->m.id));
    finish(r);
    return;
  }
  r->env =
      ccci_env_build(&r->m, r->dir, r->cfg, r->cfg->teardown_grace_ms / 1000u);
  note(r,
       "janitor: daemon instance %s that ran this is gone and the lock of %s "
       "is free; %s",
       r->m.daemon_instance ? r->m.daemon_instance : "?", r->m.domain,
       r->adopt == CCCI_REASON_ORPHANED
           ? "no complete results.json: orphaned"
           : "its results.json is complete: its result is adopted");
  ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "janitor: %s; tearing down %s",
           ccci_run_reason_name(r->adopt), r->m.domain);
  r->m.state = CCCI_RUN_CANCELLING;
  free(r->m.daemon_instance);
  r->m.daemon_instance = ccci_xstrdup(r->rs->instance);
  save(r);
  run_teardown(r);
}

/* On the thread pool: prepare the run's directories (state/, and an
 * earlier attempt's logs kept aside). The secrets were looked at before,
 * by the look the run waited for (refresh_work). */
static void prep_work(uv_work_t *w)
{
  struct run *r = ccci_container_of(w, struct run, work);
  char *p;
  int rc;

  p = run_path(r, "state");
  rc = ccci_mkdir_p(p, 0750);
  free(p);
  if (rc == 0 && r->m.started_at != 0 && !r->orphan) {
    /* An earlier attempt's logs stay, under its number. */
    char *from = run_path(r, "logs");
    char *to = ccci_xasprintf("%s/logs.attempt-%u", r->dir, r->m.attempt);
    if (rename(from, to) < 0 && errno != ENOENT)
      rc = -errno;
    free(from);
    free(to);
  }
  if (rc < 0)
    r->prep_err =
        ccci_xasprintf("cannot prepare %s: %s", r->dir, strerror(-rc));
}

/* The secrets changed: later runs use the new set, and the streams already
 * open switch to old plus new values (removed ones stay masked until their
 * stream ends). The union is built once for all streams of the old set. */
static void secrets_changed(struct ccci_runs *rs, struct ccci_redact_set *set)
{
  struct ccci_redact_set *old = rs->secrets, *u = NULL;
  size_t i;

  ccci_info("secrets", "%zu secret value%s (%zu patterns)",
            ccci_redact_set_values(set),
            ccci_redact_set_values(set) == 1 ? "" : "s",
            ccci_redact_set_patterns(set));
  if (old != NULL && ccci_redact_set_union(old, set, &u) < 0)
    u = NULL;
  for (i = 0; i < rs->nall; i++) {
    struct run *o = rs->all[i];
    if (o->runner == NULL || old == NULL)
      continue;
    if (ccci_runner_swap_secrets(o->runner, u != NULL ? u : set) < 0)
      ccci_log(CCCI_LOG_ERROR, "secrets", o->m.id,
               "cannot add the new secrets to the open streams");
  }
  ccci_redact_set_unref(u);
  rs->secrets = ccci_redact_set_ref(set);
  ccci_redact_set_unref(old);
}

static bool reported(struct ccci_runs *rs, const char *name)
{
  size_t i;
  for (i = 0; i < rs->nreported; i++)
    if (strcmp(rs->reported[i], name) == 0)
      return true;
  rs->reported =
      ccci_xrealloc(rs->reported, (rs->nreported + 1) * sizeof(char *));
  rs->reported[rs->nreported++] = ccci_xstrdup(name);
  return false;
}

static void on_retry(uv_timer_t *t)
{
  admit(t->data);
}

/* Back to the queue before it started; an orphan goes back to the
 * janitor's care (found again at its next sweep). */
static void requeue(struct run *r)
{
  bool orphan = r->orphan;
  r->orphan = false; /* keep the lock file */
  release(r);
  if (!orphan)
    enqueue(r);
}

/* What a look at the secrets found, on the loop: short values reported
 * once, a new set taken by the daemon and switched into the open streams.
 * Returns the set to use (a reference), or NULL when a file cannot be
 * read. */
static struct ccci_redact_set *secrets_seen(struct ccci_runs *rs,
                                            struct secload *l)
{
  size_t i;

  for (i = 0; i < l->nshorts; i++)
    if (!reported(rs, l->shorts[i]))
      ccci_warn("secrets",
                "the secret in %s is shorter than min_secret_len (%llu); it "
                "is not masked",
                l->shorts[i], (unsigned long long)l->cfg->min_secret_len);
  if (l->err != NULL || l->set == NULL)
    return NULL;
  if (l->new_set)
    secrets_changed(rs, l->set);
  if (l->fp != NULL) {
    free(rs->secrets_fp);
    rs->secrets_fp = l->fp;
    l->fp = NULL;
  }
  return ccci_redact_set_ref(l->set);
}

static void prep_done(uv_work_t *w, int status)
{
  struct run *r = ccci_container_of(w, struct run, work);
  r->prep_cancelled = status == UV_ECANCELED;
  r->prep_ready = true;
  /* The harness waits for the record of its server (placed_saved). */
  if (r->place_pending == 0)
    prep_go(r);
}

/* The run is prepared and its placement is on disk: start it, or why not. */
static void prep_go(struct run *r)
{
  struct ccci_runs *rs = r->rs;

  r->prep_ready = false;
  if (r->prep_cancelled || r->daemon_stop) {
    /* The daemon stops before the run started: it stays queued (an
     * orphan stays for the next daemon's janitor). */
    requeue(r);
    check_stopped(rs);
    return;
  }
  if (r->cancel_req) {
    r->reason = CCCI_REASON_CANCELLED;
    finish(r);
    return;
  }
  if (r->prep_err != NULL) {
    /* The run dir cannot be prepared: the run waits in the queue. */
    set_problem(
        rs, ccci_xasprintf("%s; no run starts until it is fixed", r->prep_err));
    free(r->prep_err);
    r->prep_err = NULL;
    requeue(r);
    uv_timer_start(&rs->retry, on_retry, RETRY_MS, 0);
    return;
  }
  if (r->place_rc < 0 && !r->orphan) {
    /* Its server could not be recorded: it must not start unrecorded. */
    set_problem(rs, ccci_xasprintf("cannot record the server of run %s in "
                                   "%s/meta.json: %s; no run starts until it "
                                   "is fixed",
                                   r->m.id, r->dir, strerror(-r->place_rc)));
    r->place_rc = 0;
    requeue(r);
    uv_timer_start(&rs->retry, on_retry, RETRY_MS, 0);
    return;
  }
  set_problem(rs, NULL);
  if (r->orphan)
    start_orphan(r);
  else
    start_main(r);
}

static void refresh_work(uv_work_t *w)
{
  struct ccci_runs *rs = ccci_container_of(w, struct ccci_runs, refresh_work);
  secload_run(&rs->refresh);
}

/* A look at the secrets ended: the runs admitted before it began go on
 * with its set, or back to the queue when a file cannot be read (fail
 * closed; admission is tried again in RETRY_MS). */
static void refresh_done(uv_work_t *w, int status)
{
  struct ccci_runs *rs = ccci_container_of(w, struct ccci_runs, refresh_work);
  struct ccci_redact_set *set = secrets_seen(rs, &rs->refresh);
  bool waiting = false, failed = false;
  size_t i;

  (void)status;
  rs->refresh_busy = false;
  rs->saving--;
  if (!rs->stopping)
    rs->secrets_bad = set == NULL;
  if (!rs->stopping)
    set_problem(rs, set != NULL ? NULL
                                : ccci_xasprintf("%s; no run starts until it "
                                                 "is fixed",
                                                 rs->refresh.err));
  for (i = 0; i < rs->nall; i++) {
    struct run *r = rs->all[i];
    if (!r->sec_wait)
      continue;
    if (r->sec_need > rs->looks_started) {
      waiting = true; /* admitted after this look began */
      continue;
    }
    r->sec_wait = false;
    if (set == NULL || rs->stopping) {
      failed = failed || set == NULL;
      requeue(r);
      continue;
    }
    r->secrets = ccci_redact_set_ref(set);
    /* uv_queue_work fails only without a work callback. */
    (void)uv_queue_work(rs->loop, &r->work, prep_work, prep_done);
  }
  ccci_redact_set_unref(set);
  secload_clear(&rs->refresh);
  if (!rs->stopping) {
    if (rs->refresh_again || waiting) {
      rs->refresh_again = false;
      ccci_runs_secrets_refresh(rs);
    } else if (failed) {
      uv_timer_start(&rs->retry, on_retry, RETRY_MS, 0);
    } else {
      admit(rs);
    }
  }
  check_stopped(rs);
}

void ccci_runs_secrets_refresh(struct ccci_runs *rs)
{
  struct ccci_config *cfg;
  if (rs->stopping)
    return;
  if (rs->refresh_busy) {
    rs->refresh_again = true;
    return;
  }
  cfg = rs->config(rs->arg);
  secload_begin(&rs->refresh, rs, cfg);
  ccci_config_unref(cfg);
  rs->refresh_busy = true;
  rs->looks_started++;
  rs->saving++;
  /* uv_queue_work fails only without a work callback. */
  (void)uv_queue_work(rs->loop, &rs->refresh_work, refresh_work, refresh_done);
}

/* @p r holds a slot (and its domain): it is prepared once a look at the
 * secrets that begins from now on has ended (SPEC section 7: before every
 * run starts). The runs admitted together share that one look. */
static void wait_secrets(struct run *r)
{
  r->phase = PH_PREP;
  r->sec_wait = true;
  r->sec_need = r->rs->looks_started + 1;
}

static bool disk_ok(struct ccci_runs *rs, const struct ccci_config *cfg)
{
  struct statvfs sv;
  uint64_t avail;
  if (cfg->min_free_bytes == 0 || statvfs(rs->state_dir, &sv) < 0)
    return true;
  avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  if (avail >= cfg->min_free_bytes)
    return true;
  set_problem(rs, ccci_xasprintf("only %llu bytes free on %s (min_free_bytes "
                                 "is %llu); no run starts",
                                 (unsigned long long)avail, rs->state_dir,
                                 (unsigned long long)cfg->min_free_bytes));
  return false;
}

/* Mark a run that cannot have its domain yet. */
static void set_waiting(struct run *r)
{
  if (r->m.state == CCCI_RUN_WAITING_LOCK)
    return;
  r->m.state = CCCI_RUN_WAITING_LOCK;
  save(r);
}

static void probe_backoff(struct dom *d, uint64_t now)
{
  uint64_t b = d->backoff_ms == 0 ? PROBE_MIN_MS : d->backoff_ms * 2;
  if (b > PROBE_MAX_MS)
    b = PROBE_MAX_MS;
  d->backoff_ms = b;
  /* Jitter of +-25%, so waiters on many domains do not probe in step. */
  d->next_probe_ms = now + b * 3 / 4 + (uint64_t)rand() % (b / 2 + 1);
}

/* The pool follows configuration @p cfg (a new one after SIGHUP): added
 * servers take runs, removed ones finish theirs (SPEC section 12). */
static void pool_sync(struct ccci_runs *rs, struct ccci_config *cfg)
{
  const struct ccci_server_conf *v;
  size_t n, i;
  if (rs->pool_cfg == cfg)
    return;
  n = ccci_config_servers(cfg, &v);
  for (i = 0; rs->pool_cfg != NULL && i < rs->pool.n; i++)
    if (!rs->pool.v[i].removed &&
        ccci_config_server(cfg, rs->pool.v[i].name) == NULL)
      ccci_info("runs",
                "server %s left the configuration; it takes no new run%s",
                rs->pool.v[i].name,
                rs->pool.v[i].running > 0 ? " and finishes its runs" : "");
  ccci_pool_merge(&rs->pool, v, n);
  rs->pool_explicit = cfg->servers.n > 0;
  ccci_config_unref(rs->pool_cfg);
  rs->pool_cfg = ccci_config_ref(cfg);
}

/* Does run @p r have a placement that counts (only with `servers:`)? */
static bool placed_somewhere(const struct ccci_runs *rs, const struct run *r)
{
  return rs->pool_explicit &&
         (r->m.place_servers.n > 0 || r->m.place_labels.n > 0);
}

static bool same_list(const struct ccci_strlist *l, const char *const *v,
                      size_t n)
{
  size_t i;
  if (l->n != n)
    return false;
  for (i = 0; i < n; i++)
    if (strcmp(l->v[i], v[i]) != 0)
      return false;
  return true;
}

/* The queued runs as the scheduler sees them, and the runs they stand
 * for (in->runs[i] is runs[i]); the pool's servers in its order, and one
 * placement class per distinct placement of the queued runs. */
struct sched_pass {
  struct ccci_sched_input in;
  struct ccci_sched_run *sruns;
  struct ccci_sched_domain *sdoms;
  struct ccci_sched_server *servers;
  struct ccci_sched_place *places;
  struct run **runs;
  bool *waiting;
};

/* The class of @p r's placement in @p p (added when new). */
static size_t place_class(struct sched_pass *p, const struct run *r)
{
  size_t i;
  for (i = 0; i < p->in.nplaces; i++)
    if (same_list(&r->m.place_servers, p->places[i].servers,
                  p->places[i].nservers) &&
        same_list(&r->m.place_labels, p->places[i].labels,
                  p->places[i].nlabels))
      return i;
  p->places[i].servers = (const char *const *)r->m.place_servers.v;
  p->places[i].nservers = r->m.place_servers.n;
  p->places[i].labels = (const char *const *)r->m.place_labels.v;
  p->places[i].nlabels = r->m.place_labels.n;
  return p->in.nplaces++;
}

static struct ccci_sched_server sched_server(const struct ccci_pool_server *s)
{
  struct ccci_sched_server o;
  o.name = s->name;
  o.capacity = s->capacity;
  o.running = s->running;
  o.labels = (const char *const *)s->labels.v;
  o.nlabels = s->labels.n;
  o.closed = ccci_pool_closed(s);
  return o;
}

static void sched_pass_init(struct sched_pass *p, struct ccci_runs *rs,
                            uint64_t now)
{
  size_t i, n = 0, m = rs->nq ? rs->nq : 1;

  memset(p, 0, sizeof(*p));
  p->sruns = ccci_xcalloc(m, sizeof(*p->sruns));
  p->runs = ccci_xcalloc(m, sizeof(*p->runs));
  p->waiting = ccci_xcalloc(m, sizeof(*p->waiting));
  p->places = ccci_xcalloc(m, sizeof(*p->places));
  for (i = 0; i < rs->nq; i++) {
    struct run *r = rs->q[i];
    p->runs[n] = r;
    p->sruns[n].repo = r->m.repo;
    p->sruns[n].domain = dom_index(rs, r->m.domain);
    p->sruns[n].place =
        placed_somewhere(rs, r) ? place_class(p, r) : CCCI_SCHED_ANYWHERE;
    n++;
  }
  p->sdoms = ccci_xcalloc(rs->ndoms ? rs->ndoms : 1, sizeof(*p->sdoms));
  for (i = 0; i < rs->ndoms; i++) {
    p->sdoms[i].busy = rs->doms[i]->owner != NULL;
    p->sdoms[i].next_probe_ms = rs->doms[i]->next_probe_ms;
  }
  p->servers = ccci_xcalloc(rs->pool.n ? rs->pool.n : 1, sizeof(*p->servers));
  for (i = 0; i < rs->pool.n; i++)
    p->servers[i] = sched_server(&rs->pool.v[i]);
  p->in.runs = p->sruns;
  p->in.nruns = n;
  p->in.domains = p->sdoms;
  p->in.servers = p->servers;
  p->in.nservers = rs->pool.n;
  p->in.places = p->places;
  p->in.last_repo = rs->rr_repo;
  p->in.last_server = rs->rr_server;
  p->in.draining = rs->draining;
  p->in.stopping = rs->stopping;
  p->in.disk_ok = true;
  p->in.now = now;
  p->in.waiting = p->waiting;
}

static void sched_pass_clear(struct sched_pass *p)
{
  free(p->sruns);
  free(p->sdoms);
  free(p->servers);
  free(p->places);
  free(p->runs);
  free(p->waiting);
}

/* The domain of @p r on server @p s: its label under the server's
 * suffix (allocated). */
static char *domain_on(const struct run *r, const struct ccci_pool_server *s)
{
  return ccci_xasprintf("%.*s.%s", (int)label_len(r->m.domain), r->m.domain,
                        s->domain_suffix);
}

/* The run the scheduler chose holds its domain once its lock is taken (the
 * lock of its domain on the chosen server); a lock held outside the daemon
 * backs the line off, and the scheduler decides again. The run's server
 * and domain are set. Returns the run admitted, or NULL with the verdict
 * that ended the pass in @p v. */
static struct run *pick(struct ccci_runs *rs, struct sched_pass *p,
                        struct ccci_sched_verdict *v, uint64_t *earliest)
{
  size_t i;
  for (;;) {
    const struct ccci_pool_server *s;
    struct run *r;
    struct dom *d;
    char *domain;
    int fd;

    *v = ccci_sched_decide(&p->in);
    for (i = 0; i < p->in.nruns; i++)
      if (p->waiting[i])
        set_waiting(p->runs[i]);
    if (v->wake_ms != 0 && (*earliest == 0 || v->wake_ms < *earliest))
      *earliest = v->wake_ms;
    if (v->kind != CCCI_SCHED_START)
      return NULL;
    r = p->runs[v->run];
    s = &rs->pool.v[v->server];
    d = dom_get(rs, r->m.domain);
    domain = domain_on(r, s);
    fd = ccci_domlock_try(rs->locks_dir, domain);
    if (fd >= 0) {
      d->backoff_ms = d->next_probe_ms = 0;
      d->owner = r;
      r->lock_fd = fd;
      free(r->m.domain);
      r->m.domain = domain;
      free(r->m.server);
      r->m.server = ccci_xstrdup(s->name);
      free(rs->rr_repo);
      rs->rr_repo = ccci_xstrdup(r->m.repo);
      free(rs->rr_server);
      rs->rr_server = ccci_xstrdup(s->name);
      return r;
    }
    if (fd != -EWOULDBLOCK && fd != -EAGAIN)
      ccci_log(CCCI_LOG_ERROR, "runs", r->m.id,
               "cannot take the lock of %s in %s: %s", domain, rs->locks_dir,
               strerror(-fd));
    free(domain);
    probe_backoff(d, p->in.now);
    p->sdoms[p->sruns[v->run].domain].next_probe_ms = d->next_probe_ms;
  }
}

static void on_lock_timer(uv_timer_t *t);

static uint64_t probe_detached(struct ccci_runs *rs, uint64_t now);

/* Start queued runs while the scheduler finds one (each waits for a look
 * at the secrets first); then wake up for the earliest lock probe. */
static void admit(struct ccci_runs *rs)
{
  struct ccci_config *cfg = rs->config(rs->arg);
  uint64_t now = uv_now(rs->loop), earliest;
  bool admitted = false;

  pool_sync(rs, cfg);
  earliest = probe_detached(rs, now);
  for (;;) {
    struct sched_pass p;
    struct ccci_sched_verdict v;
    struct run *r;

    sched_pass_init(&p, rs, now);
    if (ccci_sched_has_slot(&p.in))
      p.in.disk_ok = disk_ok(rs, cfg);
    r = pick(rs, &p, &v, &earliest);
    sched_pass_clear(&p);
    if (v.kind == CCCI_SCHED_DISK_LOW)
      uv_timer_start(&rs->retry, on_retry, RETRY_MS, 0);
    if (r == NULL)
      break;
    dequeue(r);
    rs->active++;
    ccci_pool_take(&rs->pool, r->m.server, true);
    r->slot_server = ccci_xstrdup(r->m.server);
    r->cfg = ccci_config_ref(cfg);
    ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "placed on server %s (domain %s)",
             r->m.server, r->m.domain);
    save_placed(r);
    wait_secrets(r);
    admitted = true;
  }
  ccci_config_unref(cfg);
  if (admitted)
    ccci_runs_secrets_refresh(rs);
  if (earliest != 0)
    uv_timer_start(&rs->lock_timer, on_lock_timer,
                   earliest > now ? earliest - now : 0, 0);
}

/* ---- the janitor (SPEC section 4, docs/concurrency.md) ---- */

/* Take over an orphan: the daemon keeps the lock it just took; the run
 * waits for a look at the secrets, is prepared (prep_work) and tears its
 * domain down (start_orphan). */
static void janitor_take(struct run *r, int fd, enum ccci_run_reason adopt)
{
  struct ccci_runs *rs = r->rs;
  struct ccci_config *cfg = rs->config(rs->arg);
  const char *srv = r->m.server != NULL ? r->m.server : cfg->harness.server;
  pool_sync(rs, cfg);
  /* Its slot counts on its recorded server while that is in the pool. */
  if (ccci_pool_find(&rs->pool, srv) != NULL) {
    r->slot_server = ccci_xstrdup(srv);
    ccci_pool_take(&rs->pool, srv, false);
  }
  dom_get(rs, r->m.domain)->owner = r;
  r->lock_fd = fd;
  r->orphan = true;
  r->detached = r->stuck = false;
  r->td_tries = 0;
  r->adopt = adopt;
  rs->active++;
  r->cfg = cfg;
  wait_secrets(r);
  ccci_runs_secrets_refresh(rs);
}

/* Decide for one run another instance left running, and act unless @p dry.
 * Appends the decision to @p report when not NULL. */
static void janitor_run(struct ccci_runs *rs, struct run *r, bool dry,
                        json_t *report)
{
  struct ccci_config *cfg = rs->config(rs->arg);
  struct ccci_janitor_case c;
  enum ccci_janitor_verdict v;
  enum ccci_run_reason adopt = CCCI_REASON_NONE;
  int fd = -1;

  memset(&c, 0, sizeof(c));
  c.state = r->m.state;
  c.ours = r->phase != PH_IDLE;
  c.now = time(NULL);
  c.started_at = r->m.started_at;
  c.budget_s =
      (cfg->deadline_ms + cfg->kill_grace_ms + cfg->teardown_grace_ms) / 1000u;
  ccci_config_unref(cfg);
  if (!c.ours &&
      (c.state == CCCI_RUN_RUNNING || c.state == CCCI_RUN_CANCELLING)) {
    if (dry) {
      int h = ccci_domlock_held(rs->locks_dir, r->m.domain);
      c.lock_held = h != 0;
    } else {
      fd = ccci_domlock_try(rs->locks_dir, r->m.domain);
      c.lock_held = fd < 0;
      if (fd < 0 && fd != -EWOULDBLOCK && fd != -EAGAIN)
        ccci_log(CCCI_LOG_ERROR, "janitor", r->m.id,
                 "cannot probe the lock of %s: %s", r->m.domain, strerror(-fd));
    }
    if (!c.lock_held) {
      char *path = run_path(r, "results.json");
      struct ccci_results res;
      struct ccci_outcome_case oc;
      (void)ccci_results_read(path, &res); /* any error: not complete */
      c.results_complete = res.complete;
      /* The reason the run finishes with if the janitor takes it over. */
      memset(&oc, 0, sizeof(oc));
      oc.adopted = true;
      oc.results = &res;
      adopt = ccci_outcome_decide(&oc).reason;
      ccci_results_clear(&res);
      free(path);
    }
  }
  v = ccci_janitor_decide(&c);
  if (report != NULL && v != CCCI_JANITOR_LEAVE && v != CCCI_JANITOR_REQUEUE)
    json_array_append_new(report,
                          json_pack("{s:s,s:s,s:s,s:s}", "kind", "run", "id",
                                    r->m.id, "domain", r->m.domain, "verdict",
                                    ccci_janitor_verdict_name(v)));
  if (dry)
    return;
  if (v != CCCI_JANITOR_LEAVE)
    rs->janitor_acts[v]++;
  switch (v) {
  case CCCI_JANITOR_DETACHED:
  case CCCI_JANITOR_STUCK: {
    struct dom *d = dom_get(rs, r->m.domain);
    if (!r->detached)
      ccci_log(CCCI_LOG_INFO, "janitor", r->m.id,
               "detached: the supervisor of daemon instance %s still holds "
               "the lock of %s; left alone",
               r->m.daemon_instance ? r->m.daemon_instance : "?", r->m.domain);
    if (v == CCCI_JANITOR_STUCK && !r->stuck)
      ccci_log(CCCI_LOG_WARN, "janitor", r->m.id,
               "stuck: still running past started_at + deadline + "
               "kill_grace + teardown_grace; look at its processes");
    r->detached = true;
    r->stuck = v == CCCI_JANITOR_STUCK;
    if (d->owner == NULL)
      d->owner = r;
    probe_backoff(d, uv_now(rs->loop));
    break;
  }
  case CCCI_JANITOR_ADOPT:
  case CCCI_JANITOR_ORPHAN:
    janitor_take(r, fd, adopt);
    fd = -1;
    break;
  default:
    break;
  }
  if (fd >= 0)
    close(fd);
}

/* Lock files nobody in the daemon uses: free ones are removed while held;
 * held ones are left (never unlink a lock you do not hold). */
static void janitor_locks(struct ccci_runs *rs, bool dry, json_t *report)
{
  DIR *d = opendir(rs->locks_dir);
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name), i;
    char *domain;
    bool used = false;
    int fd;
    if (l <= 5 || strcmp(de->d_name + l - 5, ".lock") != 0)
      continue;
    domain = ccci_xstrndup(de->d_name, l - 5);
    for (i = 0; i < rs->ndoms && !used; i++)
      used = rs->doms[i]->owner != NULL &&
             strcmp(rs->doms[i]->owner->m.domain, domain) == 0;
    if (!used) {
      bool held;
      if (dry) {
        held = ccci_domlock_held(rs->locks_dir, domain) != 0;
      } else {
        fd = ccci_domlock_try(rs->locks_dir, domain);
        held = fd < 0;
        if (fd >= 0)
          ccci_domlock_release(rs->locks_dir, domain, fd, true);
      }
      if (report != NULL)
        json_array_append_new(report, json_pack("{s:s,s:s,s:s}", "kind", "lock",
                                                "domain", domain, "verdict",
                                                held ? "leave" : "unlink"));
    }
    free(domain);
  }
  if (d != NULL)
    closedir(d);
}

static json_t *sweep(struct ccci_runs *rs, bool dry)
{
  json_t *report = json_array();
  size_t i;
  for (i = 0; i < rs->nall; i++) {
    struct run *r = rs->all[i];
    if (r->phase == PH_IDLE && !r->queued &&
        (r->m.state == CCCI_RUN_RUNNING || r->m.state == CCCI_RUN_CANCELLING))
      janitor_run(rs, r, dry, report);
  }
  janitor_locks(rs, dry, report);
  return report;
}

/* Retention (docs/retention.md) on the thread pool, one job at a time. */
struct retention_job {
  struct ccci_runs *rs;
  uv_work_t work;
  struct ccci_retention_run *runs;
  size_t n;
  int64_t now;
  uint64_t max_age_s, max_bytes;
  struct ccci_retention_action *acts;
  size_t nacts;
  bool *done;
  char *err;
};

static void retention_work(uv_work_t *w)
{
  struct retention_job *j = ccci_container_of(w, struct retention_job, work);
  const char *runs_dir = j->rs->runs_dir;
  size_t i;
  if (ccci_retention_plan(runs_dir, j->runs, j->n, j->now, j->max_age_s,
                          j->max_bytes, &j->acts, &j->nacts, &j->err) < 0)
    return;
  j->done = ccci_xcalloc(j->nacts ? j->nacts : 1, sizeof(bool));
  for (i = 0; i < j->nacts; i++) {
    char *err = NULL;
    j->done[i] = ccci_retention_apply(runs_dir, &j->acts[i], j->now, &err) == 0;
    if (err != NULL)
      ccci_log(CCCI_LOG_WARN, "janitor", j->acts[i].id, "retention: %s", err);
    free(err);
  }
}

static void retention_done(uv_work_t *w, int status)
{
  struct retention_job *j = ccci_container_of(w, struct retention_job, work);
  struct ccci_runs *rs = j->rs;
  size_t i, k;
  (void)status;
  if (j->err != NULL)
    ccci_warn("janitor", "retention: %s", j->err);
  for (i = 0; i < j->nacts; i++) {
    if (!j->done[i])
      continue;
    ccci_log(CCCI_LOG_INFO, "janitor", j->acts[i].id,
             "retention (%s): %s, %llu bytes freed", j->acts[i].why,
             ccci_retention_act_name(j->acts[i].act),
             (unsigned long long)j->acts[i].bytes_freed);
    if (j->acts[i].act != CCCI_RETENTION_REMOVE)
      continue;
    for (k = 0; k < rs->nall; k++) {
      if (strcmp(rs->all[k]->m.id, j->acts[i].id) == 0) {
        run_free(rs->all[k]);
        memmove(&rs->all[k], &rs->all[k + 1],
                (rs->nall - k - 1) * sizeof(*rs->all));
        rs->nall--;
        break;
      }
    }
  }
  for (i = 0; i < j->n; i++)
    free((char *)j->runs[i].id);
  free(j->runs);
  free(j->acts);
  free(j->done);
  free(j->err);
  free(j);
  rs->retention_busy = false;
  rs->saving--; /* a stopping daemon waits for it like for meta writes */
  check_stopped(rs);
}

static void retention_start(struct ccci_runs *rs, const struct ccci_config *cfg)
{
  struct retention_job *j;
  size_t i;
  if (rs->retention_busy ||
      (cfg->retention.max_age_ms == 0 && cfg->retention.max_bytes == 0))
    return;
  j = ccci_xcalloc(1, sizeof(*j));
  j->rs = rs;
  j->now = time(NULL);
  j->max_age_s = cfg->retention.max_age_ms / 1000u;
  j->max_bytes = cfg->retention.max_bytes;
  j->runs = ccci_xcalloc(rs->nall ? rs->nall : 1, sizeof(*j->runs));
  for (i = 0; i < rs->nall; i++) {
    const struct run *r = rs->all[i];
    j->runs[i].id = ccci_xstrdup(r->m.id);
    /* Only a finished run at rest: nothing of the daemon's still uses it. */
    j->runs[i].finished = r->m.state == CCCI_RUN_FINISHED &&
                          r->phase == PH_IDLE && !ccci_fileq_busy(&r->meta_q);
    j->runs[i].finished_at = r->m.finished_at;
  }
  j->n = rs->nall;
  rs->retention_busy = true;
  rs->saving++;
  (void)uv_queue_work(rs->loop, &j->work, retention_work, retention_done);
}

static void on_janitor(uv_timer_t *t)
{
  struct ccci_runs *rs = t->data;
  struct ccci_config *cfg = rs->config(rs->arg);
  json_decref(sweep(rs, false));
  retention_start(rs, cfg);
  uv_timer_start(&rs->janitor, on_janitor, cfg->janitor.interval_ms, 0);
  ccci_config_unref(cfg);
  admit(rs);
}

/* Probe the domains of detached runs whose time came; returns the next
 * probe time of those still held (0: none). */
static uint64_t probe_detached(struct ccci_runs *rs, uint64_t now)
{
  uint64_t earliest = 0;
  size_t i;
  if (rs->stopping)
    return 0;
  for (i = 0; i < rs->nall; i++) {
    struct run *r = rs->all[i];
    struct dom *d;
    if (!r->detached || r->phase != PH_IDLE)
      continue;
    d = dom_get(rs, r->m.domain);
    if (d->next_probe_ms <= now)
      janitor_run(rs, r, false, NULL);
    if (r->detached && (earliest == 0 || d->next_probe_ms < earliest))
      earliest = d->next_probe_ms;
  }
  return earliest;
}

static void on_lock_timer(uv_timer_t *t)
{
  struct ccci_runs *rs = t->data;
  admit(rs);
}

json_t *ccci_runs_janitor(struct ccci_runs *rs, bool dry_run)
{
  json_t *report = sweep(rs, dry_run);
  if (!dry_run)
    admit(rs);
  return report;
}

/* ---- submit ---- */

struct submit {
  struct ccci_runs *rs;
  struct run *r;
  char *src;
  char *err;
  int rc;
  struct ccci_config *cfg;
  char *meta_text; /* the forge's recipe_meta.yml, or NULL */
  size_t meta_len;
  int rewrite_rc; /* the second meta.json write, with the placement */
  void (*cb)(const char *id, const char *err, void *arg);
  void *arg;
  uv_work_t work;
};

/* The first line of @p msg (taken), saying how many more there were. */
static char *first_line(char *msg)
{
  char *nl = strchr(msg, '\n'), *t;
  size_t more = 0;
  const char *p;
  if (nl == NULL)
    return msg;
  for (p = nl + 1; *p != '\0'; p++)
    if (*p != '\n' && (p[1] == '\n' || p[1] == '\0'))
      more++;
  *nl = '\0';
  t = more > 0 ? ccci_xasprintf("%s (and %zu more)", msg, more)
               : ccci_xstrdup(msg);
  free(msg);
  return t;
}

/* Where the run may go (SPEC section 12), from its recipe_meta.yml at
 * @p own_path or the forge's text, under the operator's overlay; on the
 * thread pool. Returns whether it has a placement; a file that does not
 * parse places it anywhere and says why (place_err). */
static bool place_run(struct submit *s, const char *own_path)
{
  struct ccci_runs *rs = s->rs;
  struct ccci_run_meta *m = &s->r->m;
  struct ccci_strlist sv = {NULL, 0}, lb = {NULL, 0};
  char *err = NULL;
  size_t i;
  int rc;

  if (rs->placement == NULL)
    return false;
  rc = rs->placement(rs->arg, s->cfg, m->recipe, own_path,
                     own_path == NULL ? s->meta_text : NULL, s->meta_len, &sv,
                     &lb, &err);
  if (rc < 0) {
    for (i = 0; i < sv.n; i++)
      free(sv.v[i]);
    for (i = 0; i < lb.n; i++)
      free(lb.v[i]);
    free(sv.v);
    free(lb.v);
    s->r->place_err =
        err != NULL ? err : ccci_xstrdup("recipe_meta.yml cannot be read");
    /* One line for the note and the log: the first error, and a count. */
    s->r->place_err = first_line(s->r->place_err);
    return false;
  }
  free(err);
  m->place_servers = sv;
  m->place_labels = lb;
  return sv.n > 0 || lb.n > 0;
}

static void submit_work(uv_work_t *w)
{
  struct submit *s = ccci_container_of(w, struct submit, work);
  char *own, *meta;

  /* A forge run's placement is known before its first record. */
  if (s->src == NULL)
    (void)place_run(s, NULL);
  s->rc = ccci_recipe_accept(s->r->dir, s->src, &s->r->m, &s->err);
  if (s->rc < 0 || s->src == NULL)
    return;
  /* A local run's is read from the copy (what runs), then recorded. */
  own = ccci_xasprintf("%s/recipe/tests/recipe_meta.yml", s->r->dir);
  if (place_run(s, access(own, F_OK) == 0 ? own : NULL)) {
    meta = ccci_xasprintf("%s/meta.json", s->r->dir);
    s->rewrite_rc = ccci_run_meta_write(meta, &s->r->m);
    free(meta);
  }
  free(own);
}

/* A run that never started finishes at once (cancelled, superseded). */
static void finish_unstarted(struct run *r, enum ccci_run_reason reason)
{
  struct ccci_runs *rs = r->rs;
  r->m.state = CCCI_RUN_FINISHED;
  r->m.reason = reason;
  r->m.finished_at = time(NULL);
  save(r);
  tell_finished(rs, r);
}

/* Per PR at most one running and one pending run: the newer request
 * replaces the runs of its PR that have not started. */
static void supersede(struct ccci_runs *rs, struct run *newer)
{
  size_t i;
  if (newer->m.pr <= 0)
    return;
  for (i = 0; i < rs->nall; i++) {
    struct run *r = rs->all[i];
    if (r == newer || !r->queued || r->m.pr != newer->m.pr ||
        strcmp(r->m.repo, newer->m.repo) != 0)
      continue;
    dequeue(r);
    if (r->m.trigger != NULL)
      json_object_set_new(r->m.trigger, "superseded_by",
                          json_string(newer->m.id));
    ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "superseded by %s", newer->m.id);
    finish_unstarted(r, CCCI_REASON_SUPERSEDED);
  }
}

static void submit_done(uv_work_t *w, int status)
{
  struct submit *s = ccci_container_of(w, struct submit, work);
  struct ccci_runs *rs = s->rs;
  (void)status;
  if (s->rc < 0) {
    s->cb(NULL, s->err, s->arg);
    run_free(s->r);
  } else {
    if (s->r->place_err != NULL)
      ccci_log(CCCI_LOG_WARN, "runs", s->r->m.id,
               "placement: %s; the run may go to any server", s->r->place_err);
    if (s->rewrite_rc < 0)
      ccci_log(CCCI_LOG_ERROR, "runs", s->r->m.id,
               "cannot record the placement in %s/meta.json: %s; it is "
               "recorded with the next write",
               s->r->dir, strerror(-s->rewrite_rc));
    add_run(rs, s->r);
    enqueue(s->r);
    supersede(rs, s->r);
    ccci_log(CCCI_LOG_INFO, "runs", s->r->m.id,
             "queued %s from %s (number %llu)", s->r->m.recipe,
             s->src != NULL ? s->src : s->r->m.repo,
             (unsigned long long)s->r->m.number);
    s->cb(s->r->m.id, NULL, s->arg);
    admit(rs);
  }
  free(s->src);
  free(s->err);
  free(s->meta_text);
  ccci_config_unref(s->cfg);
  free(s);
}

/* Create the run dir, then (on the pool) copy the recipe from @p src (or
 * none) and write meta.json durably; @p cb follows. */
static int accept_run(struct ccci_runs *rs, struct run *r, const char *src,
                      const char *meta_text, size_t meta_len,
                      void (*cb)(const char *id, const char *err, void *arg),
                      void *arg, char **errp)
{
  struct submit *s;
  r->dir = ccci_xasprintf("%s/%s", rs->runs_dir, r->m.id);
  if (mkdir(r->dir, 0750) < 0) {
    int e = errno;
    *errp = ccci_xasprintf("cannot create %s: %s", r->dir, strerror(e));
    run_free(r);
    return e == EEXIST ? -EEXIST : -EIO;
  }
  s = ccci_xcalloc(1, sizeof(*s));
  s->rs = rs;
  s->r = r;
  s->src = ccci_xstrdup(src);
  s->cb = cb;
  s->arg = arg;
  s->cfg = rs->config(rs->arg);
  if (meta_text != NULL) {
    s->meta_text = ccci_xmalloc(meta_len + 1);
    memcpy(s->meta_text, meta_text, meta_len);
    s->meta_text[meta_len] = '\0';
    s->meta_len = meta_len;
  }
  /* uv_queue_work fails only without a work callback. */
  (void)uv_queue_work(rs->loop, &s->work, submit_work, submit_done);
  return 0;
}

int ccci_runs_accept(struct ccci_runs *rs, const struct ccci_runs_forge *t,
                     void (*cb)(const char *id, const char *err, void *arg),
                     void *arg, char **errp)
{
  struct ccci_config *cfg;
  struct run *r;
  const char *name = strchr(t->repo, '/');

  *errp = NULL;
  if (!ccci_run_id_valid(t->id) || name == NULL) {
    *errp = ccci_xasprintf("invalid run id '%s' or repo '%s'", t->id, t->repo);
    return -EINVAL;
  }
  if (find(rs, t->id) != NULL) {
    *errp = ccci_xasprintf("run %s exists already", t->id);
    return -EEXIST;
  }
  if (rs->stopping) {
    *errp = ccci_xstrdup("the daemon is stopping");
    return -ESHUTDOWN;
  }
  name++;
  cfg = rs->config(rs->arg);
  r = run_new(rs);
  snprintf(r->m.id, sizeof(r->m.id), "%s", t->id);
  r->m.number = next_number(rs, t->repo, 0);
  r->m.repo = ccci_xstrdup(t->repo);
  r->m.recipe = ccci_xstrdup(name);
  r->m.ref = t->ref ? ccci_xstrdup(t->ref) : NULL;
  r->m.sha = ccci_xstrdup(t->sha);
  r->m.pr = t->pr;
  r->m.quick = t->quick;
  r->m.domain = ccci_env_domain(cfg, name, t->pr, r->m.number);
  r->m.state = CCCI_RUN_QUEUED;
  r->m.trigger = json_deep_copy(t->trigger);
  r->m.submitted_by_uid = -1;
  r->m.created_at = time(NULL);
  r->m.exit_code = -1;
  r->m.attempt = 1;
  ccci_config_unref(cfg);
  return accept_run(rs, r, NULL, t->recipe_meta, t->recipe_meta_len, cb, arg,
                    errp);
}

void ccci_runs_finish_observe(struct ccci_runs *rs,
                              struct ccci_runs_finish_observer *o)
{
  ccci_list_add_tail(&rs->finish_observers, &o->link);
}

void ccci_runs_finish_unobserve(struct ccci_runs *rs,
                                struct ccci_runs_finish_observer *o)
{
  if (rs->finish_next == &o->link)
    rs->finish_next = o->link.next;
  ccci_list_remove(&o->link);
}

void ccci_runs_foreach(struct ccci_runs *rs,
                       void (*fn)(void *arg, const struct ccci_run_meta *m,
                                  const char *dir),
                       void *arg)
{
  size_t i;
  for (i = 0; i < rs->nall; i++)
    fn(arg, &rs->all[i]->m, rs->all[i]->dir);
}

struct ccci_redact_set *ccci_runs_secrets(struct ccci_runs *rs)
{
  return rs->secrets != NULL ? ccci_redact_set_ref(rs->secrets) : NULL;
}

int ccci_runs_submit(struct ccci_runs *rs, const struct ccci_runs_submit *req,
                     void (*cb)(const char *id, const char *err, void *arg),
                     void *arg, char **errp)
{
  struct ccci_config *cfg;
  struct run *r;
  struct stat st;
  const char *base;
  char *err = NULL, *repo;

  *errp = NULL;
  if (req->dir == NULL || req->dir[0] != '/')
    err = ccci_xstrdup("the recipe directory must be an absolute path");
  else if (stat(req->dir, &st) < 0)
    err = ccci_xasprintf("cannot use %s: %s", req->dir, strerror(errno));
  else if (!S_ISDIR(st.st_mode))
    err = ccci_xasprintf("%s is not a directory", req->dir);
  else if (access(req->dir, R_OK | X_OK) < 0)
    err = ccci_xasprintf("the daemon cannot read %s: %s", req->dir,
                         strerror(errno));
  else if (rs->stopping)
    err = ccci_xstrdup("the daemon is stopping");
  if (err == NULL && *(strrchr(req->dir, '/') + 1) == '\0')
    err = ccci_xstrdup("the recipe directory must not end in '/'");
  if (err != NULL) {
    *errp = err;
    return -EINVAL;
  }
  base = strrchr(req->dir, '/') + 1;
  cfg = rs->config(rs->arg);
  r = run_new(rs);
  ccci_run_id_next(&rs->last_id_ms, r->m.id);
  repo = ccci_xasprintf("local/%s", base);
  r->m.number = next_number(rs, repo, 0);
  r->m.repo = repo;
  r->m.recipe = ccci_xstrdup(base);
  r->m.ref = req->ref ? ccci_xstrdup(req->ref) : NULL;
  r->m.pr = req->pr;
  r->m.quick = req->quick;
  r->m.domain = ccci_env_domain(cfg, base, req->pr, r->m.number);
  r->m.state = CCCI_RUN_QUEUED;
  r->m.trigger = json_pack("{s:s,s:s}", "kind", "local", "dir", req->dir);
  r->m.submitted_by_uid = (int64_t)req->uid;
  r->m.created_at = time(NULL);
  r->m.exit_code = -1;
  r->m.attempt = 1;
  ccci_config_unref(cfg);
  return accept_run(rs, r, req->dir, NULL, 0, cb, arg, errp);
}

/* ---- cancel, show, list ---- */

int ccci_runs_cancel(struct ccci_runs *rs, const char *id, uid_t by)
{
  struct run *r = find(rs, id);
  if (r == NULL)
    return -ENOENT;
  if (r->m.state == CCCI_RUN_FINISHED)
    return -EALREADY;
  if (r->m.trigger != NULL)
    json_object_set_new(r->m.trigger, "cancelled_by_uid",
                        json_integer((json_int_t)by));
  ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "cancel requested by uid %ld",
           (long)by);
  if (r->queued) {
    dequeue(r);
    finish_unstarted(r, CCCI_REASON_CANCELLED);
    return 0;
  }
  if (r->cancel_req)
    return 0;
  r->cancel_req = true;
  if (r->phase == PH_MAIN) {
    r->m.state = CCCI_RUN_CANCELLING;
    save(r);
    ccci_runner_stop(r->runner, true);
  }
  return 0;
}

static json_t *steps_of(const struct run *r)
{
  char *path = run_path(r, "logs/index.json"), *text = NULL;
  json_t *j = NULL;
  if (ccci_read_file(path, 1024 * 1024, &text, NULL) == 0)
    j = json_loads(text, 0, NULL);
  free(text);
  free(path);
  return json_is_array(j) ? j : (json_decref(j), json_array());
}

int ccci_runs_view(struct ccci_runs *rs, const char *id,
                   struct ccci_runs_view *out)
{
  struct run *r = find(rs, id);
  if (r == NULL)
    return -ENOENT;
  out->state = r->m.state;
  out->reason = r->m.reason;
  out->exit_code = r->m.exit_code;
  out->dir = r->dir;
  out->logs = r->logs != NULL ? r->logs : r->closing_logs;
  return 0;
}

void ccci_runs_observe(struct ccci_runs *rs,
                       void (*fn)(void *arg, const char *id), void *arg)
{
  rs->observer = fn;
  rs->observer_arg = arg;
}

json_t *ccci_runs_show(struct ccci_runs *rs, const char *id)
{
  struct run *r = find(rs, id);
  json_t *j;
  if (r == NULL)
    return NULL;
  j = ccci_run_meta_to_json(&r->m);
  json_object_set_new(j, "dir", json_string(r->dir));
  json_object_set_new(j, "steps", steps_of(r));
  return j;
}

int ccci_runs_find(struct ccci_runs *rs, const char *repo, uint64_t number,
                   char out[CCCI_RUN_ID_MAX + 1])
{
  size_t i = rs->nall;
  while (i-- > 0) {
    const struct ccci_run_meta *m = &rs->all[i]->m;
    if (m->number == number && m->repo != NULL && strcmp(m->repo, repo) == 0) {
      memcpy(out, m->id, sizeof(m->id));
      return 0;
    }
  }
  return -ENOENT;
}

/* A run's meta, with what ps should say beyond it (`note`). */
static json_t *with_note(const struct run *r)
{
  json_t *j = ccci_run_meta_to_json(&r->m);
  char *note = NULL;
  if (r->stuck)
    note = ccci_xstrdup("stuck: detached past its budget");
  else if (r->detached)
    note = ccci_xstrdup("detached: its supervisor holds the lock");
  else if (r->phase == PH_TD_WAIT)
    note = ccci_xasprintf(
        "teardown failed; try %u of %u in %llu s", r->td_tries + 1,
        TEARDOWN_TRIES,
        (unsigned long long)(r->td_next_ms - uv_now(r->rs->loop)) / 1000);
  else if (r->orphan)
    note = ccci_xstrdup("janitor: tearing down");
  else if (r->queued)
    note = unplaceable_note(r->rs, r);
  if (note == NULL && r->queued && r->place_err != NULL)
    note = ccci_xasprintf("placed anywhere: %s", r->place_err);
  if (note != NULL)
    json_object_set_new(j, "note", json_string(note));
  free(note);
  return j;
}

json_t *ccci_runs_list(struct ccci_runs *rs, const char *state,
                       const char *recipe)
{
  json_t *a = json_array();
  size_t i = rs->nall;
  while (i-- > 0) {
    const struct ccci_run_meta *m = &rs->all[i]->m;
    if (state != NULL && strcmp(ccci_run_state_name(m->state), state) != 0)
      continue;
    if (recipe != NULL && strcmp(m->recipe, recipe) != 0)
      continue;
    json_array_append_new(a, with_note(rs->all[i]));
  }
  return a;
}

void ccci_runs_drain(struct ccci_runs *rs)
{
  if (!rs->draining)
    ccci_info("runs", "draining: no new run starts");
  rs->draining = true;
}

void ccci_runs_kick(struct ccci_runs *rs)
{
  admit(rs);
}

void ccci_runs_counters(struct ccci_runs *rs, struct ccci_runs_counters *out)
{
  size_t i;

  memset(out, 0, sizeof(*out));
  for (i = 0; i < rs->nall; i++) {
    const struct run *r = rs->all[i];
    out->by_state[r->m.state]++;
    if (r->m.reason != CCCI_REASON_NONE)
      out->by_reason[r->m.reason]++;
    out->queue_depth += r->queued;
  }
  out->active = rs->active;
  out->draining = rs->draining;
  if (rs->secrets != NULL) {
    out->secrets_values = ccci_redact_set_values(rs->secrets);
    out->secrets_patterns = ccci_redact_set_patterns(rs->secrets);
  }
  out->secrets_problem = rs->secrets_bad;
  out->redaction_bytes = rs->redacted_bytes;
  out->redaction_masked = rs->redacted_masks;
  for (i = 0; i < CCCI_JANITOR_VERDICT_COUNT; i++)
    out->janitor[i] = rs->janitor_acts[i];
  out->servers = rs->pool.n;
  ccci_pool_counts(&rs->pool, &out->servers_unhealthy, &out->servers_drained);
}

/* Why server @p s takes no run, for status: its last connection error,
 * the errors in a row, and the next probe. */
static json_t *unhealthy_problem(const struct ccci_pool_server *s, uint64_t now)
{
  const char *err = s->last_error != NULL ? s->last_error : "?";
  uint64_t in_s;
  if (s->probing || s->next_probe_ms == 0)
    return json_sprintf("server %s unhealthy: %s (%llu connection errors in a "
                        "row); probing it now",
                        s->name, err, (unsigned long long)s->fails);
  in_s = ((s->next_probe_ms > now ? s->next_probe_ms - now : 0) + 999) / 1000;
  return json_sprintf("server %s unhealthy: %s (%llu connection errors in a "
                      "row); next probe in %llu s",
                      s->name, err, (unsigned long long)s->fails,
                      (unsigned long long)in_s);
}

json_t *ccci_runs_problems(struct ccci_runs *rs)
{
  json_t *a = json_array();
  uint64_t now = uv_now(rs->loop);
  size_t i;
  if (rs->problem != NULL)
    json_array_append_new(a, json_string(rs->problem));
  for (i = 0; i < rs->pool.n; i++)
    if (rs->pool.v[i].unhealthy)
      json_array_append_new(a, unhealthy_problem(&rs->pool.v[i], now));
  for (i = 0; i < rs->nall; i++)
    if (rs->all[i]->stuck)
      json_array_append_new(
          a, json_sprintf("run %s on %s is stuck: the supervisor of daemon "
                          "instance %s still holds the lock past its budget",
                          rs->all[i]->m.id, rs->all[i]->m.domain,
                          rs->all[i]->m.daemon_instance
                              ? rs->all[i]->m.daemon_instance
                              : "?"));
  return a;
}

/* ---- the pool: servers, drain, probes ---- */

/* One probe of an unhealthy server (SPEC section 12). */
struct probe_run {
  struct ccci_runs *rs;
  char *server;
  struct ccci_probe *p;
  struct ccci_list link; /* rs->probes */
};

static void on_probe_timer(uv_timer_t *t)
{
  probe_schedule(t->data);
}

/* The probe's output for the daemon's log, masked with the daemon's
 * secrets (none shown while they are not known). Allocated. */
static char *probe_output(struct ccci_runs *rs,
                          const struct ccci_probe_result *res)
{
  struct ccci_redact *red;
  struct ccci_buf b;
  const char *o;
  size_t n;
  char *text;

  if (res->len == 0)
    return ccci_xstrdup("no output");
  if (rs->secrets == NULL)
    return ccci_xstrdup("output not shown: the secrets are not known yet");
  red = ccci_redact_new(rs->secrets, NULL);
  ccci_buf_init(&b, CCCI_PROBE_OUT_MAX * 2 + 64);
  if (ccci_redact_feed(red, res->out, res->len, &o, &n) == 0)
    buf_add(&b, o, n);
  if (ccci_redact_finish(red, &o, &n) == 0)
    buf_add(&b, o, n);
  ccci_redact_free(red);
  while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
    b.len--;
  text =
      ccci_xasprintf("output: %.*s%s", (int)b.len, b.data != NULL ? b.data : "",
                     res->truncated ? " [cut at 4 KiB]" : "");
  ccci_buf_close(&b);
  return text;
}

/* A failed probe (or one that could not start): the next one later. */
static void probe_failed(struct ccci_runs *rs, struct ccci_pool_server *s,
                         const struct ccci_config *cfg)
{
  uint64_t now = uv_now(rs->loop);
  s->backoff_ms = ccci_pool_backoff(s->backoff_ms, cfg->pool.probe_min_ms,
                                    cfg->pool.probe_max_ms);
  ccci_pool_probe_ended(s, false, now,
                        ccci_pool_jitter(s->backoff_ms, (unsigned)rand()));
}

static void probe_done(const struct ccci_probe_result *res, void *arg)
{
  struct probe_run *pr = arg;
  struct ccci_runs *rs = pr->rs;
  struct ccci_pool_server *s = ccci_pool_find(&rs->pool, pr->server);
  struct ccci_config *cfg = rs->config(rs->arg);
  bool ok = !res->timed_out && res->term_signal == 0 && res->exit_status == 0;
  char *out = probe_output(rs, res);

  if (ok)
    ccci_info("runs", "server %s: the probe reached it; healthy again (%s)",
              pr->server, out);
  else if (res->timed_out)
    ccci_warn("runs", "server %s: the probe was killed after %llu ms (%s)",
              pr->server, (unsigned long long)cfg->pool.probe_timeout_ms, out);
  else if (res->term_signal != 0)
    ccci_warn("runs", "server %s: the probe died of signal %d (%s)", pr->server,
              res->term_signal, out);
  else
    ccci_warn("runs", "server %s: the probe failed with exit %lld (%s)",
              pr->server, (long long)res->exit_status, out);
  free(out);
  if (s != NULL && rs->stopping)
    s->probing = false;
  else if (s != NULL && ok)
    ccci_pool_probe_ended(s, true, uv_now(rs->loop), 0);
  else if (s != NULL)
    probe_failed(rs, s, cfg);
  ccci_config_unref(cfg);
  ccci_list_remove(&pr->link);
  free(pr->server);
  free(pr);
  rs->probing--;
  check_stopped(rs);
  if (!rs->stopping) {
    probe_schedule(rs);
    if (ok)
      admit(rs);
  }
}

static void probe_start(struct ccci_runs *rs, struct ccci_pool_server *s,
                        const struct ccci_config *cfg)
{
  struct ccci_probe_spec sp;
  struct probe_run *pr;
  char **env = ccci_env_probe(cfg, s->name), *err = NULL;
  int rc;

  memset(&sp, 0, sizeof(sp));
  sp.self_exe = rs->self_exe;
  sp.argv = cfg->harness.probe_command.v;
  sp.env = env;
  sp.user = cfg->harness.user;
  sp.timeout_ms = cfg->pool.probe_timeout_ms;
  pr = ccci_xcalloc(1, sizeof(*pr));
  pr->rs = rs;
  pr->server = ccci_xstrdup(s->name);
  rc = cfg->harness.probe_command.n == 0
           ? (err = ccci_xstrdup("harness.probe_command is empty"), -EINVAL)
           : ccci_probe_start(rs->loop, &sp, probe_done, pr, &pr->p, &err);
  ccci_env_free(env);
  if (rc < 0) {
    ccci_error("runs", "server %s: cannot probe it: %s", s->name, err);
    free(err);
    free(pr->server);
    free(pr);
    probe_failed(rs, s, cfg);
    return;
  }
  s->probing = true;
  rs->probing++;
  ccci_list_add_tail(&rs->probes, &pr->link);
  ccci_info("runs", "server %s: probing it (probe %llu)", s->name,
            (unsigned long long)s->probes + 1);
}

/* Probe the unhealthy servers whose time came; wake up for the next. */
static void probe_schedule(struct ccci_runs *rs)
{
  struct ccci_config *cfg;
  uint64_t now = uv_now(rs->loop), next = 0;
  size_t i;

  if (rs->stopping)
    return;
  cfg = rs->config(rs->arg);
  for (i = 0; i < rs->pool.n; i++) {
    struct ccci_pool_server *s = &rs->pool.v[i];
    if (!s->unhealthy || s->probing || s->removed)
      continue;
    if (s->next_probe_ms <= now)
      probe_start(rs, s, cfg);
    /* A probe that could not start is due later. */
    if (!s->probing && (next == 0 || s->next_probe_ms < next))
      next = s->next_probe_ms;
  }
  ccci_config_unref(cfg);
  if (next != 0)
    uv_timer_start(&rs->probe_timer, on_probe_timer,
                   next > now ? next - now : 0, 0);
}

/* Does queued run @p r match server @p s? */
static bool run_matches(const struct ccci_runs *rs, const struct run *r,
                        const struct ccci_pool_server *s)
{
  struct ccci_sched_server ss = sched_server(s);
  struct ccci_sched_place pl;
  if (!placed_somewhere(rs, r))
    return true;
  pl.servers = (const char *const *)r->m.place_servers.v;
  pl.nservers = r->m.place_servers.n;
  pl.labels = (const char *const *)r->m.place_labels.v;
  pl.nlabels = r->m.place_labels.n;
  return ccci_sched_matches(&ss, &pl);
}

/* A placement no server of the pool matches at all: why it waits. */
static char *unplaceable_note(const struct ccci_runs *rs, const struct run *r)
{
  struct ccci_buf b;
  size_t i;
  char *t;
  if (!placed_somewhere(rs, r))
    return NULL;
  for (i = 0; i < rs->pool.n; i++)
    if (!rs->pool.v[i].removed && run_matches(rs, r, &rs->pool.v[i]))
      return NULL;
  ccci_buf_init(&b, SIZE_MAX);
  buf_add(&b, "waiting: no server in the pool matches (", 40);
  if (r->m.place_servers.n > 0) {
    buf_add(&b, "servers: ", 9);
    for (i = 0; i < r->m.place_servers.n; i++) {
      if (i > 0)
        buf_add(&b, ", ", 2);
      buf_add(&b, r->m.place_servers.v[i], strlen(r->m.place_servers.v[i]));
    }
  }
  if (r->m.place_labels.n > 0) {
    if (r->m.place_servers.n > 0)
      buf_add(&b, "; ", 2);
    buf_add(&b, "labels: ", 8);
    for (i = 0; i < r->m.place_labels.n; i++) {
      if (i > 0)
        buf_add(&b, ", ", 2);
      buf_add(&b, r->m.place_labels.v[i], strlen(r->m.place_labels.v[i]));
    }
  }
  t = ccci_xasprintf("%.*s)", (int)b.len, b.data != NULL ? b.data : "");
  ccci_buf_close(&b);
  return t;
}

json_t *ccci_runs_servers(struct ccci_runs *rs)
{
  struct ccci_config *cfg = rs->config(rs->arg);
  json_t *a = json_array();
  uint64_t now = uv_now(rs->loop);
  size_t i, k;

  pool_sync(rs, cfg);
  ccci_config_unref(cfg);
  for (i = 0; i < rs->pool.n; i++) {
    uint64_t queued = 0;
    for (k = 0; k < rs->nq; k++)
      if (run_matches(rs, rs->q[k], &rs->pool.v[i]))
        queued++;
    json_array_append_new(a,
                          ccci_pool_server_json(&rs->pool.v[i], queued, now));
  }
  return a;
}

static void pool_saved(void *arg, int rc)
{
  struct ccci_runs *rs = arg;
  if (rc < 0)
    ccci_error("runs",
               "cannot write %s: %s; the drain of the servers is not "
               "kept across a restart",
               rs->pool_path, strerror(-rc));
  rs->saving--;
  check_stopped(rs);
}

int ccci_runs_server_drain(struct ccci_runs *rs, const char *name, bool drained,
                           char **err)
{
  struct ccci_config *cfg = rs->config(rs->arg);
  struct ccci_pool_server *s;
  char *text;
  size_t len, i;

  *err = NULL;
  pool_sync(rs, cfg);
  ccci_config_unref(cfg);
  if (ccci_pool_set_drained(&rs->pool, name, drained) < 0) {
    struct ccci_buf b;
    ccci_buf_init(&b, SIZE_MAX);
    for (i = 0; i < rs->pool.n; i++) {
      if (i > 0)
        buf_add(&b, ", ", 2);
      buf_add(&b, rs->pool.v[i].name, strlen(rs->pool.v[i].name));
    }
    *err = ccci_xasprintf("no server '%s' in the pool; the servers are: %.*s",
                          name, (int)b.len, b.data != NULL ? b.data : "");
    ccci_buf_close(&b);
    return -ENOENT;
  }
  s = ccci_pool_find(&rs->pool, name);
  if (drained)
    ccci_info("runs",
              "server %s drained: it takes no new run; its %u running "
              "run%s finish",
              name, s->running, s->running == 1 ? "" : "s");
  else
    ccci_info("runs", "server %s undrained: it takes runs again", name);
  text = ccci_pool_drain_text(&rs->pool, &len);
  if (text != NULL) {
    rs->saving++;
    ccci_fileq_put(&rs->pool_q, ccci_xstrdup(rs->pool_path), text, len, 0,
                   pool_saved, rs);
  }
  if (!drained && !rs->stopping)
    admit(rs);
  return 0;
}

/* ---- open, stop, close ---- */

static int load_run(struct ccci_runs *rs, const char *name)
{
  struct run *r;
  char *dir = ccci_xasprintf("%s/%s", rs->runs_dir, name);
  char *meta = ccci_xasprintf("%s/meta.json", dir), *err = NULL;
  uint64_t ms;

  r = run_new(rs);
  r->dir = dir;
  if (ccci_run_meta_read(meta, &r->m, &err) < 0) {
    ccci_warn("runs", "%s: %s; the run dir is left alone", meta, err);
    free(err);
    free(meta);
    free(r->dir);
    free(r);
    return 0;
  }
  free(meta);
  next_number(rs, r->m.repo, r->m.number);
  ms = ccci_run_id_ms(r->m.id);
  if (ms > rs->last_id_ms)
    rs->last_id_ms = ms;
  add_run(rs, r);
  if (r->m.state == CCCI_RUN_QUEUED || r->m.state == CCCI_RUN_WAITING_LOCK) {
    r->m.state = CCCI_RUN_QUEUED;
    enqueue(r);
  }
  /* Runs left running by another instance are the janitor's. */
  return 0;
}

static int id_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int ccci_runs_open(const struct ccci_runs_env *env, struct ccci_runs **out,
                   char **err)
{
  struct ccci_runs *rs;
  DIR *d;
  struct dirent *de;
  char **names = NULL;
  size_t n = 0, i;
  int rc;

  *out = NULL;
  *err = NULL;
  rs = ccci_xcalloc(1, sizeof(*rs));
  ccci_list_init(&rs->finish_observers);
  rs->loop = env->loop;
  rs->state_dir = ccci_xstrdup(env->state_dir);
  rs->runs_dir = ccci_xasprintf("%s/runs", env->state_dir);
  rs->instance = ccci_xstrdup(env->instance);
  rs->self_exe = ccci_xstrdup(env->self_exe);
  rs->config = env->config;
  rs->arg = env->arg;
  rs->locks_dir = ccci_xasprintf("%s/locks", env->state_dir);
  rs->placement = env->placement;
  ccci_pool_init(&rs->pool);
  ccci_fileq_init(&rs->pool_q, rs->loop);
  ccci_list_init(&rs->probes);
  rs->pool_path = ccci_xasprintf("%s/servers.json", env->state_dir);
  rc = ccci_mkdir_p(rs->runs_dir, 0750);
  if (rc < 0) {
    *err = ccci_xasprintf("cannot create %s: %s", rs->runs_dir, strerror(-rc));
    ccci_runs_close(rs);
    return rc;
  }
  d = opendir(rs->runs_dir);
  if (d == NULL) {
    rc = -errno;
    *err = ccci_xasprintf("cannot read %s: %s", rs->runs_dir, strerror(errno));
    ccci_runs_close(rs);
    return rc;
  }
  while ((de = readdir(d)) != NULL) {
    if (!ccci_run_id_valid(de->d_name))
      continue;
    names = ccci_xrealloc(names, (n + 1) * sizeof(char *));
    names[n++] = ccci_xstrdup(de->d_name);
  }
  closedir(d);
  /* Ids sort in creation order: the queue keeps it. */
  if (n > 0)
    qsort(names, n, sizeof(char *), id_cmp);
  for (i = 0; i < n; i++) {
    (void)load_run(rs, names[i]);
    free(names[i]);
  }
  free(names);
  uv_timer_init(rs->loop, &rs->retry);
  uv_timer_init(rs->loop, &rs->grace);
  uv_timer_init(rs->loop, &rs->lock_timer);
  uv_timer_init(rs->loop, &rs->janitor);
  uv_timer_init(rs->loop, &rs->td_timer);
  uv_timer_init(rs->loop, &rs->probe_timer);
  rs->timers_open = 6;
  rs->retry.data = rs->grace.data = rs->lock_timer.data = rs->janitor.data =
      rs->td_timer.data = rs->probe_timer.data = rs;
  /* The drain of the servers, kept across restarts; a bad file is no
   * reason not to start. */
  {
    char *derr = NULL;
    struct ccci_config *cfg = rs->config(rs->arg);
    if (ccci_pool_drain_load(&rs->pool, rs->pool_path, &derr) < 0) {
      ccci_error("runs", "%s; starting with no server drained", derr);
      free(derr);
    }
    pool_sync(rs, cfg);
    ccci_config_unref(cfg);
  }
  *out = rs;
  /* The secrets are read at once: status names an unreadable file before
   * any run, and the first run finds the set built. */
  ccci_runs_secrets_refresh(rs);
  /* The first sweep comes before any admission: a run another instance
   * left is torn down, or its domain waits for its supervisor. */
  on_janitor(&rs->janitor);
  return 0;
}

static void stop_now(struct ccci_runs *rs)
{
  size_t i;
  for (i = 0; i < rs->nall; i++) {
    struct run *r = rs->all[i];
    if (r->phase == PH_IDLE)
      continue;
    r->daemon_stop = true;
    if (r->phase == PH_MAIN && !r->cancel_req) {
      ccci_log(CCCI_LOG_INFO, "runs", r->m.id, "cancelling: the daemon stops");
      ccci_runner_stop(r->runner, true);
    } else if (r->phase == PH_PREP && r->sec_wait) {
      r->sec_wait = false;
      requeue(r); /* not started: queued for the next daemon */
    } else if (r->phase == PH_PREP) {
      uv_cancel((uv_req_t *)&r->work);
    } else if (r->phase == PH_TD_WAIT) {
      finish(r); /* the next daemon's janitor tries again */
    }
  }
  check_stopped(rs);
}

static void on_grace(uv_timer_t *t)
{
  stop_now(t->data);
}

void ccci_runs_stop(struct ccci_runs *rs, uint64_t grace_ms,
                    void (*done)(void *arg), void *arg)
{
  rs->stopping = true;
  rs->stop_done = done;
  rs->stop_arg = arg;
  uv_timer_stop(&rs->retry);
  uv_timer_stop(&rs->lock_timer);
  uv_timer_stop(&rs->janitor);
  uv_timer_stop(&rs->td_timer);
  uv_timer_stop(&rs->probe_timer);
  {
    /* Probes go at once: the stop waits for their exit. */
    struct ccci_list *it;
    for (it = rs->probes.next; it != &rs->probes; it = it->next)
      ccci_probe_kill(ccci_container_of(it, struct probe_run, link)->p);
  }
  if (rs->active == 0) {
    check_stopped(rs);
    return;
  }
  if (rs->active > 0)
    ccci_info("runs", "stopping: %u run%s in progress; waiting %llu ms",
              rs->active, rs->active == 1 ? "" : "s",
              (unsigned long long)grace_ms);
  if (grace_ms == 0)
    stop_now(rs);
  else
    uv_timer_start(&rs->grace, on_grace, grace_ms, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
  struct ccci_runs *rs = h->data;
  size_t i;
  if (rs->timers_open > 0 && --rs->timers_open > 0)
    return; /* freed with the last timer */
  for (i = 0; i < rs->nall; i++)
    run_free(rs->all[i]);
  free(rs->all);
  free(rs->q);
  for (i = 0; i < rs->nnumbers; i++)
    free(rs->numbers[i].repo);
  free(rs->numbers);
  free_strv(rs->reported, rs->nreported);
  for (i = 0; i < rs->ndoms; i++) {
    free(rs->doms[i]->name);
    free(rs->doms[i]);
  }
  free(rs->doms);
  free(rs->locks_dir);
  free(rs->rr_repo);
  free(rs->rr_server);
  free(rs->pool_path);
  ccci_pool_close(&rs->pool);
  ccci_config_unref(rs->pool_cfg);
  ccci_redact_set_unref(rs->secrets);
  free(rs->secrets_fp);
  free(rs->problem);
  free(rs->state_dir);
  free(rs->runs_dir);
  free(rs->instance);
  free(rs->self_exe);
  free(rs);
}

void ccci_runs_close(struct ccci_runs *rs)
{
  if (rs->timers_open > 0) {
    uv_close((uv_handle_t *)&rs->retry, on_timer_closed);
    uv_close((uv_handle_t *)&rs->grace, on_timer_closed);
    uv_close((uv_handle_t *)&rs->lock_timer, on_timer_closed);
    uv_close((uv_handle_t *)&rs->janitor, on_timer_closed);
    uv_close((uv_handle_t *)&rs->td_timer, on_timer_closed);
    uv_close((uv_handle_t *)&rs->probe_timer, on_timer_closed);
    return;
  }
  rs->grace.data = rs;
  on_timer_closed((uv_handle_t *)&rs->grace);
}
