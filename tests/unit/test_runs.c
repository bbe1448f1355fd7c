/* Unit tests of runs.c driven on a real loop and a temporary state dir: the
 * run-finished observers (called in the order they came, a removed one no
 * longer), the stop that waits for the meta.json writes, and the pool as
 * the runs show it (servers, drain and its file, placement at submit, the
 * notes of runs no server matches, reload). Admission is drained, so no
 * harness ever starts. */
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

#include <cmocka.h>

#include "ccci/core/config.h"
#include "ccci/runs/runs.h"
#include "loopwait.h"
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

/* A stand-in for the daemon's placement callback (recipe_meta.yml is the
 * harness's to parse): the recipe's tests/recipe_meta.yml holds
 * `servers=<name>`, `labels=<label>` lines, or `bad` for a file that does
 * not parse. */
static int fake_placement(void *arg, const struct ccci_config *cfg,
                          const char *recipe, const char *own_path,
                          const char *own_text, size_t own_len,
                          struct ccci_strlist *servers,
                          struct ccci_strlist *labels, char **err)
{
  char line[128];
  FILE *fp;
  (void)arg;
  (void)cfg;
  (void)recipe;
  (void)own_text;
  (void)own_len;
  if (own_path == NULL)
    return 0;
  fp = fopen(own_path, "r");
  assert_non_null(fp);
  while (fgets(line, sizeof(line), fp) != NULL) {
    struct ccci_strlist *l = NULL;
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "bad") == 0) {
      fclose(fp);
      *err = ccci_xasprintf("%s:1:1: not YAML", own_path);
      return -EINVAL;
    }
    if (strncmp(line, "servers=", 8) == 0)
      l = servers;
    else if (strncmp(line, "labels=", 7) == 0)
      l = labels;
    if (l == NULL)
      continue;
    l->v = ccci_xrealloc(l->v, (l->n + 2) * sizeof(char *));
    l->v[l->n++] = ccci_xstrdup(strchr(line, '=') + 1);
    l->v[l->n] = NULL;
  }
  fclose(fp);
  return 0;
}

static struct ccci_config *parse_config(const char *yml)
{
  struct ccci_config *cfg = NULL;
  char *errors = NULL;
  assert_int_equal(
      ccci_config_parse("t.yml", "/", yml, strlen(yml), &cfg, &errors), 0);
  return cfg;
}

static void open_runs(struct fixture *f)
{
  struct ccci_runs_env env;
  char *err = NULL;
  memset(&env, 0, sizeof(env));
  env.loop = &f->loop;
  env.state_dir = f->state;
  env.instance = "test-instance";
  env.self_exe = "/nonexistent/ccci";
  env.config = config;
  env.arg = f;
  env.placement = fake_placement;
  f->stopped = false;
  assert_int_equal(ccci_runs_open(&env, &f->rs, &err), 0);
  assert_null(err);
  /* Nothing is admitted: a submitted run stays queued until cancelled. */
  ccci_runs_drain(f->rs);
}

static void close_runs(struct fixture *f)
{
  f->stopped = false;
  ccci_runs_stop(f->rs, 0, on_stopped, f);
  LOOP_UNTIL(&f->loop, f->stopped, 60);
  assert_true(f->stopped);
  ccci_runs_close(f->rs);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  f->rs = NULL;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  char *file;
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
  open_runs(f);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  if (!f->stopped)
    ccci_runs_stop(f->rs, 0, on_stopped, f);
  LOOP_UNTIL(&f->loop, f->stopped, 60);
  assert_true(f->stopped);
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
  LOOP_UNTIL(&f->loop, f->submitted, 60);
  assert_true(f->submitted);
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
  LOOP_UNTIL(&f->loop, f->stopped, 60);
  assert_true(f->stopped);
  path = ccci_xasprintf("%s/runs/%s/meta.json", f->state, f->id);
  assert_int_equal(ccci_run_meta_read(path, &m, &err), 0);
  assert_int_equal(m.state, CCCI_RUN_FINISHED);
  assert_int_equal(m.reason, CCCI_REASON_CANCELLED);
  assert_int_equal(
      json_integer_value(json_object_get(m.trigger, "cancelled_by_uid")), 1000);
  ccci_run_meta_clear(&m);
  free(path);
}

static const char pool_yml[] =
    "harness:\n  domain_suffix: ci.example\n"
    "servers:\n"
    "  - name: a\n    capacity: 2\n"
    "  - name: b\n    labels: [heavy]\n    domain_suffix: b.example\n"
    "    gateway: 10.0.0.2:443\n";

static void write_file(const char *path, const char *text)
{
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

/* The fixture's recipe with a tests/recipe_meta.yml of @p text. */
static void recipe_meta(struct fixture *f, const char *text)
{
  char *dir = ccci_xasprintf("%s/tests", f->recipe);
  char *path = ccci_xasprintf("%s/recipe_meta.yml", dir);
  (void)mkdir(dir, 0750);
  write_file(path, text);
  free(path);
  free(dir);
}

static json_t *server_obj(json_t *servers, const char *name)
{
  size_t i;
  json_t *o;
  json_array_foreach(
      servers, i, o) if (strcmp(json_string_value(json_object_get(o, "name")),
                                name) == 0) return o;
  return NULL;
}

static const char *note_of(struct fixture *f, json_t **list)
{
  *list = ccci_runs_list(f->rs, NULL, NULL);
  return json_string_value(json_object_get(json_array_get(*list, 0), "note"));
}

/* The servers as `ccci server ls` sees them, and the placement of the
 * queued runs: stored in meta.json, counted as queued where it matches,
 * a note when no server matches, anywhere when recipe_meta.yml is bad. */
static void test_pool_servers_and_placement(void **state)
{
  struct fixture *f = *state;
  struct ccci_runs_counters c;
  struct ccci_run_meta m;
  json_t *sv, *list;
  char *path, *err = NULL;

  close_runs(f);
  ccci_config_unref(f->cfg);
  f->cfg = parse_config(pool_yml);
  open_runs(f);
  sv = ccci_runs_servers(f->rs);
  assert_int_equal(json_array_size(sv), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(sv, 1),
                                                        "domain_suffix")),
                      "b.example");
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(sv, 0), "capacity")),
      2);
  json_decref(sv);

  /* Needs a heavy server: only b; a run with no placement: both. */
  recipe_meta(f, "labels=heavy\n");
  submit(f);
  path = ccci_xasprintf("%s/runs/%s/meta.json", f->state, f->id);
  assert_int_equal(ccci_run_meta_read(path, &m, &err), 0);
  assert_int_equal(m.place_labels.n, 1);
  assert_string_equal(m.place_labels.v[0], "heavy");
  assert_null(m.server);
  ccci_run_meta_clear(&m);
  free(path);
  recipe_meta(f, "# nothing\n");
  submit(f);
  sv = ccci_runs_servers(f->rs);
  assert_int_equal(
      json_integer_value(json_object_get(server_obj(sv, "a"), "queued")), 1);
  assert_int_equal(
      json_integer_value(json_object_get(server_obj(sv, "b"), "queued")), 2);
  json_decref(sv);
  assert_null(note_of(f, &list));
  json_decref(list);

  /* No server has both labels: the run waits and says why. */
  recipe_meta(f, "servers=a\nlabels=heavy\nlabels=arm64\n");
  submit(f);
  assert_string_equal(note_of(f, &list),
                      "waiting: no server in the pool matches (servers: a; "
                      "labels: heavy, arm64)");
  json_decref(list);
  /* A recipe_meta.yml that does not parse: anywhere, and the note says
   * why. */
  recipe_meta(f, "bad\n");
  submit(f);
  {
    const char *n = note_of(f, &list);
    assert_non_null(strstr(n, "placed anywhere: "));
    assert_non_null(strstr(n, "not YAML"));
    json_decref(list);
  }
  ccci_runs_counters(f->rs, &c);
  assert_int_equal(c.servers, 2);
  assert_int_equal(c.servers_unhealthy, 0);
  assert_int_equal(c.servers_drained, 0);

  /* SIGHUP: a leaves (no runs: gone), c comes with the arm64 label. The
   * note of the waiting run stays: a was one it could go to. */
  ccci_config_unref(f->cfg);
  f->cfg = parse_config(
      "servers:\n  - name: b\n    labels: [heavy, arm64]\n  - name: c\n"
      "    labels: [arm64]\n");
  ccci_runs_kick(f->rs);
  sv = ccci_runs_servers(f->rs);
  assert_int_equal(json_array_size(sv), 2);
  assert_non_null(server_obj(sv, "b"));
  assert_non_null(server_obj(sv, "c"));
  assert_null(server_obj(sv, "a"));
  json_decref(sv);
  ccci_runs_counters(f->rs, &c);
  assert_int_equal(c.servers, 2);
  list = ccci_runs_list(f->rs, NULL, NULL);
  /* newest first: the bad one, then servers=a ... */
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(list, 1), "note")),
      "waiting: no server in the pool matches (servers: a; "
      "labels: heavy, arm64)");
  json_decref(list);
}

/* Drain: persisted in servers.json, kept at the next start; an unknown
 * name is refused naming the servers; a bad file is no reason not to
 * start (undrained). */
static void test_pool_drain_file(void **state)
{
  struct fixture *f = *state;
  struct ccci_runs_counters c;
  char *err = NULL, *path = ccci_xasprintf("%s/servers.json", f->state);
  char *text = NULL;
  json_t *sv;

  close_runs(f);
  ccci_config_unref(f->cfg);
  f->cfg = parse_config(pool_yml);
  open_runs(f);
  assert_int_equal(ccci_runs_server_drain(f->rs, "zz", true, &err), -ENOENT);
  assert_string_equal(err, "no server 'zz' in the pool; the servers are: a, b");
  free(err);
  err = NULL;
  submit(f);
  assert_int_equal(ccci_runs_server_drain(f->rs, "b", true, &err), 0);
  assert_null(err);
  ccci_runs_counters(f->rs, &c);
  assert_int_equal(c.servers_drained, 1);
  /* A drained server's matching runs count as queued for it. */
  sv = ccci_runs_servers(f->rs);
  assert_int_equal(
      json_integer_value(json_object_get(server_obj(sv, "a"), "queued")), 1);
  assert_int_equal(
      json_integer_value(json_object_get(server_obj(sv, "b"), "queued")), 1);
  json_decref(sv);
  close_runs(f); /* the stop waits for the file */
  assert_int_equal(ccci_read_file(path, 4096, &text, NULL), 0);
  assert_string_equal(text, "{\"version\":1,\"drained\":[\"b\"]}\n");
  free(text);
  open_runs(f);
  sv = ccci_runs_servers(f->rs);
  assert_true(json_is_true(json_object_get(server_obj(sv, "b"), "drained")));
  assert_true(json_is_false(json_object_get(server_obj(sv, "a"), "drained")));
  json_decref(sv);
  assert_int_equal(ccci_runs_server_drain(f->rs, "b", false, &err), 0);
  close_runs(f);
  assert_int_equal(ccci_read_file(path, 4096, &text, NULL), 0);
  assert_string_equal(text, "{\"version\":1,\"drained\":[]}\n");
  free(text);
  /* A bad file: the daemon starts, nothing drained. */
  write_file(path, "{\"version\":1,\"drained\":[\"b\"");
  open_runs(f);
  ccci_runs_counters(f->rs, &c);
  assert_int_equal(c.servers_drained, 0);
  assert_int_equal(c.servers, 2);
  free(path);
}

/* Without `servers:` there is the one implicit server, and placement does
 * not count (today's behaviour). */
static void test_pool_implicit(void **state)
{
  struct fixture *f = *state;
  json_t *sv, *list;

  sv = ccci_runs_servers(f->rs);
  assert_int_equal(json_array_size(sv), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(sv, 0), "name")),
      f->cfg->harness.server);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(sv, 0), "capacity")),
      (json_int_t)f->cfg->capacity);
  json_decref(sv);
  recipe_meta(f, "labels=heavy\n");
  submit(f);
  assert_null(note_of(f, &list));
  json_decref(list);
  sv = ccci_runs_servers(f->rs);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(sv, 0), "queued")), 1);
  json_decref(sv);
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
      cmocka_unit_test_setup_teardown(test_pool_servers_and_placement, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pool_drain_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool_implicit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
