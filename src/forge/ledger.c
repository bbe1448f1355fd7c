/* The trigger ledger's decision: the checks of docs/forge.md in their order. */
#include "ccci/forge/ledger.h"

#include <stddef.h>

enum ccci_ledger_verdict ccci_ledger_decide(const struct ccci_ledger_case *c)
{
  if (c->seen)
    return CCCI_LEDGER_ALREADY_SEEN;
  if (c->repo == CCCI_LEDGER_REPO_UNKNOWN)
    return CCCI_LEDGER_NOT_ENROLLED;
  /* Everything the first poll returns predates enrolment, even a comment
   * made in the second of its Date. */
  if (c->repo == CCCI_LEDGER_REPO_BASELINE)
    return CCCI_LEDGER_BASELINE;
  if (!c->trigger)
    return CCCI_LEDGER_NOT_A_TRIGGER;
  if (c->own)
    return CCCI_LEDGER_OWN_COMMENT;
  if (!c->on_pr)
    return CCCI_LEDGER_NOT_A_PR;
  if (c->created_at < c->enrolled_at)
    return CCCI_LEDGER_BEFORE_ENROLMENT;
  /* Its id may have been pruned from the seen set: an edit of it must not
   * look new. */
  if (c->created_at < c->watermark - c->keep_s)
    return CCCI_LEDGER_PAST_HORIZON;
  switch (c->pull) {
  case CCCI_LEDGER_PULL_UNKNOWN:
    return CCCI_LEDGER_NEED_PULL;
  case CCCI_LEDGER_PULL_FAILED:
    return CCCI_LEDGER_RETRY;
  case CCCI_LEDGER_PULL_MISSING:
    return CCCI_LEDGER_NOT_A_PR;
  case CCCI_LEDGER_PULL_CLOSED:
    return CCCI_LEDGER_PR_CLOSED;
  case CCCI_LEDGER_PULL_OPEN:
    break;
  }
  switch (c->auth) {
  case CCCI_LEDGER_AUTH_UNKNOWN:
    return CCCI_LEDGER_NEED_AUTH;
  case CCCI_LEDGER_AUTH_CANNOT_TELL:
    return CCCI_LEDGER_RETRY;
  case CCCI_LEDGER_AUTH_NO:
    return c->replied ? CCCI_LEDGER_ALREADY_TOLD : CCCI_LEDGER_NOT_AUTHORISED;
  case CCCI_LEDGER_AUTH_YES:
    break;
  }
  switch (c->run) {
  case CCCI_LEDGER_RUN_EXISTS:
    return CCCI_LEDGER_DUPLICATE;
  case CCCI_LEDGER_RUN_FAILED:
    return CCCI_LEDGER_RETRY;
  case CCCI_LEDGER_RUN_NONE:
    break;
  }
  return c->pr_pending ? CCCI_LEDGER_SUPERSEDE : CCCI_LEDGER_ACCEPT;
}

bool ccci_ledger_consumes(enum ccci_ledger_verdict v)
{
  return v != CCCI_LEDGER_NEED_PULL && v != CCCI_LEDGER_NEED_AUTH &&
         v != CCCI_LEDGER_RETRY;
}

bool ccci_ledger_runs(enum ccci_ledger_verdict v)
{
  return v == CCCI_LEDGER_ACCEPT || v == CCCI_LEDGER_SUPERSEDE;
}

const char *ccci_ledger_verdict_name(enum ccci_ledger_verdict v)
{
  static const char *const names[] = {
      "already-seen",   "not-enrolled", "baseline",         "not-a-trigger",
      "own-comment",    "not-a-pr",     "before-enrolment", "past-horizon",
      "need-pull",      "pr-closed",    "need-auth",        "retry",
      "not-authorised", "already-told", "duplicate",        "accept",
      "supersede"};
  return (size_t)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}
