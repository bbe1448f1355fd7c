/* Unit tests of recipe.c: a recipe directory copied into a run dir (files
 * with their modes, subdirectories, links kept as links), meta.json
 * written, and a run dir that cannot be made removed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/runs/recipe.h"
#include "tmpdir.h"

struct fixture {
  char *tmp, *src, *dir;
};

static void put(const char *path, const char *text, mode_t mode)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  char *p;
  assert_non_null(f);
  f->tmp = tmpdir_make("recipe");
  assert_non_null(f->tmp);
  f->src = ccci_xasprintf("%s/src", f->tmp);
  f->dir = ccci_xasprintf("%s/run", f->tmp);
  assert_int_equal(mkdir(f->src, 0750), 0);
  assert_int_equal(mkdir(f->dir, 0750), 0);
  p = ccci_xasprintf("%s/compose.yml", f->src);
  put(p, "services: {}\n", 0640);
  free(p);
  p = ccci_xasprintf("%s/sub", f->src);
  assert_int_equal(mkdir(p, 0750), 0);
  free(p);
  p = ccci_xasprintf("%s/sub/hook.sh", f->src);
  put(p, "#!/bin/sh\n", 0750);
  free(p);
  p = ccci_xasprintf("%s/link", f->src);
  assert_int_equal(symlink("/etc/passwd", p), 0);
  free(p);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  (void)tmpdir_remove(f->tmp);
  free(f->tmp);
  free(f->src);
  free(f->dir);
  free(f);
  return 0;
}

static struct ccci_run_meta meta(void)
{
  struct ccci_run_meta m;
  memset(&m, 0, sizeof(m));
  snprintf(m.id, sizeof(m.id), "20261124-035748-123");
  m.number = 1;
  m.repo = "local/src";
  m.recipe = "src";
  m.state = CCCI_RUN_QUEUED;
  m.submitted_by_uid = 1000;
  m.exit_code = -1;
  m.attempt = 1;
  return m;
}

static void test_accept_copies_and_writes_meta(void **state)
{
  struct fixture *f = *state;
  struct ccci_run_meta m = meta(), back;
  struct stat st;
  char *p, *err = NULL, target[64];
  ssize_t n;

  assert_int_equal(ccci_recipe_accept(f->dir, f->src, &m, &err), 0);
  assert_null(err);
  p = ccci_xasprintf("%s/recipe/compose.yml", f->dir);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0640);
  free(p);
  p = ccci_xasprintf("%s/recipe/sub/hook.sh", f->dir);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0750);
  free(p);
  p = ccci_xasprintf("%s/recipe/link", f->dir);
  n = readlink(p, target, sizeof(target) - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, "/etc/passwd");
  free(p);
  p = ccci_xasprintf("%s/meta.json", f->dir);
  assert_int_equal(ccci_run_meta_read(p, &back, &err), 0);
  assert_string_equal(back.id, m.id);
  assert_string_equal(back.recipe, "src");
  ccci_run_meta_clear(&back);
  free(p);
}

static void test_accept_without_recipe(void **state)
{
  struct fixture *f = *state;
  struct ccci_run_meta m = meta();
  struct stat st;
  char *p, *err = NULL;

  assert_int_equal(ccci_recipe_accept(f->dir, NULL, &m, &err), 0);
  p = ccci_xasprintf("%s/recipe", f->dir);
  assert_int_equal(stat(p, &st), -1);
  free(p);
  p = ccci_xasprintf("%s/meta.json", f->dir);
  assert_int_equal(stat(p, &st), 0);
  free(p);
}

static void test_failed_accept_removes_the_run_dir(void **state)
{
  struct fixture *f = *state;
  struct ccci_run_meta m = meta();
  struct stat st;
  char *missing = ccci_xasprintf("%s/nope", f->tmp), *err = NULL, *want;

  assert_true(ccci_recipe_accept(f->dir, missing, &m, &err) < 0);
  want = ccci_xasprintf("cannot copy %s: No such file or directory", missing);
  assert_string_equal(err, want);
  assert_int_equal(stat(f->dir, &st), -1);
  free(want);
  free(err);
  free(missing);
}

/* A failure at the destination itself has no message of the copy's. */
static void test_existing_destination(void **state)
{
  struct fixture *f = *state;
  char *err = NULL;
  assert_int_equal(ccci_recipe_copy(f->src, f->dir, &err), -EEXIST);
  assert_null(err);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_accept_copies_and_writes_meta, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_accept_without_recipe, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_accept_removes_the_run_dir,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_existing_destination, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
