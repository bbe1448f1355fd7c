/* Benchmark: the scheduler's decision (sched.c) over a pool of servers,
 * driven by a simulated day.
 *   bench_pool [SEED]
 * 1000 recipes, servers of capacity 1, 2, 4 or 8 (a quarter labelled
 * `heavy`), Poisson triggers over 24 simulated hours at about 80 % of the
 * pool's capacity with one hour at twice the rate, run times lognormal
 * (median 10 min, cut to 1..75 min), three PRs per recipe (a newer run of
 * a PR supersedes its queued one, as the daemon does). 5 % of the recipes
 * need `heavy`, 2 % name two servers in SERVERS. Each decision is made on
 * an input built from the simulated daemon's runs the way runs.c builds it
 * (every run alive, its domain, the servers), and both the build and the
 * decision are timed in CPU time. Prints one row per pool size (5, 20 and
 * 100 servers, the load scaled with the capacity, and 20 servers over 48
 * hours: twice the runs), the ratios of CPU per run, and the cost of one
 * decision on a fixed queue that makes it look at every run. The CPU
 * figures are the least of three runs of the same day (the machine may be
 * shared); the other figures do not change between them. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccci/core/util.h"
#include "ccci/runs/sched.h"

#define RECIPES_PER_SERVER 50
#define PRS 3
#define HEAVY_CLASS 0
#define NAMED_CLASS 1

static uint64_t rng_state;

static uint64_t rng(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static double uniform(void) /* (0, 1) */
{
  return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

static double expo(double rate)
{
  return -log(uniform()) / rate;
}

/* Seconds: lognormal, median 10 min, sigma 1, cut to 1..75 min. */
static double run_time(void)
{
  double z = sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
  double m = 10 * exp(z);
  return 60 * (m < 1 ? 1 : m > 75 ? 75 : m);
}

static double cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct run {
  char repo[24]; /* its own copy, as runs.c's r->m.repo is */
  unsigned recipe, dom;
  double arrive, dur, start;
  size_t server;
  bool queued, running, done, superseded;
};

struct pool {
  /* the pool */
  size_t ns;
  struct ccci_sched_server *srv;
  char (*name)[16];
  unsigned capacity;
  struct ccci_sched_place place[2];
  const char *named[2];
  /* the recipes */
  size_t nrecipes;
  char (*repo)[24];
  size_t *cls;
  /* the day's runs, in creation order, and the ones alive */
  struct run *runs;
  size_t nruns, *alive, nalive;
  bool *busy;        /* per domain */
  size_t *queued_of; /* per domain: its queued run + 1, or 0 */
  /* runs holding a slot, by end time (a binary heap of run indices) */
  size_t *heap, nheap;
  const char *last_repo, *last_server;
  /* the input, built for every decision */
  struct ccci_sched_run *in_runs;
  size_t *in_map, *dom_local;
  unsigned *dom_stamp, stamp;
  struct ccci_sched_domain *in_doms;
  /* figures */
  unsigned long decisions, starts, superseded;
  double queued_seen; /* the queue's length, summed over the decisions */
  size_t max_queue;
  double decide_ns, build_ns, clock_ns;
};

static const char *const heavy_label[] = {"heavy"};

static void pool_init(struct pool *p, size_t nservers, size_t nrecipes)
{
  static const unsigned caps[] = {1, 2, 4, 8};
  size_t i;

  memset(p, 0, sizeof(*p));
  p->ns = nservers;
  p->srv = ccci_xcalloc(nservers, sizeof(*p->srv));
  p->name = ccci_xcalloc(nservers, sizeof(*p->name));
  for (i = 0; i < nservers; i++) {
    struct ccci_sched_server *s = &p->srv[i];
    snprintf(p->name[i], sizeof(p->name[i]), "swarm%03u", (unsigned)i);
    s->name = p->name[i];
    s->capacity = caps[rng() % 4];
    if (i == 0 || rng() % 4 == 0) {
      s->labels = heavy_label;
      s->nlabels = 1;
    }
    p->capacity += s->capacity;
  }
  p->named[0] = p->srv[0].name;
  p->named[1] = p->srv[nservers > 1 ? 1 : 0].name;
  p->place[HEAVY_CLASS] = (struct ccci_sched_place){NULL, 0, heavy_label, 1};
  p->place[NAMED_CLASS] = (struct ccci_sched_place){p->named, 2, NULL, 0};
  p->nrecipes = nrecipes;
  p->repo = ccci_xcalloc(nrecipes, sizeof(*p->repo));
  p->cls = ccci_xcalloc(nrecipes, sizeof(*p->cls));
  p->busy = ccci_xcalloc(nrecipes * PRS, sizeof(*p->busy));
  p->queued_of = ccci_xcalloc(nrecipes * PRS, sizeof(*p->queued_of));
  for (i = 0; i < nrecipes; i++) {
    unsigned c = (unsigned)(rng() % 100);
    snprintf(p->repo[i], sizeof(p->repo[i]), "coop-cloud/recipe%04u",
             (unsigned)i);
    p->cls[i] = c < 5 ? HEAVY_CLASS : c < 7 ? NAMED_CLASS : CCCI_SCHED_ANYWHERE;
  }
}

static void pool_free(struct pool *p)
{
  free(p->srv);
  free(p->name);
  free(p->repo);
  free(p->cls);
  free(p->busy);
  free(p->queued_of);
  free(p->runs);
  free(p->alive);
  free(p->heap);
  free(p->in_runs);
  free(p->in_map);
  free(p->dom_local);
  free(p->dom_stamp);
  free(p->in_doms);
}

/* The day's triggers: Poisson at @p rate per second, twice that in hour
 * 14, over @p hours; recipes drawn with a Zipf-like skew (a few busy
 * ones), a PR of the three at random. */
static void make_runs(struct pool *p, double rate, double hours)
{
  double t = 0, end = hours * 3600,
         *cum = ccci_xcalloc(p->nrecipes, sizeof(double)), sum = 0;
  size_t cap = 1024, i;

  for (i = 0; i < p->nrecipes; i++)
    cum[i] = sum += 1 / pow((double)i + 1, 0.7);
  p->runs = ccci_xmalloc(cap * sizeof(*p->runs));
  for (;;) {
    double hour_end = floor(t / 3600) * 3600 + 3600;
    double r = fmod(floor(t / 3600), 24) == 14 ? 2 * rate : rate;
    double next = t + expo(r), u;
    struct run *x;
    size_t lo = 0, hi = p->nrecipes - 1;
    if (next >= hour_end) { /* memoryless: go on at the next hour's rate */
      t = hour_end;
      if (t >= end)
        break;
      continue;
    }
    t = next;
    if (p->nruns == cap)
      p->runs = ccci_xrealloc(p->runs, (cap *= 2) * sizeof(*p->runs));
    x = &p->runs[p->nruns++];
    memset(x, 0, sizeof(*x));
    u = uniform() * sum;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (cum[mid] < u)
        lo = mid + 1;
      else
        hi = mid;
    }
    x->recipe = (unsigned)lo;
    memcpy(x->repo, p->repo[lo], sizeof(x->repo));
    x->dom = (unsigned)(lo * PRS + rng() % PRS);
    x->arrive = t;
    x->dur = run_time();
  }
  free(cum);
  p->alive = ccci_xmalloc((p->nruns + 1) * sizeof(*p->alive));
  p->heap = ccci_xmalloc((p->nruns + 1) * sizeof(*p->heap));
  p->in_runs = ccci_xmalloc((p->nruns + 1) * sizeof(*p->in_runs));
  p->in_map = ccci_xmalloc((p->nruns + 1) * sizeof(*p->in_map));
  p->in_doms = ccci_xmalloc((p->nruns + 1) * sizeof(*p->in_doms));
  p->dom_local = ccci_xcalloc(p->nrecipes * PRS, sizeof(*p->dom_local));
  p->dom_stamp = ccci_xcalloc(p->nrecipes * PRS, sizeof(*p->dom_stamp));
}

static double end_of(const struct pool *p, size_t h)
{
  const struct run *r = &p->runs[p->heap[h]];
  return r->start + r->dur;
}

static void heap_push(struct pool *p, size_t run)
{
  size_t i = p->nheap++;
  p->heap[i] = run;
  while (i > 0 && end_of(p, (i - 1) / 2) > end_of(p, i)) {
    size_t up = (i - 1) / 2, t = p->heap[up];
    p->heap[up] = p->heap[i];
    p->heap[i] = t;
    i = up;
  }
}

static size_t heap_pop(struct pool *p)
{
  size_t top = p->heap[0], i = 0;
  p->heap[0] = p->heap[--p->nheap];
  for (;;) {
    size_t l = 2 * i + 1, m = i, t;
    if (l < p->nheap && end_of(p, l) < end_of(p, m))
      m = l;
    if (l + 1 < p->nheap && end_of(p, l + 1) < end_of(p, m))
      m = l + 1;
    if (m == i)
      return top;
    t = p->heap[m];
    p->heap[m] = p->heap[i];
    p->heap[i] = t;
    i = m;
  }
}

/* The input, as runs.c's sched_pass_init builds it: every run alive (the
 * queued ones go in), each domain of a queued run with its busy flag, the
 * servers as they are. O(runs alive). */
static void build(struct pool *p, struct ccci_sched_input *in, bool *waiting,
                  bool *unplaceable)
{
  size_t i, n = 0, nd = 0;
  p->stamp++;
  for (i = 0; i < p->nalive; i++) {
    const struct run *r = &p->runs[p->alive[i]];
    if (!r->queued)
      continue;
    if (p->dom_stamp[r->dom] != p->stamp) {
      p->dom_stamp[r->dom] = p->stamp;
      p->dom_local[r->dom] = nd;
      p->in_doms[nd].busy = p->busy[r->dom];
      p->in_doms[nd++].next_probe_ms = 0;
    }
    p->in_runs[n].repo = r->repo;
    p->in_runs[n].domain = p->dom_local[r->dom];
    p->in_runs[n].place = p->cls[r->recipe];
    p->in_map[n++] = p->alive[i];
  }
  memset(in, 0, sizeof(*in));
  in->runs = p->in_runs;
  in->nruns = n;
  in->domains = p->in_doms;
  in->servers = p->srv;
  in->nservers = p->ns;
  in->places = p->place;
  in->nplaces = 2;
  in->last_repo = p->last_repo;
  in->last_server = p->last_server;
  in->disk_ok = true;
  in->waiting = waiting;
  in->unplaceable = unplaceable;
}

/* Start runs while the decision finds one, at simulated time @p now. */
static void admit(struct pool *p, double now, bool *waiting, bool *unpl)
{
  for (;;) {
    struct ccci_sched_input in;
    struct ccci_sched_verdict v;
    struct run *r;
    double t0 = cpu_ns(), t1, t2, t3;
    build(p, &in, waiting, unpl);
    t1 = cpu_ns();
    v = ccci_sched_decide(&in);
    t2 = cpu_ns();
    t3 = cpu_ns();
    /* each interval holds one clock reading's cost: the empty one
     * measures it, under the same conditions */
    p->build_ns += t1 - t0;
    p->decide_ns += t2 - t1;
    p->clock_ns += t3 - t2;
    p->decisions++;
    p->queued_seen += (double)in.nruns;
    if (in.nruns > p->max_queue)
      p->max_queue = in.nruns;
    if (v.kind != CCCI_SCHED_START)
      return;
    r = &p->runs[p->in_map[v.run]];
    r->queued = false;
    r->running = true;
    r->start = now;
    r->server = v.server;
    p->queued_of[r->dom] = 0;
    p->busy[r->dom] = true;
    p->srv[v.server].running++;
    p->last_repo = p->repo[r->recipe];
    p->last_server = p->srv[v.server].name;
    heap_push(p, p->in_map[v.run]);
    p->starts++;
  }
}

static void compact(struct pool *p)
{
  size_t i, n = 0;
  for (i = 0; i < p->nalive; i++)
    if (!p->runs[p->alive[i]].done)
      p->alive[n++] = p->alive[i];
  p->nalive = n;
}

struct figures {
  size_t servers, recipes;
  unsigned capacity;
  double share_top, wait_top, wait_rest;
  double hours;
  unsigned long runs, started, superseded, decisions;
  size_t max_queue;
  double util, p50, p99, jain, decide_ns, build_ns, mean_queue, per_queued;
  double clock_ns;
};

static int dcmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void simulate(size_t nservers, double hours, double load, uint64_t seed,
                     struct figures *f)
{
  struct pool *p = ccci_xcalloc(1, sizeof(*p));
  double mean = 0, rate, busy = 0, day, *waits, sum = 0, sq = 0, *rsum;
  double top[2] = {0, 0};
  unsigned *rn, nrep = 0, ntop[2] = {0, 0};
  bool *waiting, *unpl;
  size_t next = 0, i, nw = 0, nrecipes = RECIPES_PER_SERVER * nservers;

  rng_state = seed;
  pool_init(p, nservers, nrecipes);
  rsum = ccci_xcalloc(nrecipes, sizeof(*rsum));
  rn = ccci_xcalloc(nrecipes, sizeof(*rn));
  for (i = 0; i < 200000; i++)
    mean += run_time() / 200000;
  rate = load * p->capacity / mean;
  make_runs(p, rate, hours);
  waiting = ccci_xcalloc(p->nruns + 1, sizeof(*waiting));
  unpl = ccci_xcalloc(p->nruns + 1, sizeof(*unpl));
  /* Events: the next trigger or the next end, whichever comes first;
   * then the daemon admits. Goes on after the day until the queue is
   * empty, so every run's wait counts. */
  while (next < p->nruns || p->nheap > 0) {
    double t;
    if (p->nheap > 0 &&
        (next == p->nruns || end_of(p, 0) <= p->runs[next].arrive)) {
      struct run *r = &p->runs[heap_pop(p)];
      t = r->start + r->dur;
      r->running = false;
      r->done = true;
      p->busy[r->dom] = false;
      p->srv[r->server].running--;
    } else {
      struct run *r = &p->runs[next];
      t = r->arrive;
      if (p->queued_of[r->dom] != 0) { /* supersedes the PR's queued run */
        p->runs[p->queued_of[r->dom] - 1].queued = false;
        p->runs[p->queued_of[r->dom] - 1].done = true;
        p->runs[p->queued_of[r->dom] - 1].superseded = true;
        p->superseded++;
      }
      r->queued = true;
      p->queued_of[r->dom] = next + 1;
      p->alive[p->nalive++] = next++;
    }
    compact(p);
    admit(p, t, waiting, unpl);
  }
  day = hours * 3600;
  waits = ccci_xmalloc((p->nruns + 1) * sizeof(*waits));
  for (i = 0; i < p->nruns; i++) {
    const struct run *r = &p->runs[i];
    double s = r->start, e = r->start + r->dur, w;
    if (r->superseded)
      continue;
    w = (s - r->arrive) / 60;
    waits[nw++] = w;
    rsum[r->recipe] += w;
    rn[r->recipe]++;
    /* the recipes are drawn by rank: the first 5 % are the busiest */
    top[r->recipe < nrecipes / 20 ? 0 : 1] += w;
    ntop[r->recipe < nrecipes / 20 ? 0 : 1]++;
    if (s < day)
      busy += (e < day ? e : day) - s;
  }
  qsort(waits, nw, sizeof(*waits), dcmp);
  for (i = 0; i < nrecipes; i++) {
    double m;
    if (rn[i] == 0)
      continue;
    m = rsum[i] / rn[i];
    sum += m;
    sq += m * m;
    nrep++;
  }
  f->servers = nservers;
  f->recipes = nrecipes;
  f->share_top = (double)ntop[0] / (double)(ntop[0] + ntop[1]);
  f->wait_top = ntop[0] ? top[0] / ntop[0] : 0;
  f->wait_rest = ntop[1] ? top[1] / ntop[1] : 0;
  f->capacity = p->capacity;
  f->hours = hours;
  f->runs = (unsigned long)p->nruns;
  f->started = p->starts;
  f->superseded = p->superseded;
  f->decisions = p->decisions;
  f->max_queue = p->max_queue;
  f->util = busy / (p->capacity * day);
  f->p50 = nw ? waits[nw / 2] : 0;
  f->p99 = nw ? waits[(size_t)(0.99 * (double)(nw - 1))] : 0;
  f->jain = sq > 0 ? sum * sum / (nrep * sq) : 1;
  f->mean_queue = p->queued_seen / (double)p->decisions;
  /* the clock's own cost, measured beside each decision, taken out */
  f->per_queued =
      (p->decide_ns - p->clock_ns) / (p->queued_seen > 0 ? p->queued_seen : 1);
  f->decide_ns = (p->decide_ns - p->clock_ns) / p->starts;
  f->build_ns = (p->decide_ns + p->build_ns - 2 * p->clock_ns) / p->starts;
  f->clock_ns = p->clock_ns / (double)p->decisions;
  free(waits);
  free(rsum);
  free(rn);
  free(waiting);
  free(unpl);
  pool_free(p);
  free(p);
}

/* A fixed queue of @p nq runs over @p ns servers where every run needs
 * `heavy` and every heavy server is full: a decision looks at every run
 * and finds none to start (its dearest case). */
struct snap {
  struct pool p;
  struct ccci_sched_run *runs;
  char (*names)[24];
  bool *waiting, *unpl;
  struct ccci_sched_domain *doms;
  struct ccci_sched_input in;
  double best;
};

static void snap_init(struct snap *x, size_t ns, size_t nq)
{
  size_t i;
  memset(x, 0, sizeof(*x));
  rng_state = 42;
  pool_init(&x->p, ns, 1000);
  x->runs = ccci_xmalloc(nq * sizeof(*x->runs));
  x->names = ccci_xmalloc(nq * sizeof(*x->names));
  x->waiting = ccci_xcalloc(nq, sizeof(*x->waiting));
  x->unpl = ccci_xcalloc(nq, sizeof(*x->unpl));
  x->doms = ccci_xcalloc(nq, sizeof(*x->doms));
  for (i = 0; i < ns; i++)
    if (x->p.srv[i].nlabels > 0)
      x->p.srv[i].running = x->p.srv[i].capacity;
  for (i = 0; i < nq; i++) {
    memcpy(x->names[i], x->p.repo[rng() % 1000], sizeof(x->names[i]));
    x->runs[i].repo = x->names[i];
    x->runs[i].domain = i;
    x->runs[i].place = HEAVY_CLASS;
  }
  x->in.runs = x->runs;
  x->in.nruns = nq;
  x->in.domains = x->doms;
  x->in.servers = x->p.srv;
  x->in.nservers = ns;
  x->in.places = x->p.place;
  x->in.nplaces = 2;
  x->in.last_repo = x->p.repo[500];
  x->in.disk_ok = true;
  x->in.waiting = x->waiting;
  x->in.unplaceable = x->unpl;
}

/* One round: CPU ns per decision, the least kept. */
static void snap_round(struct snap *x)
{
  size_t i, reps = 4000000 / x->in.nruns;
  double t0 = cpu_ns(), t;
  for (i = 0; i < reps; i++)
    if (ccci_sched_decide(&x->in).kind != CCCI_SCHED_IDLE) {
      fprintf(stderr, "bench_pool: the snapshot started a run\n");
      exit(1);
    }
  t = (cpu_ns() - t0) / (double)reps;
  x->best = x->best == 0 || t < x->best ? t : x->best;
}

static void snap_free(struct snap *x)
{
  free(x->runs);
  free(x->names);
  free(x->waiting);
  free(x->unpl);
  free(x->doms);
  pool_free(&x->p);
}

/* The fixed queues, their rounds interleaved (9 each) so that a busy
 * moment of a shared machine does not fall on one of them only. */
static void snapshots(double *s)
{
  static const size_t shape[6][2] = {{5, 1000},  {20, 1000}, {100, 1000},
                                     {20, 2000}, {20, 4000}, {100, 4000}};
  struct snap *x = ccci_xcalloc(6, sizeof(*x));
  int round, k;
  for (k = 0; k < 6; k++)
    snap_init(&x[k], shape[k][0], shape[k][1]);
  for (round = 0; round < 9; round++)
    for (k = 0; k < 6; k++)
      snap_round(&x[k]);
  for (k = 0; k < 6; k++) {
    s[k] = x[k].best;
    snap_free(&x[k]);
  }
  free(x);
}

int main(int argc, char **argv)
{
  static const size_t sizes[] = {5, 20, 100};
  struct figures f[4];
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
  double s[6];
  size_t i;

  if (seed == 0)
    seed = 1;
  printf("bench_pool: seed %llu, offered load 0.8 (1.6 in hour 14)\n",
         (unsigned long long)seed);
  printf("%7s %5s %7s %5s %7s %6s %5s %6s %6s %6s %6s %8s %5s %6s %5s %7s "
         "%7s %6s\n",
         "servers", "slots", "recipes", "hours", "runs", "super", "util",
         "p50min", "p99min", "jain", "busy/q", "decides", "dec/r", "queue",
         "maxq", "dec_ns", "bld+dec", "ns/q");
  for (i = 0; i < 4; i++) {
    struct figures *x = &f[i];
    struct figures again;
    int k;
    /* the same day three times (the same decisions): the least CPU */
    simulate(i < 3 ? sizes[i] : 20, i < 3 ? 24 : 48, 0.8, seed, x);
    for (k = 0; k < 2; k++) {
      simulate(x->servers, x->hours, 0.8, seed, &again);
      x->decide_ns =
          again.decide_ns < x->decide_ns ? again.decide_ns : x->decide_ns;
      x->build_ns = again.build_ns < x->build_ns ? again.build_ns : x->build_ns;
      x->per_queued =
          again.per_queued < x->per_queued ? again.per_queued : x->per_queued;
    }
    printf("%7zu %5u %7zu %5.0f %7lu %6lu %5.3f %6.1f %6.1f %6.3f %6.2f %8lu "
           "%5.2f %6.1f %5zu %7.0f %7.0f %6.1f\n",
           x->servers, x->capacity, x->recipes, x->hours, x->runs,
           x->superseded, x->util, x->p50, x->p99, x->jain,
           x->wait_rest > 0 ? x->wait_top / x->wait_rest : 0, x->decisions,
           (double)x->decisions / (double)x->started, x->mean_queue,
           x->max_queue, x->decide_ns, x->build_ns, x->per_queued);
  }
  printf("busy/q: mean wait of the runs of the busiest 5 %% of the recipes "
         "(%.0f %% of the runs at 20 servers) / the others'; queue: mean "
         "queued runs per decision; dec_ns, bld+dec: CPU ns per run started; "
         "ns/q: decide CPU ns per queued run per decision\n",
         100 * f[1].share_top);
  printf("a CPU clock reading (a system call) costs %.0f ns: measured beside "
         "each decision and taken out\n",
         f[1].clock_ns);
  printf("decide CPU per run: 100 vs 5 servers %.2fx (slots %.1fx, mean "
         "queue %.1fx); 20 servers over 48 h vs 24 h (2x the runs) %.2fx\n",
         f[2].decide_ns / f[0].decide_ns, (double)f[2].capacity / f[0].capacity,
         f[2].mean_queue / f[0].mean_queue, f[3].decide_ns / f[1].decide_ns);
  printf("build+decide CPU per run: 100 vs 5 servers %.2fx, 2x the runs "
         "%.2fx; decide CPU per queued run: 100 vs 5 servers %.2fx\n",
         f[2].build_ns / f[0].build_ns, f[3].build_ns / f[1].build_ns,
         f[2].per_queued / f[0].per_queued);
  snapshots(s);
  printf("one decision that looks at every queued run (CPU ns): 1000 runs "
         "on 5, 20, 100 servers: %.0f, %.0f, %.0f; 20 servers, 2000 and "
         "4000 runs: %.0f, %.0f; 100 servers, 4000 runs: %.0f\n",
         s[0], s[1], s[2], s[3], s[4], s[5]);
  printf("ratios: 2x the runs %.2fx, 4x the runs %.2fx, 20x the servers "
         "%.2fx\n",
         s[3] / s[1], s[4] / s[1], s[2] / s[0]);
  return 0;
}
