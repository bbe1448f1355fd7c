/* results.json, the harness's report of a run: one strict reader. */
#include "ccci/runs/results.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_status[] = {"pass", "fail", "skip", "error"};

static bool status_known(const char *s)
{
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(known_status); i++)
    if (strcmp(s, known_status[i]) == 0)
      return true;
  return false;
}

static void empty(struct ccci_results *r)
{
  memset(r, 0, sizeof(*r));
  r->level = -1;
}

int ccci_results_parse(const char *text, size_t len, struct ccci_results *out)
{
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *tiers, *t, *lv;
  const char *name;
  bool complete;

  empty(out);
  if (!json_is_object(j)) {
    json_decref(j);
    return -EINVAL;
  }
  lv = json_object_get(j, "level");
  if (json_is_integer(lv) && json_integer_value(lv) >= 0 &&
      json_integer_value(lv) <= 9)
    out->level = (int)json_integer_value(lv);
  tiers = json_object_get(j, "tiers");
  complete = lv != NULL && json_is_object(tiers) && json_object_size(tiers) > 0;
  if (json_is_object(tiers))
    out->tiers = ccci_xcalloc(json_object_size(tiers) + 1, sizeof(*out->tiers));
  json_object_foreach(json_is_object(tiers) ? tiers : NULL, name, t)
  {
    /* A string with a NUL inside is never a status (jansson keeps it). */
    json_t *st = json_object_get(t, "status");
    const char *s = json_string_value(st);
    if (s == NULL || strlen(s) != json_string_length(st)) {
      complete = false;
      continue;
    }
    out->tiers[out->ntiers].name = ccci_xstrdup(name);
    out->tiers[out->ntiers].status = ccci_xstrdup(s);
    out->ntiers++;
    if (!status_known(s))
      complete = false;
    else if (strcmp(s, "fail") == 0 || strcmp(s, "error") == 0)
      out->failed = true;
  }
  json_decref(j);
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

void ccci_results_clear(struct ccci_results *r)
{
  size_t i;
  for (i = 0; i < r->ntiers; i++) {
    free(r->tiers[i].name);
    free(r->tiers[i].status);
  }
  free(r->tiers);
  empty(r);
}
