/* The run outcome: supervision end, state files and results.json to the
 * reason, the teardown, the level and the commit status. */
#include "ccci/runs/outcome.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
  struct ccci_outcome o = {
      CCCI_REASON_NONE, CCCI_BUDGET_UNCHECKED, false, false, -1, NULL};
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
    /* The harness stopped at a connection error: not the recipe's failure
     * nor its success, whatever the exit (a cancel or a timeout keeps its
     * reason). */
    if (c->unreachable && o.reason != CCCI_REASON_CANCELLED &&
        o.reason != CCCI_REASON_TIMEOUT) {
      o.reason = CCCI_REASON_ERROR;
      o.budget = CCCI_BUDGET_UNCHECKED;
      o.unreachable = true;
    }
    /* A deployment is left whenever opstate still says so once the
     * harness is gone: stopped while deployed, its server unreachable for
     * the harness's own teardown, a teardown call that failed, a harness
     * that crashed. The daemon tears it down (tried again until it
     * works), except after a supervisor that died by a signal it did not
     * send while the run was not being stopped: the harness may still be
     * running then (only the backstop kills the session), and a teardown
     * beside it would race its abra calls (left as before: opstate tells
     * the operator; docs/concurrency.md). */
    o.teardown = c->opstate_deployed &&
                 (!c->supervisor_died || o.reason == CCCI_REASON_CANCELLED ||
                  o.reason == CCCI_REASON_TIMEOUT || o.unreachable);
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

/* A decimal count at @p s (to the end of the line); false if not one. */
static bool count(const char *s, size_t n, uint64_t *out)
{
  uint64_t v = 0;
  size_t i;
  if (n == 0 || n > 19)
    return false;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

static bool copy_value(char *dst, size_t cap, const char *s, size_t n)
{
  if (n == 0 || n >= cap || memchr(s, '\0', n) != NULL)
    return false;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return true;
}

int ccci_outcome_server_parse(const char *text, size_t len,
                              struct ccci_outcome_server *out, const char **why)
{
  const char *p = text, *end = text + len;
  bool have_reached = false, have_errors = false;

  memset(out, 0, sizeof(*out));
  *why = NULL;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl != NULL ? nl : end, *sp;
    size_t klen, vlen;
    if (le > p && le[-1] == '\r')
      le--;
    if (le == p) {
      p = nl != NULL ? nl + 1 : end;
      continue;
    }
    sp = memchr(p, ' ', (size_t)(le - p));
    if (sp == NULL) {
      *why = "a line is not `<key> <value>`";
      return -EINVAL;
    }
    klen = (size_t)(sp - p);
    vlen = (size_t)(le - sp - 1);
    if (klen == 6 && memcmp(p, "server", 6) == 0) {
      if (!copy_value(out->name, sizeof(out->name), sp + 1, vlen)) {
        *why = "`server` is empty or too long";
        return -EINVAL;
      }
    } else if (klen == 7 && memcmp(p, "reached", 7) == 0) {
      if (!count(sp + 1, vlen, &out->reached)) {
        *why = "`reached` is not a count";
        return -EINVAL;
      }
      have_reached = true;
    } else if (klen == 17 && memcmp(p, "connection_errors", 17) == 0) {
      if (!count(sp + 1, vlen, &out->connection_errors)) {
        *why = "`connection_errors` is not a count";
        return -EINVAL;
      }
      have_errors = true;
    } else if (klen == 5 && memcmp(p, "error", 5) == 0) {
      if (!copy_value(out->error, sizeof(out->error), sp + 1, vlen)) {
        *why = "`error` is empty or too long";
        return -EINVAL;
      }
    } else if (klen == 11 && memcmp(p, "unreachable", 11) == 0) {
      if (!copy_value(out->unreachable, sizeof(out->unreachable), sp + 1,
                      vlen)) {
        *why = "`unreachable` is empty or too long";
        return -EINVAL;
      }
    }
    p = nl != NULL ? nl + 1 : end;
  }
  if (!have_reached || !have_errors) {
    *why = "`reached` or `connection_errors` is missing";
    return -EINVAL;
  }
  return 0;
}
