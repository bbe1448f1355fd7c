/* Unit tests of probe.c on a real loop: exit status and output, the output
 * cap, the timeout that kills the probe's whole group, a kill on request,
 * `ccci` as the daemon's binary, a command that cannot start; every test
 * ends with the loop closed cleanly. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/runs/probe.h"

struct seen {
  bool done;
  struct ccci_probe_result res;
  char out[CCCI_PROBE_OUT_MAX + 1];
};

static void on_done(const struct ccci_probe_result *res, void *arg)
{
  struct seen *s = arg;
  assert_false(s->done);
  s->done = true;
  s->res = *res;
  memcpy(s->out, res->out, res->len);
  s->out[res->len] = '\0';
  s->res.out = s->out;
}

static char *const env[] = {"PATH=/usr/bin:/bin", NULL};

/* Run @p argv as a probe with @p timeout_ms; the loop runs to its end. */
static void run(struct seen *s, char *const *argv, uint64_t timeout_ms,
                bool kill_it)
{
  uv_loop_t loop;
  struct ccci_probe_spec sp;
  struct ccci_probe *p = NULL;
  char *err = NULL;

  memset(s, 0, sizeof(*s));
  memset(&sp, 0, sizeof(sp));
  assert_int_equal(uv_loop_init(&loop), 0);
  sp.self_exe = "/bin/echo";
  sp.argv = argv;
  sp.env = env;
  sp.timeout_ms = timeout_ms;
  assert_int_equal(ccci_probe_start(&loop, &sp, on_done, s, &p, &err), 0);
  assert_null(err);
  if (kill_it)
    ccci_probe_kill(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(s->done);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_exit_and_output(void **state)
{
  char *const ok[] = {"/bin/sh", "-c", "echo active; echo err >&2", NULL};
  char *const bad[] = {"/bin/sh", "-c", "echo 'unreachable' >&2; exit 1", NULL};
  struct seen s;
  (void)state;

  run(&s, ok, 10000, false);
  assert_int_equal(s.res.exit_status, 0);
  assert_int_equal(s.res.term_signal, 0);
  assert_false(s.res.timed_out);
  assert_false(s.res.truncated);
  assert_string_equal(s.out, "active\nerr\n");
  run(&s, bad, 0, false);
  assert_int_equal(s.res.exit_status, 1);
  assert_string_equal(s.out, "unreachable\n");
}

static void test_output_cap(void **state)
{
  char *const big[] = {"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x",
                       NULL};
  struct seen s;
  (void)state;

  run(&s, big, 10000, false);
  assert_int_equal(s.res.exit_status, 0);
  assert_true(s.res.truncated);
  assert_int_equal(s.res.len, CCCI_PROBE_OUT_MAX);
  assert_int_equal(strspn(s.out, "x"), CCCI_PROBE_OUT_MAX);
}

/* The timeout kills the group: the child that would keep the pipe open
 * goes too, long before its sleep ends. */
static void test_timeout_kills_the_group(void **state)
{
  char *const slow[] = {"/bin/sh", "-c", "sleep 30 & echo started; wait", NULL};
  struct seen s;
  uint64_t t0 = uv_hrtime();
  (void)state;

  run(&s, slow, 200, false);
  assert_true(s.res.timed_out);
  assert_int_equal(s.res.term_signal, SIGKILL);
  assert_int_equal(s.res.exit_status, -1);
  assert_string_equal(s.out, "started\n");
  assert_true((uv_hrtime() - t0) / 1000000u < 5000);
}

static void test_kill(void **state)
{
  char *const slow[] = {"/bin/sh", "-c", "sleep 30", NULL};
  struct seen s;
  (void)state;

  run(&s, slow, 0, true);
  assert_false(s.res.timed_out);
  assert_int_equal(s.res.term_signal, SIGKILL);
}

/* A first word `ccci` runs the daemon's own binary (here /bin/echo). */
static void test_self(void **state)
{
  char *const self[] = {"ccci", "harness", "--probe", NULL};
  struct seen s;
  (void)state;

  run(&s, self, 10000, false);
  assert_int_equal(s.res.exit_status, 0);
  assert_string_equal(s.out, "harness --probe\n");
}

static void test_cannot_start(void **state)
{
  char *const none[] = {"/nonexistent/probe", NULL};
  char *const empty[] = {NULL};
  uv_loop_t loop;
  struct ccci_probe_spec sp;
  struct ccci_probe *p = NULL;
  struct seen s;
  char *err = NULL;
  (void)state;

  memset(&s, 0, sizeof(s));
  memset(&sp, 0, sizeof(sp));
  assert_int_equal(uv_loop_init(&loop), 0);
  sp.self_exe = "/bin/echo";
  sp.argv = none;
  sp.env = env;
  assert_true(ccci_probe_start(&loop, &sp, on_done, &s, &p, &err) < 0);
  assert_non_null(strstr(err, "/nonexistent/probe"));
  free(err);
  err = NULL;
  sp.argv = empty;
  assert_int_equal(ccci_probe_start(&loop, &sp, on_done, &s, &p, &err),
                   -EINVAL);
  free(err);
  err = NULL;
  sp.argv = none;
  sp.user = "ccci-no-such-user-here";
  assert_true(ccci_probe_start(&loop, &sp, on_done, &s, &p, &err) < 0);
  assert_non_null(strstr(err, "ccci-no-such-user-here"));
  free(err);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_false(s.done); /* a failed start never calls back */
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exit_and_output),
      cmocka_unit_test(test_output_cap),
      cmocka_unit_test(test_timeout_kills_the_group),
      cmocka_unit_test(test_kill),
      cmocka_unit_test(test_self),
      cmocka_unit_test(test_cannot_start),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
