/* Unit tests of sched.c: one admission decision per row (slots, drain,
 * stop, disk, round-robin over repos, each domain's line, lock probe
 * backoff), and sequences of admissions like the ones the integration
 * tests (test_sched.py) drive through the daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_capacity_and_round_robin),
      cmocka_unit_test(test_one_domain_never_overlaps),
      cmocka_unit_test(test_decide_reads_only_its_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
