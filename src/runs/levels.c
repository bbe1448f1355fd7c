/* The level ladder and the tier table: names, rungs and the level rule. */
#include "ccci/runs/levels.h"

#include <stdio.h>
#include <string.h>

struct tier_row {
  const char *name;
  int rung;
  const char *doc;
};

static const struct tier_row tiers[CCCI_TIER_COUNT] = {
#define TIER_ROW(id, name, rung, doc) {name, rung, doc},
    CCCI_TIERS(TIER_ROW)
#undef TIER_ROW
};

struct status_row {
  const char *name;
  const char *doc;
  bool failed;
};

static const struct status_row statuses[CCCI_TS_COUNT] = {
    {NULL, NULL, false},
#define STATUS_ROW(id, name, doc, failed) {name, doc, failed},
    CCCI_TIER_STATUSES(STATUS_ROW)
#undef STATUS_ROW
};

static const char *const level_names[CCCI_LEVEL_MAX + 1] = {
#define LEVEL_NAME(n, name) [n] = name,
    CCCI_LEVELS(LEVEL_NAME)
#undef LEVEL_NAME
};

static const char *const level_texts[CCCI_LEVEL_MAX + 1] = {
#define LEVEL_TEXT(n, name) [n] = "L" #n,
    CCCI_LEVELS(LEVEL_TEXT)
#undef LEVEL_TEXT
};

static bool tier_ok(enum ccci_tier t)
{
  return (int)t >= 0 && t < CCCI_TIER_COUNT;
}

static bool status_ok(enum ccci_tier_status s)
{
  return (int)s > (int)CCCI_TS_NONE && s < CCCI_TS_COUNT;
}

const char *ccci_tier_name(enum ccci_tier t)
{
  return tier_ok(t) ? tiers[t].name : NULL;
}

int ccci_tier_parse(const char *s)
{
  int i;
  if (s == NULL)
    return -1;
  for (i = 0; i < CCCI_TIER_COUNT; i++)
    if (strcmp(s, tiers[i].name) == 0)
      return i;
  return -1;
}

int ccci_tier_rung(enum ccci_tier t)
{
  return tier_ok(t) ? tiers[t].rung : -1;
}

const char *ccci_tier_doc(enum ccci_tier t)
{
  return tier_ok(t) ? tiers[t].doc : NULL;
}

const char *ccci_tier_status_name(enum ccci_tier_status s)
{
  return status_ok(s) ? statuses[s].name : NULL;
}

int ccci_tier_status_parse(const char *s)
{
  int i;
  if (s == NULL)
    return -1;
  for (i = CCCI_TS_NONE + 1; i < CCCI_TS_COUNT; i++)
    if (strcmp(s, statuses[i].name) == 0)
      return i;
  return -1;
}

const char *ccci_tier_status_doc(enum ccci_tier_status s)
{
  return status_ok(s) ? statuses[s].doc : NULL;
}

bool ccci_tier_status_failed(enum ccci_tier_status s)
{
  return status_ok(s) && statuses[s].failed;
}

/* Did every tier of rung @p rung pass? */
static bool rung_passed(const enum ccci_tier_status st[CCCI_TIER_COUNT],
                        int rung, int *blocker)
{
  int t;
  for (t = 0; t < CCCI_TIER_COUNT; t++)
    if (tiers[t].rung == rung && st[t] != CCCI_TS_PASS) {
      *blocker = t;
      return false;
    }
  return true;
}

/* The level and the tier that stops the climb (-1: none). */
static int climb(const enum ccci_tier_status st[CCCI_TIER_COUNT], bool quick,
                 int *blocker)
{
  int top = quick ? CCCI_LEVEL_QUICK_MAX : CCCI_LEVEL_MAX, level = 0;
  *blocker = -1;
  if (st[CCCI_TIER_DEPLOY] != CCCI_TS_PASS) {
    *blocker = CCCI_TIER_DEPLOY;
    return 0;
  }
  while (level < top && rung_passed(st, level + 1, blocker))
    level++;
  return level;
}

int ccci_level_compute(const enum ccci_tier_status st[CCCI_TIER_COUNT],
                       bool quick)
{
  int blocker;
  return climb(st, quick, &blocker);
}

int ccci_level_blocker(const enum ccci_tier_status st[CCCI_TIER_COUNT],
                       bool quick)
{
  int blocker;
  (void)climb(st, quick, &blocker);
  return blocker;
}

int ccci_level_first_failed(const enum ccci_tier_status st[CCCI_TIER_COUNT])
{
  int t;
  for (t = 0; t < CCCI_TIER_COUNT; t++)
    if (ccci_tier_status_failed(st[t]))
      return t;
  return -1;
}

/* A byte a clause does not start or end with: blanks and controls. */
static bool blank(char c)
{
  return (unsigned char)c <= 0x20 || c == 0x7f;
}

void ccci_level_clause(const char *reason, char out[CCCI_LEVEL_CLAUSE_MAX + 8])
{
  size_t b, e, n, i;
  out[0] = '\0';
  if (reason == NULL)
    return;
  e = strcspn(reason, "\r\n");
  for (b = 0; b < e && blank(reason[b]); b++)
    ;
  while (e > b && (blank(reason[e - 1]) || reason[e - 1] == '.'))
    e--;
  n = e - b;
  if (n > CCCI_LEVEL_CLAUSE_MAX) {
    n = CCCI_LEVEL_CLAUSE_MAX;
    while (n > 0 && ((unsigned char)reason[b + n] & 0xC0) == 0x80)
      n--;
  }
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)reason[b + i];
    out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  out[n] = '\0';
  if (n < e - b)
    memcpy(out + n, "…", sizeof("…"));
}

/* What a blocking tier's status says of it. */
static const char *verb(enum ccci_tier_status s)
{
  switch (s) {
  case CCCI_TS_FAIL:
    return "failed";
  case CCCI_TS_SKIP:
    return "skipped";
  case CCCI_TS_ERROR:
    return "could not run";
  case CCCI_TS_CANCELLED:
    return "cancelled";
  case CCCI_TS_TIMEOUT:
    return "timed out";
  default:
    return "did not run";
  }
}

/* The tiers a quick run can prove ("install"). */
static void quick_tiers(char *out, size_t n)
{
  int t;
  size_t k = 0;
  out[0] = '\0';
  for (t = 0; t < CCCI_TIER_COUNT; t++)
    if (tiers[t].rung >= 1 && tiers[t].rung <= CCCI_LEVEL_QUICK_MAX && k < n)
      k += (size_t)snprintf(out + k, n - k, "%s%s", k > 0 ? " and " : "",
                            tiers[t].name);
}

void ccci_level_explain(int level,
                        const enum ccci_tier_status st[CCCI_TIER_COUNT],
                        const char *const reasons[CCCI_TIER_COUNT], bool quick,
                        char out[CCCI_LEVEL_EXPLAIN_MAX])
{
  char clause[CCCI_LEVEL_CLAUSE_MAX + 8], qt[64];
  int blocker, computed;
  const char *lv = ccci_level_text(level);

  out[0] = '\0';
  if (lv == NULL)
    return;
  computed = climb(st, quick, &blocker);
  if (computed != level) {
    snprintf(out, CCCI_LEVEL_EXPLAIN_MAX,
             "%s: the harness's level (the "
             "tiers give %s)",
             lv, ccci_level_text(computed));
    return;
  }
  if (blocker < 0 && level == CCCI_LEVEL_MAX) {
    snprintf(out, CCCI_LEVEL_EXPLAIN_MAX, "%s: every tier passed", lv);
    return;
  }
  if (blocker < 0) {
    quick_tiers(qt, sizeof(qt));
    snprintf(out, CCCI_LEVEL_EXPLAIN_MAX, "%s: quick run (%s only)", lv, qt);
    return;
  }
  ccci_level_clause(reasons != NULL ? reasons[blocker] : NULL, clause);
  snprintf(out, CCCI_LEVEL_EXPLAIN_MAX, "%s: %s %s%s%s", lv,
           tiers[blocker].name, verb(st[blocker]),
           clause[0] == '\0'             ? ""
           : st[blocker] == CCCI_TS_SKIP ? ", "
                                         : ": ",
           clause);
}

const char *ccci_level_name(int level)
{
  return level >= 0 && level <= CCCI_LEVEL_MAX ? level_names[level] : NULL;
}

const char *ccci_level_text(int level)
{
  return level >= 0 && level <= CCCI_LEVEL_MAX ? level_texts[level] : NULL;
}

int ccci_level_parse(const char *s)
{
  int i;
  if (s == NULL)
    return -1;
  for (i = 0; i <= CCCI_LEVEL_MAX; i++)
    if (strcmp(s, level_texts[i]) == 0)
      return i;
  return -1;
}
