/* The HTTP front's small answers: the level badge of a recipe, the
 * Prometheus exposition of the status counters, and the health check
 * (docs/http.md, "Badge, metrics and health"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/runs/janitor.h"
#include "ccci/runs/levels.h"
#include "ccci/runs/run.h"
#include "ccci/runs/runs.h"
#include "ccci/serve/counters.h"
#include "web_int.h"

/* The largest /metrics answer (plus METRICS_PER_SERVER for each server of
 * the pool) and badge. */
#define METRICS_MAX (256 * 1024)
#define METRICS_PER_SERVER (4 * 1024)
#define BADGE_MAX (8 * 1024)

/* ---- the badge ---- */

/*
 * The advance of an ASCII character in Verdana at 11 px, in tenths of a
 * pixel (measured from the font's metrics, rounded); anything else counts as
 * a wide letter. Shields-style badges size their boxes from such a table.
 */
static unsigned char_width(unsigned char c)
{
  static const unsigned short w[95] = {
      /* ' ' ! " # $ % & ' ( ) * + , - . / */
      38, 43, 50, 90, 70, 121, 80, 29, 50, 50, 70, 90, 40, 50, 40, 50,
      /* 0-9 */
      70, 70, 70, 70, 70, 70, 70, 70, 70, 70,
      /* : ; < = > ? @ */
      50, 50, 90, 90, 90, 60, 110,
      /* A-Z */
      75, 76, 77, 85, 70, 63, 85, 83, 46, 50, 76, 61, 93, 83, 87, 66, 87, 77,
      75, 68, 81, 75, 109, 75, 68, 75,
      /* [ \ ] ^ _ ` */
      50, 50, 50, 90, 70, 70,
      /* a-z */
      66, 68, 58, 68, 66, 39, 68, 70, 30, 38, 65, 30, 107, 70, 67, 68, 68, 47,
      57, 43, 70, 65, 90, 65, 65, 58,
      /* { | } ~ */
      70, 50, 70, 90};
  if (c < 32 || c > 126)
    return 90;
  return w[c - 32];
}

/* The width in whole pixels of @p s in Verdana 11 px. */
static unsigned text_width(const char *s)
{
  unsigned t = 0;
  for (; *s != '\0'; s++)
    t += char_width((unsigned char)*s);
  return (t + 9) / 10;
}

/* Append @p s escaped for XML text and attribute values. */
static int xml_escape(struct ccci_buf *b, const char *s)
{
  int r = 0;
  for (; *s != '\0' && r == 0; s++) {
    switch (*s) {
    case '&':
      r = ccci_buf_append(b, "&amp;", 5);
      break;
    case '<':
      r = ccci_buf_append(b, "&lt;", 4);
      break;
    case '>':
      r = ccci_buf_append(b, "&gt;", 4);
      break;
    case '"':
      r = ccci_buf_append(b, "&quot;", 6);
      break;
    case '\'':
      r = ccci_buf_append(b, "&apos;", 6);
      break;
    default:
      /* Control characters are not allowed in XML 1.0. */
      if ((unsigned char)*s >= 0x20 || *s == '\t')
        r = ccci_buf_append(b, s, 1);
    }
  }
  return r;
}

static const char *level_name(int level)
{
  switch (level) {
#define X(n, name)                                                             \
  case n:                                                                      \
    return name;
    CCCI_LEVELS(X)
#undef X
  }
  return "?";
}

/* The colour of a level: red to bright green. */
static const char *level_colour(int level)
{
  static const char *const c[] = {"#e05d44", "#fe7d37", "#dfb317", "#a4a61d",
                                  "#4c1"};
  return level >= 0 && level <= CCCI_LEVEL_MAX ? c[level] : "#9f9f9f";
}

#define GREY "#9f9f9f"
#define RED "#e05d44"

/* Draw a flat badge: `ccci` on grey, @p msg on @p colour, @p title as the
 * tooltip. */
static int draw(struct ccci_buf *b, const char *msg, const char *colour,
                const char *title)
{
  const char *label = "ccci";
  unsigned lw = text_width(label) + 10, mw = text_width(msg) + 10;
  unsigned total = lw + mw;
  int r;

  r = ccci_buf_printf(b,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
                      "height=\"20\" role=\"img\" aria-label=\"",
                      total);
  r = r < 0 ? r : xml_escape(b, label);
  r = r < 0 ? r : ccci_buf_append(b, ": ", 2);
  r = r < 0 ? r : xml_escape(b, msg);
  r = r < 0 ? r : ccci_buf_append(b, "\"><title>", 9);
  r = r < 0 ? r : xml_escape(b, title);
  r = r < 0 ? r
            : ccci_buf_printf(
                  b,
                  "</title><linearGradient id=\"s\" x2=\"0\" y2=\"100%%\">"
                  "<stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/>"
                  "<stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>"
                  "<clipPath id=\"r\"><rect width=\"%u\" height=\"20\" "
                  "rx=\"3\" fill=\"#fff\"/></clipPath><g clip-path=\"url(#r)\">"
                  "<rect width=\"%u\" height=\"20\" fill=\"#555\"/>"
                  "<rect x=\"%u\" width=\"%u\" height=\"20\" fill=\"%s\"/>"
                  "<rect width=\"%u\" height=\"20\" fill=\"url(#s)\"/></g>"
                  "<g fill=\"#fff\" text-anchor=\"middle\" "
                  "font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" "
                  "font-size=\"11\">",
                  total, lw, lw, mw, colour, total);
  /* Each text twice: a faint shadow one pixel down, then the text. */
  r = r < 0 ? r
            : ccci_buf_printf(b,
                              "<text x=\"%u\" y=\"15\" fill=\"#010101\" "
                              "fill-opacity=\".3\">%s</text>"
                              "<text x=\"%u\" y=\"14\">%s</text>",
                              lw / 2, label, lw / 2, label);
  r = r < 0 ? r
            : ccci_buf_printf(b,
                              "<text x=\"%u\" y=\"15\" fill=\"#010101\" "
                              "fill-opacity=\".3\">",
                              lw + mw / 2);
  r = r < 0 ? r : xml_escape(b, msg);
  r = r < 0
          ? r
          : ccci_buf_printf(b, "</text><text x=\"%u\" y=\"14\">", lw + mw / 2);
  r = r < 0 ? r : xml_escape(b, msg);
  r = r < 0 ? r : ccci_buf_append(b, "</text></g></svg>\n", 18);
  return r;
}

/* FNV-1a, 64 bits: the ETag of a response's bytes. */
static uint64_t fnv1a(const char *p, size_t n)
{
  uint64_t h = 14695981039346656037ull;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* Does If-None-Match @p inm name @p etag (or "*")? Weak tags match too. */
static bool etag_matches(const char *inm, const char *etag)
{
  return inm != NULL && (strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL);
}

/* Choose the badge of recipe @p recipe: message, colour, tooltip and how
 * long it may be cached. */
static void badge_of(struct ccci_web *w, const char *recipe, char **msg,
                     const char **colour, char **title, int *max_age)
{
  struct ccci_runs *rs = ccci_web_runs(w);
  json_t *list = rs != NULL ? ccci_runs_list(rs, "finished", recipe) : NULL;
  json_t *run = list != NULL ? json_array_get(list, 0) : NULL;
  const char *id = json_string_value(json_object_get(run, "id"));
  const char *reason = json_string_value(json_object_get(run, "reason"));
  json_int_t pr = json_integer_value(json_object_get(run, "pr"));
  char prs[48] = "";
  int level;

  *max_age = 60;
  if (id == NULL) {
    *msg = ccci_xstrdup("unknown");
    *colour = GREY;
    *title = ccci_xstrdup("ccci: unknown (no finished run of this recipe)");
    json_decref(list);
    return;
  }
  if (pr > 0)
    snprintf(prs, sizeof(prs), "PR #%lld, ", (long long)pr);
  level = ccci_web_level(w, id);
  if (level >= 0) {
    *msg = ccci_xasprintf("L%d %s", level, level_name(level));
    *colour = level_colour(level);
  } else if (level == -2) {
    /* The index is still read at start: say so briefly. */
    *msg = ccci_xstrdup("\xe2\x80\xa6");
    *colour = GREY;
    *max_age = 5;
  } else {
    *msg = ccci_xasprintf("no level (%s)", reason != NULL ? reason : "?");
    *colour = RED;
  }
  *title = ccci_xasprintf("ccci: %s (%srun %s)", *msg, prs, id);
  json_decref(list);
}

void ccci_web_badge(struct ccci_web *w, struct ccci_http_req *r,
                    const char *const *arg)
{
  struct ccci_buf b;
  char *msg, *title, extra[160], etag[24];
  const char *colour;
  int max_age;

  badge_of(w, arg[0], &msg, &colour, &title, &max_age);
  ccci_buf_init(&b, BADGE_MAX);
  if (draw(&b, msg, colour, title) < 0) {
    free(msg);
    free(title);
    ccci_buf_close(&b);
    ccci_web_error(w, r, 500, "the badge is too large");
    return;
  }
  free(msg);
  free(title);
  snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", fnv1a(b.data, b.len));
  snprintf(extra, sizeof(extra), "Cache-Control: max-age=%d\r\nETag: %s\r\n",
           max_age, etag);
  if (etag_matches(ccci_http_header(r, "If-None-Match"), etag)) {
    ccci_buf_close(&b);
    ccci_http_respond(r, 304, NULL, extra, NULL, 0);
    return;
  }
  ccci_web_send(w, r, 200, "image/svg+xml", extra, &b, false);
}

/* ---- /metrics ---- */

/* One family's HELP and TYPE lines. */
static int family(struct ccci_buf *b, const char *name, const char *type,
                  const char *help)
{
  return ccci_buf_printf(b, "# HELP ccci_%s %s\n# TYPE ccci_%s %s\n", name,
                         help, name, type);
}

static int one(struct ccci_buf *b, const char *name, const char *type,
               const char *help, uint64_t v)
{
  int r = family(b, name, type, help);
  return r < 0 ? r : ccci_buf_printf(b, "ccci_%s %" PRIu64 "\n", name, v);
}

#define COUNTER(name, help, v)                                                 \
  do {                                                                         \
    if (r == 0)                                                                \
      r = one(b, name, "counter", help, v);                                    \
  } while (0)
#define GAUGE(name, help, v)                                                   \
  do {                                                                         \
    if (r == 0)                                                                \
      r = one(b, name, "gauge", help, v);                                      \
  } while (0)

static int runs_part(struct ccci_buf *b, const struct ccci_runs_counters *c)
{
  int r = family(b, "runs", "gauge", "Runs known, by state.");
  size_t i;

  for (i = 0; i < CCCI_RUN_STATE_COUNT && r == 0; i++)
    r = ccci_buf_printf(b, "ccci_runs{state=\"%s\"} %" PRIu64 "\n",
                        ccci_run_state_name((enum ccci_run_state)i),
                        c->by_state[i]);
  if (r == 0)
    r = family(b, "runs_by_reason", "gauge",
               "Runs known that have a reason, by reason.");
  for (i = CCCI_REASON_NONE + 1; i < CCCI_REASON_COUNT && r == 0; i++)
    r = ccci_buf_printf(b, "ccci_runs_by_reason{reason=\"%s\"} %" PRIu64 "\n",
                        ccci_run_reason_name((enum ccci_run_reason)i),
                        c->by_reason[i]);
  GAUGE("queue_depth", "Runs queued or waiting for a lock.", c->queue_depth);
  GAUGE("runs_active", "Runs holding a slot.", c->active);
  GAUGE("draining", "1 while the daemon drains (no new run starts).",
        c->draining ? 1 : 0);
  GAUGE("secrets_values", "Secret values the runs mask now.",
        c->secrets_values);
  GAUGE("secrets_patterns", "Patterns searched for to mask them.",
        c->secrets_patterns);
  GAUGE("secrets_problem", "1 while a secret file cannot be read.",
        c->secrets_problem ? 1 : 0);
  COUNTER("redaction_bytes_total", "Bytes of run output through the redactor.",
          c->redaction_bytes);
  COUNTER("redaction_masked_total", "Secret values masked in run output.",
          c->redaction_masked);
  if (r == 0)
    r = family(b, "janitor_actions_total", "counter",
               "Janitor decisions acted on, by verdict.");
  for (i = 0; i < CCCI_JANITOR_VERDICT_COUNT && r == 0; i++)
    r = ccci_buf_printf(
        b, "ccci_janitor_actions_total{verdict=\"%s\"} %" PRIu64 "\n",
        ccci_janitor_verdict_name((enum ccci_janitor_verdict)i), c->janitor[i]);
  return r;
}

/* Append @p s as a label value: backslash, double quote and line feed
 * escaped (the text format 0.0.4). */
static int label_value(struct ccci_buf *b, const char *s)
{
  int r = 0;
  for (; *s != '\0' && r == 0; s++) {
    if (*s == '\\')
      r = ccci_buf_append(b, "\\\\", 2);
    else if (*s == '"')
      r = ccci_buf_append(b, "\\\"", 2);
    else if (*s == '\n')
      r = ccci_buf_append(b, "\\n", 2);
    else
      r = ccci_buf_append(b, s, 1);
  }
  return r;
}

/* The per-server families of the pool's objects: name in the pool's JSON,
 * metric, type, help. */
static const struct {
  const char *key, *name, *type, *help;
} server_families[] = {
    {"capacity", "server_capacity", "gauge", "Runs at once on the server."},
    {"running", "server_running", "gauge", "Runs running on the server."},
    {"queued", "server_queued", "gauge",
     "Queued runs whose placement matches the server."},
    {"healthy", "server_healthy", "gauge",
     "1 while the server is healthy (0: unhealthy, probed again)."},
    {"drained", "server_drained", "gauge",
     "1 while the server is drained (takes no new run)."},
    {"runs_started", "server_runs_started_total", "counter",
     "Runs started on the server."},
    {"connection_errors_total", "server_connection_errors_total", "counter",
     "Calls of runs on the server that failed with a connection error."},
    {"probes", "server_probes_total", "counter", "Probes of the server."},
    {"probe_failures", "server_probe_failures_total", "counter",
     "Probes of the server that failed."},
};

static int servers_part(struct ccci_buf *b, const struct ccci_runs_counters *c,
                        const json_t *servers)
{
  size_t i, k;
  json_t *s;
  int r = 0;

  GAUGE("servers", "Servers in the pool (removed ones with runs too).",
        c->servers);
  GAUGE("servers_unhealthy", "Servers marked unhealthy.", c->servers_unhealthy);
  GAUGE("servers_drained", "Servers drained.", c->servers_drained);
  for (k = 0; k < CCCI_ARRAY_LEN(server_families) && r == 0; k++) {
    r = family(b, server_families[k].name, server_families[k].type,
               server_families[k].help);
    json_array_foreach(servers, i, s)
    {
      json_t *v = json_object_get(s, server_families[k].key);
      const char *name = json_string_value(json_object_get(s, "name"));
      uint64_t n = 0;
      if (json_is_true(v))
        n = 1;
      else if (json_is_integer(v) && json_integer_value(v) > 0)
        n = (uint64_t)json_integer_value(v);
      if (r != 0 || name == NULL)
        continue;
      r = ccci_buf_printf(b, "ccci_%s{server=\"", server_families[k].name);
      r = r < 0 ? r : label_value(b, name);
      r = r < 0 ? r : ccci_buf_printf(b, "\"} %" PRIu64 "\n", n);
    }
  }
  return r;
}

static int forge_part(struct ccci_buf *b,
                      const struct ccci_forgebot_counters *c)
{
  static const uint64_t bounds[] = {CCCI_FORGEBOT_LATENCY_MS};
  uint64_t cum = 0;
  size_t i;
  int r = 0;

  COUNTER("forge_polls_total", "Polls of a repo's comments done.", c->polls);
  COUNTER("forge_poll_errors_total", "Polls that failed.", c->poll_errors);
  COUNTER("forge_requests_total", "HTTP requests sent to the forge.",
          c->requests);
  COUNTER("forge_triggers_total", "Runs accepted from comments.", c->triggers);
  COUNTER("forge_unauthorised_total", "Triggers refused: not a member.",
          c->unauthorised);
  GAUGE("outbox_backlog", "Outbox entries waiting.", c->outbox_backlog);
  COUNTER("outbox_sent_total", "Outbox entries delivered.", c->sent);
  COUNTER("outbox_errors_total", "Failed outbox deliveries (retried).",
          c->send_errors);
  if (r == 0)
    r = family(b, "forge_poll_latency_seconds", "histogram",
               "Latency of the forge's answers to poll requests.");
  for (i = 0; i <= CCCI_FORGEBOT_LATENCY_BUCKETS && r == 0; i++) {
    cum += c->poll_latency[i];
    if (i < CCCI_FORGEBOT_LATENCY_BUCKETS)
      r = ccci_buf_printf(b,
                          "ccci_forge_poll_latency_seconds_bucket{le=\"%" PRIu64
                          ".%03" PRIu64 "\"} %" PRIu64 "\n",
                          bounds[i] / 1000, bounds[i] % 1000, cum);
    else
      r = ccci_buf_printf(b,
                          "ccci_forge_poll_latency_seconds_bucket{le=\"+Inf\"}"
                          " %" PRIu64 "\n",
                          cum);
  }
  if (r == 0)
    r = ccci_buf_printf(
        b,
        "ccci_forge_poll_latency_seconds_sum %" PRIu64 ".%03" PRIu64 "\n"
        "ccci_forge_poll_latency_seconds_count %" PRIu64 "\n",
        c->poll_latency_ms / 1000, c->poll_latency_ms % 1000, cum);
  return r;
}

static int tail_part(struct ccci_buf *b, const struct ccci_tail_counters *c)
{
  int r = 0;
  GAUGE("tail_clients", "Log tail clients now (socket).", c->clients);
  COUNTER("tail_started_total", "Log tails started.", c->started);
  COUNTER("tail_lines_total", "Log lines sent to tail clients.", c->lines);
  COUNTER("tail_bytes_from_disk_total",
          "Bytes read back from step files for tail clients.", c->from_disk);
  return r;
}

static int web_part(struct ccci_buf *b, const struct ccci_web_counters *c)
{
  unsigned i;
  int r = 0;
  GAUGE("http_connections", "HTTP connections open.", c->http.connections);
  COUNTER("http_connections_total", "HTTP connections accepted.",
          c->http.connections_total);
  COUNTER("http_refused_busy_total",
          "HTTP connections answered 503 past the cap.", c->http.refused_busy);
  COUNTER("http_timeouts_total", "HTTP connections closed by a deadline.",
          c->http.timeouts);
  COUNTER("http_bytes_out_total", "Bytes written to HTTP clients.",
          c->http.bytes_out);
  GAUGE("http_streams", "HTTP stream responses open.", c->http.streams);
  if (r == 0)
    r = family(b, "http_requests_total", "counter",
               "HTTP responses by status code (others by class, as 2xx).");
  for (i = 0; i < CCCI_HTTPD_NCODES && r == 0; i++)
    r = ccci_buf_printf(b,
                        "ccci_http_requests_total{code=\"%d\"} %" PRIu64 "\n",
                        ccci_httpd_code_at(i), c->http.by_code[i]);
  for (i = 1; i < 6 && r == 0; i++)
    r = ccci_buf_printf(b,
                        "ccci_http_requests_total{code=\"%uxx\"} %" PRIu64 "\n",
                        i, c->http.other_by_class[i]);
  GAUGE("sse_clients", "SSE streams open.", c->sse_clients);
  COUNTER("sse_started_total", "SSE streams started.", c->sse_started);
  COUNTER("sse_lines_total", "Log lines sent to SSE clients.", c->sse_lines);
  COUNTER("sse_dropped_total", "SSE clients closed for not keeping up.",
          c->sse_dropped);
  COUNTER("hooks_total", "Webhook requests with a good signature.", c->hooks);
  COUNTER("hooks_refused_total", "Webhook requests refused (401).",
          c->hooks_refused);
  COUNTER("hook_triggers_total", "Runs accepted through the webhook.",
          c->hook_triggers);
  return r;
}

void ccci_web_metrics(struct ccci_web *w, struct ccci_http_req *req,
                      const char *const *arg)
{
  const struct ccci_ops_env *ops = w->env.ops;
  struct ccci_ops_daemon d;
  struct ccci_serve_counters *c;
  struct ccci_buf buf, *b = &buf;
  json_t *servers;
  int r = 0;

  (void)arg;
  memset(&d, 0, sizeof(d));
  ops->daemon(ops->arg, &d);
  c = &d.counters;
  ccci_serve_counters_read(c, ops->runs, ops->forge, ops->tail, w);
  servers = ops->runs != NULL ? ccci_runs_servers(ops->runs) : json_array();
  ccci_buf_init(b, METRICS_MAX + json_array_size(servers) * METRICS_PER_SERVER);
  GAUGE("up", "1: the daemon is serving.", 1);
  GAUGE("uptime_seconds", "Seconds since the daemon started.", d.uptime_s);
  GAUGE("ctl_clients", "Control socket clients now.", c->ctl.clients);
  COUNTER("ctl_accepted_total", "Control socket clients accepted.",
          c->ctl.accepted);
  COUNTER("ctl_requests_total", "Control socket requests.", c->ctl.requests);
  COUNTER("ctl_errors_total", "Control socket requests that failed.",
          c->ctl.errors);
  COUNTER("ctl_too_large_total", "Control socket requests too large.",
          c->ctl.too_large);
  COUNTER("config_reloads_total", "Configuration reloads.", c->config_reloads);
  COUNTER("config_reload_errors_total", "Configuration reloads refused.",
          c->config_reload_errors);
  if (r == 0 && c->has_runs)
    r = runs_part(b, &c->runs);
  if (r == 0 && c->has_runs)
    r = servers_part(b, &c->runs, servers);
  json_decref(servers);
  if (r == 0 && c->has_forge)
    r = forge_part(b, &c->forge);
  if (r == 0 && c->has_tail)
    r = tail_part(b, &c->tail);
  if (r == 0)
    r = web_part(b, &c->web);
  if (r < 0) {
    ccci_buf_close(b);
    ccci_web_error(w, req, 500, "the metrics are too large");
    return;
  }
  ccci_web_send(w, req, 200, "text/plain; version=0.0.4; charset=utf-8",
                "Cache-Control: no-store\r\n", b, false);
}

/* ---- /healthz ---- */

void ccci_web_healthz(struct ccci_web *w, struct ccci_http_req *r,
                      const char *const *arg)
{
  const struct ccci_ops_env *ops = w->env.ops;
  struct ccci_ops_daemon d;
  struct ccci_runs_counters rc;
  struct ccci_buf b;
  char *why = NULL;

  (void)arg;
  memset(&d, 0, sizeof(d));
  ops->daemon(ops->arg, &d);
  if (w->stopping || d.stopping || ops->runs == NULL)
    why = ccci_xstrdup("stopping");
  else {
    ccci_runs_counters(ops->runs, &rc);
    if (rc.draining)
      why = ccci_xstrdup("draining");
    else if (rc.secrets_problem) {
      json_t *p = ccci_runs_problems(ops->runs);
      const char *s = json_string_value(json_array_get(p, 0));
      why = ccci_xasprintf("secrets: %s",
                           s != NULL ? s : "a secret file cannot be read");
      json_decref(p);
    }
  }
  ccci_buf_init(&b, 8192);
  if (ccci_buf_printf(&b, "%.4000s\n", why != NULL ? why : "ok") < 0)
    b.len = 0; /* cannot happen: the text is cut to fit */
  /* The problems name files, never values (as `ccci status` shows them);
   * masking is not asked, so it is said even while no secret is known. */
  ccci_web_send(w, r, why != NULL ? 503 : 200, "text/plain; charset=utf-8",
                "Cache-Control: no-store\r\n", &b, false);
  free(why);
}
