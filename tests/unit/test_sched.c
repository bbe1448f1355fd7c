/* Unit tests of sched.c: one admission decision per row (slots, drain,
 * stop, disk, round-robin over repos, each domain's line, lock probe
 * backoff), the same over a pool of servers (placement, least loaded,
 * round-robin among equals, closed servers, unplaceable runs), sequences
 * of admissions like the ones the integration tests (test_sched.py,
 * test_pool.py) drive through the daemon, and a randomized simulation
 * checked against the invariants of the decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/runs/sched.h"

#define MAXR 4

/* One decision. The queue is a run per token, its repo's letter and its
 * domain's digit ("a0 b1": an alpha run on domain 0, a beta run on 1). */
struct row {
  const char *what;
  const char *queue;
  const char *busy;        /* per domain: 'B' busy, '.' free */
  uint64_t probe0, probe1; /* next probe time of domains 0 and 1 */
  const char *last;        /* the repo served last, or NULL */
  unsigned capacity, running;
  const char *flags; /* 'd' draining, 's' stopping, 'L' the disk is low */
  /* the verdict */
  enum ccci_sched_kind kind;
  size_t run;
  uint64_t wake;
  const char *waiting; /* per run: 'w' marked waiting, '.' not */
};

#define A "octo/alpha"
#define B "octo/beta"
#define C "local/gamma"
#define K(x) CCCI_SCHED_##x

static const struct row rows[] = {
    /* Slots, drain, stop and the disk. */
    {"an empty queue", "", "", 0, 0, NULL, 2, 0, "", K(IDLE), 0, 0, ""},
    {"one run, a free domain", "a0", ".", 0, 0, NULL, 1, 0, "", K(START), 0, 0,
     "."},
    {"capacity full", "a0 b1", "..", 0, 0, NULL, 2, 2, "", K(CLOSED), 0, 0,
     ".."},
    {"over capacity (lowered by a reload)", "a0", ".", 0, 0, NULL, 1, 3, "",
     K(CLOSED), 0, 0, "."},
    {"capacity 0", "a0", ".", 0, 0, NULL, 0, 0, "", K(CLOSED), 0, 0, "."},
    {"draining", "a0", ".", 0, 0, NULL, 4, 0, "d", K(CLOSED), 0, 0, "."},
    {"stopping", "a0", ".", 0, 0, NULL, 4, 0, "s", K(CLOSED), 0, 0, "."},
    {"the disk is low", "a0", ".", 0, 0, NULL, 4, 0, "L", K(DISK_LOW), 0, 0,
     "."},
    {"a low disk without a slot", "a0", ".", 0, 0, NULL, 1, 1, "L", K(CLOSED),
     0, 0, "."},
    {"a low disk and an empty queue", "", "", 0, 0, NULL, 1, 0, "L",
     K(DISK_LOW), 0, 0, ""},
    /* Round-robin over the repos, in name order after the last served. */
    {"first turn: the first repo by name", "b0 a1 a2", "...", 0, 0, NULL, 4, 0,
     "", K(START), 1, 0, "..."},
    {"after alpha, beta", "a0 a1 b2", "...", 0, 0, A, 4, 1, "", K(START), 2, 0,
     "..."},
    {"after beta, back to alpha", "a0 a1 b2", "...", 0, 0, B, 4, 1, "",
     K(START), 0, 0, "..."},
    {"the repo served last has left the queue", "c0 a1 b2", "...", 0, 0,
     "octo/aardvark", 4, 1, "", K(START), 1, 0, "..."},
    {"a repo alone keeps its turn", "a0 a1", "..", 0, 0, A, 4, 1, "", K(START),
     0, 0, ".."},
    {"in a repo, the oldest run first", "a0 b1 a2", "...", 0, 0, B, 4, 1, "",
     K(START), 0, 0, "..."},
    {"a repo whose runs all wait passes its turn on", "a0 a0 b1", "B.", 0, 0, B,
     4, 1, "", K(START), 2, 0, "ww."},
    /* Each domain's line (integration: one_domain_never_overlaps). */
    {"the domain is busy: both wait", "a0 a0", "B", 0, 0, NULL, 4, 1, "",
     K(IDLE), 0, 0, "ww"},
    {"the first of the line starts, the second is not looked at", "a0 a0", ".",
     0, 0, NULL, 4, 0, "", K(START), 0, 0, ".."},
    {"behind a busy domain, another domain starts", "a0 a1", "B.", 0, 0, NULL,
     4, 1, "", K(START), 1, 0, "w."},
    {"the line is the pass's: alpha's newer run before beta's older", "b0 a0",
     ".", 0, 0, NULL, 4, 0, "", K(START), 1, 0, ".."},
    {"a busy domain's probe time does not wake", "a0", "B", 900, 0, NULL, 4, 1,
     "", K(IDLE), 0, 0, "w"},
    /* Lock probe backoff (a lock held outside the daemon). */
    {"in backoff: wait for the probe", "a0", ".", 500, 0, NULL, 4, 0, "",
     K(WAIT), 0, 500, "w"},
    {"the probe time has come", "a0", ".", 100, 0, NULL, 4, 0, "", K(START), 0,
     0, "."},
    {"the earliest of two backoffs", "a0 b1", "..", 500, 300, NULL, 4, 0, "",
     K(WAIT), 0, 300, "ww"},
    {"the line waits behind its backoff", "a0 a0", ".", 500, 0, NULL, 4, 0, "",
     K(WAIT), 0, 500, "ww"},
    {"another domain starts; the backoff still wakes", "a0 a1", "..", 500, 0,
     NULL, 4, 0, "", K(START), 1, 500, "w."},
    {"a backoff after the run started is not looked at", "a0 a1", "..", 0, 500,
     NULL, 4, 0, "", K(START), 0, 0, ".."},
};

/* The input's pool: one server of @p capacity with @p running runs. */
static void one_server(struct ccci_sched_input *in,
                       struct ccci_sched_server *srv, unsigned capacity,
                       unsigned running)
{
  memset(srv, 0, sizeof(*srv));
  srv->name = "default";
  srv->capacity = capacity;
  srv->running = running;
  in->servers = srv;
  in->nservers = 1;
}

static const char *repo_of(char letter)
{
  return letter == 'a' ? A : letter == 'b' ? B : C;
}

static void test_table(void **state)
{
  size_t i, k;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(rows); i++) {
    const struct row *w = &rows[i];
    struct ccci_sched_run runs[MAXR];
    struct ccci_sched_domain doms[MAXR];
    bool waiting[MAXR] = {false};
    struct ccci_sched_input in;
    struct ccci_sched_server srv;
    struct ccci_sched_verdict v;
    char marks[MAXR + 1];
    const char *q;
    size_t n = 0;

    print_message("%s\n", w->what);
    for (q = w->queue; *q != '\0'; q += q[2] == ' ' ? 3 : 2) {
      assert_true(n < MAXR);
      runs[n].repo = repo_of(q[0]);
      runs[n].place = CCCI_SCHED_ANYWHERE;
      runs[n++].domain = (size_t)(q[1] - '0');
    }
    memset(doms, 0, sizeof(doms));
    for (k = 0; w->busy[k] != '\0'; k++)
      doms[k].busy = w->busy[k] == 'B';
    doms[0].next_probe_ms = w->probe0;
    doms[1].next_probe_ms = w->probe1;
    memset(&in, 0, sizeof(in));
    in.runs = runs;
    in.nruns = n;
    in.domains = doms;
    in.last_repo = w->last;
    one_server(&in, &srv, w->capacity, w->running);
    in.draining = strchr(w->flags, 'd') != NULL;
    in.stopping = strchr(w->flags, 's') != NULL;
    in.disk_ok = strchr(w->flags, 'L') == NULL;
    in.now = 100;
    in.waiting = waiting;
    v = ccci_sched_decide(&in);
    assert_int_equal(v.kind, w->kind);
    if (w->kind == CCCI_SCHED_START)
      assert_int_equal(v.run, w->run);
    assert_int_equal(v.wake_ms, w->wake);
    for (k = 0; k < n; k++)
      marks[k] = waiting[k] ? 'w' : '.';
    marks[n] = '\0';
    assert_string_equal(marks, w->waiting);
  }
}

/* A daemon in miniature: queued runs (repo, domain), slots, and what the
 * caller does with a verdict. */
#define SIM_MAX 32
struct sim {
  size_t n;
  const char *repo[SIM_MAX];
  size_t dom[SIM_MAX];
  bool queued[SIM_MAX], running[SIM_MAX];
  struct ccci_sched_domain doms[SIM_MAX];
  const char *last;
  unsigned capacity, active;
  size_t order[SIM_MAX], nstarted;
};

static void sim_add(struct sim *s, const char *repo, size_t dom)
{
  s->repo[s->n] = repo;
  s->dom[s->n] = dom;
  s->queued[s->n++] = true;
}

/* Admit until the scheduler finds no run to start; returns the last
 * verdict. */
static struct ccci_sched_verdict sim_admit(struct sim *s)
{
  for (;;) {
    struct ccci_sched_run runs[SIM_MAX];
    size_t map[SIM_MAX], n = 0, i;
    struct ccci_sched_input in;
    struct ccci_sched_server srv;
    struct ccci_sched_verdict v;

    for (i = 0; i < s->n; i++) {
      if (!s->queued[i])
        continue;
      runs[n].repo = s->repo[i];
      runs[n].domain = s->dom[i];
      runs[n].place = CCCI_SCHED_ANYWHERE;
      map[n++] = i;
    }
    memset(&in, 0, sizeof(in));
    in.runs = runs;
    in.nruns = n;
    in.domains = s->doms;
    in.last_repo = s->last;
    one_server(&in, &srv, s->capacity, s->active);
    in.disk_ok = true;
    in.now = 1000;
    v = ccci_sched_decide(&in);
    if (v.kind != CCCI_SCHED_START)
      return v;
    i = map[v.run];
    s->queued[i] = false;
    s->running[i] = true;
    s->doms[s->dom[i]].busy = true;
    s->last = s->repo[i];
    s->active++;
    s->order[s->nstarted++] = i;
  }
}

/* The run started first of those still running ends. */
static void sim_finish_oldest(struct sim *s)
{
  size_t k;
  for (k = 0; k < s->nstarted; k++) {
    size_t i = s->order[k];
    if (s->running[i]) {
      s->running[i] = false;
      s->doms[s->dom[i]].busy = false;
      s->active--;
      return;
    }
  }
  fail_msg("nothing running");
}

/* integration: capacity_and_round_robin — 20 alpha PRs (a domain each),
 * then 3 beta runs, 4 slots: never more than 4 at once, and beta takes
 * every other turn instead of waiting behind alpha's queue. */
static void test_capacity_and_round_robin(void **state)
{
  struct sim s;
  size_t i;
  char got[SIM_MAX + 1];

  (void)state;
  memset(&s, 0, sizeof(s));
  s.capacity = 4;
  for (i = 0; i < 20; i++)
    sim_add(&s, "octo/alpha", i);
  for (i = 0; i < 3; i++)
    sim_add(&s, "octo/beta", 20 + i);
  assert_int_equal(sim_admit(&s).kind, CCCI_SCHED_CLOSED);
  assert_int_equal(s.active, 4);
  while (s.nstarted < s.n) {
    sim_finish_oldest(&s);
    (void)sim_admit(&s);
    assert_true(s.active <= 4);
  }
  for (i = 0; i < s.n; i++)
    got[i] = s.order[i] < 20 ? 'a' : 'b';
  got[s.n] = '\0';
  assert_string_equal(got, "abababaaaaaaaaaaaaaaaaa");
}

/* integration: one_domain_never_overlaps — a PR's second run waits for
 * its first. */
static void test_one_domain_never_overlaps(void **state)
{
  struct sim s;
  struct ccci_sched_verdict v;

  (void)state;
  memset(&s, 0, sizeof(s));
  s.capacity = 4;
  sim_add(&s, "octo/app", 5);
  sim_add(&s, "octo/app", 5);
  v = sim_admit(&s);
  assert_int_equal(v.kind, CCCI_SCHED_IDLE);
  assert_int_equal(s.nstarted, 1);
  assert_int_equal(s.order[0], 0);
  sim_finish_oldest(&s);
  (void)sim_admit(&s);
  assert_int_equal(s.nstarted, 2);
  assert_int_equal(s.order[1], 1);
}

/* The decision reads only its input: the same input, the same verdict,
 * and the input is not changed. */
static void test_decide_reads_only_its_input(void **state)
{
  struct ccci_sched_run runs[] = {{A, 0, CCCI_SCHED_ANYWHERE},
                                  {B, 1, CCCI_SCHED_ANYWHERE},
                                  {A, 1, CCCI_SCHED_ANYWHERE}};
  struct ccci_sched_domain doms[] = {{false, 700}, {false, 0}};
  struct ccci_sched_input in;
  struct ccci_sched_server srv;
  struct ccci_sched_verdict v1, v2;

  (void)state;
  memset(&in, 0, sizeof(in));
  in.runs = runs;
  in.nruns = 3;
  in.domains = doms;
  one_server(&in, &srv, 2, 0);
  in.disk_ok = true;
  in.now = 100;
  v1 = ccci_sched_decide(&in);
  v2 = ccci_sched_decide(&in);
  assert_int_equal(v1.kind, CCCI_SCHED_START);
  assert_int_equal(v1.run, 2); /* alpha's turn; its first run backs off */
  assert_int_equal(v1.wake_ms, 700);
  assert_int_equal(v2.kind, v1.kind);
  assert_int_equal(v2.run, v1.run);
  assert_int_equal(v2.wake_ms, v1.wake_ms);
  assert_int_equal(doms[0].next_probe_ms, 700);
  assert_false(doms[1].busy);
}

/* The pool, parsed from a row's text. Servers: "a=4/1+heavy+arm b=2/0!"
 * (name=capacity/running, then its labels, '!' closed). Placement
 * classes, space separated, class 0 first: "heavy @a,@b,arm" (an '@'
 * item is a SERVERS name, the others SERVER_LABELS). Queue: "a0 b12"
 * (repo letter, domain digit, optional class digit; none: anywhere). */
#define MAXS 8
#define MAXI 4
#define WORD 12
struct pool {
  struct ccci_sched_server srv[MAXS];
  char sname[MAXS][WORD], slab[MAXS][MAXI][WORD];
  const char *slabp[MAXS][MAXI];
  size_t ns;
  struct ccci_sched_place place[MAXI];
  char pitem[MAXI][2 * MAXI][WORD];
  const char *pserv[MAXI][MAXI], *plab[MAXI][MAXI];
  size_t np;
  struct ccci_sched_run runs[SIM_MAX];
  size_t nr;
};

/* Copies the word at *s up to a byte of @p stop (or the end) into @p w;
 * returns the byte it stopped at. */
static char word_at(const char **s, char *w, const char *stop)
{
  size_t n = 0;
  while (**s != '\0' && strchr(stop, **s) == NULL) {
    assert_true(n + 1 < WORD);
    w[n++] = *(*s)++;
  }
  w[n] = '\0';
  return **s;
}

static unsigned number_at(const char **s)
{
  unsigned n = 0;
  assert_true(**s >= '0' && **s <= '9');
  while (**s >= '0' && **s <= '9')
    n = n * 10 + (unsigned)(*(*s)++ - '0');
  return n;
}

static void parse_servers(struct pool *p, const char *s)
{
  while (*s != '\0') {
    struct ccci_sched_server *v = &p->srv[p->ns];
    assert_true(p->ns < MAXS);
    memset(v, 0, sizeof(*v));
    (void)word_at(&s, p->sname[p->ns], "=");
    assert_int_equal(*s++, '=');
    v->name = p->sname[p->ns];
    v->capacity = number_at(&s);
    assert_int_equal(*s++, '/');
    v->running = number_at(&s);
    v->labels = p->slabp[p->ns];
    while (*s == '+' || *s == '!') {
      if (*s++ == '!') {
        v->closed = true;
        continue;
      }
      assert_true(v->nlabels < MAXI);
      (void)word_at(&s, p->slab[p->ns][v->nlabels], "+! ");
      p->slabp[p->ns][v->nlabels] = p->slab[p->ns][v->nlabels];
      v->nlabels++;
    }
    while (*s == ' ')
      s++;
    p->ns++;
  }
}

static void parse_places(struct pool *p, const char *s)
{
  while (*s != '\0') {
    struct ccci_sched_place *c = &p->place[p->np];
    size_t k = 0;
    assert_true(p->np < MAXI);
    memset(c, 0, sizeof(*c));
    c->servers = p->pserv[p->np];
    c->labels = p->plab[p->np];
    for (;;) {
      char *w, end;
      assert_true(k < 2 * MAXI);
      w = p->pitem[p->np][k++];
      end = word_at(&s, w, ", ");
      if (w[0] == '@') {
        assert_true(c->nservers < MAXI);
        p->pserv[p->np][c->nservers++] = w + 1;
      } else {
        assert_true(c->nlabels < MAXI);
        p->plab[p->np][c->nlabels++] = w;
      }
      if (end != ',')
        break;
      s++;
    }
    while (*s == ' ')
      s++;
    p->np++;
  }
}

static void parse_queue(struct pool *p, const char *s)
{
  while (*s != '\0') {
    struct ccci_sched_run *r = &p->runs[p->nr++];
    assert_true(p->nr <= SIM_MAX);
    r->repo = repo_of(*s++);
    r->domain = (size_t)(*s++ - '0');
    r->place = CCCI_SCHED_ANYWHERE;
    if (*s >= '0' && *s <= '9')
      r->place = (size_t)(*s++ - '0');
    while (*s == ' ')
      s++;
  }
}

/* One decision over a pool. */
struct prow {
  const char *what;
  const char *servers, *places, *queue;
  const char *busy;    /* per domain: 'B' busy, '.' free */
  uint64_t probe0;     /* next probe time of domain 0 */
  const char *last;    /* the repo served last, or NULL */
  const char *last_sv; /* the server chosen last, or NULL */
  const char *flags;   /* 'd' draining, 's' stopping, 'L' the disk is low */
  /* the verdict */
  enum ccci_sched_kind kind;
  size_t run;
  const char *server; /* START: its name */
  uint64_t wake;
  const char *waiting;     /* per run: 'w' marked waiting, '.' not */
  const char *unplaceable; /* per run: 'u' marked unplaceable, '.' not */
};

static const struct prow prows[] = {
    /* A free slot and the labels. */
    {"a heavy run goes to the heavy server", "a=2/0 b=2/0+heavy", "heavy",
     "a00", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"a run needing two labels: only the server with both",
     "a=1/0+heavy "
     "b=1/0+arm c=1/0+arm+heavy",
     "heavy,arm", "a00", "", 0, NULL, NULL, "", K(START), 0, "c", 0, ".", "."},
    {"the heavy server is full: the heavy run stays queued, beta starts",
     "a=2/0 b=1/1+heavy", "heavy", "a00 b1", "", 0, NULL, NULL, "", K(START), 1,
     "a", 0, "..", ".."},
    {"the heavy server is full and nothing else waits", "a=2/0 b=1/1+heavy",
     "heavy", "a00", "", 0, NULL, NULL, "", K(IDLE), 0, NULL, 0, ".", "."},
    {"a heavy server takes a run placed anywhere", "a=2/2 b=2/0+heavy", "",
     "a0", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    /* SERVERS names, and both keys. */
    {"SERVERS: the first named with a free slot", "a=1/0 b=1/0 c=1/0", "@b,@c",
     "a00", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"SERVERS: round-robin among the named", "a=1/0 b=1/0 c=1/0", "@b,@c",
     "a00", "", 0, NULL, "b", "", K(START), 0, "c", 0, ".", "."},
    {"SERVERS: the named one is full", "a=1/0 b=1/1", "@b", "a00", "", 0, NULL,
     NULL, "", K(IDLE), 0, NULL, 0, ".", "."},
    {"both keys: named and labelled", "a=1/0+heavy b=1/0 c=1/0+heavy",
     "@b,@c,heavy", "a00", "", 0, NULL, NULL, "", K(START), 0, "c", 0, ".",
     "."},
    {"both keys: the named server lacks the label", "a=1/0+heavy b=1/0",
     "@b,heavy", "a00 b1", "", 0, NULL, NULL, "", K(START), 1, "a", 0, "..",
     "u."},
    /* Least loaded first, compared exactly. */
    {"1/4 before 1/2", "a=2/1 b=4/1", "", "a0", "", 0, NULL, NULL, "", K(START),
     0, "b", 0, ".", "."},
    {"1/8 before 1/2, though listed later", "a=2/1 b=8/1", "", "a0", "", 0,
     NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"empty before 1/8: a small idle server first", "a=8/1 b=1/0", "", "a0", "",
     0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"2/7 before 1/3", "a=3/1 b=7/2", "", "a0", "", 0, NULL, NULL, "", K(START),
     0, "b", 0, ".", "."},
    {"3/8 before 1/2", "a=2/1 b=8/3", "", "a0", "", 0, NULL, NULL, "", K(START),
     0, "b", 0, ".", "."},
    {"1/3 and 2/6 are equal: the first", "a=3/1 b=6/2", "", "a0", "", 0, NULL,
     NULL, "", K(START), 0, "a", 0, ".", "."},
    {"1/3 and 2/6 are equal: the first after the last chosen", "a=3/1 b=6/2",
     "", "a0", "", 0, NULL, "a", "", K(START), 0, "b", 0, ".", "."},
    {"the least loaded of the matching ones, not of all",
     "a=4/0 b=2/1+heavy "
     "c=4/3+heavy",
     "heavy", "a00", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    /* Round-robin among equals, in config order after the last chosen. */
    {"equals: after b, c", "a=2/0 b=2/0 c=2/0", "", "a0", "", 0, NULL, "b", "",
     K(START), 0, "c", 0, ".", "."},
    {"equals: after c, around to a", "a=2/0 b=2/0 c=2/0", "", "a0", "", 0, NULL,
     "c", "", K(START), 0, "a", 0, ".", "."},
    {"equals: the last chosen left the pool: from the first", "a=2/0 b=2/0", "",
     "a0", "", 0, NULL, "gone", "", K(START), 0, "a", 0, ".", "."},
    {"equals: a busier one in between is passed over", "a=2/0 b=2/1 c=2/0", "",
     "a0", "", 0, NULL, "a", "", K(START), 0, "c", 0, ".", "."},
    {"the last chosen again when it is the least loaded", "a=2/0 b=2/1", "",
     "a0", "", 0, NULL, "a", "", K(START), 0, "a", 0, ".", "."},
    /* Closed servers (drained, unhealthy, removed), capacity 0, lowered. */
    {"an idle closed server gets nothing; a busy open one does",
     "a=4/0! "
     "b=4/3",
     "", "a0", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"the only open server is full: closed", "a=4/0! b=4/4", "", "a0", "", 0,
     NULL, NULL, "", K(CLOSED), 0, NULL, 0, ".", "."},
    {"every server closed", "a=4/0! b=4/0!", "", "a0", "", 0, NULL, NULL, "",
     K(CLOSED), 0, NULL, 0, ".", "."},
    {"the heavy server is closed: the heavy run waits, not unplaceable",
     "a=4/0 b=4/0+heavy!", "heavy", "a00 b1", "", 0, NULL, NULL, "", K(START),
     1, "a", 0, "..", ".."},
    {"one of two heavy servers closed: the other", "a=1/0+heavy! b=1/0+heavy",
     "heavy", "a00", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"capacity 0 gets nothing", "a=0/0 b=2/1", "", "a0", "", 0, NULL, NULL, "",
     K(START), 0, "b", 0, ".", "."},
    {"capacity 0 alone: closed", "a=0/0", "", "a0", "", 0, NULL, NULL, "",
     K(CLOSED), 0, NULL, 0, ".", "."},
    {"a lowered capacity (3 running of 1) gets nothing", "a=1/3 b=2/1", "",
     "a0", "", 0, NULL, NULL, "", K(START), 0, "b", 0, ".", "."},
    {"a lowered capacity alone: closed", "a=1/3", "", "a0", "", 0, NULL, NULL,
     "", K(CLOSED), 0, NULL, 0, ".", "."},
    {"every open server full: closed", "a=1/1 b=2/2 c=4/0!", "", "a0 b1", "", 0,
     NULL, NULL, "", K(CLOSED), 0, NULL, 0, "..", ".."},
    {"no server at all: closed", "", "", "a0", "", 0, NULL, NULL, "", K(CLOSED),
     0, NULL, 0, ".", "."},
    /* Unplaceable runs. */
    {"no server has the label: unplaceable, its line waits, beta starts",
     "a=2/0 b=2/0", "gpu", "a00 a0 b1", "", 0, NULL, NULL, "", K(START), 2, "a",
     0, ".w.", "u.."},
    {"SERVERS names a server not in the pool", "a=2/0", "@zz", "a00 b1", "", 0,
     NULL, NULL, "", K(START), 1, "a", 0, "..", "u."},
    {"an unplaceable run does not hold its repo's other domains", "a=2/0 b=2/0",
     "gpu", "a00 a1", "", 0, NULL, NULL, "", K(START), 1, "a", 0, "..", "u."},
    {"only unplaceable runs: idle", "a=2/0", "gpu", "a00 b10", "", 0, NULL,
     NULL, "", K(IDLE), 0, NULL, 0, "..", "uu"},
    {"unplaceable though every slot is full: closed, not looked at", "a=1/1",
     "gpu", "a00", "", 0, NULL, NULL, "", K(CLOSED), 0, NULL, 0, ".", "."},
    {"a run after the one that starts is not looked at", "a=2/0", "gpu",
     "a0 b10", "", 0, NULL, NULL, "", K(START), 0, "a", 0, "..", ".."},
    /* Each domain's line across servers. */
    {"the line's head waits for the full heavy server: the younger run "
     "waits too, though a has room",
     "a=4/0 b=1/1+heavy", "heavy", "a00 a0 b1", "", 0, NULL, NULL, "", K(START),
     2, "a", 0, ".w.", "..."},
    {"the line's head waits for a named server", "a=4/0 b=1/1", "@b", "a00 a0",
     "", 0, NULL, NULL, "", K(IDLE), 0, NULL, 0, ".w", ".."},
    {"a domain busy on one server holds its run for another", "a=4/0 b=4/1",
     "@a", "a00 a1", "B.", 0, NULL, NULL, "", K(START), 1, "a", 0, "w.", ".."},
    {"a busy domain holds its whole line, whatever the placement",
     "a=4/0 b=4/0+heavy", "heavy", "a00 a0 a10", "B.", 0, NULL, NULL, "",
     K(START), 2, "b", 0, "ww.", "..."},
    {"the head starts; the younger run of its line is not looked at",
     "a=4/0 b=4/0", "", "a0 a0", "", 0, NULL, NULL, "", K(START), 0, "a", 0,
     "..", ".."},
    /* Lock probe backoff over a pool. */
    {"backoff: another domain starts, the backoff wakes", "a=1/0 b=1/0", "",
     "a0 b1", "", 500, NULL, NULL, "", K(START), 1, "a", 500, "w.", ".."},
    {"backoff: the heavy run's line waits for the probe", "a=1/0 b=1/0+heavy",
     "heavy", "a00 a0", "", 500, NULL, NULL, "", K(WAIT), 0, NULL, 500, "ww",
     ".."},
    /* Round-robin across repos over many servers. */
    {"after alpha, beta, on any server", "a=1/0 b=1/0 c=1/0 d=1/0", "",
     "a0 a1 b2 c3", "", 0, A, "b", "", K(START), 2, "c", 0, "....", "...."},
    {"beta's only run waits for heavy: gamma's turn", "a=1/0 b=1/1+heavy",
     "heavy", "a0 b10 c2", "", 0, A, NULL, "", K(START), 2, "a", 0, "...",
     "..."},
    /* Draining, stopping, the disk. */
    {"draining the daemon: closed", "a=4/0 b=4/0", "", "a0", "", 0, NULL, NULL,
     "d", K(CLOSED), 0, NULL, 0, ".", "."},
    {"stopping: closed", "a=4/0 b=4/0", "", "a0", "", 0, NULL, NULL, "s",
     K(CLOSED), 0, NULL, 0, ".", "."},
    {"the disk is low", "a=4/0 b=4/0", "", "a0", "", 0, NULL, NULL, "L",
     K(DISK_LOW), 0, NULL, 0, ".", "."},
    {"the disk is low and the open servers are full: closed", "a=1/1 b=4/0!",
     "", "a0", "", 0, NULL, NULL, "L", K(CLOSED), 0, NULL, 0, ".", "."},
};

static void test_pool_table(void **state)
{
  size_t i, k;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(prows); i++) {
    const struct prow *w = &prows[i];
    struct pool p;
    struct ccci_sched_domain doms[10];
    bool waiting[SIM_MAX] = {false}, unpl[SIM_MAX] = {false};
    struct ccci_sched_input in;
    struct ccci_sched_verdict v;
    char marks[SIM_MAX + 1];

    print_message("%s\n", w->what);
    memset(&p, 0, sizeof(p));
    parse_servers(&p, w->servers);
    parse_places(&p, w->places);
    parse_queue(&p, w->queue);
    memset(doms, 0, sizeof(doms));
    for (k = 0; w->busy[k] != '\0'; k++)
      doms[k].busy = w->busy[k] == 'B';
    doms[0].next_probe_ms = w->probe0;
    memset(&in, 0, sizeof(in));
    in.runs = p.runs;
    in.nruns = p.nr;
    in.domains = doms;
    in.servers = p.srv;
    in.nservers = p.ns;
    in.places = p.place;
    in.nplaces = p.np;
    in.last_repo = w->last;
    in.last_server = w->last_sv;
    in.draining = strchr(w->flags, 'd') != NULL;
    in.stopping = strchr(w->flags, 's') != NULL;
    in.disk_ok = strchr(w->flags, 'L') == NULL;
    in.now = 100;
    in.waiting = waiting;
    in.unplaceable = unpl;
    v = ccci_sched_decide(&in);
    assert_int_equal(v.kind, w->kind);
    if (w->kind == CCCI_SCHED_START) {
      assert_int_equal(v.run, w->run);
      assert_true(v.server < p.ns);
      assert_string_equal(p.srv[v.server].name, w->server);
    }
    assert_int_equal(v.wake_ms, w->wake);
    for (k = 0; k < p.nr; k++)
      marks[k] = waiting[k] ? 'w' : '.';
    marks[p.nr] = '\0';
    assert_string_equal(marks, w->waiting);
    for (k = 0; k < p.nr; k++)
      marks[k] = unpl[k] ? 'u' : '.';
    assert_string_equal(marks, w->unplaceable);
  }
}

/* ccci_sched_matches alone: names, labels, both, and a closed or full
 * server still matches. */
static void test_matches(void **state)
{
  struct pool p;
  (void)state;
  memset(&p, 0, sizeof(p));
  parse_servers(&p, "a=1/0+heavy+arm b=0/3! c=2/0");
  parse_places(&p, "heavy @b @a,@c,arm heavy,gpu");
  assert_true(ccci_sched_matches(&p.srv[1], NULL));
  assert_true(ccci_sched_matches(&p.srv[0], &p.place[0]));
  assert_false(ccci_sched_matches(&p.srv[2], &p.place[0]));
  assert_true(ccci_sched_matches(&p.srv[1], &p.place[1]));
  assert_false(ccci_sched_matches(&p.srv[0], &p.place[1]));
  assert_true(ccci_sched_matches(&p.srv[0], &p.place[2]));
  assert_false(ccci_sched_matches(&p.srv[2], &p.place[2]));
  assert_false(ccci_sched_matches(&p.srv[1], &p.place[2]));
  assert_false(ccci_sched_matches(&p.srv[0], &p.place[3]));
}

/* Admit over a pool until the decision starts nothing; each start takes
 * a slot on its server and records it as the last chosen. Returns the
 * servers chosen, in order, as their names' first letters. */
static void pool_fill(struct pool *p, char *got, size_t size)
{
  struct ccci_sched_domain doms[SIM_MAX];
  bool queued[SIM_MAX];
  const char *last = NULL, *last_sv = NULL;
  size_t n = 0, i;

  memset(doms, 0, sizeof(doms));
  for (i = 0; i < p->nr; i++)
    queued[i] = true;
  for (;;) {
    struct ccci_sched_run runs[SIM_MAX];
    size_t map[SIM_MAX], nq = 0;
    struct ccci_sched_input in;
    struct ccci_sched_verdict v;

    for (i = 0; i < p->nr; i++)
      if (queued[i]) {
        map[nq] = i;
        runs[nq++] = p->runs[i];
      }
    memset(&in, 0, sizeof(in));
    in.runs = runs;
    in.nruns = nq;
    in.domains = doms;
    in.servers = p->srv;
    in.nservers = p->ns;
    in.places = p->place;
    in.nplaces = p->np;
    in.last_repo = last;
    in.last_server = last_sv;
    in.disk_ok = true;
    v = ccci_sched_decide(&in);
    if (v.kind != CCCI_SCHED_START)
      break;
    i = map[v.run];
    queued[i] = false;
    doms[p->runs[i].domain].busy = true;
    p->srv[v.server].running++;
    last = p->runs[i].repo;
    last_sv = p->srv[v.server].name;
    assert_true(n + 1 < size);
    got[n++] = last_sv[0];
  }
  got[n] = '\0';
}

/* A sequence of starts spreads over equal servers in config order, after
 * the last chosen, and fills by load: capacities 1, 2 and 4. */
static void test_pool_round_robin_sequence(void **state)
{
  struct pool p;
  char got[SIM_MAX + 1];
  (void)state;

  memset(&p, 0, sizeof(p));
  parse_servers(&p, "a=2/0 b=2/0 c=2/0");
  parse_queue(&p, "a0 a1 a2 b3 b4 b5 c6");
  pool_fill(&p, got, sizeof(got));
  assert_string_equal(got, "abcabc");

  memset(&p, 0, sizeof(p));
  parse_servers(&p, "a=1/0 b=2/0 c=4/0");
  parse_queue(&p, "a0 a1 a2 a3 a4 a5 a6 a7 a8");
  pool_fill(&p, got, sizeof(got));
  assert_string_equal(got, "abccbcc");

  /* Heavy runs on the heavy servers only, the others least loaded over
   * all four: the heavy servers fill first by their own load. */
  memset(&p, 0, sizeof(p));
  parse_servers(&p, "a=2/0 b=2/0+heavy c=2/0 d=2/0+heavy");
  parse_places(&p, "heavy");
  parse_queue(&p, "a00 a10 a20 b3 b4 b5 c6 c7");
  pool_fill(&p, got, sizeof(got));
  assert_string_equal(got, "abcdbcda");
}

/* The reference: sched.c's decision as it was first written, sorting the
 * queue into pass order (O(runs log runs) per decision). sched.c now
 * compares runs by pass order instead; the randomized simulation checks
 * that both decide the same, verdict and marks. */
static bool ref_open_slot(const struct ccci_sched_server *s)
{
  return !s->closed && s->running < s->capacity;
}

/* Is server a less loaded than b (a.running / a.capacity < b's)? Both
 * have a free slot, so both capacities are above 0. */
static bool ref_less_loaded(const struct ccci_sched_server *a,
                            const struct ccci_sched_server *b)
{
  return (uint64_t)a->running * b->capacity <
         (uint64_t)b->running * a->capacity;
}

/* The server a run of placement @p p starts on: the least loaded open one
 * with a free slot, the first after the last chosen among equals; or
 * nservers when none. */
static size_t ref_best_server(const struct ccci_sched_input *in,
                              const struct ccci_sched_place *p, size_t first)
{
  size_t best = in->nservers, k;
  for (k = 0; k < in->nservers; k++) {
    size_t i = (first + k) % in->nservers;
    const struct ccci_sched_server *s = &in->servers[i];
    if (!ref_open_slot(s) || !ccci_sched_matches(s, p))
      continue;
    if (best == in->nservers || ref_less_loaded(s, &in->servers[best]))
      best = i;
  }
  return best;
}

static bool ref_any_server(const struct ccci_sched_input *in,
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
struct ref_memo {
  bool known;
  bool placeable;
  size_t server;
};

struct ref_order {
  const char *repo;
  size_t run;
};

static int ref_order_cmp(const void *a, const void *b)
{
  const struct ref_order *x = a, *y = b;
  int c = strcmp(x->repo, y->repo);
  if (c != 0)
    return c;
  return x->run < y->run ? -1 : x->run > y->run;
}

static void ref_mark(bool *v, size_t i)
{
  if (v != NULL)
    v[i] = true;
}

static struct ccci_sched_verdict ref_decide(const struct ccci_sched_input *in)
{
  struct ccci_sched_verdict v = {CCCI_SCHED_IDLE, 0, 0, 0};
  struct ref_order *ord;
  struct ref_memo *memo, anywhere = {false, false, 0};
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
  qsort(ord, in->nruns, sizeof(*ord), ref_order_cmp);
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
      struct ref_memo *m =
          r->place == CCCI_SCHED_ANYWHERE ? &anywhere : &memo[r->place];
      if (d->busy || held[r->domain]) {
        ref_mark(in->waiting, ri);
        continue;
      }
      if (in->now < d->next_probe_ms) {
        ref_mark(in->waiting, ri); /* its lock was held outside: backoff */
        if (v.wake_ms == 0 || d->next_probe_ms < v.wake_ms)
          v.wake_ms = d->next_probe_ms;
        held[r->domain] = true;
        continue;
      }
      if (!m->known) {
        m->known = true;
        m->server = ref_best_server(in, p, first_server);
        m->placeable = m->server < in->nservers || ref_any_server(in, p);
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
        ref_mark(in->unplaceable, ri);
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

/* The randomized simulation: a pool of servers whose capacities, drain
 * and health change, runs of a few repos on a few domains each (a domain
 * belongs to one repo, as `<recipe>-pr<N>` does, but one run in ten is of
 * a recipe of the same name in another repo) with random placements,
 * runs that end at random, lock probes that fail and back off. Every
 * verdict is checked against what the decision promises. */
#define PS 6
#define PRUNS 40
#define PDOMS 12
#define PREPOS 4
#define PPLACES 4

struct prop {
  uint64_t rng;
  unsigned seed, step;
  struct ccci_sched_server srv[PS];
  char name[PS][4];
  const char *lab[PS][2];
  struct ccci_sched_place place[PPLACES];
  struct ccci_sched_domain doms[PDOMS];
  /* the runs not finished, oldest first */
  size_t n;
  size_t dom[PRUNS], cls[PRUNS], on[PRUNS];
  const char *repo[PRUNS];
  bool running[PRUNS];
  const char *last, *last_sv;
  bool draining, disk_ok;
  uint64_t now;
  unsigned starts, idles, unplaceables;
};

static const char *const prop_repos[PREPOS] = {"local/zeta", "octo/alpha",
                                               "octo/beta", "octo/gamma"};
static const char *const l_heavy[] = {"heavy"};
static const char *const l_arm[] = {"arm"};
static const char *const l_gpu[] = {"gpu"};
static const char *const n_s1s2[] = {"s1", "s2"};

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      fail_msg("seed %u step %u: %s", pr->seed, pr->step, #c);                 \
  } while (0)

static unsigned rnd(struct prop *pr, unsigned n)
{
  pr->rng ^= pr->rng << 13;
  pr->rng ^= pr->rng >> 7;
  pr->rng ^= pr->rng << 17;
  return (unsigned)(pr->rng % n);
}

static void prop_init(struct prop *pr, unsigned seed)
{
  size_t i;
  memset(pr, 0, sizeof(*pr));
  pr->seed = seed;
  pr->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 32 | seed);
  for (i = 0; i < PS; i++) {
    struct ccci_sched_server *s = &pr->srv[i];
    snprintf(pr->name[i], sizeof(pr->name[i]), "s%u", (unsigned)i);
    s->name = pr->name[i];
    s->capacity = rnd(pr, 4);
    s->labels = pr->lab[i];
    if (rnd(pr, 2) == 0)
      pr->lab[i][s->nlabels++] = "heavy";
    if (rnd(pr, 3) == 0)
      pr->lab[i][s->nlabels++] = "arm";
  }
  /* heavy; arm; SERVERS s1, s2 with heavy; gpu, which no server has */
  pr->place[0] = (struct ccci_sched_place){NULL, 0, l_heavy, 1};
  pr->place[1] = (struct ccci_sched_place){NULL, 0, l_arm, 1};
  pr->place[2] = (struct ccci_sched_place){n_s1s2, 2, l_heavy, 1};
  pr->place[3] = (struct ccci_sched_place){NULL, 0, l_gpu, 1};
  pr->disk_ok = true;
}

static const char *prop_repo(size_t dom)
{
  return prop_repos[dom % PREPOS];
}

static const struct ccci_sched_place *prop_place(const struct prop *pr,
                                                 size_t cls)
{
  return cls == CCCI_SCHED_ANYWHERE ? NULL : &pr->place[cls];
}

static bool prop_free_slot(const struct ccci_sched_server *s)
{
  return !s->closed && s->running < s->capacity;
}

/* A run starts, or a run ends, a server changes, a domain backs off. */
static void prop_events(struct prop *pr)
{
  unsigned e = rnd(pr, 100), k;
  size_t i;

  pr->now += rnd(pr, 8);
  if (e < 45 && pr->n < PRUNS) {
    for (k = 1 + rnd(pr, 3); k > 0 && pr->n < PRUNS; k--) {
      unsigned c = rnd(pr, 10);
      pr->dom[pr->n] = rnd(pr, PDOMS);
      /* one in ten: a recipe of the same name in another repo */
      pr->repo[pr->n] = rnd(pr, 10) == 0 ? prop_repos[rnd(pr, PREPOS)]
                                         : prop_repo(pr->dom[pr->n]);
      pr->cls[pr->n] = c < PPLACES ? c : CCCI_SCHED_ANYWHERE;
      pr->running[pr->n++] = false;
    }
  } else if (e < 85) {
    /* a running run ends, or (one in seven) a queued one is cancelled */
    bool cancel = e >= 80;
    for (i = 0; i < pr->n && !(pr->running[i] != cancel && rnd(pr, 3) == 0);
         i++)
      ;
    if (i == pr->n)
      return;
    if (!cancel) {
      pr->doms[pr->dom[i]].busy = false;
      pr->srv[pr->on[i]].running--;
    }
    memmove(&pr->dom[i], &pr->dom[i + 1], (pr->n - i - 1) * sizeof(size_t));
    memmove(&pr->cls[i], &pr->cls[i + 1], (pr->n - i - 1) * sizeof(size_t));
    memmove(&pr->on[i], &pr->on[i + 1], (pr->n - i - 1) * sizeof(size_t));
    memmove(&pr->repo[i], &pr->repo[i + 1],
            (pr->n - i - 1) * sizeof(const char *));
    memmove(&pr->running[i], &pr->running[i + 1],
            (pr->n - i - 1) * sizeof(bool));
    pr->n--;
  } else if (e < 90) {
    pr->srv[rnd(pr, PS)].closed ^= true;
  } else if (e < 94) {
    pr->srv[rnd(pr, PS)].capacity = rnd(pr, 5);
  } else if (e < 97) {
    pr->doms[rnd(pr, PDOMS)].next_probe_ms = pr->now + 1 + rnd(pr, 30);
  } else if (e < 98) {
    pr->draining ^= true;
  } else {
    pr->disk_ok ^= true;
  }
}

/* Does run @p k come before run @p i in a pass (the repos after the one
 * served last in name order, then the others, oldest first)? */
static bool prop_first(const struct prop *pr, size_t k, size_t i)
{
  bool wk = pr->last != NULL && strcmp(pr->repo[k], pr->last) <= 0;
  bool wi = pr->last != NULL && strcmp(pr->repo[i], pr->last) <= 0;
  int c = strcmp(pr->repo[k], pr->repo[i]);
  if (wk != wi)
    return wi;
  return c != 0 ? c < 0 : k < i;
}

/* Is run @p i behind another queued run of its domain, one that comes
 * before it in the pass? */
static bool prop_behind(const struct prop *pr, size_t i)
{
  size_t k;
  for (k = 0; k < pr->n; k++)
    if (k != i && !pr->running[k] && pr->dom[k] == pr->dom[i] &&
        prop_first(pr, k, i))
      return true;
  return false;
}

static bool prop_any_match(const struct prop *pr, size_t cls)
{
  size_t s;
  for (s = 0; s < PS; s++)
    if (ccci_sched_matches(&pr->srv[s], prop_place(pr, cls)))
      return true;
  return false;
}

/* A START: the run and the server are ones the decision may choose. */
static void prop_check_start(struct prop *pr, size_t run,
                             const struct ccci_sched_verdict *v)
{
  const struct ccci_sched_server *c = &pr->srv[v->server], *s;
  size_t first = 0, k, dc;
  const struct ccci_sched_domain *d = &pr->doms[pr->dom[run]];

  CHECK(!pr->draining && pr->disk_ok);
  CHECK(v->server < PS);
  CHECK(!c->closed);
  CHECK(c->running < c->capacity);
  CHECK(ccci_sched_matches(c, prop_place(pr, pr->cls[run])));
  CHECK(!d->busy);
  CHECK(pr->now >= d->next_probe_ms);
  CHECK(!prop_behind(pr, run));
  for (k = 0; pr->last_sv != NULL && k < PS; k++)
    if (strcmp(pr->srv[k].name, pr->last_sv) == 0)
      first = (k + 1) % PS;
  dc = (v->server + PS - first) % PS;
  for (k = 0; k < PS; k++) {
    uint64_t sl, cl;
    s = &pr->srv[k];
    if (k == v->server || !prop_free_slot(s) ||
        !ccci_sched_matches(s, prop_place(pr, pr->cls[run])))
      continue;
    sl = (uint64_t)s->running * c->capacity;
    cl = (uint64_t)c->running * s->capacity;
    CHECK(sl >= cl); /* none less loaded */
    if (sl == cl)
      CHECK((k + PS - first) % PS > dc); /* equals: the first after last */
  }
}

/* Not a START: nothing could have started. */
static void prop_check_none(struct prop *pr, const struct ccci_sched_verdict *v)
{
  bool slot = false;
  uint64_t wake = 0;
  size_t i, k;

  for (k = 0; k < PS; k++)
    slot = slot || prop_free_slot(&pr->srv[k]);
  if (pr->draining || !slot) {
    CHECK(v->kind == CCCI_SCHED_CLOSED);
    return;
  }
  if (!pr->disk_ok) {
    CHECK(v->kind == CCCI_SCHED_DISK_LOW);
    return;
  }
  for (i = 0; i < pr->n; i++) {
    const struct ccci_sched_domain *d = &pr->doms[pr->dom[i]];
    if (pr->running[i] || d->busy)
      continue;
    if (pr->now < d->next_probe_ms) {
      if (wake == 0 || d->next_probe_ms < wake)
        wake = d->next_probe_ms;
      continue;
    }
    if (prop_behind(pr, i))
      continue;
    /* the head of a free line: no server of its placement has room */
    for (k = 0; k < PS; k++)
      CHECK(!prop_free_slot(&pr->srv[k]) ||
            !ccci_sched_matches(&pr->srv[k], prop_place(pr, pr->cls[i])));
  }
  CHECK(v->wake_ms == wake);
  CHECK(v->kind == (wake != 0 ? CCCI_SCHED_WAIT : CCCI_SCHED_IDLE));
}

/* Admit until the decision starts nothing, as runs.c does: a lock probe
 * that fails (one in eight) backs the domain off and decides again. Each
 * decision is also made by the reference, which must agree. */
static void prop_admit(struct prop *pr)
{
  for (;;) {
    struct ccci_sched_run runs[PRUNS];
    size_t map[PRUNS], nq = 0, i, k;
    bool waiting[PRUNS] = {false}, unpl[PRUNS] = {false};
    bool rwaiting[PRUNS] = {false}, runpl[PRUNS] = {false};
    struct ccci_sched_input in;
    struct ccci_sched_verdict v, rv;

    for (i = 0; i < pr->n; i++)
      if (!pr->running[i]) {
        runs[nq].repo = pr->repo[i];
        runs[nq].domain = pr->dom[i];
        runs[nq].place = pr->cls[i];
        map[nq++] = i;
      }
    memset(&in, 0, sizeof(in));
    in.runs = runs;
    in.nruns = nq;
    in.domains = pr->doms;
    in.servers = pr->srv;
    in.nservers = PS;
    in.places = pr->place;
    in.nplaces = PPLACES;
    in.last_repo = pr->last;
    in.last_server = pr->last_sv;
    in.draining = pr->draining;
    in.disk_ok = pr->disk_ok;
    in.now = pr->now;
    in.waiting = waiting;
    in.unplaceable = unpl;
    v = ccci_sched_decide(&in);
    in.waiting = rwaiting;
    in.unplaceable = runpl;
    rv = ref_decide(&in);
    CHECK(rv.kind == v.kind);
    CHECK(v.kind != CCCI_SCHED_START ||
          (rv.run == v.run && rv.server == v.server));
    CHECK(rv.wake_ms == v.wake_ms);
    CHECK(memcmp(rwaiting, waiting, sizeof(waiting)) == 0);
    CHECK(memcmp(runpl, unpl, sizeof(unpl)) == 0);
    for (k = 0; k < nq; k++) {
      const struct ccci_sched_domain *d = &pr->doms[pr->dom[map[k]]];
      if (unpl[k]) {
        CHECK(!prop_any_match(pr, pr->cls[map[k]]));
        pr->unplaceables++;
      }
      if (waiting[k])
        CHECK(d->busy || pr->now < d->next_probe_ms || prop_behind(pr, map[k]));
    }
    if (v.kind != CCCI_SCHED_START) {
      prop_check_none(pr, &v);
      pr->idles++;
      return;
    }
    CHECK(v.run < nq);
    i = map[v.run];
    prop_check_start(pr, i, &v);
    if (rnd(pr, 8) == 0) {
      pr->doms[pr->dom[i]].next_probe_ms = pr->now + 1 + rnd(pr, 20);
      continue;
    }
    pr->running[i] = true;
    pr->on[i] = v.server;
    pr->doms[pr->dom[i]].busy = true;
    pr->srv[v.server].running++;
    pr->last = pr->repo[i];
    pr->last_sv = pr->srv[v.server].name;
    pr->starts++;
  }
}

/* The facts of the pool after each admission: a domain runs at most one
 * run, a server holds the runs it was given. */
static void prop_check_pool(struct prop *pr)
{
  unsigned on[PS] = {0}, ondom[PDOMS] = {0};
  size_t i;
  for (i = 0; i < pr->n; i++)
    if (pr->running[i]) {
      on[pr->on[i]]++;
      CHECK(++ondom[pr->dom[i]] == 1);
      CHECK(pr->doms[pr->dom[i]].busy);
    }
  for (i = 0; i < PS; i++)
    CHECK(on[i] == pr->srv[i].running);
}

static void test_pool_property(void **state)
{
  unsigned seed, starts = 0, idles = 0, unpl = 0;
  (void)state;
  for (seed = 1; seed <= 40; seed++) {
    struct prop p, *pr = &p;
    prop_init(pr, seed);
    for (pr->step = 0; pr->step < 4000; pr->step++) {
      prop_events(pr);
      prop_admit(pr);
      prop_check_pool(pr);
    }
    starts += pr->starts;
    idles += pr->idles;
    unpl += pr->unplaceables;
  }
  print_message("%u starts, %u passes, %u unplaceable marks\n", starts, idles,
                unpl);
  /* the simulation reached every kind of case it checks */
  assert_true(starts > 10000);
  assert_true(unpl > 1000);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_capacity_and_round_robin),
      cmocka_unit_test(test_one_domain_never_overlaps),
      cmocka_unit_test(test_decide_reads_only_its_input),
      cmocka_unit_test(test_pool_table),
      cmocka_unit_test(test_matches),
      cmocka_unit_test(test_pool_round_robin_sequence),
      cmocka_unit_test(test_pool_property),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
