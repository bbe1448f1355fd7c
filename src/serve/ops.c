/* The ops of the daemon: request object in, reply object out (or later),
 * whatever carried them. */
#include "ccci/serve/ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_info.h"
#include "ccci/core/log.h"
#include "ccci/ctl/proto.h"
#include "ccci/logs/logline.h"
#include "ccci/serve/web.h"

json_t ccci_op_later;

/* A request field of the given type; NULL (and @p err set) when it has
 * another type, or is missing and required. */
static json_t *req_field(json_t *req, const char *key, json_type type,
                         bool required, json_t **err)
{
  static const char *const names[] = {"an object",  "an array", "a string",
                                      "an integer", "a number", "a boolean",
                                      "a boolean",  "null"};
  json_t *v = json_object_get(req, key);
  if (v == NULL || json_is_null(v)) {
    if (required)
      *err =
          ccci_proto_error(CCCI_E_BAD_REQUEST, "field '%s' is required", key);
    return NULL;
  }
  if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v))) {
    *err = ccci_proto_error(CCCI_E_BAD_REQUEST, "field '%s' must be %s", key,
                            names[type]);
    return NULL;
  }
  return v;
}

static json_t *no_such_run(const char *id)
{
  return ccci_proto_error("no-such-run", "no run '%.40s'", id);
}

static json_t *op_status(const struct ccci_ops_env *env,
                         struct ccci_op_call *call, json_t *req)
{
  struct ccci_ops_daemon d;
  char started[32], loaded[32];
  json_t *reply = ccci_proto_ok();
  (void)call;
  (void)req;

  memset(&d, 0, sizeof(d));
  env->daemon(env->arg, &d);
  ccci_rfc3339(d.started_at, started);
  ccci_rfc3339(d.config_loaded_at, loaded);
  json_object_set_new(reply, "version", json_string(CCCI_VERSION));
  json_object_set_new(reply, "pid", json_integer(getpid()));
  json_object_set_new(reply, "instance", json_string(d.instance));
  json_object_set_new(reply, "started_at", json_string(started));
  json_object_set_new(reply, "uptime_s", json_integer((json_int_t)d.uptime_s));
  json_object_set_new(reply, "state",
                      json_string(d.stopping ? "stopping" : "serving"));
  json_object_set_new(reply, "state_dir", json_string(d.state_dir));
  json_object_set_new(reply, "socket", json_string(d.socket));
  json_object_set_new(reply, "config", json_string(d.config));
  json_object_set_new(reply, "config_loaded_at", json_string(loaded));
  json_object_set_new(reply, "problems",
                      env->runs ? ccci_runs_problems(env->runs) : json_array());
  if (env->forge != NULL) {
    ccci_forgebot_problems(env->forge, json_object_get(reply, "problems"));
    json_object_set_new(reply, "forge", ccci_forgebot_status(env->forge));
  }
  if (env->web != NULL)
    json_object_set_new(reply, "http",
                        json_pack("{s:s,s:s}", "listen",
                                  ccci_web_address(env->web), "public_url",
                                  ccci_web_public_url(env->web)));
  json_object_set_new(reply, "servers",
                      env->runs ? ccci_runs_servers(env->runs) : json_array());
  ccci_serve_counters_read(&d.counters, env->runs, env->forge, env->tail,
                           env->web);
  json_object_set_new(reply, "counters", ccci_serve_counters_json(&d.counters));
  return reply;
}

static void submit_done(const char *id, const char *err, void *arg)
{
  struct ccci_op_call *call = arg;
  if (id == NULL)
    call->reply(call, ccci_proto_error("refused", "%s", err));
  else
    call->reply(call, json_pack("{s:b,s:s}", "ok", 1, "id", id));
}

static json_t *op_submit(const struct ccci_ops_env *env,
                         struct ccci_op_call *call, json_t *req)
{
  struct ccci_ops_daemon d;
  struct ccci_runs_submit sub;
  json_t *err = NULL, *dir, *ref, *pr, *quick;
  char *msg = NULL;

  dir = req_field(req, "dir", JSON_STRING, true, &err);
  ref = req_field(req, "ref", JSON_STRING, false, &err);
  pr = req_field(req, "pr", JSON_INTEGER, false, &err);
  quick = req_field(req, "quick", JSON_TRUE, false, &err);
  if (err != NULL)
    return err;
  if (pr != NULL && json_integer_value(pr) <= 0)
    return ccci_proto_error(CCCI_E_BAD_REQUEST,
                            "field 'pr' must be a positive integer");
  memset(&d, 0, sizeof(d));
  env->daemon(env->arg, &d);
  if (d.stopping)
    return ccci_proto_error("refused", "the daemon is stopping");
  sub.dir = json_string_value(dir);
  sub.ref = ref ? json_string_value(ref) : NULL;
  sub.pr = pr ? (int64_t)json_integer_value(pr) : 0;
  sub.quick = quick != NULL && json_is_true(quick);
  sub.uid = call->uid;
  if (ccci_runs_submit(env->runs, &sub, submit_done, call, &msg) < 0) {
    err = ccci_proto_error("refused", "%s", msg);
    free(msg);
    return err;
  }
  return CCCI_OP_LATER;
}

static json_t *op_show(const struct ccci_ops_env *env,
                       struct ccci_op_call *call, json_t *req)
{
  json_t *err = NULL, *id = req_field(req, "id", JSON_STRING, true, &err);
  json_t *run, *reply;
  (void)call;
  if (err != NULL)
    return err;
  run = ccci_runs_show(env->runs, json_string_value(id));
  if (run == NULL)
    return no_such_run(json_string_value(id));
  reply = ccci_proto_ok();
  json_object_set_new(reply, "run", run);
  return reply;
}

static json_t *op_cancel(const struct ccci_ops_env *env,
                         struct ccci_op_call *call, json_t *req)
{
  json_t *err = NULL, *id = req_field(req, "id", JSON_STRING, true, &err);
  int rc;
  if (err != NULL)
    return err;
  rc = ccci_runs_cancel(env->runs, json_string_value(id), call->uid);
  if (rc == -ENOENT)
    return no_such_run(json_string_value(id));
  if (rc == -EALREADY)
    return ccci_proto_error("finished", "run '%.40s' has finished already",
                            json_string_value(id));
  return ccci_proto_ok();
}

static json_t *op_ps(const struct ccci_ops_env *env, struct ccci_op_call *call,
                     json_t *req)
{
  json_t *err = NULL, *state, *recipe, *reply;
  (void)call;
  state = req_field(req, "state", JSON_STRING, false, &err);
  recipe = req_field(req, "recipe", JSON_STRING, false, &err);
  if (err != NULL)
    return err;
  reply = ccci_proto_ok();
  json_object_set_new(
      reply, "runs",
      ccci_runs_list(env->runs, state ? json_string_value(state) : NULL,
                     recipe ? json_string_value(recipe) : NULL));
  return reply;
}

static json_t *op_drain(const struct ccci_ops_env *env,
                        struct ccci_op_call *call, json_t *req)
{
  json_t *reply = ccci_proto_ok();
  (void)req;
  ccci_info("serve", "drain requested by uid %ld", (long)call->uid);
  ccci_runs_drain(env->runs);
  json_object_set_new(reply, "running",
                      ccci_runs_list(env->runs, "running", NULL));
  return reply;
}

static json_t *op_janitor(const struct ccci_ops_env *env,
                          struct ccci_op_call *call, json_t *req)
{
  json_t *err = NULL, *dry = req_field(req, "dry_run", JSON_TRUE, false, &err);
  json_t *reply;
  if (err != NULL)
    return err;
  ccci_info("serve", "janitor%s requested by uid %ld",
            json_is_true(dry) ? " --dry-run" : "", (long)call->uid);
  reply = ccci_proto_ok();
  json_object_set_new(reply, "decisions",
                      ccci_runs_janitor(env->runs, json_is_true(dry)));
  return reply;
}

static json_t *op_server_ls(const struct ccci_ops_env *env,
                            struct ccci_op_call *call, json_t *req)
{
  json_t *reply = ccci_proto_ok();
  (void)call;
  (void)req;
  json_object_set_new(reply, "servers", ccci_runs_servers(env->runs));
  return reply;
}

/* The pool's object of server @p name now (a new reference), or null. */
static json_t *server_of(const struct ccci_ops_env *env, const char *name)
{
  json_t *all = ccci_runs_servers(env->runs), *s, *out = NULL;
  size_t i;
  json_array_foreach(all, i, s)
  {
    const char *n = json_string_value(json_object_get(s, "name"));
    if (out == NULL && n != NULL && strcmp(n, name) == 0)
      out = json_incref(s);
  }
  json_decref(all);
  return out != NULL ? out : json_null();
}

static json_t *server_drain(const struct ccci_ops_env *env,
                            struct ccci_op_call *call, json_t *req, bool drain)
{
  json_t *err = NULL, *name = req_field(req, "name", JSON_STRING, true, &err);
  json_t *reply;
  const char *n;
  char *msg = NULL;
  int rc;

  if (err != NULL)
    return err;
  n = json_string_value(name);
  /* A NUL inside the string would name another server. */
  if (strlen(n) != json_string_length(name) || n[0] == '\0')
    return ccci_proto_error(CCCI_E_BAD_REQUEST,
                            "field 'name' must be a server name");
  rc = ccci_runs_server_drain(env->runs, n, drain, &msg);
  if (rc == -ENOENT) {
    err = ccci_proto_error(CCCI_E_NO_SUCH_SERVER, "%s",
                           msg != NULL ? msg : "no such server");
    free(msg);
    return err;
  }
  if (rc < 0) {
    err = ccci_proto_error(CCCI_E_INTERNAL, "cannot %sdrain server '%.64s': %s",
                           drain ? "" : "un", n,
                           msg != NULL ? msg : strerror(-rc));
    free(msg);
    return err;
  }
  free(msg);
  ccci_info("serve", "server %s %s by uid %ld", n,
            drain ? "drained" : "undrained", (long)call->uid);
  reply = ccci_proto_ok();
  json_object_set_new(reply, "server", server_of(env, n));
  return reply;
}

static json_t *op_server_drain(const struct ccci_ops_env *env,
                               struct ccci_op_call *call, json_t *req)
{
  return server_drain(env, call, req, true);
}

static json_t *op_server_undrain(const struct ccci_ops_env *env,
                                 struct ccci_op_call *call, json_t *req)
{
  return server_drain(env, call, req, false);
}

static json_t *bad(const char *fmt, const char *field)
{
  return ccci_proto_error(CCCI_E_BAD_REQUEST, fmt, field);
}

static json_t *op_tail(const struct ccci_ops_env *env,
                       struct ccci_op_call *call, json_t *req)
{
  json_t *id = json_object_get(req, "id"), *step = json_object_get(req, "step");
  json_t *pos = json_object_get(req, "pos"), *follow;
  struct ccci_tail_request tr;
  struct ccci_runs_view v;

  follow = json_object_get(req, "follow");
  if (!json_is_string(id))
    return bad("'%s' must be a run id (string)", "id");
  if (step != NULL && !json_is_null(step) &&
      !(json_is_integer(step) && json_integer_value(step) >= 0 &&
        json_integer_value(step) < CCCI_TAIL_MAX_STEPS) &&
      !(json_is_string(step) && json_string_length(step) > 0 &&
        json_string_length(step) <= CCCI_LOGLINE_NAME_MAX))
    return bad("'%s' must be a step number or name", "step");
  if (pos != NULL && !json_is_null(pos) &&
      !(json_is_integer(pos) && json_integer_value(pos) >= 0))
    return bad("'%s' must be an integer >= 0", "pos");
  if (follow != NULL && !json_is_null(follow) && !json_is_boolean(follow))
    return bad("'%s' must be true or false", "follow");
  if (json_string_length(id) > CCCI_RUN_ID_MAX ||
      ccci_runs_view(env->runs, json_string_value(id), &v) < 0)
    return no_such_run(json_string_value(id));
  tr.id = json_string_value(id);
  tr.follow = follow == NULL || !json_is_false(follow);
  tr.step = json_is_integer(step) ? (int)json_integer_value(step) : -1;
  tr.step_name = json_is_string(step) ? json_string_value(step) : NULL;
  tr.from = json_is_integer(pos) ? (uint64_t)json_integer_value(pos) : 0;
  tr.from_step = 0;
  tr.end_with_step = false;
  ccci_tail_start(env->tail, &tr, call->stream(call));
  return CCCI_OP_LATER;
}

/* The order is the one `unknown-op` lists them in. */
static const struct ccci_op ops[] = {
    {"status", op_status},
    {"submit", op_submit},
    {"show", op_show},
    {"cancel", op_cancel},
    {"ps", op_ps},
    {"drain", op_drain},
    {"tail", op_tail},
    {"janitor", op_janitor},
    {"server_ls", op_server_ls},
    {"server_drain", op_server_drain},
    {"server_undrain", op_server_undrain},
};

const struct ccci_op *ccci_ops_find(const char *name)
{
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(ops); i++)
    if (strcmp(ops[i].name, name) == 0)
      return &ops[i];
  return NULL;
}

static json_t *unknown_op(const char *name)
{
  struct ccci_buf known;
  json_t *reply;
  size_t i;
  int r = 0;

  ccci_buf_init(&known, SIZE_MAX);
  for (i = 0; i < CCCI_ARRAY_LEN(ops) && r == 0; i++)
    r = ccci_buf_printf(&known, "%s%s", i == 0 ? "" : ", ", ops[i].name);
  reply = ccci_proto_error(CCCI_E_UNKNOWN_OP, "unknown op '%.64s'; known: %s",
                           name, known.data ? known.data : "");
  ccci_buf_close(&known);
  return reply;
}

json_t *ccci_ops_call(const struct ccci_ops_env *env, struct ccci_op_call *call,
                      json_t *req)
{
  const char *name = json_string_value(json_object_get(req, "op"));
  const struct ccci_op *op = ccci_ops_find(name);
  json_t *reply;

  if (op == NULL)
    return unknown_op(name);
  reply = op->fn(env, call, req);
  if (reply == NULL)
    reply = ccci_proto_error(CCCI_E_INTERNAL, "op '%s' failed", op->name);
  return reply;
}
