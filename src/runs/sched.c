/* The scheduler's decision: the next queued run to start and its server,
 * or why none. */
#include "ccci/runs/sched.h"

#include <stdlib.h>
#include <string.h>

#include "ccci/core/util.h"

static bool has(const char *const *v, size_t n, const char *s)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

bool ccci_sched_matches(const struct ccci_sched_server *s,
                        const struct ccci_sched_place *p)
{
  size_t i;
  if (p == NULL)
    return true;
  if (p->nservers > 0 && !has(p->servers, p->nservers, s->name))
    return false;
  for (i = 0; i < p->nlabels; i++)
    if (!has(s->labels, s->nlabels, p->labels[i]))
      return false;
  return true;
}

static bool open_slot(const struct ccci_sched_server *s)
{
  return !s->closed && s->running < s->capacity;
}

bool ccci_sched_has_slot(const struct ccci_sched_input *in)
{
  size_t i;
  if (in->draining || in->stopping)
    return false;
  for (i = 0; i < in->nservers; i++)
    if (open_slot(&in->servers[i]))
      return true;
  return false;
}

/* Is server a less loaded than b (a.running / a.capacity < b's)? Both
 * have a free slot, so both capacities are above 0. */
static bool less_loaded(const struct ccci_sched_server *a,
                        const struct ccci_sched_server *b)
{
  return (uint64_t)a->running * b->capacity <
         (uint64_t)b->running * a->capacity;
}

/* The server a run of placement @p p starts on: the least loaded open one
 * with a free slot, the first after the last chosen among equals; or
 * nservers when none. */
static size_t best_server(const struct ccci_sched_input *in,
                          const struct ccci_sched_place *p, size_t first)
{
  size_t best = in->nservers, k;
  for (k = 0; k < in->nservers; k++) {
    size_t i = (first + k) % in->nservers;
    const struct ccci_sched_server *s = &in->servers[i];
    if (!open_slot(s) || !ccci_sched_matches(s, p))
      continue;
    if (best == in->nservers || less_loaded(s, &in->servers[best]))
      best = i;
  }
  return best;
}

static bool any_server(const struct ccci_sched_input *in,
                       const struct ccci_sched_place *p)
{
  size_t i;
  for (i = 0; i < in->nservers; i++)
    if (ccci_sched_matches(&in->servers[i], p))
      return true;
  return false;
}

/* What a pass knows of a placement class: looked at yet, its server (or
 * nservers), whether any server matches it at all. */
struct class_memo {
  bool known;
  bool placeable;
  size_t server;
};

struct order {
  const char *repo;
  size_t run;
};

static int order_cmp(const void *a, const void *b)
{
  const struct order *x = a, *y = b;
  int c = strcmp(x->repo, y->repo);
  if (c != 0)
    return c;
  return x->run < y->run ? -1 : x->run > y->run;
}

static void mark(bool *v, size_t i)
{
  if (v != NULL)
    v[i] = true;
}

struct ccci_sched_verdict ccci_sched_decide(const struct ccci_sched_input *in)
{
  struct ccci_sched_verdict v = {CCCI_SCHED_IDLE, 0, 0, 0};
  struct order *ord;
  struct class_memo *memo, anywhere = {false, false, 0};
  bool *held; /* per domain: an older run of its line is held this pass */
  size_t *repo_start, nrepos = 0, start = 0, first_server = 0, i, k, ndom = 0;

  if (!ccci_sched_has_slot(in)) {
    v.kind = CCCI_SCHED_CLOSED;
    return v;
  }
  if (!in->disk_ok) {
    v.kind = CCCI_SCHED_DISK_LOW;
    return v;
  }
  if (in->last_server != NULL)
    for (i = 0; i < in->nservers; i++)
      if (strcmp(in->servers[i].name, in->last_server) == 0) {
        first_server = (i + 1) % in->nservers;
        break;
      }
  /* The runs grouped by repo (name order), oldest first in each. */
  ord = ccci_xmalloc((in->nruns ? in->nruns : 1) * sizeof(*ord));
  repo_start = ccci_xmalloc((in->nruns + 1) * sizeof(*repo_start));
  for (i = 0; i < in->nruns; i++) {
    ord[i].repo = in->runs[i].repo;
    ord[i].run = i;
    if (in->runs[i].domain + 1 > ndom)
      ndom = in->runs[i].domain + 1;
  }
  qsort(ord, in->nruns, sizeof(*ord), order_cmp);
  for (i = 0; i < in->nruns; i++)
    if (i == 0 || strcmp(ord[i].repo, ord[i - 1].repo) != 0)
      repo_start[nrepos++] = i;
  repo_start[nrepos] = in->nruns;
  memo = ccci_xcalloc(in->nplaces ? in->nplaces : 1, sizeof(*memo));
  held = ccci_xcalloc(ndom ? ndom : 1, sizeof(*held));
  /* The repo after the one served last takes its turn first. */
  while (start < nrepos && in->last_repo != NULL &&
         strcmp(ord[repo_start[start]].repo, in->last_repo) <= 0)
    start++;
  for (k = 0; k < nrepos && v.kind != CCCI_SCHED_START; k++) {
    size_t g = (start + k) % nrepos, j;
    for (j = repo_start[g]; j < repo_start[g + 1]; j++) {
      size_t ri = ord[j].run;
      const struct ccci_sched_run *r = &in->runs[ri];
      const struct ccci_sched_domain *d = &in->domains[r->domain];
      const struct ccci_sched_place *p =
          r->place == CCCI_SCHED_ANYWHERE ? NULL : &in->places[r->place];
      struct class_memo *m =
          r->place == CCCI_SCHED_ANYWHERE ? &anywhere : &memo[r->place];
      if (d->busy || held[r->domain]) {
        mark(in->waiting, ri);
        continue;
      }
      if (in->now < d->next_probe_ms) {
        mark(in->waiting, ri); /* its lock was held outside: backoff */
        if (v.wake_ms == 0 || d->next_probe_ms < v.wake_ms)
          v.wake_ms = d->next_probe_ms;
        held[r->domain] = true;
        continue;
      }
      if (!m->known) {
        m->known = true;
        m->server = best_server(in, p, first_server);
        m->placeable = m->server < in->nservers || any_server(in, p);
      }
      if (m->server < in->nservers) {
        v.kind = CCCI_SCHED_START;
        v.run = ri;
        v.server = m->server;
        break;
      }
      /* No open server of its placement has a slot: the rest of its line
       * waits behind it. */
      if (!m->placeable)
        mark(in->unplaceable, ri);
      held[r->domain] = true;
    }
  }
  free(held);
  free(memo);
  free(repo_start);
  free(ord);
  if (v.kind != CCCI_SCHED_START)
    v.kind = v.wake_ms != 0 ? CCCI_SCHED_WAIT : CCCI_SCHED_IDLE;
  return v;
}
