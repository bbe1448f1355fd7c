/* The hook files' table, their lookup and docs/hooks.md. */
#include "ccci/harness/hooks.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ccci/runs/levels.h"

#define TEST_LIMIT "DEPLOY_TIMEOUT (default 15m), within the run's deadline"

static const struct ccci_hook_info hooks[CCCI_HOOK_COUNT] = {
    [CCCI_HOOK_INSTALL_STEPS] =
        {"install_steps.sh", true, false, CCCI_TIER_INSTALL,
         "once, when the base deployment is ready at the end of the deploy "
         "tier, before the upgrade and the install check",
         TEST_LIMIT,
         "the install tier fails with the hook's exit status; the tiers "
         "after deploy are skipped (the app is not set up)",
         "Set the app up the way its tests need it: create an admin user, "
         "load fixtures, run a first-run wizard (for example with `abra app "
         "run \"$CCCI_APP_DOMAIN\" app ...`). It runs on the base, so what "
         "it creates is data the upgrade, backup and restore carry."},
    [CCCI_HOOK_SETUP_CUSTOM] =
        {"setup_custom_tests.sh", true, false, CCCI_TIER_CUSTOM,
         "at the start of the custom tier, before the recipe's tests",
         TEST_LIMIT, "the custom tier ends as `error` (the tests did not run)",
         "Prepare what the recipe's own tests need: test users, API tokens, "
         "test data. What it prints is in the custom step's log."},
    [CCCI_HOOK_OPS] =
        {"ops.py", false, false, -1,
         "importable (`import ops`) by every Python test the harness runs: "
         "the test_<tier>.py files and the custom tests",
         "none of its own (it runs inside the tests)",
         "a test that cannot import it fails as that test",
         "Helpers shared by the recipe's tests. `PYTHONPATH` holds ccci's own "
         "`ccci_testlib` first (docs/testlib.md: the app URL, an HTTP client "
         "through `harness.gateway`, an `abra app run` wrapper, waiting "
         "helpers; a recipe's file of that name never replaces it), then the "
         "operator's overlay (so the operator's `ops.py` wins), then the "
         "recipe's `tests/`."},
    [CCCI_HOOK_COMPOSE] =
        {"compose.ccci.yml", false, false, CCCI_TIER_DEPLOY,
         "every deploy of the recipe itself (base, upgrade, install): copied "
         "into the recipe checkout's top directory and appended to "
         "`COMPOSE_FILE` (COMPOSE_FILES, or the app env's COMPOSE_FILE, or "
         "`compose.yml`)",
         "the deploy's (DEPLOY_TIMEOUT)",
         "a deploy it breaks fails the tier of that deploy",
         "A compose overlay for CI only: smaller resources, a test SMTP "
         "server, debug settings. Its `backupbot.backup` labels count."},
    [CCCI_HOOK_TEST_UPGRADE] =
        {"test_upgrade.py", false, true, CCCI_TIER_UPGRADE,
         "in the upgrade tier, after the redeploy of the PR head and its "
         "services running, instead of the generic check (HEALTH_PATH, the "
         "DATA_CHECK marker, the version labels)",
         TEST_LIMIT, "the upgrade tier fails (the level is at most L1)",
         "The recipe's own proof that an upgrade keeps the app working and "
         "its data (what install_steps.sh created on the base)."},
    [CCCI_HOOK_TEST_INSTALL] =
        {"test_install.py", false, true, CCCI_TIER_INSTALL,
         "in the install tier, once the PR head's services run, instead of "
         "the generic check (HEALTH_PATH answering)",
         TEST_LIMIT, "the install tier fails (the level is L0)",
         "The recipe's own proof that the PR head installs: log in, load "
         "a page that needs the database."},
    [CCCI_HOOK_TEST_BACKUP] =
        {"test_backup.py", false, true, CCCI_TIER_BACKUP,
         "in the backup tier, after `abra app backup create`, instead of the "
         "generic check (exactly one new snapshot)",
         TEST_LIMIT, "the backup tier fails (the level is at most L2)",
         "The recipe's own proof that the backup holds what it should."},
    [CCCI_HOOK_TEST_RESTORE] =
        {"test_restore.py", false, true, CCCI_TIER_RESTORE,
         "in the restore tier, after `abra app restore` and the services "
         "running, instead of the generic check (HEALTH_PATH, the DATA_CHECK "
         "marker written before the backup)",
         TEST_LIMIT, "the restore tier fails (the level is at most L2)",
         "The recipe's own proof that a restore brings the data back."},
};

const struct ccci_hook_info *ccci_hook_info(enum ccci_hook k)
{
  return (unsigned)k < CCCI_HOOK_COUNT ? &hooks[k] : NULL;
}

int ccci_hook_by_file(const char *file)
{
  int i;
  for (i = 0; i < CCCI_HOOK_COUNT; i++)
    if (strcmp(hooks[i].file, file) == 0)
      return i;
  return -1;
}

/* Whether @p path names something that is not a directory (a dangling link
 * counts: it is a hook that fails when used). */
static bool is_hook_file(const char *path)
{
  struct stat st;
  if (stat(path, &st) == 0)
    return !S_ISDIR(st.st_mode);
  return lstat(path, &st) == 0;
}

enum ccci_meta_source ccci_hook_find(const char *overlay_dir,
                                     const char *tests_dir, enum ccci_hook k,
                                     char **path)
{
  const char *dirs[2] = {overlay_dir, tests_dir};
  static const enum ccci_meta_source src[2] = {CCCI_META_FROM_OPERATOR,
                                               CCCI_META_FROM_RECIPE};
  size_t i;
  *path = NULL;
  if ((unsigned)k >= CCCI_HOOK_COUNT)
    return CCCI_META_FROM_DEFAULT;
  for (i = 0; i < 2; i++) {
    char *p;
    if (dirs[i] == NULL)
      continue;
    p = ccci_path_join(dirs[i], hooks[k].file);
    if (is_hook_file(p)) {
      *path = p;
      return src[i];
    }
    free(p);
  }
  return CCCI_META_FROM_DEFAULT;
}

char *ccci_hook_misnamed(const char *file)
{
  size_t n = strlen(file), i;
  int best = -1;
  size_t best_d = 3;

  if (ccci_hook_by_file(file) >= 0)
    return NULL;
  if (n > 8 && strncmp(file, "test_", 5) == 0 &&
      strcmp(file + n - 3, ".py") == 0) {
    char *stem = ccci_xstrndup(file + 5, n - 8);
    int t = ccci_tier_parse(stem);
    free(stem);
    if (t >= 0)
      return ccci_xasprintf(
          "%s: the %s tier has no check a test replaces (tier tests are "
          "test_upgrade.py, test_install.py, test_backup.py and "
          "test_restore.py); a custom test needs another name",
          file, ccci_tier_name((enum ccci_tier)t));
  }
  for (i = 0; i < CCCI_HOOK_COUNT; i++) {
    size_t d = ccci_edit_distance(file, hooks[i].file);
    if (d < best_d) {
      best_d = d;
      best = (int)i;
    }
  }
  if (best < 0)
    return NULL;
  return ccci_xasprintf("%s: not a hook file; did you mean %s? (as it is "
                        "named, the harness does not use it as one)",
                        file, hooks[best].file);
}

size_t ccci_hook_match_tests(const char *root, const char *pattern,
                             void (*each)(void *arg, const char *rel),
                             void *arg)
{
  char *pat = ccci_path_join(root, pattern);
  char *tests = ccci_path_join(root, "tests/");
  size_t tl = strlen(tests), rl = strlen(root), i, n = 0;
  glob_t g;

  if (glob(pat, 0, NULL, &g) == 0) {
    for (i = 0; i < g.gl_pathc; i++) {
      const char *p = g.gl_pathv[i], *base = strrchr(p, '/');
      if (strncmp(p, tests, tl) != 0 ||
          ccci_hook_by_file(base != NULL ? base + 1 : p) >= 0)
        continue;
      n++;
      if (each != NULL)
        each(arg, p + rl + (p[rl] == '/'));
    }
  }
  globfree(&g);
  free(tests);
  free(pat);
  return n;
}

char *ccci_hooks_docs(void)
{
  struct ccci_buf b;
  size_t i;
  int rc;

  ccci_buf_init(&b, SIZE_MAX);
  rc = ccci_buf_printf(
      &b,
      "# Hook files\n\n"
      "<!-- Generated by `ccci meta hooks` from the table in "
      "src/harness/hooks.c; ctest docs_hooks_current fails when this file "
      "differs. -->\n\n"
      "A recipe customises its CI run with optional files next to its "
      "`tests/recipe_meta.yml` (docs/recipe-meta.md). The harness looks for "
      "each file first in the operator's overlay, "
      "`<harness.overlays_dir>/<recipe>/<file>`, then in the recipe's own "
      "`tests/<file>`; the operator's copy wins, file by file. Both are "
      "copied at the run's start (`runs/<id>/snapshot/overlay/` and "
      "`runs/<id>/snapshot/tests/`): a push during the run changes "
      "nothing. `ccci meta check DIR` shows which copy a run would use.\n\n"
      "## What every hook gets\n\n"
      "- **Working directory**: `runs/<id>/snapshot`, which holds `tests/` "
      "and `overlay/`; a hook runs as `tests/<file>` or `overlay/<file>`.\n"
      "- **Environment**: the harness's own (docs/harness-contract.md: "
      "`CCCI_RUN_ID`, `CCCI_RECIPE`, `CCCI_SHA`, `CCCI_PR`, `CCCI_REPO`, "
      "`CCCI_SERVER`, `ABRA_DIR` of the run), and:\n"
      "  - `CCCI_APP_URL`: `https://<domain>` (`http://` with a plain-HTTP "
      "`harness.gateway`);\n"
      "  - `CCCI_APP_DOMAIN`, `CCCI_STACK`: the app's domain and its stack "
      "name;\n"
      "  - `CCCI_TIER`: the tier it runs in; `CCCI_HOOK`: its file name;\n"
      "  - `CCCI_GATEWAY`, `CCCI_GATEWAY_INSECURE`: how to reach the app "
      "(`host:port` of the swarm's Traefik, SNI and Host set to the "
      "domain; empty: DNS);\n"
      "  - `CCCI_RECIPE_CHECKOUT`: the recipe checkout abra deploys from;\n"
      "  - `CCCI_ARTIFACTS_DIR`: `runs/<id>/artifacts`, for files to keep "
      "(screenshots, dumps);\n"
      "  - `CCCI_HEALTH_PATH`: HEALTH_PATH; `CCCI_ABRA_RUN_TEMPLATE`: the "
      "`harness.abra.run` template as a JSON array, placeholders unexpanded "
      "(what `ccci_testlib.abra_run` uses);\n"
      "  - `PYTHONPATH`: ccci's `ccci_testlib` (`lib/`), `overlay/`, `tests/`, "
      "then "
      "what it was.\n"
      "  The git token (`CCCI_GIT_TOKEN_FILE`, `GIT_ASKPASS`) is not passed "
      "on.\n"
      "- **Input and output**: stdin is `/dev/null`; stdout and stderr go "
      "to the tier's step of the run log, through the redactor.\n"
      "- **Stopping**: each hook runs in its own process group; at its time "
      "limit, the run's deadline or a cancel the group gets SIGTERM, then "
      "SIGKILL 2 s later.\n"
      "- **Exit status**: 0 is success; anything else, a signal or the time "
      "limit is a failure, with the status in the tier's reason.\n"
      "- **Python tests** (`test_<tier>.py`) run as `TEST_RUNNER "
      "<file>` (default `python3 -m pytest -q`); they are never also run as "
      "custom tests.\n\n"
      "## The files\n\n"
      "| file | run | tier | when | time limit | on failure |\n"
      "|---|---|---|---|---|---|\n");
  for (i = 0; i < CCCI_HOOK_COUNT && rc == 0; i++) {
    const struct ccci_hook_info *k = &hooks[i];
    rc = ccci_buf_printf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", k->file,
                         k->executable     ? "executed (needs `chmod +x`)"
                         : k->run_by_tests ? "TEST_RUNNER"
                                           : "read",
                         k->tier >= 0 ? ccci_tier_name((enum ccci_tier)k->tier)
                                      : "-",
                         k->when, k->limit, k->failure);
  }
  if (rc == 0)
    rc = ccci_buf_printf(&b, "\n");
  for (i = 0; i < CCCI_HOOK_COUNT && rc == 0; i++)
    rc = ccci_buf_printf(&b, "### `%s`\n\n%s\n\n", hooks[i].file, hooks[i].doc);
  if (rc == 0)
    rc = ccci_buf_printf(
        &b, "## Names `ccci meta check` refuses\n\n"
            "- `test_deploy.py`, `test_custom.py`: those tiers have no check a "
            "test replaces.\n"
            "- A name one or two edits from a hook file (`test_instal.py`, "
            "`install-steps.sh`): the harness would not use it as the hook; "
            "rename it, to the hook's name or to a plainly different one.\n"
            "- `install_steps.sh` or `setup_custom_tests.sh` without the "
            "executable bit; a hook file that is a dangling link or not a "
            "regular file.\n"
            "- A misspelt `recipe_meta.yml` (`recipe_meta.yaml`).\n\n"
            "A hook file or `recipe_meta.yml` in the recipe's top directory "
            "instead of `tests/` is a warning: the harness does not look "
            "there.\n");
  (void)rc;
  return ccci_buf_detach(&b);
}
