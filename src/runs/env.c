/* The environment contract: a run's domain and its harness's environment
 * (SPEC section 8). */
#include "ccci/runs/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char *ccci_env_domain(const struct ccci_config *cfg, const char *recipe,
                      int64_t pr, uint64_t number)
{
  char label[64], suffix[32];
  size_t i, k = 0, max;
  if (pr > 0)
    snprintf(suffix, sizeof(suffix), "-pr%lld", (long long)pr);
  else
    snprintf(suffix, sizeof(suffix), "-l%llu", (unsigned long long)number);
  max = 63 - strlen(suffix);
  for (i = 0; recipe[i] != '\0' && k < max; i++) {
    char c = recipe[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      c = '-';
    if (c == '-' && (k == 0 || label[k - 1] == '-'))
      continue;
    label[k++] = c;
  }
  while (k > 0 && label[k - 1] == '-')
    k--;
  if (k == 0)
    label[k++] = 'r';
  label[k] = '\0';
  return ccci_xasprintf("%s%s.%s", label, suffix, cfg->harness.domain_suffix);
}

static void env_add(char ***env, size_t *n, char *kv)
{
  *env = ccci_xrealloc(*env, (*n + 2) * sizeof(char *));
  (*env)[(*n)++] = kv;
  (*env)[*n] = NULL;
}

/* Variables of the daemon's own environment a harness may need. */
static const char *const passed_env[] = {"PATH",   "HOME",        "LANG",
                                         "LC_ALL", "TZ",          "TMPDIR",
                                         "USER",   "DOCKER_HOST", NULL};

/* A forge run (its repo is `owner/name` on the forge), not a local one. */
static bool forge_run(const struct ccci_run_meta *m)
{
  const char *kind =
      json_string_value(json_object_get(m->trigger, "kind")); /* NULL ok */
  if (m->repo == NULL)
    return false;
  if (kind != NULL)
    return strcmp(kind, "local") != 0;
  return strncmp(m->repo, "local/", 6) != 0;
}

/* The config file the daemon runs on, absolute; NULL for the embedded
 * default. */
static char *config_path(const struct ccci_config *cfg)
{
  const char *slash;
  if (cfg->source == NULL || strcmp(cfg->source, "<embedded>") == 0)
    return NULL;
  if (cfg->source[0] == '/' || cfg->base_dir == NULL)
    return ccci_xstrdup(cfg->source);
  slash = strrchr(cfg->source, '/');
  return ccci_path_join(cfg->base_dir, slash != NULL ? slash + 1 : cfg->source);
}

static const char *or_empty(const char *s)
{
  return s != NULL ? s : "";
}

/* What `ccci harness` needs beyond the run: where to deploy, the
 * operator's abra state and overlays, how to reach apps, the config. */
static void env_harness(char ***env, size_t *n, const struct ccci_run_meta *m,
                        const struct ccci_config *cfg)
{
  bool forge = forge_run(m);
  char *conf = config_path(cfg);
  const char *server = m->server != NULL ? m->server : cfg->harness.server;
  const struct ccci_server_conf *sc = ccci_config_server(cfg, server);
  /* A server that left the config: the harness's own gateway. */
  const char *gateway = sc != NULL ? sc->gateway : cfg->harness.gateway;
  bool insecure =
      sc != NULL ? sc->gateway_insecure : cfg->harness.gateway_insecure;

  env_add(env, n, ccci_xasprintf("CCCI_SERVER=%s", server));
  env_add(env, n, ccci_xasprintf("CCCI_REPO=%s", forge ? m->repo : ""));
  if (forge && cfg->forge.url != NULL)
    env_add(
        env, n,
        ccci_xasprintf("CCCI_CLONE_URL=%s/%s.git", cfg->forge.url, m->repo));
  else
    env_add(env, n, ccci_xstrdup("CCCI_CLONE_URL="));
  env_add(env, n,
          ccci_xasprintf("CCCI_GIT_TOKEN_FILE=%s",
                         or_empty(cfg->harness.git_token_file)));
  env_add(
      env, n,
      ccci_xasprintf("CCCI_ABRA_DIR_REAL=%s", or_empty(cfg->harness.abra_dir)));
  env_add(env, n,
          ccci_xasprintf("CCCI_OVERLAYS_DIR=%s",
                         or_empty(cfg->harness.overlays_dir)));
  env_add(env, n, ccci_xasprintf("CCCI_GATEWAY=%s", or_empty(gateway)));
  env_add(env, n, ccci_xasprintf("CCCI_GATEWAY_INSECURE=%d", insecure ? 1 : 0));
  if (conf != NULL)
    env_add(env, n, ccci_xasprintf("CCCI_CONFIG=%s", conf));
  free(conf);
}

/* The daemon's variables a child may need, then harness.env. */
static void env_base(char ***env, size_t *n, const struct ccci_config *cfg)
{
  size_t i;
  for (i = 0; passed_env[i] != NULL; i++) {
    const char *v = getenv(passed_env[i]);
    if (v != NULL)
      env_add(env, n, ccci_xasprintf("%s=%s", passed_env[i], v));
  }
  for (i = 0; i < cfg->harness.env.n; i++)
    env_add(env, n,
            ccci_xasprintf("%s=%s", cfg->harness.env.keys[i],
                           cfg->harness.env.vals[i]));
}

char **ccci_env_probe(const struct ccci_config *cfg, const char *server)
{
  char **env = NULL, *conf = config_path(cfg);
  size_t n = 0;

  env_base(&env, &n, cfg);
  env_add(&env, &n, ccci_xasprintf("CCCI_SERVER=%s", server));
  if (conf != NULL)
    env_add(&env, &n, ccci_xasprintf("CCCI_CONFIG=%s", conf));
  free(conf);
  env_add(
      &env, &n,
      ccci_xasprintf("CCCI_ABRA_DIR_REAL=%s", or_empty(cfg->harness.abra_dir)));
  env_add(&env, &n,
          ccci_xasprintf("ABRA_DIR=%s", or_empty(cfg->harness.abra_dir)));
  return env;
}

char **ccci_env_build(const struct ccci_run_meta *m, const char *dir,
                      const struct ccci_config *cfg, uint64_t deadline_s)
{
  char **env = NULL;
  size_t n = 0, i;
  time_t now = time(NULL);
  const char *const files[][2] = {{"CCCI_DEPLOYS_FILE", "state/deploys"},
                                  {"CCCI_OPSTATE_FILE", "state/opstate"},
                                  {"CCCI_DEPS_FILE", "state/deps"},
                                  {"CCCI_DEPSKIP_FILE", "state/depskip"},
                                  {"CCCI_SERVER_FILE", "state/server"},
                                  {"CCCI_RESULTS_FILE", "results.json"},
                                  {"CCCI_RECIPE_DIR", "recipe"},
                                  {"ABRA_DIR", "abra"}};

  env_base(&env, &n, cfg);
  env_add(&env, &n, ccci_xasprintf("CCCI_RUN_ID=%s", m->id));
  env_add(&env, &n, ccci_xasprintf("CCCI_RECIPE=%s", m->recipe));
  env_add(&env, &n, ccci_xasprintf("CCCI_REF=%s", m->ref ? m->ref : ""));
  env_add(&env, &n, ccci_xasprintf("CCCI_SHA=%s", m->sha ? m->sha : ""));
  env_add(&env, &n,
          m->pr > 0 ? ccci_xasprintf("CCCI_PR=%lld", (long long)m->pr)
                    : ccci_xstrdup("CCCI_PR="));
  env_add(&env, &n, ccci_xasprintf("CCCI_DOMAIN=%s", m->domain));
  env_add(&env, &n, ccci_xasprintf("CCCI_QUICK=%d", m->quick ? 1 : 0));
  env_add(&env, &n,
          ccci_xasprintf("CCCI_DEADLINE=%lld",
                         (long long)now + (long long)deadline_s));
  env_add(
      &env, &n,
      ccci_xasprintf("CCCI_DEADLINE_IN=%llu", (unsigned long long)deadline_s));
  for (i = 0; i < CCCI_ARRAY_LEN(files); i++)
    env_add(&env, &n,
            ccci_xasprintf("%s=%s/%s", files[i][0], dir, files[i][1]));
  env_harness(&env, &n, m, cfg);
  env_add(&env, &n, ccci_xasprintf("CCCI_DAEMON_PID=%ld", (long)getpid()));
  return env;
}

void ccci_env_free(char **env)
{
  size_t i;
  if (env == NULL)
    return;
  for (i = 0; env[i] != NULL; i++)
    free(env[i]);
  free(env);
}
