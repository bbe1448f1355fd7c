/* The janitor's decisions (SPEC section 4, docs/concurrency.md): what to do
 * with a run another daemon instance left, and with a lock file. Pure: the
 * caller probes the lock and reads results.json, and carries it out. */
#ifndef CCCI_JANITOR_H
#define CCCI_JANITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/runs/run.h"

/** What the janitor does with one run. */
enum ccci_janitor_verdict {
  CCCI_JANITOR_LEAVE,    /**< finished, or live under this daemon */
  CCCI_JANITOR_REQUEUE,  /**< queued or waiting-lock: back to the queue */
  CCCI_JANITOR_DETACHED, /**< its supervisor survived (lock held): leave */
  CCCI_JANITOR_STUCK,    /**< detached past its whole budget: report */
  CCCI_JANITOR_ADOPT,    /**< lock free, results complete: take the result */
  CCCI_JANITOR_ORPHAN,   /**< lock free, no complete results: orphaned */
};
/** How many verdicts there are. */
#define CCCI_JANITOR_VERDICT_COUNT (CCCI_JANITOR_ORPHAN + 1)

/** The facts of one run. */
struct ccci_janitor_case {
  enum ccci_run_state state;
  bool ours;             /**< started by this daemon instance */
  bool lock_held;        /**< its domain lock is held by another process */
  bool results_complete; /**< its results.json is complete (results.h) */
  int64_t now;           /**< wall clock, epoch seconds */
  int64_t started_at;
  uint64_t budget_s; /**< deadline + kill_grace + teardown_grace */
};

/** Decide (the table of docs/concurrency.md). */
enum ccci_janitor_verdict
ccci_janitor_decide(const struct ccci_janitor_case *c);

/** The verdict's name for logs and `ccci janitor` ("orphan", ...). */
const char *ccci_janitor_verdict_name(enum ccci_janitor_verdict v);

#endif
