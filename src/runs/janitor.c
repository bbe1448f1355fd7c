/* The janitor's decisions (SPEC section 4, docs/concurrency.md): what to do
 * with a run another daemon instance left, and with a lock file. */
#include "ccci/runs/janitor.h"

#include <stddef.h>

enum ccci_janitor_verdict ccci_janitor_decide(const struct ccci_janitor_case *c)
{
  switch (c->state) {
  case CCCI_RUN_QUEUED:
  case CCCI_RUN_WAITING_LOCK:
    return CCCI_JANITOR_REQUEUE;
  case CCCI_RUN_FINISHED:
    return CCCI_JANITOR_LEAVE;
  case CCCI_RUN_RUNNING:
  case CCCI_RUN_CANCELLING:
    break;
  }
  if (c->ours)
    return CCCI_JANITOR_LEAVE;
  if (c->lock_held)
    return c->started_at > 0 && c->now > c->started_at + (int64_t)c->budget_s
               ? CCCI_JANITOR_STUCK
               : CCCI_JANITOR_DETACHED;
  return c->results_complete ? CCCI_JANITOR_ADOPT : CCCI_JANITOR_ORPHAN;
}

const char *ccci_janitor_verdict_name(enum ccci_janitor_verdict v)
{
  static const char *const names[] = {"leave", "requeue", "detached",
                                      "stuck", "adopt",   "orphan"};
  return (size_t)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}
