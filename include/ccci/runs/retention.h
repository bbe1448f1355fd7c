/* Retention of finished runs: measure the run dirs, decide which lose their
 * logs and which go entirely, and carry that out without following links. */
#ifndef CCCI_RETENTION_H
#define CCCI_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/util.h"
#include "ccci/runs/run.h"

/*
 * The policy (docs/retention.md has the decision table):
 *
 * - Only finished runs are candidates. An unfinished run is never pruned
 *   nor removed, though its bytes count in the total.
 * - max_age (seconds; 0 disables): a finished run whose finished_at is more
 *   than max_age seconds before now loses its logs: `logs/`, every
 *   `logs.attempt-*` and `recipe/` are removed and `logs.pruned` (when and
 *   why) is written in their place; meta.json, results.json and state/ stay.
 *   Past 2 x max_age the whole run dir is removed. A finished run with
 *   finished_at <= 0 (unknown) has no age and only max_bytes applies to it.
 * - max_bytes (0 disables): when the run dirs together take more than
 *   max_bytes (after the max_age actions), the logs of the oldest finished
 *   runs (by id) are pruned until the total is at most max_bytes; if pruning
 *   every finished run's logs is not enough, whole dirs of the oldest
 *   finished runs are removed until it is.
 *
 * Sizes are du-like: st_blocks * 512 summed over every entry of a run dir
 * (the dir itself, subdirectories, files and symlinks; a hard-linked file
 * once per name), from lstat, never following symlinks nor crossing into
 * another file system. They are estimates: a part that cannot be read (no
 * permission, deeper than 64 levels, gone meanwhile) counts as what lstat
 * shows of it, so one odd run never stops retention of the others; the
 * removal, which must get through, reports the error. The `logs.pruned`
 * marker a prune leaves (one block) is not counted.
 *
 * Nothing here touches libuv or the daemon's structures: the janitor calls
 * both functions on the thread pool.
 */

/** What happens to a run. */
enum ccci_retention_act {
  CCCI_RETENTION_PRUNE_LOGS, /**< logs/, logs.attempt-*, recipe/ go */
  CCCI_RETENTION_REMOVE,     /**< the whole run dir goes */
};

/** A run as the caller knows it. */
struct ccci_retention_run {
  const char *id; /**< must pass ccci_run_id_valid */
  /**
   * True only when the run can no longer change: a run that may still be
   * re-queued (cancelled by a daemon stop) must be passed as unfinished.
   */
  bool finished;
  int64_t finished_at; /**< epoch seconds; <= 0: unknown */
};

/** One decision of ccci_retention_plan. */
struct ccci_retention_action {
  char id[CCCI_RUN_ID_MAX + 1];
  enum ccci_retention_act act;
  const char *why;      /**< static text: "max_age" or "max_bytes" */
  uint64_t bytes_freed; /**< the estimate measured while planning */
};

/**
 * Measure every run of @p runs (at most one entry per id, in any order)
 * under @p runs_dir and decide what retention does at time @p now (epoch
 * seconds) with the limits @p max_age_s and @p max_bytes (0 disables a
 * rule). The actions come in id order (oldest first), at most one per run:
 * a run both pruned and then removed gets only the removal, with the reason
 * that decided the removal. A run dir that does not exist counts as empty
 * and gets no action; a run with nothing left to prune is not pruned again.
 * Nothing is changed on disk: this is also `ccci janitor --dry-run`.
 *
 * On success *@p out is a heap array of *@p nout actions (NULL when none)
 * for the caller to free. Returns 0, -EINVAL for an invalid or duplicate id,
 * or the negative errno of opening @p runs_dir (a missing runs_dir is no
 * error: no run takes room), with an allocated message in *@p err (else
 * NULL).
 */
int ccci_retention_plan(const char *runs_dir,
                        const struct ccci_retention_run *runs, size_t n,
                        int64_t now, uint64_t max_age_s, uint64_t max_bytes,
                        struct ccci_retention_action **out, size_t *nout,
                        char **err) CCCI_WUR;

/**
 * Carry out @p a under @p runs_dir at time @p now (epoch seconds, written
 * into the marker). Everything goes through a descriptor of @p runs_dir:
 * symlinks are removed as links, never followed, and no directory on
 * another file system (a mount point) is entered (-EXDEV).
 *
 * PRUNE_LOGS writes `logs.pruned` first (unless it exists) and then removes
 * `logs/`, every `logs.attempt-*` and `recipe/`; a run with none of those
 * (already pruned) is left exactly as it is. REMOVE removes the run dir
 * (or whatever stands at its name). A run dir that vanished meanwhile is
 * not an error. Removal goes on past a failing entry and returns the first
 * error.
 *
 * Does not check that the run is finished: the caller must not apply an
 * action to a run that was re-queued since it planned. Returns 0, -EINVAL
 * for an invalid id or action, -ENOTDIR when a pruned run's name is not a
 * directory, -ELOOP for a tree deeper than 64 levels, -EXDEV for a mount
 * point, or the negative errno of the first entry that could not be
 * removed, with an allocated message naming it in *@p err (else NULL).
 */
int ccci_retention_apply(const char *runs_dir,
                         const struct ccci_retention_action *a, int64_t now,
                         char **err) CCCI_WUR;

/** The name of @p act ("prune-logs", "remove"). */
const char *ccci_retention_act_name(enum ccci_retention_act act);

#endif
