/* Unit tests of ledger.c: the trigger ledger's decision over tables of
 * comments, including every case tests/integration/test_forge.py drives
 * through the real daemon, and the verdict names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/forge/ledger.h"

#define ENROLLED INT64_C(1795000000) /* the first poll's Date */
#define KEEP INT64_C(86400)

/* A member's `!testme` on an open PR, a minute after enrolment, with
 * nothing in the ledger: every fact known, so the verdict is final. */
static struct ccci_ledger_case base(void)
{
  struct ccci_ledger_case c;
  memset(&c, 0, sizeof(c));
  c.created_at = ENROLLED + 60;
  c.on_pr = true;
  c.trigger = true;
  c.own = false;
  c.repo = CCCI_LEDGER_REPO_ENROLLED;
  c.enrolled_at = ENROLLED;
  c.watermark = ENROLLED + 30;
  c.keep_s = KEEP;
  c.pull = CCCI_LEDGER_PULL_OPEN;
  c.auth = CCCI_LEDGER_AUTH_YES;
  c.run = CCCI_LEDGER_RUN_NONE;
  return c;
}

enum change {
  NONE,
  SEEN,             /* its id is in the seen set */
  NOT_ENROLLED,     /* a repo not in forge.repos */
  FIRST_POLL,       /* read by the repo's first poll */
  SAME_SECOND,      /* first poll, created in the second of its Date */
  NO_TRIGGER,       /* `!testmexyz`, `please !testme`, in a fence, no body */
  OWN,              /* the bot's own `!testme` */
  ON_ISSUE,         /* `!testme` on an issue */
  BEFORE,           /* created before enrolment (an old comment edited) */
  AT_ENROLMENT,     /* created in the second of the Date, not returned */
  PAST_HORIZON,     /* older than the seen ids are kept */
  PULL_UNKNOWN,     /* a candidate, the PR not read yet */
  PULL_FAILED,      /* the PR answer was a 5xx or malformed */
  PULL_MISSING,     /* the PR answered 404 */
  PULL_CLOSED,      /* the PR is closed */
  AUTH_UNKNOWN,     /* neither allowlisted nor cached */
  AUTH_CANNOT_TELL, /* the membership check answered 303 or failed */
  AUTH_NO,          /* mallory: not a member, not allowlisted */
  AUTH_NO_TOLD,     /* mallory again on the same PR */
  RUN_EXISTS,       /* read again after kill -9: its run dir exists */
  RUN_FAILED,       /* the run dir could not be written */
  PENDING,          /* the PR has a queued run */
  SEEN_AND_CLOSED,  /* the seen set is asked first */
};

static struct ccci_ledger_case with(enum change ch)
{
  struct ccci_ledger_case c = base();
  switch (ch) {
  case NONE:
    break;
  case SEEN:
    c.seen = true;
    break;
  case NOT_ENROLLED:
    c.repo = CCCI_LEDGER_REPO_UNKNOWN;
    break;
  case FIRST_POLL:
    c.repo = CCCI_LEDGER_REPO_BASELINE;
    c.enrolled_at = c.watermark = 0;
    break;
  case SAME_SECOND:
    c.repo = CCCI_LEDGER_REPO_BASELINE;
    c.enrolled_at = c.watermark = 0;
    c.created_at = ENROLLED;
    break;
  case NO_TRIGGER:
    c.trigger = false;
    break;
  case OWN:
    c.own = true;
    break;
  case ON_ISSUE:
    c.on_pr = false;
    break;
  case BEFORE:
    c.created_at = ENROLLED - 3600;
    break;
  case AT_ENROLMENT:
    c.created_at = ENROLLED;
    break;
  case PAST_HORIZON:
    c.watermark = ENROLLED + 3 * KEEP;
    c.created_at = c.watermark - KEEP - 1;
    break;
  case PULL_UNKNOWN:
    c.pull = CCCI_LEDGER_PULL_UNKNOWN;
    c.auth = CCCI_LEDGER_AUTH_UNKNOWN;
    break;
  case PULL_FAILED:
    c.pull = CCCI_LEDGER_PULL_FAILED;
    c.auth = CCCI_LEDGER_AUTH_UNKNOWN;
    break;
  case PULL_MISSING:
    c.pull = CCCI_LEDGER_PULL_MISSING;
    break;
  case PULL_CLOSED:
    c.pull = CCCI_LEDGER_PULL_CLOSED;
    break;
  case AUTH_UNKNOWN:
    c.auth = CCCI_LEDGER_AUTH_UNKNOWN;
    break;
  case AUTH_CANNOT_TELL:
    c.auth = CCCI_LEDGER_AUTH_CANNOT_TELL;
    break;
  case AUTH_NO:
    c.auth = CCCI_LEDGER_AUTH_NO;
    break;
  case AUTH_NO_TOLD:
    c.auth = CCCI_LEDGER_AUTH_NO;
    c.replied = true;
    break;
  case RUN_EXISTS:
    c.run = CCCI_LEDGER_RUN_EXISTS;
    break;
  case RUN_FAILED:
    c.run = CCCI_LEDGER_RUN_FAILED;
    break;
  case PENDING:
    c.pr_pending = true;
    break;
  case SEEN_AND_CLOSED:
    c.seen = true;
    c.pull = CCCI_LEDGER_PULL_CLOSED;
    break;
  }
  return c;
}

static void test_the_table(void **state)
{
  static const struct {
    enum change ch;
    enum ccci_ledger_verdict want;
  } rows[] = {
      {NONE, CCCI_LEDGER_ACCEPT},
      {SEEN, CCCI_LEDGER_ALREADY_SEEN},
      {NOT_ENROLLED, CCCI_LEDGER_NOT_ENROLLED},
      {FIRST_POLL, CCCI_LEDGER_BASELINE},
      {SAME_SECOND, CCCI_LEDGER_BASELINE},
      {NO_TRIGGER, CCCI_LEDGER_NOT_A_TRIGGER},
      {OWN, CCCI_LEDGER_OWN_COMMENT},
      {ON_ISSUE, CCCI_LEDGER_NOT_A_PR},
      {BEFORE, CCCI_LEDGER_BEFORE_ENROLMENT},
      {AT_ENROLMENT, CCCI_LEDGER_ACCEPT},
      {PAST_HORIZON, CCCI_LEDGER_PAST_HORIZON},
      {PULL_UNKNOWN, CCCI_LEDGER_NEED_PULL},
      {PULL_FAILED, CCCI_LEDGER_RETRY},
      {PULL_MISSING, CCCI_LEDGER_NOT_A_PR},
      {PULL_CLOSED, CCCI_LEDGER_PR_CLOSED},
      {AUTH_UNKNOWN, CCCI_LEDGER_NEED_AUTH},
      {AUTH_CANNOT_TELL, CCCI_LEDGER_RETRY},
      {AUTH_NO, CCCI_LEDGER_NOT_AUTHORISED},
      {AUTH_NO_TOLD, CCCI_LEDGER_ALREADY_TOLD},
      {RUN_EXISTS, CCCI_LEDGER_DUPLICATE},
      {RUN_FAILED, CCCI_LEDGER_RETRY},
      {PENDING, CCCI_LEDGER_SUPERSEDE},
      {SEEN_AND_CLOSED, CCCI_LEDGER_ALREADY_SEEN},
  };
  size_t i;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(rows); i++) {
    struct ccci_ledger_case c = with(rows[i].ch);
    enum ccci_ledger_verdict got = ccci_ledger_decide(&c);
    if (got != rows[i].want)
      fail_msg("row %zu: got %s, want %s", i, ccci_ledger_verdict_name(got),
               ccci_ledger_verdict_name(rows[i].want));
  }
}

/* A comment that is no candidate is settled before anyone asks the forge:
 * whatever the PR, the membership and the run would say. */
static void test_non_candidates_ignore_later_facts(void **state)
{
  static const struct {
    enum change ch;
    enum ccci_ledger_verdict want;
  } rows[] = {
      {SEEN, CCCI_LEDGER_ALREADY_SEEN},
      {NOT_ENROLLED, CCCI_LEDGER_NOT_ENROLLED},
      {SAME_SECOND, CCCI_LEDGER_BASELINE},
      {NO_TRIGGER, CCCI_LEDGER_NOT_A_TRIGGER},
      {OWN, CCCI_LEDGER_OWN_COMMENT},
      {ON_ISSUE, CCCI_LEDGER_NOT_A_PR},
      {BEFORE, CCCI_LEDGER_BEFORE_ENROLMENT},
      {PAST_HORIZON, CCCI_LEDGER_PAST_HORIZON},
  };
  size_t i;
  int p, a, r, pend, told;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(rows); i++)
    for (p = CCCI_LEDGER_PULL_UNKNOWN; p <= CCCI_LEDGER_PULL_OPEN; p++)
      for (a = CCCI_LEDGER_AUTH_UNKNOWN; a <= CCCI_LEDGER_AUTH_YES; a++)
        for (r = CCCI_LEDGER_RUN_NONE; r <= CCCI_LEDGER_RUN_FAILED; r++)
          for (pend = 0; pend < 2; pend++)
            for (told = 0; told < 2; told++) {
              struct ccci_ledger_case c = with(rows[i].ch);
              c.pull = (enum ccci_ledger_pull)p;
              c.auth = (enum ccci_ledger_auth)a;
              c.run = (enum ccci_ledger_run)r;
              c.pr_pending = pend;
              c.replied = told;
              assert_int_equal(ccci_ledger_decide(&c), rows[i].want);
            }
}

/* The facts are asked for in order: the PR before the membership before
 * the run, so an unauthorised comment never reaches acceptance and a
 * closed PR never costs a membership check. */
static void test_facts_in_order(void **state)
{
  struct ccci_ledger_case c = base();
  (void)state;
  c.pull = CCCI_LEDGER_PULL_UNKNOWN;
  c.auth = CCCI_LEDGER_AUTH_UNKNOWN;
  c.run = CCCI_LEDGER_RUN_EXISTS;
  assert_int_equal(ccci_ledger_decide(&c), CCCI_LEDGER_NEED_PULL);
  c.pull = CCCI_LEDGER_PULL_CLOSED;
  assert_int_equal(ccci_ledger_decide(&c), CCCI_LEDGER_PR_CLOSED);
  c.pull = CCCI_LEDGER_PULL_OPEN;
  assert_int_equal(ccci_ledger_decide(&c), CCCI_LEDGER_NEED_AUTH);
  c.auth = CCCI_LEDGER_AUTH_NO;
  assert_int_equal(ccci_ledger_decide(&c), CCCI_LEDGER_NOT_AUTHORISED);
  c.auth = CCCI_LEDGER_AUTH_YES;
  assert_int_equal(ccci_ledger_decide(&c), CCCI_LEDGER_DUPLICATE);
  c.run = CCCI_LEDGER_RUN_NONE;
  assert_int_equal(ccci_ledger_decide(&c), CCCI_LEDGER_ACCEPT);
}

static void test_consumes_and_runs(void **state)
{
  int v;
  (void)state;
  for (v = CCCI_LEDGER_ALREADY_SEEN; v <= CCCI_LEDGER_SUPERSEDE; v++) {
    bool open = v == CCCI_LEDGER_NEED_PULL || v == CCCI_LEDGER_NEED_AUTH ||
                v == CCCI_LEDGER_RETRY;
    bool runs = v == CCCI_LEDGER_ACCEPT || v == CCCI_LEDGER_SUPERSEDE;
    assert_int_equal(ccci_ledger_consumes((enum ccci_ledger_verdict)v), !open);
    assert_int_equal(ccci_ledger_runs((enum ccci_ledger_verdict)v), runs);
  }
}

static void test_verdict_names(void **state)
{
  (void)state;
  assert_string_equal(ccci_ledger_verdict_name(CCCI_LEDGER_ALREADY_SEEN),
                      "already-seen");
  assert_string_equal(ccci_ledger_verdict_name(CCCI_LEDGER_BASELINE),
                      "baseline");
  assert_string_equal(ccci_ledger_verdict_name(CCCI_LEDGER_NOT_AUTHORISED),
                      "not-authorised");
  assert_string_equal(ccci_ledger_verdict_name(CCCI_LEDGER_DUPLICATE),
                      "duplicate");
  assert_string_equal(ccci_ledger_verdict_name(CCCI_LEDGER_SUPERSEDE),
                      "supersede");
  assert_string_equal(ccci_ledger_verdict_name((enum ccci_ledger_verdict)(
                          CCCI_LEDGER_SUPERSEDE + 1)),
                      "?");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_the_table),
      cmocka_unit_test(test_non_candidates_ignore_later_facts),
      cmocka_unit_test(test_facts_in_order),
      cmocka_unit_test(test_consumes_and_runs),
      cmocka_unit_test(test_verdict_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
