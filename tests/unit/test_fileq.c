/* Unit tests of fileq.c on a real loop and a real directory: order,
 * the latest text winning over a waiting one, unlink, mkdir, errors, and
 * every done called once, in order. */
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

#include "ccci/core/fileq.h"
#include "ccci/core/util.h"
#include "tmpdir.h"

struct fx {
  char *dir;
  uv_loop_t loop;
  struct ccci_fileq q;
  char log[256]; /* "<tag>=<rc> " per done, in call order */
};

static int setup(void **state)
{
  struct fx *f = ccci_xcalloc(1, sizeof(*f));
  f->dir = tmpdir_make("fileq");
  assert_non_null(f->dir);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  ccci_fileq_init(&f->q, &f->loop);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  assert_false(ccci_fileq_busy(&f->q));
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(tmpdir_remove(f->dir), 0);
  free(f->dir);
  free(f);
  return 0;
}

struct tag {
  struct fx *f;
  const char *name;
};

static void note(void *arg, int rc)
{
  struct tag *t = arg;
  size_t n = strlen(t->f->log);
  snprintf(t->f->log + n, sizeof(t->f->log) - n, "%s=%d ", t->name, rc);
}

static char *at(struct fx *f, const char *rel)
{
  return ccci_xasprintf("%s/%s", f->dir, rel);
}

static void put(struct fx *f, const char *rel, const char *text, unsigned flags,
                struct tag *t)
{
  ccci_fileq_put(&f->q, at(f, rel), text ? ccci_xstrdup(text) : NULL,
                 text ? strlen(text) : 0, flags, note, t);
}

static void expect_file(struct fx *f, const char *rel, const char *want)
{
  char *p = at(f, rel), *text = NULL;
  size_t len = 0;
  int r = ccci_read_file(p, 1 << 10, &text, &len);
  free(p);
  if (want == NULL) {
    assert_int_equal(r, -ENOENT);
    return;
  }
  assert_int_equal(r, 0);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(text, want, len);
  free(text);
}

static void test_latest_wins_over_the_waiting_write(void **state)
{
  struct fx *f = *state;
  struct tag a = {f, "a"}, b = {f, "b"}, c = {f, "c"};
  struct stat sb;
  char *p;

  put(f, "meta.json", "one", 0, &a); /* in flight at once */
  assert_true(ccci_fileq_busy(&f->q));
  put(f, "meta.json", "two", 0, &b);   /* waits */
  put(f, "meta.json", "three", 0, &c); /* replaces "two" */
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  expect_file(f, "meta.json", "three");
  assert_string_equal(f->log, "a=0 b=0 c=0 ");
  assert_int_equal(f->q.done, 2); /* "two" was never written */
  p = at(f, "meta.json");
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0640);
  free(p);
}

static void test_order_across_paths_and_unlink(void **state)
{
  struct fx *f = *state;
  struct tag a = {f, "a"}, b = {f, "b"}, c = {f, "c"}, d = {f, "d"};

  put(f, "x", "x1", 0, &a);
  put(f, "y", "y1", 0, &b);
  put(f, "x", NULL, 0, &c); /* not the last waiting for x: its own job */
  put(f, "y", NULL, 0, &d); /* unlink after write */
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  expect_file(f, "x", NULL);
  expect_file(f, "y", NULL);
  assert_string_equal(f->log, "a=0 b=0 c=0 d=0 ");
  assert_int_equal(f->q.done, 4);

  f->log[0] = '\0';
  put(f, "z", NULL, 0, &a); /* a missing file is no error */
  put(f, "y", "y2", 0, &b);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  expect_file(f, "y", "y2");
  assert_string_equal(f->log, "a=0 b=0 ");
}

static void test_mkdir_and_errors(void **state)
{
  struct fx *f = *state;
  struct tag a = {f, "a"}, b = {f, "b"}, c = {f, "c"};
  char rc[32];

  put(f, "deep/er/file", "d", 0, &a); /* no directory, no flag */
  put(f, "deep/er/file", "d", CCCI_FILEQ_MKDIR, &b);
  put(f, "deep/er/file/below", "e", CCCI_FILEQ_MKDIR, &c);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  expect_file(f, "deep/er/file", "d");
  snprintf(rc, sizeof(rc), "a=%d b=0 c=%d ", -ENOENT, -ENOTDIR);
  assert_string_equal(f->log, rc);
}

/* A done may queue the next write: it goes after what is already queued. */
struct chain {
  struct fx *f;
  int left;
};

static void again(void *arg, int rc)
{
  struct chain *ch = arg;
  char text[16];
  assert_int_equal(rc, 0);
  if (ch->left-- == 0)
    return;
  snprintf(text, sizeof(text), "n%d", ch->left);
  ccci_fileq_put(&ch->f->q, at(ch->f, "chain"), ccci_xstrdup(text),
                 strlen(text), 0, again, ch);
}

static void test_done_may_queue_more(void **state)
{
  struct fx *f = *state;
  struct chain ch = {f, 5};

  ccci_fileq_put(&f->q, at(f, "chain"), ccci_xstrdup("start"), 5, 0, again,
                 &ch);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(ch.left, -1);
  expect_file(f, "chain", "n0");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_latest_wins_over_the_waiting_write,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_across_paths_and_unlink, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_mkdir_and_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_done_may_queue_more, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
