/* Unit tests of util: capped buffers, files, directories, parsing, text. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "tmpdir.h"

/* ---- fixtures: one private temporary directory per test ---- */

static int setup_tmpdir(void **state)
{
  return tmpdir_setup(state, "util");
}

static void write_whole(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  assert_int_equal(close(fd), 0);
}

/* ---- allocation helpers ---- */

static void test_xstrdup_and_asprintf(void **state)
{
  char *s;
  (void)state;

  assert_null(ccci_xstrdup(NULL));
  s = ccci_xstrdup("abc");
  assert_string_equal(s, "abc");
  free(s);
  s = ccci_xstrndup("abcdef", 3);
  assert_string_equal(s, "abc");
  free(s);
  s = ccci_xasprintf("%s-%d-%zu", "x", -4, (size_t)17);
  assert_string_equal(s, "x--4-17");
  ccci_wipe_free_str(s);
  ccci_wipe_free_str(NULL);
  ccci_wipe_free(NULL, 10);
}

/* ---- capped buffers ---- */

static void test_buf_cap(void **state)
{
  struct ccci_buf b;
  (void)state;

  ccci_buf_init(&b, 8);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(ccci_buf_append(&b, "12345", 5), 0);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "12345");

  /* One byte too many: refused whole, nothing appended. */
  assert_int_equal(ccci_buf_append(&b, "6789", 4), -ENOBUFS);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "12345");

  /* Exactly up to the cap is fine. */
  assert_int_equal(ccci_buf_append(&b, "678", 3), 0);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.data, "12345678");
  assert_int_equal(ccci_buf_append(&b, "", 0), 0);
  assert_int_equal(ccci_buf_append(&b, "x", 1), -ENOBUFS);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.data, "12345678");

  /* A huge length cannot wrap the cap check around. */
  assert_int_equal(ccci_buf_append(&b, "x", SIZE_MAX), -ENOBUFS);
  assert_int_equal(b.len, 8);
  ccci_buf_close(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
}

static void test_buf_printf_cap(void **state)
{
  struct ccci_buf b;
  (void)state;

  ccci_buf_init(&b, 10);
  assert_int_equal(ccci_buf_printf(&b, "%d-%s", 42, "ab"), 0);
  assert_string_equal(b.data, "42-ab");
  assert_int_equal(ccci_buf_printf(&b, "%s", "abcdef"), -ENOBUFS);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "42-ab");
  assert_int_equal(ccci_buf_printf(&b, "%s", "cdefg"), 0);
  assert_string_equal(b.data, "42-abcdefg");
  ccci_buf_close(&b);
}

static void test_buf_grows(void **state)
{
  struct ccci_buf b;
  char want[1001];
  size_t i;
  (void)state;

  ccci_buf_init(&b, SIZE_MAX);
  for (i = 0; i < 1000; i++) {
    char c = (char)('a' + i % 26);
    want[i] = c;
    assert_int_equal(ccci_buf_append(&b, &c, 1), 0);
  }
  want[1000] = '\0';
  assert_int_equal(b.len, 1000);
  assert_true(b.cap > b.len);
  assert_string_equal(b.data, want);
  ccci_buf_close(&b);
}

static void test_buf_consume(void **state)
{
  struct ccci_buf b;
  (void)state;

  ccci_buf_init(&b, 64);
  ccci_buf_consume(&b, 3); /* on an empty buffer: nothing to drop */
  assert_int_equal(b.len, 0);
  assert_int_equal(ccci_buf_append(&b, "hello world", 11), 0);
  ccci_buf_consume(&b, 0);
  assert_string_equal(b.data, "hello world");
  ccci_buf_consume(&b, 6);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "world");
  /* The freed room is usable again under the same cap. */
  assert_int_equal(ccci_buf_append(&b, "!", 1), 0);
  assert_string_equal(b.data, "world!");
  ccci_buf_consume(&b, 100);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  ccci_buf_close(&b);
}

static void test_buf_detach(void **state)
{
  struct ccci_buf b;
  char *s;
  (void)state;

  ccci_buf_init(&b, 64);
  s = ccci_buf_detach(&b); /* never NULL, even when empty */
  assert_non_null(s);
  assert_string_equal(s, "");
  free(s);

  assert_int_equal(ccci_buf_append(&b, "abc", 3), 0);
  s = ccci_buf_detach(&b);
  assert_string_equal(s, "abc");
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  assert_int_equal(b.max, 64);
  /* The buffer starts over, independent of the detached text. */
  assert_int_equal(ccci_buf_append(&b, "xy", 2), 0);
  assert_string_equal(b.data, "xy");
  assert_string_equal(s, "abc");
  free(s);
  ccci_buf_close(&b);
}

/* ---- files ---- */

static void test_read_file(void **state)
{
  const char *dir = *state;
  char *path = ccci_xasprintf("%s/f.XXXXXX", dir);
  static const char content[] = "hello\0world\n";
  char *out = (char *)1;
  size_t len = 99;
  int fd;

  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, content, sizeof(content) - 1),
                   (ssize_t)(sizeof(content) - 1));
  assert_int_equal(close(fd), 0);

  assert_int_equal(ccci_read_file(path, 1024, &out, &len), 0);
  assert_int_equal(len, sizeof(content) - 1);
  assert_memory_equal(out, content, sizeof(content) - 1);
  assert_int_equal(out[len], '\0');
  free(out);

  /* A cap of exactly the size is enough; one byte less is -EFBIG. */
  assert_int_equal(ccci_read_file(path, sizeof(content) - 1, &out, &len), 0);
  assert_int_equal(len, sizeof(content) - 1);
  free(out);
  out = (char *)1;
  len = 99;
  assert_int_equal(ccci_read_file(path, sizeof(content) - 2, &out, &len),
                   -EFBIG);
  assert_null(out);
  assert_int_equal(len, 0);

  /* The length is optional. */
  assert_int_equal(ccci_read_file(path, 1024, &out, NULL), 0);
  assert_string_equal(out, "hello");
  free(out);
  free(path);
}

static void test_read_file_big_and_empty(void **state)
{
  const char *dir = *state;
  char *path = ccci_xasprintf("%s/big", dir);
  char *empty = ccci_xasprintf("%s/empty", dir);
  char *data = ccci_xmalloc(100000);
  char *out = NULL;
  size_t len = 0;

  /* Larger than one read chunk, to cross the chunk boundary. */
  memset(data, 'z', 100000);
  write_whole(path, data, 100000);
  assert_int_equal(ccci_read_file(path, 100000, &out, &len), 0);
  assert_int_equal(len, 100000);
  assert_memory_equal(out, data, 100000);
  free(out);
  assert_int_equal(ccci_read_file(path, 99999, &out, &len), -EFBIG);
  assert_null(out);

  write_whole(empty, "", 0);
  assert_int_equal(ccci_read_file(empty, 0, &out, &len), 0);
  assert_non_null(out);
  assert_int_equal(len, 0);
  assert_string_equal(out, "");
  free(out);

  free(data);
  free(empty);
  free(path);
}

static void test_read_file_missing(void **state)
{
  const char *dir = *state;
  char *path = ccci_xasprintf("%s/nope", dir);
  char *out = (char *)1;
  size_t len = 5;

  assert_int_equal(ccci_read_file(path, 10, &out, &len), -ENOENT);
  assert_null(out);
  assert_int_equal(len, 0);
  assert_int_equal(ccci_read_file(dir, 10, &out, &len), -EISDIR);
  assert_null(out);
  free(path);
}

static void test_write_file_atomic(void **state)
{
  const char *dir = *state;
  char *path = ccci_xasprintf("%s/state.json", dir);
  char *out = NULL;
  size_t len = 0;
  struct stat st;
  mode_t old = umask(022);

  assert_int_equal(ccci_write_file_atomic(path, "first", 5, 0640), 0);
  assert_int_equal(ccci_read_file(path, 100, &out, &len), 0);
  assert_int_equal(len, 5);
  assert_string_equal(out, "first");
  free(out);
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0640);
  /* Only the file itself: no temporary file is left behind. */
  assert_int_equal(tmpdir_count(dir), 1);

  /* Replacing: the new content whole, shorter than the old. */
  assert_int_equal(ccci_write_file_atomic(path, "2nd", 3, 0600), 0);
  assert_int_equal(ccci_read_file(path, 100, &out, &len), 0);
  assert_int_equal(len, 3);
  assert_string_equal(out, "2nd");
  free(out);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(tmpdir_count(dir), 1);

  /* Empty content is a valid file. */
  assert_int_equal(ccci_write_file_atomic(path, "", 0, 0600), 0);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_int_equal(tmpdir_count(dir), 1);

  umask(old);
  free(path);
}

static void test_write_file_atomic_fails(void **state)
{
  const char *dir = *state;
  char *path = ccci_xasprintf("%s/missing/f", dir);
  char *sub = ccci_xasprintf("%s/adir", dir);

  assert_int_equal(ccci_write_file_atomic(path, "x", 1, 0600), -ENOENT);
  assert_int_equal(tmpdir_count(dir), 0);

  /* Renaming over a directory fails; the temporary file is removed. */
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(ccci_write_file_atomic(sub, "x", 1, 0600), -EISDIR);
  assert_int_equal(tmpdir_count(dir), 1);
  assert_int_equal(tmpdir_count(sub), 0);
  free(sub);
  free(path);
}

static void test_mkdir_p(void **state)
{
  const char *dir = *state;
  char *deep = ccci_xasprintf("%s/a/b/c", dir);
  char *slash = ccci_xasprintf("%s/a/d/", dir);
  char *mid = ccci_xasprintf("%s/a/b", dir);
  struct stat st;
  mode_t old = umask(022);

  assert_int_equal(ccci_mkdir_p(deep, 0750), 0);
  assert_int_equal(stat(deep, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0750);
  assert_int_equal(stat(mid, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0750);

  /* Again: everything exists, which is success. */
  assert_int_equal(ccci_mkdir_p(deep, 0750), 0);
  assert_int_equal(ccci_mkdir_p(dir, 0750), 0);

  /* A trailing slash names the same directory. */
  assert_int_equal(ccci_mkdir_p(slash, 0700), 0);
  assert_int_equal(stat(slash, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0700);

  umask(old);
  free(mid);
  free(slash);
  free(deep);
}

static void test_mkdir_p_on_file(void **state)
{
  const char *dir = *state;
  char *file = ccci_xasprintf("%s/plain", dir);
  char *under = ccci_xasprintf("%s/plain/sub/dir", dir);
  struct stat st;

  write_whole(file, "x", 1);
  /* The last component exists but is not a directory. */
  assert_int_equal(ccci_mkdir_p(file, 0700), -ENOTDIR);
  /* A component on the way is a file. */
  assert_int_equal(ccci_mkdir_p(under, 0700), -ENOTDIR);
  assert_int_equal(stat(file, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  free(under);
  free(file);
}

static void test_dirname(void **state)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"a/b/c", "a/b"}, {"/a/b", "/a"}, {"/a", "/"},  {"/", "/"},
      {"a", "."},       {"", "."},      {"a/b", "a"},
  };
  size_t i;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(cases); i++) {
    char *d = ccci_dirname(cases[i].in);
    assert_string_equal(d, cases[i].out);
    free(d);
  }
}

static void test_path_join(void **state)
{
  char *p;
  (void)state;

  p = ccci_path_join("/base", "rel/x");
  assert_string_equal(p, "/base/rel/x");
  free(p);
  p = ccci_path_join("/base", "/abs/x");
  assert_string_equal(p, "/abs/x");
  free(p);
  p = ccci_path_join(NULL, "rel");
  assert_string_equal(p, "rel");
  free(p);
  p = ccci_path_join("", "rel");
  assert_string_equal(p, "rel");
  free(p);
  p = ccci_path_join("base", "rel");
  assert_string_equal(p, "base/rel");
  free(p);
}

/* ---- clocks ---- */

static void test_rfc3339(void **state)
{
  char out[32];
  (void)state;

  ccci_rfc3339(0, out);
  assert_string_equal(out, "1970-01-01T00:00:00Z");
  ccci_rfc3339(1000000000, out);
  assert_string_equal(out, "2001-09-09T01:46:40Z");
  ccci_rfc3339(1795000000, out);
  assert_string_equal(out, "2026-11-18T11:06:40Z");
}

static void test_now_ms_monotonic(void **state)
{
  uint64_t a, b;
  struct timespec ts = {0, 20 * 1000 * 1000};
  (void)state;

  a = ccci_now_ms();
  assert_int_equal(nanosleep(&ts, NULL), 0);
  b = ccci_now_ms();
  assert_true(b >= a + 19);
  assert_true(b < a + 10000);
}

/* ---- text ---- */

static void test_parse_u64(void **state)
{
  uint64_t v = 7;
  (void)state;

  assert_int_equal(ccci_parse_u64("0", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(ccci_parse_u64("12345", &v), 0);
  assert_int_equal(v, 12345);
  assert_int_equal(ccci_parse_u64("007", &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(ccci_parse_u64("18446744073709551615", &v), 0);
  assert_true(v == UINT64_MAX);

  v = 7;
  assert_int_equal(ccci_parse_u64("18446744073709551616", &v), -ERANGE);
  assert_int_equal(ccci_parse_u64("99999999999999999999", &v), -ERANGE);
  assert_int_equal(ccci_parse_u64("", &v), -EINVAL);
  assert_int_equal(ccci_parse_u64(NULL, &v), -EINVAL);
  assert_int_equal(ccci_parse_u64("12a", &v), -EINVAL);
  assert_int_equal(ccci_parse_u64("-1", &v), -EINVAL);
  assert_int_equal(ccci_parse_u64("+1", &v), -EINVAL);
  assert_int_equal(ccci_parse_u64(" 1", &v), -EINVAL);
  assert_int_equal(ccci_parse_u64("1 ", &v), -EINVAL);
  assert_int_equal(ccci_parse_u64("0x10", &v), -EINVAL);
  /* A failed parse leaves the output alone. */
  assert_int_equal(v, 7);
}

static void test_edit_distance(void **state)
{
  (void)state;

  assert_int_equal(ccci_edit_distance("kitten", "sitting"), 3);
  assert_int_equal(ccci_edit_distance("sitting", "kitten"), 3);
  assert_int_equal(ccci_edit_distance("ab", "ba"), 1);
  assert_int_equal(ccci_edit_distance("dedline", "deadline"), 1);
  assert_int_equal(ccci_edit_distance("pol_interval", "poll_interval"), 1);
  assert_int_equal(ccci_edit_distance("", "abc"), 3);
  assert_int_equal(ccci_edit_distance("abc", ""), 3);
  assert_int_equal(ccci_edit_distance("", ""), 0);
  assert_int_equal(ccci_edit_distance("same", "same"), 0);
  /* Optimal string alignment, not full Damerau: no edit of a transposed
   * pair, so "ca" -> "abc" is 3 (it would be 2 with unrestricted DL). */
  assert_int_equal(ccci_edit_distance("ca", "abc"), 3);
}

static void test_edit_distance_long(void **state)
{
  char a[301], b[301];
  size_t d;
  (void)state;

  /* Up to 256 bytes the distance is exact. */
  memset(a, 'a', 256);
  a[256] = '\0';
  memset(b, 'a', 256);
  b[256] = '\0';
  b[0] = 'b';
  assert_int_equal(ccci_edit_distance(a, b), 1);

  /* Longer strings are not aligned (that would cost la * lb); the answer
   * is still a bound: never below the true distance (1), never above the
   * longer length. */
  memset(a, 'a', 300);
  a[300] = '\0';
  memset(b, 'a', 300);
  b[300] = '\0';
  b[0] = 'b';
  d = ccci_edit_distance(a, b);
  assert_in_range(d, 1, 300);
  b[10] = '\0';
  d = ccci_edit_distance(a, b);
  assert_in_range(d, 290, 300);
}

static void test_set_cloexec(void **state)
{
  int p[2];
  (void)state;

  assert_int_equal(pipe(p), 0);
  assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
  assert_int_equal(ccci_set_cloexec(p[0]), 0);
  assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  assert_int_equal(close(p[0]), 0);
  assert_int_equal(close(p[1]), 0);
  assert_int_equal(ccci_set_cloexec(p[0]), -EBADF);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_xstrdup_and_asprintf),
      cmocka_unit_test(test_buf_cap),
      cmocka_unit_test(test_buf_printf_cap),
      cmocka_unit_test(test_buf_grows),
      cmocka_unit_test(test_buf_consume),
      cmocka_unit_test(test_buf_detach),
      cmocka_unit_test_setup_teardown(test_read_file, setup_tmpdir,
                                      tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_read_file_big_and_empty,
                                      setup_tmpdir, tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_read_file_missing, setup_tmpdir,
                                      tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_write_file_atomic, setup_tmpdir,
                                      tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_write_file_atomic_fails,
                                      setup_tmpdir, tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_mkdir_p, setup_tmpdir,
                                      tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_mkdir_p_on_file, setup_tmpdir,
                                      tmpdir_teardown),
      cmocka_unit_test(test_dirname),
      cmocka_unit_test(test_path_join),
      cmocka_unit_test(test_rfc3339),
      cmocka_unit_test(test_now_ms_monotonic),
      cmocka_unit_test(test_parse_u64),
      cmocka_unit_test(test_edit_distance),
      cmocka_unit_test(test_edit_distance_long),
      cmocka_unit_test(test_set_cloexec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
