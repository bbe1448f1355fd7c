/* The counters of `ccci status` as one struct of plain numbers, and their
 * rendering as the socket's JSON. */
#include "ccci/serve/counters.h"

#include <stddef.h>
#include <stdio.h>

#include "ccci/runs/run.h"

enum part { DAEMON, RUNS, FORGE, TAIL, WEB };
enum kind { NUMBER, FLAG, BY_STATE, BY_REASON, BY_VERDICT, LATENCY };

/* One key of the `counters` object and where its value is in the struct;
 * the table's order is the object's. */
struct key {
  const char *name;
  enum part part;
  enum kind kind;
  size_t off;
};

#define AT(field) offsetof(struct ccci_serve_counters, field)
#define NUM(name, part, field)                                                 \
  {                                                                            \
    name, part, NUMBER, AT(field)                                              \
  }

static const struct key keys[] = {
    NUM("ctl_clients", DAEMON, ctl.clients),
    NUM("ctl_accepted", DAEMON, ctl.accepted),
    NUM("ctl_requests", DAEMON, ctl.requests),
    NUM("ctl_errors", DAEMON, ctl.errors),
    NUM("ctl_too_large", DAEMON, ctl.too_large),
    NUM("config_reloads", DAEMON, config_reloads),
    NUM("config_reload_errors", DAEMON, config_reload_errors),
    {"runs_by_state", RUNS, BY_STATE, AT(runs.by_state)},
    {"runs_by_reason", RUNS, BY_REASON, AT(runs.by_reason)},
    NUM("queue_depth", RUNS, runs.queue_depth),
    NUM("runs_active", RUNS, runs.active),
    {"draining", RUNS, FLAG, AT(runs.draining)},
    NUM("servers", RUNS, runs.servers),
    NUM("servers_unhealthy", RUNS, runs.servers_unhealthy),
    NUM("servers_drained", RUNS, runs.servers_drained),
    NUM("secrets_values", RUNS, runs.secrets_values),
    NUM("secrets_patterns", RUNS, runs.secrets_patterns),
    {"secrets_problem", RUNS, FLAG, AT(runs.secrets_problem)},
    NUM("redaction_bytes", RUNS, runs.redaction_bytes),
    NUM("redaction_masked", RUNS, runs.redaction_masked),
    {"janitor_actions", RUNS, BY_VERDICT, AT(runs.janitor)},
    NUM("forge_polls", FORGE, forge.polls),
    NUM("forge_poll_errors", FORGE, forge.poll_errors),
    NUM("forge_requests", FORGE, forge.requests),
    NUM("forge_triggers", FORGE, forge.triggers),
    NUM("forge_unauthorised", FORGE, forge.unauthorised),
    {"forge_poll_latency", FORGE, LATENCY, AT(forge.poll_latency)},
    NUM("forge_poll_latency_ms_sum", FORGE, forge.poll_latency_ms),
    NUM("outbox_backlog", FORGE, forge.outbox_backlog),
    NUM("outbox_sent", FORGE, forge.sent),
    NUM("outbox_errors", FORGE, forge.send_errors),
    NUM("tail_clients", TAIL, tail.clients),
    NUM("tail_started", TAIL, tail.started),
    NUM("tail_lines", TAIL, tail.lines),
    NUM("tail_bytes_from_disk", TAIL, tail.from_disk),
    NUM("sse_clients", WEB, web.sse_clients),
    NUM("hooks", WEB, web.hooks),
    NUM("hooks_refused", WEB, web.hooks_refused),
    NUM("hook_triggers", WEB, web.hook_triggers),
};

void ccci_serve_counters_read(struct ccci_serve_counters *c,
                              struct ccci_runs *rs, struct ccci_forgebot *fb,
                              const struct ccci_tail *t,
                              const struct ccci_web *w)
{
  c->has_runs = rs != NULL;
  if (rs != NULL)
    ccci_runs_counters(rs, &c->runs);
  c->has_forge = fb != NULL;
  if (fb != NULL)
    ccci_forgebot_counters(fb, &c->forge);
  c->has_tail = t != NULL;
  if (t != NULL)
    ccci_tail_counters(t, &c->tail);
  c->has_web = w != NULL;
  if (w != NULL)
    ccci_web_counters(w, &c->web);
}

static bool has(const struct ccci_serve_counters *c, enum part p)
{
  switch (p) {
  case DAEMON:
    return true;
  case RUNS:
    return c->has_runs;
  case FORGE:
    return c->has_forge;
  case TAIL:
    return c->has_tail;
  case WEB:
    return c->has_web;
  }
  return false;
}

/* Every state, or every reason but NONE, by name, counted or not. */
static json_t *by_name(const uint64_t *n, size_t first, size_t count,
                       const char *(*name)(size_t))
{
  json_t *o = json_object();
  size_t i;
  for (i = first; i < count; i++)
    json_object_set_new(o, name(i), json_integer((json_int_t)n[i]));
  return o;
}

static const char *state_name(size_t i)
{
  return ccci_run_state_name((enum ccci_run_state)i);
}

static const char *reason_name(size_t i)
{
  return ccci_run_reason_name((enum ccci_run_reason)i);
}

static const char *verdict_name(size_t i)
{
  return ccci_janitor_verdict_name((enum ccci_janitor_verdict)i);
}

/* The poll latency buckets by upper bound in ms ("+Inf" last), not
 * cumulative. */
static json_t *latency(const uint64_t *n)
{
  static const uint64_t bounds[] = {CCCI_FORGEBOT_LATENCY_MS};
  json_t *o = json_object();
  char k[24];
  size_t i;
  for (i = 0; i <= CCCI_FORGEBOT_LATENCY_BUCKETS; i++) {
    if (i < CCCI_FORGEBOT_LATENCY_BUCKETS)
      snprintf(k, sizeof(k), "%llu", (unsigned long long)bounds[i]);
    else
      snprintf(k, sizeof(k), "+Inf");
    json_object_set_new(o, k, json_integer((json_int_t)n[i]));
  }
  return o;
}

json_t *ccci_serve_counters_json(const struct ccci_serve_counters *c)
{
  json_t *o = json_object();
  size_t i;

  for (i = 0; i < CCCI_ARRAY_LEN(keys); i++) {
    const struct key *k = &keys[i];
    const void *at = (const char *)c + k->off;
    json_t *v = NULL;

    if (!has(c, k->part))
      continue;
    switch (k->kind) {
    case NUMBER:
      v = json_integer((json_int_t) * (const uint64_t *)at);
      break;
    case FLAG:
      v = json_boolean(*(const bool *)at);
      break;
    case BY_STATE:
      v = by_name(at, 0, CCCI_RUN_STATE_COUNT, state_name);
      break;
    case BY_REASON:
      v = by_name(at, CCCI_REASON_NONE + 1, CCCI_REASON_COUNT, reason_name);
      break;
    case BY_VERDICT:
      v = by_name(at, CCCI_JANITOR_LEAVE + 1, CCCI_JANITOR_VERDICT_COUNT,
                  verdict_name);
      break;
    case LATENCY:
      v = latency(at);
      break;
    }
    json_object_set_new(o, k->name, v);
  }
  return o;
}
