/* Unit tests of counters.c: the `counters` object of `status` rendered from
 * the struct, key for key and in order, with and without its parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/serve/counters.h"

/* Every field a different number, so a key reading the wrong one shows. */
static void fill(struct ccci_serve_counters *c)
{
  size_t i;
  memset(c, 0, sizeof(*c));
  c->ctl.clients = 1;
  c->ctl.accepted = 2;
  c->ctl.requests = 3;
  c->ctl.errors = 4;
  c->ctl.too_large = 5;
  c->config_reloads = 6;
  c->config_reload_errors = 7;
  c->has_runs = true;
  for (i = 0; i < CCCI_RUN_STATE_COUNT; i++)
    c->runs.by_state[i] = 10 + i;
  for (i = 0; i < CCCI_REASON_COUNT; i++)
    c->runs.by_reason[i] = 20 + i;
  c->runs.queue_depth = 30;
  c->runs.active = 31;
  c->runs.draining = true;
  c->runs.servers = 90;
  c->runs.servers_unhealthy = 91;
  c->runs.servers_drained = 92;
  c->runs.secrets_values = 32;
  c->runs.secrets_patterns = 33;
  c->runs.secrets_problem = true;
  c->runs.redaction_bytes = 34;
  c->runs.redaction_masked = 35;
  for (i = 0; i < CCCI_JANITOR_VERDICT_COUNT; i++)
    c->runs.janitor[i] = 60 + i;
  c->has_forge = true;
  c->forge.polls = 40;
  c->forge.poll_errors = 41;
  c->forge.requests = 42;
  c->forge.triggers = 43;
  c->forge.unauthorised = 44;
  c->forge.outbox_backlog = 45;
  c->forge.sent = 46;
  c->forge.send_errors = 47;
  for (i = 0; i <= CCCI_FORGEBOT_LATENCY_BUCKETS; i++)
    c->forge.poll_latency[i] = 70 + i;
  c->forge.poll_latency_ms = 48;
  c->has_tail = true;
  c->tail.clients = 50;
  c->tail.started = 51;
  c->tail.lines = 52;
  c->tail.from_disk = 53;
  c->has_web = true;
  c->web.sse_clients = 80;
  c->web.hooks = 81;
  c->web.hooks_refused = 82;
  c->web.hook_triggers = 83;
}

static void expect(const struct ccci_serve_counters *c, const char *want)
{
  json_t *j = ccci_serve_counters_json(c);
  char *s = json_dumps(j, JSON_COMPACT);
  assert_string_equal(s, want);
  free(s);
  json_decref(j);
}

#define DAEMON_KEYS                                                            \
  "\"ctl_clients\":1,\"ctl_accepted\":2,\"ctl_requests\":3,"                   \
  "\"ctl_errors\":4,\"ctl_too_large\":5,\"config_reloads\":6,"                 \
  "\"config_reload_errors\":7"
#define RUNS_KEYS                                                              \
  "\"runs_by_state\":{\"queued\":10,\"waiting-lock\":11,\"running\":12,"       \
  "\"cancelling\":13,\"finished\":14},"                                        \
  "\"runs_by_reason\":{\"success\":21,\"failure\":22,"                         \
  "\"deploy-budget\":23,\"timeout\":24,\"cancelled\":25,\"orphaned\":26,"      \
  "\"superseded\":27,\"error\":28},"                                           \
  "\"queue_depth\":30,\"runs_active\":31,\"draining\":true,"                   \
  "\"servers\":90,\"servers_unhealthy\":91,\"servers_drained\":92,"            \
  "\"secrets_values\":32,\"secrets_patterns\":33,"                             \
  "\"secrets_problem\":true,\"redaction_bytes\":34,"                           \
  "\"redaction_masked\":35,\"janitor_actions\":{\"requeue\":61,"               \
  "\"detached\":62,\"stuck\":63,\"adopt\":64,\"orphan\":65}"
#define FORGE_KEYS                                                             \
  "\"forge_polls\":40,\"forge_poll_errors\":41,\"forge_requests\":42,"         \
  "\"forge_triggers\":43,\"forge_unauthorised\":44,"                           \
  "\"forge_poll_latency\":{\"50\":70,\"100\":71,\"250\":72,\"500\":73,"        \
  "\"1000\":74,\"2500\":75,\"5000\":76,\"10000\":77,\"+Inf\":78},"             \
  "\"forge_poll_latency_ms_sum\":48,\"outbox_backlog\":45,"                    \
  "\"outbox_sent\":46,\"outbox_errors\":47"
#define TAIL_KEYS                                                              \
  "\"tail_clients\":50,\"tail_started\":51,\"tail_lines\":52,"                 \
  "\"tail_bytes_from_disk\":53"
#define WEB_KEYS                                                               \
  "\"sse_clients\":80,\"hooks\":81,\"hooks_refused\":82,\"hook_triggers\":83"

static void test_all_parts(void **state)
{
  struct ccci_serve_counters c;
  (void)state;
  fill(&c);
  expect(&c, "{" DAEMON_KEYS "," RUNS_KEYS "," FORGE_KEYS "," TAIL_KEYS
             "," WEB_KEYS "}");
}

static void test_absent_parts(void **state)
{
  struct ccci_serve_counters c;
  (void)state;
  fill(&c);
  c.has_forge = false;
  expect(&c, "{" DAEMON_KEYS "," RUNS_KEYS "," TAIL_KEYS "," WEB_KEYS "}");
  c.has_web = false;
  expect(&c, "{" DAEMON_KEYS "," RUNS_KEYS "," TAIL_KEYS "}");
  c.has_runs = false;
  c.has_tail = false;
  expect(&c, "{" DAEMON_KEYS "}");
}

static void test_not_draining(void **state)
{
  struct ccci_serve_counters c;
  json_t *j;
  (void)state;
  fill(&c);
  c.runs.draining = false;
  j = ccci_serve_counters_json(&c);
  assert_true(json_is_false(json_object_get(j, "draining")));
  json_decref(j);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_parts),
      cmocka_unit_test(test_absent_parts),
      cmocka_unit_test(test_not_draining),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
