/* results.json, the harness's report of a run: one strict reader. */
#include "ccci/runs/results.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void empty(struct ccci_results *r)
{
  memset(r, 0, sizeof(*r));
  r->level = -1;
  r->deploys = -1;
  r->duration_s = -1;
  r->deploy_budget_ok = r->teardown_clean = r->secrets_clean = -1;
}

/* A string member without a NUL inside (jansson keeps one), else NULL. */
static const char *plain_string(const json_t *v)
{
  const char *s = json_string_value(v);
  if (s == NULL || strlen(s) != json_string_length(v))
    return NULL;
  return s;
}

/* A copy of a free-text member, cut to CCCI_RESULTS_TEXT_MAX bytes at a
 * character boundary; NULL when not a string. */
static char *text_copy(const json_t *v)
{
  const char *s = plain_string(v);
  size_t n;
  if (s == NULL)
    return NULL;
  n = strlen(s);
  if (n > CCCI_RESULTS_TEXT_MAX) {
    n = CCCI_RESULTS_TEXT_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--; /* jansson's strings are valid UTF-8 */
  }
  return ccci_xstrndup(s, n);
}

static int boolean(const json_t *v)
{
  return json_is_boolean(v) ? json_is_true(v) : -1;
}

static double seconds(const json_t *v)
{
  return json_is_number(v) && json_number_value(v) >= 0 ? json_number_value(v)
                                                        : -1;
}

static int level_of(const json_t *lv)
{
  if (json_is_integer(lv) && json_integer_value(lv) >= 0 &&
      json_integer_value(lv) <= CCCI_LEVEL_MAX)
    return (int)json_integer_value(lv);
  return ccci_level_parse(plain_string(lv));
}

bool ccci_results_artifact_ok(const char *path)
{
  size_t i, n;
  bool start = true;
  if (path == NULL || strncmp(path, "artifacts/", 10) != 0)
    return false;
  n = strlen(path);
  if (n == 10 || n > CCCI_RESULTS_ARTIFACT_PATH_MAX)
    return false;
  for (i = 10; i < n; i++) {
    char c = path[i];
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_';
    if (c == '/' && !start) {
      start = true;
      continue;
    }
    if (!(word || (!start && (c == '.' || c == '-'))))
      return false;
    start = false;
  }
  return !start;
}

/* The artifact paths of the array @p v into @p out (see the header). */
static void artifacts_read(const json_t *v, struct ccci_results_artifacts *out)
{
  size_t i, k;
  const json_t *e;
  json_array_foreach(v, i, e)
  {
    const char *p = plain_string(e);
    bool dup = false;
    if (out->n == CCCI_RESULTS_ARTIFACTS_MAX)
      break;
    if (!ccci_results_artifact_ok(p))
      continue;
    for (k = 0; k < out->n && !dup; k++)
      dup = strcmp(out->path[k], p) == 0;
    if (!dup)
      out->path[out->n++] = ccci_xstrdup(p);
  }
}

static void artifacts_clear(struct ccci_results_artifacts *a)
{
  size_t i;
  for (i = 0; i < a->n; i++)
    free(a->path[i]);
  a->n = 0;
}

/* A step name as the log store takes it from a marker (SPEC section 6). */
static bool step_name_ok(const char *s)
{
  size_t i, n = s != NULL ? strlen(s) : 0;
  if (n == 0 || n > 32)
    return false;
  for (i = 0; i < n; i++) {
    char c = s[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
      return false;
  }
  return true;
}

/* The tier @p t named @p name into the next entry; false when it is not an
 * object with a string status. */
static bool tier_read(const char *name, const json_t *t,
                      struct ccci_results_tier *e)
{
  const char *s = plain_string(json_object_get(t, "status"));
  int st;
  if (s == NULL)
    return false;
  memset(e, 0, sizeof(*e));
  e->name = ccci_xstrdup(name);
  e->status = ccci_xstrdup(s);
  e->tier = ccci_tier_parse(name);
  st = ccci_tier_status_parse(s);
  e->st = st < 0 ? CCCI_TS_NONE : (enum ccci_tier_status)st;
  e->reason = text_copy(json_object_get(t, "reason"));
  e->duration_s = seconds(json_object_get(t, "duration_s"));
  e->data_checked = boolean(json_object_get(t, "data_checked"));
  s = plain_string(json_object_get(t, "step"));
  e->step = step_name_ok(s) ? ccci_xstrdup(s) : NULL;
  artifacts_read(json_object_get(t, "artifacts"), &e->artifacts);
  return true;
}

/* Known tiers first, in run order; the others keep their file order.
 * @p from holds @p n entries in file order; they move to @p to. */
static void run_order(struct ccci_results_tier *from, size_t n,
                      struct ccci_results_tier *to)
{
  size_t i, k = 0;
  int t;
  for (t = 0; t < CCCI_TIER_COUNT; t++)
    for (i = 0; i < n; i++)
      if (from[i].tier == t)
        to[k++] = from[i];
  for (i = 0; i < n; i++)
    if (from[i].tier < 0)
      to[k++] = from[i];
}

int ccci_results_parse(const char *text, size_t len, struct ccci_results *out)
{
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *tiers, *t, *lv, *inv;
  const char *name;
  struct ccci_results_tier *seen = NULL;
  bool complete;

  empty(out);
  if (!json_is_object(j)) {
    json_decref(j);
    return -EINVAL;
  }
  lv = json_object_get(j, "level");
  out->level = level_of(lv);
  out->quick = json_is_true(json_object_get(j, "quick"));
  if (json_is_integer(json_object_get(j, "deploys")) &&
      json_integer_value(json_object_get(j, "deploys")) >= 0)
    out->deploys = json_integer_value(json_object_get(j, "deploys"));
  out->duration_s = seconds(json_object_get(j, "duration_s"));
  inv = json_object_get(j, "invariants");
  out->deploy_budget_ok = boolean(json_object_get(inv, "deploy_budget_ok"));
  out->teardown_clean = boolean(json_object_get(inv, "teardown_clean"));
  out->secrets_clean = boolean(json_object_get(inv, "secrets_clean"));
  out->error = text_copy(json_object_get(j, "error"));
  artifacts_read(json_object_get(j, "artifacts"), &out->artifacts);
  tiers = json_object_get(j, "tiers");
  complete = lv != NULL && json_is_object(tiers) && json_object_size(tiers) > 0;
  if (json_is_object(tiers)) {
    out->tiers = ccci_xcalloc(json_object_size(tiers) + 1, sizeof(*out->tiers));
    seen = ccci_xcalloc(json_object_size(tiers) + 1, sizeof(*seen));
  }
  json_object_foreach(json_is_object(tiers) ? tiers : NULL, name, t)
  {
    struct ccci_results_tier *e = &seen[out->ntiers];
    if (!tier_read(name, t, e)) {
      complete = false;
      continue;
    }
    out->ntiers++;
    if (e->st == CCCI_TS_NONE)
      complete = false;
    else if (ccci_tier_status_failed(e->st))
      out->failed = true;
    if (e->tier >= 0)
      out->st[e->tier] = e->st;
  }
  run_order(seen, out->ntiers, out->tiers);
  free(seen);
  json_decref(j);
  if (out->error != NULL)
    out->failed = true;
  out->complete = complete;
  if (!complete)
    out->failed = false;
  return 0;
}

int ccci_results_read(const char *path, struct ccci_results *out)
{
  char *text = NULL;
  size_t len = 0;
  int r = ccci_read_file(path, CCCI_RESULTS_MAX_BYTES, &text, &len);

  empty(out);
  if (r == 0)
    r = ccci_results_parse(text, len, out);
  free(text);
  return r;
}

const struct ccci_results_tier *
ccci_results_first_failed(const struct ccci_results *r)
{
  size_t i;
  for (i = 0; i < r->ntiers; i++)
    if (ccci_tier_status_failed(r->tiers[i].st))
      return &r->tiers[i];
  return NULL;
}

const struct ccci_results_tier *ccci_results_tier(const struct ccci_results *r,
                                                  const char *name)
{
  size_t i;
  for (i = 0; name != NULL && i < r->ntiers; i++)
    if (strcmp(r->tiers[i].name, name) == 0)
      return &r->tiers[i];
  return NULL;
}

void ccci_results_explain(const struct ccci_results *r, int level,
                          char out[CCCI_LEVEL_EXPLAIN_MAX])
{
  const char *reasons[CCCI_TIER_COUNT] = {NULL};
  size_t i;
  for (i = 0; i < r->ntiers; i++)
    if (r->tiers[i].tier >= 0)
      reasons[r->tiers[i].tier] = r->tiers[i].reason;
  ccci_level_explain(level, r->st, reasons, r->quick, out);
}

void ccci_results_clear(struct ccci_results *r)
{
  size_t i;
  for (i = 0; i < r->ntiers; i++) {
    free(r->tiers[i].name);
    free(r->tiers[i].status);
    free(r->tiers[i].reason);
    free(r->tiers[i].step);
    artifacts_clear(&r->tiers[i].artifacts);
  }
  free(r->tiers);
  free(r->error);
  artifacts_clear(&r->artifacts);
  empty(r);
}
