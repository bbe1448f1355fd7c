/* Unit tests of levels.c: the tier table, the status names and the level
 * rule of docs/levels.md (every tier of every rung up to the level passed;
 * a skipped tier caps below its rung; quick at most L1; deploy failure L0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/runs/levels.h"

/* One run: the statuses as one letter per tier in run order (deploy,
 * upgrade, install, backup, restore, custom): P pass, F fail, S skip,
 * E error, C cancelled, T timeout, - absent. */
struct row {
  const char *st;
  bool quick;
  int level;
  int blocker;
  int first_failed;
};

#define T(x) CCCI_TIER_##x

static const struct row rows[] = {
    {"PPPPPP", false, 4, -1, -1},
    {"PPPPPF", false, 3, T(CUSTOM), T(CUSTOM)},
    {"PPPPPS", false, 3, T(CUSTOM), -1},
    {"PPPPFP", false, 2, T(RESTORE), T(RESTORE)},
    {"PPPSSP", false, 2, T(BACKUP), -1}, /* no backupbot label */
    {"PFPPPP", false, 1, T(UPGRADE), T(UPGRADE)},
    {"PSPPPP", false, 1, T(UPGRADE), -1}, /* no release to upgrade from */
    {"PPFPPP", false, 0, T(INSTALL), T(INSTALL)},
    {"PPSPPP", false, 0, T(INSTALL), -1},
    {"FSSSSS", false, 0, T(DEPLOY), T(DEPLOY)},
    {"ESSSSS", false, 0, T(DEPLOY), T(DEPLOY)},
    {"SSSSSS", false, 0, T(DEPLOY), -1}, /* the example harness */
    {"------", false, 0, T(DEPLOY), -1},
    {"PPPC--", false, 2, T(BACKUP), T(BACKUP)},
    {"PPPPT-", false, 2, T(RESTORE), T(RESTORE)},
    {"PP-PPP", false, 0, T(INSTALL), -1},
    /* quick: deploy and install only */
    {"P-P---", true, 1, -1, -1},
    {"P-F---", true, 0, T(INSTALL), T(INSTALL)},
    {"PPPPPP", true, 1, -1, -1},
    {"F-----", true, 0, T(DEPLOY), T(DEPLOY)},
};

static void statuses(const char *s, enum ccci_tier_status st[CCCI_TIER_COUNT])
{
  size_t i;
  assert_int_equal(strlen(s), CCCI_TIER_COUNT);
  for (i = 0; i < CCCI_TIER_COUNT; i++) {
    const char *p = strchr("-PFSECT", s[i]);
    assert_non_null(p);
    st[i] = (enum ccci_tier_status)(p - "-PFSECT");
  }
}

static void test_compute(void **state)
{
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    enum ccci_tier_status st[CCCI_TIER_COUNT];
    print_message("%s%s\n", rows[i].st, rows[i].quick ? " quick" : "");
    statuses(rows[i].st, st);
    assert_int_equal(ccci_level_compute(st, rows[i].quick), rows[i].level);
    assert_int_equal(ccci_level_blocker(st, rows[i].quick), rows[i].blocker);
    assert_int_equal(ccci_level_first_failed(st), rows[i].first_failed);
  }
}

/* The tier table as the notes fix it: run order and rungs. */
static void test_tiers(void **state)
{
  static const char *const order[] = {"deploy", "upgrade", "install",
                                      "backup", "restore", "custom"};
  static const int rung[] = {0, 2, 1, 3, 3, 4};
  int i;
  (void)state;
  assert_int_equal(CCCI_TIER_COUNT, 6);
  for (i = 0; i < CCCI_TIER_COUNT; i++) {
    assert_string_equal(ccci_tier_name((enum ccci_tier)i), order[i]);
    assert_int_equal(ccci_tier_parse(order[i]), i);
    assert_int_equal(ccci_tier_rung((enum ccci_tier)i), rung[i]);
    assert_non_null(ccci_tier_doc((enum ccci_tier)i));
  }
  assert_null(ccci_tier_name(CCCI_TIER_COUNT));
  assert_int_equal(ccci_tier_rung(CCCI_TIER_COUNT), -1);
  assert_int_equal(ccci_tier_parse("Deploy"), -1);
  assert_int_equal(ccci_tier_parse(""), -1);
  assert_int_equal(ccci_tier_parse(NULL), -1);
}

static void test_statuses(void **state)
{
  static const char *const names[] = {"pass",  "fail",      "skip",
                                      "error", "cancelled", "timeout"};
  static const bool failed[] = {false, true, false, true, true, true};
  int i;
  (void)state;
  assert_int_equal(CCCI_TS_COUNT, 7);
  assert_null(ccci_tier_status_name(CCCI_TS_NONE));
  assert_false(ccci_tier_status_failed(CCCI_TS_NONE));
  assert_null(ccci_tier_status_name(CCCI_TS_COUNT));
  for (i = 0; i < 6; i++) {
    enum ccci_tier_status s = (enum ccci_tier_status)(i + 1);
    assert_string_equal(ccci_tier_status_name(s), names[i]);
    assert_int_equal(ccci_tier_status_parse(names[i]), i + 1);
    assert_int_equal(ccci_tier_status_failed(s), failed[i]);
    assert_non_null(ccci_tier_status_doc(s));
  }
  assert_int_equal(ccci_tier_status_parse("running"), -1);
  assert_int_equal(ccci_tier_status_parse("PASS"), -1);
  assert_int_equal(ccci_tier_status_parse(NULL), -1);
}

/* Every level's name is its rung's tiers joined by " and ". */
static void test_level_names(void **state)
{
  int l, t;
  (void)state;
  assert_string_equal(ccci_level_name(0), "none");
  for (l = 1; l <= CCCI_LEVEL_MAX; l++) {
    char want[128] = "";
    for (t = 0; t < CCCI_TIER_COUNT; t++)
      if (ccci_tier_rung((enum ccci_tier)t) == l) {
        if (want[0] != '\0')
          strncat(want, " and ", sizeof(want) - strlen(want) - 1);
        strncat(want, ccci_tier_name((enum ccci_tier)t),
                sizeof(want) - strlen(want) - 1);
      }
    assert_string_equal(ccci_level_name(l), want);
  }
  assert_string_equal(ccci_level_name(3), "backup and restore");
  assert_null(ccci_level_name(-1));
  assert_null(ccci_level_name(CCCI_LEVEL_MAX + 1));
}

static void test_level_text(void **state)
{
  static const char *const bad[] = {"L5", "l1",  "L",   "L01", "1",
                                    "",   "L-1", "L1 ", " L1"};
  int l;
  size_t i;
  (void)state;
  for (l = 0; l <= CCCI_LEVEL_MAX; l++) {
    char want[4];
    snprintf(want, sizeof(want), "L%d", l);
    assert_string_equal(ccci_level_text(l), want);
    assert_int_equal(ccci_level_parse(want), l);
  }
  assert_null(ccci_level_text(-1));
  assert_null(ccci_level_text(5));
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(ccci_level_parse(bad[i]), -1);
  assert_int_equal(ccci_level_parse(NULL), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compute),    cmocka_unit_test(test_tiers),
      cmocka_unit_test(test_statuses),   cmocka_unit_test(test_level_names),
      cmocka_unit_test(test_level_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
