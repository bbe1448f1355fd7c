/* Unit tests of results.c: what a complete results.json is, what a failed
 * one is, and what the reader keeps of the tiers and the level. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/runs/results.h"

/*
 * results.json. Each text is copied into a heap block of exactly @p len
 * bytes with no terminator, so reading past @p len is an ASan error. The
 * caller's @p failed starts at the opposite of what is expected, so a value
 * that is never written shows.
 */
static bool complete_n(const char *text, size_t len, bool *failed)
{
  char *copy = malloc(len > 0 ? len : 1);
  struct ccci_results res;
  bool r;

  assert_non_null(copy);
  memcpy(copy, text, len);
  r = ccci_results_parse(copy, len, &res) == 0 && res.complete;
  *failed = res.failed;
  ccci_results_clear(&res);
  free(copy);
  return r;
}

static void expect_n(const char *text, size_t len, bool complete,
                     bool failed_want)
{
  bool failed = !failed_want;

  assert_int_equal(complete_n(text, len, &failed), complete);
  assert_int_equal(failed, failed_want);
}

static void expect_complete(const char *text, bool failed_want)
{
  expect_n(text, strlen(text), true, failed_want);
}

/* Not complete, so never failed (whatever @p failed held before). */
static void expect_incomplete(const char *text)
{
  bool failed = true;

  assert_false(complete_n(text, strlen(text), &failed));
  assert_false(failed);
}

static void test_results_complete(void **state)
{
  (void)state;
  expect_complete("{\"level\":\"full\",\"tiers\":{\"smoke\":{\"status\":"
                  "\"pass\"}}}",
                  false);
  expect_complete("{\"level\":\"full\",\"tiers\":{\"smoke\":{\"status\":"
                  "\"pass\"},\"deploy\":{\"status\":\"pass\"},\"e2e\":"
                  "{\"status\":\"pass\"}}}",
                  false);
  /* A fail or an error anywhere fails the run. */
  expect_complete("{\"level\":\"full\",\"tiers\":{\"smoke\":{\"status\":"
                  "\"pass\"},\"e2e\":{\"status\":\"fail\"}}}",
                  true);
  expect_complete("{\"level\":\"full\",\"tiers\":{\"smoke\":{\"status\":"
                  "\"error\"},\"e2e\":{\"status\":\"pass\"}}}",
                  true);
  expect_complete("{\"level\":1,\"tiers\":{\"a\":{\"status\":\"fail\"},"
                  "\"b\":{\"status\":\"error\"}}}",
                  true);
  /* Skips only: complete, not failed. */
  expect_complete("{\"level\":\"quick\",\"tiers\":{\"a\":{\"status\":"
                  "\"skip\"},\"b\":{\"status\":\"skip\"}}}",
                  false);
  expect_complete("{\"level\":\"quick\",\"tiers\":{\"a\":{\"status\":"
                  "\"skip\"},\"b\":{\"status\":\"error\"}}}",
                  true);
  /* Other members, at the top and in a tier, are allowed. */
  expect_complete("{\"version\":1,\"level\":\"full\",\"tiers\":{\"a\":{"
                  "\"status\":\"pass\",\"seconds\":3.5,\"log\":[]}},"
                  "\"extra\":null}",
                  false);
  expect_complete(" \n{\"tiers\":{\"a\":{\"status\":\"pass\"}},\"level\":"
                  "\"full\"}\n ",
                  false);
}

static void test_results_incomplete(void **state)
{
  (void)state;
  /* Missing level, missing or empty or non-object tiers. */
  expect_incomplete("{\"tiers\":{\"a\":{\"status\":\"pass\"}}}");
  expect_incomplete("{\"Level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"}}}");
  expect_incomplete("{\"level\":\"full\"}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":null}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":[{\"status\":\"pass\"}]}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":\"pass\"}");
  /* A tier without a status, or not an object. */
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"},\"b\":{\"result\":\"pass\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":\"pass\"}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":null}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":[\"pass\"]}}");
  /* A status that is not one of the four. */
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"PASS\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"passed\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"running\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "null}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "true}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "[\"pass\"]}}}");
  /* A failed tier before an unknown one: incomplete, so not failed. */
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"fail\"},\"b\":{\"status\":\"unknown\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"error\"},\"b\":{}}}");
  /* Not an object. */
  expect_incomplete("[]");
  expect_incomplete("[{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"}}}]");
  expect_incomplete("\"pass\"");
  expect_incomplete("null");
  expect_incomplete("42");
  /* Not JSON. */
  expect_incomplete("");
  expect_incomplete(" ");
  expect_incomplete("{");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"}}");
  expect_incomplete("{level:\"full\",tiers:{a:{status:\"pass\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "'pass'}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"}}}{}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"},}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pa\xffss\"}}}");
}

static void test_results_duplicates_and_nul(void **state)
{
  static const char nul_after[] =
      "{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":\"pass\"}}}\0{}";
  static const char nul_inside[] =
      "{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":\"pa\0ss\"}}}";
  static const char nul_key[] =
      "{\"level\":\"full\",\"tiers\":{\"a\":{\"sta\0tus\":\"pass\"}}}";
  (void)state;

  /* Duplicate keys, at the top or in tiers (a lenient reader would take
   * one of them and could hide a failure). */
  expect_incomplete("{\"level\":\"full\",\"level\":\"quick\",\"tiers\":{"
                    "\"a\":{\"status\":\"pass\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\"}},\"tiers\":{\"a\":{\"status\":\"fail\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"fail\"},\"a\":{\"status\":\"pass\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"fail\",\"status\":\"pass\"}}}");

  /* Embedded NUL: raw in the text (len covers it), or escaped. */
  expect_n(nul_after, sizeof(nul_after) - 1, false, false);
  expect_n(nul_inside, sizeof(nul_inside) - 1, false, false);
  expect_n(nul_key, sizeof(nul_key) - 1, false, false);
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"pass\\u0000\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                    "\"fail\\u0000x\"}}}");
  expect_incomplete("{\"level\":\"full\",\"tiers\":{\"a\":{\"sta\\u0000"
                    "tus\":\"pass\"}}}");
  /* An escaped status that decodes to a known one is that status. */
  expect_complete("{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                  "\"f\\u0061il\"}}}",
                  true);
}

static void test_results_truncated(void **state)
{
  static const char text[] = "{\"level\":\"full\",\"tiers\":{\"a\":{\"status\":"
                             "\"pass\"},\"b\":{\"status\":\"fail\"}}}";
  size_t len;
  (void)state;

  expect_n(text, sizeof(text) - 1, true, true);
  /* Every proper prefix: the text is read only up to len. */
  for (len = 0; len < sizeof(text) - 1; len++)
    expect_n(text, len, false, false);
}

static void test_results_level_and_tiers(void **state)
{
  static const char text[] =
      "{\"level\":3,\"tiers\":{\"install\":{\"status\":\"pass\"},"
      "\"upgrade\":{\"status\":\"fail\"},\"odd\":{\"status\":\"maybe\"},"
      "\"none\":{}}}";
  struct ccci_results r;
  (void)state;

  assert_int_equal(ccci_results_parse(text, sizeof(text) - 1, &r), 0);
  assert_false(r.complete); /* "maybe" is not a status */
  assert_false(r.failed);
  assert_int_equal(r.level, 3);
  /* Tiers with a string status are kept in file order, known or not. */
  assert_int_equal(r.ntiers, 3);
  assert_string_equal(r.tiers[0].name, "install");
  assert_string_equal(r.tiers[0].status, "pass");
  assert_string_equal(r.tiers[1].name, "upgrade");
  assert_string_equal(r.tiers[1].status, "fail");
  assert_string_equal(r.tiers[2].status, "maybe");
  ccci_results_clear(&r);
  assert_int_equal(r.ntiers, 0);
  assert_int_equal(r.level, -1);

  /* A level outside 0..9 or not an integer is no level. */
  assert_int_equal(ccci_results_parse("{\"level\":10}", 12, &r), 0);
  assert_int_equal(r.level, -1);
  ccci_results_clear(&r);
  assert_int_equal(ccci_results_parse("{\"level\":\"full\"}", 16, &r), 0);
  assert_int_equal(r.level, -1);
  ccci_results_clear(&r);
  assert_int_equal(ccci_results_parse("{\"level\":-1}", 12, &r), 0);
  assert_int_equal(r.level, -1);
  ccci_results_clear(&r);
  /* Not an object: -EINVAL, and still an empty result. */
  assert_int_equal(ccci_results_parse("[1]", 3, &r), -EINVAL);
  assert_int_equal(r.ntiers, 0);
  assert_false(r.complete);
  ccci_results_clear(&r);
}

static void test_results_read(void **state)
{
  char path[] = "/tmp/ccci-results-XXXXXX";
  int fd = mkstemp(path);
  struct ccci_results r;
  static const char text[] =
      "{\"level\":9,\"tiers\":{\"install\":{\"status\":\"pass\"}}}";
  (void)state;

  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
  assert_int_equal(close(fd), 0);
  assert_int_equal(ccci_results_read(path, &r), 0);
  assert_true(r.complete);
  assert_int_equal(r.level, 9);
  ccci_results_clear(&r);
  /* Past the cap: -EFBIG, nothing parsed. */
  assert_int_equal(truncate(path, CCCI_RESULTS_MAX_BYTES + 1), 0);
  assert_int_equal(ccci_results_read(path, &r), -EFBIG);
  assert_false(r.complete);
  ccci_results_clear(&r);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(ccci_results_read(path, &r), -ENOENT);
  assert_int_equal(r.level, -1);
  ccci_results_clear(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_results_complete),
      cmocka_unit_test(test_results_incomplete),
      cmocka_unit_test(test_results_duplicates_and_nul),
      cmocka_unit_test(test_results_truncated),
      cmocka_unit_test(test_results_level_and_tiers),
      cmocka_unit_test(test_results_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
