/* Unit tests of harness/meta: recipe_meta.yml's defaults, every key's
 * errors with line and column, records, the operator-over-recipe merge,
 * caps, and the accepted HTTP statuses. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ccci/harness/meta.h"
#include "tmpdir.h"

#define NAME "recipe_meta.yml"
#define BASE "/recipes/app/tests"

/* Parse @p yaml over fresh defaults as the recipe's file. */
static int parse(const char *yaml, struct ccci_meta *m, char **errors)
{
  ccci_meta_defaults(m);
  return ccci_meta_parse(NAME, BASE, yaml, strlen(yaml), CCCI_META_FROM_RECIPE,
                         m, errors);
}

static void assert_list(const struct ccci_strlist *l, const char *const *want,
                        size_t n)
{
  size_t i;
  assert_int_equal(l->n, n);
  for (i = 0; i < n; i++)
    assert_string_equal(l->v[i], want[i]);
  if (n > 0)
    assert_null(l->v[n]); /* usable as an argv */
}

static void test_defaults(void **state)
{
  static const char *const quick[] = {"install"};
  static const char *const tests[] = {"tests/test_*.py"};
  static const char *const runner[] = {"python3", "-m", "pytest", "-q"};
  struct ccci_meta m;
  char *errors = NULL;
  size_t i;

  (void)state;
  /* No file at all, a missing file and an empty one give the same. */
  assert_int_equal(
      ccci_meta_load(NULL, "/nonexistent/recipe_meta.yml", &m, &errors), 0);
  assert_null(errors);
  assert_null(m.upgrade_base_version);
  assert_int_equal(m.skip_tiers.n, 0);
  assert_list(&m.quick_tiers, quick, 1);
  assert_int_equal(m.ndeps, 0);
  assert_null(m.deps);
  assert_int_equal(m.env.n, 0);
  assert_int_equal(m.compose_files.n, 0);
  assert_int_equal(m.nsecrets, 0);
  assert_string_equal(m.health_path, "/");
  assert_int_equal(m.nhealth_status, 1);
  assert_int_equal(m.health_status[0].lo, 200);
  assert_int_equal(m.health_status[0].hi, 399);
  assert_int_equal(m.health_timeout_ms, 5 * 60 * 1000);
  assert_int_equal(m.deploy_timeout_ms, 15 * 60 * 1000);
  assert_int_equal(m.services.n, 0);
  assert_int_equal(m.backup, -1);
  assert_null(m.data_check_service);
  assert_null(m.data_check_write);
  assert_null(m.data_check_read);
  assert_list(&m.custom_tests, tests, 1);
  assert_list(&m.test_runner, runner, 4);
  assert_false(m.screenshot);
  assert_int_equal(m.timeout_ms, 0);
  assert_int_equal(m.servers.n, 0);
  assert_int_equal(m.server_labels.n, 0);
  for (i = 0; i < CCCI_META_NKEYS; i++) {
    assert_int_equal(m.origin[i].source, CCCI_META_FROM_DEFAULT);
    assert_int_equal(m.origin[i].line, 0);
  }
  ccci_meta_free(&m);
  assert_int_equal(parse("# nothing\n", &m, &errors), 0);
  assert_int_equal(m.backup, -1);
  ccci_meta_free(&m);
  ccci_meta_free(NULL);
}

static void test_every_key(void **state)
{
  static const char *const skip[] = {"upgrade", "custom"};
  static const char *const compose[] = {"compose.yml", "compose.smtp.yml"};
  static const char *const services[] = {"app", "db"};
  static const char *const runner[] = {"pytest", "-x"};
  static const char *const globs[] = {"tests/e2e/*.py"};
  struct ccci_meta m;
  char *errors = NULL;
  const char *yaml = "UPGRADE_BASE_VERSION: 1.2.0+2.4\n"
                     "SKIP_TIERS: [upgrade, custom]\n"
                     "QUICK_TIERS: [install, backup]\n"
                     "DEPS:\n"
                     "  - recipe: mariadb\n"
                     "    version: 2.0.1+10.11\n"
                     "    env: {MARIADB_DATABASE: app}\n"
                     "  - {recipe: redis}\n"
                     "ENV: {SMTP_HOST: mail.example.org, EMPTY: ~}\n"
                     "COMPOSE_FILES: [compose.yml, compose.smtp.yml]\n"
                     "SECRETS:\n"
                     "  db_password: {length: 32}\n"
                     "  api_key: {generate: false, value_file: key.txt}\n"
                     "  plain:\n"
                     "HEALTH_PATH: /healthz?x=1\n"
                     "HEALTH_STATUS: [200, 301-302, '404']\n"
                     "HEALTH_TIMEOUT: 90s\n"
                     "DEPLOY_TIMEOUT: 1h\n"
                     "SERVICES: [app, db]\n"
                     "BACKUP: false\n"
                     "DATA_CHECK: {service: app, write: 'echo {marker} > /f', "
                     "read: cat /f}\n"
                     "CUSTOM_TESTS: [tests/e2e/*.py]\n"
                     "TEST_RUNNER: [pytest, -x]\n"
                     "SCREENSHOT: true\n"
                     "TIMEOUT: 45m\n"
                     "SERVERS: [swarm-a, default]\n"
                     "SERVER_LABELS: [heavy, arm64]\n";
  static const char *const servers_want[] = {"swarm-a", "default"};
  static const char *const labels_want[] = {"heavy", "arm64"};

  (void)state;
  if (parse(yaml, &m, &errors) != 0)
    fail_msg("%s", errors);
  assert_string_equal(m.upgrade_base_version, "1.2.0+2.4");
  assert_list(&m.skip_tiers, skip, 2);
  assert_int_equal(m.quick_tiers.n, 2);
  assert_int_equal(m.ndeps, 2);
  assert_string_equal(m.deps[0].recipe, "mariadb");
  assert_string_equal(m.deps[0].version, "2.0.1+10.11");
  assert_int_equal(m.deps[0].env.n, 1);
  assert_string_equal(m.deps[0].env.keys[0], "MARIADB_DATABASE");
  assert_string_equal(m.deps[0].env.vals[0], "app");
  assert_string_equal(m.deps[1].recipe, "redis");
  assert_null(m.deps[1].version);
  assert_int_equal(m.deps[1].env.n, 0);
  assert_int_equal(m.env.n, 2);
  assert_string_equal(m.env.vals[1], "");
  assert_list(&m.compose_files, compose, 2);
  assert_int_equal(m.nsecrets, 3);
  assert_string_equal(m.secrets[0].name, "db_password");
  assert_int_equal(m.secrets[0].length, 32);
  assert_true(m.secrets[0].generate);
  assert_null(m.secrets[0].value_file);
  assert_string_equal(m.secrets[1].name, "api_key");
  assert_false(m.secrets[1].generate);
  /* Relative to the file's directory. */
  assert_string_equal(m.secrets[1].value_file, BASE "/key.txt");
  assert_string_equal(m.secrets[2].name, "plain");
  assert_int_equal(m.secrets[2].length, 0);
  assert_true(m.secrets[2].generate);
  assert_string_equal(m.health_path, "/healthz?x=1");
  assert_int_equal(m.nhealth_status, 3);
  assert_int_equal(m.health_status[1].lo, 301);
  assert_int_equal(m.health_status[1].hi, 302);
  assert_int_equal(m.health_status[2].lo, 404);
  assert_int_equal(m.health_timeout_ms, 90 * 1000);
  assert_int_equal(m.deploy_timeout_ms, 3600 * 1000);
  assert_list(&m.services, services, 2);
  assert_int_equal(m.backup, 0);
  assert_string_equal(m.data_check_service, "app");
  assert_string_equal(m.data_check_write, "echo {marker} > /f");
  assert_string_equal(m.data_check_read, "cat /f");
  assert_list(&m.custom_tests, globs, 1);
  assert_list(&m.test_runner, runner, 2);
  assert_true(m.screenshot);
  assert_int_equal(m.timeout_ms, 45 * 60 * 1000);
  assert_list(&m.servers, servers_want, 2);
  assert_list(&m.server_labels, labels_want, 2);
  assert_int_equal(m.origin[CCCI_META_SERVER_LABELS].line, 27);
  assert_int_equal(m.origin[CCCI_META_TIMEOUT].source, CCCI_META_FROM_RECIPE);
  assert_int_equal(m.origin[CCCI_META_TIMEOUT].line, 25);
  assert_int_equal(m.origin[CCCI_META_DEPS].line, 4);
  ccci_meta_free(&m);
  /* BACKUP: true is 1. */
  assert_int_equal(parse("BACKUP: True\n", &m, &errors), 0);
  assert_int_equal(m.backup, 1);
  ccci_meta_free(&m);
}

/* ---- errors: each exactly, with line and column ---- */

static const struct {
  const char *what;
  const char *yaml;
  const char *errors;
} bad[] = {
    {"the issue's misspelt key",
     "# recipe_meta.yml of hello\nDEPLOY_TIMEOUT: 10m\n"
     "UPGRADE_BASE_VERISON: 1.0.0+1.0\n",
     "recipe_meta.yml:3:1: unknown key 'UPGRADE_BASE_VERISON'; did you mean "
     "'UPGRADE_BASE_VERSION'?\n"},
    {"a lowercase key", "health_path: /\n",
     "recipe_meta.yml:1:1: unknown key 'health_path'; did you mean "
     "'HEALTH_PATH'?\n"},
    {"tag with a space", "UPGRADE_BASE_VERSION: 1.0 beta\n",
     "recipe_meta.yml:1:1: UPGRADE_BASE_VERSION: expected a release tag, like "
     "1.2.0+2.4, got '1.0 beta'\n"},
    {"tag given a list", "UPGRADE_BASE_VERSION: [1]\n",
     "recipe_meta.yml:1:1: UPGRADE_BASE_VERSION: expected a release tag, like "
     "1.2.0+2.4, got a list\n"},
    {"unknown tier, and deploy, which always runs",
     "SKIP_TIERS: [upgrade, deploy]\nQUICK_TIERS: [instal]\n",
     "recipe_meta.yml:1:23: SKIP_TIERS[1]: expected a list of tiers (upgrade, "
     "install, backup, restore, custom), got 'deploy'; deploy always runs (it "
     "is not skipped or chosen)\n"
     "recipe_meta.yml:2:15: QUICK_TIERS[0]: expected a list of tiers "
     "(upgrade, install, backup, restore, custom), got 'instal'; did you mean "
     "'install'?\n"},
    {"an unknown tier is named with the nearest",
     "SKIP_TIERS: [bakup, restor]\n",
     "recipe_meta.yml:1:14: SKIP_TIERS[0]: expected a list of tiers (upgrade, "
     "install, backup, restore, custom), got 'bakup'; did you mean 'backup'?\n"
     "recipe_meta.yml:1:21: SKIP_TIERS[1]: expected a list of tiers (upgrade, "
     "install, backup, restore, custom), got 'restor'; did you mean "
     "'restore'?\n"},
    {"tiers given a scalar", "SKIP_TIERS: custom\n",
     "recipe_meta.yml:1:1: SKIP_TIERS: expected a list of tiers (upgrade, "
     "install, backup, restore, custom), got a scalar\n"},
    {"DEPS given a mapping", "DEPS: {recipe: x}\n",
     "recipe_meta.yml:1:1: DEPS: expected a list of dependencies, each "
     "{recipe, version, env}, got a mapping\n"},
    {"a DEPS item with an unknown key",
     "DEPS:\n  - recipe: mariadb\n  - recipe: redis\n    verison: 1.0.0\n",
     "recipe_meta.yml:4:5: unknown key 'DEPS[1].verison'; did you mean "
     "'DEPS[1].version'?\n"},
    {"a DEPS item without its recipe", "DEPS:\n  - version: 1.0.0\n",
     "recipe_meta.yml:2:5: DEPS[0]: needs key 'recipe'\n"},
    {"DEPS items of the wrong kinds", "DEPS: [x, ~]\n",
     "recipe_meta.yml:1:8: DEPS[0]: expected a mapping of keys, got a "
     "scalar\n"
     "recipe_meta.yml:1:11: DEPS[1]: expected a mapping of keys, got "
     "nothing\n"},
    {"a DEPS item's bad values",
     "DEPS:\n  - recipe: 'no spaces'\n    env: {lower-case: 1}\n",
     "recipe_meta.yml:2:5: DEPS[0].recipe: expected a recipe name, like "
     "mariadb (lowercase letters, digits and '-', not at either end; at most "
     "61), got 'no spaces'\n"
     "recipe_meta.yml:3:11: DEPS[0].env: expected an environment variable "
     "name ([A-Za-z_][A-Za-z0-9_]*) as key\n"},
    {"DEPS recipe names that make no domain label",
     "DEPS: [{recipe: MariaDB}, {recipe: my_app}, {recipe: a.b}, {recipe: "
     "-x}, {recipe: matrix-synapse}]\n",
     "recipe_meta.yml:1:9: DEPS[0].recipe: expected a recipe name, like "
     "mariadb (lowercase letters, digits and '-', not at either end; at most "
     "61), got 'MariaDB'\n"
     "recipe_meta.yml:1:28: DEPS[1].recipe: expected a recipe name, like "
     "mariadb (lowercase letters, digits and '-', not at either end; at most "
     "61), got 'my_app'\n"
     "recipe_meta.yml:1:46: DEPS[2].recipe: expected a recipe name, like "
     "mariadb (lowercase letters, digits and '-', not at either end; at most "
     "61), got 'a.b'\n"
     "recipe_meta.yml:1:61: DEPS[3].recipe: expected a recipe name, like "
     "mariadb (lowercase letters, digits and '-', not at either end; at most "
     "61), got '-x'\n"},
    {"a DEPS item's duplicate key", "DEPS:\n  - recipe: a\n    recipe: b\n",
     "recipe_meta.yml:3:5: duplicate key 'DEPS[0].recipe' (first set at line "
     "2)\n"},
    {"ENV key", "ENV:\n  1X: y\n",
     "recipe_meta.yml:2:3: ENV: expected an environment variable name "
     "([A-Za-z_][A-Za-z0-9_]*) as key\n"},
    {"ENV value", "ENV: {A: {b: c}}\n",
     "recipe_meta.yml:1:7: ENV.A: expected a string, got a mapping\n"},
    {"compose files", "COMPOSE_FILES: [a:b.yml, ../x.yml, /abs.yml]\n",
     "recipe_meta.yml:1:17: COMPOSE_FILES[0]: expected a list of compose "
     "files of the recipe, like compose.smtp.yml (relative, no ':'), got "
     "'a:b.yml'\n"
     "recipe_meta.yml:1:26: COMPOSE_FILES[1]: expected a list of compose "
     "files of the recipe, like compose.smtp.yml (relative, no ':'), got "
     "'../x.yml'\n"
     "recipe_meta.yml:1:36: COMPOSE_FILES[2]: expected a list of compose "
     "files of the recipe, like compose.smtp.yml (relative, no ':'), got "
     "'/abs.yml'\n"},
    {"a secret's unknown key", "SECRETS:\n  db_password:\n    lenght: 8\n",
     "recipe_meta.yml:3:5: unknown key 'SECRETS.db_password.lenght'; did you "
     "mean 'SECRETS.db_password.length'?\n"},
    {"a secret's bad name and values",
     "SECRETS:\n  DB-Pass: {}\n  ok: {length: 5000, generate: maybe}\n",
     "recipe_meta.yml:2:3: SECRETS: expected a secret name as abra writes it "
     "([a-z0-9_], at most 64) as key\n"
     "recipe_meta.yml:3:8: SECRETS.ok.length: 5000 is out of range (0 to "
     "4096)\n"
     "recipe_meta.yml:3:22: SECRETS.ok.generate: expected true or false, got "
     "'maybe'\n"},
    {"a secret not generated needs a file, a file is not generated",
     "SECRETS:\n  a: {generate: false}\n  b: {value_file: x}\n",
     "recipe_meta.yml:2:3: SECRETS.a: generate: false needs value_file (the "
     "value to insert)\n"
     "recipe_meta.yml:3:3: SECRETS.b: value_file needs generate: false (a "
     "generated secret has no file)\n"},
    {"a secret given a scalar, twice", "SECRETS:\n  a: 12\n  a: {}\n",
     "recipe_meta.yml:2:6: SECRETS.a: expected a mapping of keys, got a "
     "scalar\n"
     "recipe_meta.yml:3:3: duplicate key 'SECRETS.a'\n"},
    {"health path", "HEALTH_PATH: healthz\n",
     "recipe_meta.yml:1:1: HEALTH_PATH: expected a URL path starting with "
     "'/', got 'healthz'\n"},
    {"health statuses",
     "HEALTH_STATUS: [99, 600, 399-200, 2xx, 200-, -200, 200-399-400]\n",
     "recipe_meta.yml:1:17: HEALTH_STATUS[0]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '99'\n"
     "recipe_meta.yml:1:21: HEALTH_STATUS[1]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '600'\n"
     "recipe_meta.yml:1:26: HEALTH_STATUS[2]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '399-200'\n"
     "recipe_meta.yml:1:35: HEALTH_STATUS[3]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '2xx'\n"
     "recipe_meta.yml:1:40: HEALTH_STATUS[4]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '200-'\n"
     "recipe_meta.yml:1:46: HEALTH_STATUS[5]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '-200'\n"
     "recipe_meta.yml:1:52: HEALTH_STATUS[6]: expected an HTTP status (100 "
     "to 599) or a range like 200-399, got '200-399-400'\n"},
    {"no health status at all", "HEALTH_STATUS: []\n",
     "recipe_meta.yml:1:1: HEALTH_STATUS: expected an HTTP status (100 to "
     "599) or a range like 200-399, got an empty list\n"},
    {"durations", "HEALTH_TIMEOUT: 5\nDEPLOY_TIMEOUT: 2d\nTIMEOUT: 8d\n",
     "recipe_meta.yml:1:1: HEALTH_TIMEOUT: expected a duration, like 500ms, "
     "90s, 10m, 2h or 1d, got '5'\n"
     "recipe_meta.yml:2:1: DEPLOY_TIMEOUT: 2d is out of range (1s to 1d)\n"
     "recipe_meta.yml:3:1: TIMEOUT: 8d is out of range (0s to 7d)\n"},
    {"services", "SERVICES: [app, 'a b']\n",
     "recipe_meta.yml:1:17: SERVICES[1]: expected a list of compose service "
     "names, like [app, db], got 'a b'\n"},
    {"booleans", "BACKUP: yes\nSCREENSHOT: 1\n",
     "recipe_meta.yml:1:1: BACKUP: expected true or false, got 'yes'\n"
     "recipe_meta.yml:2:1: SCREENSHOT: expected true or false, got '1'\n"},
    {"DATA_CHECK missing a command",
     "DATA_CHECK:\n  service: app\n  "
     "write: echo {marker}\n",
     "recipe_meta.yml:1:1: DATA_CHECK: needs key 'read'\n"},
    {"DATA_CHECK with an unknown key",
     "DATA_CHECK: {service: app, write: w, raed: r}\n",
     "recipe_meta.yml:1:38: unknown key 'DATA_CHECK.raed'; did you mean "
     "'DATA_CHECK.read'?\n"},
    {"DATA_CHECK given a list", "DATA_CHECK: [app]\n",
     "recipe_meta.yml:1:1: DATA_CHECK: expected a mapping {service, write, "
     "read}, got a list\n"},
    {"custom test globs", "CUSTOM_TESTS: [../../etc/*]\n",
     "recipe_meta.yml:1:16: CUSTOM_TESTS[0]: expected a list of globs "
     "relative to the recipe, like tests/test_*.py, got '../../etc/*'\n"},
    {"an empty test runner", "TEST_RUNNER: []\n",
     "recipe_meta.yml:1:1: TEST_RUNNER: expected a non-empty list of strings "
     "(the program and its arguments), got an empty list\n"},
    {"server names and labels",
     "SERVERS: [a, 'b c', -x]\nSERVER_LABELS: [heavy, Heavy, 'a/b']\n",
     "recipe_meta.yml:1:14: SERVERS[1]: expected a list of abra server names "
     "(of the daemon's servers:), like [swarm-a, swarm-b], got 'b c'\n"
     "recipe_meta.yml:1:21: SERVERS[2]: expected a list of abra server names "
     "(of the daemon's servers:), like [swarm-a, swarm-b], got '-x'\n"
     "recipe_meta.yml:2:24: SERVER_LABELS[1]: expected a list of server "
     "labels ([a-z0-9][a-z0-9._-]*, at most 63), like [heavy], got 'Heavy'\n"
     "recipe_meta.yml:2:31: SERVER_LABELS[2]: expected a list of server "
     "labels ([a-z0-9][a-z0-9._-]*, at most 63), like [heavy], got 'a/b'\n"},
    {"a misspelt SERVERS", "SERVRES: [a]\n",
     "recipe_meta.yml:1:1: unknown key 'SERVRES'; did you mean 'SERVERS'?\n"},
    {"a top-level list", "- DEPS\n",
     "recipe_meta.yml:1:1: expected a mapping of keys at the top level, got "
     "a list\n"},
};

static void test_bad(void **state)
{
  size_t i;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(bad); i++) {
    struct ccci_meta m;
    char *errors = NULL;
    int r = parse(bad[i].yaml, &m, &errors);
    if (r != -EINVAL)
      fail_msg("%s: parsed (%d)", bad[i].what, r);
    if (strcmp(errors, bad[i].errors) != 0)
      fail_msg("%s: got\n%swant\n%s", bad[i].what, errors, bad[i].errors);
    free(errors);
    ccci_meta_free(&m);
  }
}

/* A record that fails keeps the value from before (here the default). */
static void test_bad_record_keeps_value(void **state)
{
  struct ccci_meta m;
  char *errors = NULL;
  (void)state;
  assert_int_equal(parse("DEPS: [{recipe: a}, {env: {}}]\nDATA_CHECK: "
                         "{service: app}\n",
                         &m, &errors),
                   -EINVAL);
  free(errors);
  assert_int_equal(m.ndeps, 0);
  assert_null(m.data_check_service);
  ccci_meta_free(&m);
}

/* ---- files: the merge, missing files, caps ---- */

static char *write_file(const char *dir, const char *name, const char *text)
{
  char *p = ccci_xasprintf("%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
  return p;
}

static void test_operator_wins_per_key(void **state)
{
  char *dir = tmpdir_make("meta");
  char *opdir, *op, *rec;
  struct ccci_meta m;
  char *errors = NULL;

  (void)state;
  assert_non_null(dir);
  opdir = ccci_xasprintf("%s/overlay", dir);
  assert_int_equal(mkdir(opdir, 0700), 0);
  rec = write_file(dir, "recipe_meta.yml",
                   "HEALTH_PATH: /recipe\n"
                   "SERVICES: [app, db, worker]\n"
                   "DEPS: [{recipe: mariadb}, {recipe: redis}]\n"
                   "SECRETS: {a: {generate: false, value_file: a.txt}}\n"
                   "DATA_CHECK: {service: app, write: w, read: r}\n"
                   "TIMEOUT: 30m\n");
  op = write_file(opdir, "recipe_meta.yml",
                  "\n"
                  "SERVICES: [app]\n"
                  "DEPS: [{recipe: postgres}]\n"
                  "DATA_CHECK: {service: db, write: w2, read: r2}\n"
                  "TIMEOUT:\n"
                  "BACKUP: false\n");
  if (ccci_meta_load(op, rec, &m, &errors) != 0)
    fail_msg("%s", errors);
  /* Set only by the recipe. */
  assert_string_equal(m.health_path, "/recipe");
  assert_int_equal(m.origin[CCCI_META_HEALTH_PATH].source,
                   CCCI_META_FROM_RECIPE);
  assert_int_equal(m.origin[CCCI_META_HEALTH_PATH].line, 1);
  /* Its value file, relative to the recipe file's directory. */
  assert_int_equal(m.nsecrets, 1);
  {
    char *want = ccci_xasprintf("%s/a.txt", dir);
    assert_string_equal(m.secrets[0].value_file, want);
    free(want);
  }
  /* The operator's replaces whole lists and records. */
  assert_int_equal(m.services.n, 1);
  assert_string_equal(m.services.v[0], "app");
  assert_int_equal(m.origin[CCCI_META_SERVICES].source,
                   CCCI_META_FROM_OPERATOR);
  assert_int_equal(m.origin[CCCI_META_SERVICES].line, 2);
  assert_int_equal(m.ndeps, 1);
  assert_string_equal(m.deps[0].recipe, "postgres");
  assert_string_equal(m.data_check_service, "db");
  assert_string_equal(m.data_check_read, "r2");
  /* An empty operator value keeps the recipe's. */
  assert_int_equal(m.timeout_ms, 30 * 60 * 1000);
  assert_int_equal(m.origin[CCCI_META_TIMEOUT].source, CCCI_META_FROM_RECIPE);
  /* Set only by the operator. */
  assert_int_equal(m.backup, 0);
  assert_int_equal(m.origin[CCCI_META_BACKUP].source, CCCI_META_FROM_OPERATOR);
  /* Neither. */
  assert_int_equal(m.origin[CCCI_META_SCREENSHOT].source,
                   CCCI_META_FROM_DEFAULT);
  ccci_meta_free(&m);

  /* Only the operator's file; the recipe's missing. */
  free(rec);
  rec = ccci_xasprintf("%s/missing/recipe_meta.yml", dir);
  assert_int_equal(ccci_meta_load(op, rec, &m, &errors), 0);
  assert_int_equal(m.ndeps, 1);
  assert_string_equal(m.health_path, "/");
  ccci_meta_free(&m);

  /* Errors of both files, the recipe's first, each by its base name. */
  free(rec);
  rec = write_file(dir, "recipe_meta.yml", "HEALTH_PAHT: /\n");
  free(op);
  op = write_file(opdir, "recipe_meta.yml", "\nSCREENSHOT: 2\n");
  assert_int_equal(ccci_meta_load(op, rec, &m, &errors), -EINVAL);
  assert_string_equal(errors,
                      "recipe_meta.yml:1:1: unknown key 'HEALTH_PAHT'; did "
                      "you mean 'HEALTH_PATH'?\n"
                      "recipe_meta.yml:2:1: SCREENSHOT: expected true or "
                      "false, got '2'\n");
  free(errors);
  ccci_meta_free(&m);

  free(op);
  free(rec);
  free(opdir);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(dir);
}

static void test_caps(void **state)
{
  char *dir = tmpdir_make("metacap");
  char *big = ccci_xmalloc(CCCI_META_MAX_BYTES + 2), *p, *errors = NULL;
  struct ccci_meta m;

  (void)state;
  assert_non_null(dir);
  /* Exactly the cap loads; one byte more is refused, naming the file. */
  memset(big, '#', CCCI_META_MAX_BYTES);
  big[CCCI_META_MAX_BYTES - 1] = '\n';
  big[CCCI_META_MAX_BYTES] = '\0';
  p = write_file(dir, "recipe_meta.yml", big);
  assert_int_equal(ccci_meta_load(NULL, p, &m, &errors), 0);
  ccci_meta_free(&m);
  free(p);
  big[CCCI_META_MAX_BYTES] = '\n';
  big[CCCI_META_MAX_BYTES + 1] = '\0';
  p = write_file(dir, "recipe_meta.yml", big);
  assert_int_equal(ccci_meta_load(NULL, p, &m, &errors), -EINVAL);
  assert_non_null(strstr(errors, "file is larger than 65536 bytes"));
  assert_non_null(strstr(errors, "recipe_meta.yml"));
  free(errors);
  ccci_meta_free(&m);
  /* The same cap on text given directly. */
  ccci_meta_defaults(&m);
  assert_int_equal(ccci_meta_parse(NAME, NULL, big, CCCI_META_MAX_BYTES + 1,
                                   CCCI_META_FROM_RECIPE, &m, &errors),
                   -EINVAL);
  assert_string_equal(errors,
                      "recipe_meta.yml: file is larger than 65536 bytes\n");
  free(errors);
  ccci_meta_free(&m);
  /* A directory where the file should be is an error, not "missing". */
  free(p);
  p = ccci_xasprintf("%s/sub", dir);
  assert_int_equal(mkdir(p, 0700), 0);
  assert_int_equal(ccci_meta_load(p, NULL, &m, &errors), -EINVAL);
  assert_non_null(strstr(errors, "cannot read"));
  free(errors);
  ccci_meta_free(&m);
  free(p);
  free(big);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(dir);
}

static void test_status_ok(void **state)
{
  static const struct {
    const char *yaml;
    long yes[4], no[4];
  } cases[] = {
      {"", {200, 301, 399, 250}, {199, 400, 404, 500}},
      {"HEALTH_STATUS: [200, 301-302]\n",
       {200, 301, 302, 302},
       {201, 300, 303, 399}},
      {"HEALTH_STATUS: [100-599]\n", {100, 599, 404, 503}, {99, 600, 0, -1}},
      {"HEALTH_STATUS: ['401']\n", {401, 401, 401, 401}, {400, 402, 200, 0}},
  };
  size_t i, j;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(cases); i++) {
    struct ccci_meta m;
    char *errors = NULL;
    assert_int_equal(parse(cases[i].yaml, &m, &errors), 0);
    for (j = 0; j < 4; j++) {
      if (!ccci_meta_status_ok(&m, cases[i].yes[j]))
        fail_msg("%s: %ld refused", cases[i].yaml, cases[i].yes[j]);
      if (ccci_meta_status_ok(&m, cases[i].no[j]))
        fail_msg("%s: %ld accepted", cases[i].yaml, cases[i].no[j]);
    }
    ccci_meta_free(&m);
  }
}

/* The dump reads back to the same values; the docs' example loads. */
static void test_dump_and_example(void **state)
{
  struct ccci_meta m, again;
  char *errors = NULL, *text;
  json_t *j;

  (void)state;
  if (parse(ccci_meta_example(), &m, &errors) != 0)
    fail_msg("the example: %s", errors);
  assert_int_equal(m.ndeps, 1);
  assert_int_equal(m.nsecrets, 2);
  assert_non_null(m.data_check_read);
  text = ccci_meta_dump(&m);
  assert_non_null(strstr(text, "# recipe, line 4\nDEPS: "));
  assert_non_null(strstr(text, "# default\nTIMEOUT: 0s\n"));
  if (parse(text, &again, &errors) != 0)
    fail_msg("the dump: %s\n%s", errors, text);
  ccci_meta_free(&again);
  ccci_meta_free(&m);
  /* Every key's default dumps and reads back too. */
  ccci_meta_defaults(&m);
  free(text);
  text = ccci_meta_dump(&m);
  assert_non_null(strstr(text, "DATA_CHECK: null\n"));
  assert_non_null(strstr(text, "BACKUP: null\n"));
  if (parse(text, &again, &errors) != 0)
    fail_msg("the defaults' dump: %s\n%s", errors, text);
  /* The same values (the comments differ: now the "recipe" set them). */
  j = ccci_meta_to_json(&m);
  {
    json_t *j2 = ccci_meta_to_json(&again);
    assert_true(json_equal(j, j2));
    json_decref(j2);
  }
  json_decref(j);
  j = ccci_meta_to_json(&again);
  assert_true(json_is_null(json_object_get(j, "DATA_CHECK")));
  assert_true(json_is_array(json_object_get(j, "DEPS")));
  assert_string_equal(json_string_value(json_object_get(j, "HEALTH_TIMEOUT")),
                      "5m");
  json_decref(j);
  ccci_meta_free(&again);
  ccci_meta_free(&m);
  free(text);
  assert_string_equal(ccci_meta_key_name(CCCI_META_UPGRADE_BASE_VERSION),
                      "UPGRADE_BASE_VERSION");
  assert_string_equal(ccci_meta_key_name(CCCI_META_TIMEOUT), "TIMEOUT");
  assert_null(ccci_meta_key_name(CCCI_META_NKEYS));
  assert_string_equal(ccci_meta_source_name(CCCI_META_FROM_OPERATOR),
                      "operator");
}

static void write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static void free_list(struct ccci_strlist *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
}

/* The daemon's view: SERVERS and SERVER_LABELS of the recipe's file (by
 * path or as fetched text) with the operator's over it, key by key. */
static void test_placement(void **state)
{
  static const char *const ab[] = {"a", "b"};
  static const char *const heavy[] = {"heavy"};
  static const char *const c[] = {"c"};
  static const char own[] = "HEALTH_PATH: /x\nSERVERS: [a, b]\n"
                            "SERVER_LABELS: [heavy]\n";
  char *dir = tmpdir_make("placement"), *own_f, *ov_f, *missing, *err = NULL;
  struct ccci_strlist sv, lb;

  (void)state;
  assert_non_null(dir);
  own_f = ccci_xasprintf("%s/own.yml", dir);
  ov_f = ccci_xasprintf("%s/overlay.yml", dir);
  missing = ccci_xasprintf("%s/missing.yml", dir);
  write_text(own_f, own);
  /* None at all: anywhere. */
  assert_int_equal(ccci_meta_placement(NULL, NULL, 0, NULL, &sv, &lb, &err), 0);
  assert_null(err);
  assert_int_equal(sv.n, 0);
  assert_int_equal(lb.n, 0);
  free_list(&sv);
  free_list(&lb);
  /* By path and as text, the same; a missing overlay is none. */
  assert_int_equal(ccci_meta_placement(own_f, NULL, 0, missing, &sv, &lb, &err),
                   0);
  assert_list(&sv, ab, 2);
  assert_list(&lb, heavy, 1);
  free_list(&sv);
  free_list(&lb);
  assert_int_equal(
      ccci_meta_placement(NULL, own, strlen(own), missing, &sv, &lb, &err), 0);
  assert_list(&sv, ab, 2);
  assert_list(&lb, heavy, 1);
  free_list(&sv);
  free_list(&lb);
  /* own_path wins over own_text; a missing own file is none. */
  assert_int_equal(
      ccci_meta_placement(missing, own, strlen(own), NULL, &sv, &lb, &err), 0);
  assert_int_equal(sv.n, 0);
  free_list(&sv);
  free_list(&lb);
  /* The operator's file wins key by key: SERVERS replaced whole, the
   * recipe's SERVER_LABELS kept. */
  write_text(ov_f, "SERVERS: [c]\n");
  assert_int_equal(
      ccci_meta_placement(NULL, own, strlen(own), ov_f, &sv, &lb, &err), 0);
  assert_list(&sv, c, 1);
  assert_list(&lb, heavy, 1);
  free_list(&sv);
  free_list(&lb);
  /* The text need not be NUL-terminated: only own_len bytes count. */
  assert_int_equal(ccci_meta_placement(NULL, "SERVERS: [a]\nBOGUS: 1\n", 13,
                                       NULL, &sv, &lb, &err),
                   0);
  assert_int_equal(sv.n, 1);
  free_list(&sv);
  free_list(&lb);
  /* Errors name their file, line and column; the lists are empty. Any key
   * counts, as for a run. */
  assert_int_equal(ccci_meta_placement(NULL, "SERVERS: [a]\nHEALTH_PTH: /\n",
                                       27, NULL, &sv, &lb, &err),
                   -EINVAL);
  assert_string_equal(err, "tests/recipe_meta.yml:2:1: unknown key "
                           "'HEALTH_PTH'; did you mean 'HEALTH_PATH'?\n");
  assert_int_equal(sv.n, 0);
  assert_int_equal(lb.n, 0);
  free(err);
  err = NULL;
  write_text(ov_f, "\nSERVER_LABELS: [Heavy]\n");
  assert_int_equal(ccci_meta_placement(own_f, NULL, 0, ov_f, &sv, &lb, &err),
                   -EINVAL);
  {
    char *want = ccci_xasprintf(
        "%s:2:17: SERVER_LABELS[0]: expected a list of server labels "
        "([a-z0-9][a-z0-9._-]*, at most 63), like [heavy], got 'Heavy'\n",
        ov_f);
    assert_string_equal(err, want);
    free(want);
  }
  free(err);
  err = NULL;
  /* A file that cannot be read (a directory) is an error too. */
  assert_int_equal(ccci_meta_placement(dir, NULL, 0, NULL, &sv, &lb, &err),
                   -EINVAL);
  assert_non_null(err);
  free(err);
  free(own_f);
  free(ov_f);
  free(missing);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(dir);
}

struct placer {
  const char *overlay;
  int bad; /* calls whose result was not the expected one */
};

static void *place_many(void *arg)
{
  static const char own[] = "SERVERS: [a, b]\nSERVER_LABELS: [heavy]\n";
  struct placer *p = arg;
  int i;
  for (i = 0; i < 200; i++) {
    struct ccci_strlist sv, lb;
    char *err = NULL;
    int r =
        ccci_meta_placement(NULL, own, strlen(own), p->overlay, &sv, &lb, &err);
    if (r != 0 || sv.n != 1 || strcmp(sv.v[0], "c") != 0 || lb.n != 1 ||
        strcmp(lb.v[0], "heavy") != 0)
      p->bad++;
    free_list(&sv);
    free_list(&lb);
    free(err);
  }
  return NULL;
}

/* The daemon calls it on libuv's thread pool: threads at once agree. */
static void test_placement_threads(void **state)
{
  char *dir = tmpdir_make("placethr"), *ov;
  pthread_t t[4];
  struct placer p[4];
  int i;

  (void)state;
  assert_non_null(dir);
  ov = ccci_xasprintf("%s/overlay.yml", dir);
  write_text(ov, "SERVERS: [c]\n");
  for (i = 0; i < 4; i++) {
    p[i].overlay = ov;
    p[i].bad = 0;
    assert_int_equal(pthread_create(&t[i], NULL, place_many, &p[i]), 0);
  }
  for (i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(p[i].bad, 0);
  }
  free(ov);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(dir);
}

/* The docs name every key once, with its row. */
static void test_docs(void **state)
{
  char *doc = ccci_meta_docs();
  size_t i;
  (void)state;
  for (i = 0; i < CCCI_META_NKEYS; i++) {
    char *row = ccci_xasprintf("| `%s` |", ccci_meta_key_name(i));
    assert_non_null(strstr(doc, row));
    free(row);
  }
  assert_non_null(strstr(doc, "| `value_file` | path |"));
  assert_non_null(strstr(doc, "## Example\n\n```yaml\n# tests/recipe_meta"));
  free(doc);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_every_key),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_bad_record_keeps_value),
      cmocka_unit_test(test_operator_wins_per_key),
      cmocka_unit_test(test_caps),
      cmocka_unit_test(test_status_ok),
      cmocka_unit_test(test_dump_and_example),
      cmocka_unit_test(test_docs),
      cmocka_unit_test(test_placement),
      cmocka_unit_test(test_placement_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
