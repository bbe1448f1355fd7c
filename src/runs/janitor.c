/* The janitor's decisions (SPEC section 4, docs/concurrency.md): what to do
 * with a run another daemon instance left, and with a lock file. */
#include "ccci/runs/janitor.h"

#include <jansson.h>
#include <string.h>

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

bool ccci_janitor_results_complete(const char *text, size_t len, bool *failed)
{
  static const char *const ok[] = {"pass", "fail", "skip", "error"};
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *tiers = json_object_get(j, "tiers"), *t;
  const char *name;
  bool complete = json_is_object(j) && json_object_get(j, "level") != NULL &&
                  json_is_object(tiers) && json_object_size(tiers) > 0;

  *failed = false;
  json_object_foreach(complete ? tiers : NULL, name, t)
  {
    const char *s = json_string_value(json_object_get(t, "status"));
    size_t i;
    bool known = false;
    for (i = 0; s != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
      known = known || strcmp(s, ok[i]) == 0;
    if (!known) {
      complete = false;
      break;
    }
    if (strcmp(s, "fail") == 0 || strcmp(s, "error") == 0)
      *failed = true;
  }
  json_decref(j);
  if (!complete)
    *failed = false;
  return complete;
}
