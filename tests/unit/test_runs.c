/* Unit tests of runs.c driven on a real loop and a temporary state dir: the
 * run-finished observers (called in the order they came, a removed one no
 * longer) and the stop that waits for the meta.json writes. Admission is
 * drained, so no harness ever starts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/config.h"
#include "ccci/runs/runs.h"
#include "tmpdir.h"

struct fixture {
  uv_loop_t loop;
  char *state, *recipe;
  struct ccci_config *cfg;
  struct ccci_runs *rs;
  char id[CCCI_RUN_ID_MAX + 1];
  bool submitted, stopped;
  char calls[128]; /* the observers' marks, in call order */
};

/* An observer that appends its mark (and the reason) to the fixture. */
struct mark {
  struct ccci_runs_finish_observer o;
  struct fixture *f;
  char name;
  bool leave;         /* unobserve from its own call */
  struct mark *evict; /* unobserve this one from its own call */
};

static struct ccci_config *config(void *arg)
{
  struct fixture *f = arg;
  return ccci_config_ref(f->cfg);
}

static void on_finished(void *arg, const struct ccci_run_meta *m,
                        const char *dir, const struct ccci_results *res)
{
  struct mark *k = arg;
  assert_null(res); /* these runs never start: nothing was read */
  size_t n = strlen(k->f->calls);
  assert_non_null(dir);
  assert_int_equal(m->state, CCCI_RUN_FINISHED);
  snprintf(k->f->calls + n, sizeof(k->f->calls) - n, "%c:%s ", k->name,
           ccci_run_reason_name(m->reason));
  if (k->leave)
    ccci_runs_finish_unobserve(k->f->rs, &k->o);
  if (k->evict != NULL)
    ccci_runs_finish_unobserve(k->f->rs, &k->evict->o);
}

static void mark_init(struct mark *k, struct fixture *f, char name)
{
  memset(k, 0, sizeof(*k));
  k->f = f;
  k->name = name;
  k->o.fn = on_finished;
  k->o.arg = k;
}

static void on_submitted(const char *id, const char *err, void *arg)
{
  struct fixture *f = arg;
  assert_null(err);
  snprintf(f->id, sizeof(f->id), "%s", id);
  f->submitted = true;
}

static void on_stopped(void *arg)
{
  struct fixture *f = arg;
  f->stopped = true;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  struct ccci_runs_env env;
  char *err = NULL, *file;
  FILE *fp;

  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->state = tmpdir_make("runs-state");
  f->recipe = tmpdir_make("runs-recipe");
  assert_non_null(f->state);
  assert_non_null(f->recipe);
  file = ccci_xasprintf("%s/compose.yml", f->recipe);
  fp = fopen(file, "w");
  assert_non_null(fp);
  fputs("services: {}\n", fp);
  fclose(fp);
  free(file);
  f->cfg = ccci_config_default();
  memset(&env, 0, sizeof(env));
  env.loop = &f->loop;
  env.state_dir = f->state;
  env.instance = "test-instance";
  env.self_exe = "/nonexistent/ccci";
  env.config = config;
  env.arg = f;
  assert_int_equal(ccci_runs_open(&env, &f->rs, &err), 0);
  assert_null(err);
  /* Nothing is admitted: a submitted run stays queued until cancelled. */
  ccci_runs_drain(f->rs);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  if (!f->stopped)
    ccci_runs_stop(f->rs, 0, on_stopped, f);
  while (!f->stopped)
    uv_run(&f->loop, UV_RUN_ONCE);
  ccci_runs_close(f->rs);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  ccci_config_unref(f->cfg);
  (void)tmpdir_remove(f->state);
  (void)tmpdir_remove(f->recipe);
  free(f->state);
  free(f->recipe);
  free(f);
  return 0;
}

/* Submit the recipe and wait for its id; the run is queued. */
static void submit(struct fixture *f)
{
  struct ccci_runs_submit req;
  char *err = NULL;
  memset(&req, 0, sizeof(req));
  req.dir = f->recipe;
  req.uid = 1000;
  f->submitted = false;
  assert_int_equal(ccci_runs_submit(f->rs, &req, on_submitted, f, &err), 0);
  while (!f->submitted)
    uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_observers_in_order_removed_not_called(void **state)
{
  struct fixture *f = *state;
  struct mark a, b, c;

  mark_init(&a, f, 'a');
  mark_init(&b, f, 'b');
  mark_init(&c, f, 'c');
  ccci_runs_finish_observe(f->rs, &a.o);
  ccci_runs_finish_observe(f->rs, &b.o);
  ccci_runs_finish_observe(f->rs, &c.o);
  ccci_runs_finish_unobserve(f->rs, &b.o);
  /* Unobserving one that is not observing is a no-op. */
  ccci_runs_finish_unobserve(f->rs, &b.o);
  submit(f);
  assert_string_equal(f->calls, "");
  assert_int_equal(ccci_runs_cancel(f->rs, f->id, 1000), 0);
  assert_string_equal(f->calls, "a:cancelled c:cancelled ");
  ccci_runs_finish_unobserve(f->rs, &a.o);
  ccci_runs_finish_unobserve(f->rs, &c.o);
}

static void test_observer_leaves_from_its_call(void **state)
{
  struct fixture *f = *state;
  struct mark a, b;

  mark_init(&a, f, 'a');
  mark_init(&b, f, 'b');
  a.leave = true;
  ccci_runs_finish_observe(f->rs, &a.o);
  ccci_runs_finish_observe(f->rs, &b.o);
  submit(f);
  assert_int_equal(ccci_runs_cancel(f->rs, f->id, 1000), 0);
  submit(f);
  assert_int_equal(ccci_runs_cancel(f->rs, f->id, 1000), 0);
  /* a saw the first run only; b, after a, saw both. */
  assert_string_equal(f->calls, "a:cancelled b:cancelled b:cancelled ");
  ccci_runs_finish_unobserve(f->rs, &b.o);
}

/* An observer that removes the next one from its call: that one is not
 * called, and the walk goes on to the one after it. */
static void test_observer_removes_the_next(void **state)
{
  struct fixture *f = *state;
  struct mark a, b, c;

  mark_init(&a, f, 'a');
  mark_init(&b, f, 'b');
  mark_init(&c, f, 'c');
  a.evict = &b;
  ccci_runs_finish_observe(f->rs, &a.o);
  ccci_runs_finish_observe(f->rs, &b.o);
  ccci_runs_finish_observe(f->rs, &c.o);
  submit(f);
  assert_int_equal(ccci_runs_cancel(f->rs, f->id, 1000), 0);
  assert_string_equal(f->calls, "a:cancelled c:cancelled ");
  ccci_runs_finish_unobserve(f->rs, &a.o);
  ccci_runs_finish_unobserve(f->rs, &c.o);
}

/* The daemon's stop is done only once every record is on disk: the
 * cancelled run's meta.json says so when the stop's callback comes. */
static void test_stop_waits_for_the_records(void **state)
{
  struct fixture *f = *state;
  struct ccci_run_meta m;
  char *path, *err = NULL;

  submit(f);
  assert_int_equal(ccci_runs_cancel(f->rs, f->id, 1000), 0);
  ccci_runs_stop(f->rs, 0, on_stopped, f);
  while (!f->stopped)
    uv_run(&f->loop, UV_RUN_ONCE);
  path = ccci_xasprintf("%s/runs/%s/meta.json", f->state, f->id);
  assert_int_equal(ccci_run_meta_read(path, &m, &err), 0);
  assert_int_equal(m.state, CCCI_RUN_FINISHED);
  assert_int_equal(m.reason, CCCI_REASON_CANCELLED);
  assert_int_equal(
      json_integer_value(json_object_get(m.trigger, "cancelled_by_uid")), 1000);
  ccci_run_meta_clear(&m);
  free(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_observers_in_order_removed_not_called, setup, teardown),
      cmocka_unit_test_setup_teardown(test_observer_removes_the_next, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_observer_leaves_from_its_call, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stop_waits_for_the_records, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
