/* Unit tests of config: YAML parsing, defaults, errors, dump and docs. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/core/config.h"
#include "tmpdir.h"

#define NAME "t.yml"
#define BASE "/base"

/* Every key of the table, in table order. */
static const char *const all_keys[] = {
    "state_dir",
    "socket",
    "secrets_dir",
    "secret_files",
    "min_secret_len",
    "capacity",
    "deadline",
    "kill_grace",
    "teardown_grace",
    "drain_timeout",
    "shutdown_grace",
    "log_max_bytes",
    "min_free_bytes",
    "retention.max_age",
    "retention.max_bytes",
    "harness.command",
    "harness.teardown_command",
    "harness.probe_command",
    "harness.domain_suffix",
    "harness.user",
    "harness.env",
    "harness.server",
    "harness.abra_dir",
    "harness.overlays_dir",
    "harness.gateway",
    "harness.gateway_insecure",
    "harness.chromium",
    "harness.git_token_file",
    "harness.abra.new",
    "harness.abra.secret_generate",
    "harness.abra.secret_insert",
    "harness.abra.deploy",
    "harness.abra.undeploy",
    "harness.abra.volume_remove",
    "harness.abra.secret_remove",
    "harness.abra.remove",
    "harness.abra.backup",
    "harness.abra.snapshots",
    "harness.abra.restore",
    "harness.abra.run",
    "harness.abra.services",
    "harness.abra.labels",
    "harness.abra.volumes",
    "harness.abra.secrets",
    "harness.abra.probe",
    "harness.connection_errors",
    "janitor.interval",
    "forge.url",
    "forge.token_file",
    "forge.repos",
    "forge.poll_interval",
    "forge.max_connections",
    "forge.allowlist",
    "forge.auth_cache",
    "forge.status_context",
    "forge.webhook_secret_file",
    "http.listen",
    "http.public_url",
    "servers",
    "pool.unhealthy_after",
    "pool.probe_min",
    "pool.probe_max",
    "pool.probe_timeout",
};

/* ---- helpers ---- */

static struct ccci_config *parse_ok_at(const char *base, const char *text)
{
  struct ccci_config *cfg = NULL;
  char *errors = NULL;
  int r = ccci_config_parse(NAME, base, text, strlen(text), &cfg, &errors);
  if (r != 0) {
    /* Free before failing, so a failure is not also reported as a leak. */
    print_error("unexpected errors:\n%s", errors ? errors : "(none)\n");
    free(errors);
    errors = NULL;
  }
  assert_int_equal(r, 0);
  assert_null(errors);
  assert_non_null(cfg);
  assert_int_equal(cfg->refs, 1);
  return cfg;
}

static struct ccci_config *parse_ok(const char *text)
{
  return parse_ok_at(BASE, text);
}

/* Parse @p len bytes that must fail; returns the error text. */
static char *parse_fail_len(const char *text, size_t len)
{
  struct ccci_config *cfg = (struct ccci_config *)1;
  char *errors = NULL;
  int r = ccci_config_parse(NAME, BASE, text, len, &cfg, &errors);
  if (r == 0) {
    /* Free before failing, so a failure is not also reported as a leak. */
    print_error("accepted, but errors were expected\n");
    ccci_config_unref(cfg);
    cfg = NULL;
  }
  assert_int_equal(r, -EINVAL);
  assert_null(cfg);
  assert_non_null(errors);
  return errors;
}

static char *parse_fail(const char *text)
{
  return parse_fail_len(text, strlen(text));
}

/* @p text must fail with exactly the error text @p want. */
static void expect_errors(const char *text, const char *want)
{
  char *errors = parse_fail(text);
  assert_string_equal(errors, want);
  free(errors);
}

static size_t count_lines(const char *s)
{
  size_t n = 0;
  for (; *s != '\0'; s++)
    n += *s == '\n';
  return n;
}

static bool has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Per-test state: the environment the defaults read, saved around the test,
 * and a private temporary directory, removed afterwards (also on failure). */
struct fixture {
  char *xdg_state;
  char *home;
  char *xdg_config;
  char *ccci_config;
  char *dir;
};

static char *dup_env(const char *name)
{
  return ccci_xstrdup(getenv(name));
}

static void put_env(const char *name, const char *value)
{
  if (value != NULL)
    assert_int_equal(setenv(name, value, 1), 0);
  else
    assert_int_equal(unsetenv(name), 0);
}

static int setup_fixture(void **state)
{
  struct fixture *f = ccci_xcalloc(1, sizeof(*f));

  f->xdg_state = dup_env("XDG_STATE_HOME");
  f->home = dup_env("HOME");
  f->xdg_config = dup_env("XDG_CONFIG_HOME");
  f->ccci_config = dup_env("CCCI_CONFIG");
  *state = f;
  /* The loader resolves the file's directory with realpath(). */
  f->dir = tmpdir_make("config");
  if (f->dir == NULL) {
    free(f->xdg_state);
    free(f->home);
    free(f->xdg_config);
    free(f->ccci_config);
    free(f);
    return -1;
  }
  return 0;
}

static int teardown_fixture(void **state)
{
  struct fixture *f = *state;
  int r = tmpdir_remove(f->dir);

  put_env("XDG_STATE_HOME", f->xdg_state);
  put_env("HOME", f->home);
  put_env("XDG_CONFIG_HOME", f->xdg_config);
  put_env("CCCI_CONFIG", f->ccci_config);
  free(f->xdg_state);
  free(f->home);
  free(f->xdg_config);
  free(f->ccci_config);
  free(f->dir);
  free(f);
  return r;
}

static void write_text(const char *path, const char *text, size_t len)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

/* Every key at its default, except state_dir and socket (environment). */
/* The abra templates of the notes, exactly (the fake abra accepts these). */
static void check_abra_defaults(const struct ccci_config *cfg)
{
  const struct {
    const struct ccci_strlist *l;
    const char *joined;
  } want[] = {
      {&cfg->harness.abra.new,
       "abra app new {recipe} --server {server} --domain {domain} --chaos "
       "--offline --no-input"},
      {&cfg->harness.abra.secret_generate,
       "abra app secret generate {domain} --all --chaos --offline --no-input"},
      {&cfg->harness.abra.secret_insert,
       "abra app secret insert {domain} {secret} {version} {file} --file "
       "--chaos --offline --no-input"},
      {&cfg->harness.abra.deploy,
       "abra app deploy {domain} --chaos --offline --no-input "
       "--no-converge-checks"},
      {&cfg->harness.abra.undeploy, "abra app undeploy {domain} --no-input"},
      {&cfg->harness.abra.volume_remove,
       "abra app volume remove {domain} --force --no-input"},
      {&cfg->harness.abra.secret_remove,
       "abra app secret remove {domain} --all --no-input"},
      {&cfg->harness.abra.remove,
       "abra app remove {domain} --force --no-input"},
      {&cfg->harness.abra.backup, "abra app backup create {domain} --no-input"},
      {&cfg->harness.abra.snapshots,
       "abra app backup snapshots {domain} --no-input"},
      {&cfg->harness.abra.restore, "abra app restore {domain} --no-input"},
      {&cfg->harness.abra.run,
       "abra app run {domain} {service} --no-tty -- {args}"},
      {&cfg->harness.abra.services,
       "docker --context {server} service ls --filter "
       "label=com.docker.stack.namespace={stack} --format|{{.Name}} "
       "{{.Replicas}}"},
      {&cfg->harness.abra.labels,
       "docker --context {server} service inspect {stack}_app "
       "--format|{{json .Spec.Labels}}"},
      {&cfg->harness.abra.volumes,
       "docker --context {server} volume ls --quiet --filter "
       "label=com.docker.stack.namespace={stack}"},
      {&cfg->harness.abra.secrets,
       "docker --context {server} secret ls --filter "
       "label=com.docker.stack.namespace={stack} --format {{.Name}}"},
  };
  size_t i, j;
  for (i = 0; i < CCCI_ARRAY_LEN(want); i++) {
    /* Words joined by ' ', but '|' before a last word holding a space. */
    struct ccci_buf b;
    char *got;
    int r = 0;
    ccci_buf_init(&b, SIZE_MAX);
    for (j = 0; j < want[i].l->n && r == 0; j++) {
      const char *w = want[i].l->v[j];
      r = ccci_buf_printf(&b, "%s%s",
                          j == 0 ? "" : (strchr(w, ' ') ? "|" : " "), w);
    }
    got = ccci_buf_detach(&b);
    assert_string_equal(got, want[i].joined);
    assert_null(want[i].l->v[want[i].l->n]);
    free(got);
  }
}

static void check_defaults(const struct ccci_config *cfg)
{
  assert_string_equal(cfg->secrets_dir, "/run/secrets");
  assert_int_equal(cfg->secret_files.n, 0);
  assert_int_equal(cfg->min_secret_len, 8);
  assert_int_equal(cfg->capacity, 2);
  assert_int_equal(cfg->deadline_ms, 3600000);
  assert_int_equal(cfg->kill_grace_ms, 30000);
  assert_int_equal(cfg->teardown_grace_ms, 600000);
  assert_int_equal(cfg->drain_timeout_ms, 5000);
  assert_int_equal(cfg->shutdown_grace_ms, 0);
  assert_int_equal(cfg->log_max_bytes, 256ull * 1024 * 1024);
  assert_int_equal(cfg->min_free_bytes, 1024ull * 1024 * 1024);
  assert_int_equal(cfg->retention.max_age_ms, 30ull * 24 * 3600 * 1000);
  assert_int_equal(cfg->retention.max_bytes, 20ull * 1024 * 1024 * 1024);
  /* `ccci` is the daemon's own binary (the runner substitutes it). */
  assert_int_equal(cfg->harness.command.n, 2);
  assert_string_equal(cfg->harness.command.v[0], "ccci");
  assert_string_equal(cfg->harness.command.v[1], "harness");
  assert_int_equal(cfg->harness.teardown_command.n, 3);
  assert_string_equal(cfg->harness.teardown_command.v[0], "ccci");
  assert_string_equal(cfg->harness.teardown_command.v[1], "harness");
  assert_string_equal(cfg->harness.teardown_command.v[2], "--teardown");
  assert_string_equal(cfg->harness.domain_suffix, "ci.local");
  assert_null(cfg->harness.user);
  assert_int_equal(cfg->harness.env.n, 0);
  assert_string_equal(cfg->harness.server, "default");
  assert_non_null(cfg->harness.abra_dir);
  assert_true(cfg->harness.abra_dir[0] == '/');
  assert_true(has_suffix(cfg->harness.abra_dir, "/.abra"));
  assert_null(cfg->harness.overlays_dir);
  assert_null(cfg->harness.gateway);
  assert_false(cfg->harness.gateway_insecure);
  assert_string_equal(cfg->harness.chromium, "chromium");
  assert_null(cfg->harness.git_token_file);
  check_abra_defaults(cfg);
  assert_int_equal(cfg->janitor.interval_ms, 300000);
  assert_null(cfg->forge.url);
  assert_null(cfg->forge.token_file);
  assert_int_equal(cfg->forge.repos.n, 0);
  assert_int_equal(cfg->forge.poll_interval_ms, 30000);
  assert_int_equal(cfg->forge.max_connections, 16);
  assert_int_equal(cfg->forge.allowlist.n, 0);
  assert_int_equal(cfg->forge.auth_cache_ms, 600000);
  assert_string_equal(cfg->forge.status_context, "ccci/testme");
  assert_null(cfg->forge.webhook_secret_file);
  assert_string_equal(cfg->http.listen, "127.0.0.1:8080");
  assert_null(cfg->http.public_url);
}

/* ---- defaults ---- */

static void test_defaults_empty_text(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  put_env("XDG_STATE_HOME", "/xdg/state");
  cfg = parse_ok("");
  check_defaults(cfg);
  assert_string_equal(cfg->source, NAME);
  assert_string_equal(cfg->base_dir, BASE);
  assert_string_equal(cfg->state_dir, "/xdg/state/ccci");
  assert_string_equal(cfg->socket, "/xdg/state/ccci/ccci.sock");
  ccci_config_unref(cfg);

  /* Without a base directory. */
  cfg = parse_ok_at(NULL, "");
  check_defaults(cfg);
  assert_null(cfg->base_dir);
  ccci_config_unref(cfg);
}

static void test_defaults_comments_only(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  put_env("XDG_STATE_HOME", "/xdg/state");
  cfg = parse_ok("# a config\n\n   # with only comments\n#\n");
  check_defaults(cfg);
  assert_string_equal(cfg->socket, "/xdg/state/ccci/ccci.sock");
  ccci_config_unref(cfg);
  cfg = parse_ok("---\n# one empty document\n...\n");
  check_defaults(cfg);
  ccci_config_unref(cfg);
}

static void test_defaults_empty_values(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  put_env("XDG_STATE_HOME", "/xdg/state");
  /* `key:`, `~` and `null` all mean the default, for every type. */
  cfg = parse_ok("state_dir:\n"
                 "socket: ~\n"
                 "secrets_dir: null\n"
                 "secret_files:\n"
                 "min_secret_len: Null\n"
                 "capacity: NULL\n"
                 "deadline:\n"
                 "kill_grace:\n"
                 "teardown_grace:\n"
                 "drain_timeout:\n"
                 "shutdown_grace:\n"
                 "log_max_bytes:\n"
                 "min_free_bytes:\n"
                 "retention:\n"
                 "  max_age:\n"
                 "  max_bytes: ~\n"
                 "harness:\n"
                 "  command:\n"
                 "  teardown_command:\n"
                 "  domain_suffix:\n"
                 "  user:\n"
                 "  env:\n"
                 "janitor:\n"
                 "forge:\n"
                 "  url:\n"
                 "  token_file:\n"
                 "  repos:\n"
                 "  poll_interval:\n"
                 "  max_connections:\n"
                 "  allowlist:\n"
                 "  auth_cache:\n"
                 "  status_context:\n"
                 "  webhook_secret_file:\n"
                 "http: ~\n");
  check_defaults(cfg);
  assert_string_equal(cfg->state_dir, "/xdg/state/ccci");
  assert_string_equal(cfg->socket, "/xdg/state/ccci/ccci.sock");
  ccci_config_unref(cfg);
}

static void test_default_config(void **state)
{
  struct ccci_config *cfg, *parsed;
  (void)state;

  put_env("XDG_STATE_HOME", "/xdg/state");
  cfg = ccci_config_default();
  assert_non_null(cfg);
  assert_int_equal(cfg->refs, 1);
  assert_string_equal(cfg->source, "<embedded>");
  check_defaults(cfg);
  assert_string_equal(cfg->state_dir, "/xdg/state/ccci");
  parsed = parse_ok("");
  assert_int_equal(ccci_config_diff(cfg, parsed, NULL, NULL), 0);
  ccci_config_unref(parsed);
  ccci_config_unref(cfg);
}

static void test_state_dir_from_env(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  put_env("XDG_STATE_HOME", "/xdg/state");
  put_env("HOME", "/home/tester");
  cfg = parse_ok("");
  assert_string_equal(cfg->state_dir, "/xdg/state/ccci");
  assert_string_equal(cfg->socket, "/xdg/state/ccci/ccci.sock");
  ccci_config_unref(cfg);

  /* Without XDG_STATE_HOME (or with a relative one): under HOME. */
  put_env("XDG_STATE_HOME", NULL);
  cfg = parse_ok("");
  assert_string_equal(cfg->state_dir, "/home/tester/.local/state/ccci");
  assert_string_equal(cfg->socket, "/home/tester/.local/state/ccci/ccci.sock");
  ccci_config_unref(cfg);
  put_env("XDG_STATE_HOME", "relative/state");
  cfg = parse_ok("");
  assert_string_equal(cfg->state_dir, "/home/tester/.local/state/ccci");
  ccci_config_unref(cfg);
}

static void test_socket_follows_state_dir(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  put_env("XDG_STATE_HOME", "/xdg/state");
  cfg = parse_ok("state_dir: st\n");
  assert_string_equal(cfg->state_dir, "/base/st");
  assert_string_equal(cfg->socket, "/base/st/ccci.sock");
  ccci_config_unref(cfg);
  cfg = parse_ok("state_dir: /srv/ccci\nsocket: ctl.sock\n");
  assert_string_equal(cfg->state_dir, "/srv/ccci");
  assert_string_equal(cfg->socket, "/base/ctl.sock");
  ccci_config_unref(cfg);
}

/* ---- every type ---- */

static void test_all_keys_set(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("state_dir: state\n"
                 "socket: /run/ccci/ctl.sock\n"
                 "secrets_dir: secrets\n"
                 "secret_files: [a.txt, /etc/b.txt, sub/c]\n"
                 "min_secret_len: 12\n"
                 "capacity: 4\n"
                 "deadline: 1h30m\n"
                 "kill_grace: 90s\n"
                 "teardown_grace: 20m\n"
                 "drain_timeout: 500ms\n"
                 "shutdown_grace: 0\n"
                 "log_max_bytes: 64KiB\n"
                 "min_free_bytes: 10MB\n"
                 "retention:\n"
                 "  max_age: 2d\n"
                 "  max_bytes: 256MiB\n"
                 "harness:\n"
                 "  command: [/opt/h, --flag, \"two words\"]\n"
                 "  teardown_command:\n"
                 "    - h\n"
                 "    - --teardown\n"
                 "  domain_suffix: ci.example.org\n"
                 "  user: ci-runner\n"
                 "  env: {FOO: bar, _X1: \"\", EMPTY: ~, N: 5}\n"
                 "janitor:\n"
                 "  interval: 1m\n"
                 "forge:\n"
                 "  url: https://git.example.org/\n"
                 "  token_file: token\n"
                 "  repos: [owner/name, coop-cloud/a.b_c]\n"
                 "  poll_interval: 45s\n"
                 "  max_connections: 4\n"
                 "  allowlist: [alice, bob]\n"
                 "  auth_cache: 0\n"
                 "  status_context: my/ctx\n"
                 "  webhook_secret_file: /etc/hook\n"
                 "http:\n"
                 "  listen: 0.0.0.0:9000\n"
                 "  public_url: http://ci.example.org/runs//\n");
  /* Paths: relative ones resolved against the base, absolute ones kept. */
  assert_string_equal(cfg->state_dir, "/base/state");
  assert_string_equal(cfg->socket, "/run/ccci/ctl.sock");
  assert_string_equal(cfg->secrets_dir, "/base/secrets");
  assert_int_equal(cfg->secret_files.n, 3);
  assert_string_equal(cfg->secret_files.v[0], "/base/a.txt");
  assert_string_equal(cfg->secret_files.v[1], "/etc/b.txt");
  assert_string_equal(cfg->secret_files.v[2], "/base/sub/c");
  assert_int_equal(cfg->min_secret_len, 12);
  assert_int_equal(cfg->capacity, 4);
  assert_int_equal(cfg->deadline_ms, 5400000);
  assert_int_equal(cfg->kill_grace_ms, 90000);
  assert_int_equal(cfg->teardown_grace_ms, 1200000);
  assert_int_equal(cfg->drain_timeout_ms, 500);
  assert_int_equal(cfg->shutdown_grace_ms, 0);
  assert_int_equal(cfg->log_max_bytes, 65536);
  assert_int_equal(cfg->min_free_bytes, 10000000);
  assert_int_equal(cfg->retention.max_age_ms, 172800000);
  assert_int_equal(cfg->retention.max_bytes, 268435456);
  /* argv is not a path: it is kept as written. */
  assert_int_equal(cfg->harness.command.n, 3);
  assert_string_equal(cfg->harness.command.v[0], "/opt/h");
  assert_string_equal(cfg->harness.command.v[1], "--flag");
  assert_string_equal(cfg->harness.command.v[2], "two words");
  assert_int_equal(cfg->harness.teardown_command.n, 2);
  assert_string_equal(cfg->harness.teardown_command.v[0], "h");
  assert_string_equal(cfg->harness.teardown_command.v[1], "--teardown");
  assert_string_equal(cfg->harness.domain_suffix, "ci.example.org");
  assert_string_equal(cfg->harness.user, "ci-runner");
  /* The env map keeps file order; an empty value is the empty string. */
  assert_int_equal(cfg->harness.env.n, 4);
  assert_string_equal(cfg->harness.env.keys[0], "FOO");
  assert_string_equal(cfg->harness.env.vals[0], "bar");
  assert_string_equal(cfg->harness.env.keys[1], "_X1");
  assert_string_equal(cfg->harness.env.vals[1], "");
  assert_string_equal(cfg->harness.env.keys[2], "EMPTY");
  assert_string_equal(cfg->harness.env.vals[2], "");
  assert_string_equal(cfg->harness.env.keys[3], "N");
  assert_string_equal(cfg->harness.env.vals[3], "5");
  assert_int_equal(cfg->janitor.interval_ms, 60000);
  /* URLs lose their trailing slashes. */
  assert_string_equal(cfg->forge.url, "https://git.example.org");
  assert_string_equal(cfg->forge.token_file, "/base/token");
  assert_int_equal(cfg->forge.repos.n, 2);
  assert_string_equal(cfg->forge.repos.v[0], "owner/name");
  assert_string_equal(cfg->forge.repos.v[1], "coop-cloud/a.b_c");
  assert_int_equal(cfg->forge.poll_interval_ms, 45000);
  assert_int_equal(cfg->forge.max_connections, 4);
  assert_int_equal(cfg->forge.allowlist.n, 2);
  assert_string_equal(cfg->forge.allowlist.v[0], "alice");
  assert_string_equal(cfg->forge.allowlist.v[1], "bob");
  assert_int_equal(cfg->forge.auth_cache_ms, 0);
  assert_string_equal(cfg->forge.status_context, "my/ctx");
  assert_string_equal(cfg->forge.webhook_secret_file, "/etc/hook");
  assert_string_equal(cfg->http.listen, "0.0.0.0:9000");
  assert_string_equal(cfg->http.public_url, "http://ci.example.org/runs");
  ccci_config_unref(cfg);
}

static void test_paths(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("secrets_dir: ../s\nforge:\n  token_file: t/tok\n");
  assert_string_equal(cfg->secrets_dir, "/base/../s");
  assert_string_equal(cfg->forge.token_file, "/base/t/tok");
  ccci_config_unref(cfg);
  /* Without a base, relative paths stay relative (to the working dir). */
  cfg = parse_ok_at(NULL, "secrets_dir: s\nsecret_files: [x, /y]\n");
  assert_string_equal(cfg->secrets_dir, "s");
  assert_string_equal(cfg->secret_files.v[0], "x");
  assert_string_equal(cfg->secret_files.v[1], "/y");
  ccci_config_unref(cfg);

  expect_errors("secrets_dir: \"\"\n",
                "t.yml:1:1: secrets_dir: expected a path, got ''\n");
  expect_errors("forge:\n  webhook_secret_file: ''\n",
                "t.yml:2:3: forge.webhook_secret_file: expected a path to a "
                "file, got ''\n");
  expect_errors("secret_files: [a, '']\n",
                "t.yml:1:19: secret_files[1]: expected a list of paths, got "
                "''\n");
  expect_errors("secret_files: a.txt\n",
                "t.yml:1:1: secret_files: expected a list of paths, got a "
                "scalar\n");
}

static void test_string(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("forge:\n  status_context: 'ci: \"x\"'\n");
  assert_string_equal(cfg->forge.status_context, "ci: \"x\"");
  ccci_config_unref(cfg);
  expect_errors("forge:\n  status_context: \"\"\n",
                "t.yml:2:3: forge.status_context: expected a non-empty "
                "string, got ''\n");
  /* The harness contract's own variables cannot be set through
   * harness.env (the harness would see them twice). */
  expect_errors("harness:\n  env:\n    CCCI_GATEWAY: x\n    ABRA_DIR: y\n"
                "    OK: z\n",
                "t.yml:3:5: harness.env: expected an environment variable "
                "name ([A-Za-z_][A-Za-z0-9_]*, not CCCI_* or ABRA_DIR: ccci "
                "sets those) as key\n"
                "t.yml:4:5: harness.env: expected an environment variable "
                "name ([A-Za-z_][A-Za-z0-9_]*, not CCCI_* or ABRA_DIR: ccci "
                "sets those) as key\n");
  expect_errors("harness:\n  user: {a: b}\n",
                "t.yml:2:3: harness.user: expected a non-empty string, got "
                "a mapping\n");
  /* Control bytes and quotes are shown escaped in messages. */
  expect_errors("capacity: \"1\\t'\\\\\"\n",
                "t.yml:1:1: capacity: expected an integer, got "
                "'1\\x09\\x27\\x5c'\n");
  expect_errors("harness:\n  user: \"a\\0b\"\n",
                "t.yml:2:3: harness.user: contains a NUL byte\n");
}

static void test_url(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("forge:\n  url: http://forge.local:3000///\n"
                 "http:\n  public_url: https://ci.example.org/a/b/\n");
  assert_string_equal(cfg->forge.url, "http://forge.local:3000");
  assert_string_equal(cfg->http.public_url, "https://ci.example.org/a/b");
  ccci_config_unref(cfg);

  expect_errors("forge:\n  url: ftp://x.org\n",
                "t.yml:2:3: forge.url: expected an http:// or https:// URL, "
                "got 'ftp://x.org'\n");
  expect_errors("forge:\n  url: git.example.org\n",
                "t.yml:2:3: forge.url: expected an http:// or https:// URL, "
                "got 'git.example.org'\n");
  expect_errors("forge:\n  url: https://\n",
                "t.yml:2:3: forge.url: expected an http:// or https:// URL, "
                "got 'https://'\n");
  expect_errors("http:\n  public_url: http:///x\n",
                "t.yml:2:3: http.public_url: expected an http:// or https:// "
                "URL, got 'http:///x'\n");
  expect_errors("http:\n  public_url: http://a b\n",
                "t.yml:2:3: http.public_url: expected an http:// or https:// "
                "URL, got 'http://a b'\n");
}

static void test_listen(void **state)
{
  static const char *const good[] = {"127.0.0.1:8080", "0.0.0.0:0",
                                     "localhost:65535", "[::1]:9000",
                                     "ci-host.example.org:80"};
  size_t i;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(good); i++) {
    char *text = ccci_xasprintf("http:\n  listen: \"%s\"\n", good[i]);
    struct ccci_config *cfg = parse_ok(text);
    assert_string_equal(cfg->http.listen, good[i]);
    ccci_config_unref(cfg);
    free(text);
  }
  expect_errors("http:\n  listen: 127.0.0.1:70000\n",
                "t.yml:2:3: http.listen: expected host:port, like "
                "127.0.0.1:8080, got '127.0.0.1:70000'\n");
  expect_errors("http:\n  listen: 127.0.0.1:65536\n",
                "t.yml:2:3: http.listen: expected host:port, like "
                "127.0.0.1:8080, got '127.0.0.1:65536'\n");
  expect_errors("http:\n  listen: localhost\n",
                "t.yml:2:3: http.listen: expected host:port, like "
                "127.0.0.1:8080, got 'localhost'\n");
  expect_errors("http:\n  listen: \"localhost:\"\n",
                "t.yml:2:3: http.listen: expected host:port, like "
                "127.0.0.1:8080, got 'localhost:'\n");
  expect_errors("http:\n  listen: \":8080\"\n",
                "t.yml:2:3: http.listen: expected host:port, like "
                "127.0.0.1:8080, got ':8080'\n");
  expect_errors("http:\n  listen: \"a b:80\"\n",
                "t.yml:2:3: http.listen: expected host:port, like "
                "127.0.0.1:8080, got 'a b:80'\n");
}

/* The keys of `ccci harness`: server, abra state, overlays, gateway,
 * token file, and the abra command templates. */
static void test_harness_keys(void **state)
{
  static const char *const gateways[] = {"127.0.0.1:443", "traefik:8443",
                                         "http://127.0.0.1:8080", "[::1]:443"};
  struct ccci_config *cfg;
  size_t i;
  (void)state;

  cfg = parse_ok("harness:\n"
                 "  server: swarm-1.example.org\n"
                 "  abra_dir: abra\n"
                 "  overlays_dir: /etc/ccci/overlays\n"
                 "  gateway: 127.0.0.1:443\n"
                 "  gateway_insecure: true\n"
                 "  chromium: /usr/lib/chromium/chromium\n"
                 "  git_token_file: git-token\n"
                 "  abra:\n"
                 "    deploy: [abra, app, deploy, '{domain}', -C, -o, -n]\n"
                 "    run: [/opt/abra-0.9, app, run, '{domain}', '{args}']\n");
  assert_string_equal(cfg->harness.server, "swarm-1.example.org");
  assert_string_equal(cfg->harness.abra_dir, "/base/abra");
  assert_string_equal(cfg->harness.overlays_dir, "/etc/ccci/overlays");
  assert_string_equal(cfg->harness.gateway, "127.0.0.1:443");
  assert_true(cfg->harness.gateway_insecure);
  assert_string_equal(cfg->harness.chromium, "/usr/lib/chromium/chromium");
  assert_string_equal(cfg->harness.git_token_file, "/base/git-token");
  assert_int_equal(cfg->harness.abra.deploy.n, 7);
  assert_string_equal(cfg->harness.abra.deploy.v[3], "{domain}");
  assert_string_equal(cfg->harness.abra.deploy.v[6], "-n");
  assert_string_equal(cfg->harness.abra.run.v[0], "/opt/abra-0.9");
  /* The templates not set keep their defaults. */
  assert_string_equal(cfg->harness.abra.undeploy.v[0], "abra");
  assert_string_equal(cfg->harness.abra.undeploy.v[2], "undeploy");
  ccci_config_unref(cfg);

  for (i = 0; i < CCCI_ARRAY_LEN(gateways); i++) {
    char *text = ccci_xasprintf("harness:\n  gateway: \"%s\"\n", gateways[i]);
    cfg = parse_ok(text);
    assert_string_equal(cfg->harness.gateway, gateways[i]);
    ccci_config_unref(cfg);
    free(text);
  }
  expect_errors("harness:\n  gateway: https://traefik:443\n",
                "t.yml:2:3: harness.gateway: expected host:port (HTTPS) or "
                "http://host:port (plain HTTP), like 127.0.0.1:443, got "
                "'https://traefik:443'\n");
  expect_errors("harness:\n  gateway: \"http://h:80/x\"\n",
                "t.yml:2:3: harness.gateway: expected host:port (HTTPS) or "
                "http://host:port (plain HTTP), like 127.0.0.1:443, got "
                "'http://h:80/x'\n");
  expect_errors("harness:\n  gateway: \"h:0\"\n",
                "t.yml:2:3: harness.gateway: expected host:port (HTTPS) or "
                "http://host:port (plain HTTP), like 127.0.0.1:443, got "
                "'h:0'\n");
  expect_errors("harness:\n  server: \"my server\"\n",
                "t.yml:2:3: harness.server: expected an abra server name, like "
                "default or swarm.example.org, got 'my server'\n");
  expect_errors("harness:\n  gateway_insecure: maybe\n",
                "t.yml:2:3: harness.gateway_insecure: expected true or false, "
                "got 'maybe'\n");
  /* Each template is a non-empty argv; unknown ones name the nearest. */
  expect_errors("harness:\n  abra:\n    deploy: []\n",
                "t.yml:3:5: harness.abra.deploy: expected a non-empty list of "
                "strings (the program and its arguments), got an empty "
                "list\n");
  expect_errors("harness:\n  abra:\n    undeploy: abra app undeploy\n",
                "t.yml:3:5: harness.abra.undeploy: expected a non-empty list "
                "of strings (the program and its arguments), got a scalar\n");
  expect_errors("harness:\n  abra:\n    deply: [abra]\n",
                "t.yml:3:5: unknown key 'harness.abra.deply'; did you mean "
                "'harness.abra.deploy'?\n");
  expect_errors("harness:\n  abra: [abra]\n",
                "t.yml:2:3: harness.abra: expected a mapping of keys, got a "
                "list\n");
}

/* harness.abra_dir's default follows harness.user. */
static void test_abra_dir_default(void **state)
{
  struct ccci_config *cfg;
  (void)state;
  put_env("HOME", "/home/ops");
  cfg = parse_ok("");
  assert_string_equal(cfg->harness.abra_dir, "/home/ops/.abra");
  ccci_config_unref(cfg);
  /* Another user's home, from the passwd database (root's always exists). */
  cfg = parse_ok("harness:\n  user: root\n");
  assert_true(has_suffix(cfg->harness.abra_dir, "/.abra"));
  assert_false(has_prefix(cfg->harness.abra_dir, "/home/ops"));
  ccci_config_unref(cfg);
}

static void test_dns(void **state)
{
  char label63[64], label64[65];
  char *text, *want;
  struct ccci_config *cfg;
  (void)state;

  memset(label63, 'a', 63);
  label63[63] = '\0';
  memset(label64, 'b', 64);
  label64[64] = '\0';

  cfg = parse_ok("harness:\n  domain_suffix: ci-1.example.org\n");
  assert_string_equal(cfg->harness.domain_suffix, "ci-1.example.org");
  ccci_config_unref(cfg);
  text = ccci_xasprintf("harness:\n  domain_suffix: %s.org\n", label63);
  cfg = parse_ok(text);
  assert_true(has_prefix(cfg->harness.domain_suffix, label63));
  ccci_config_unref(cfg);
  free(text);

  text = ccci_xasprintf("harness:\n  domain_suffix: %s.org\n", label64);
  want = ccci_xasprintf("t.yml:2:3: harness.domain_suffix: expected a DNS "
                        "name, like ci.example.org, got '%.60s...'\n",
                        label64);
  expect_errors(text, want);
  free(want);
  free(text);

  expect_errors("harness:\n  domain_suffix: CI.local\n",
                "t.yml:2:3: harness.domain_suffix: expected a DNS name, like "
                "ci.example.org, got 'CI.local'\n");
  expect_errors("harness:\n  domain_suffix: -ci.local\n",
                "t.yml:2:3: harness.domain_suffix: expected a DNS name, like "
                "ci.example.org, got '-ci.local'\n");
  expect_errors("harness:\n  domain_suffix: ci-.local\n",
                "t.yml:2:3: harness.domain_suffix: expected a DNS name, like "
                "ci.example.org, got 'ci-.local'\n");
  expect_errors("harness:\n  domain_suffix: ci..local\n",
                "t.yml:2:3: harness.domain_suffix: expected a DNS name, like "
                "ci.example.org, got 'ci..local'\n");
  expect_errors("harness:\n  domain_suffix: ci_x.local\n",
                "t.yml:2:3: harness.domain_suffix: expected a DNS name, like "
                "ci.example.org, got 'ci_x.local'\n");
}

static void test_integer(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("capacity: 1024\nmin_secret_len: 1\nforge:\n"
                 "  max_connections: 256\n");
  assert_int_equal(cfg->capacity, 1024);
  assert_int_equal(cfg->min_secret_len, 1);
  assert_int_equal(cfg->forge.max_connections, 256);
  ccci_config_unref(cfg);
  expect_errors("capacity: abc\n",
                "t.yml:1:1: capacity: expected an integer, got 'abc'\n");
  expect_errors("capacity: -1\n",
                "t.yml:1:1: capacity: expected an integer, got '-1'\n");
  expect_errors("capacity: 2.5\n",
                "t.yml:1:1: capacity: expected an integer, got '2.5'\n");
  expect_errors("capacity: 1025\n",
                "t.yml:1:1: capacity: 1025 is out of range (1 to 1024)\n");
  expect_errors("capacity: 99999999999999999999\n",
                "t.yml:1:1: capacity: 99999999999999999999 is out of range "
                "(1 to 1024)\n");
  expect_errors("forge:\n  max_connections: 257\n",
                "t.yml:2:3: forge.max_connections: 257 is out of range (1 to "
                "256)\n");
}

static void test_duration(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("shutdown_grace: 0\n"
                 "drain_timeout: 500ms\n"
                 "kill_grace: 90s\n"
                 "deadline: 1h30m\n"
                 "retention:\n"
                 "  max_age: 2d\n");
  assert_int_equal(cfg->shutdown_grace_ms, 0);
  assert_int_equal(cfg->drain_timeout_ms, 500);
  assert_int_equal(cfg->kill_grace_ms, 90000);
  assert_int_equal(cfg->deadline_ms, 5400000);
  assert_int_equal(cfg->retention.max_age_ms, 2ull * 86400000);
  ccci_config_unref(cfg);

  expect_errors("deadline: ten\n",
                "t.yml:1:1: deadline: expected a duration, like 500ms, 90s, "
                "10m, 2h or 1d, got 'ten'\n");
  expect_errors("deadline: 5\n",
                "t.yml:1:1: deadline: expected a duration, like 500ms, 90s, "
                "10m, 2h or 1d, got '5'\n");
  expect_errors("deadline: 1x\n",
                "t.yml:1:1: deadline: expected a duration, like 500ms, 90s, "
                "10m, 2h or 1d, got '1x'\n");
  expect_errors("deadline: 1h 30m\n",
                "t.yml:1:1: deadline: expected a duration, like 500ms, 90s, "
                "10m, 2h or 1d, got '1h 30m'\n");
  /* Overflowing uint64 milliseconds is out of range, not garbage. */
  expect_errors("teardown_grace: 999999999999d\n",
                "t.yml:1:1: teardown_grace: 999999999999d is out of range (0s "
                "to 1d)\n");
  expect_errors("deadline: 99999999999999999999999s\n",
                "t.yml:1:1: deadline: 99999999999999999999999s is out of range "
                "(1s to 7d)\n");
  expect_errors("deadline: 8d\n",
                "t.yml:1:1: deadline: 8d is out of range (1s to 7d)\n");
  expect_errors("deadline: 999ms\n",
                "t.yml:1:1: deadline: 999ms is out of range (1s to 7d)\n");
}

static void test_size(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("min_free_bytes: 4096\n"
                 "log_max_bytes: 64KiB\n"
                 "retention:\n"
                 "  max_bytes: 256MiB\n");
  assert_int_equal(cfg->min_free_bytes, 4096);
  assert_int_equal(cfg->log_max_bytes, 65536);
  assert_int_equal(cfg->retention.max_bytes, 268435456);
  ccci_config_unref(cfg);
  cfg = parse_ok("min_free_bytes: 10MB\nlog_max_bytes: 1GiB\n");
  assert_int_equal(cfg->min_free_bytes, 10000000);
  assert_int_equal(cfg->log_max_bytes, 1073741824);
  ccci_config_unref(cfg);

  expect_errors("min_free_bytes: 10XB\n",
                "t.yml:1:1: min_free_bytes: expected a size, like 4096, "
                "64KiB, 256MiB or 1GiB, got '10XB'\n");
  expect_errors("min_free_bytes: 1.5GiB\n",
                "t.yml:1:1: min_free_bytes: expected a size, like 4096, "
                "64KiB, 256MiB or 1GiB, got '1.5GiB'\n");
  expect_errors("min_free_bytes: GiB\n",
                "t.yml:1:1: min_free_bytes: expected a size, like 4096, "
                "64KiB, 256MiB or 1GiB, got 'GiB'\n");
  expect_errors("log_max_bytes: 4096\n",
                "t.yml:1:1: log_max_bytes: 4096 is out of range (64KiB to "
                "1TiB)\n");
  expect_errors("min_free_bytes: 99999999TiB\n",
                "t.yml:1:1: min_free_bytes: 99999999TiB is out of range (0 to "
                "1024TiB)\n");
}

static void test_argv(void **state)
{
  static const char expect[] = "a non-empty list of strings (the program and "
                               "its arguments)";
  struct ccci_config *cfg;
  char *want;
  (void)state;

  cfg = parse_ok("harness:\n  command: [\"/bin/sh\", -c, 'echo $X']\n");
  assert_int_equal(cfg->harness.command.n, 3);
  assert_string_equal(cfg->harness.command.v[2], "echo $X");
  ccci_config_unref(cfg);

  want = ccci_xasprintf(
      "t.yml:2:3: harness.command: expected %s, got an empty list\n", expect);
  expect_errors("harness:\n  command: []\n", want);
  free(want);
  want = ccci_xasprintf(
      "t.yml:2:3: harness.teardown_command: expected %s, got a scalar\n",
      expect);
  expect_errors("harness:\n  teardown_command: /bin/teardown\n", want);
  free(want);
  want = ccci_xasprintf(
      "t.yml:2:3: harness.command: expected %s, got a mapping\n", expect);
  expect_errors("harness:\n  command: {a: b}\n", want);
  free(want);
  expect_errors("harness:\n  command: [a, ~, [b], {c: d}, '']\n",
                "t.yml:2:16: harness.command[1]: expected a string, got "
                "nothing\n"
                "t.yml:2:19: harness.command[2]: expected a string, got a "
                "list\n"
                "t.yml:2:24: harness.command[3]: expected a string, got a "
                "mapping\n"
                "t.yml:2:32: harness.command[4]: expected a non-empty list of "
                "strings (the program and its arguments), got ''\n");
}

static void test_repo_and_name_lists(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("forge:\n  repos:\n    - a/b\n    - Org-1/re_po.x\n"
                 "  allowlist: [\"x y\"]\n");
  assert_int_equal(cfg->forge.repos.n, 2);
  assert_string_equal(cfg->forge.repos.v[1], "Org-1/re_po.x");
  assert_string_equal(cfg->forge.allowlist.v[0], "x y");
  ccci_config_unref(cfg);

  expect_errors("forge:\n  repos: [a/b, noslash]\n",
                "t.yml:2:16: forge.repos[1]: expected a list of owner/name "
                "repos, got 'noslash'\n");
  expect_errors("forge:\n  repos:\n    - a/b/c\n    - /x\n    - ../y\n",
                "t.yml:3:7: forge.repos[0]: expected a list of owner/name "
                "repos, got 'a/b/c'\n"
                "t.yml:4:7: forge.repos[1]: expected a list of owner/name "
                "repos, got '/x'\n"
                "t.yml:5:7: forge.repos[2]: expected a list of owner/name "
                "repos, got '../y'\n");
  expect_errors("forge:\n  repos: a/b\n",
                "t.yml:2:3: forge.repos: expected a list of owner/name repos, "
                "got a scalar\n");
  expect_errors("forge:\n  allowlist: [alice, \"\"]\n",
                "t.yml:2:22: forge.allowlist[1]: expected a list of non-empty "
                "strings, got ''\n");
}

static void test_env_map(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("harness:\n  env:\n    PATH: /usr/bin:/bin\n    a_b: 'x'\n");
  assert_int_equal(cfg->harness.env.n, 2);
  assert_string_equal(cfg->harness.env.keys[0], "PATH");
  assert_string_equal(cfg->harness.env.vals[0], "/usr/bin:/bin");
  assert_string_equal(cfg->harness.env.keys[1], "a_b");
  assert_string_equal(cfg->harness.env.vals[1], "x");
  ccci_config_unref(cfg);
  cfg = parse_ok("harness:\n  env: {}\n");
  assert_int_equal(cfg->harness.env.n, 0);
  ccci_config_unref(cfg);

  expect_errors("harness:\n  env: {1A: x}\n",
                "t.yml:2:9: harness.env: expected an environment variable "
                "name ([A-Za-z_][A-Za-z0-9_]*, not CCCI_* or ABRA_DIR: ccci "
                "sets those) as key\n");
  expect_errors("harness:\n  env:\n    A-B: x\n",
                "t.yml:3:5: harness.env: expected an environment variable "
                "name ([A-Za-z_][A-Za-z0-9_]*, not CCCI_* or ABRA_DIR: ccci "
                "sets those) as key\n");
  expect_errors("harness:\n  env:\n    FOO:\n      bar: 1\n",
                "t.yml:3:5: harness.env.FOO: expected a string, got a "
                "mapping\n");
  expect_errors("harness:\n  env: {FOO: [1]}\n",
                "t.yml:2:9: harness.env.FOO: expected a string, got a list\n");
  expect_errors("harness:\n  env: {A: 1, A: 2}\n",
                "t.yml:2:15: duplicate key 'harness.env.A'\n");
  expect_errors("harness:\n  env: [A=1]\n",
                "t.yml:2:3: harness.env: expected a map of environment "
                "variable names to strings, got a list\n");
}

static void test_sections(void **state)
{
  struct ccci_config *cfg;
  (void)state;

  cfg = parse_ok("retention:\n"
                 "    max_age: 1h\n"
                 "    max_bytes: 1MiB\n"
                 "janitor: {interval: 1s}\n"
                 "forge:\n"
                 "  poll_interval: 1d\n");
  assert_int_equal(cfg->retention.max_age_ms, 3600000);
  assert_int_equal(cfg->retention.max_bytes, 1048576);
  assert_int_equal(cfg->janitor.interval_ms, 1000);
  assert_int_equal(cfg->forge.poll_interval_ms, 86400000);
  /* Keys of other sections keep their defaults. */
  assert_int_equal(cfg->forge.max_connections, 16);
  assert_string_equal(cfg->http.listen, "127.0.0.1:8080");
  ccci_config_unref(cfg);

  expect_errors("retention:\n  max_age: 59m\n",
                "t.yml:2:3: retention.max_age: 59m is out of range (1h to "
                "36500d)\n");
}

/* ---- errors ---- */

static void test_bad_yaml_flow(void **state)
{
  char *errors;
  (void)state;

  errors = parse_fail("a: [1, 2\n");
  assert_true(has_prefix(errors, "t.yml:2:1: invalid YAML: "));
  assert_int_equal(count_lines(errors), 1);
  assert_true(has_suffix(errors, "\n"));
  assert_true(strlen(errors) > strlen("t.yml:2:1: invalid YAML: \n"));
  free(errors);

  /* The YAML error is all there is: nothing of the document is checked. */
  errors = parse_fail("capacity: 0\nforge: {url: x\n");
  assert_true(has_prefix(errors, "t.yml:3:1: invalid YAML: "));
  assert_int_equal(count_lines(errors), 1);
  free(errors);
}

static void test_bad_yaml_tab(void **state)
{
  char *errors;
  (void)state;

  errors = parse_fail("forge:\n\turl: http://x\n");
  assert_true(has_prefix(errors, "t.yml:2:1: invalid YAML: "));
  assert_int_equal(count_lines(errors), 1);
  free(errors);

  /* A tab after the indentation: the column is the tab's. */
  errors = parse_fail("capacity: 2\nforge:\n  url: http://x\n"
                      "  \tpoll_interval: 1s\n");
  assert_true(has_prefix(errors, "t.yml:4:3: invalid YAML: "));
  assert_int_equal(count_lines(errors), 1);
  free(errors);
}

static void test_wrong_types(void **state)
{
  (void)state;
  expect_errors("capacity: [1]\n"
                "secret_files: {a: b}\n"
                "forge: 5\n"
                "http: [a]\n"
                "deadline: {a: 1}\n",
                "t.yml:1:1: capacity: expected an integer, got a list\n"
                "t.yml:2:1: secret_files: expected a list of paths, got a "
                "mapping\n"
                "t.yml:3:1: forge: expected a mapping of keys, got a scalar\n"
                "t.yml:4:1: http: expected a mapping of keys, got a list\n"
                "t.yml:5:1: deadline: expected a duration, like 500ms, 90s, "
                "10m, 2h or 1d, got a mapping\n");
  expect_errors("? [a]\n: 1\n",
                "t.yml:1:3: keys must be plain strings, got a list\n");
}

static void test_unknown_keys(void **state)
{
  (void)state;
  expect_errors("dedline: 5s\n",
                "t.yml:1:1: unknown key 'dedline'; did you mean 'deadline'?\n");
  expect_errors("forge:\n  pol_interval: 5s\n",
                "t.yml:2:3: unknown key 'forge.pol_interval'; did you mean "
                "'forge.poll_interval'?\n");
  expect_errors("forg:\n  url: http://x\n",
                "t.yml:1:1: unknown key 'forg'; did you mean 'forge'?\n");
  expect_errors("harness:\n  comand: [x]\n",
                "t.yml:2:3: unknown key 'harness.comand'; did you mean "
                "'harness.command'?\n");
  expect_errors("secret_file: [x]\n",
                "t.yml:1:1: unknown key 'secret_file'; did you mean "
                "'secret_files'?\n");
  /* A leaf name is not a key at the top level. */
  expect_errors("poll_interval: 5s\n",
                "t.yml:1:1: unknown key 'poll_interval'; did you mean "
                "'forge.poll_interval'?\n");
}

static void test_duplicate_keys(void **state)
{
  (void)state;
  expect_errors("capacity: 1\ncapacity: 2\n",
                "t.yml:2:1: duplicate key 'capacity' (first set at line 1)\n");
  /* An empty value still counts as set. */
  expect_errors("capacity:\n\n\ncapacity: 2\n",
                "t.yml:4:1: duplicate key 'capacity' (first set at line 1)\n");
  expect_errors("forge:\n  url: http://a\nforge:\n  repos: [a/b]\n",
                "t.yml:3:1: duplicate key 'forge' (first set at line 1)\n");
  expect_errors("forge:\nforge:\n  url: http://a\n",
                "t.yml:2:1: duplicate key 'forge' (first set at line 1)\n");
  expect_errors("forge:\n  url: http://a\n  url: http://b\n",
                "t.yml:3:3: duplicate key 'forge.url' (first set at line 2)\n");
}

static void test_out_of_range(void **state)
{
  (void)state;
  expect_errors("capacity: 0\n",
                "t.yml:1:1: capacity: 0 is out of range (1 to 1024)\n");
  expect_errors("min_secret_len: 5000\n",
                "t.yml:1:1: min_secret_len: 5000 is out of range (1 to "
                "4096)\n");
  expect_errors("deadline: 0s\n",
                "t.yml:1:1: deadline: 0s is out of range (1s to 7d)\n");
  expect_errors("deadline: 0\n",
                "t.yml:1:1: deadline: 0 is out of range (1s to 7d)\n");
  expect_errors("janitor:\n  interval: 2d\n",
                "t.yml:2:3: janitor.interval: 2d is out of range (1s to "
                "1d)\n");
}

static void test_top_level_not_mapping(void **state)
{
  (void)state;
  expect_errors("- capacity: 2\n",
                "t.yml:1:1: expected a mapping of keys at the top level, got "
                "a list\n");
  expect_errors("just some text\n",
                "t.yml:1:1: expected a mapping of keys at the top level, got "
                "a scalar\n");
  expect_errors("\n\n  [1, 2]\n",
                "t.yml:3:3: expected a mapping of keys at the top level, got "
                "a list\n");
}

static void test_two_documents(void **state)
{
  (void)state;
  expect_errors("capacity: 3\n---\ncapacity: 4\n",
                "t.yml:3:1: only one YAML document is allowed (remove "
                "'---')\n");
  expect_errors("capacity: 3\n---\n",
                "t.yml:3:1: only one YAML document is allowed (remove "
                "'---')\n");
  /* A leading '---' alone is one document. */
  {
    struct ccci_config *cfg = parse_ok("---\ncapacity: 3\n");
    assert_int_equal(cfg->capacity, 3);
    ccci_config_unref(cfg);
  }
}

/* A second document is an error even when the first one is empty (it used
 * to be ignored silently, losing the keys in it). */
static void test_two_documents_first_empty(void **state)
{
  (void)state;
  expect_errors("---\n---\ncapacity: 5\n",
                "t.yml:3:1: only one YAML document is allowed (remove "
                "'---')\n");
}

static void test_multiple_errors_in_order(void **state)
{
  (void)state;
  expect_errors("dedline: 5s\n"
                "capacity: 0\n"
                "forge:\n"
                "  pol_interval: 5s\n"
                "  url: ftp://x\n"
                "  repos: [a/b, noslash]\n"
                "harness:\n"
                "  env:\n"
                "    1A: x\n"
                "    OK: y\n"
                "capacity: 3\n"
                "http: 1\n",
                "t.yml:1:1: unknown key 'dedline'; did you mean 'deadline'?\n"
                "t.yml:2:1: capacity: 0 is out of range (1 to 1024)\n"
                "t.yml:4:3: unknown key 'forge.pol_interval'; did you mean "
                "'forge.poll_interval'?\n"
                "t.yml:5:3: forge.url: expected an http:// or https:// URL, "
                "got 'ftp://x'\n"
                "t.yml:6:16: forge.repos[1]: expected a list of owner/name "
                "repos, got 'noslash'\n"
                "t.yml:9:5: harness.env: expected an environment variable "
                "name ([A-Za-z_][A-Za-z0-9_]*, not CCCI_* or ABRA_DIR: ccci "
                "sets those) as key\n"
                "t.yml:11:1: duplicate key 'capacity' (first set at line 2)\n"
                "t.yml:12:1: http: expected a mapping of keys, got a "
                "scalar\n");
}

static void test_too_many_errors(void **state)
{
  struct ccci_buf b;
  char *errors, *line;
  size_t i;
  int r = 0;
  (void)state;

  ccci_buf_init(&b, SIZE_MAX);
  for (i = 0; i < 70 && r == 0; i++)
    r = ccci_buf_printf(&b, "capacity%zu: 1\n", i);
  assert_int_equal(r, 0);
  errors = parse_fail(b.data);
  ccci_buf_close(&b);
  /* The first 49 errors, then one line saying the rest is left out. */
  assert_int_equal(count_lines(errors), CCCI_CONFIG_MAX_ERRORS);
  assert_true(has_prefix(errors, "t.yml:1:1: unknown key 'capacity0'; did "
                                 "you mean 'capacity'?\n"));
  line = strstr(errors, "t.yml:49:1: unknown key 'capacity48'");
  assert_non_null(line);
  assert_true(has_suffix(errors, "\nt.yml:50:1: too many errors; stopping "
                                 "here\n"));
  free(errors);
}

static void test_key_column(void **state)
{
  (void)state;
  expect_errors("forge:\n  max_connections: 0\n",
                "t.yml:2:3: forge.max_connections: 0 is out of range (1 to "
                "256)\n");
  expect_errors("forge:\n      max_connections: 0\n",
                "t.yml:2:7: forge.max_connections: 0 is out of range (1 to "
                "256)\n");
  expect_errors("# comment\n\n   capacity: 0\n",
                "t.yml:3:4: capacity: 0 is out of range (1 to 1024)\n");
  expect_errors("{capacity: 1, deadline: 0s}\n",
                "t.yml:1:15: deadline: 0s is out of range (1s to 7d)\n");
}

static void test_too_large(void **state)
{
  size_t len = CCCI_CONFIG_MAX_BYTES + 1;
  char *text = ccci_xmalloc(len + 1);
  char *errors;
  (void)state;

  memset(text, '#', len);
  text[len] = '\0';
  errors = parse_fail_len(text, len);
  assert_string_equal(errors, "t.yml: file is larger than 1048576 bytes\n");
  free(errors);
  free(text);
}

static void test_load_file(void **state)
{
  const struct fixture *f = *state;
  const char *dir = f->dir;
  char *path = ccci_xasprintf("%s/ccci.yml", dir);
  char *missing = ccci_xasprintf("%s/missing.yml", dir);
  char *want = NULL, *errors = NULL, *big;
  struct ccci_config *cfg = NULL;
  static const char text[] = "state_dir: st\nsecret_files: [s1]\n";

  write_text(path, text, sizeof(text) - 1);
  assert_int_equal(ccci_config_load_file(path, &cfg, &errors), 0);
  assert_null(errors);
  assert_string_equal(cfg->source, path);
  assert_string_equal(cfg->base_dir, dir);
  want = ccci_xasprintf("%s/st", dir);
  assert_string_equal(cfg->state_dir, want);
  free(want);
  want = ccci_xasprintf("%s/s1", dir);
  assert_string_equal(cfg->secret_files.v[0], want);
  free(want);
  ccci_config_unref(cfg);

  write_text(path, "capacity: 0\n", 12);
  assert_int_equal(ccci_config_load_file(path, &cfg, &errors), -EINVAL);
  assert_null(cfg);
  want =
      ccci_xasprintf("%s:1:1: capacity: 0 is out of range (1 to 1024)\n", path);
  assert_string_equal(errors, want);
  free(want);
  free(errors);

  assert_int_equal(ccci_config_load_file(missing, &cfg, &errors), -EINVAL);
  assert_null(cfg);
  want = ccci_xasprintf("%s: cannot read: %s\n", missing, strerror(ENOENT));
  assert_string_equal(errors, want);
  free(want);
  free(errors);

  big = ccci_xmalloc(CCCI_CONFIG_MAX_BYTES + 1);
  memset(big, '#', CCCI_CONFIG_MAX_BYTES + 1);
  write_text(path, big, CCCI_CONFIG_MAX_BYTES + 1);
  free(big);
  assert_int_equal(ccci_config_load_file(path, &cfg, &errors), -EINVAL);
  assert_null(cfg);
  want = ccci_xasprintf("%s: file is larger than 1048576 bytes\n", path);
  assert_string_equal(errors, want);
  free(want);
  free(errors);

  free(missing);
  free(path);
}

static void test_default_path(void **state)
{
  const struct fixture *f = *state;
  const char *dir = f->dir;
  char *cdir = ccci_xasprintf("%s/ccci", dir);
  char *file = ccci_xasprintf("%s/ccci/ccci.yml", dir);
  char *p;

  put_env("CCCI_CONFIG", "/etc/ccci/explicit.yml");
  p = ccci_config_default_path();
  assert_string_equal(p, "/etc/ccci/explicit.yml");
  free(p);

  put_env("CCCI_CONFIG", NULL);
  put_env("XDG_CONFIG_HOME", dir);
  assert_null(ccci_config_default_path()); /* no file there yet */
  assert_int_equal(mkdir(cdir, 0700), 0);
  write_text(file, "", 0);
  p = ccci_config_default_path();
  assert_string_equal(p, file);
  free(p);

  put_env("XDG_CONFIG_HOME", NULL);
  put_env("HOME", dir);
  assert_null(ccci_config_default_path()); /* no .config/ccci/ccci.yml */

  free(file);
  free(cdir);
}

/* ---- output ---- */

/* How many names the top level has: plain keys and sections. */
static size_t count_top_level(void)
{
  size_t i, n = 0;
  for (i = 0; i < CCCI_ARRAY_LEN(all_keys); i++) {
    const char *dot = strchr(all_keys[i], '.');
    size_t l = dot ? (size_t)(dot - all_keys[i]) : 0;
    /* A section counts at its first key (keys of a section are adjacent). */
    if (dot == NULL || i == 0 ||
        strncmp(all_keys[i - 1], all_keys[i], l) != 0 ||
        all_keys[i - 1][l] != '.')
      n++;
  }
  return n;
}

static size_t count_in_section(const char *section)
{
  size_t i, n = 0, l = strlen(section);
  for (i = 0; i < CCCI_ARRAY_LEN(all_keys); i++)
    n += strncmp(all_keys[i], section, l) == 0 && all_keys[i][l] == '.';
  return n;
}

struct diff_log {
  struct ccci_buf text;
};

static const char *reload_name(enum ccci_reload r)
{
  switch (r) {
  case CCCI_RELOAD_LIVE:
    return "live";
  case CCCI_RELOAD_NEXT_RUN:
    return "next-run";
  case CCCI_RELOAD_RESTART:
    return "restart";
  }
  return "?";
}

static void log_diff(const char *key, enum ccci_reload reload, bool active,
                     void *arg)
{
  struct diff_log *log = arg;
  int r = ccci_buf_printf(&log->text, "%s:%s:%s\n", key, reload_name(reload),
                          active ? "active" : "inactive");
  assert_int_equal(r, 0);
}

/* The keys that differ between @p a and @p b, one "key:reload:active" a
 * line; the caller frees it. */
static char *diff_text(const struct ccci_config *a, const struct ccci_config *b,
                       size_t *n)
{
  struct diff_log log;
  ccci_buf_init(&log.text, SIZE_MAX);
  *n = ccci_config_diff(a, b, log_diff, &log);
  return ccci_buf_detach(&log.text);
}

/* Values chosen to be awkward to write back: quotes, backslashes, control
 * bytes, YAML's own line breaks (NEL, LS, PS), a BOM, words YAML would read
 * as null or booleans, '#', ': ' and leading blanks. */
static const char tricky_config[] =
    "state_dir: \"/st ate/#x\"\n"
    "socket: \"/s: o'ck\\\"et\"\n"
    "secrets_dir: ' /lead'\n"
    "secret_files: [\"/a\\\\b\", \"/c\\td\", \"/nul\\x01l\"]\n"
    "min_secret_len: 4096\n"
    "capacity: 1\n"
    "deadline: 1h30m\n"
    "kill_grace: 1500ms\n"
    "teardown_grace: 0\n"
    "drain_timeout: 10m\n"
    "shutdown_grace: 1d\n"
    "log_max_bytes: 65537\n"
    "min_free_bytes: 10MB\n"
    "retention:\n"
    "  max_age: 36500d\n"
    "  max_bytes: 1TiB\n"
    "harness:\n"
    "  command: [\"/bin/sh\", \"-c\", \"a\\nb\\r\\n\", \"null\", \"~\", "
    "\"yes\", \"- x\", \"[y]\"]\n"
    "  teardown_command: [\"td\\u2028x\", \"p\\u2029q\", \"n\\x85l\", "
    "\"\\ufeffbom\", \"\\u00e9t\\u00e9\"]\n"
    "  domain_suffix: a-1.b2.example\n"
    "  user: \"null\"\n"
    "  env: {A: \"x\\\"y\", B: ~, C: \"tab\\there\", D: \"#\", E: \"{}\"}\n"
    "janitor:\n"
    "  interval: 86400s\n"
    "forge:\n"
    "  url: \"https://git.example.org/a?b=c&d=%20#frag\"\n"
    "  token_file: tok\n"
    "  repos: [a/b, c.d/e-f]\n"
    "  poll_interval: 1s\n"
    "  max_connections: 256\n"
    "  allowlist: [\"  spaced  \", \"true\", \"'q'\"]\n"
    "  auth_cache: 0\n"
    "  status_context: \"ctx: \\\"q\\\" \\\\ end\"\n"
    "  webhook_secret_file: /w\n"
    "http:\n"
    "  listen: \"[::1]:0\"\n"
    "  public_url: http://ci.example.org:8080/x\n";

static void check_roundtrip(const struct ccci_config *cfg)
{
  struct ccci_config *back = NULL;
  char *dump = ccci_config_dump(cfg), *errors = NULL, *diff;
  size_t n;
  int r;

  /* Parse it as a different file in a different directory: the dump holds
   * absolute paths, so nothing may depend on either. */
  r = ccci_config_parse("dump.yml", "/elsewhere", dump, strlen(dump), &back,
                        &errors);
  if (r != 0)
    print_error("dump does not parse:\n%s\nerrors:\n%s", dump,
                errors ? errors : "(none)\n");
  assert_int_equal(r, 0);
  assert_null(errors);
  diff = diff_text(cfg, back, &n);
  if (n != 0)
    print_error("dump:\n%s", dump);
  assert_string_equal(diff, "");
  assert_int_equal(n, 0);
  free(diff);
  assert_string_equal(back->source, "dump.yml");
  ccci_config_unref(back);
  free(dump);
}

static void test_dump_roundtrip(void **state)
{
  struct ccci_config *cfg;
  char *dump;
  (void)state;

  cfg = parse_ok(tricky_config);
  /* The input really holds the awkward values. */
  assert_string_equal(cfg->harness.command.v[2], "a\nb\r\n");
  assert_string_equal(cfg->harness.teardown_command.v[0], "td\xe2\x80\xa8x");
  assert_string_equal(cfg->harness.teardown_command.v[2], "n\xc2\x85l");
  assert_string_equal(cfg->harness.user, "null");
  assert_string_equal(cfg->forge.allowlist.v[0], "  spaced  ");
  assert_string_equal(cfg->secret_files.v[2], "/nul\x01l");
  check_roundtrip(cfg);

  dump = ccci_config_dump(cfg);
  assert_true(has_prefix(dump, "# effective configuration from t.yml\n"));
  assert_non_null(strstr(dump, "\ncapacity: 1\n"));
  assert_non_null(strstr(dump, "\ndeadline: 90m\n"));
  assert_non_null(strstr(dump, "\nretention:\n  max_age: 36500d\n"
                               "  max_bytes: 1TiB\n"));
  assert_non_null(strstr(dump, "\nforge:\n  url: "));
  free(dump);
  ccci_config_unref(cfg);
}

static void test_dump_roundtrip_defaults(void **state)
{
  struct ccci_config *cfg;
  char *dump;
  size_t i;
  (void)state;

  cfg = ccci_config_default();
  check_roundtrip(cfg);
  dump = ccci_config_dump(cfg);
  /* Every key is written, sections as nested mappings. */
  for (i = 0; i < CCCI_ARRAY_LEN(all_keys); i++) {
    /* At the depth of its sections: two spaces per dot. */
    const char *last = strrchr(all_keys[i], '.'), *p;
    int depth = 0;
    char *line;
    for (p = all_keys[i]; *p != '\0'; p++)
      depth += *p == '.';
    line = ccci_xasprintf("\n%*s%s: ", 2 * depth, "",
                          last != NULL ? last + 1 : all_keys[i]);
    assert_non_null(strstr(dump, line));
    free(line);
  }
  assert_non_null(strstr(dump, "\nforge:\n  url: null\n"));
  assert_non_null(strstr(dump, "\nhttp:\n  listen: \"127.0.0.1:8080\"\n"));
  free(dump);
  ccci_config_unref(cfg);
}

static void test_to_json(void **state)
{
  struct ccci_config *cfg;
  json_t *j, *forge, *harness, *retention;
  size_t i;
  (void)state;

  cfg = parse_ok("capacity: 3\n"
                 "deadline: 90s\n"
                 "retention:\n  max_age: 2d\n"
                 "harness:\n  env: {K: v}\n"
                 "forge:\n  poll_interval: 45s\n  repos: [a/b]\n"
                 "  max_connections: 7\n");
  j = ccci_config_to_json(cfg);
  assert_true(json_is_object(j));
  assert_string_equal(json_string_value(json_object_get(j, "source")), NAME);
  assert_int_equal(json_integer_value(json_object_get(j, "capacity")), 3);
  assert_true(json_is_integer(json_object_get(j, "capacity")));
  assert_string_equal(json_string_value(json_object_get(j, "deadline")), "90s");
  assert_string_equal(json_string_value(json_object_get(j, "log_max_bytes")),
                      "256MiB");
  assert_string_equal(json_string_value(json_object_get(j, "secrets_dir")),
                      "/run/secrets");

  /* Sections are nested objects; no dotted names at the top. */
  assert_null(json_object_get(j, "forge.poll_interval"));
  forge = json_object_get(j, "forge");
  assert_true(json_is_object(forge));
  assert_string_equal(
      json_string_value(json_object_get(forge, "poll_interval")), "45s");
  assert_int_equal(
      json_integer_value(json_object_get(forge, "max_connections")), 7);
  assert_true(json_is_null(json_object_get(forge, "url")));
  assert_true(json_is_array(json_object_get(forge, "repos")));
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(forge, "repos"), 0)),
      "a/b");
  retention = json_object_get(j, "retention");
  assert_string_equal(json_string_value(json_object_get(retention, "max_age")),
                      "2d");
  harness = json_object_get(j, "harness");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(harness, "env"), "K")),
      "v");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(j, "http"), "listen")),
      "127.0.0.1:8080");

  /* Every key is there, and nothing else but "source". */
  for (i = 0; i < CCCI_ARRAY_LEN(all_keys); i++) {
    /* Through every section: harness.abra.new is harness/abra/new. */
    const char *seg = all_keys[i], *dot;
    json_t *v = j;
    for (dot = strchr(seg, '.'); dot != NULL; dot = strchr(seg, '.')) {
      char *sec = ccci_xstrndup(seg, (size_t)(dot - seg));
      v = json_object_get(v, sec);
      free(sec);
      seg = dot + 1;
    }
    v = json_object_get(v, seg);
    if (v == NULL)
      print_error("missing in JSON: %s\n", all_keys[i]);
    assert_non_null(v);
  }
  assert_int_equal(json_object_size(j), 1 + count_top_level());
  assert_int_equal(json_object_size(forge), count_in_section("forge"));
  json_decref(j);
  ccci_config_unref(cfg);
}

static void test_diff(void **state)
{
  struct ccci_config *a, *b, *c;
  char *text;
  size_t n;
  (void)state;

  a = parse_ok("");
  b = parse_ok("state_dir: /s\n"
               "capacity: 5\n"
               "deadline: 2h\n"
               "harness:\n  env: {A: x}\n"
               "forge:\n  repos: [a/b]\n"
               "http:\n  listen: 127.0.0.1:0\n");
  text = diff_text(a, b, &n);
  /* In table order; the socket follows the state dir, so it changed too. */
  assert_int_equal(n, 7);
  assert_true(has_prefix(text, "state_dir:restart:active\n"
                               "socket:restart:active\n"
                               "capacity:live:"));
  assert_non_null(strstr(text, "\ndeadline:next-run:"));
  assert_non_null(strstr(text, "\nharness.env:next-run:"));
  assert_non_null(strstr(text, "\nforge.repos:live:"));
  assert_non_null(strstr(text, "\nhttp.listen:restart:"));
  assert_int_equal(count_lines(text), 7);
  free(text);

  /* Symmetric, and a config equals itself. */
  assert_int_equal(ccci_config_diff(b, a, NULL, NULL), 7);
  text = diff_text(a, a, &n);
  assert_int_equal(n, 0);
  assert_string_equal(text, "");
  free(text);

  /* Lists and maps compare by content: order and length count. */
  c = parse_ok("state_dir: /s\ncapacity: 5\ndeadline: 2h\n"
               "harness:\n  env: {A: y}\n"
               "forge:\n  repos: [a/b, c/d]\n"
               "http:\n  listen: 127.0.0.1:0\n");
  text = diff_text(b, c, &n);
  assert_int_equal(n, 2);
  assert_true(has_prefix(text, "harness.env:next-run:"));
  assert_non_null(strstr(text, "\nforge.repos:live:"));
  assert_int_equal(count_lines(text), 2);
  free(text);
  ccci_config_unref(c);
  ccci_config_unref(b);
  ccci_config_unref(a);
}

static void test_parse_duration(void **state)
{
  static const struct {
    const char *s;
    uint64_t ms;
  } good[] = {
      {"0", 0},           {"0s", 0},
      {"0ms", 0},         {"1ms", 1},
      {"500ms", 500},     {"90s", 90000},
      {"10m", 600000},    {"2h", 7200000},
      {"1d", 86400000},   {"2d", 172800000},
      {"1h30m", 5400000}, {"1d2h3m4s5ms", 93784005},
      {"1m30ms", 60030},  {"18446744073709551ms", 18446744073709551ull},
  };
  static const char *const bad[] = {"",    "ten",  "5",      "1x",  "ms",
                                    "-1s", "1.5s", "1h 30m", " 1s", "1s ",
                                    "1S",  "1sec", "h1"};
  uint64_t v = 77;
  size_t i;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(good); i++) {
    v = 77;
    assert_int_equal(ccci_keytab_parse_duration(good[i].s, &v), 0);
    assert_true(v == good[i].ms);
  }
  for (i = 0; i < CCCI_ARRAY_LEN(bad); i++) {
    v = 77;
    if (ccci_keytab_parse_duration(bad[i], &v) != -EINVAL)
      print_error("accepted: '%s'\n", bad[i]);
    assert_int_equal(ccci_keytab_parse_duration(bad[i], &v), -EINVAL);
    assert_int_equal(v, 77);
  }
  assert_int_equal(ccci_keytab_parse_duration(NULL, &v), -EINVAL);
  assert_int_equal(ccci_keytab_parse_duration("99999999999999999999999s", &v),
                   -ERANGE);
  assert_int_equal(ccci_keytab_parse_duration("213503982335d", &v), -ERANGE);
  assert_int_equal(
      ccci_keytab_parse_duration("18446744073709551s18446744073709551s", &v),
      -ERANGE);
  assert_int_equal(v, 77);
  assert_int_equal(ccci_keytab_parse_duration("213503982334d", &v), 0);
  assert_true(v == 213503982334ull * 86400000);
}

static void test_parse_size(void **state)
{
  static const struct {
    const char *s;
    uint64_t n;
  } good[] = {
      {"0", 0},
      {"4096", 4096},
      {"7B", 7},
      {"64KiB", 65536},
      {"256MiB", 268435456},
      {"1GiB", 1073741824},
      {"2TiB", 2199023255552ull},
      {"3KB", 3000},
      {"3kB", 3000},
      {"10MB", 10000000},
      {"4GB", 4000000000ull},
      {"5TB", 5000000000000ull},
  };
  static const char *const bad[] = {"",      "MiB", "10XB",  "1.5GiB",
                                    "-1",    " 1",  "1 KiB", "1kib",
                                    "1KiBx", "1K",  "0x10",  "1e3"};
  uint64_t v = 77;
  size_t i;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(good); i++) {
    v = 77;
    assert_int_equal(ccci_keytab_parse_size(good[i].s, &v), 0);
    assert_true(v == good[i].n);
  }
  for (i = 0; i < CCCI_ARRAY_LEN(bad); i++) {
    v = 77;
    if (ccci_keytab_parse_size(bad[i], &v) != -EINVAL)
      print_error("accepted: '%s'\n", bad[i]);
    assert_int_equal(ccci_keytab_parse_size(bad[i], &v), -EINVAL);
    assert_int_equal(v, 77);
  }
  assert_int_equal(ccci_keytab_parse_size(NULL, &v), -EINVAL);
  assert_int_equal(ccci_keytab_parse_size("99999999999999999999", &v), -ERANGE);
  assert_int_equal(ccci_keytab_parse_size("16777216TiB", &v), -ERANGE);
  assert_int_equal(v, 77);
  assert_int_equal(ccci_keytab_parse_size("16777215TiB", &v), 0);
  assert_true(v == 16777215ull * 1024 * 1024 * 1024 * 1024);
}

static void test_format_roundtrip(void **state)
{
  static const struct {
    uint64_t ms;
    const char *text;
  } durations[] = {
      {0, "0s"},        {1, "1ms"},        {999, "999ms"},
      {1000, "1s"},     {1500, "1500ms"},  {60000, "1m"},
      {90000, "90s"},   {3600000, "1h"},   {5400000, "90m"},
      {86400000, "1d"}, {90000000, "25h"}, {3153600000000ull, "36500d"},
      {1801, "1801ms"},
  };
  static const struct {
    uint64_t n;
    const char *text;
  } sizes[] = {
      {0, "0"},
      {1, "1"},
      {1000, "1000"},
      {1024, "1KiB"},
      {4096, "4KiB"},
      {65537, "65537"},
      {1536, "1536"}, /* 1.5 KiB: no exact binary unit, so plain bytes */
      {268435456, "256MiB"},
      {1073741824, "1GiB"},
      {10000000, "10000000"},
      {1099511627776ull, "1TiB"},
      {1024ull * 1099511627776ull, "1024TiB"},
  };
  char out[32];
  uint64_t v;
  size_t i;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(durations); i++) {
    ccci_keytab_format_duration(durations[i].ms, out);
    assert_string_equal(out, durations[i].text);
    assert_int_equal(ccci_keytab_parse_duration(out, &v), 0);
    assert_true(v == durations[i].ms);
  }
  for (i = 0; i < CCCI_ARRAY_LEN(sizes); i++) {
    ccci_keytab_format_size(sizes[i].n, out);
    assert_string_equal(out, sizes[i].text);
    assert_int_equal(ccci_keytab_parse_size(out, &v), 0);
    assert_true(v == sizes[i].n);
  }
}

/* The largest values format and parse back (the overflow check once refused
 * the last few values below UINT64_MAX). */
static void test_format_roundtrip_extremes(void **state)
{
  char out[32];
  uint64_t v = 0;
  (void)state;

  ccci_keytab_format_size(UINT64_MAX, out);
  assert_string_equal(out, "18446744073709551615");
  assert_int_equal(ccci_keytab_parse_size(out, &v), 0);
  assert_true(v == UINT64_MAX);
  ccci_keytab_format_duration(UINT64_MAX, out);
  assert_string_equal(out, "18446744073709551615ms");
  assert_int_equal(ccci_keytab_parse_duration(out, &v), 0);
  assert_true(v == UINT64_MAX);
}

static void test_docs(void **state)
{
  char *docs = ccci_config_docs();
  const char *p;
  size_t i, rows = 0;
  (void)state;

  assert_true(has_prefix(docs, "# Configuration reference\n"));
  assert_non_null(strstr(docs, "| key | type | default | range | reload |"));
  for (i = 0; i < CCCI_ARRAY_LEN(all_keys); i++) {
    char *row = ccci_xasprintf("\n| `%s` |", all_keys[i]);
    if (strstr(docs, row) == NULL)
      print_error("no row for %s\n", all_keys[i]);
    assert_non_null(strstr(docs, row));
    free(row);
  }
  assert_non_null(strstr(docs, "\n| `forge.poll_interval` | duration | `30s` "
                               "| 1s to 1d | live |"));
  assert_non_null(strstr(docs, "\n| `capacity` | integer | `2` | 1 to 1024 | "
                               "live |"));

  /* And every row names a key the parser knows. */
  for (p = strstr(docs, "\n| `"); p != NULL; p = strstr(p + 1, "\n| `")) {
    const char *name = p + 4, *end = strchr(name, '`'), *dot;
    char *key, *text;
    struct ccci_config *cfg;
    assert_non_null(end);
    key = ccci_xstrndup(name, (size_t)(end - name));
    dot = strchr(key, '.');
    if (dot == NULL)
      text = ccci_xasprintf("%s:\n", key);
    else
      text = ccci_xasprintf("%.*s:\n  %s:\n", (int)(dot - key), key, dot + 1);
    cfg = parse_ok(text);
    ccci_config_unref(cfg);
    free(text);
    free(key);
    rows++;
  }
  assert_true(rows >= CCCI_ARRAY_LEN(all_keys));
  free(docs);
}

static void test_refcount(void **state)
{
  struct ccci_config *cfg, *same;
  (void)state;

  cfg = parse_ok("capacity: 9\n");
  assert_int_equal(cfg->refs, 1);
  same = ccci_config_ref(cfg);
  assert_ptr_equal(same, cfg);
  assert_int_equal(cfg->refs, 2);
  assert_ptr_equal(ccci_config_ref(cfg), cfg);
  assert_int_equal(cfg->refs, 3);
  ccci_config_unref(cfg);
  ccci_config_unref(cfg);
  /* Still held once: still whole. */
  assert_int_equal(cfg->refs, 1);
  assert_int_equal(same->capacity, 9);
  assert_string_equal(same->http.listen, "127.0.0.1:8080");
  ccci_config_unref(same); /* the last one frees (ASan checks the rest) */
  ccci_config_unref(NULL);
}

#define ENV_TEST(f)                                                            \
  cmocka_unit_test_setup_teardown(f, setup_fixture, teardown_fixture)

/* ---- servers: (SPEC section 12) ---- */

/* `servers:` parsed: defaults per server (capacity 1, the harness's domain
 * suffix, no gateway, no labels), config order, and the lookups. */
static void test_servers(void **state)
{
  struct ccci_config *cfg =
      parse_ok("harness:\n  domain_suffix: ci.example\n  server: swarm-1\n"
               "capacity: 7\n"
               "servers:\n"
               "  - name: b\n    capacity: 3\n    labels: [heavy, arm64]\n"
               "    gateway: 10.0.0.2:8443\n    gateway_insecure: true\n"
               "  - name: a\n    domain_suffix: a.example\n    capacity: 0\n");
  const struct ccci_server_conf *v;
  size_t n;
  (void)state;

  n = ccci_config_servers(cfg, &v);
  assert_int_equal(n, 2);
  assert_string_equal(v[0].name, "b");
  assert_int_equal(v[0].capacity, 3);
  assert_string_equal(v[0].domain_suffix, "ci.example");
  assert_string_equal(v[0].gateway, "10.0.0.2:8443");
  assert_true(v[0].gateway_insecure);
  assert_int_equal(v[0].labels.n, 2);
  assert_string_equal(v[0].labels.v[1], "arm64");
  assert_string_equal(v[1].name, "a");
  assert_int_equal(v[1].capacity, 0);
  assert_string_equal(v[1].domain_suffix, "a.example");
  assert_null(v[1].gateway);
  assert_false(v[1].gateway_insecure);
  assert_int_equal(v[1].labels.n, 0);
  assert_ptr_equal(ccci_config_server(cfg, "a"), &v[1]);
  assert_null(ccci_config_server(cfg, "swarm-1")); /* not the implicit one */
  assert_null(ccci_config_server(cfg, "c"));
  ccci_config_unref(cfg);

  /* A server with only its name. */
  cfg = parse_ok("servers:\n  - name: only\n");
  n = ccci_config_servers(cfg, &v);
  assert_int_equal(n, 1);
  assert_int_equal(v[0].capacity, 1);
  assert_string_equal(v[0].domain_suffix, cfg->harness.domain_suffix);
  ccci_config_unref(cfg);
}

/* Without `servers:`, the one server of today: harness.server with
 * `capacity`, harness.domain_suffix and harness.gateway. */
static void test_implicit_server(void **state)
{
  struct ccci_config *cfg =
      parse_ok("capacity: 4\nharness:\n  server: swarm-1\n"
               "  domain_suffix: ci.example\n  gateway: 127.0.0.1:443\n"
               "  gateway_insecure: true\n");
  const struct ccci_server_conf *v;
  (void)state;

  assert_int_equal(cfg->servers.n, 0);
  assert_int_equal(ccci_config_servers(cfg, &v), 1);
  assert_string_equal(v[0].name, "swarm-1");
  assert_int_equal(v[0].capacity, 4);
  assert_string_equal(v[0].domain_suffix, "ci.example");
  assert_string_equal(v[0].gateway, "127.0.0.1:443");
  assert_true(v[0].gateway_insecure);
  assert_int_equal(v[0].labels.n, 0);
  assert_ptr_equal(ccci_config_server(cfg, "swarm-1"), &v[0]);
  assert_null(ccci_config_server(cfg, "other"));
  ccci_config_unref(cfg);
  /* The embedded default has one too. */
  cfg = ccci_config_default();
  assert_int_equal(ccci_config_servers(cfg, &v), 1);
  assert_string_equal(v[0].name, cfg->harness.server);
  assert_int_equal(v[0].capacity, cfg->capacity);
  ccci_config_unref(cfg);
}

static void test_servers_errors(void **state)
{
  static const struct {
    const char *text, *want;
  } rows[] = {
      {"servers:\n  - name: a\n  - name: b\n  - name: a\n",
       NAME ": servers: server 'a' is listed twice (items 1 and 3)\n"},
      {"servers:\n  - capacity: 2\n",
       NAME ":2:5: servers[0]: needs key 'name' (the abra server)\n"},
      {"servers:\n  - name: a\n    labels: [heavy, Heavy]\n",
       NAME ":3:21: servers[0].labels[1]: expected a list of labels "
            "([a-z0-9][a-z0-9._-]*, at most 63 bytes), like [heavy, arm64], "
            "got 'Heavy'\n"},
      {"servers:\n  - name: a\n    labels: heavy\n",
       NAME ":3:5: servers[0].labels: expected a list of labels "
            "([a-z0-9][a-z0-9._-]*, at most 63 bytes), like [heavy, arm64], "
            "got a scalar\n"},
      {"servers:\n  - name: 'a b'\n",
       NAME ":2:5: servers[0].name: expected an abra server name, like "
            "default or swarm.example.org, got 'a b'\n"},
      {"servers:\n  - name: a\n    capacity: 2000\n",
       NAME ":3:5: servers[0].capacity: 2000 is out of range (0 to 1024)\n"},
      {"servers:\n  - name: a\n    capcity: 2\n",
       NAME ":3:5: unknown key 'servers[0].capcity'; did you mean "
            "'servers[0].capacity'?\n"},
      {"servers: {a: 1}\n",
       NAME ":1:1: servers: expected a list of servers, each {name, "
            "capacity, domain_suffix, gateway, gateway_insecure, labels}, got "
            "a mapping\n"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    char *e = parse_fail(rows[i].text);
    print_message("%s", e);
    assert_string_equal(e, rows[i].want);
    free(e);
  }
  assert_true(ccci_valid_server_label("arm64"));
  assert_true(ccci_valid_server_label("a.b_c-d"));
  assert_false(ccci_valid_server_label(""));
  assert_false(ccci_valid_server_label("-x"));
  assert_true(ccci_valid_server_name("default"));
  assert_true(ccci_valid_server_name("swarm.example.org"));
  assert_false(ccci_valid_server_name("a b"));
  assert_false(ccci_valid_server_name(""));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      ENV_TEST(test_defaults_empty_text),
      ENV_TEST(test_defaults_comments_only),
      ENV_TEST(test_defaults_empty_values),
      ENV_TEST(test_default_config),
      ENV_TEST(test_state_dir_from_env),
      ENV_TEST(test_socket_follows_state_dir),
      cmocka_unit_test(test_all_keys_set),
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_string),
      cmocka_unit_test(test_url),
      cmocka_unit_test(test_listen),
      cmocka_unit_test(test_harness_keys),
      ENV_TEST(test_abra_dir_default),
      cmocka_unit_test(test_dns),
      cmocka_unit_test(test_integer),
      cmocka_unit_test(test_duration),
      cmocka_unit_test(test_size),
      cmocka_unit_test(test_argv),
      cmocka_unit_test(test_repo_and_name_lists),
      cmocka_unit_test(test_env_map),
      cmocka_unit_test(test_sections),
      cmocka_unit_test(test_bad_yaml_flow),
      cmocka_unit_test(test_bad_yaml_tab),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_top_level_not_mapping),
      cmocka_unit_test(test_two_documents),
      cmocka_unit_test(test_two_documents_first_empty),
      cmocka_unit_test(test_multiple_errors_in_order),
      cmocka_unit_test(test_too_many_errors),
      cmocka_unit_test(test_key_column),
      cmocka_unit_test(test_too_large),
      ENV_TEST(test_load_file),
      ENV_TEST(test_default_path),
      cmocka_unit_test(test_dump_roundtrip),
      cmocka_unit_test(test_dump_roundtrip_defaults),
      cmocka_unit_test(test_to_json),
      cmocka_unit_test(test_diff),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_parse_size),
      cmocka_unit_test(test_format_roundtrip),
      cmocka_unit_test(test_format_roundtrip_extremes),
      cmocka_unit_test(test_docs),
      cmocka_unit_test(test_refcount),
      cmocka_unit_test(test_servers),
      cmocka_unit_test(test_implicit_server),
      cmocka_unit_test(test_servers_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
