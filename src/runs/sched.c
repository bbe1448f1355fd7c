/* The scheduler's decision: the next queued run to start, or why none. */
#include "ccci/runs/sched.h"

#include <stdlib.h>
#include <string.h>

#include "ccci/core/util.h"

bool ccci_sched_has_slot(const struct ccci_sched_input *in)
{
  return !in->draining && !in->stopping && in->running < in->capacity;
}

static int repo_cmp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct repos of the runs, sorted by name; their count in @p n. */
static const char **repos_of(const struct ccci_sched_input *in, size_t *n)
{
  const char **repos =
      ccci_xmalloc((in->nruns ? in->nruns : 1) * sizeof(*repos));
  size_t i, k;
  *n = 0;
  for (i = 0; i < in->nruns; i++) {
    for (k = 0; k < *n && strcmp(repos[k], in->runs[i].repo) != 0; k++)
      ;
    if (k == *n)
      repos[(*n)++] = in->runs[i].repo;
  }
  if (*n > 1)
    qsort(repos, *n, sizeof(*repos), repo_cmp);
  return repos;
}

static void wait_on(const struct ccci_sched_input *in, size_t i)
{
  if (in->waiting != NULL)
    in->waiting[i] = true;
}

struct ccci_sched_verdict ccci_sched_decide(const struct ccci_sched_input *in)
{
  struct ccci_sched_verdict v = {CCCI_SCHED_IDLE, 0, 0};
  const char **repos;
  size_t nrepos, start = 0, i, k;

  if (!ccci_sched_has_slot(in)) {
    v.kind = CCCI_SCHED_CLOSED;
    return v;
  }
  if (!in->disk_ok) {
    v.kind = CCCI_SCHED_DISK_LOW;
    return v;
  }
  repos = repos_of(in, &nrepos);
  /* The repo after the one served last takes its turn first. */
  while (start < nrepos && in->last_repo != NULL &&
         strcmp(repos[start], in->last_repo) <= 0)
    start++;
  /* Each domain's line keeps its order by itself: the first of its runs
   * looked at either starts (and the pass ends) or is held by a fact of
   * the domain (busy, backoff) that holds the rest of its line too. */
  for (k = 0; k < nrepos && v.kind != CCCI_SCHED_START; k++) {
    const char *repo = repos[(start + k) % nrepos];
    for (i = 0; i < in->nruns; i++) {
      const struct ccci_sched_run *r = &in->runs[i];
      const struct ccci_sched_domain *d = &in->domains[r->domain];
      if (strcmp(r->repo, repo) != 0)
        continue;
      if (d->busy) {
        wait_on(in, i);
        continue;
      }
      if (in->now >= d->next_probe_ms) {
        v.kind = CCCI_SCHED_START;
        v.run = i;
        break;
      }
      wait_on(in, i); /* its lock was held outside: backoff */
      if (v.wake_ms == 0 || d->next_probe_ms < v.wake_ms)
        v.wake_ms = d->next_probe_ms;
    }
  }
  free(repos);
  if (v.kind != CCCI_SCHED_START)
    v.kind = v.wake_ms != 0 ? CCCI_SCHED_WAIT : CCCI_SCHED_IDLE;
  return v;
}
