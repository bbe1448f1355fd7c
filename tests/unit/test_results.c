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

#include "ccci/core/util.h"
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
  /* Tiers with a string status are kept, known or not: the known ones in
   * run order (upgrade runs before install), then the others. */
  assert_int_equal(r.ntiers, 3);
  assert_string_equal(r.tiers[0].name, "upgrade");
  assert_string_equal(r.tiers[0].status, "fail");
  assert_int_equal(r.tiers[0].tier, CCCI_TIER_UPGRADE);
  assert_int_equal(r.tiers[0].st, CCCI_TS_FAIL);
  assert_string_equal(r.tiers[1].name, "install");
  assert_string_equal(r.tiers[1].status, "pass");
  assert_string_equal(r.tiers[2].name, "odd");
  assert_string_equal(r.tiers[2].status, "maybe");
  assert_int_equal(r.tiers[2].tier, -1);
  assert_int_equal(r.tiers[2].st, CCCI_TS_NONE);
  assert_int_equal(r.st[CCCI_TIER_INSTALL], CCCI_TS_PASS);
  assert_int_equal(r.st[CCCI_TIER_DEPLOY], CCCI_TS_NONE);
  ccci_results_clear(&r);
  assert_int_equal(r.ntiers, 0);
  assert_int_equal(r.level, -1);

  /* A level outside 0..4, or not an integer nor "L0".."L4", is no level. */
  assert_int_equal(ccci_results_parse("{\"level\":5}", 11, &r), 0);
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
      "{\"level\":\"L4\",\"tiers\":{\"install\":{\"status\":\"pass\"}}}";
  (void)state;

  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
  assert_int_equal(close(fd), 0);
  assert_int_equal(ccci_results_read(path, &r), 0);
  assert_true(r.complete);
  assert_int_equal(r.level, 4);
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

/* The shape the harness writes (docs/results.schema.json). */
static const char full_shape[] =
    "{\"version\":1,\"run\":\"r1\",\"recipe\":\"hello\",\"repo\":\"o/hello\","
    "\"pr\":3,\"sha\":null,\"ref\":null,\"domain\":\"hello-pr3.x\","
    "\"server\":\"default\",\"base_version\":\"1.0.0+1.0\",\"quick\":false,"
    "\"tiers\":{"
    "\"custom\":{\"status\":\"skip\",\"reason\":\"no tests\",\"started_at\":"
    "null,\"duration_s\":0,\"step\":null},"
    "\"deploy\":{\"status\":\"pass\",\"reason\":null,\"started_at\":"
    "\"2026-12-07T03:00:00Z\",\"duration_s\":12.5,\"step\":\"deploy\"},"
    "\"upgrade\":{\"status\":\"pass\",\"reason\":null,\"duration_s\":3,"
    "\"step\":\"upgrade\",\"data_checked\":true},"
    "\"install\":{\"status\":\"pass\",\"duration_s\":1.5},"
    "\"backup\":{\"status\":\"pass\",\"duration_s\":2},"
    "\"restore\":{\"status\":\"pass\",\"duration_s\":2,\"data_checked\":"
    "false}},"
    "\"level\":\"L3\",\"level_name\":\"backup and restore\",\"deploys\":2,"
    "\"invariants\":{\"deploy_budget_ok\":true,\"teardown_clean\":false,"
    "\"secrets_clean\":true},\"error\":null,"
    "\"started_at\":\"2026-12-07T03:00:00Z\",\"duration_s\":42.1}";

static void test_results_shape(void **state)
{
  struct ccci_results r;
  static const char *const order[] = {"deploy", "upgrade", "install",
                                      "backup", "restore", "custom"};
  size_t i;
  (void)state;

  assert_int_equal(ccci_results_parse(full_shape, strlen(full_shape), &r), 0);
  assert_true(r.complete);
  assert_false(r.failed);
  assert_int_equal(r.level, 3);
  assert_false(r.quick);
  assert_int_equal(r.deploys, 2);
  assert_true(r.duration_s > 42.0 && r.duration_s < 42.2);
  assert_int_equal(r.deploy_budget_ok, 1);
  assert_int_equal(r.teardown_clean, 0);
  assert_int_equal(r.secrets_clean, 1);
  assert_null(r.error);
  assert_int_equal(r.ntiers, 6);
  for (i = 0; i < 6; i++)
    assert_string_equal(r.tiers[i].name, order[i]);
  assert_null(r.tiers[0].reason);
  assert_true(r.tiers[0].duration_s == 12.5);
  assert_int_equal(r.tiers[0].data_checked, -1);
  assert_int_equal(r.tiers[1].data_checked, 1);
  assert_int_equal(r.tiers[4].data_checked, 0);
  assert_true(r.tiers[2].duration_s == 1.5);
  assert_string_equal(r.tiers[5].reason, "no tests");
  assert_int_equal(r.tiers[5].st, CCCI_TS_SKIP);
  assert_int_equal(r.st[CCCI_TIER_CUSTOM], CCCI_TS_SKIP);
  assert_int_equal(ccci_level_compute(r.st, r.quick), 3);
  assert_null(ccci_results_first_failed(&r));
  ccci_results_clear(&r);
}

/* cancelled and timeout are statuses that fail the run; `error` a string
 * fails it too; the first failed tier is in run order. */
static void test_results_failing(void **state)
{
  struct ccci_results r;
  static const char two[] =
      "{\"level\":\"L0\",\"tiers\":{\"backup\":{\"status\":\"timeout\"},"
      "\"upgrade\":{\"status\":\"cancelled\",\"reason\":\"SIGTERM\"}}}";
  (void)state;

  expect_complete("{\"level\":\"L2\",\"tiers\":{\"backup\":{\"status\":"
                  "\"cancelled\"}}}",
                  true);
  expect_complete("{\"level\":\"L2\",\"tiers\":{\"backup\":{\"status\":"
                  "\"timeout\"}}}",
                  true);
  expect_complete("{\"level\":\"L1\",\"tiers\":{\"install\":{\"status\":"
                  "\"pass\"}},\"error\":\"bad recipe_meta.yml\"}",
                  true);
  expect_complete("{\"level\":\"L1\",\"tiers\":{\"install\":{\"status\":"
                  "\"pass\"}},\"error\":null}",
                  false);
  /* An `error` on an incomplete file is not a failure. */
  expect_incomplete("{\"tiers\":{\"install\":{\"status\":\"pass\"}},"
                    "\"error\":\"checkout failed\"}");
  assert_int_equal(ccci_results_parse(two, strlen(two), &r), 0);
  assert_true(r.failed);
  assert_string_equal(ccci_results_first_failed(&r)->name, "upgrade");
  assert_string_equal(ccci_results_first_failed(&r)->reason, "SIGTERM");
  ccci_results_clear(&r);
}

/* The example harness (examples/example-harness): "level":0 and only
 * skipped tiers read as complete, level 0, not failed. */
static void test_results_example_harness(void **state)
{
  static const char text[] =
      "{\"run\":\"r\",\"recipe\":\"x\",\"pr\":null,\"sha\":\"\",\"tiers\":{"
      "\"deploy\":{\"status\":\"skip\",\"reason\":\"example harness\"},"
      "\"install\":{\"status\":\"skip\",\"reason\":\"example harness\"}},"
      "\"level\":0,\"example\":true}";
  struct ccci_results r;
  (void)state;
  assert_int_equal(ccci_results_parse(text, strlen(text), &r), 0);
  assert_true(r.complete);
  assert_false(r.failed);
  assert_int_equal(r.level, 0);
  ccci_results_clear(&r);
}

/* The example harness itself (examples/example-harness, run for real, full
 * and quick): its results.json reads as complete, level 0, not failed. */
static void test_results_example_harness_script(void **state)
{
  static const char *const quick[] = {"0", "1"};
  char path[] = "/tmp/ccci-example-results-XXXXXX";
  int fd = mkstemp(path);
  size_t i;
  (void)state;

  assert_true(fd >= 0);
  assert_int_equal(close(fd), 0);
  for (i = 0; i < 2; i++) {
    struct ccci_results r;
    char *cmd = ccci_xasprintf(
        "env -i PATH=/usr/bin:/bin EXAMPLE_HARNESS_SLEEP=0 CCCI_QUICK=%s "
        "CCCI_RUN_ID=r1 CCCI_RECIPE=hello CCCI_RESULTS_FILE=%s "
        "/bin/sh %s/example-harness >/dev/null",
        quick[i], path, CCCI_EXAMPLES);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(ccci_results_read(path, &r), 0);
    assert_true(r.complete);
    assert_false(r.failed);
    assert_int_equal(r.level, 0);
    assert_true(r.ntiers > 0);
    assert_int_equal(r.tiers[0].st, CCCI_TS_SKIP);
    ccci_results_clear(&r);
  }
  assert_int_equal(unlink(path), 0);
}

/* Free text is capped at a character boundary; members of the wrong type
 * read as absent. */
static void test_results_caps_and_types(void **state)
{
  struct ccci_buf b;
  struct ccci_results r;
  size_t i;
  (void)state;

  ccci_buf_init(&b, SIZE_MAX);
  assert_int_equal(ccci_buf_printf(&b, "{\"level\":\"L1\",\"error\":\"x"), 0);
  for (i = 0; i < CCCI_RESULTS_TEXT_MAX; i++)
    assert_int_equal(ccci_buf_printf(&b, "\xc3\xa9"), 0); /* 2 bytes each */
  assert_int_equal(ccci_buf_printf(&b, "\",\"tiers\":{\"install\":{\"status\":"
                                       "\"pass\",\"reason\":7,"
                                       "\"duration_s\":\"1\",\"data_checked\":"
                                       "1}},\"deploys\":-1,\"quick\":1,"
                                       "\"invariants\":[]}"),
                   0);
  assert_int_equal(ccci_results_parse(b.data, b.len, &r), 0);
  assert_true(r.complete);
  assert_non_null(r.error);
  assert_true(strlen(r.error) <= CCCI_RESULTS_TEXT_MAX);
  assert_true(strlen(r.error) >= CCCI_RESULTS_TEXT_MAX - 1);
  assert_int_equal(strlen(r.error) % 2, 1); /* "x" + whole characters */
  assert_null(r.tiers[0].reason);
  assert_true(r.tiers[0].duration_s < 0);
  assert_int_equal(r.tiers[0].data_checked, -1);
  assert_int_equal(r.deploys, -1);
  assert_false(r.quick);
  assert_int_equal(r.deploy_budget_ok, -1);
  ccci_results_clear(&r);
  ccci_buf_close(&b);
}

/* Artifact paths: only safe run-dir-relative paths under artifacts/ are
 * kept, capped in count and length; the step name likewise. */
static void test_results_artifacts_and_step(void **state)
{
  static const char *const ok[] = {"artifacts/install.png", "artifacts/a",
                                   "artifacts/custom/page-1.html",
                                   "artifacts/A_b.c-d", "artifacts/x..y"};
  static const char *const bad[] = {
      "artifacts/",         "artifacts/../meta.json",
      "artifacts/./x",      "artifacts/.hidden",
      "/etc/passwd",        "install.png",
      "logs/0-init.jsonl",  "artifacts//x",
      "artifacts/x/",       "artifacts/a b",
      "artifacts/a|b",      "artifacts/a)b",
      "artifacts/\xc3\xa9", "artifacts/a\\b",
      "artifacts/-x",       "artifacts/x/..",
      "Artifacts/x",        "artifacts/x?y=1"};
  static const char text[] =
      "{\"level\":\"L1\",\"tiers\":{\"install\":{\"status\":\"pass\","
      "\"step\":\"install\",\"artifacts\":[\"artifacts/install.png\","
      "\"../x\",7,null,\"artifacts/install.png\",\"artifacts/b.txt\"]},"
      "\"deploy\":{\"status\":\"pass\",\"step\":\"Deploy\"},"
      "\"upgrade\":{\"status\":\"skip\",\"step\":null,\"artifacts\":\"x\"}},"
      "\"artifacts\":[\"artifacts/install.png\",\"/abs\"]}";
  struct ccci_buf b;
  struct ccci_results r;
  const struct ccci_results_tier *t;
  char path[CCCI_RESULTS_ARTIFACT_PATH_MAX + 2];
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    assert_true(ccci_results_artifact_ok(ok[i]));
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    print_message("bad: %s\n", bad[i]);
    assert_false(ccci_results_artifact_ok(bad[i]));
  }
  assert_false(ccci_results_artifact_ok(NULL));
  memset(path, 'a', sizeof(path) - 1);
  memcpy(path, "artifacts/", 10);
  path[CCCI_RESULTS_ARTIFACT_PATH_MAX] = '\0';
  assert_true(ccci_results_artifact_ok(path));
  path[CCCI_RESULTS_ARTIFACT_PATH_MAX] = 'a';
  path[CCCI_RESULTS_ARTIFACT_PATH_MAX + 1] = '\0';
  assert_false(ccci_results_artifact_ok(path));

  assert_int_equal(ccci_results_parse(text, strlen(text), &r), 0);
  assert_true(r.complete);
  t = ccci_results_tier(&r, "install");
  assert_non_null(t);
  assert_string_equal(t->step, "install");
  assert_int_equal(t->artifacts.n, 2); /* the bad, the odd and the repeat go */
  assert_string_equal(t->artifacts.path[0], "artifacts/install.png");
  assert_string_equal(t->artifacts.path[1], "artifacts/b.txt");
  t = ccci_results_tier(&r, "deploy");
  assert_null(t->step); /* not a step name */
  assert_int_equal(t->artifacts.n, 0);
  t = ccci_results_tier(&r, "upgrade");
  assert_null(t->step);
  assert_int_equal(t->artifacts.n, 0);
  assert_null(ccci_results_tier(&r, "custom"));
  assert_int_equal(r.artifacts.n, 1);
  assert_string_equal(r.artifacts.path[0], "artifacts/install.png");
  ccci_results_clear(&r);
  assert_int_equal(r.artifacts.n, 0);

  /* The count is capped. */
  ccci_buf_init(&b, SIZE_MAX);
  assert_int_equal(ccci_buf_printf(&b,
                                   "{\"level\":\"L0\",\"tiers\":{\"deploy\":"
                                   "{\"status\":\"fail\"}},\"artifacts\":["),
                   0);
  for (i = 0; i < 3 * CCCI_RESULTS_ARTIFACTS_MAX; i++)
    assert_int_equal(
        ccci_buf_printf(&b, "%s\"artifacts/f%zu\"", i > 0 ? "," : "", i), 0);
  assert_int_equal(ccci_buf_printf(&b, "]}"), 0);
  assert_int_equal(ccci_results_parse(b.data, b.len, &r), 0);
  assert_int_equal(r.artifacts.n, CCCI_RESULTS_ARTIFACTS_MAX);
  assert_string_equal(r.artifacts.path[CCCI_RESULTS_ARTIFACTS_MAX - 1],
                      "artifacts/f15");
  ccci_results_clear(&r);
  ccci_buf_close(&b);
}

/* The explanation of what results.json says. */
static void test_results_explain(void **state)
{
  static const char text[] =
      "{\"level\":\"L2\",\"tiers\":{\"deploy\":{\"status\":\"pass\"},"
      "\"upgrade\":{\"status\":\"pass\"},\"install\":{\"status\":\"pass\"},"
      "\"backup\":{\"status\":\"skip\",\"reason\":\"no backupbot label\"},"
      "\"restore\":{\"status\":\"skip\",\"reason\":\"backup skipped\"}}}";
  struct ccci_results r;
  char out[CCCI_LEVEL_EXPLAIN_MAX];
  (void)state;
  assert_int_equal(ccci_results_parse(text, strlen(text), &r), 0);
  ccci_results_explain(&r, r.level, out);
  assert_string_equal(out, "L2: backup skipped, no backupbot label");
  ccci_results_explain(&r, -1, out);
  assert_string_equal(out, "");
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
      cmocka_unit_test(test_results_shape),
      cmocka_unit_test(test_results_failing),
      cmocka_unit_test(test_results_example_harness),
      cmocka_unit_test(test_results_example_harness_script),
      cmocka_unit_test(test_results_caps_and_types),
      cmocka_unit_test(test_results_artifacts_and_step),
      cmocka_unit_test(test_results_explain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
