/* The daemon's pool of swarm servers: the table, its merge on reload,
 * health, drain and the drain file's text. */
#include "ccci/runs/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Add @p s once. */
static void strlist_add_once(struct ccci_strlist *l, const char *s)
{
  if (!ccci_strlist_has(l, s))
    ccci_strlist_add(l, s);
}

static void strlist_del(struct ccci_strlist *l, const char *s)
{
  size_t i;
  for (i = 0; i < l->n; i++) {
    if (strcmp(l->v[i], s) == 0) {
      free(l->v[i]);
      memmove(&l->v[i], &l->v[i + 1], (l->n - i) * sizeof(char *));
      l->n--;
      return;
    }
  }
}

void ccci_pool_init(struct ccci_pool *p)
{
  memset(p, 0, sizeof(*p));
}

/* The configured part of @p s. */
static void conf_clear(struct ccci_pool_server *s)
{
  free(s->domain_suffix);
  free(s->gateway);
  ccci_strlist_clear(&s->labels);
  s->domain_suffix = s->gateway = NULL;
}

static void conf_set(struct ccci_pool_server *s,
                     const struct ccci_server_conf *c)
{
  conf_clear(s);
  s->capacity = c->capacity > 1024 ? 1024 : (unsigned)c->capacity;
  s->domain_suffix =
      ccci_xstrdup(c->domain_suffix != NULL ? c->domain_suffix : "");
  s->gateway = c->gateway != NULL ? ccci_xstrdup(c->gateway) : NULL;
  s->gateway_insecure = c->gateway_insecure;
  ccci_strlist_copy(&s->labels, &c->labels);
}

static void server_clear(struct ccci_pool_server *s)
{
  conf_clear(s);
  free(s->name);
  free(s->last_error);
  memset(s, 0, sizeof(*s));
}

void ccci_pool_close(struct ccci_pool *p)
{
  size_t i;
  for (i = 0; i < p->n; i++)
    server_clear(&p->v[i]);
  free(p->v);
  ccci_strlist_clear(&p->drained);
  memset(p, 0, sizeof(*p));
}

struct ccci_pool_server *ccci_pool_find(struct ccci_pool *p, const char *name)
{
  size_t i;
  if (name == NULL)
    return NULL;
  for (i = 0; i < p->n; i++)
    if (strcmp(p->v[i].name, name) == 0)
      return &p->v[i];
  return NULL;
}

void ccci_pool_merge(struct ccci_pool *p, const struct ccci_server_conf *v,
                     size_t n)
{
  struct ccci_pool_server *nv;
  size_t i, nn = 0;
  bool *kept = ccci_xcalloc(p->n ? p->n : 1, sizeof(bool));

  nv = ccci_xcalloc(n + p->n + 1, sizeof(*nv));
  /* The configuration's servers, in its order. */
  for (i = 0; i < n; i++) {
    struct ccci_pool_server *old = ccci_pool_find(p, v[i].name);
    if (old != NULL) {
      nv[nn] = *old;
      kept[old - p->v] = true;
      memset(&nv[nn].labels, 0, sizeof(nv[nn].labels));
      nv[nn].domain_suffix = nv[nn].gateway = NULL;
      ccci_strlist_clear(&old->labels);
      free(old->domain_suffix);
      free(old->gateway);
    } else {
      memset(&nv[nn], 0, sizeof(nv[nn]));
      nv[nn].name = ccci_xstrdup(v[i].name);
      nv[nn].drained = ccci_strlist_has(&p->drained, v[i].name);
    }
    nv[nn].removed = false;
    conf_set(&nv[nn], &v[i]);
    nn++;
  }
  /* Then the removed ones that still have runs. */
  for (i = 0; i < p->n; i++) {
    if (kept[i])
      continue;
    if (p->v[i].running == 0) {
      server_clear(&p->v[i]);
      continue;
    }
    nv[nn] = p->v[i];
    nv[nn].removed = true;
    nn++;
  }
  free(kept);
  free(p->v);
  p->v = nv;
  p->n = nn;
}

bool ccci_pool_closed(const struct ccci_pool_server *s)
{
  return s->drained || s->unhealthy || s->removed;
}

void ccci_pool_take(struct ccci_pool *p, const char *name, bool started)
{
  struct ccci_pool_server *s = ccci_pool_find(p, name);
  if (s == NULL)
    return;
  s->running++;
  if (started)
    s->runs_started++;
}

void ccci_pool_release(struct ccci_pool *p, const char *name)
{
  struct ccci_pool_server *s = ccci_pool_find(p, name);
  size_t i;
  if (s == NULL)
    return;
  if (s->running > 0)
    s->running--;
  if (!s->removed || s->running > 0)
    return;
  i = (size_t)(s - p->v);
  server_clear(s);
  memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(*p->v));
  p->n--;
}

uint64_t ccci_pool_backoff(uint64_t prev, uint64_t min_ms, uint64_t max_ms)
{
  uint64_t b = prev == 0 ? min_ms : prev * 2;
  if (prev > max_ms / 2)
    b = max_ms; /* doubling would pass the cap (or overflow) */
  if (b > max_ms)
    b = max_ms;
  if (b == 0)
    b = 1;
  return b;
}

uint64_t ccci_pool_jitter(uint64_t b, unsigned r)
{
  return b - b / 4 + (uint64_t)r % (b / 2 + 1);
}

enum ccci_pool_health
ccci_pool_feed(struct ccci_pool *p, const char *name, uint64_t reached,
               uint64_t connection_errors, const char *error,
               uint64_t unhealthy_after, uint64_t now, uint64_t first_probe_ms)
{
  struct ccci_pool_server *s = ccci_pool_find(p, name);
  if (s == NULL)
    return CCCI_POOL_SAME;
  s->connection_errors_total += connection_errors;
  if (reached > 0)
    s->fails = connection_errors;
  else
    s->fails += connection_errors;
  if (connection_errors > 0 && error != NULL) {
    free(s->last_error);
    s->last_error = ccci_xstrndup(error, CCCI_POOL_ERROR_MAX);
  }
  if (s->unhealthy || unhealthy_after == 0 || s->fails < unhealthy_after)
    return CCCI_POOL_SAME;
  s->unhealthy = true;
  s->backoff_ms = 0;
  s->next_probe_ms = now + first_probe_ms;
  return CCCI_POOL_UNHEALTHY;
}

void ccci_pool_probe_ended(struct ccci_pool_server *s, bool ok, uint64_t now,
                           uint64_t next_in_ms)
{
  s->probing = false;
  s->probes++;
  if (ok) {
    s->unhealthy = false;
    s->fails = 0;
    s->backoff_ms = 0;
    s->next_probe_ms = 0;
    return;
  }
  s->probe_failures++;
  s->next_probe_ms = now + next_in_ms;
}

int ccci_pool_set_drained(struct ccci_pool *p, const char *name, bool drained)
{
  struct ccci_pool_server *s = ccci_pool_find(p, name);
  if (s == NULL)
    return -ENOENT;
  s->drained = drained;
  if (drained)
    strlist_add_once(&p->drained, name);
  else
    strlist_del(&p->drained, name);
  return 0;
}

char *ccci_pool_drain_text(const struct ccci_pool *p, size_t *len)
{
  json_t *j = json_object(), *a = json_array();
  char *s, *t;
  size_t i, n;

  for (i = 0; i < p->drained.n; i++)
    json_array_append_new(a, json_string(p->drained.v[i]));
  json_object_set_new(j, "version", json_integer(CCCI_POOL_FILE_VERSION));
  json_object_set_new(j, "drained", a);
  s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
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

int ccci_pool_drain_parse(struct ccci_pool *p, const char *text, size_t len,
                          char **err)
{
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *a, *e;
  struct ccci_strlist names = {NULL, 0};
  size_t i;

  *err = NULL;
  if (j == NULL) {
    *err = ccci_xasprintf("line %d column %d: %s", je.line, je.column, je.text);
    return -EINVAL;
  }
  a = json_object_get(j, "drained");
  if (!json_is_object(j) || !json_is_integer(json_object_get(j, "version")) ||
      json_integer_value(json_object_get(j, "version")) !=
          CCCI_POOL_FILE_VERSION) {
    *err = ccci_xasprintf("field 'version' must be %d", CCCI_POOL_FILE_VERSION);
    json_decref(j);
    return -EINVAL;
  }
  if (!json_is_array(a)) {
    *err = ccci_xstrdup("field 'drained' must be a list of server names");
    json_decref(j);
    return -EINVAL;
  }
  json_array_foreach(a, i, e)
  {
    if (!json_is_string(e) || !ccci_valid_server_name(json_string_value(e))) {
      *err =
          ccci_xasprintf("field 'drained' item %zu must be a server name", i);
      ccci_strlist_clear(&names);
      json_decref(j);
      return -EINVAL;
    }
    strlist_add_once(&names, json_string_value(e));
  }
  json_decref(j);
  ccci_strlist_clear(&p->drained);
  p->drained = names;
  for (i = 0; i < p->n; i++)
    p->v[i].drained = ccci_strlist_has(&p->drained, p->v[i].name);
  return 0;
}

int ccci_pool_drain_load(struct ccci_pool *p, const char *path, char **err)
{
  char *text = NULL, *e = NULL;
  size_t len = 0;
  int rc;

  *err = NULL;
  rc = ccci_read_file(path, CCCI_POOL_FILE_MAX, &text, &len);
  if (rc == -ENOENT)
    return 0;
  if (rc < 0) {
    *err = ccci_xasprintf("%s: cannot read: %s", path, strerror(-rc));
    return rc;
  }
  rc = ccci_pool_drain_parse(p, text, len, &e);
  free(text);
  if (rc < 0) {
    *err = ccci_xasprintf("%s: %s", path, e);
    free(e);
  }
  return rc;
}

void ccci_pool_counts(const struct ccci_pool *p, uint64_t *unhealthy,
                      uint64_t *drained)
{
  size_t i;
  *unhealthy = *drained = 0;
  for (i = 0; i < p->n; i++) {
    *unhealthy += p->v[i].unhealthy;
    *drained += p->v[i].drained;
  }
}

static json_t *str_or_null(const char *s)
{
  return s != NULL ? json_string(s) : json_null();
}

json_t *ccci_pool_server_json(const struct ccci_pool_server *s, uint64_t queued,
                              uint64_t now)
{
  json_t *j = json_object(), *labels = json_array();
  size_t i;

  for (i = 0; i < s->labels.n; i++)
    json_array_append_new(labels, json_string(s->labels.v[i]));
  json_object_set_new(j, "name", json_string(s->name));
  json_object_set_new(j, "capacity", json_integer(s->capacity));
  json_object_set_new(j, "running", json_integer(s->running));
  json_object_set_new(j, "queued", json_integer((json_int_t)queued));
  json_object_set_new(j, "healthy", json_boolean(!s->unhealthy));
  json_object_set_new(j, "drained", json_boolean(s->drained));
  json_object_set_new(j, "removed", json_boolean(s->removed));
  json_object_set_new(j, "labels", labels);
  json_object_set_new(j, "domain_suffix", json_string(s->domain_suffix));
  json_object_set_new(j, "gateway", str_or_null(s->gateway));
  json_object_set_new(j, "connection_errors",
                      json_integer((json_int_t)s->fails));
  json_object_set_new(j, "connection_errors_total",
                      json_integer((json_int_t)s->connection_errors_total));
  json_object_set_new(j, "runs_started",
                      json_integer((json_int_t)s->runs_started));
  json_object_set_new(j, "probes", json_integer((json_int_t)s->probes));
  json_object_set_new(j, "probe_failures",
                      json_integer((json_int_t)s->probe_failures));
  json_object_set_new(
      j, "next_probe_in_ms",
      s->unhealthy && !s->probing
          ? json_integer((json_int_t)(s->next_probe_ms > now
                                          ? s->next_probe_ms - now
                                          : 0))
          : json_null());
  json_object_set_new(j, "last_error", str_or_null(s->last_error));
  return j;
}
