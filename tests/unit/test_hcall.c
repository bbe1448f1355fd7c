/* Unit tests of harness/hcall's output matching: the connection error
 * texts looked for in every line of a call's stdout and stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/harness/hcall.h"

static char *patterns_v[] = {"", "error during connect", "connection refused",
                             NULL};
static const struct ccci_strlist patterns = {patterns_v, 3};

/* Run `sh -c @p script` with the patterns; the matched entry or NULL. */
static const char *run(const char *script, bool withhold, bool quiet,
                       int *status)
{
  char *argv[] = {"sh", "-c", (char *)(uintptr_t)script, NULL};
  struct ccci_hcall c;
  struct ccci_hcall_result res;
  const char *m;

  memset(&c, 0, sizeof(c));
  c.argv = argv;
  c.timeout_ms = 20000;
  c.capture = withhold;
  c.withhold = withhold;
  c.quiet = quiet;
  c.match = &patterns;
  assert_int_equal(ccci_hcall_run(&c, &res), 0);
  assert_int_equal(res.end, CCCI_HCALL_EXITED);
  *status = res.status;
  m = res.matched;
  ccci_hcall_result_free(&res);
  return m;
}

static int setup(void **state)
{
  (void)state;
  return ccci_hcall_init(NULL, NULL, 0);
}

static int teardown(void **state)
{
  (void)state;
  ccci_hcall_close();
  return 0;
}

static void test_any_case_either_stream(void **state)
{
  int st;
  (void)state;
  /* stderr, in another case: the list's own entry (a pointer into it). */
  assert_ptr_equal(run("echo 'FATA Error During Connect: Get x' >&2; exit 1",
                       false, false, &st),
                   patterns_v[1]);
  assert_int_equal(st, 1);
  /* stdout; the first entry of the list that is in the line wins. */
  assert_ptr_equal(run("echo 'dial: connection refused (error during "
                       "connect)'",
                       false, false, &st),
                   patterns_v[1]);
  assert_ptr_equal(run("echo ok; echo 'CONNECTION REFUSED'", false, false, &st),
                   patterns_v[2]);
  /* A line without a newline at the end counts too. */
  assert_ptr_equal(run("printf 'connection refused'", false, false, &st),
                   patterns_v[2]);
}

static void test_withheld_and_quiet_output_is_matched(void **state)
{
  int st;
  (void)state;
  assert_ptr_equal(run("echo 'connection refused'", true, false, &st),
                   patterns_v[2]);
  assert_ptr_equal(run("echo 'connection refused' >&2", false, true, &st),
                   patterns_v[2]);
}

static void test_no_match(void **state)
{
  int st;
  (void)state;
  /* The empty entry never matches; neither does a text cut by a line
   * break or a near miss. */
  assert_null(run("echo 'FATA no such service'; exit 1", false, false, &st));
  assert_null(run("printf 'connection\\nrefused\\n'", false, false, &st));
  assert_null(run("echo 'error during connec'", false, false, &st));
  assert_null(run("true", false, false, &st));
}

static void test_long_line(void **state)
{
  int st;
  (void)state;
  /* A line that arrives in many reads is matched as one line. */
  assert_ptr_equal(run("head -c 40000 /dev/zero | tr '\\0' a; "
                       "echo ' connection refused'",
                       true, false, &st),
                   patterns_v[2]);
}

static void test_no_patterns(void **state)
{
  char *argv[] = {"sh", "-c", "echo 'connection refused'", NULL};
  struct ccci_hcall c;
  struct ccci_hcall_result res;
  (void)state;
  memset(&c, 0, sizeof(c));
  c.argv = argv;
  c.quiet = true;
  assert_int_equal(ccci_hcall_run(&c, &res), 0);
  assert_null(res.matched);
  ccci_hcall_result_free(&res);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_any_case_either_stream),
      cmocka_unit_test(test_withheld_and_quiet_output_is_matched),
      cmocka_unit_test(test_no_match),
      cmocka_unit_test(test_long_line),
      cmocka_unit_test(test_no_patterns),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
