/* The daemon's runs: their directories under <state_dir>/runs, the queue,
 * admission, the run lifecycle from start to a finished meta.json, cancel,
 * and the daemon's stop. */
#ifndef CCCI_RUNS_H
#define CCCI_RUNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ccci/core/config.h"
#include "ccci/core/list.h"
#include "ccci/core/util.h"
#include "ccci/logs/redact.h"
#include "ccci/runs/janitor.h"
#include "ccci/runs/results.h"
#include "ccci/runs/run.h"

struct ccci_runs;

/** What the daemon lends the runs. */
struct ccci_runs_env {
  uv_loop_t *loop;
  const char *state_dir;
  const char *instance; /**< this daemon's random id */
  const char *self_exe; /**< the ccci binary (for `ccci supervise`) */
  /** The current configuration (a new reference). */
  struct ccci_config *(*config)(void *arg);
  void *arg;
  /**
   * Where a run of @p recipe may go (SPEC section 12): the SERVERS and
   * SERVER_LABELS keys of recipe_meta.yml, the recipe's own file (at
   * @p own_path when not NULL, else the @p own_len bytes of @p own_text
   * when that is not NULL, else none) under the operator's overlay
   * `<harness.overlays_dir>/<recipe>/recipe_meta.yml` of @p cfg, which wins
   * key by key. Called on the thread pool when a run is accepted; fills
   * @p servers and @p labels (empty: any) and returns 0, or returns
   * -EINVAL with a message naming the file, line and key in @p err (the run
   * is then placed anywhere and the note says why). NULL: runs go anywhere.
   */
  int (*placement)(void *arg, const struct ccci_config *cfg, const char *recipe,
                   const char *own_path, const char *own_text, size_t own_len,
                   struct ccci_strlist *servers, struct ccci_strlist *labels,
                   char **err);
};

/** A local submission. */
struct ccci_runs_submit {
  const char *dir; /**< absolute path of the recipe directory */
  const char *ref; /**< or NULL */
  int64_t pr;      /**< 0: none */
  bool quick;
  uid_t uid; /**< the submitter (SO_PEERCRED) */
};

/**
 * Open the runs of @p env->state_dir: every run dir is read; queued runs
 * wait for admission again, runs a stopping daemon cancelled are re-queued
 * as a new attempt. Admission starts at once. Returns 0 or a negative errno
 * with a message in @p err.
 */
int ccci_runs_open(const struct ccci_runs_env *env, struct ccci_runs **out,
                   char **err) CCCI_WUR;

/**
 * Accept a local run: the directory is copied into the run dir on the
 * thread pool, then meta.json is written (state queued) and @p cb gets the
 * new run's id, or NULL and a message naming what to fix. A request refused
 * at once returns a negative errno with a message in @p err, and @p cb is
 * never called; 0 means @p cb will be.
 */
int ccci_runs_submit(struct ccci_runs *rs, const struct ccci_runs_submit *req,
                     void (*cb)(const char *id, const char *err, void *arg),
                     void *arg, char **err) CCCI_WUR;

/** A run accepted from the forge. */
struct ccci_runs_forge {
  const char *id;   /**< derived from the comment (idempotent) */
  const char *repo; /**< owner/name */
  int64_t pr;
  const char *sha; /**< the PR head, pinned */
  const char *ref; /**< the head branch, or NULL */
  bool quick;
  json_t *trigger; /**< copied into meta.json */
  /** The recipe's tests/recipe_meta.yml at @p sha, read from the forge
   * (@p recipe_meta_len bytes), or NULL when it has none: its placement
   * keys choose the run's server. */
  const char *recipe_meta;
  size_t recipe_meta_len;
};

/**
 * Accept a forge run durably: its dir, then meta.json (state queued) fsync'ed
 * on the thread pool, then @p cb with the id (or NULL and a message).
 * Returns 0 (cb follows), -EEXIST when run @p t->id exists already (a
 * comment read again), or another negative errno; with a message in @p err
 * and no call of @p cb.
 */
int ccci_runs_accept(struct ccci_runs *rs, const struct ccci_runs_forge *t,
                     void (*cb)(const char *id, const char *err, void *arg),
                     void *arg, char **err) CCCI_WUR;

/**
 * One of the parties told when a run finishes (the forge reporter; badges
 * and metrics next). The caller embeds it, sets @p fn and @p arg, and keeps
 * it alive until it unobserves.
 */
struct ccci_runs_finish_observer {
  /**
   * Called on the loop with the finished record, the run dir and the
   * run's results.json as the daemon read it (on the thread pool) when the
   * harness ended; @p res is NULL when the daemon did not read it (a run
   * that never started, or one the janitor took over: then read it
   * yourself if needed). Valid during the call only.
   */
  void (*fn)(void *arg, const struct ccci_run_meta *m, const char *dir,
             const struct ccci_results *res);
  void *arg;
  struct ccci_list link; /**< the runs' list; owned by runs.c */
};

/**
 * Tell @p o about every run that finishes from now on, after the observers
 * added before it. @p o must not be observing already.
 */
void ccci_runs_finish_observe(struct ccci_runs *rs,
                              struct ccci_runs_finish_observer *o);

/**
 * Stop telling @p o (a no-op when it is not observing). A call of an
 * observer may unobserve any of them, itself included.
 */
void ccci_runs_finish_unobserve(struct ccci_runs *rs,
                                struct ccci_runs_finish_observer *o);

/** Call @p fn for every run known now. */
void ccci_runs_foreach(struct ccci_runs *rs,
                       void (*fn)(void *arg, const struct ccci_run_meta *m,
                                  const char *dir),
                       void *arg);

/** The secrets the runs mask now (a new reference), or NULL before any. */
struct ccci_redact_set *ccci_runs_secrets(struct ccci_runs *rs);

/**
 * Cancel run @p id through the stop funnel (a queued run finishes at once).
 * Returns 0; -ENOENT for no such run; -EALREADY when it has finished.
 */
int ccci_runs_cancel(struct ccci_runs *rs, const char *id, uid_t by) CCCI_WUR;

/** The run's meta.json plus its steps (new reference), or NULL. */
json_t *ccci_runs_show(struct ccci_runs *rs, const char *id);

/**
 * The id of run @p number of repo @p repo (`owner/name`, `local/<recipe>`)
 * into @p out: 0, or -ENOENT. Numbers are unique per repo; should two runs
 * share one, the newer is found.
 */
int ccci_runs_find(struct ccci_runs *rs, const char *repo, uint64_t number,
                   char out[CCCI_RUN_ID_MAX + 1]) CCCI_WUR;

/** Runs, newest first, optionally only of one state and/or recipe. */
json_t *ccci_runs_list(struct ccci_runs *rs, const char *state,
                       const char *recipe);

struct ccci_logstore;

/** What a log reader needs to know of a run now. */
struct ccci_runs_view {
  enum ccci_run_state state;
  enum ccci_run_reason reason;
  int exit_code;              /**< -1: none */
  const char *dir;            /**< the run dir; valid while @p rs lives */
  struct ccci_logstore *logs; /**< the live log store, or NULL */
};

/** Describe run @p id into @p out: 0, or -ENOENT. */
int ccci_runs_view(struct ccci_runs *rs, const char *id,
                   struct ccci_runs_view *out) CCCI_WUR;

/**
 * Call @p fn(@p arg, id) on the loop after every change of a run's state
 * (and when its log store opens or closes). One observer; NULL removes it.
 */
void ccci_runs_observe(struct ccci_runs *rs,
                       void (*fn)(void *arg, const char *id), void *arg);

/**
 * Sweep now (`ccci janitor`): runs another daemon instance left running and
 * lock files nobody uses, as docs/concurrency.md says. With @p dry_run
 * nothing is done or taken (locks are only probed). Returns the decisions:
 * `[{kind: "run", id, domain, verdict} | {kind: "lock", domain, verdict}]`.
 */
json_t *ccci_runs_janitor(struct ccci_runs *rs, bool dry_run);

/** Stop admitting runs (`ccci drain`); runs in progress go on. */
void ccci_runs_drain(struct ccci_runs *rs);

/** Admit again after a configuration change (capacity, ...). */
void ccci_runs_kick(struct ccci_runs *rs);

/**
 * Look at the secret files again (on the thread pool; at open and on
 * SIGHUP): changed values are switched into the streams already open (old
 * plus new, SPEC section 7) and used by later runs; an unreadable file is a
 * problem (`status`) and no run starts until a look succeeds.
 */
void ccci_runs_secrets_refresh(struct ccci_runs *rs);

/** The runs' counters for `status` (plain numbers; a front renders them). */
struct ccci_runs_counters {
  uint64_t by_state[CCCI_RUN_STATE_COUNT];
  uint64_t by_reason[CCCI_REASON_COUNT]; /**< [CCCI_REASON_NONE] stays 0 */
  uint64_t queue_depth;                  /**< queued or waiting for a lock */
  uint64_t active;                       /**< runs holding a slot */
  bool draining;
  uint64_t secrets_values;   /**< values the runs mask now */
  uint64_t secrets_patterns; /**< of which patterns */
  bool secrets_problem;      /**< the last look at the secrets failed */
  uint64_t redaction_bytes;  /**< run output bytes through the redactor */
  uint64_t redaction_masked; /**< masked runs it wrote */
  /** Janitor decisions acted on, by verdict ([CCCI_JANITOR_LEAVE] stays 0). */
  uint64_t janitor[CCCI_JANITOR_VERDICT_COUNT];
  uint64_t servers;           /**< in the pool (removed ones with runs too) */
  uint64_t servers_unhealthy; /**< marked unhealthy, waiting for a probe */
  uint64_t servers_drained;
};

/** Fill @p out with the runs' counters now. */
void ccci_runs_counters(struct ccci_runs *rs, struct ccci_runs_counters *out);

/**
 * The pool now (`ccci server ls`, `status`, `/metrics`): an array with one
 * object per server in config order, then servers removed from the config
 * that still have runs: `name`, `capacity`, `running`, `queued` (queued
 * runs whose placement matches it), `healthy`, `drained`, `removed`,
 * `labels`, `domain_suffix`, `gateway` (or null), `connection_errors` (in
 * a row now), `connection_errors_total`, `runs_started`, `probes`,
 * `probe_failures`, `next_probe_in_ms` (or null), `last_error` (or null:
 * the connection error text that matched, never a call's output). A new
 * reference (docs/protocol.md).
 */
json_t *ccci_runs_servers(struct ccci_runs *rs);

/**
 * Drain (@p drained true) or undrain server @p name: a drained server
 * takes no new run, its running runs finish. Kept across restarts
 * (`<state_dir>/servers.json`). Returns 0, or -ENOENT with a message
 * naming the servers there are in @p err.
 */
int ccci_runs_server_drain(struct ccci_runs *rs, const char *name, bool drained,
                           char **err) CCCI_WUR;

/** Problems an operator must fix (e.g. an unreadable secret), as strings. */
json_t *ccci_runs_problems(struct ccci_runs *rs);

/**
 * The daemon stops: no more admission; after @p grace_ms the runs still
 * going are cancelled through the funnel and re-queued for the next start.
 * @p done is called when none is left; then ccci_runs_close frees.
 */
void ccci_runs_stop(struct ccci_runs *rs, uint64_t grace_ms,
                    void (*done)(void *arg), void *arg);

/** Free everything (after ccci_runs_stop's done). */
void ccci_runs_close(struct ccci_runs *rs);

#endif
