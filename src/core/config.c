/* The service configuration: one YAML file read into an immutable struct. */
#include "ccci/core/config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_info.h"

/* A key of the service table: the engine's key and what only the service
 * config knows about it. */
struct key {
  struct ccci_keytab_key kt;
  enum ccci_reload reload;
  bool active; /* does this version act on the key yet? */
};

/* ---- value checks ---- */

static bool valid_url(const char *s)
{
  const char *rest;
  if (strncmp(s, "http://", 7) == 0)
    rest = s + 7;
  else if (strncmp(s, "https://", 8) == 0)
    rest = s + 8;
  else
    return false;
  if (*rest == '\0' || *rest == '/')
    return false;
  for (; *rest != '\0'; rest++)
    if ((unsigned char)*rest <= 0x20 || *rest == 0x7f)
      return false;
  return true;
}

static bool valid_listen(const char *s)
{
  const char *colon = strrchr(s, ':');
  uint64_t port;
  if (colon == NULL || colon == s)
    return false;
  if (s[0] == '[' && colon[-1] != ']')
    return false;
  if (ccci_parse_u64(colon + 1, &port) < 0 || port > 65535)
    return false;
  for (; s < colon; s++)
    if (!isalnum((unsigned char)*s) && strchr(".-:[]", *s) == NULL)
      return false;
  return true;
}

static bool valid_dns(const char *s)
{
  size_t label = 0, total = strlen(s);
  char prev = '.';
  if (total == 0 || total > 253)
    return false;
  for (; *s != '\0'; s++) {
    if (*s == '.') {
      if (label == 0 || prev == '-')
        return false;
      label = 0;
    } else if (islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
               (*s == '-' && label > 0)) {
      if (++label > 63)
        return false;
    } else {
      return false;
    }
    prev = *s;
  }
  return label > 0 && prev != '-';
}

bool ccci_valid_server_name(const char *s)
{
  size_t l = strlen(s), i;
  if (l == 0 || l > 253 || !isalnum((unsigned char)s[0]))
    return false;
  for (i = 0; i < l; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("._-", s[i]) == NULL)
      return false;
  return true;
}

static bool valid_server(const char *s)
{
  return ccci_valid_server_name(s);
}

bool ccci_valid_server_label(const char *s)
{
  size_t l = strlen(s), i;
  if (l == 0 || l > 63 ||
      !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
    return false;
  for (i = 0; i < l; i++)
    if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
        strchr("._-", s[i]) == NULL)
      return false;
  return true;
}

/* Where health and data checks connect: `host:port` (TLS, SNI and Host the
 * app's domain) or `http://host:port` (plain HTTP, for tests and labs). */
static bool valid_gateway(const char *s)
{
  const char *colon;
  uint64_t port;
  if (strncmp(s, "http://", 7) == 0)
    s += 7;
  colon = strrchr(s, ':');
  if (colon == NULL || strchr(s, '/') != NULL || !valid_listen(s))
    return false;
  return ccci_parse_u64(colon + 1, &port) == 0 && port >= 1;
}

static bool valid_repo_part(const char *s, size_t n)
{
  size_t i;
  if (n == 0 || n > 100 || (n <= 2 && s[0] == '.'))
    return false;
  for (i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
      return false;
  return true;
}

static bool valid_repo(const char *s)
{
  const char *slash = strchr(s, '/');
  if (slash == NULL)
    return false;
  return valid_repo_part(s, (size_t)(slash - s)) &&
         valid_repo_part(slash + 1, strlen(slash + 1));
}

static bool valid_env_name(const char *s)
{
  if (!isalpha((unsigned char)*s) && *s != '_')
    return false;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return false;
  return true;
}

/* harness.env may not set a variable of the harness contract: the harness
 * would see it twice, and which one wins depends on its language. */
static bool valid_harness_env_name(const char *s)
{
  return valid_env_name(s) && strncmp(s, "CCCI_", 5) != 0 &&
         strcmp(s, "ABRA_DIR") != 0;
}

static char *resolve_path(const char *v, const char *base_dir)
{
  return ccci_path_join(base_dir, v);
}

/* URLs are kept without trailing slashes, so `<url>/api/v1` and the links
 * built on them join with exactly one. */
static char *strip_slashes(const char *v, const char *base_dir)
{
  char *u = ccci_xstrdup(v);
  size_t l = strlen(u);
  (void)base_dir;
  while (l > 0 && u[l - 1] == '/')
    u[--l] = '\0';
  return u;
}

static const struct ccci_keytab_type t_path = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "path",
    .expect = "a path",
    .convert = resolve_path,
};
static const struct ccci_keytab_type t_secret_path = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "path (secret file)",
    .expect = "a path to a file",
    .convert = resolve_path,
};
static const struct ccci_keytab_type t_url = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "URL",
    .expect = "an http:// or https:// URL",
    .valid = valid_url,
    .convert = strip_slashes,
};
static const struct ccci_keytab_type t_listen = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "host:port",
    .expect = "host:port, like 127.0.0.1:8080",
    .valid = valid_listen,
};
static const struct ccci_keytab_type t_dns = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "DNS name",
    .expect = "a DNS name, like ci.example.org",
    .valid = valid_dns,
};
static const struct ccci_keytab_type t_server = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "server name",
    .expect = "an abra server name, like default or swarm.example.org",
    .valid = valid_server,
};
static const struct ccci_keytab_type t_gateway = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "host:port",
    .expect = "host:port (HTTPS) or http://host:port (plain HTTP), like "
              "127.0.0.1:443",
    .valid = valid_gateway,
};
static const struct ccci_keytab_type t_template = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of strings (argv template)",
    .expect = "a non-empty list of strings (the program and its arguments)",
    .nonempty = true,
};
static const struct ccci_keytab_type t_argv = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of strings (argv)",
    .expect = "a non-empty list of strings (the program and its arguments)",
    .nonempty = true,
};
static const struct ccci_keytab_type t_pathlist = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of paths",
    .expect = "a list of paths",
    .convert = resolve_path,
};
static const struct ccci_keytab_type t_repolist = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of owner/name",
    .expect = "a list of owner/name repos",
    .valid = valid_repo,
};
static const struct ccci_keytab_type t_envmap = {
    .storage = CCCI_KEYTAB_MAP,
    .doc_name = "map of string to string",
    .expect = "a map of environment variable names to strings",
    .valid_key = valid_harness_env_name,
    .key_expect = "an environment variable name ([A-Za-z_][A-Za-z0-9_]*, "
                  "not CCCI_* or ABRA_DIR: ccci sets those)",
};

static const struct ccci_keytab_type t_labels = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of labels",
    .expect = "a list of labels ([a-z0-9][a-z0-9._-]*, at most 63 bytes), "
              "like [heavy, arm64]",
    .valid = ccci_valid_server_label,
};

/* One server of `servers:`. */
#define SVOFF(field) offsetof(struct ccci_server_conf, field)
static const struct ccci_keytab_key server_keys[] = {
    {"name", &t_server, SVOFF(name), NULL, "required", 0, 0,
     "The abra server (`abra app new --server`; `CCCI_SERVER`)."},
    {"capacity", &ccci_keytab_int, SVOFF(capacity), "1", NULL, 0, 1024,
     "Runs at once on it (0: it takes none)."},
    {"domain_suffix", &t_dns, SVOFF(domain_suffix), NULL,
     "`harness.domain_suffix`", 0, 0,
     "App domains on it are `<recipe>-pr<N>.<domain_suffix>`; its Traefik "
     "answers for them."},
    {"gateway", &t_gateway, SVOFF(gateway), NULL, "none: DNS", 0, 0,
     "Where health and data checks reach its apps (`CCCI_GATEWAY`)."},
    {"gateway_insecure", &ccci_keytab_bool, SVOFF(gateway_insecure), "false",
     NULL, 0, 0, "Skip TLS verification of its apps."},
    {"labels", &t_labels, SVOFF(labels), "[]", NULL, 0, 0,
     "Matched by SERVER_LABELS in recipe_meta.yml."},
};
static const struct ccci_keytab server_table = {
    server_keys, CCCI_ARRAY_LEN(server_keys), sizeof(server_keys[0]), 0};

static const char *check_server(const void *rec)
{
  const struct ccci_server_conf *sv = rec;
  return sv->name == NULL ? "needs key 'name' (the abra server)" : NULL;
}

static const struct ccci_keytab_type t_servers = {
    .storage = CCCI_KEYTAB_RECORDS,
    .doc_name = "list of {name, capacity, domain_suffix, gateway, "
                "gateway_insecure, labels}",
    .expect = "a list of servers, each {name, capacity, domain_suffix, "
              "gateway, gateway_insecure, labels}",
    .fields = &server_table,
    .record_size = sizeof(struct ccci_server_conf),
    .check = check_server,
};

#define OFF(field) offsetof(struct ccci_config, field)

/* An abra command template: YAML flow text of its default. */
#define ABRA(key, field, def, doc)                                             \
  {                                                                            \
    {"harness.abra." key,                                                      \
     &t_template,                                                              \
     OFF(harness.abra.field),                                                  \
     def,                                                                      \
     NULL,                                                                     \
     0,                                                                        \
     0,                                                                        \
     doc},                                                                     \
        CCCI_RELOAD_NEXT_RUN, true                                             \
  }

/* The one table of keys: order here is the order of docs and dumps; keys of
 * a section are contiguous. */
static const struct key keys[] = {
    {{"state_dir", &t_path, OFF(state_dir), NULL,
      "`$XDG_STATE_HOME/ccci`, else `~/.local/state/ccci`", 0, 0,
      "Runs, logs, ledger, locks and the single-instance lock."},
     CCCI_RELOAD_RESTART,
     true},
    {{"socket", &t_path, OFF(socket), NULL, "`<state_dir>/ccci.sock`", 0, 0,
      "The control socket (mode 0660; its directory is made 0750)."},
     CCCI_RELOAD_RESTART,
     true},
    {{"secrets_dir", &t_path, OFF(secrets_dir), "/run/secrets", NULL, 0, 0,
      "Every regular file under it (recursively) holds a value to mask."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"secret_files", &t_pathlist, OFF(secret_files), "[]", NULL, 0, 0,
      "More files whose values are masked."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"min_secret_len", &ccci_keytab_int, OFF(min_secret_len), "8", NULL, 1,
      4096,
      "Secret values shorter than this are not masked (and are reported)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"capacity", &ccci_keytab_int, OFF(capacity), "2", NULL, 1, 1024,
      "Runs at once (running or cancelling)."},
     CCCI_RELOAD_LIVE,
     true},
    {{"deadline", &ccci_keytab_duration, OFF(deadline_ms), "60m", NULL,
      CCCI_SEC(1), CCCI_DAY(7), "Time limit of one run."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"kill_grace", &ccci_keytab_duration, OFF(kill_grace_ms), "30s", NULL, 0,
      CCCI_HOUR(1), "From SIGTERM to SIGKILL when a run is stopped."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"teardown_grace", &ccci_keytab_duration, OFF(teardown_grace_ms), "10m",
      NULL, 0, CCCI_DAY(1),
      "Time for a teardown after cancel, deadline or orphaning."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"drain_timeout", &ccci_keytab_duration, OFF(drain_timeout_ms), "5s", NULL,
      0, CCCI_MIN(10),
      "How long a run's pipes may stay open after its supervisor exits."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"shutdown_grace", &ccci_keytab_duration, OFF(shutdown_grace_ms), "0s",
      NULL, 0, CCCI_DAY(1),
      "On daemon stop, wait this long for runs before cancelling them."},
     CCCI_RELOAD_LIVE,
     true},
    {{"log_max_bytes", &ccci_keytab_size, OFF(log_max_bytes), "256MiB", NULL,
      CCCI_KiB(64), CCCI_TiB(1),
      "Cap of one run's log; past it the head is kept."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"min_free_bytes", &ccci_keytab_size, OFF(min_free_bytes), "1GiB", NULL, 0,
      CCCI_TiB(1024),
      "Below this much free space on the state dir no run is admitted."},
     CCCI_RELOAD_LIVE,
     true},
    {{"retention.max_age", &ccci_keytab_duration, OFF(retention.max_age_ms),
      "30d", NULL, CCCI_HOUR(1), CCCI_DAY(36500),
      "Finished runs older than this lose their logs, later their meta."},
     CCCI_RELOAD_LIVE,
     true},
    {{"retention.max_bytes", &ccci_keytab_size, OFF(retention.max_bytes),
      "20GiB", NULL, CCCI_MiB(1), CCCI_TiB(1024),
      "Cap of the total size of finished runs."},
     CCCI_RELOAD_LIVE,
     true},
    {{"harness.command", &t_argv, OFF(harness.command), "[ccci, harness]", NULL,
      0, 0,
      "argv of the per-run harness; a first word `ccci` is the daemon's own "
      "binary (the example harness for demos: "
      "`[<source>/examples/example-harness]`)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.teardown_command", &t_argv, OFF(harness.teardown_command),
      "[ccci, harness, --teardown]", NULL, 0, 0,
      "argv of the teardown of a run's domain; a first word `ccci` is the "
      "daemon's own binary."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.probe_command", &t_argv, OFF(harness.probe_command),
      "[ccci, harness, --probe]", NULL, 0, 0,
      "argv of the probe of an unhealthy server (`CCCI_SERVER` names it; "
      "exit 0: reachable); a first word `ccci` is the daemon's own binary."},
     CCCI_RELOAD_LIVE,
     true},
    {{"harness.domain_suffix", &t_dns, OFF(harness.domain_suffix), "ci.local",
      NULL, 0, 0, "App domains are `<recipe>-pr<N>.<domain_suffix>`."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.user", &ccci_keytab_string, OFF(harness.user), NULL,
      "none (the daemon's)", 0, 0,
      "Run the harness as this user (a separate uid in the docker group)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.env", &t_envmap, OFF(harness.env), "{}", NULL, 0, 0,
      "Extra environment variables for the harness (not `CCCI_*` or "
      "`ABRA_DIR`, "
      "which ccci sets; not for secrets: use "
      "secret files)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.server", &t_server, OFF(harness.server), "default", NULL, 0, 0,
      "abra server the apps deploy on (`CCCI_SERVER`; `default` is abra's "
      "name for the local server)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.abra_dir", &t_path, OFF(harness.abra_dir), NULL,
      "`~/.abra` of the harness user (`harness.user`, else the daemon's)", 0, 0,
      "The operator's abra state; each run links its `servers/` into the "
      "run's own ABRA_DIR (`CCCI_ABRA_DIR_REAL`)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.overlays_dir", &t_path, OFF(harness.overlays_dir), NULL, "none",
      0, 0,
      "The operator's per-recipe files: `<dir>/<recipe>/recipe_meta.yml` "
      "(docs/recipe-meta.md) and hook files (`CCCI_OVERLAYS_DIR`)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.gateway", &t_gateway, OFF(harness.gateway), NULL,
      "none: the app domain resolves by DNS", 0, 0,
      "Where health and data checks connect (the swarm's Traefik), with SNI "
      "and Host set to the app domain (`CCCI_GATEWAY`)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.gateway_insecure", &ccci_keytab_bool,
      OFF(harness.gateway_insecure), "false", NULL, 0, 0,
      "Skip TLS verification of the apps (a staging certificate)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.chromium", &ccci_keytab_string, OFF(harness.chromium),
      "chromium", NULL, 0, 0,
      "The browser for SCREENSHOT (Debian's `chromium` package): a command "
      "on PATH or a path. Missing, the install tier notes why and passes."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"harness.git_token_file", &t_secret_path, OFF(harness.git_token_file),
      NULL, "none", 0, 0,
      "File holding a token for private recipe mirrors; git gets it through "
      "an askpass helper, never argv or the log (`CCCI_GIT_TOKEN_FILE`)."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    ABRA("new", new,
         "[abra, app, new, \"{recipe}\", --server, \"{server}\", --domain, "
         "\"{domain}\", --chaos, --offline, --no-input]",
         "Create the app env of a recipe checkout."),
    ABRA("secret_generate", secret_generate,
         "[abra, app, secret, generate, \"{domain}\", --all, --chaos, "
         "--offline, --no-input]",
         "Generate every secret of the app."),
    ABRA("secret_insert", secret_insert,
         "[abra, app, secret, insert, \"{domain}\", \"{secret}\", "
         "\"{version}\", \"{file}\", --file, --chaos, --offline, --no-input]",
         "Insert one secret's value from a file (`generate: false` in "
         "recipe_meta.yml)."),
    ABRA("deploy", deploy,
         "[abra, app, deploy, \"{domain}\", --chaos, --offline, --no-input, "
         "--no-converge-checks]",
         "Deploy (or redeploy in place) the checkout as it is."),
    ABRA("undeploy", undeploy,
         "[abra, app, undeploy, \"{domain}\", --no-input]",
         "Remove the app's services."),
    ABRA("volume_remove", volume_remove,
         "[abra, app, volume, remove, \"{domain}\", --force, --no-input]",
         "Remove the app's volumes."),
    ABRA("secret_remove", secret_remove,
         "[abra, app, secret, remove, \"{domain}\", --all, --no-input]",
         "Remove the app's secrets."),
    ABRA("remove", remove,
         "[abra, app, remove, \"{domain}\", --force, --no-input]",
         "Remove the app env."),
    ABRA("backup", backup,
         "[abra, app, backup, create, \"{domain}\", --no-input]",
         "Back the app up (backupbot)."),
    ABRA("snapshots", snapshots,
         "[abra, app, backup, snapshots, \"{domain}\", --no-input]",
         "List the app's backup snapshots, one per line."),
    ABRA("restore", restore, "[abra, app, restore, \"{domain}\", --no-input]",
         "Restore the newest snapshot."),
    ABRA("run", run,
         "[abra, app, run, \"{domain}\", \"{service}\", --no-tty, --, "
         "\"{args}\"]",
         "Run a command in a service (`{args}`: zero or more words)."),
    ABRA("services", services,
         "[docker, --context, \"{server}\", service, ls, --filter, "
         "\"label=com.docker.stack.namespace={stack}\", --format, "
         "\"{{.Name}} {{.Replicas}}\"]",
         "List the stack's services and replicas."),
    ABRA("labels", labels,
         "[docker, --context, \"{server}\", service, inspect, "
         "\"{stack}_app\", --format, \"{{json .Spec.Labels}}\"]",
         "The labels of the app service (version, chaos version)."),
    ABRA("volumes", volumes,
         "[docker, --context, \"{server}\", volume, ls, --quiet, --filter, "
         "\"label=com.docker.stack.namespace={stack}\"]",
         "List the stack's volumes."),
    ABRA("secrets", secrets,
         "[docker, --context, \"{server}\", secret, ls, --filter, "
         "\"label=com.docker.stack.namespace={stack}\", --format, "
         "\"{{.Name}}\"]",
         "List the stack's secrets, one name per line (`--quiet` would "
         "print IDs, which name no stack)."),
    ABRA("probe", probe,
         "[docker, --context, \"{server}\", info, --format, "
         "\"{{.Swarm.LocalNodeState}}\"]",
         "Reach the server (`ccci harness --probe`): exit 0 when it answers."),
    {{"harness.connection_errors", &ccci_keytab_strings,
      OFF(harness.connection_errors),
      "[\"error during connect\", \"cannot connect to the docker daemon\", "
      "\"connection refused\", \"no route to host\", \"i/o timeout\", "
      "\"connection reset by peer\", \"could not resolve hostname\", "
      "\"ssh: handshake failed\", \"unable to connect to\"]",
      NULL, 0, 0,
      "Text in an abra or docker call's output (any case) that means its "
      "server could not be reached: the run ends `error` naming the server, "
      "and the server's connection errors count towards "
      "`pool.unhealthy_after`."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"janitor.interval", &ccci_keytab_duration, OFF(janitor.interval_ms), "5m",
      NULL, CCCI_SEC(1), CCCI_DAY(1), "Period of the janitor sweep."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.url", &t_url, OFF(forge.url), NULL, "none (no forge: local runs)",
      0, 0, "Base URL of the Gitea or Forgejo (API under `<url>/api/v1`)."},
     CCCI_RELOAD_RESTART,
     true},
    {{"forge.token_file", &t_secret_path, OFF(forge.token_file), NULL, "none",
      0, 0, "File holding the bot's API token (re-read on SIGHUP)."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.repos", &t_repolist, OFF(forge.repos), "[]", NULL, 0, 0,
      "Enrolled repos, `owner/name`."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.poll_interval", &ccci_keytab_duration, OFF(forge.poll_interval_ms),
      "30s", NULL, CCCI_SEC(1), CCCI_DAY(1), "Poll period per repo."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.max_connections", &ccci_keytab_int, OFF(forge.max_connections),
      "16", NULL, 1, 256, "Forge requests in flight at most."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.allowlist", &ccci_keytab_strings, OFF(forge.allowlist), "[]", NULL,
      0, 0, "Forge users allowed to trigger although not org members."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.auth_cache", &ccci_keytab_duration, OFF(forge.auth_cache_ms),
      "10m", NULL, 0, CCCI_DAY(1), "How long membership answers are cached."},
     CCCI_RELOAD_LIVE,
     true},
    {{"forge.status_context", &ccci_keytab_string, OFF(forge.status_context),
      "ccci/testme", NULL, 0, 0, "Context of the commit statuses."},
     CCCI_RELOAD_NEXT_RUN,
     true},
    {{"forge.webhook_secret_file", &t_secret_path,
      OFF(forge.webhook_secret_file), NULL, "none", 0, 0,
      "File holding the webhook secret; enables `POST /hook`."},
     CCCI_RELOAD_LIVE,
     true},
    {{"http.listen", &t_listen, OFF(http.listen), "127.0.0.1:8080", NULL, 0, 0,
      "Address of the HTTP front (port 0: any, reported by status)."},
     CCCI_RELOAD_RESTART,
     true},
    {{"http.public_url", &t_url, OFF(http.public_url), NULL, "none", 0, 0,
      "Base of links posted to the forge."},
     CCCI_RELOAD_LIVE,
     true},
    {{"servers", &t_servers, OFF(servers), "[]", NULL, 0, 0,
      "The swarm server pool (docs/architecture.md, \"The server pool\"). "
      "Empty: one implicit server, `harness.server` with `capacity`, "
      "`harness.domain_suffix` and `harness.gateway`. Set: `capacity` and "
      "those keys are not used for scheduling."},
     CCCI_RELOAD_LIVE,
     true},
    {{"pool.unhealthy_after", &ccci_keytab_int, OFF(pool.unhealthy_after), "3",
      NULL, 1, 1000,
      "A server whose abra calls fail with connection errors this many "
      "times in a row gets no new run until a probe reaches it."},
     CCCI_RELOAD_LIVE,
     true},
    {{"pool.probe_min", &ccci_keytab_duration, OFF(pool.probe_min_ms), "10s",
      NULL, CCCI_SEC(1), CCCI_HOUR(1),
      "First wait before probing an unhealthy server; doubled after each "
      "failed probe."},
     CCCI_RELOAD_LIVE,
     true},
    {{"pool.probe_max", &ccci_keytab_duration, OFF(pool.probe_max_ms), "5m",
      NULL, CCCI_SEC(1), CCCI_DAY(1), "Longest wait between probes."},
     CCCI_RELOAD_LIVE,
     true},
    {{"pool.probe_timeout", &ccci_keytab_duration, OFF(pool.probe_timeout_ms),
      "1m", NULL, CCCI_SEC(1), CCCI_HOUR(1),
      "A probe still running after this is killed and counts as failed."},
     CCCI_RELOAD_LIVE,
     true},
};

static const struct ccci_keytab table = {
    keys, CCCI_ARRAY_LEN(keys), sizeof(keys[0]), offsetof(struct key, kt)};

/* ---- defaults ---- */

static char *default_state_dir(void)
{
  const char *xdg = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  if (xdg != NULL && xdg[0] == '/')
    return ccci_xasprintf("%s/ccci", xdg);
  if (home == NULL || home[0] != '/') {
    struct passwd *pw = getpwuid(getuid());
    home = pw != NULL ? pw->pw_dir : "/";
  }
  return ccci_xasprintf("%s/.local/state/ccci", home);
}

/* The home of @p user (NULL: the daemon's own: $HOME when absolute, else
 * its passwd entry), or NULL when unknown. Allocated. getpwnam_r, since
 * configs also load on the thread pool. */
static char *home_of(const char *user)
{
  const char *home = getenv("HOME");
  struct passwd pw, *res = NULL;
  char buf[4096];
  int r;

  if (user == NULL && home != NULL && home[0] == '/')
    return ccci_xstrdup(home);
  if (user != NULL)
    r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
  else
    r = getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res);
  if (r != 0 || res == NULL || pw.pw_dir == NULL || pw.pw_dir[0] != '/')
    return NULL;
  return ccci_xstrdup(pw.pw_dir);
}

/* `~/.abra` of the harness user: abra's own default for that user. */
static char *default_abra_dir(const struct ccci_config *cfg)
{
  char *home = home_of(cfg->harness.user), *dir;
  if (home == NULL)
    home = ccci_xstrdup("/");
  dir = ccci_path_join(home, ".abra");
  free(home);
  return dir;
}

/* Keys whose default depends on the environment or on another key. */
static void finish_defaults(struct ccci_config *cfg)
{
  struct ccci_server_conf *is = &cfg->implicit_server;
  size_t i;

  if (cfg->harness.abra_dir == NULL)
    cfg->harness.abra_dir = default_abra_dir(cfg);
  if (cfg->state_dir == NULL)
    cfg->state_dir = default_state_dir();
  if (cfg->socket == NULL)
    cfg->socket = ccci_xasprintf("%s/ccci.sock", cfg->state_dir);
  for (i = 0; i < cfg->servers.n; i++)
    if (cfg->servers.v[i].domain_suffix == NULL)
      cfg->servers.v[i].domain_suffix =
          ccci_xstrdup(cfg->harness.domain_suffix);
  is->name = ccci_xstrdup(cfg->harness.server);
  is->capacity = cfg->capacity;
  is->domain_suffix = ccci_xstrdup(cfg->harness.domain_suffix);
  is->gateway =
      cfg->harness.gateway != NULL ? ccci_xstrdup(cfg->harness.gateway) : NULL;
  is->gateway_insecure = cfg->harness.gateway_insecure;
}

static void implicit_clear(struct ccci_server_conf *is)
{
  free(is->name);
  free(is->domain_suffix);
  free(is->gateway);
  memset(is, 0, sizeof(*is));
}

/* Rules across keys, after the parse: an allocated error text, or NULL. */
static char *cross_check(const char *name, const struct ccci_config *cfg)
{
  size_t i, k;
  for (i = 0; i < cfg->servers.n; i++)
    for (k = 0; k < i; k++)
      if (strcmp(cfg->servers.v[i].name, cfg->servers.v[k].name) == 0)
        return ccci_xasprintf("%s: servers: server '%s' is listed twice "
                              "(items %zu and %zu)\n",
                              name, cfg->servers.v[i].name, k + 1, i + 1);
  if (cfg->pool.probe_max_ms < cfg->pool.probe_min_ms)
    return ccci_xasprintf("%s: pool.probe_max: shorter than pool.probe_min\n",
                          name);
  return NULL;
}

size_t ccci_config_servers(const struct ccci_config *cfg,
                           const struct ccci_server_conf **out)
{
  if (cfg->servers.n > 0) {
    *out = cfg->servers.v;
    return cfg->servers.n;
  }
  *out = &cfg->implicit_server;
  return 1;
}

const struct ccci_server_conf *ccci_config_server(const struct ccci_config *cfg,
                                                  const char *name)
{
  const struct ccci_server_conf *v;
  size_t n = ccci_config_servers(cfg, &v), i;
  for (i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0)
      return &v[i];
  return NULL;
}

/* The defaults are parsed once (on whichever thread loads a config first)
 * and copied into every new config. */
static struct ccci_config defaults;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void defaults_init(void)
{
  ccci_keytab_defaults(&table, &defaults);
}

static struct ccci_config *config_new(const char *source, const char *base)
{
  struct ccci_config *cfg = ccci_xcalloc(1, sizeof(*cfg));

  pthread_once(&defaults_once, defaults_init);
  cfg->refs = 1;
  cfg->source = ccci_xstrdup(source);
  cfg->base_dir = ccci_xstrdup(base);
  ccci_keytab_copy(&table, cfg, &defaults);
  return cfg;
}

struct ccci_config *ccci_config_default(void)
{
  struct ccci_config *cfg = config_new("<embedded>", NULL);
  finish_defaults(cfg);
  return cfg;
}

int ccci_config_parse(const char *name, const char *base_dir, const char *text,
                      size_t len, struct ccci_config **out, char **errors)
{
  struct ccci_config *cfg = config_new(name, base_dir);
  int r;

  *out = NULL;
  r = ccci_keytab_parse(&table, name, base_dir, text, len,
                        CCCI_CONFIG_MAX_BYTES, cfg, errors);
  if (r < 0) {
    ccci_config_unref(cfg);
    return r;
  }
  finish_defaults(cfg);
  *errors = cross_check(name, cfg);
  if (*errors != NULL) {
    ccci_config_unref(cfg);
    return -EINVAL;
  }
  *out = cfg;
  return 0;
}

int ccci_config_load_file(const char *path, struct ccci_config **out,
                          char **errors)
{
  char *text, *base;
  size_t len;
  int r;

  *out = NULL;
  r = ccci_keytab_read_file(path, CCCI_CONFIG_MAX_BYTES, &text, &len, &base,
                            errors);
  if (r < 0)
    return r;
  r = ccci_config_parse(path, base, text, len, out, errors);
  free(base);
  free(text);
  return r;
}

char *ccci_config_default_path(void)
{
  const char *env = getenv("CCCI_CONFIG");
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  char *p;

  if (env != NULL && env[0] != '\0')
    return ccci_xstrdup(env);
  if (xdg != NULL && xdg[0] == '/')
    p = ccci_xasprintf("%s/ccci/ccci.yml", xdg);
  else if (home != NULL && home[0] == '/')
    p = ccci_xasprintf("%s/.config/ccci/ccci.yml", home);
  else
    return NULL;
  if (access(p, F_OK) == 0)
    return p;
  free(p);
  return NULL;
}

struct ccci_config *ccci_config_ref(struct ccci_config *cfg)
{
  cfg->refs++;
  return cfg;
}

void ccci_config_unref(struct ccci_config *cfg)
{
  if (cfg == NULL || --cfg->refs > 0)
    return;
  ccci_keytab_free(&table, cfg);
  implicit_clear(&cfg->implicit_server);
  free(cfg->source);
  free(cfg->base_dir);
  free(cfg);
}

/* ---- output ---- */

char *ccci_config_dump(const struct ccci_config *cfg)
{
  struct ccci_buf b;
  int r;

  ccci_buf_init(&b, SIZE_MAX);
  r = ccci_buf_printf(&b, "# effective configuration from %s\n", cfg->source);
  (void)r; /* uncapped */
  ccci_keytab_dump(&table, cfg, &b);
  return ccci_buf_detach(&b);
}

json_t *ccci_config_to_json(const struct ccci_config *cfg)
{
  json_t *root = json_object();

  json_object_set_new(root, "source", json_string(cfg->source));
  ccci_keytab_to_json(&table, cfg, root);
  return root;
}

size_t ccci_config_diff(const struct ccci_config *a,
                        const struct ccci_config *b,
                        void (*cb)(const char *key, enum ccci_reload reload,
                                   bool active, void *arg),
                        void *arg)
{
  size_t i, n = 0;
  for (i = 0; i < CCCI_ARRAY_LEN(keys); i++) {
    if (ccci_keytab_equal(&keys[i].kt, a, b))
      continue;
    n++;
    if (cb != NULL)
      cb(keys[i].kt.name, keys[i].reload, keys[i].active, arg);
  }
  return n;
}

static const char *reload_doc(enum ccci_reload r)
{
  switch (r) {
  case CCCI_RELOAD_LIVE:
    return "live";
  case CCCI_RELOAD_NEXT_RUN:
    return "next run";
  case CCCI_RELOAD_RESTART:
    return "restart";
  }
  return "?";
}

char *ccci_config_docs(void)
{
  struct ccci_buf b;
  size_t i;
  int r;

  ccci_buf_init(&b, SIZE_MAX);
  r = ccci_buf_printf(
      &b,
      "# Configuration reference\n\n"
      "<!-- Generated by `ccci config docs` from the key table in "
      "src/core/config.c; CI checks it is current. Do not edit by hand. -->\n\n"
      "ccci reads one YAML file: `ccci serve -c FILE`, else `$CCCI_CONFIG`, "
      "else `$XDG_CONFIG_HOME/ccci/ccci.yml` (else "
      "`~/.config/ccci/ccci.yml`) when it exists, else the embedded default "
      "(every key below at its default). Nothing is required. "
      "Keys with a dot live in a section: `retention.max_age` is written\n\n"
      "```yaml\nretention:\n  max_age: 30d\n```\n\n"
      "An empty value (`key:`, `~`, `null`) means the default. Relative "
      "paths are resolved against the directory of the file. Errors name "
      "`file:line:column` of the key, for example "
      "`ccci.yml:7:3: unknown key 'dedline'; did you mean 'deadline'?`. "
      "`ccci config check FILE` prints the effective configuration (secret "
      "files as paths, never their contents) or every error.\n\n"
      "Types: a *duration* is one or more `<integer><unit>` with units `ms`, "
      "`s`, `m`, `h`, `d` (`90s`, `1h30m`; `0` alone is allowed); a *size* is "
      "an integer with an optional unit `B`, `KiB`, `MiB`, `GiB`, `TiB` "
      "(powers of 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000).\n\n"
      "Reload (SIGHUP parses the whole file and swaps it atomically; on any "
      "error the old configuration stays): *live* applies at once, *next "
      "run* applies to runs started after the reload, *restart* only after "
      "the daemon restarts (the daemon logs a warning naming the key).\n\n"
      "Command templates (`harness.abra.*`): each is an argv list (no "
      "shell) that `ccci harness` runs for one abra or docker call, after "
      "replacing the placeholders `{domain}`, `{server}`, `{recipe}`, "
      "`{stack}`, `{service}`, `{secret}`, `{version}` and `{file}` inside "
      "each word; a word that is exactly `{args}` becomes zero or more "
      "words; any other `{...}` text stays as written (docker's "
      "`{{.Name}}`). Quote words holding braces in YAML flow lists. The "
      "defaults suit current abra (0.10/0.11); change one to follow "
      "another version without a rebuild.\n\n"
      "*Used* says whether this version acts on the key yet; a key not yet "
      "used is accepted and checked, and `ccci serve` warns when one is set "
      "to something other than its default.\n\n"
      "| key | type | default | range | reload | used | meaning |\n"
      "|---|---|---|---|---|---|---|\n");
  for (i = 0; i < CCCI_ARRAY_LEN(keys); i++) {
    const struct key *k = &keys[i];
    char range[80] = "";
    char *def;
    if (k->kt.type->storage == CCCI_KEYTAB_U64) {
      char lo[32], hi[32];
      ccci_keytab_format(&k->kt, k->kt.min, lo);
      ccci_keytab_format(&k->kt, k->kt.max, hi);
      snprintf(range, sizeof(range), "%s to %s", lo, hi);
    }
    def = k->kt.def_doc != NULL ? ccci_xstrdup(k->kt.def_doc)
                                : ccci_xasprintf("`%s`", k->kt.def);
    r = ccci_buf_printf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n",
                        k->kt.name, k->kt.type->doc_name, def, range,
                        reload_doc(k->reload), k->active ? "yes" : "not yet",
                        k->kt.doc);
    free(def);
  }
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}
