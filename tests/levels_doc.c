/* Prints docs/levels.md from the tier table and the level rule of
 * include/ccci/runs/levels.h (ctest docs_levels_current checks the file is
 * current; the worked examples are computed, not written by hand). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ccci/runs/levels.h"

/* A worked example: one status letter per tier in run order (P pass,
 * F fail, S skip, E error, C cancelled, T timeout, - absent). */
struct example {
  const char *st;
  bool quick;
  const char *what;
};

static const struct example examples[] = {
    {"PPPPPP", false, "every tier passed"},
    {"PPPPPS", false, "the recipe has no tests of its own"},
    {"PPPSSP", false,
     "no backupbot label and BACKUP not set: backup and restore skipped"},
    {"PPPPFS", false, "the restore did not bring the marker back"},
    {"PFPPPP", false, "the upgrade failed, the PR head still installs"},
    {"PSPPPP", false, "no release to upgrade from: the upgrade is skipped"},
    {"PPFSSS", false, "the PR head does not answer on HEALTH_PATH"},
    {"FSSSSS", false, "the deploy failed: nothing else ran"},
    {"PPPCSS", false,
     "cancelled during the backup (the run's reason is "
     "`cancelled`: no level is reported)"},
    {"P-P---", true, "a quick run that passed"},
    {"P-F---", true, "a quick run whose install failed"},
};

static const char letters[] = "-PFSECT";

static void statuses(const char *s, enum ccci_tier_status st[CCCI_TIER_COUNT])
{
  int i;
  for (i = 0; i < CCCI_TIER_COUNT; i++)
    st[i] = (enum ccci_tier_status)(strchr(letters, s[i]) - letters);
}

static void tiers_of_rung(int rung, const char *sep)
{
  int t, n = 0;
  for (t = 0; t < CCCI_TIER_COUNT; t++)
    if (ccci_tier_rung((enum ccci_tier)t) == rung)
      printf("%s`%s`", n++ > 0 ? sep : "", ccci_tier_name((enum ccci_tier)t));
}

static void ladder(void)
{
  int l, r;
  printf("## The ladder\n\n"
         "| level | name | reached when these passed |\n"
         "|---|---|---|\n");
  for (l = 0; l <= CCCI_LEVEL_MAX; l++) {
    printf("| %s | %s | ", ccci_level_text(l), ccci_level_name(l));
    if (l == 0) {
      printf("nothing (the deploy did not pass, or the install did not) |\n");
      continue;
    }
    tiers_of_rung(0, ", ");
    for (r = 1; r <= l; r++) {
      printf(", ");
      tiers_of_rung(r, ", ");
    }
    printf(" |\n");
  }
  printf("\n");
}

static void tier_table(void)
{
  int t;
  printf("## The tiers, in run order\n\n"
         "| # | tier | rung | what it proves |\n"
         "|---|---|---|---|\n");
  for (t = 0; t < CCCI_TIER_COUNT; t++) {
    int rung = ccci_tier_rung((enum ccci_tier)t);
    printf("| %d | `%s` | ", t + 1, ccci_tier_name((enum ccci_tier)t));
    if (rung == 0)
      printf("none (needed for every level)");
    else
      printf("%s", ccci_level_text(rung));
    printf(" | %s |\n", ccci_tier_doc((enum ccci_tier)t));
  }
  printf("\nThe upgrade runs before the install (both on one base deployment: "
         "the install\nchecks the upgraded PR head), yet the install is the "
         "lower rung.\n\n");
}

static void status_table(void)
{
  int s;
  printf("## Tier statuses\n\n"
         "| status | meaning | fails the run |\n"
         "|---|---|---|\n");
  for (s = CCCI_TS_NONE + 1; s < CCCI_TS_COUNT; s++)
    printf("| `%s` | %s | %s |\n",
           ccci_tier_status_name((enum ccci_tier_status)s),
           ccci_tier_status_doc((enum ccci_tier_status)s),
           ccci_tier_status_failed((enum ccci_tier_status)s) ? "yes" : "no");
  printf("\nA tier a run did not reach (a quick run's other tiers) is absent "
         "from\nresults.json.\n\n");
}

static void rules(void)
{
  printf(
      "## The rules\n\n"
      "- The level is the highest rung r such that every tier of every rung "
      "1..r passed,\n  and the deploy passed. Only `pass` counts: a tier "
      "skipped, failed, errored,\n  cancelled, timed out or absent caps the "
      "level below its rung.\n"
      "- A skipped tier caps the level below its rung even when the skip is "
      "the recipe's\n  choice (SKIP_TIERS, no backupbot label): the ladder "
      "says what was proven.\n"
      "- A quick run (`--quick`, `CCCI_QUICK=1`) reaches at most %s (%s).\n"
      "- A deploy that does not pass is %s: nothing else can be proven.\n"
      "- The harness writes the level into results.json as `\"L<n>\"` with "
      "`level_name`\n  (docs/results.schema.json); the daemon reports it for "
      "the reasons `success` and\n  `failure` only (the reasons table of "
      "docs/harness-contract.md): a run that was\n  cancelled, timed out, "
      "orphaned, superseded, broke the deploy budget or ended in\n  an error "
      "reports no level.\n\n",
      ccci_level_text(CCCI_LEVEL_QUICK_MAX),
      ccci_level_name(CCCI_LEVEL_QUICK_MAX), ccci_level_text(0));
}

static void worked_examples(void)
{
  size_t i;
  int t;
  printf("## Worked examples\n\n"
         "Computed by `ccci_level_compute`, `ccci_level_blocker` and "
         "`ccci_level_explain`.\n"
         "The explanation line (in `ccci show` and under the headline of "
         "the results\ncomment) names the tier that stops the climb, its "
         "status and the first line of\nits `reason`, cut at %d bytes "
         "(\"L2: backup skipped, no backupbot label\"); the\nexamples "
         "below have no reasons. When the harness's `level` is not the "
         "one its\ntiers give, the line says so instead (\"L3: the "
         "harness's level (the tiers give\nL1)\"): the daemon reports the "
         "harness's level as written.\n\n| ",
         CCCI_LEVEL_CLAUSE_MAX);
  for (t = 0; t < CCCI_TIER_COUNT; t++)
    printf("%s | ", ccci_tier_name((enum ccci_tier)t));
  printf("quick | level | what stops the climb | the explanation line | the "
         "case |\n|");
  for (t = 0; t < CCCI_TIER_COUNT + 5; t++)
    printf("---|");
  printf("\n");
  for (i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
    enum ccci_tier_status st[CCCI_TIER_COUNT];
    char why[CCCI_LEVEL_EXPLAIN_MAX];
    int level, blocker;
    statuses(examples[i].st, st);
    level = ccci_level_compute(st, examples[i].quick);
    blocker = ccci_level_blocker(st, examples[i].quick);
    printf("| ");
    for (t = 0; t < CCCI_TIER_COUNT; t++)
      printf("%s | ",
             st[t] == CCCI_TS_NONE ? "-" : ccci_tier_status_name(st[t]));
    printf("%s | %s %s | ", examples[i].quick ? "yes" : "no",
           ccci_level_text(level), ccci_level_name(level));
    if (blocker >= 0)
      printf("`%s`", ccci_tier_name((enum ccci_tier)blocker));
    else if (level < CCCI_LEVEL_MAX)
      printf("the quick cap");
    else
      printf("nothing");
    ccci_level_explain(level, st, NULL, examples[i].quick, why);
    printf(" | %s | %s |\n", why, examples[i].what);
  }
}

int main(void)
{
  printf(
      "# Levels\n\n"
      "<!-- Generated from include/ccci/runs/levels.h by tests/levels_doc.c; "
      "do not edit.\n     Regenerate: build/tests/levels_doc > "
      "docs/levels.md (ctest docs_levels_current\n     fails when this "
      "file is stale). -->\n\n"
      "A run's level says how far up the ladder the recipe was proven at "
      "the PR head\n(SPEC section 8). The tiers run in order on one base "
      "deployment; each tier\nbelongs to one rung, and a level needs every "
      "tier of its rung and of every rung\nbelow to pass.\n\n");
  ladder();
  tier_table();
  status_table();
  rules();
  worked_examples();
  return 0;
}
