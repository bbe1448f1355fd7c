/* A run's record: meta.json (versioned, closed sets of states and
 * reasons), its id, and its encoding. No I/O beyond the atomic write. */
#include "ccci/runs/run.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const states[] = {"queued", "waiting-lock", "running",
                                     "cancelling", "finished"};

/* The reason table as rows; row 0 is NONE (a run not finished). */
static const struct reason_row {
  const char *name;
  int exit_code;
  const char *status;
  bool keeps_level;
  const char *meaning, *level;
} reasons[CCCI_REASON_COUNT] = {{NULL, 2, "pending", false, NULL, NULL},
#define ROW(id, name, exit, status, keeps, meaning, level)                     \
  {name, exit, status, keeps, meaning, level},
                                CCCI_RUN_REASONS(ROW)
#undef ROW
};
static const char *const teardowns[] = {"none", "clean", "forced", "failed"};

const char *ccci_run_state_name(enum ccci_run_state s)
{
  return states[s];
}

const char *ccci_run_reason_name(enum ccci_run_reason r)
{
  return reasons[r].name;
}

const char *ccci_teardown_name(enum ccci_teardown t)
{
  return teardowns[t];
}

int ccci_run_state_parse(const char *s, enum ccci_run_state *out)
{
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(states); i++) {
    if (strcmp(s, states[i]) == 0) {
      *out = (enum ccci_run_state)i;
      return 0;
    }
  }
  return -EINVAL;
}

int ccci_run_reason_parse(const char *s, enum ccci_run_reason *out)
{
  size_t i;
  for (i = 1; i < CCCI_ARRAY_LEN(reasons); i++) {
    if (strcmp(s, reasons[i].name) == 0) {
      *out = (enum ccci_run_reason)i;
      return 0;
    }
  }
  return -EINVAL;
}

int ccci_run_reason_exit(enum ccci_run_reason r)
{
  return reasons[r].exit_code;
}

const char *ccci_run_reason_commit_status(enum ccci_run_reason r)
{
  return reasons[r].status;
}

bool ccci_run_reason_keeps_level(enum ccci_run_reason r)
{
  return reasons[r].keeps_level;
}

const char *ccci_run_reason_meaning(enum ccci_run_reason r)
{
  return reasons[r].meaning;
}

const char *ccci_run_reason_level_doc(enum ccci_run_reason r)
{
  return reasons[r].level;
}

void ccci_run_meta_clear(struct ccci_run_meta *m)
{
  free(m->repo);
  free(m->recipe);
  free(m->ref);
  free(m->sha);
  free(m->domain);
  free(m->daemon_instance);
  free(m->server);
  json_decref(m->trigger);
  ccci_strlist_clear(&m->place_servers);
  ccci_strlist_clear(&m->place_labels);
  m->repo = m->recipe = m->ref = m->sha = m->domain = NULL;
  m->daemon_instance = m->server = NULL;
  m->trigger = NULL;
}

static json_t *str_or_null(const char *s)
{
  return s != NULL ? json_string(s) : json_null();
}

static json_t *time_or_null(time_t t)
{
  char buf[32];
  if (t == 0)
    return json_null();
  ccci_rfc3339(t, buf);
  return json_string(buf);
}

static json_t *strlist_json(const struct ccci_strlist *l)
{
  json_t *a = json_array();
  size_t i;
  for (i = 0; i < l->n; i++)
    json_array_append_new(a, json_string(l->v[i]));
  return a;
}

json_t *ccci_run_meta_to_json(const struct ccci_run_meta *m)
{
  json_t *j = json_object();
  json_object_set_new(j, "version", json_integer(CCCI_META_VERSION));
  json_object_set_new(j, "id", json_string(m->id));
  json_object_set_new(j, "number", json_integer((json_int_t)m->number));
  json_object_set_new(j, "repo", str_or_null(m->repo));
  json_object_set_new(j, "recipe", str_or_null(m->recipe));
  json_object_set_new(j, "ref", str_or_null(m->ref));
  json_object_set_new(j, "sha", str_or_null(m->sha));
  json_object_set_new(j, "pr", m->pr > 0 ? json_integer(m->pr) : json_null());
  json_object_set_new(j, "domain", str_or_null(m->domain));
  json_object_set_new(j, "quick", json_boolean(m->quick));
  json_object_set_new(j, "state", json_string(states[m->state]));
  json_object_set_new(j, "reason", str_or_null(reasons[m->reason].name));
  json_object_set_new(j, "trigger",
                      m->trigger ? json_incref(m->trigger) : json_object());
  json_object_set_new(j, "submitted_by_uid",
                      m->submitted_by_uid >= 0
                          ? json_integer(m->submitted_by_uid)
                          : json_null());
  json_object_set_new(j, "daemon_instance", str_or_null(m->daemon_instance));
  json_object_set_new(j, "created_at", time_or_null(m->created_at));
  json_object_set_new(j, "started_at", time_or_null(m->started_at));
  json_object_set_new(j, "finished_at", time_or_null(m->finished_at));
  json_object_set_new(j, "exit_code",
                      m->exit_code >= 0 ? json_integer(m->exit_code)
                                        : json_null());
  json_object_set_new(j, "signal",
                      m->signal > 0 ? json_integer(m->signal) : json_null());
  json_object_set_new(j, "teardown", json_string(teardowns[m->teardown]));
  json_object_set_new(j, "attempt", json_integer(m->attempt));
  json_object_set_new(j, "server", str_or_null(m->server));
  json_object_set_new(j, "placement",
                      json_pack("{s:o,s:o}", "servers",
                                strlist_json(&m->place_servers), "labels",
                                strlist_json(&m->place_labels)));
  return j;
}

/* ---- reading ---- */

struct rd {
  const json_t *j;
  char **err;
  int bad;
};

static const json_t *field(struct rd *rd, const char *key, json_type want,
                           bool nullable, const char *what)
{
  const json_t *v = json_object_get(rd->j, key);
  if (rd->bad)
    return NULL;
  if (v == NULL) {
    *rd->err = ccci_xasprintf("field '%s' is missing", key);
    rd->bad = 1;
    return NULL;
  }
  if (json_is_null(v) && nullable)
    return NULL;
  if (json_typeof(v) != want && !(want == JSON_TRUE && json_is_boolean(v))) {
    *rd->err = ccci_xasprintf("field '%s' must be %s%s", key, what,
                              nullable ? " or null" : "");
    rd->bad = 1;
    return NULL;
  }
  return v;
}

static char *get_str(struct rd *rd, const char *key, bool nullable)
{
  const json_t *v = field(rd, key, JSON_STRING, nullable, "a string");
  return v ? ccci_xstrdup(json_string_value(v)) : NULL;
}

static int64_t get_int(struct rd *rd, const char *key, bool nullable,
                       int64_t dflt)
{
  const json_t *v = field(rd, key, JSON_INTEGER, nullable, "an integer");
  return v ? (int64_t)json_integer_value(v) : dflt;
}

static time_t get_time(struct rd *rd, const char *key)
{
  const json_t *v = field(rd, key, JSON_STRING, true, "an RFC 3339 time");
  struct tm tm;
  const char *end;
  if (v == NULL)
    return 0;
  memset(&tm, 0, sizeof(tm));
  end = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == NULL || *end != '\0') {
    *rd->err = ccci_xasprintf("field '%s' must be an RFC 3339 UTC time like "
                              "2026-11-24T03:57:48Z",
                              key);
    rd->bad = 1;
    return 0;
  }
  return timegm(&tm);
}

/* placement.<key>: a list of strings into @p l. */
static void get_place_list(struct rd *rd, const json_t *p, const char *key,
                           struct ccci_strlist *l)
{
  const json_t *v = json_object_get(p, key), *e;
  size_t i;
  if (rd->bad || v == NULL)
    return;
  if (!json_is_array(v)) {
    *rd->err = ccci_xasprintf("field 'placement.%s' must be a list of "
                              "strings",
                              key);
    rd->bad = 1;
    return;
  }
  json_array_foreach(v, i, e)
  {
    if (!json_is_string(e)) {
      *rd->err = ccci_xasprintf("field 'placement.%s' must be a list of "
                                "strings",
                                key);
      rd->bad = 1;
      return;
    }
  }
  l->v = ccci_xcalloc(json_array_size(v) + 1, sizeof(char *));
  json_array_foreach(v, i, e) l->v[l->n++] = ccci_xstrdup(json_string_value(e));
}

/* `server` and `placement`, absent in files of older versions (a run not
 * placed yet, placed anywhere). */
static void get_pool_fields(struct rd *rd, struct ccci_run_meta *m)
{
  const json_t *v;
  if (rd->bad)
    return;
  if (json_object_get(rd->j, "server") != NULL)
    m->server = get_str(rd, "server", true);
  v = json_object_get(rd->j, "placement");
  if (v == NULL || rd->bad)
    return;
  if (!json_is_object(v)) {
    *rd->err = ccci_xstrdup("field 'placement' must be an object");
    rd->bad = 1;
    return;
  }
  get_place_list(rd, v, "servers", &m->place_servers);
  get_place_list(rd, v, "labels", &m->place_labels);
}

int ccci_run_meta_from_json(const json_t *j, struct ccci_run_meta *m,
                            char **err)
{
  struct rd rd = {j, err, 0};
  const json_t *v;
  char *s;

  memset(m, 0, sizeof(*m));
  m->exit_code = -1;
  m->submitted_by_uid = -1;
  *err = NULL;
  if (!json_is_object(j)) {
    *err = ccci_xstrdup("meta is not a JSON object");
    return -EINVAL;
  }
  if (get_int(&rd, "version", false, 0) != CCCI_META_VERSION && !rd.bad) {
    *err = ccci_xasprintf("field 'version' must be %d", CCCI_META_VERSION);
    return -EINVAL;
  }
  s = get_str(&rd, "id", false);
  if (s != NULL && !ccci_run_id_valid(s) && !rd.bad) {
    *err = ccci_xstrdup("field 'id' is not a valid run id");
    rd.bad = 1;
  }
  if (s != NULL)
    snprintf(m->id, sizeof(m->id), "%s", s);
  free(s);
  m->number = (uint64_t)get_int(&rd, "number", false, 0);
  m->repo = get_str(&rd, "repo", false);
  m->recipe = get_str(&rd, "recipe", false);
  m->ref = get_str(&rd, "ref", true);
  m->sha = get_str(&rd, "sha", true);
  m->pr = get_int(&rd, "pr", true, 0);
  m->domain = get_str(&rd, "domain", true);
  v = field(&rd, "quick", JSON_TRUE, false, "a boolean");
  m->quick = v != NULL && json_is_true(v);
  s = get_str(&rd, "state", false);
  if (s != NULL && ccci_run_state_parse(s, &m->state) < 0 && !rd.bad) {
    *err = ccci_xasprintf("field 'state' has the unknown state '%.40s'", s);
    rd.bad = 1;
  }
  free(s);
  s = get_str(&rd, "reason", true);
  if (s != NULL && ccci_run_reason_parse(s, &m->reason) < 0 && !rd.bad) {
    *err = ccci_xasprintf("field 'reason' has the unknown reason '%.40s'", s);
    rd.bad = 1;
  }
  free(s);
  if (!rd.bad &&
      (m->reason != CCCI_REASON_NONE) != (m->state == CCCI_RUN_FINISHED)) {
    *err = ccci_xstrdup("field 'reason' must be null exactly until the "
                        "state is 'finished'");
    rd.bad = 1;
  }
  v = field(&rd, "trigger", JSON_OBJECT, false, "an object");
  m->trigger = v ? json_deep_copy(v) : NULL;
  m->submitted_by_uid = get_int(&rd, "submitted_by_uid", true, -1);
  m->daemon_instance = get_str(&rd, "daemon_instance", true);
  m->created_at = get_time(&rd, "created_at");
  m->started_at = get_time(&rd, "started_at");
  m->finished_at = get_time(&rd, "finished_at");
  m->exit_code = (int)get_int(&rd, "exit_code", true, -1);
  m->signal = (int)get_int(&rd, "signal", true, 0);
  s = get_str(&rd, "teardown", false);
  if (s != NULL && !rd.bad) {
    size_t i;
    for (i = 0; i < CCCI_ARRAY_LEN(teardowns); i++)
      if (strcmp(s, teardowns[i]) == 0)
        m->teardown = (enum ccci_teardown)i;
    if (strcmp(s, teardowns[m->teardown]) != 0) {
      *err =
          ccci_xasprintf("field 'teardown' has the unknown value '%.40s'", s);
      rd.bad = 1;
    }
  }
  free(s);
  /* Older records have no attempt: they were the first. */
  v = json_object_get(j, "attempt");
  m->attempt = json_is_integer(v) && json_integer_value(v) > 0
                   ? (unsigned)json_integer_value(v)
                   : 1;
  get_pool_fields(&rd, m);
  if (rd.bad) {
    ccci_run_meta_clear(m);
    return -EINVAL;
  }
  return 0;
}

char *ccci_run_meta_text(const struct ccci_run_meta *m, size_t *len)
{
  json_t *j = ccci_run_meta_to_json(m);
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *t;
  size_t n;
  json_decref(j);
  if (s == NULL)
    return NULL;
  n = strlen(s);
  t = ccci_xmalloc(n + 2);
  memcpy(t, s, n);
  t[n] = '\n';
  t[n + 1] = '\0';
  free(s);
  *len = n + 1;
  return t;
}

int ccci_run_meta_write(const char *path, const struct ccci_run_meta *m)
{
  size_t n;
  char *t = ccci_run_meta_text(m, &n);
  int r;
  if (t == NULL)
    return -ENOMEM;
  r = ccci_write_file_atomic(path, t, n, 0640);
  free(t);
  return r;
}

int ccci_run_meta_read(const char *path, struct ccci_run_meta *m, char **err)
{
  char *text = NULL;
  size_t len;
  json_error_t je;
  json_t *j;
  int r;

  *err = NULL;
  memset(m, 0, sizeof(*m));
  r = ccci_read_file(path, 1024 * 1024, &text, &len);
  if (r < 0) {
    *err = ccci_xasprintf("cannot read: %s", strerror(-r));
    return r;
  }
  j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  free(text);
  if (j == NULL) {
    *err = ccci_xasprintf("line %d column %d: %s", je.line, je.column, je.text);
    return -EINVAL;
  }
  r = ccci_run_meta_from_json(j, m, err);
  json_decref(j);
  return r;
}

/* ---- ids ---- */

void ccci_run_id_next(uint64_t *last_ms, char out[CCCI_RUN_ID_MAX + 1])
{
  struct timespec ts;
  uint64_t ms;
  time_t secs;
  struct tm tm;

  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  if (ms <= *last_ms)
    ms = *last_ms + 1;
  *last_ms = ms;
  secs = (time_t)(ms / 1000u);
  gmtime_r(&secs, &tm);
  snprintf(out, CCCI_RUN_ID_MAX + 1, "%04d%02d%02d-%02d%02d%02d-%03u",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (unsigned)(ms % 1000u));
}

uint64_t ccci_run_id_ms(const char *id)
{
  struct tm tm;
  unsigned msec;
  int n = 0;

  memset(&tm, 0, sizeof(tm));
  if (strlen(id) != 19 ||
      sscanf(id, "%4d%2d%2d-%2d%2d%2d-%3u%n", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &msec,
             &n) != 7 ||
      n != 19)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (uint64_t)timegm(&tm) * 1000u + msec;
}

bool ccci_run_id_valid(const char *id)
{
  size_t n = 0;
  for (; *id != '\0'; id++, n++)
    if (!isalnum((unsigned char)*id) && *id != '-')
      return false;
  return n >= 1 && n <= CCCI_RUN_ID_MAX;
}
