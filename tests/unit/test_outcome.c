/* Unit tests of outcome.c: the run outcome for every row of the tables of
 * docs/harness-contract.md (exit status and reason, the deploy budget, the
 * teardown after a stop, the janitor's adoption), with the cases the
 * integration tests drive through a real harness. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/runs/outcome.h"

#define NOFILE CCCI_OUTCOME_NO_FILE

/* results.json texts. */
#define PASS3 "{\"level\":3,\"tiers\":{\"deploy\":{\"status\":\"pass\"}}}"
#define FAIL2                                                                  \
  "{\"level\":2,\"tiers\":{\"deploy\":{\"status\":\"pass\"},"                  \
  "\"backup\":{\"status\":\"fail\"}}}"
#define NOLEVEL "{\"level\":null,\"tiers\":{\"a\":{\"status\":\"pass\"}}}"
#define PARTIAL "{\"level\":4,\"tiers\":{\"a\":{\"status\":\"running\"}}}"
/* The harness's shape (docs/results.schema.json): levels as "L<n>". */
#define NEW_L3                                                                 \
  "{\"version\":1,\"tiers\":{\"deploy\":{\"status\":\"pass\"},"                \
  "\"upgrade\":{\"status\":\"pass\"},\"install\":{\"status\":\"pass\"},"       \
  "\"backup\":{\"status\":\"pass\"},\"restore\":{\"status\":\"pass\"},"        \
  "\"custom\":{\"status\":\"skip\"}},\"level\":\"L3\",\"error\":null}"
#define NEW_UPGRADE_FAILED                                                     \
  "{\"tiers\":{\"deploy\":{\"status\":\"pass\"},\"upgrade\":{\"status\":"      \
  "\"fail\"},\"install\":{\"status\":\"pass\"}},\"level\":\"L1\"}"
#define NEW_CANCELLED                                                          \
  "{\"tiers\":{\"deploy\":{\"status\":\"pass\"},\"upgrade\":{\"status\":"      \
  "\"pass\"},\"install\":{\"status\":\"pass\"},\"backup\":{\"status\":"        \
  "\"cancelled\"}},\"level\":\"L2\"}"
#define NEW_TIMEOUT                                                            \
  "{\"tiers\":{\"deploy\":{\"status\":\"pass\"},\"upgrade\":{\"status\":"      \
  "\"timeout\"}},\"level\":\"L0\"}"
#define NEW_ERROR                                                              \
  "{\"tiers\":{\"deploy\":{\"status\":\"skip\"}},\"level\":\"L0\","            \
  "\"error\":\"recipe_meta.yml:3:1: unknown key\"}"
/* Incomplete (a status the reader does not know), with a level. */
#define NEW_PARTIAL                                                            \
  "{\"tiers\":{\"deploy\":{\"status\":\"fail\"},\"install\":{\"status\":"      \
  "\"running\"}},\"level\":\"L1\"}"

struct row {
  const char *what;
  /* the case */
  bool adopted, cancelled, timed_out, died;
  int exit_code, sig;
  long long deploys, cold;
  bool deployed;
  const char *results; /* results.json text; NULL: none written */
  /* the verdict */
  enum ccci_run_reason reason;
  enum ccci_outcome_budget budget;
  bool teardown;
  int level;
  const char *status;
};

#define R(x) CCCI_REASON_##x
#define B(x) CCCI_BUDGET_##x

static const struct row rows[] = {
    /* Exit status and the run's reason. */
    {"exit 0", false, false, false, false, 0, 0, NOFILE, 0, false, PASS3,
     R(SUCCESS), B(UNCHECKED), false, 3, "success"},
    {"exit 3 (integration: failure_and_exec_error)", false, false, false, false,
     3, 0, NOFILE, 0, false, FAIL2, R(FAILURE), B(UNCHECKED), false, 2,
     "failure"},
    {"exit 125", false, false, false, false, 125, 0, NOFILE, 0, false, NULL,
     R(FAILURE), B(UNCHECKED), false, -1, "failure"},
    {"exit 126: not executable", false, false, false, false, 126, 0, NOFILE, 0,
     false, NULL, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"exit 127: not found", false, false, false, false, 127, 0, NOFILE, 0,
     false, PASS3, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"no exit code known", false, false, false, false, -1, 0, NOFILE, 0, false,
     NULL, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"killed by a signal", false, false, false, false, -1, 9, NOFILE, 0, false,
     NULL, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"signal beats exit 0", false, false, false, false, 0, 11, 1, 0, false,
     PASS3, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"the supervisor died while deployed: its harness may live, no teardown",
     false, false, false, true, 0, 0, 1, 0, true, PASS3, R(ERROR), B(UNCHECKED),
     false, -1, "error"},
    {"a harness crash while deployed: torn down", false, false, false, false,
     -1, 11, 1, 0, true, NULL, R(ERROR), B(UNCHECKED), true, -1, "error"},
    {"exit 0, but results.json says a tier failed", false, false, false, false,
     0, 0, NOFILE, 0, false, FAIL2, R(FAILURE), B(UNCHECKED), false, 2,
     "failure"},
    /* The harness's results.json shape: "L<n>" levels, the new statuses,
     * the `error` member. */
    {"exit 0, L3", false, false, false, false, 0, 0, 1, 0, false, NEW_L3,
     R(SUCCESS), B(KEPT), false, 3, "success"},
    {"exit 0, the upgrade failed: L1", false, false, false, false, 0, 0, 1, 0,
     false, NEW_UPGRADE_FAILED, R(FAILURE), B(KEPT), false, 1, "failure"},
    {"exit 1, the upgrade failed: L1", false, false, false, false, 1, 0, 1, 0,
     false, NEW_UPGRADE_FAILED, R(FAILURE), B(KEPT), false, 1, "failure"},
    {"exit 1, every tier passed: failure, the level kept", false, false, false,
     false, 1, 0, 1, 0, false, NEW_L3, R(FAILURE), B(KEPT), false, 3,
     "failure"},
    {"exit 0, a tier cancelled", false, false, false, false, 0, 0, 1, 0, false,
     NEW_CANCELLED, R(FAILURE), B(KEPT), false, 2, "failure"},
    {"exit 0, a tier timed out", false, false, false, false, 0, 0, 1, 0, false,
     NEW_TIMEOUT, R(FAILURE), B(KEPT), false, 0, "failure"},
    {"exit 0, a harness error in results.json", false, false, false, false, 0,
     0, NOFILE, 0, false, NEW_ERROR, R(FAILURE), B(UNCHECKED), false, 0,
     "failure"},
    {"exit 0, incomplete results: success, no level", false, false, false,
     false, 0, 0, NOFILE, 0, false, NEW_PARTIAL, R(SUCCESS), B(UNCHECKED),
     false, -1, "success"},
    {"exit 0, a tier failed and 2 deploys: the budget wins", false, false,
     false, false, 0, 0, 2, 0, false, NEW_UPGRADE_FAILED, R(DEPLOY_BUDGET),
     B(OVER), false, -1, "failure"},
    /* No level for a stopped or broken run, whatever results.json says
     * (the results comment showed one: fixed). */
    {"cancelled with complete results: no level", false, true, false, false,
     143, 0, 1, 0, true, NEW_CANCELLED, R(CANCELLED), B(UNCHECKED), true, -1,
     "error"},
    {"cancelled with L3 results: no level", false, true, false, false, 0, 0, 1,
     0, false, NEW_L3, R(CANCELLED), B(UNCHECKED), false, -1, "error"},
    {"timeout with complete results: no level", false, false, true, false, 143,
     0, 1, 0, true, NEW_TIMEOUT, R(TIMEOUT), B(UNCHECKED), true, -1, "error"},
    {"error (exit 127) with L3 results: no level", false, false, false, false,
     127, 0, 1, 0, false, NEW_L3, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"crash with L3 results: no level", false, false, false, false, -1, 11, 1,
     0, false, NEW_L3, R(ERROR), B(UNCHECKED), false, -1, "error"},
    {"adopted, new shape, cancelled tier", true, false, false, false, -1, 0,
     NOFILE, 0, false, NEW_CANCELLED, R(FAILURE), B(UNCHECKED), true, 2,
     "failure"},
    {"adopted, new shape, incomplete", true, false, false, false, -1, 0, NOFILE,
     0, false, NEW_PARTIAL, R(ORPHANED), B(UNCHECKED), true, -1, "error"},
    {"success without a level", false, false, false, false, 0, 0, NOFILE, 0,
     false, NOLEVEL, R(SUCCESS), B(UNCHECKED), false, -1, "success"},
    /* Stops, and the teardown of what they left deployed. */
    {"cancelled", false, true, false, false, -1, 15, NOFILE, 0, false, NULL,
     R(CANCELLED), B(UNCHECKED), false, -1, "error"},
    {"cancelled while deployed (integration: teardown_after_cancel)", false,
     true, false, false, 143, 0, 1, 0, true, PASS3, R(CANCELLED), B(UNCHECKED),
     true, -1, "error"},
    {"cancel beats the deadline", false, true, true, true, -1, 9, NOFILE, 0,
     false, NULL, R(CANCELLED), B(UNCHECKED), false, -1, "error"},
    {"deadline (integration: deadline)", false, false, true, false, -1, 15,
     NOFILE, 0, false, NULL, R(TIMEOUT), B(UNCHECKED), false, -1, "error"},
    {"deadline while deployed", false, false, true, false, -1, 9, 5, 0, true,
     NULL, R(TIMEOUT), B(UNCHECKED), true, -1, "error"},
    {"the deadline beats a dead supervisor", false, false, true, true, -1, 0,
     NOFILE, 0, false, NULL, R(TIMEOUT), B(UNCHECKED), false, -1, "error"},
    {"a success that left its deployment: torn down", false, false, false,
     false, 0, 0, 1, 0, true, PASS3, R(SUCCESS), B(KEPT), true, 3, "success"},
    {"a failed teardown call left it (system: random undeploy failure)", false,
     false, false, false, 1, 0, 1, 0, true, FAIL2, R(FAILURE), B(KEPT), true, 2,
     "failure"},
    {"a failure with nothing left", false, false, false, false, 1, 0, 1, 0,
     false, FAIL2, R(FAILURE), B(KEPT), false, 2, "failure"},
    /* The deploy budget (integration: deploy_budget, row by row). */
    {"1 deploy", false, false, false, false, 0, 0, 1, 0, false, NULL,
     R(SUCCESS), B(KEPT), false, -1, "success"},
    {"3 deploys, 2 cold", false, false, false, false, 0, 0, 3, 2, false, PASS3,
     R(SUCCESS), B(KEPT), false, 3, "success"},
    {"2 deploys", false, false, false, false, 0, 0, 2, 0, false, PASS3,
     R(DEPLOY_BUDGET), B(OVER), false, -1, "failure"},
    {"2 deploys while deployed: the budget, torn down", false, false, false,
     false, 0, 0, 2, 0, true, PASS3, R(DEPLOY_BUDGET), B(OVER), true, -1,
     "failure"},
    {"2 deploys, a warm dependency", false, false, false, false, 0, 0, 2, 0,
     false, NULL, R(DEPLOY_BUDGET), B(OVER), false, -1, "failure"},
    {"deploys not a count", false, false, false, false, 0, 0, -1, 0, false,
     NULL, R(DEPLOY_BUDGET), B(NOT_COUNT), false, -1, "failure"},
    {"never deployed", false, false, false, false, 0, 0, NOFILE, 0, false, NULL,
     R(SUCCESS), B(UNCHECKED), false, -1, "success"},
    {"2 deploys and exit 1", false, false, false, false, 1, 0, 2, 0, false,
     FAIL2, R(DEPLOY_BUDGET), B(OVER), false, -1, "failure"},
    {"0 deploys written", false, false, false, false, 1, 0, 0, 0, false, NULL,
     R(DEPLOY_BUDGET), B(OVER), false, -1, "failure"},
    {"no budget for a timeout", false, false, true, false, -1, 0, 7, 0, false,
     NULL, R(TIMEOUT), B(UNCHECKED), false, -1, "error"},
    {"no budget for an error", false, false, false, false, 127, 0, 7, 0, false,
     NULL, R(ERROR), B(UNCHECKED), false, -1, "error"},
    /* The janitor adopts a run another instance left (integration:
     * kill_daemon_then_restart_tears_down_orphans_once). */
    {"adopted, complete and passed", true, false, false, false, -1, 0, NOFILE,
     0, false, PASS3, R(SUCCESS), B(UNCHECKED), true, 3, "success"},
    {"adopted, complete and failed", true, false, false, false, -1, 0, NOFILE,
     0, false, FAIL2, R(FAILURE), B(UNCHECKED), true, 2, "failure"},
    {"adopted, incomplete", true, false, false, false, -1, 0, NOFILE, 0, false,
     PARTIAL, R(ORPHANED), B(UNCHECKED), true, -1, "error"},
    {"adopted, no results.json", true, false, false, false, -1, 0, NOFILE, 0,
     false, NULL, R(ORPHANED), B(UNCHECKED), true, -1, "error"},
    {"adopted: only the results count", true, true, true, true, 127, 9, 9, 0,
     false, PASS3, R(SUCCESS), B(UNCHECKED), true, 3, "success"},
};

/* The harness stopped at a connection error (state/server's sticky
 * `unreachable` line): error, whatever the exit (integration: the unhealthy
 * server of test_pool.py). Each row: 1 when the line is there (0: not),
 * and whether the verdict says unreachable. */
static const struct {
  struct row r;
  unsigned long long conn;
  bool unreachable;
} urows[] = {
    {{"unreachable, exit 2", false, false, false, false, 2, 0, NOFILE, 0, false,
      NULL, R(ERROR), B(UNCHECKED), false, -1, "error"},
     1,
     true},
    {{"unreachable while deployed: torn down (when it is back)", false, false,
      false, false, 2, 0, 1, 0, true, NULL, R(ERROR), B(UNCHECKED), true, -1,
      "error"},
     2,
     true},
    {{"unreachable, exit 0 and L3: still error", false, false, false, false, 0,
      0, 1, 0, false, NEW_L3, R(ERROR), B(UNCHECKED), false, -1, "error"},
     3,
     true},
    {{"unreachable, exit 1 and 2 deploys: error, not the budget", false, false,
      false, false, 1, 0, 2, 0, false, FAIL2, R(ERROR), B(UNCHECKED), false, -1,
      "error"},
     1,
     true},
    {{"unreachable, exit 127: error", false, false, false, false, 127, 0,
      NOFILE, 0, false, NULL, R(ERROR), B(UNCHECKED), false, -1, "error"},
     2,
     true},
    {{"unreachable, cancelled: cancelled", false, true, false, false, 143, 0, 1,
      0, true, NULL, R(CANCELLED), B(UNCHECKED), true, -1, "error"},
     1,
     false},
    {{"unreachable, deadline: timeout", false, false, true, false, -1, 15,
      NOFILE, 0, false, NULL, R(TIMEOUT), B(UNCHECKED), false, -1, "error"},
     4,
     false},
    {{"unreachable, adopted: the results count", true, false, false, false, -1,
      0, NOFILE, 0, false, PASS3, R(SUCCESS), B(UNCHECKED), true, 3, "success"},
     5,
     false},
    {{"reached at the end (0 errors): the exit counts", false, false, false,
      false, 0, 0, 1, 0, false, PASS3, R(SUCCESS), B(KEPT), false, 3,
      "success"},
     0,
     false},
};

static void check_row(const struct row *w, unsigned long long conn,
                      bool unreachable)
{
  {
    struct ccci_outcome_case c;
    struct ccci_results res;
    struct ccci_outcome o;

    print_message("%s\n", w->what);
    memset(&c, 0, sizeof(c));
    memset(&res, 0, sizeof(res));
    res.level = -1;
    if (w->results != NULL)
      assert_int_equal(ccci_results_parse(w->results, strlen(w->results), &res),
                       0);
    c.adopted = w->adopted;
    c.cancelled = w->cancelled;
    c.timed_out = w->timed_out;
    c.supervisor_died = w->died;
    c.exit_code = w->exit_code;
    c.signal = w->sig;
    c.deploys = w->deploys;
    c.cold_deps = w->cold;
    c.opstate_deployed = w->deployed;
    c.unreachable = conn > 0;
    c.results = &res;
    o = ccci_outcome_decide(&c);
    assert_int_equal(o.unreachable, unreachable);
    assert_string_equal(ccci_run_reason_name(o.reason),
                        ccci_run_reason_name(w->reason));
    assert_int_equal(o.budget, w->budget);
    assert_int_equal(o.teardown, w->teardown);
    assert_int_equal(o.level, w->level);
    assert_string_equal(o.commit_status, w->status);
    ccci_results_clear(&res);
  }
}

static void test_table(void **state)
{
  size_t i;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(rows); i++)
    check_row(&rows[i], 0, false);
  for (i = 0; i < CCCI_ARRAY_LEN(urows); i++)
    check_row(&urows[i].r, urows[i].conn, urows[i].unreachable);
}

/* Without a results.json read at all (NULL): no level, and an adopted run
 * is orphaned. */
static void test_no_results(void **state)
{
  struct ccci_outcome_case c;
  struct ccci_outcome o;
  (void)state;
  memset(&c, 0, sizeof(c));
  c.deploys = NOFILE;
  o = ccci_outcome_decide(&c);
  assert_int_equal(o.reason, CCCI_REASON_SUCCESS);
  assert_int_equal(o.level, -1);
  c.adopted = true;
  o = ccci_outcome_decide(&c);
  assert_int_equal(o.reason, CCCI_REASON_ORPHANED);
}

static void test_teardown_outcome(void **state)
{
  (void)state;
  assert_int_equal(ccci_outcome_teardown(false, 0), CCCI_TEARDOWN_CLEAN);
  assert_int_equal(ccci_outcome_teardown(false, 1), CCCI_TEARDOWN_FAILED);
  assert_int_equal(ccci_outcome_teardown(false, -1), CCCI_TEARDOWN_FAILED);
  assert_int_equal(ccci_outcome_teardown(true, 0), CCCI_TEARDOWN_FORCED);
  assert_int_equal(ccci_outcome_teardown(true, 1), CCCI_TEARDOWN_FORCED);
}

/* state/server (SPEC section 12): the harness writes it, the daemon reads
 * it at the run's end; anything malformed is ignored with a note. */
static void test_server_file(void **state)
{
  static const struct {
    const char *text;
    int rc;
    const char *name;
    unsigned long long reached, errors;
    const char *error;
  } srows[] = {
      {"server b\nreached 4\nconnection_errors 0\n", 0, "b", 4, 0, ""},
      {"server b\nreached 0\nconnection_errors 3\nerror connection "
       "refused\n",
       0, "b", 0, 3, "connection refused"},
      {"server b\r\nreached 1\r\nconnection_errors 1\r\nerror i/o "
       "timeout",
       0, "b", 1, 1, "i/o timeout"},
      {"reached 2\nconnection_errors 0\nlater 7\n\n", 0, "", 2, 0, ""},
      /* The teardown reached it again: 0 in a row, but the run stopped. */
      {"server b\nreached 3\nconnection_errors 0\nunreachable connection "
       "refused\n",
       0, "b", 3, 0, ""},
      {"server b\nreached x\nconnection_errors 0\n", -EINVAL, NULL, 0, 0, NULL},
      {"server b\nreached 1\n", -EINVAL, NULL, 0, 0, NULL},
      {"server b\nreached 1\nconnection_errors -1\n", -EINVAL, NULL, 0, 0,
       NULL},
      {"server b\nreached 1\nconnection_errors 99999999999999999999\n", -EINVAL,
       NULL, 0, 0, NULL},
      {"garbage\n", -EINVAL, NULL, 0, 0, NULL},
      {"server \nreached 1\nconnection_errors 0\n", -EINVAL, NULL, 0, 0, NULL},
      {"", -EINVAL, NULL, 0, 0, NULL},
  };
  char longname[400];
  struct ccci_outcome_server s;
  const char *why;
  size_t i;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(srows); i++) {
    print_message("%s\n", srows[i].text);
    assert_int_equal(ccci_outcome_server_parse(srows[i].text,
                                               strlen(srows[i].text), &s, &why),
                     srows[i].rc);
    if (srows[i].rc < 0) {
      assert_non_null(why);
      continue;
    }
    assert_null(why);
    assert_string_equal(s.name, srows[i].name);
    assert_int_equal(s.reached, srows[i].reached);
    assert_int_equal(s.connection_errors, srows[i].errors);
    assert_string_equal(s.error, srows[i].error);
    /* The one row with the sticky line. */
    assert_string_equal(s.unreachable,
                        strstr(srows[i].text, "\nunreachable ") != NULL
                            ? "connection refused"
                            : "");
  }
  /* A name longer than the field: refused, not cut. */
  memcpy(longname, "server ", 7);
  memset(longname + 7, 'a', 300);
  snprintf(longname + 307, sizeof(longname) - 307,
           "\nreached 1\nconnection_errors 0\n");
  assert_int_equal(
      ccci_outcome_server_parse(longname, strlen(longname), &s, &why), -EINVAL);
  /* A NUL inside a value: refused. */
  assert_int_equal(
      ccci_outcome_server_parse("server a\0b\nreached 1\nconnection_errors 0",
                                40, &s, &why),
      -EINVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_server_file),
      cmocka_unit_test(test_no_results),
      cmocka_unit_test(test_teardown_outcome),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
