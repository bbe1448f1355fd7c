/* Unit tests of ops.c: the op handlers called directly, with no socket, on
 * real runs in a temp state dir: status, ps, show, cancel, drain, submit
 * refused, the server ops, an unknown op and bad requests, each reply
 * whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/core/config.h"
#include "ccci/serve/ops.h"
#include "loopwait.h"
#include "tmpdir.h"

#define RUN_ID "20261124-054848-357"
/* The reply to any op on the run "nope". */
#define NO_SUCH_NOPE                                                           \
  "{\"ok\":false,\"error\":{\"code\":\"no-such-run\","                         \
  "\"message\":\"no run 'nope'\"}}"

struct fixture {
  uv_loop_t loop;
  char *dir;
  struct ccci_config *cfg;
  struct ccci_ops_env env;
  bool stopping;
  bool stopped;
  /* The deferred reply, when one came. */
  struct ccci_op_call call;
  json_t *later;
};

static struct ccci_config *config(void *arg)
{
  struct fixture *f = arg;
  return ccci_config_ref(f->cfg);
}

static void facts(void *arg, struct ccci_ops_daemon *out)
{
  struct fixture *f = arg;
  out->instance = "0123456789abcdef0123456789abcdef";
  out->state_dir = f->dir;
  out->socket = "/run/ccci/ccci.sock";
  out->config = "(test)";
  out->started_at = 1795000000;
  out->config_loaded_at = 1795000060;
  out->uptime_s = 42;
  out->stopping = f->stopping;
  out->counters.ctl.requests = 7;
  out->counters.config_reloads = 2;
}

static void on_later(struct ccci_op_call *call, json_t *reply)
{
  struct fixture *f = ccci_container_of(call, struct fixture, call);
  assert_null(f->later);
  f->later = reply;
}

/* A finished run left by an earlier daemon, as its meta.json says. */
static void write_run(const char *dir)
{
  char created[32], *path, *text;
  time_t now = time(NULL);

  ccci_rfc3339(now - 60, created);
  path = ccci_xasprintf("%s/runs/%s", dir, RUN_ID);
  assert_int_equal(ccci_mkdir_p(path, 0750), 0);
  free(path);
  text = ccci_xasprintf(
      "{\"version\":1,\"id\":\"" RUN_ID "\",\"number\":3,"
      "\"repo\":\"local/hello\",\"recipe\":\"hello\",\"ref\":\"main\","
      "\"sha\":null,\"pr\":0,\"domain\":\"hello-l3.ci.local\","
      "\"quick\":false,\"state\":\"finished\",\"reason\":\"success\","
      "\"trigger\":{\"kind\":\"local\"},\"submitted_by_uid\":1000,"
      "\"daemon_instance\":\"abc\",\"created_at\":\"%s\","
      "\"started_at\":\"%s\",\"finished_at\":\"%s\",\"exit_code\":0,"
      "\"signal\":null,\"teardown\":\"none\",\"attempt\":1}\n",
      created, created, created);
  path = ccci_xasprintf("%s/runs/%s/meta.json", dir, RUN_ID);
  assert_int_equal(ccci_write_file_atomic(path, text, strlen(text), 0640), 0);
  free(path);
  free(text);
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  struct ccci_runs_env re;
  char *err = NULL;

  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->dir = tmpdir_make("ops");
  assert_non_null(f->dir);
  f->cfg = ccci_config_default();
  write_run(f->dir);
  re.loop = &f->loop;
  re.state_dir = f->dir;
  re.instance = "0123456789abcdef0123456789abcdef";
  re.self_exe = "/bin/false"; /* no run is ever started */
  re.config = config;
  re.arg = f;
  assert_int_equal(ccci_runs_open(&re, &f->env.runs, &err), 0);
  f->env.daemon = facts;
  f->env.arg = f;
  f->call.uid = getuid();
  f->call.reply = on_later;
  *state = f;
  return 0;
}

static void on_stopped(void *arg)
{
  struct fixture *f = arg;
  f->stopped = true;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  ccci_runs_stop(f->env.runs, 0, on_stopped, f);
  LOOP_UNTIL(&f->loop, f->stopped, 60);
  assert_true(f->stopped);
  ccci_runs_close(f->env.runs);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  json_decref(f->later);
  ccci_config_unref(f->cfg);
  assert_int_equal(tmpdir_remove(f->dir), 0);
  free(f->dir);
  free(f);
  return 0;
}

/* Call the op of the request @p text; returns the reply (to decref). */
static json_t *call(struct fixture *f, const char *text)
{
  json_t *req = json_loads(text, 0, NULL), *reply;
  assert_non_null(req);
  reply = ccci_ops_call(&f->env, &f->call, req);
  json_decref(req);
  assert_non_null(reply);
  return reply;
}

static void expect(json_t *reply, const char *want)
{
  char *s = json_dumps(reply, JSON_COMPACT);
  assert_string_equal(s, want);
  free(s);
  json_decref(reply);
}

static void test_status(void **state)
{
  struct fixture *f = *state;
  json_t *r = call(f, "{\"v\":1,\"op\":\"status\"}"), *c;
  const char *keys[] = {"ok",       "version",          "pid",
                        "instance", "started_at",       "uptime_s",
                        "state",    "state_dir",        "socket",
                        "config",   "config_loaded_at", "problems",
                        "servers",  "counters"};
  const char *key;
  json_t *v;
  size_t i = 0;

  json_object_foreach(r, key, v)
  {
    assert_true(i < CCCI_ARRAY_LEN(keys));
    assert_string_equal(key, keys[i]);
    i++;
  }
  assert_int_equal(i, CCCI_ARRAY_LEN(keys));
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_int_equal(json_integer_value(json_object_get(r, "pid")), getpid());
  assert_string_equal(json_string_value(json_object_get(r, "started_at")),
                      "2026-11-18T11:06:40Z");
  assert_string_equal(json_string_value(json_object_get(r, "config_loaded_at")),
                      "2026-11-18T11:07:40Z");
  assert_int_equal(json_integer_value(json_object_get(r, "uptime_s")), 42);
  assert_string_equal(json_string_value(json_object_get(r, "state")),
                      "serving");
  assert_string_equal(json_string_value(json_object_get(r, "state_dir")),
                      f->dir);
  c = json_object_get(r, "counters");
  assert_int_equal(json_integer_value(json_object_get(c, "ctl_requests")), 7);
  assert_int_equal(json_integer_value(json_object_get(c, "config_reloads")), 2);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(c, "runs_by_state"), "finished")),
                   1);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(c, "runs_by_reason"), "success")),
                   1);
  /* The pool: the configuration's one implicit server. */
  assert_int_equal(json_array_size(json_object_get(r, "servers")), 1);
  assert_string_equal(
      json_string_value(json_object_get(
          json_array_get(json_object_get(r, "servers"), 0), "name")),
      f->cfg->harness.server);
  assert_true(json_is_integer(json_object_get(c, "servers")));
  assert_true(json_is_integer(json_object_get(c, "servers_unhealthy")));
  assert_true(json_is_integer(json_object_get(c, "servers_drained")));
  /* No forge bot, no tail engine: their parts are left out. */
  assert_null(json_object_get(r, "forge"));
  assert_null(json_object_get(c, "forge_polls"));
  assert_null(json_object_get(c, "tail_clients"));
  json_decref(r);

  f->stopping = true;
  r = call(f, "{\"v\":1,\"op\":\"status\"}");
  assert_string_equal(json_string_value(json_object_get(r, "state")),
                      "stopping");
  json_decref(r);
}

static void test_ps_show(void **state)
{
  struct fixture *f = *state;
  json_t *r = call(f, "{\"v\":1,\"op\":\"ps\"}"), *runs, *run;

  runs = json_object_get(r, "runs");
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_int_equal(json_array_size(runs), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(runs, 0), "id")),
      RUN_ID);
  json_decref(r);
  expect(call(f, "{\"v\":1,\"op\":\"ps\",\"state\":\"running\"}"),
         "{\"ok\":true,\"runs\":[]}");
  expect(call(f, "{\"v\":1,\"op\":\"ps\",\"recipe\":\"other\"}"),
         "{\"ok\":true,\"runs\":[]}");

  r = call(f, "{\"v\":1,\"op\":\"show\",\"id\":\"" RUN_ID "\"}");
  run = json_object_get(r, "run");
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_string_equal(json_string_value(json_object_get(run, "reason")),
                      "success");
  assert_true(json_is_array(json_object_get(run, "steps")));
  json_decref(r);
  expect(call(f, "{\"v\":1,\"op\":\"show\",\"id\":\"nope\"}"), NO_SUCH_NOPE);
}

static void test_cancel_drain(void **state)
{
  struct fixture *f = *state;

  expect(call(f, "{\"v\":1,\"op\":\"cancel\",\"id\":\"nope\"}"), NO_SUCH_NOPE);
  expect(call(f, "{\"v\":1,\"op\":\"cancel\",\"id\":\"" RUN_ID "\"}"),
         "{\"ok\":false,\"error\":{\"code\":\"finished\","
         "\"message\":\"run '" RUN_ID "' has finished already\"}}");
  expect(call(f, "{\"v\":1,\"op\":\"drain\"}"), "{\"ok\":true,\"running\":[]}");
  {
    json_t *r = call(f, "{\"v\":1,\"op\":\"status\"}");
    assert_true(json_is_true(
        json_object_get(json_object_get(r, "counters"), "draining")));
    json_decref(r);
  }
}

/* The server of @p r's `servers` array named @p name, or NULL. */
static json_t *server_in(json_t *r, const char *name)
{
  json_t *s;
  size_t i;
  json_array_foreach(json_object_get(r, "servers"), i, s)
  {
    if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
      return s;
  }
  return NULL;
}

static void test_servers(void **state)
{
  static const char *const fields[] = {"name",
                                       "capacity",
                                       "running",
                                       "queued",
                                       "healthy",
                                       "drained",
                                       "removed",
                                       "labels",
                                       "domain_suffix",
                                       "gateway",
                                       "connection_errors",
                                       "connection_errors_total",
                                       "runs_started",
                                       "probes",
                                       "probe_failures",
                                       "next_probe_in_ms",
                                       "last_error"};
  struct fixture *f = *state;
  const char *name = f->cfg->harness.server;
  char *req;
  json_t *r, *s, *err;
  size_t i;

  r = call(f, "{\"v\":1,\"op\":\"server_ls\"}");
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_int_equal(json_array_size(json_object_get(r, "servers")), 1);
  s = server_in(r, name);
  assert_non_null(s);
  for (i = 0; i < CCCI_ARRAY_LEN(fields); i++)
    assert_non_null(json_object_get(s, fields[i]));
  assert_true(json_is_false(json_object_get(s, "drained")));
  json_decref(r);

  req =
      ccci_xasprintf("{\"v\":1,\"op\":\"server_drain\",\"name\":\"%s\"}", name);
  r = call(f, req);
  free(req);
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(r, "server"), "name")),
      name);
  assert_true(
      json_is_true(json_object_get(json_object_get(r, "server"), "drained")));
  json_decref(r);
  r = call(f, "{\"v\":1,\"op\":\"server_ls\"}");
  assert_true(json_is_true(json_object_get(server_in(r, name), "drained")));
  json_decref(r);
  req = ccci_xasprintf("{\"v\":1,\"op\":\"server_undrain\",\"name\":\"%s\"}",
                       name);
  r = call(f, req);
  free(req);
  assert_true(
      json_is_false(json_object_get(json_object_get(r, "server"), "drained")));
  json_decref(r);

  /* A NUL in the name (the socket's parser refuses it, another transport
   * might not) does not name the server before it. */
  req = ccci_xasprintf(
      "{\"v\":1,\"op\":\"server_drain\",\"name\":\"%s\\u0000x\"}", name);
  s = json_loads(req, JSON_ALLOW_NUL, NULL);
  free(req);
  assert_non_null(s);
  r = ccci_ops_call(&f->env, &f->call, s);
  json_decref(s);
  expect(r, "{\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":"
            "\"field 'name' must be a server name\"}}");

  /* An unknown name: no-such-server, the message naming the servers. */
  for (i = 0; i < 2; i++) {
    r = call(f, i == 0 ? "{\"v\":1,\"op\":\"server_drain\",\"name\":\"zz\"}"
                       : "{\"v\":1,\"op\":\"server_undrain\",\"name\":"
                         "\"zz\"}");
    assert_true(json_is_false(json_object_get(r, "ok")));
    err = json_object_get(r, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")),
                        "no-such-server");
    assert_non_null(
        strstr(json_string_value(json_object_get(err, "message")), "zz"));
    assert_non_null(
        strstr(json_string_value(json_object_get(err, "message")), name));
    json_decref(r);
  }
}

static void test_submit(void **state)
{
  struct fixture *f = *state;
  char *req;

  /* Refused later: the directory cannot be copied. */
  req =
      ccci_xasprintf("{\"v\":1,\"op\":\"submit\",\"dir\":\"%s/none\"}", f->dir);
  {
    json_t *in = json_loads(req, 0, NULL), *r;
    r = ccci_ops_call(&f->env, &f->call, in);
    json_decref(in);
    if (r == CCCI_OP_LATER) {
      LOOP_UNTIL(&f->loop, f->later != NULL, 60);
      assert_non_null(f->later);
      r = f->later;
      f->later = NULL;
    }
    assert_false(json_is_true(json_object_get(r, "ok")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "error"), "code")),
        "refused");
    json_decref(r);
  }
  free(req);
  f->stopping = true;
  expect(call(f, "{\"v\":1,\"op\":\"submit\",\"dir\":\"/tmp\"}"),
         "{\"ok\":false,\"error\":{\"code\":\"refused\","
         "\"message\":\"the daemon is stopping\"}}");
}

static void test_unknown_op(void **state)
{
  struct fixture *f = *state;
  expect(call(f, "{\"v\":1,\"op\":\"frobnicate\"}"),
         "{\"ok\":false,\"error\":{\"code\":\"unknown-op\",\"message\":"
         "\"unknown op 'frobnicate'; known: status, submit, show, cancel, "
         "ps, drain, tail, janitor, server_ls, server_drain, "
         "server_undrain\"}}");
  assert_null(ccci_ops_find("frobnicate"));
  assert_string_equal(ccci_ops_find("tail")->name, "tail");
}

/* The same error replies as the socket gave before the ops moved. */
static void test_bad_requests(void **state)
{
  static const char *const cases[][2] = {
      {"{\"v\":1,\"op\":\"show\"}", "field 'id' is required"},
      {"{\"v\":1,\"op\":\"show\",\"id\":3}", "field 'id' must be a string"},
      {"{\"v\":1,\"op\":\"cancel\",\"id\":null}", "field 'id' is required"},
      {"{\"v\":1,\"op\":\"ps\",\"state\":1}", "field 'state' must be a string"},
      {"{\"v\":1,\"op\":\"ps\",\"recipe\":[]}",
       "field 'recipe' must be a string"},
      {"{\"v\":1,\"op\":\"submit\"}", "field 'dir' is required"},
      {"{\"v\":1,\"op\":\"submit\",\"dir\":\"/x\",\"pr\":\"7\"}",
       "field 'pr' must be an integer"},
      {"{\"v\":1,\"op\":\"submit\",\"dir\":\"/x\",\"pr\":0}",
       "field 'pr' must be a positive integer"},
      {"{\"v\":1,\"op\":\"submit\",\"dir\":\"/x\",\"quick\":1}",
       "field 'quick' must be a boolean"},
      {"{\"v\":1,\"op\":\"janitor\",\"dry_run\":\"yes\"}",
       "field 'dry_run' must be a boolean"},
      {"{\"v\":1,\"op\":\"tail\"}", "'id' must be a run id (string)"},
      {"{\"v\":1,\"op\":\"server_drain\"}", "field 'name' is required"},
      {"{\"v\":1,\"op\":\"server_undrain\",\"name\":1}",
       "field 'name' must be a string"},
      {"{\"v\":1,\"op\":\"server_drain\",\"name\":\"\"}",
       "field 'name' must be a server name"},

      {"{\"v\":1,\"op\":\"tail\",\"id\":\"x\",\"step\":-1}",
       "'step' must be a step number or name"},
      {"{\"v\":1,\"op\":\"tail\",\"id\":\"x\",\"step\":\"\"}",
       "'step' must be a step number or name"},
      {"{\"v\":1,\"op\":\"tail\",\"id\":\"x\",\"pos\":-1}",
       "'pos' must be an integer >= 0"},
      {"{\"v\":1,\"op\":\"tail\",\"id\":\"x\",\"follow\":1}",
       "'follow' must be true or false"},
  };
  struct fixture *f = *state;
  size_t i;

  for (i = 0; i < CCCI_ARRAY_LEN(cases); i++) {
    char *want = ccci_xasprintf("{\"ok\":false,\"error\":{\"code\":"
                                "\"bad-request\",\"message\":\"%s\"}}",
                                cases[i][1]);
    expect(call(f, cases[i][0]), want);
    free(want);
  }
  expect(call(f, "{\"v\":1,\"op\":\"tail\",\"id\":\"nope\"}"), NO_SUCH_NOPE);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ps_show, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_drain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_servers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_submit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_op, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
