/* The run outcome: supervision end, state files and results.json to the
 * reason, the teardown, the level and the commit status. */
#include "ccci/runs/outcome.h"

#include <stddef.h>

/* How the harness itself ended, for a run the daemon supervised. */
static enum ccci_run_reason ended(const struct ccci_outcome_case *c)
{
  if (c->cancelled)
    return CCCI_REASON_CANCELLED;
  if (c->timed_out)
    return CCCI_REASON_TIMEOUT;
  if (c->supervisor_died)
    return CCCI_REASON_ERROR;
  if (c->signal != 0)
    return CCCI_REASON_ERROR; /* the harness crashed */
  if (c->exit_code == 0)
    return CCCI_REASON_SUCCESS;
  if (c->exit_code == 126 || c->exit_code == 127 || c->exit_code < 0)
    return CCCI_REASON_ERROR; /* the harness could not be run */
  return CCCI_REASON_FAILURE;
}

/* DG4.1: a run that deployed deployed exactly its app and its cold
 * dependencies, once each. */
static enum ccci_outcome_budget budget(const struct ccci_outcome_case *c)
{
  if (c->deploys == CCCI_OUTCOME_NO_FILE)
    return CCCI_BUDGET_UNCHECKED; /* the harness did not deploy */
  if (c->deploys < 0)
    return CCCI_BUDGET_NOT_COUNT;
  return c->deploys == 1 + c->cold_deps ? CCCI_BUDGET_KEPT : CCCI_BUDGET_OVER;
}

/* Only a success or a failure has a level: a stopped or broken run's
 * results say how far it got, not what the recipe reached. */
int ccci_outcome_level(enum ccci_run_reason reason,
                       const struct ccci_results *r)
{
  if (r == NULL || !r->complete || !ccci_run_reason_keeps_level(reason))
    return -1;
  return r->level;
}

struct ccci_outcome ccci_outcome_decide(const struct ccci_outcome_case *c)
{
  struct ccci_outcome o = {CCCI_REASON_NONE, CCCI_BUDGET_UNCHECKED, false, -1,
                           NULL};
  bool complete = c->results != NULL && c->results->complete;

  if (c->adopted) {
    /* Nobody saw the harness end: its complete results.json is the only
     * word on it. */
    o.reason = !complete            ? CCCI_REASON_ORPHANED
               : c->results->failed ? CCCI_REASON_FAILURE
                                    : CCCI_REASON_SUCCESS;
    o.teardown = true;
  } else {
    o.reason = ended(c);
    /* The harness exited 0 but its complete results.json says a tier
     * failed (or names a harness error): the results are the word. */
    if (o.reason == CCCI_REASON_SUCCESS && complete && c->results->failed)
      o.reason = CCCI_REASON_FAILURE;
    if (o.reason == CCCI_REASON_SUCCESS || o.reason == CCCI_REASON_FAILURE) {
      o.budget = budget(c);
      if (o.budget == CCCI_BUDGET_NOT_COUNT || o.budget == CCCI_BUDGET_OVER)
        o.reason = CCCI_REASON_DEPLOY_BUDGET;
    }
    o.teardown = (o.reason == CCCI_REASON_CANCELLED ||
                  o.reason == CCCI_REASON_TIMEOUT) &&
                 c->opstate_deployed;
  }
  o.level = ccci_outcome_level(o.reason, c->results);
  o.commit_status = ccci_run_reason_commit_status(o.reason);
  return o;
}

enum ccci_teardown ccci_outcome_teardown(bool forced, long long exit_status)
{
  if (forced)
    return CCCI_TEARDOWN_FORCED;
  return exit_status == 0 ? CCCI_TEARDOWN_CLEAN : CCCI_TEARDOWN_FAILED;
}
