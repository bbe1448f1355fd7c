/* Unit tests of run.c: meta.json encoding, the strict reader's errors, and
 * run ids. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/runs/run.h"

static const char good[] =
    "{\"version\":1,\"id\":\"20261124-054848-357\",\"number\":3,"
    "\"repo\":\"local/hello\",\"recipe\":\"hello\",\"ref\":\"main\","
    "\"sha\":null,\"pr\":7,\"domain\":\"hello-l3.ci.local\",\"quick\":true,"
    "\"state\":\"finished\",\"reason\":\"timeout\",\"trigger\":{\"kind\":"
    "\"local\"},\"submitted_by_uid\":1000,\"daemon_instance\":\"abc\","
    "\"created_at\":\"2026-11-24T05:48:48Z\",\"started_at\":"
    "\"2026-11-24T05:48:49Z\",\"finished_at\":\"2026-11-24T05:49:00Z\","
    "\"exit_code\":143,\"signal\":null,\"teardown\":\"forced\","
    "\"attempt\":2,\"server\":\"b\",\"placement\":{\"servers\":"
    "[\"a\",\"b\"],\"labels\":[\"heavy\"]}}";

static json_t *load(const char *text)
{
  json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
  assert_non_null(j);
  return j;
}

static void test_roundtrip(void **state)
{
  struct ccci_run_meta m;
  json_t *j = load(good), *out;
  char *err = NULL;
  (void)state;

  assert_int_equal(ccci_run_meta_from_json(j, &m, &err), 0);
  assert_null(err);
  assert_string_equal(m.id, "20261124-054848-357");
  assert_int_equal(m.number, 3);
  assert_int_equal(m.pr, 7);
  assert_true(m.quick);
  assert_int_equal(m.state, CCCI_RUN_FINISHED);
  assert_int_equal(m.reason, CCCI_REASON_TIMEOUT);
  assert_int_equal(m.teardown, CCCI_TEARDOWN_FORCED);
  assert_int_equal(m.exit_code, 143);
  assert_int_equal(m.signal, 0);
  assert_int_equal(m.attempt, 2);
  assert_null(m.sha);
  assert_int_equal(m.finished_at - m.created_at, 12);
  assert_string_equal(m.server, "b");
  assert_int_equal(m.place_servers.n, 2);
  assert_string_equal(m.place_servers.v[1], "b");
  assert_int_equal(m.place_labels.n, 1);
  assert_string_equal(m.place_labels.v[0], "heavy");
  out = ccci_run_meta_to_json(&m);
  assert_true(json_equal(out, j));
  json_decref(out);
  ccci_run_meta_clear(&m);
  json_decref(j);
}

/* Replace the value of @p key in the good record and expect @p msg. */
static void expect_error(const char *key, const char *value, const char *msg)
{
  struct ccci_run_meta m;
  json_t *j = load(good);
  char *err = NULL;

  if (value == NULL)
    json_object_del(j, key);
  else
    json_object_set_new(j, key, load(value));
  assert_int_equal(ccci_run_meta_from_json(j, &m, &err), -EINVAL);
  assert_non_null(err);
  assert_string_equal(err, msg);
  free(err);
  json_decref(j);
}

static void test_errors_name_the_field(void **state)
{
  (void)state;
  expect_error("number", NULL, "field 'number' is missing");
  expect_error("repo", "[1]", "field 'repo' must be a string");
  expect_error("sha", "5", "field 'sha' must be a string or null");
  expect_error("quick", "\"yes\"", "field 'quick' must be a boolean");
  expect_error("state", "\"paused\"",
               "field 'state' has the unknown state 'paused'");
  expect_error("reason", "\"meh\"",
               "field 'reason' has the unknown reason 'meh'");
  expect_error("teardown", "\"maybe\"",
               "field 'teardown' has the unknown value 'maybe'");
  expect_error("created_at", "\"yesterday\"",
               "field 'created_at' must be an RFC 3339 UTC time like "
               "2026-11-24T03:57:48Z");
  expect_error("version", "2", "field 'version' must be 1");
  expect_error("id", "\"a b\"", "field 'id' is not a valid run id");
  expect_error("trigger", "null", "field 'trigger' must be an object");
}

/* A record of an older version has neither `server` nor `placement`: not
 * placed yet, anywhere; written back with both. */
static void test_old_record_without_pool_fields(void **state)
{
  struct ccci_run_meta m;
  json_t *j = load(good), *out;
  char *err = NULL;
  (void)state;

  json_object_del(j, "server");
  json_object_del(j, "placement");
  assert_int_equal(ccci_run_meta_from_json(j, &m, &err), 0);
  assert_null(m.server);
  assert_int_equal(m.place_servers.n, 0);
  assert_int_equal(m.place_labels.n, 0);
  out = ccci_run_meta_to_json(&m);
  assert_true(json_is_null(json_object_get(out, "server")));
  assert_int_equal(json_array_size(json_object_get(
                       json_object_get(out, "placement"), "servers")),
                   0);
  json_decref(out);
  ccci_run_meta_clear(&m);
  /* One list alone is fine too. */
  json_object_set_new(j, "placement", load("{\"labels\":[\"arm64\"]}"));
  json_object_set_new(j, "server", json_null());
  assert_int_equal(ccci_run_meta_from_json(j, &m, &err), 0);
  assert_null(m.server);
  assert_int_equal(m.place_servers.n, 0);
  assert_string_equal(m.place_labels.v[0], "arm64");
  ccci_run_meta_clear(&m);
  json_decref(j);
}

static void test_pool_fields_wrong_types(void **state)
{
  (void)state;
  expect_error("server", "3", "field 'server' must be a string or null");
  expect_error("placement", "[]", "field 'placement' must be an object");
  expect_error("placement", "{\"servers\":\"a\"}",
               "field 'placement.servers' must be a list of strings");
  expect_error("placement", "{\"labels\":[\"a\",1]}",
               "field 'placement.labels' must be a list of strings");
}

static void test_reason_only_when_finished(void **state)
{
  struct ccci_run_meta m;
  json_t *j = load(good);
  char *err = NULL;
  (void)state;

  json_object_set_new(j, "state", json_string("running"));
  assert_int_equal(ccci_run_meta_from_json(j, &m, &err), -EINVAL);
  assert_string_equal(err, "field 'reason' must be null exactly until the "
                           "state is 'finished'");
  free(err);
  json_object_set_new(j, "reason", json_null());
  assert_int_equal(ccci_run_meta_from_json(j, &m, &err), 0);
  assert_int_equal(m.reason, CCCI_REASON_NONE);
  ccci_run_meta_clear(&m);
  json_decref(j);
}

static void test_names_and_exit_codes(void **state)
{
  enum ccci_run_state s;
  enum ccci_run_reason r;
  (void)state;
  assert_string_equal(ccci_run_state_name(CCCI_RUN_WAITING_LOCK),
                      "waiting-lock");
  assert_int_equal(ccci_run_state_parse("cancelling", &s), 0);
  assert_int_equal(s, CCCI_RUN_CANCELLING);
  assert_int_equal(ccci_run_reason_parse("deploy-budget", &r), 0);
  assert_int_equal(ccci_run_reason_exit(r), 1);
  assert_int_equal(ccci_run_reason_exit(CCCI_REASON_SUCCESS), 0);
  assert_int_equal(ccci_run_reason_exit(CCCI_REASON_FAILURE), 1);
  assert_int_equal(ccci_run_reason_exit(CCCI_REASON_SUPERSEDED), 2);
  assert_int_equal(ccci_run_reason_parse("none", &r), -EINVAL);
  assert_null(ccci_run_reason_name(CCCI_REASON_NONE));
}

static void test_ids_sort_in_creation_order(void **state)
{
  char prev[CCCI_RUN_ID_MAX + 1] = "", id[CCCI_RUN_ID_MAX + 1];
  uint64_t last = 0;
  int i;
  (void)state;

  for (i = 0; i < 2000; i++) {
    ccci_run_id_next(&last, id);
    assert_true(ccci_run_id_valid(id));
    assert_true(strcmp(prev, id) < 0);
    assert_int_equal(ccci_run_id_ms(id), last);
    memcpy(prev, id, sizeof(id));
  }
  /* A clock behind the last id (stepped back): still after it. */
  last += 3600 * 1000;
  ccci_run_id_next(&last, id);
  assert_true(strcmp(prev, id) < 0);
  assert_int_equal(ccci_run_id_ms(id), last);
  assert_false(ccci_run_id_valid(""));
  assert_false(ccci_run_id_valid("a/b"));
  assert_false(ccci_run_id_valid("x12345678901234567890123456789012345678901"));
  assert_int_equal(ccci_run_id_ms("not-an-id"), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_errors_name_the_field),
      cmocka_unit_test(test_old_record_without_pool_fields),
      cmocka_unit_test(test_pool_fields_wrong_types),
      cmocka_unit_test(test_reason_only_when_finished),
      cmocka_unit_test(test_names_and_exit_codes),
      cmocka_unit_test(test_ids_sort_in_creation_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
