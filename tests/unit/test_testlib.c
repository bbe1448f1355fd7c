/* Unit tests of testlib: the embedded ccci_testlib module is the file in
 * python/, byte for byte, and is written into a run as it should be. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/harness/testlib.h"
#include "tmpdir.h"

static int setup_tmpdir(void **state)
{
  return tmpdir_setup(state, "testlib");
}

/* The source file as it is now (CCCI_TESTLIB_PY, set by the build). */
static char *read_source(size_t *len)
{
  char *text = NULL;
  assert_int_equal(ccci_read_file(CCCI_TESTLIB_PY, 1024 * 1024, &text, len), 0);
  return text;
}

static void test_source_is_the_file(void **state)
{
  size_t len;
  char *text = read_source(&len);
  const char *src = ccci_testlib_source();
  (void)state;
  assert_true(len > 1000);
  assert_int_equal(strlen(src), len);
  assert_memory_equal(src, text, len);
  /* It is the module, not some other file. */
  assert_non_null(strstr(src, "def abra_run("));
  assert_non_null(strstr(src, "def wait_http("));
  free(text);
}

static void test_write_creates_dirs(void **state)
{
  const char *dir = *state;
  char *lib = ccci_path_join(dir, "snapshot/lib"), *why = NULL;
  char *path = ccci_path_join(lib, "ccci_testlib.py"), *text = NULL, *src;
  size_t len, srclen;
  struct stat st;
  mode_t old = umask(077);

  assert_int_equal(ccci_testlib_write(lib, &why), 0);
  umask(old);
  assert_null(why);
  assert_int_equal(ccci_read_file(path, 1024 * 1024, &text, &len), 0);
  src = read_source(&srclen);
  assert_int_equal(len, srclen);
  assert_memory_equal(text, src, len);
  /* Readable by all whatever the umask; no temp file left behind. */
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0644);
  assert_int_equal(tmpdir_count(lib), 1);
  free(text);

  /* Again over the old file: replaced, same text. */
  assert_int_equal(ccci_testlib_write(lib, &why), 0);
  assert_int_equal(ccci_read_file(path, 1024 * 1024, &text, &len), 0);
  assert_int_equal(len, srclen);
  free(text);
  free(src);
  free(path);
  free(lib);
}

static void test_write_fails_with_reason(void **state)
{
  const char *dir = *state;
  char *file = ccci_path_join(dir, "plain"), *why = NULL;
  char *under = ccci_path_join(file, "lib");
  int r;

  assert_int_equal(ccci_write_file_atomic(file, "x", 1, 0644), 0);
  r = ccci_testlib_write(under, &why);
  assert_int_equal(r, -ENOTDIR);
  assert_non_null(why);
  assert_non_null(strstr(why, under));
  assert_non_null(strstr(why, strerror(ENOTDIR)));
  free(why);
  why = NULL;

  /* A directory that cannot be written (unless we are root). */
  if (geteuid() != 0) {
    char *ro = ccci_path_join(dir, "ro");
    assert_int_equal(mkdir(ro, 0555), 0);
    r = ccci_testlib_write(ro, &why);
    assert_int_equal(r, -EACCES);
    assert_non_null(why);
    assert_non_null(strstr(why, "cannot write"));
    free(why);
    free(ro);
  }
  free(under);
  free(file);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_source_is_the_file),
      cmocka_unit_test_setup_teardown(test_write_creates_dirs, setup_tmpdir,
                                      tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_write_fails_with_reason,
                                      setup_tmpdir, tmpdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
