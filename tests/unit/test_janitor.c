/* Unit tests of janitor.c: every row of the decision tables of
 * docs/concurrency.md and the verdict names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/runs/janitor.h"

#define T0 INT64_C(1795000000) /* a started_at */
#define BUDGET UINT64_C(4230)  /* 60m + 30s + 10m */

/* A candidate: running, left by another instance, started at T0. */
static struct ccci_janitor_case candidate(enum ccci_run_state s, bool held,
                                          bool complete, int64_t now)
{
  struct ccci_janitor_case c;

  memset(&c, 0, sizeof(c));
  c.state = s;
  c.ours = false;
  c.lock_held = held;
  c.results_complete = complete;
  c.now = now;
  c.started_at = T0;
  c.budget_s = BUDGET;
  return c;
}

static enum ccci_janitor_verdict decide(struct ccci_janitor_case c)
{
  return ccci_janitor_decide(&c);
}

/* Every combination of the facts other than the state, for the rows that
 * do not depend on them. */
static void expect_for_all_facts(enum ccci_run_state s, bool ours,
                                 enum ccci_janitor_verdict want)
{
  static const int64_t nows[] = {0,
                                 T0 - 1,
                                 T0,
                                 T0 + (int64_t)BUDGET,
                                 T0 + (int64_t)BUDGET + 1,
                                 INT64_C(1) << 40};
  static const int64_t starts[] = {0, T0};
  size_t n, st;
  int held, complete;

  for (held = 0; held < 2; held++)
    for (complete = 0; complete < 2; complete++)
      for (n = 0; n < CCCI_ARRAY_LEN(nows); n++)
        for (st = 0; st < CCCI_ARRAY_LEN(starts); st++) {
          struct ccci_janitor_case c = candidate(s, held, complete, nows[n]);
          c.ours = ours;
          c.started_at = starts[st];
          assert_int_equal(decide(c), want);
        }
}

static void test_queued_and_waiting_lock_go_back_to_the_queue(void **state)
{
  (void)state;
  expect_for_all_facts(CCCI_RUN_QUEUED, false, CCCI_JANITOR_REQUEUE);
  expect_for_all_facts(CCCI_RUN_QUEUED, true, CCCI_JANITOR_REQUEUE);
  expect_for_all_facts(CCCI_RUN_WAITING_LOCK, false, CCCI_JANITOR_REQUEUE);
  expect_for_all_facts(CCCI_RUN_WAITING_LOCK, true, CCCI_JANITOR_REQUEUE);
}

static void test_finished_is_left_alone(void **state)
{
  (void)state;
  expect_for_all_facts(CCCI_RUN_FINISHED, false, CCCI_JANITOR_LEAVE);
  expect_for_all_facts(CCCI_RUN_FINISHED, true, CCCI_JANITOR_LEAVE);
}

static void test_runs_of_this_instance_are_not_candidates(void **state)
{
  (void)state;
  expect_for_all_facts(CCCI_RUN_RUNNING, true, CCCI_JANITOR_LEAVE);
  expect_for_all_facts(CCCI_RUN_CANCELLING, true, CCCI_JANITOR_LEAVE);
}

static void test_held_lock_detached_then_stuck(void **state)
{
  static const enum ccci_run_state live[] = {CCCI_RUN_RUNNING,
                                             CCCI_RUN_CANCELLING};
  const int64_t end = T0 + (int64_t)BUDGET;
  size_t i;
  int complete;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(live); i++) {
    /* results.json does not matter while the lock is held. */
    for (complete = 0; complete < 2; complete++) {
      enum ccci_run_state s = live[i];
      struct ccci_janitor_case c;

      assert_int_equal(decide(candidate(s, true, complete, T0 - 100)),
                       CCCI_JANITOR_DETACHED); /* clock behind start */
      assert_int_equal(decide(candidate(s, true, complete, T0)),
                       CCCI_JANITOR_DETACHED);
      assert_int_equal(decide(candidate(s, true, complete, end - 1)),
                       CCCI_JANITOR_DETACHED);
      /* Exactly at started_at + budget: not past it yet. */
      assert_int_equal(decide(candidate(s, true, complete, end)),
                       CCCI_JANITOR_DETACHED);
      assert_int_equal(decide(candidate(s, true, complete, end + 1)),
                       CCCI_JANITOR_STUCK);
      assert_int_equal(decide(candidate(s, true, complete, end + 86400)),
                       CCCI_JANITOR_STUCK);

      /* A zero budget: stuck one second after the start. */
      c = candidate(s, true, complete, T0);
      c.budget_s = 0;
      assert_int_equal(decide(c), CCCI_JANITOR_DETACHED);
      c.now = T0 + 1;
      assert_int_equal(decide(c), CCCI_JANITOR_STUCK);

      /* No started_at (null in meta.json): never stuck. */
      c = candidate(s, true, complete, INT64_C(1) << 40);
      c.started_at = 0;
      assert_int_equal(decide(c), CCCI_JANITOR_DETACHED);
      c.budget_s = 0;
      assert_int_equal(decide(c), CCCI_JANITOR_DETACHED);
    }
  }
}

static void test_free_lock_adopt_or_orphan(void **state)
{
  static const enum ccci_run_state live[] = {CCCI_RUN_RUNNING,
                                             CCCI_RUN_CANCELLING};
  static const int64_t nows[] = {T0 - 100, T0, T0 + (int64_t)BUDGET,
                                 T0 + (int64_t)BUDGET + 1,
                                 T0 + 10 * (int64_t)BUDGET};
  size_t i, n;
  (void)state;

  /* The budget does not matter once the lock is free. */
  for (i = 0; i < CCCI_ARRAY_LEN(live); i++)
    for (n = 0; n < CCCI_ARRAY_LEN(nows); n++) {
      struct ccci_janitor_case c = candidate(live[i], false, true, nows[n]);
      assert_int_equal(decide(c), CCCI_JANITOR_ADOPT);
      c.started_at = 0;
      assert_int_equal(decide(c), CCCI_JANITOR_ADOPT);
      c = candidate(live[i], false, false, nows[n]);
      assert_int_equal(decide(c), CCCI_JANITOR_ORPHAN);
      c.started_at = 0;
      assert_int_equal(decide(c), CCCI_JANITOR_ORPHAN);
    }
}

static void test_decide_reads_only_its_argument(void **state)
{
  struct ccci_janitor_case c = candidate(CCCI_RUN_RUNNING, true, false, T0);
  size_t i;
  (void)state;

  /* Pure: same facts, same verdict, facts untouched. */
  for (i = 0; i < 3; i++)
    assert_int_equal(ccci_janitor_decide(&c), CCCI_JANITOR_DETACHED);
  assert_int_equal(c.state, CCCI_RUN_RUNNING);
  assert_false(c.ours);
  assert_true(c.lock_held);
  assert_false(c.results_complete);
  assert_int_equal(c.now, T0);
  assert_int_equal(c.started_at, T0);
  assert_int_equal(c.budget_s, BUDGET);
}

static void test_verdict_names(void **state)
{
  (void)state;
  assert_string_equal(ccci_janitor_verdict_name(CCCI_JANITOR_LEAVE), "leave");
  assert_string_equal(ccci_janitor_verdict_name(CCCI_JANITOR_REQUEUE),
                      "requeue");
  assert_string_equal(ccci_janitor_verdict_name(CCCI_JANITOR_DETACHED),
                      "detached");
  assert_string_equal(ccci_janitor_verdict_name(CCCI_JANITOR_STUCK), "stuck");
  assert_string_equal(ccci_janitor_verdict_name(CCCI_JANITOR_ADOPT), "adopt");
  assert_string_equal(ccci_janitor_verdict_name(CCCI_JANITOR_ORPHAN), "orphan");
  assert_string_equal(ccci_janitor_verdict_name(
                          (enum ccci_janitor_verdict)(CCCI_JANITOR_ORPHAN + 1)),
                      "?");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queued_and_waiting_lock_go_back_to_the_queue),
      cmocka_unit_test(test_finished_is_left_alone),
      cmocka_unit_test(test_runs_of_this_instance_are_not_candidates),
      cmocka_unit_test(test_held_lock_detached_then_stuck),
      cmocka_unit_test(test_free_lock_adopt_or_orphan),
      cmocka_unit_test(test_decide_reads_only_its_argument),
      cmocka_unit_test(test_verdict_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
