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

/* The explanation line: statuses as in rows[], the level given (the
 * harness's), one reason for the blocking tier and what the line says. */
struct why {
  const char *st;
  bool quick;
  int level;
  int tier; /* whose reason is @p reason (-1: none) */
  const char *reason;
  const char *line;
};

static const struct why whys[] = {
    {"PPPPPP", false, 4, -1, NULL, "L4: every tier passed"},
    {"PPPSSP", false, 2, T(BACKUP), "no backupbot label",
     "L2: backup skipped, no backupbot label"},
    {"PFPPPP", false, 1, T(UPGRADE), "marker gone after redeploy.",
     "L1: upgrade failed: marker gone after redeploy"},
    {"PFPPPP", false, 1, T(UPGRADE), "  first line\nsecond line",
     "L1: upgrade failed: first line"},
    {"PFPPPP", false, 1, T(UPGRADE), "tab\there\x7f", /* controls: spaces */
     "L1: upgrade failed: tab here"},
    {"PFPPPP", false, 1, -1, NULL, "L1: upgrade failed"},
    {"FSSSSS", false, 0, T(DEPLOY), "abra app deploy exited 1",
     "L0: deploy failed: abra app deploy exited 1"},
    {"ESSSSS", false, 0, T(DEPLOY), "abra: not found",
     "L0: deploy could not run: abra: not found"},
    {"PPPPPS", false, 3, T(CUSTOM), "no tests/test_*.py",
     "L3: custom skipped, no tests/test_*.py"},
    {"PPPPT-", false, 2, T(RESTORE), "600s", "L2: restore timed out: 600s"},
    {"PPPC--", false, 2, T(BACKUP), "SIGTERM", "L2: backup cancelled: SIGTERM"},
    {"PP-PPP", false, 0, -1, NULL, "L0: install did not run"},
    {"P-P---", true, 1, -1, NULL, "L1: quick run (install only)"},
    {"P-F---", true, 0, T(INSTALL), "502 from the gateway",
     "L0: install failed: 502 from the gateway"},
    /* The harness's level stands; the line says the tiers disagree. */
    {"PFPPPP", false, 3, T(UPGRADE), "x",
     "L3: the harness's level (the tiers give L1)"},
    {"PPPPPP", false, -1, -1, NULL, ""},
    {"PPPPPP", false, 5, -1, NULL, ""},
};

static void test_explain(void **state)
{
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(whys) / sizeof(whys[0]); i++) {
    enum ccci_tier_status st[CCCI_TIER_COUNT];
    const char *reasons[CCCI_TIER_COUNT] = {NULL};
    char out[CCCI_LEVEL_EXPLAIN_MAX];
    statuses(whys[i].st, st);
    if (whys[i].tier >= 0)
      reasons[whys[i].tier] = whys[i].reason;
    ccci_level_explain(whys[i].level, st, reasons, whys[i].quick, out);
    print_message("%s -> %s\n", whys[i].st, out);
    assert_string_equal(out, whys[i].line);
  }
}

/* A long reason is cut at a character boundary and marked; the whole line
 * stays within its buffer. */
static void test_explain_caps(void **state)
{
  enum ccci_tier_status st[CCCI_TIER_COUNT];
  const char *reasons[CCCI_TIER_COUNT] = {NULL};
  char long_reason[4 * CCCI_LEVEL_CLAUSE_MAX + 1], out[CCCI_LEVEL_EXPLAIN_MAX];
  char clause[CCCI_LEVEL_CLAUSE_MAX + 8];
  size_t i;
  (void)state;
  for (i = 0; i + 2 <= 4 * CCCI_LEVEL_CLAUSE_MAX; i += 2)
    memcpy(long_reason + i, "\xc3\xa9", 2); /* é, 2 bytes */
  long_reason[i] = '\0';
  statuses("PFPPPP", st);
  reasons[CCCI_TIER_UPGRADE] = long_reason;
  ccci_level_explain(1, st, reasons, false, out);
  assert_true(strncmp(out, "L1: upgrade failed: \xc3\xa9", 22) == 0);
  assert_true(strlen(out) < CCCI_LEVEL_EXPLAIN_MAX);
  ccci_level_clause(long_reason, clause);
  assert_int_equal(strlen(clause), CCCI_LEVEL_CLAUSE_MAX + strlen("…"));
  assert_string_equal(clause + CCCI_LEVEL_CLAUSE_MAX, "…");
  long_reason[101] = '\0'; /* 50 é, then the lead byte of the 51st */
  ccci_level_clause(long_reason, clause);
  assert_int_equal(strlen(clause), CCCI_LEVEL_CLAUSE_MAX + strlen("…"));
  ccci_level_clause(NULL, clause);
  assert_string_equal(clause, "");
  ccci_level_clause(" . ", clause);
  assert_string_equal(clause, "");
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
      cmocka_unit_test(test_compute),      cmocka_unit_test(test_tiers),
      cmocka_unit_test(test_statuses),     cmocka_unit_test(test_level_names),
      cmocka_unit_test(test_level_text),   cmocka_unit_test(test_explain),
      cmocka_unit_test(test_explain_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
