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

#define NONE ((size_t)-1)

/* A pass over the queue: the repos after the one served last in name
 * order, then the others from the first, each repo's runs oldest first.
 * Instead of sorting the queue into that order, a pass compares runs by
 * it: each domain's line is looked at through its first run in pass order
 * (the later ones wait behind it), and the first of those heads that can
 * start is found in one scan. */
struct pass {
  const struct ccci_sched_input *in;
  bool *wrap; /* per run: its repo comes in the second round */
};

/* Does run a come before run b in the pass? */
static bool before(const struct pass *p, size_t a, size_t b)
{
  int c;
  if (p->wrap[a] != p->wrap[b])
    return p->wrap[b];
  c = strcmp(p->in->runs[a].repo, p->in->runs[b].repo);
  return c != 0 ? c < 0 : a < b;
}

static bool in_backoff(const struct ccci_sched_input *in,
                       const struct ccci_sched_domain *d)
{
  return !d->busy && in->now < d->next_probe_ms;
}

/* The server a run's placement class starts on, or nservers; looked up
 * once per class and pass. */
static struct class_memo *class_of(const struct ccci_sched_input *in,
                                   struct class_memo *memo,
                                   struct class_memo *anywhere, size_t run,
                                   size_t first_server)
{
  const struct ccci_sched_run *r = &in->runs[run];
  const struct ccci_sched_place *pl =
      r->place == CCCI_SCHED_ANYWHERE ? NULL : &in->places[r->place];
  struct class_memo *m =
      r->place == CCCI_SCHED_ANYWHERE ? anywhere : &memo[r->place];
  if (!m->known) {
    m->known = true;
    m->server = best_server(in, pl, first_server);
    m->placeable = m->server < in->nservers || any_server(in, pl);
  }
  return m;
}

struct ccci_sched_verdict ccci_sched_decide(const struct ccci_sched_input *in)
{
  struct ccci_sched_verdict v = {CCCI_SCHED_IDLE, 0, 0, 0};
  struct pass p = {in, NULL};
  struct class_memo *memo, anywhere = {false, false, 0};
  size_t *head, *heads, nheads = 0, chosen = NONE, first_server = 0, i, k;
  size_t ndom = 0;

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
  for (i = 0; i < in->nruns; i++)
    if (in->runs[i].domain + 1 > ndom)
      ndom = in->runs[i].domain + 1;
  p.wrap = ccci_xmalloc((in->nruns ? in->nruns : 1) * sizeof(*p.wrap));
  heads = ccci_xmalloc((in->nruns ? in->nruns : 1) * sizeof(*heads));
  head = ccci_xmalloc((ndom ? ndom : 1) * sizeof(*head));
  memo = ccci_xcalloc(in->nplaces ? in->nplaces : 1, sizeof(*memo));
  for (i = 0; i < ndom; i++)
    head[i] = NONE;
  /* The first run in pass order of each free domain: the head of its
   * line. A busy domain or one in backoff holds its whole line. */
  for (i = 0; i < in->nruns; i++) {
    const struct ccci_sched_run *r = &in->runs[i];
    const struct ccci_sched_domain *d = &in->domains[r->domain];
    p.wrap[i] = in->last_repo != NULL && strcmp(r->repo, in->last_repo) <= 0;
    if (d->busy || in_backoff(in, d))
      continue;
    if (head[r->domain] == NONE)
      heads[nheads++] = r->domain;
    else if (!before(&p, i, head[r->domain]))
      continue;
    head[r->domain] = i;
  }
  /* The first head in pass order that an open server matching its
   * placement has a free slot for starts there. A head after the best so
   * far is not looked at; each one before the chosen was, and holds its
   * line: no server of its placement has a slot. */
  for (k = 0; k < nheads; k++) {
    size_t h = head[heads[k]];
    if (chosen != NONE && !before(&p, h, chosen))
      continue;
    if (class_of(in, memo, &anywhere, h, first_server)->server < in->nservers)
      chosen = h;
  }
  for (k = 0; k < nheads && in->unplaceable != NULL; k++) {
    size_t h = head[heads[k]];
    if ((chosen == NONE || before(&p, h, chosen)) &&
        !class_of(in, memo, &anywhere, h, first_server)->placeable)
      in->unplaceable[h] = true;
  }
  if (chosen != NONE) {
    v.kind = CCCI_SCHED_START;
    v.run = chosen;
    v.server = class_of(in, memo, &anywhere, chosen, first_server)->server;
  }
  /* The runs looked at (before the chosen one in pass order, or all):
   * those behind their domain wait; a backoff wakes the caller. */
  for (i = 0; i < in->nruns; i++) {
    const struct ccci_sched_run *r = &in->runs[i];
    const struct ccci_sched_domain *d = &in->domains[r->domain];
    bool back = in_backoff(in, d);
    if (!back && (in->waiting == NULL || head[r->domain] == i))
      continue;
    if (chosen != NONE && !before(&p, i, chosen))
      continue;
    if (in->waiting != NULL)
      in->waiting[i] = true;
    if (back && (v.wake_ms == 0 || d->next_probe_ms < v.wake_ms))
      v.wake_ms = d->next_probe_ms;
  }
  free(memo);
  free(head);
  free(heads);
  free(p.wrap);
  if (v.kind != CCCI_SCHED_START)
    v.kind = v.wake_ms != 0 ? CCCI_SCHED_WAIT : CCCI_SCHED_IDLE;
  return v;
}
