/* Unit tests of the reason table (run.h's CCCI_RUN_REASONS): the table
 * "Reasons, statuses, exit codes" of docs/harness-contract.md says what the
 * X-macro says, row for row, and the accessors agree with it. */
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
#include "ccci/runs/run.h"

#define SECTION "## Reasons, statuses, exit codes"
#define NCOLS 5

/* One row of the docs table, its cells trimmed (pointers into the text). */
struct row {
  char *cell[NCOLS];
};

static char *trim(char *s)
{
  char *e;
  while (*s == ' ')
    s++;
  e = s + strlen(s);
  while (e > s && e[-1] == ' ')
    *--e = '\0';
  return s;
}

/* `x` without the backticks; NULL when the cell is not quoted so. */
static char *unquote(char *s)
{
  size_t n = strlen(s);
  if (n < 2 || s[0] != '`' || s[n - 1] != '`')
    return NULL;
  s[n - 1] = '\0';
  return s + 1;
}

/* Split the table rows after SECTION (header and rule skipped) into
 * @p rows; returns how many, or -1 when a row has not NCOLS cells. */
static int read_table(char *text, struct row *rows, int max)
{
  char *p = strstr(text, SECTION), *line, *save = NULL;
  int n = 0, seen = 0;

  if (p == NULL)
    return -1;
  for (line = strtok_r(p, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    char *c, *cs = NULL;
    int k = 0;
    if (line[0] != '|') {
      if (seen > 0)
        break; /* the table ended */
      continue;
    }
    if (seen++ < 2)
      continue; /* the header and its rule */
    if (n == max)
      return -1;
    for (c = strtok_r(line + 1, "|", &cs); c != NULL;
         c = strtok_r(NULL, "|", &cs)) {
      if (k == NCOLS)
        return -1;
      rows[n].cell[k++] = trim(c);
    }
    if (k != NCOLS)
      return -1;
    n++;
  }
  return n;
}

static void test_docs_table_is_the_reason_table(void **state)
{
  struct row rows[CCCI_REASON_COUNT + 4];
  char *text = NULL;
  int n, i;

  (void)state;
  assert_int_equal(
      ccci_read_file(CCCI_DOCS "/harness-contract.md", 1 << 20, &text, NULL),
      0);
  n = read_table(text, rows, (int)CCCI_ARRAY_LEN(rows));
  /* Every reason but NONE has a row, in the enum's order. */
  assert_int_equal(n, CCCI_REASON_COUNT - 1);
  for (i = 0; i < n; i++) {
    enum ccci_run_reason r = (enum ccci_run_reason)(i + 1);
    char *name = unquote(rows[i].cell[0]);
    char *status = unquote(rows[i].cell[2]);
    char exit_code[8];

    assert_non_null(name);
    print_message("row %d: %s\n", i + 1, name);
    assert_string_equal(name, ccci_run_reason_name(r));
    assert_string_equal(rows[i].cell[1], ccci_run_reason_meaning(r));
    assert_non_null(status);
    assert_string_equal(status, ccci_run_reason_commit_status(r));
    snprintf(exit_code, sizeof(exit_code), "%d", ccci_run_reason_exit(r));
    assert_string_equal(rows[i].cell[3], exit_code);
    assert_string_equal(rows[i].cell[4], ccci_run_reason_level_doc(r));
    /* The level is kept exactly where the docs say where it comes from. */
    assert_int_equal(ccci_run_reason_keeps_level(r),
                     strcmp(rows[i].cell[4], "none") != 0);
  }
  free(text);
}

/* The facts other modules rely on (SPEC sections 4 and 10, the forge
 * reporter's statuses), named one by one. */
static void test_accessors(void **state)
{
  static const struct {
    enum ccci_run_reason r;
    const char *name;
    int exit_code;
    const char *status;
    bool keeps_level;
  } cases[] = {
      {CCCI_REASON_NONE, NULL, 2, "pending", false},
      {CCCI_REASON_SUCCESS, "success", 0, "success", true},
      {CCCI_REASON_FAILURE, "failure", 1, "failure", true},
      {CCCI_REASON_DEPLOY_BUDGET, "deploy-budget", 1, "failure", false},
      {CCCI_REASON_TIMEOUT, "timeout", 2, "error", false},
      {CCCI_REASON_CANCELLED, "cancelled", 2, "error", false},
      {CCCI_REASON_ORPHANED, "orphaned", 2, "error", false},
      {CCCI_REASON_SUPERSEDED, "superseded", 2, "error", false},
      {CCCI_REASON_ERROR, "error", 2, "error", false},
  };
  size_t i;

  (void)state;
  assert_int_equal(CCCI_ARRAY_LEN(cases), CCCI_REASON_COUNT);
  for (i = 0; i < CCCI_ARRAY_LEN(cases); i++) {
    enum ccci_run_reason parsed;
    if (cases[i].name == NULL) {
      assert_null(ccci_run_reason_name(cases[i].r));
      assert_null(ccci_run_reason_meaning(cases[i].r));
    } else {
      assert_string_equal(ccci_run_reason_name(cases[i].r), cases[i].name);
      assert_int_equal(ccci_run_reason_parse(cases[i].name, &parsed), 0);
      assert_int_equal(parsed, cases[i].r);
    }
    assert_int_equal(ccci_run_reason_exit(cases[i].r), cases[i].exit_code);
    assert_string_equal(ccci_run_reason_commit_status(cases[i].r),
                        cases[i].status);
    assert_int_equal(ccci_run_reason_keeps_level(cases[i].r),
                     cases[i].keeps_level);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_docs_table_is_the_reason_table),
      cmocka_unit_test(test_accessors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
