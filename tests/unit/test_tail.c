/* Unit tests of the tail engine (tail.c) with an in-memory sink over a real
 * log store in a temp dir: lines from the files then live ones with no gap
 * and no duplicate, a full sink served from the files once drained, a sink
 * gone mid-read, the end of the run, and the engine stopped. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/serve/tail.h"
#include "loopwait.h"
#include "tmpdir.h"

/* What the engine said, in order: the sink checks the stream's shape as it
 * comes and keeps the lines' text. */
struct test_sink {
  struct ccci_tail_sink sink;
  bool full;            /* report being past the high-water mark */
  bool gone;            /* told the engine it is gone: no call may follow */
  bool began;           /* begin came, first */
  int step;             /* the step announced last, or -1 */
  uint64_t skip;        /* lines the request skips in its first step */
  uint64_t next;        /* the position the next line of that step must have */
  uint64_t lines;       /* lines received */
  uint64_t batches;     /* calls of lines() */
  struct ccci_buf text; /* "<step>:<out>" of every line */
  bool ended;
  struct ccci_runs_view end;
  int error; /* 0, or what error() said */
};

static struct test_sink *of(struct ccci_tail_sink *s)
{
  return ccci_container_of(s, struct test_sink, sink);
}

static void last_call_ok(struct test_sink *t)
{
  assert_false(t->gone);
  assert_false(t->ended);
  assert_int_equal(t->error, 0);
}

static void s_begin(struct ccci_tail_sink *s, const char *id,
                    enum ccci_run_state state)
{
  struct test_sink *t = of(s);
  last_call_ok(t);
  assert_false(t->began);
  assert_string_equal(id, "r1");
  assert_int_equal(state, CCCI_RUN_RUNNING);
  t->began = true;
}

static void s_step(struct ccci_tail_sink *s, unsigned n, const char *name)
{
  struct test_sink *t = of(s);
  last_call_ok(t);
  assert_true(t->began);
  assert_true((int)n > t->step);
  assert_string_equal(name, n == 0 ? "init" : "build");
  t->next = t->step < 0 ? t->skip : 0;
  t->step = (int)n;
}

static void s_lines(struct ccci_tail_sink *s, unsigned n, uint64_t pos,
                    const char *p, size_t len)
{
  struct test_sink *t = of(s);
  const char *q = p, *end = p + len, *nl;

  last_call_ok(t);
  assert_int_equal(n, (unsigned)t->step);
  assert_true(len > 0 && p[len - 1] == '\n');
  /* No gap, no duplicate: each batch goes on where the last stopped. */
  assert_int_equal(pos, t->next);
  for (; q < end; q = nl + 1) {
    json_t *j;
    nl = memchr(q, '\n', (size_t)(end - q));
    j = json_loadb(q, (size_t)(nl - q), 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "pos")), t->next);
    assert_int_equal(
        ccci_buf_printf(&t->text, "%u:%s", n,
                        json_string_value(json_object_get(j, "out"))),
        0);
    json_decref(j);
    t->next++;
    t->lines++;
  }
  t->batches++;
}

static bool s_full(const struct ccci_tail_sink *s)
{
  const struct test_sink *t = ccci_container_of(s, struct test_sink, sink);
  assert_false(t->gone);
  return t->full;
}

static void s_end(struct ccci_tail_sink *s, const struct ccci_runs_view *v)
{
  struct test_sink *t = of(s);
  last_call_ok(t);
  t->ended = true;
  t->end = *v;
}

static void s_error(struct ccci_tail_sink *s, int err)
{
  struct test_sink *t = of(s);
  last_call_ok(t);
  assert_true(err < 0);
  t->error = err;
}

static const struct ccci_tail_sink_ops test_ops = {
    .begin = s_begin,
    .step = s_step,
    .lines = s_lines,
    .full = s_full,
    .end = s_end,
    .error = s_error,
};

static void sink_init(struct test_sink *t)
{
  memset(t, 0, sizeof(*t));
  t->sink.ops = &test_ops;
  t->step = -1;
  ccci_buf_init(&t->text, SIZE_MAX);
}

/* One run, r1, as the runs would show it. */
struct fixture {
  uv_loop_t loop;
  char *dir;
  struct ccci_logstore *ls;
  struct ccci_runs_view view;
  bool exists;
  struct ccci_tail *t;
  bool closed;
};

static int view(void *arg, const char *id, struct ccci_runs_view *out)
{
  struct fixture *f = arg;
  if (!f->exists || strcmp(id, "r1") != 0)
    return -ENOENT;
  *out = f->view;
  return 0;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  struct ccci_tail_env env;
  char *logs, *err = NULL;

  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->dir = tmpdir_make("tail");
  assert_non_null(f->dir);
  logs = ccci_xasprintf("%s/logs", f->dir);
  assert_int_equal(
      ccci_logstore_open(&f->loop, logs, "r1", UINT64_MAX, &f->ls, &err), 0);
  free(logs);
  f->exists = true;
  f->view.state = CCCI_RUN_RUNNING;
  f->view.reason = CCCI_REASON_NONE;
  f->view.exit_code = -1;
  f->view.dir = f->dir;
  f->view.logs = f->ls;
  env.loop = &f->loop;
  env.view = view;
  env.arg = f;
  f->t = ccci_tail_new(&env);
  *state = f;
  return 0;
}

static void on_closed(void *arg)
{
  struct fixture *f = arg;
  f->closed = true;
}

/* Run the loop until @p cond holds (30 s at most). */
#define RUN_UNTIL(f, cond)                                                     \
  do {                                                                         \
    LOOP_UNTIL(&(f)->loop, cond, 30);                                          \
    assert_true(cond);                                                         \
  } while (0)

static void close_store(struct fixture *f)
{
  if (f->ls == NULL)
    return;
  ccci_logstore_close(f->ls, on_closed, f);
  RUN_UNTIL(f, f->closed);
  f->ls = NULL;
  f->view.logs = NULL;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  close_store(f);
  if (f->t != NULL)
    ccci_tail_free(f->t);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(tmpdir_remove(f->dir), 0);
  free(f->dir);
  free(f);
  return 0;
}

/* Lines "<tag><i>" for i in [0, n), then the store told of the burst. */
static void add(struct fixture *f, const char *tag, unsigned n)
{
  unsigned i;
  for (i = 0; i < n; i++) {
    char line[64];
    int len = snprintf(line, sizeof(line), "%s%u some text to fill\n", tag, i);
    ccci_logstore_line(f->ls, line, (size_t)len, true);
  }
  ccci_logstore_flush(f->ls);
}

/* Wait until every line so far is on disk, out of memory. */
static void written(struct fixture *f)
{
  RUN_UNTIL(f, ccci_logstore_backlog(f->ls) == 0);
}

/* The sink must hold these lines of @p step: tags and counts, in order. */
static void assert_text(const struct test_sink *s, unsigned step,
                        const char *tags, const unsigned *counts)
{
  struct ccci_buf want;
  size_t k;
  unsigned i;

  ccci_buf_init(&want, SIZE_MAX);
  for (k = 0; tags[k] != '\0'; k++)
    for (i = 0; i < counts[k]; i++)
      assert_int_equal(ccci_buf_printf(&want, "%u:%c%u some text to fill\n",
                                       step, tags[k], i),
                       0);
  assert_non_null(s->text.data);
  assert_string_equal(s->text.data, want.data);
  ccci_buf_close(&want);
}

static struct ccci_tail_request all_steps(void)
{
  struct ccci_tail_request r = {"r1", true, -1, NULL, 0, 0, false};
  return r;
}

static void finish_run(struct fixture *f)
{
  close_store(f);
  f->view.state = CCCI_RUN_FINISHED;
  f->view.reason = CCCI_REASON_SUCCESS;
  f->view.exit_code = 0;
  ccci_tail_run_changed(f->t, "r1");
}

static void test_disk_then_live(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = all_steps();
  struct ccci_tail_counters c;
  struct test_sink s;
  static const unsigned counts[] = {2000, 50, 50};

  sink_init(&s);
  add(f, "a", 2000);
  written(f);
  ccci_tail_start(f->t, &r, &s.sink);
  assert_true(s.began);
  /* A file read is in flight: lines added now come from memory after it. */
  add(f, "b", 50);
  RUN_UNTIL(f, s.lines == 2050);
  add(f, "c", 50);
  assert_int_equal(s.lines, 2100); /* from memory, at the flush */
  assert_text(&s, 0, "abc", counts);
  ccci_tail_counters(f->t, &c);
  assert_true(c.from_disk > 64 * 1024); /* "a" came from the file */
  assert_int_equal(c.lines, 2100);
  assert_int_equal(c.clients, 1);

  finish_run(f);
  RUN_UNTIL(f, s.ended);
  assert_int_equal(s.end.state, CCCI_RUN_FINISHED);
  assert_int_equal(s.end.reason, CCCI_REASON_SUCCESS);
  assert_int_equal(s.end.exit_code, 0);
  assert_int_equal(s.lines, 2100);
  ccci_tail_counters(f->t, &c);
  assert_int_equal(c.clients, 0);
  ccci_buf_close(&s.text);
}

static void test_full_then_drained(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = all_steps();
  struct ccci_tail_counters before, after;
  struct test_sink s;
  static const unsigned counts[] = {100, 300, 20};
  uint64_t batches;

  sink_init(&s);
  add(f, "a", 100);
  ccci_tail_start(f->t, &r, &s.sink);
  RUN_UNTIL(f, s.lines == 100);
  /* Full: nothing is sent; what is written meanwhile leaves memory. */
  s.full = true;
  batches = s.batches;
  add(f, "b", 300);
  written(f);
  add(f, "c", 20);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(s.batches, batches);
  assert_int_equal(s.lines, 100);
  ccci_tail_counters(f->t, &before);

  s.full = false;
  ccci_tail_sink_drained(&s.sink);
  RUN_UNTIL(f, s.lines == 420);
  assert_text(&s, 0, "abc", counts);
  ccci_tail_counters(f->t, &after);
  assert_true(after.from_disk > before.from_disk); /* "b" from the file */

  /* Full again at the end: the end waits for the drain too. */
  s.full = true;
  finish_run(f);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_false(s.ended);
  s.full = false;
  ccci_tail_sink_drained(&s.sink);
  assert_true(s.ended);
  assert_int_equal(s.lines, 420);
  ccci_buf_close(&s.text);
}

static void test_gone_mid_read(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = all_steps();
  struct ccci_tail_counters c;
  struct test_sink s;

  sink_init(&s);
  add(f, "a", 3000);
  written(f);
  ccci_tail_start(f->t, &r, &s.sink);
  /* The first read is in flight; the sink goes (its memory is reused). */
  ccci_tail_sink_gone(&s.sink);
  s.gone = true;
  ccci_tail_counters(f->t, &c);
  assert_int_equal(c.clients, 1); /* until the read is back */
  add(f, "b", 10);
  RUN_UNTIL(f, (ccci_tail_counters(f->t, &c), c.clients == 0));
  assert_int_equal(s.lines, 0);
  ccci_tail_sink_gone(&s.sink); /* twice is harmless */
  ccci_buf_close(&s.text);
}

static void test_one_step_by_name_and_snapshot(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = {"r1", false, -1, "build", 2, 0, false};
  struct test_sink s;
  struct ccci_buf b;

  sink_init(&s);
  s.skip = 2;
  add(f, "x", 3);
  ccci_logstore_line(f->ls, "~~~ step build\n", 15, true);
  add(f, "a", 5);
  ccci_tail_start(f->t, &r, &s.sink);
  /* Without follow: what is there now, from line 2 of "build", then end. */
  RUN_UNTIL(f, s.ended);
  assert_int_equal(s.step, 1);
  assert_int_equal(s.end.state, CCCI_RUN_RUNNING);
  ccci_buf_init(&b, SIZE_MAX);
  assert_int_equal(ccci_buf_printf(&b, "1:a2 some text to fill\n"
                                       "1:a3 some text to fill\n"
                                       "1:a4 some text to fill\n"),
                   0);
  assert_string_equal(s.text.data, b.data);
  ccci_buf_close(&b);
  ccci_buf_close(&s.text);
}

/* A reader resuming after line 1 of step 1: every step from step 1, its
 * first two lines skipped, then the live ones, with nothing of step 0. */
static void test_from_step(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = {"r1", true, -1, NULL, 2, 1, false};
  struct test_sink s, s2;
  struct ccci_buf b;
  unsigned i;

  sink_init(&s);
  s.skip = 2;
  add(f, "x", 3000);
  ccci_logstore_line(f->ls, "~~~ step build\n", 15, true);
  add(f, "a", 3000);
  written(f);
  ccci_tail_start(f->t, &r, &s.sink);
  RUN_UNTIL(f, s.lines == 2998);
  assert_int_equal(s.step, 1);
  add(f, "b", 2);
  assert_int_equal(s.lines, 3000);
  finish_run(f);
  RUN_UNTIL(f, s.ended);
  assert_int_equal(s.end.state, CCCI_RUN_FINISHED);
  ccci_buf_init(&b, SIZE_MAX);
  for (i = 2; i < 3000; i++)
    assert_int_equal(ccci_buf_printf(&b, "1:a%u some text to fill\n", i), 0);
  assert_int_equal(ccci_buf_printf(&b, "1:b0 some text to fill\n"
                                       "1:b1 some text to fill\n"),
                   0);
  assert_string_equal(s.text.data, b.data);
  ccci_buf_close(&b);

  /* A step past the last of a finished run: the end, and no line. */
  sink_init(&s2);
  r.from_step = 5;
  r.from = 0;
  f->view.state = CCCI_RUN_RUNNING; /* begin checks it */
  ccci_tail_start(f->t, &r, &s2.sink);
  f->view.state = CCCI_RUN_FINISHED;
  ccci_tail_run_changed(f->t, "r1");
  RUN_UNTIL(f, s2.ended);
  assert_int_equal(s2.lines, 0);
  assert_int_equal(s2.step, -1);
  ccci_buf_close(&s.text);
  ccci_buf_close(&s2.text);
}

/* Drone's step stream: one step, followed, ended once a later step starts
 * while the run goes on. */
static void test_end_with_step(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = {"r1", true, 0, NULL, 0, 0, true};
  struct test_sink s;
  static const unsigned counts[] = {3000, 5};

  sink_init(&s);
  add(f, "a", 3000);
  written(f);
  ccci_tail_start(f->t, &r, &s.sink);
  RUN_UNTIL(f, s.lines == 3000);
  add(f, "b", 5);
  assert_int_equal(s.lines, 3005);
  assert_false(s.ended);
  ccci_logstore_line(f->ls, "~~~ step build\n", 15, true);
  add(f, "c", 5);
  RUN_UNTIL(f, s.ended);
  assert_int_equal(s.end.state, CCCI_RUN_RUNNING);
  assert_int_equal(s.lines, 3005);
  assert_text(&s, 0, "ab", counts);
  ccci_buf_close(&s.text);
}

static void test_no_run_and_gone_run(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = all_steps();
  struct test_sink s, s2;

  sink_init(&s);
  f->exists = false;
  ccci_tail_start(f->t, &r, &s.sink);
  assert_false(s.began);
  assert_int_equal(s.error, -ENOENT);

  /* Retention removes the run while it streams. */
  sink_init(&s2);
  f->exists = true;
  ccci_tail_start(f->t, &r, &s2.sink);
  assert_true(s2.began);
  f->exists = false;
  ccci_tail_run_changed(f->t, "r1");
  assert_int_equal(s2.error, -ENOENT);
  ccci_buf_close(&s.text);
  ccci_buf_close(&s2.text);
}

static void test_engine_stops(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = all_steps();
  struct test_sink s, s2;

  sink_init(&s);
  sink_init(&s2);
  add(f, "a", 3000);
  written(f);
  ccci_tail_start(f->t, &r, &s.sink); /* reading its file */
  add(f, "b", 1);
  ccci_tail_start(f->t, &r, &s2.sink);
  ccci_tail_free(f->t);
  f->t = NULL;
  assert_int_equal(s.error, -ECANCELED);
  assert_int_equal(s2.error, -ECANCELED);
  ccci_buf_close(&s.text);
  ccci_buf_close(&s2.text);
}

/* Every stream idle when the engine stops: the last one's going frees the
 * engine exactly once. */
static void test_engine_stops_idle(void **state)
{
  struct fixture *f = *state;
  struct ccci_tail_request r = all_steps();
  struct test_sink s;

  sink_init(&s);
  add(f, "a", 10);
  ccci_tail_start(f->t, &r, &s.sink);
  assert_int_equal(s.lines, 10); /* from memory: nothing in flight */
  ccci_tail_free(f->t);
  f->t = NULL;
  assert_int_equal(s.error, -ECANCELED);
  ccci_buf_close(&s.text);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_disk_then_live, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_then_drained, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gone_mid_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_step_by_name_and_snapshot, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_from_step, setup, teardown),
      cmocka_unit_test_setup_teardown(test_end_with_step, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_run_and_gone_run, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_engine_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_engine_stops_idle, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
