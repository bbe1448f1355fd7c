/* Unit tests of pool.c: the merge on reload (state kept, removed servers
 * kept while they have runs, added ones healthy), health transitions, the
 * probe backoff and its jitter, the drain file (round trip, bad files), and
 * the JSON of `ccci server ls`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/runs/pool.h"
#include "tmpdir.h"

/* Server confs from "name:capacity[:label,label]" tokens. */
struct confs {
  struct ccci_server_conf v[8];
  char *labels[8][4];
  size_t n;
};

static void confs_set(struct confs *c, const char *spec)
{
  char buf[256], *save = NULL, *tok;
  memset(c, 0, sizeof(*c));
  snprintf(buf, sizeof(buf), "%s", spec);
  for (tok = strtok_r(buf, " ", &save); tok != NULL;
       tok = strtok_r(NULL, " ", &save)) {
    struct ccci_server_conf *s = &c->v[c->n];
    char *name = tok, *cap = strchr(tok, ':'), *lab;
    assert_non_null(cap);
    *cap++ = '\0';
    lab = strchr(cap, ':');
    if (lab != NULL)
      *lab++ = '\0';
    s->name = strdup(name);
    s->capacity = strtoull(cap, NULL, 10);
    s->domain_suffix = strdup("ci.example");
    s->labels.v = c->labels[c->n];
    while (lab != NULL && *lab != '\0') {
      char *comma = strchr(lab, ',');
      if (comma != NULL)
        *comma = '\0';
      s->labels.v[s->labels.n++] = strdup(lab);
      lab = comma != NULL ? comma + 1 : NULL;
    }
    c->n++;
  }
}

static void confs_clear(struct confs *c)
{
  size_t i, k;
  for (i = 0; i < c->n; i++) {
    free(c->v[i].name);
    free(c->v[i].domain_suffix);
    for (k = 0; k < c->v[i].labels.n; k++)
      free(c->v[i].labels.v[k]);
  }
  memset(c, 0, sizeof(*c));
}

static void merge(struct ccci_pool *p, const char *spec)
{
  struct confs c;
  confs_set(&c, spec);
  ccci_pool_merge(p, c.v, c.n);
  confs_clear(&c);
}

/* The pool's names in order, a removed one with a trailing '-'. */
static void expect_names(struct ccci_pool *p, const char *want)
{
  char got[256] = "";
  size_t i, k = 0;
  for (i = 0; i < p->n; i++)
    k += (size_t)snprintf(got + k, sizeof(got) - k, "%s%s%s", i ? " " : "",
                          p->v[i].name, p->v[i].removed ? "-" : "");
  assert_string_equal(got, want);
}

static void test_merge_keeps_state(void **state)
{
  struct ccci_pool p;
  struct ccci_pool_server *s;
  (void)state;

  ccci_pool_init(&p);
  merge(&p, "a:2 b:1:heavy c:1");
  expect_names(&p, "a b c");
  assert_int_equal(ccci_pool_find(&p, "b")->labels.n, 1);
  assert_int_equal(ccci_pool_set_drained(&p, "a", true), 0);
  ccci_pool_take(&p, "b", true);
  ccci_pool_take(&p, "b", true);
  assert_int_equal(
      ccci_pool_feed(&p, "c", 0, 3, "connection refused", 3, 100, 10),
      CCCI_POOL_UNHEALTHY);
  /* b is removed while it has runs, c leaves (no runs), d comes. */
  merge(&p, "d:1 a:5");
  expect_names(&p, "d a b-");
  s = ccci_pool_find(&p, "a");
  assert_true(s->drained);
  assert_int_equal(s->capacity, 5);
  s = ccci_pool_find(&p, "d");
  assert_false(s->drained);
  assert_false(s->unhealthy);
  s = ccci_pool_find(&p, "b");
  assert_true(s->removed);
  assert_true(ccci_pool_closed(s));
  assert_int_equal(s->running, 2);
  assert_int_equal(s->runs_started, 2);
  /* c comes back healthy: it left the pool, its state with it. */
  merge(&p, "d:1 a:5 c:1");
  expect_names(&p, "d a c b-");
  assert_false(ccci_pool_find(&p, "c")->unhealthy);
  ccci_pool_release(&p, "b");
  expect_names(&p, "d a c b-");
  ccci_pool_release(&p, "b");
  expect_names(&p, "d a c");
  /* A removed server that comes back while it still has runs stays. */
  ccci_pool_take(&p, "c", false);
  merge(&p, "a:5");
  expect_names(&p, "a c-");
  merge(&p, "c:3 a:5");
  expect_names(&p, "c a");
  s = ccci_pool_find(&p, "c");
  assert_false(s->removed);
  assert_int_equal(s->running, 1);
  assert_int_equal(s->runs_started, 0); /* an orphan's slot is no start */
  /* Release of a server not in the pool is nothing. */
  ccci_pool_release(&p, "zz");
  ccci_pool_take(&p, "zz", true);
  ccci_pool_close(&p);
}

/* Health: per run end, fails = connection_errors when the server answered
 * at all, else fails += connection_errors; unhealthy at the threshold. */
static void test_health(void **state)
{
  static const struct {
    uint64_t reached, errors;
    uint64_t fails;
    bool unhealthy;
  } rows[] = {
      {3, 0, 0, false}, {0, 1, 1, false}, {0, 1, 2, false},
      {2, 1, 1, false}, /* reached: the streak is this run's */
      {0, 1, 2, false}, {0, 1, 3, true},  {0, 2, 5, true},
  };
  struct ccci_pool p;
  struct ccci_pool_server *s;
  size_t i;
  (void)state;

  ccci_pool_init(&p);
  merge(&p, "a:1");
  s = ccci_pool_find(&p, "a");
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    enum ccci_pool_health h =
        ccci_pool_feed(&p, "a", rows[i].reached, rows[i].errors,
                       "error during connect", 3, 1000, 50);
    assert_int_equal(s->fails, rows[i].fails);
    assert_int_equal(s->unhealthy, rows[i].unhealthy);
    /* Told once, when it turns. */
    assert_int_equal(h == CCCI_POOL_UNHEALTHY, i == 5);
  }
  assert_int_equal(s->next_probe_ms, 1050);
  assert_int_equal(s->connection_errors_total, 7);
  assert_string_equal(s->last_error, "error during connect");
  assert_true(ccci_pool_closed(s));
  /* A failed probe: later; a good one: healthy again, the streak gone. */
  s->probing = true;
  ccci_pool_probe_ended(s, false, 2000, 40);
  assert_true(s->unhealthy);
  assert_false(s->probing);
  assert_int_equal(s->next_probe_ms, 2040);
  assert_int_equal(s->probes, 1);
  assert_int_equal(s->probe_failures, 1);
  ccci_pool_probe_ended(s, true, 3000, 0);
  assert_false(s->unhealthy);
  assert_int_equal(s->fails, 0);
  assert_int_equal(s->probes, 2);
  assert_false(ccci_pool_closed(s));
  /* unhealthy_after 0: never unhealthy. */
  assert_int_equal(ccci_pool_feed(&p, "a", 0, 100, NULL, 0, 0, 0),
                   CCCI_POOL_SAME);
  assert_false(s->unhealthy);
  /* An error text is capped. */
  {
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    (void)ccci_pool_feed(&p, "a", 0, 1, big, 0, 0, 0);
    assert_int_equal(strlen(s->last_error), CCCI_POOL_ERROR_MAX);
  }
  assert_int_equal(ccci_pool_feed(&p, "nope", 0, 9, NULL, 1, 0, 0),
                   CCCI_POOL_SAME);
  ccci_pool_close(&p);
}

static void test_backoff(void **state)
{
  uint64_t b = 0;
  unsigned r;
  static const uint64_t want[] = {10000,  20000,  40000, 80000,
                                  160000, 300000, 300000};
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    b = ccci_pool_backoff(b, 10000, 300000);
    assert_int_equal(b, want[i]);
  }
  /* No overflow near the top. */
  assert_int_equal(ccci_pool_backoff(UINT64_MAX / 2 + 1, 1, UINT64_MAX),
                   UINT64_MAX);
  assert_int_equal(ccci_pool_backoff(0, 0, 0), 1);
  /* Jitter stays within +-25%. */
  for (r = 0; r < 5000; r += 7) {
    uint64_t j = ccci_pool_jitter(10000, r * 2654435761u);
    assert_true(j >= 7500 && j <= 12500);
  }
  assert_int_equal(ccci_pool_jitter(10000, 0), 7500);
  assert_int_equal(ccci_pool_jitter(10000, 5000), 12500);
}

static void test_drain_file(void **state)
{
  struct ccci_pool p, q;
  char *text, *err = NULL, *dir, *path;
  size_t len;
  FILE *f;
  (void)state;

  ccci_pool_init(&p);
  merge(&p, "a:1 b:1 c:1");
  assert_int_equal(ccci_pool_set_drained(&p, "b", true), 0);
  assert_int_equal(ccci_pool_set_drained(&p, "c", true), 0);
  assert_int_equal(ccci_pool_set_drained(&p, "c", false), 0);
  assert_int_equal(ccci_pool_set_drained(&p, "zz", true), -ENOENT);
  text = ccci_pool_drain_text(&p, &len);
  assert_string_equal(text, "{\"version\":1,\"drained\":[\"b\"]}\n");
  /* Round trip into a pool that has b only later. */
  ccci_pool_init(&q);
  merge(&q, "a:1");
  assert_int_equal(ccci_pool_drain_parse(&q, text, len, &err), 0);
  assert_false(ccci_pool_find(&q, "a")->drained);
  merge(&q, "a:1 b:2");
  assert_true(ccci_pool_find(&q, "b")->drained);
  free(text);
  text = ccci_pool_drain_text(&q, &len);
  assert_string_equal(text, "{\"version\":1,\"drained\":[\"b\"]}\n");
  free(text);

  /* Bad files: the error says what, and nothing changes. */
  {
    static const struct {
      const char *text, *msg;
    } bad[] = {
        {"{\"version\":1,\"drained\":[\"b\"", "line 1 column 27: "},
        {"[]", "field 'version' must be 1"},
        {"{\"version\":2,\"drained\":[]}", "field 'version' must be 1"},
        {"{\"version\":1}", "field 'drained' must be a list of server names"},
        {"{\"version\":1,\"drained\":[\"a\",3]}",
         "field 'drained' item 1 must be a server name"},
        {"{\"version\":1,\"drained\":[\"a b\"]}",
         "field 'drained' item 0 must be a server name"},
    };
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      assert_int_equal(
          ccci_pool_drain_parse(&q, bad[i].text, strlen(bad[i].text), &err),
          -EINVAL);
      assert_non_null(err);
      assert_memory_equal(err, bad[i].msg, strlen(bad[i].msg));
      free(err);
      assert_true(ccci_pool_find(&q, "b")->drained);
    }
  }

  /* The file: missing is none; a bad one names the file. */
  dir = tmpdir_make("pool");
  assert_non_null(dir);
  path = ccci_xasprintf("%s/servers.json", dir);
  assert_int_equal(ccci_pool_drain_load(&p, path, &err), 0);
  assert_null(err);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"version\":1,\"drained\":[\"a\"]}\n", f);
  fclose(f);
  assert_int_equal(ccci_pool_drain_load(&p, path, &err), 0);
  assert_true(ccci_pool_find(&p, "a")->drained);
  assert_false(ccci_pool_find(&p, "b")->drained);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("garbage", f);
  fclose(f);
  assert_int_equal(ccci_pool_drain_load(&p, path, &err), -EINVAL);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "line 1"));
  free(err);
  unlink(path);
  free(path);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(dir);
  ccci_pool_close(&q);
  ccci_pool_close(&p);
}

static void test_json(void **state)
{
  struct ccci_pool p;
  struct ccci_pool_server *s;
  json_t *j;
  char *t;
  (void)state;

  ccci_pool_init(&p);
  merge(&p, "a:2:heavy,arm64");
  s = ccci_pool_find(&p, "a");
  ccci_pool_take(&p, "a", true);
  j = ccci_pool_server_json(s, 4, 0);
  t = json_dumps(j, JSON_PRESERVE_ORDER);
  assert_string_equal(
      t, "{\"name\": \"a\", \"capacity\": 2, \"running\": 1, \"queued\": 4, "
         "\"healthy\": true, \"drained\": false, \"removed\": false, "
         "\"labels\": [\"heavy\", \"arm64\"], \"domain_suffix\": "
         "\"ci.example\", \"gateway\": null, \"connection_errors\": 0, "
         "\"connection_errors_total\": 0, \"runs_started\": 1, \"probes\": 0, "
         "\"probe_failures\": 0, \"next_probe_in_ms\": null, \"last_error\": "
         "null}");
  free(t);
  json_decref(j);
  (void)ccci_pool_feed(&p, "a", 0, 1, "i/o timeout", 1, 100, 500);
  j = ccci_pool_server_json(s, 0, 300);
  assert_false(json_is_true(json_object_get(j, "healthy")));
  assert_int_equal(json_integer_value(json_object_get(j, "next_probe_in_ms")),
                   300);
  assert_string_equal(json_string_value(json_object_get(j, "last_error")),
                      "i/o timeout");
  json_decref(j);
  ccci_pool_close(&p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merge_keeps_state),
      cmocka_unit_test(test_health),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_drain_file),
      cmocka_unit_test(test_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
