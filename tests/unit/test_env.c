/* Unit tests of env.c: the domain names of docs/harness-contract.md and the
 * environment a harness gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/runs/env.h"

static void test_domains(void **state)
{
  static const struct {
    const char *recipe;
    int64_t pr;
    uint64_t number;
    const char *label; /* before .<suffix> */
  } cases[] = {
      {"myrecipe", 0, 1, "myrecipe-l1"},
      {"app", 5, 9, "app-pr5"},
      {"My_App.v2", 12, 1, "my-app-v2-pr12"},
      {"--a..b--", 0, 3, "a-b-l3"},
      {"___", 0, 7, "r-l7"},
      {"", 1, 1, "r-pr1"},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       3, 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-pr3"},
  };
  struct ccci_config *cfg = ccci_config_default();
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *d =
        ccci_env_domain(cfg, cases[i].recipe, cases[i].pr, cases[i].number);
    char *want =
        ccci_xasprintf("%s.%s", cases[i].label, cfg->harness.domain_suffix);
    assert_string_equal(d, want);
    /* A DNS label is at most 63 bytes. */
    assert_true(strchr(d, '.') - d <= 63);
    print_message("%s\n", d);
    free(want);
    free(d);
  }
  ccci_config_unref(cfg);
}

static const char *get(char **env, const char *key)
{
  size_t n = strlen(key), i;
  for (i = 0; env[i] != NULL; i++)
    if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
      return env[i] + n + 1;
  return NULL;
}

static void test_environment(void **state)
{
  struct ccci_config *cfg = ccci_config_default();
  struct ccci_run_meta m;
  char **env, *pid;

  (void)state;
  memset(&m, 0, sizeof(m));
  snprintf(m.id, sizeof(m.id), "20261124-035748-123");
  m.recipe = "app";
  m.domain = "app-pr5.ci.local";
  m.pr = 5;
  m.quick = true;
  assert_int_equal(setenv("TZ", "UTC", 1), 0);
  assert_int_equal(setenv("CCCI_TEST_NOT_PASSED", "x", 1), 0);
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 600);
  assert_string_equal(get(env, "CCCI_RUN_ID"), "20261124-035748-123");
  assert_string_equal(get(env, "CCCI_RECIPE"), "app");
  assert_string_equal(get(env, "CCCI_REF"), "");
  assert_string_equal(get(env, "CCCI_SHA"), "");
  assert_string_equal(get(env, "CCCI_PR"), "5");
  assert_string_equal(get(env, "CCCI_DOMAIN"), "app-pr5.ci.local");
  assert_string_equal(get(env, "CCCI_QUICK"), "1");
  assert_string_equal(get(env, "CCCI_DEADLINE_IN"), "600");
  assert_non_null(get(env, "CCCI_DEADLINE"));
  assert_string_equal(get(env, "CCCI_RESULTS_FILE"),
                      "/srv/runs/r1/results.json");
  assert_string_equal(get(env, "CCCI_OPSTATE_FILE"),
                      "/srv/runs/r1/state/opstate");
  assert_string_equal(get(env, "CCCI_RECIPE_DIR"), "/srv/runs/r1/recipe");
  assert_string_equal(get(env, "ABRA_DIR"), "/srv/runs/r1/abra");
  assert_string_equal(get(env, "TZ"), "UTC");
  assert_null(get(env, "CCCI_TEST_NOT_PASSED"));
  pid = ccci_xasprintf("%ld", (long)getpid());
  assert_string_equal(get(env, "CCCI_DAEMON_PID"), pid);
  free(pid);
  ccci_env_free(env);
  /* No PR: an empty CCCI_PR. */
  m.pr = 0;
  m.quick = false;
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 1);
  assert_string_equal(get(env, "CCCI_PR"), "");
  assert_string_equal(get(env, "CCCI_QUICK"), "0");
  ccci_env_free(env);
  ccci_env_free(NULL);
  ccci_config_unref(cfg);
}

/* The harness's variables: from the config, and the run's repo for forge
 * runs only. */
static void test_harness_variables(void **state)
{
  static const char yml[] = "forge:\n  url: https://git.example.org/\n"
                            "harness:\n  server: swarm-1\n"
                            "  abra_dir: /srv/abra\n"
                            "  overlays_dir: overlays\n"
                            "  gateway: 127.0.0.1:8443\n"
                            "  gateway_insecure: true\n"
                            "  git_token_file: /run/secrets/git\n";
  struct ccci_config *cfg = ccci_config_default(), *fcfg = NULL;
  struct ccci_run_meta m;
  char **env, *errors = NULL;

  (void)state;
  memset(&m, 0, sizeof(m));
  snprintf(m.id, sizeof(m.id), "r1");
  m.recipe = "app";
  m.domain = "app-l1.ci.local";
  m.repo = "local/app";
  m.trigger = json_pack("{s:s}", "kind", "local");
  /* The embedded default: no config file, so no CCCI_CONFIG. */
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 60);
  assert_string_equal(get(env, "CCCI_SERVER"), "default");
  assert_string_equal(get(env, "CCCI_REPO"), "");
  assert_string_equal(get(env, "CCCI_CLONE_URL"), "");
  assert_string_equal(get(env, "CCCI_GIT_TOKEN_FILE"), "");
  assert_string_equal(get(env, "CCCI_ABRA_DIR_REAL"), cfg->harness.abra_dir);
  assert_string_equal(get(env, "CCCI_OVERLAYS_DIR"), "");
  assert_string_equal(get(env, "CCCI_GATEWAY"), "");
  assert_string_equal(get(env, "CCCI_GATEWAY_INSECURE"), "0");
  assert_null(get(env, "CCCI_CONFIG"));
  ccci_env_free(env);

  /* A config file (named relative to the daemon's directory), a forge
   * run. */
  assert_int_equal(ccci_config_parse("etc/ccci.yml", "/etc/ccci", yml,
                                     strlen(yml), &fcfg, &errors),
                   0);
  json_decref(m.trigger);
  m.trigger = json_pack("{s:s}", "kind", "pr");
  m.repo = "coop-cloud/app";
  m.pr = 3;
  env = ccci_env_build(&m, "/srv/runs/r1", fcfg, 60);
  assert_string_equal(get(env, "CCCI_SERVER"), "swarm-1");
  assert_string_equal(get(env, "CCCI_REPO"), "coop-cloud/app");
  assert_string_equal(get(env, "CCCI_CLONE_URL"),
                      "https://git.example.org/coop-cloud/app.git");
  assert_string_equal(get(env, "CCCI_GIT_TOKEN_FILE"), "/run/secrets/git");
  assert_string_equal(get(env, "CCCI_ABRA_DIR_REAL"), "/srv/abra");
  assert_string_equal(get(env, "CCCI_OVERLAYS_DIR"), "/etc/ccci/overlays");
  assert_string_equal(get(env, "CCCI_GATEWAY"), "127.0.0.1:8443");
  assert_string_equal(get(env, "CCCI_GATEWAY_INSECURE"), "1");
  assert_string_equal(get(env, "CCCI_CONFIG"), "/etc/ccci/ccci.yml");
  ccci_env_free(env);
  /* A recorded run without a trigger: its repo says whether it is local. */
  json_decref(m.trigger);
  m.trigger = NULL;
  m.repo = "local/app";
  env = ccci_env_build(&m, "/srv/runs/r1", fcfg, 60);
  assert_string_equal(get(env, "CCCI_REPO"), "");
  assert_string_equal(get(env, "CCCI_CLONE_URL"), "");
  ccci_env_free(env);
  ccci_config_unref(fcfg);
  ccci_config_unref(cfg);
}

/* With a pool (SPEC section 12): CCCI_SERVER is the run's recorded server,
 * the gateway that server's; a server that left the config keeps its name,
 * and the gateway falls back to harness.gateway. */
static void test_server_of_the_run(void **state)
{
  static const char yml[] =
      "harness:\n  server: swarm-1\n  gateway: 10.0.0.9:443\n"
      "  abra_dir: /srv/abra\n"
      "servers:\n"
      "  - name: a\n    gateway: 10.0.0.1:8443\n    gateway_insecure: true\n"
      "  - name: b\n";
  struct ccci_config *cfg = NULL;
  struct ccci_run_meta m;
  char **env, *errors = NULL;

  (void)state;
  assert_int_equal(ccci_config_parse("/etc/ccci/ccci.yml", "/etc/ccci", yml,
                                     strlen(yml), &cfg, &errors),
                   0);
  memset(&m, 0, sizeof(m));
  snprintf(m.id, sizeof(m.id), "r1");
  m.recipe = "app";
  m.domain = "app-pr3.a.example";
  m.repo = "local/app";
  m.server = "a";
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 60);
  assert_string_equal(get(env, "CCCI_SERVER"), "a");
  assert_string_equal(get(env, "CCCI_DOMAIN"), "app-pr3.a.example");
  assert_string_equal(get(env, "CCCI_GATEWAY"), "10.0.0.1:8443");
  assert_string_equal(get(env, "CCCI_GATEWAY_INSECURE"), "1");
  assert_string_equal(get(env, "CCCI_SERVER_FILE"),
                      "/srv/runs/r1/state/server");
  ccci_env_free(env);
  /* b has no gateway of its own: DNS, whatever harness.gateway says. */
  m.server = "b";
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 60);
  assert_string_equal(get(env, "CCCI_SERVER"), "b");
  assert_string_equal(get(env, "CCCI_GATEWAY"), "");
  assert_string_equal(get(env, "CCCI_GATEWAY_INSECURE"), "0");
  ccci_env_free(env);
  /* c left the config (its teardown, the janitor's): its name stays. */
  m.server = "c";
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 60);
  assert_string_equal(get(env, "CCCI_SERVER"), "c");
  assert_string_equal(get(env, "CCCI_GATEWAY"), "10.0.0.9:443");
  ccci_env_free(env);
  /* A record of an older version has no server: harness.server. */
  m.server = NULL;
  env = ccci_env_build(&m, "/srv/runs/r1", cfg, 60);
  assert_string_equal(get(env, "CCCI_SERVER"), "swarm-1");
  ccci_env_free(env);
  /* A probe's environment. */
  assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);
  env = ccci_env_probe(cfg, "b");
  assert_string_equal(get(env, "CCCI_SERVER"), "b");
  assert_string_equal(get(env, "CCCI_CONFIG"), "/etc/ccci/ccci.yml");
  assert_string_equal(get(env, "CCCI_ABRA_DIR_REAL"), "/srv/abra");
  assert_string_equal(get(env, "ABRA_DIR"), "/srv/abra");
  assert_string_equal(get(env, "PATH"), "/usr/bin:/bin");
  assert_null(get(env, "CCCI_RUN_ID"));
  ccci_env_free(env);
  ccci_config_unref(cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_domains),
      cmocka_unit_test(test_environment),
      cmocka_unit_test(test_harness_variables),
      cmocka_unit_test(test_server_of_the_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
