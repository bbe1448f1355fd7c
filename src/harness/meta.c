/* recipe_meta.yml: a recipe's test settings, the operator's file over the
 * recipe's, key by key, on the key-table engine. */
#include "ccci/harness/meta.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/config.h"
#include "ccci/runs/levels.h"

/* ---- value checks (no I/O) ---- */

static bool no_space_or_control(const char *s)
{
  for (; *s != '\0'; s++)
    if ((unsigned char)*s <= 0x20 || *s == 0x7f)
      return false;
  return true;
}

/* A git tag name as abra releases write them (`1.2.0+2.4`): no spaces,
 * control bytes or what git refuses in a ref. */
static bool valid_tag(const char *s)
{
  size_t l = strlen(s);
  if (l == 0 || l > 200 || s[0] == '-' || strstr(s, "..") != NULL ||
      strpbrk(s, "~^:?*[\\") != NULL || s[l - 1] == '/' || s[l - 1] == '.')
    return false;
  return no_space_or_control(s);
}

/* A tier the recipe may skip or pick for quick runs: any but deploy. */
static bool valid_tier(const char *s)
{
  int t = ccci_tier_parse(s);
  return t >= 0 && t != CCCI_TIER_DEPLOY;
}

/* The hint of a tier SKIP_TIERS or QUICK_TIERS does not know: deploy
 * always runs; anything else is named with the nearest tier. */
static char *tier_hint(const char *s)
{
  size_t best_d = SIZE_MAX;
  const char *best = NULL;
  int t;
  if (ccci_tier_parse(s) == CCCI_TIER_DEPLOY)
    return ccci_xstrdup("deploy always runs (it is not skipped or chosen)");
  for (t = 0; t < CCCI_TIER_COUNT; t++) {
    const char *name = ccci_tier_name((enum ccci_tier)t);
    size_t d;
    if (t == CCCI_TIER_DEPLOY)
      continue;
    d = ccci_edit_distance(s, name);
    if (d < best_d) {
      best_d = d;
      best = name;
    }
  }
  return best != NULL ? ccci_xasprintf("did you mean '%s'?", best) : NULL;
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

/* A name of the recipe's own tree: relative, not leaving it. */
static bool valid_relative(const char *s)
{
  const char *p;
  if (*s == '\0' || *s == '/' || *s == '-' || strlen(s) > 255)
    return false;
  for (p = s; p != NULL; p = strchr(p, '/')) {
    if (*p == '/')
      p++;
    if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
      return false;
  }
  return no_space_or_control(s);
}

/* COMPOSE_FILE joins them with ':', so none may hold one. */
static bool valid_compose_file(const char *s)
{
  return valid_relative(s) && strchr(s, ':') == NULL;
}

/* A compose service name. */
static bool valid_name(const char *s)
{
  size_t l = strlen(s), i;
  if (l == 0 || l > 63 || !isalnum((unsigned char)s[0]))
    return false;
  for (i = 0; i < l; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL)
      return false;
  return true;
}

/* A DEPS recipe name. The harness names a dependency's app
 * `<recipe>-<first label of the app's domain>.<rest>`, cut to DNS's 63
 * bytes per label, and abra derives its stack name from that domain: so a
 * DNS label's characters (lowercase letters, digits, '-', not at either
 * end), and at most 61 bytes, which keeps one byte of the app's label. The
 * recipes of the Co-op Cloud catalogue are named that way. */
#define RECIPE_NAME_MAX 61
static bool valid_recipe_name(const char *s)
{
  size_t l = strlen(s), i;
  if (l == 0 || l > RECIPE_NAME_MAX || s[0] == '-' || s[l - 1] == '-')
    return false;
  for (i = 0; i < l; i++)
    if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
        s[i] != '-')
      return false;
  return true;
}

/* The secret names abra derives from `SECRET_<NAME>_VERSION`. */
static bool valid_secret_name(const char *s)
{
  size_t l = strlen(s), i;
  if (l == 0 || l > 64)
    return false;
  for (i = 0; i < l; i++)
    if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
        s[i] != '_')
      return false;
  return true;
}

static bool valid_http_path(const char *s)
{
  return s[0] == '/' && strlen(s) <= 1024 && no_space_or_control(s);
}

/* `200` or `200-399`, each code 100..599, the range not reversed. */
static bool parse_status(const char *s, unsigned *lo, unsigned *hi)
{
  uint64_t a, b;
  const char *dash = strchr(s, '-');
  char first[8];

  if (dash == NULL) {
    if (ccci_parse_u64(s, &a) < 0)
      return false;
    b = a;
  } else {
    if (dash - s == 0 || dash - s >= (ptrdiff_t)sizeof(first))
      return false;
    snprintf(first, sizeof(first), "%.*s", (int)(dash - s), s);
    if (ccci_parse_u64(first, &a) < 0 || ccci_parse_u64(dash + 1, &b) < 0)
      return false;
  }
  if (a < 100 || b > 599 || a > b || !isdigit((unsigned char)s[0]))
    return false;
  *lo = (unsigned)a;
  *hi = (unsigned)b;
  return true;
}

static bool valid_status(const char *s)
{
  unsigned lo, hi;
  return parse_status(s, &lo, &hi);
}

static char *resolve_path(const char *v, const char *base_dir)
{
  return ccci_path_join(base_dir, v);
}

/* ---- types ---- */

static const struct ccci_keytab_type t_tag = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "tag",
    .expect = "a release tag, like 1.2.0+2.4",
    .valid = valid_tag,
};
static const struct ccci_keytab_type t_tiers = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of tiers",
    .expect = "a list of tiers (upgrade, install, backup, restore, custom)",
    .valid = valid_tier,
    .hint = tier_hint,
};
static const struct ccci_keytab_type t_envmap = {
    .storage = CCCI_KEYTAB_MAP,
    .doc_name = "map of NAME to string",
    .expect = "a map of environment variable names to strings",
    .valid_key = valid_env_name,
    .key_expect = "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
};
static const struct ccci_keytab_type t_compose_files = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of file names",
    .expect = "a list of compose files of the recipe, like compose.smtp.yml "
              "(relative, no ':')",
    .valid = valid_compose_file,
};
static const struct ccci_keytab_type t_http_path = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "URL path",
    .expect = "a URL path starting with '/'",
    .valid = valid_http_path,
};
static const struct ccci_keytab_type t_statuses = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of statuses",
    .expect = "an HTTP status (100 to 599) or a range like 200-399",
    .valid = valid_status,
    .nonempty = true,
};
static const struct ccci_keytab_type t_service = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "service name",
    .expect = "a compose service name, like app",
    .valid = valid_name,
};
static const struct ccci_keytab_type t_services = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of service names",
    .expect = "a list of compose service names, like [app, db]",
    .valid = valid_name,
};
static const struct ccci_keytab_type t_recipe = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "recipe name",
    .expect = "a recipe name, like mariadb (lowercase letters, digits and "
              "'-', not at either end; at most 61)",
    .valid = valid_recipe_name,
};
static const struct ccci_keytab_type t_tribool = {
    .storage = CCCI_KEYTAB_TRIBOOL,
    .doc_name = "boolean",
    .expect = "true or false",
};
static const struct ccci_keytab_type t_globs = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of globs",
    .expect = "a list of globs relative to the recipe, like tests/test_*.py",
    .valid = valid_relative,
};
static const struct ccci_keytab_type t_argv = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of strings (argv)",
    .expect = "a non-empty list of strings (the program and its arguments)",
    .nonempty = true,
};
static const struct ccci_keytab_type t_servers = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of server names",
    .expect = "a list of abra server names (of the daemon's servers:), like "
              "[swarm-a, swarm-b]",
    .valid = ccci_valid_server_name,
};
static const struct ccci_keytab_type t_labels = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of labels",
    .expect = "a list of server labels ([a-z0-9][a-z0-9._-]*, at most 63), "
              "like [heavy]",
    .valid = ccci_valid_server_label,
};
static const struct ccci_keytab_type t_path = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "path",
    .expect = "a path",
    .convert = resolve_path,
};

/* DEPS items. */
#define DOFF(field) offsetof(struct ccci_meta_dep, field)
static const struct ccci_keytab_key dep_keys[] = {
    {"recipe", &t_recipe, DOFF(recipe), NULL, "required", 0, 0,
     "The dependency's recipe."},
    {"version", &t_tag, DOFF(version), NULL, "its newest release", 0, 0,
     "The release to deploy."},
    {"env", &t_envmap, DOFF(env), "{}", NULL, 0, 0,
     "Values set in its app env after `app new`."},
};
static const struct ccci_keytab dep_table = {dep_keys, CCCI_ARRAY_LEN(dep_keys),
                                             sizeof(dep_keys[0]), 0};

static const char *check_dep(const void *rec)
{
  const struct ccci_meta_dep *d = rec;
  return d->recipe == NULL ? "needs key 'recipe'" : NULL;
}

static const struct ccci_keytab_type t_deps = {
    .storage = CCCI_KEYTAB_RECORDS,
    .doc_name = "list of {recipe, version, env}",
    .expect = "a list of dependencies, each {recipe, version, env}",
    .fields = &dep_table,
    .record_size = sizeof(struct ccci_meta_dep),
    .check = check_dep,
};

/* SECRETS values. */
#define SOFF(field) offsetof(struct ccci_meta_secret, field)
static const struct ccci_keytab_key secret_keys[] = {
    {"length", &ccci_keytab_int, SOFF(length), NULL,
     "`0`: abra's (`# length=N` in .env.sample)", 0, 4096,
     "Length of a generated value."},
    {"generate", &ccci_keytab_bool, SOFF(generate), "true", NULL, 0, 0,
     "Generate the value with `abra app secret generate`; false: insert "
     "the value of `value_file`."},
    {"value_file", &t_path, SOFF(value_file), NULL, "none", 0, 0,
     "File holding the value to insert (with `generate: false`); relative to "
     "the recipe_meta.yml's directory."},
};
static const struct ccci_keytab secret_table = {
    secret_keys, CCCI_ARRAY_LEN(secret_keys), sizeof(secret_keys[0]), 0};

static const char *check_secret(const void *rec)
{
  const struct ccci_meta_secret *s = rec;
  if (!s->generate && s->value_file == NULL)
    return "generate: false needs value_file (the value to insert)";
  if (s->generate && s->value_file != NULL)
    return "value_file needs generate: false (a generated secret has no "
           "file)";
  return NULL;
}

static const struct ccci_keytab_type t_secrets = {
    .storage = CCCI_KEYTAB_RECORD_MAP,
    .doc_name = "map of name to {length, generate, value_file}",
    .expect = "a map of secret names to {length, generate, value_file}",
    .valid_key = valid_secret_name,
    .key_expect = "a secret name as abra writes it ([a-z0-9_], at most 64)",
    .fields = &secret_table,
    .record_size = sizeof(struct ccci_meta_secret),
    .name_off = SOFF(name),
    .check = check_secret,
};

/* DATA_CHECK: three adjacent strings of struct ccci_meta. */
struct data_check {
  char *service, *write, *read;
};
#define COFF(field) offsetof(struct data_check, field)
static const struct ccci_keytab_key data_check_keys[] = {
    {"service", &t_service, COFF(service), NULL, "required", 0, 0,
     "The service the commands run in (`abra app run`)."},
    {"write", &ccci_keytab_string, COFF(write), NULL, "required", 0, 0,
     "Shell command that stores `{marker}` in the app's data."},
    {"read", &ccci_keytab_string, COFF(read), NULL, "required", 0, 0,
     "Shell command that prints the stored data (it must contain the "
     "marker)."},
};
static const struct ccci_keytab data_check_table = {
    data_check_keys, CCCI_ARRAY_LEN(data_check_keys),
    sizeof(data_check_keys[0]), 0};

static const char *check_data_check(const void *rec)
{
  const struct data_check *c = rec;
  if (c->service == NULL)
    return "needs key 'service'";
  if (c->write == NULL)
    return "needs key 'write'";
  if (c->read == NULL)
    return "needs key 'read'";
  return NULL;
}

static const struct ccci_keytab_type t_data_check = {
    .storage = CCCI_KEYTAB_RECORD,
    .doc_name = "{service, write, read}",
    .expect = "a mapping {service, write, read}",
    .fields = &data_check_table,
    .record_size = sizeof(struct data_check),
    .check = check_data_check,
};

/* The engine reads an array of records as a pointer and a count; the
 * struct keeps them as two adjacent members, and DATA_CHECK's three
 * strings adjacent as in struct data_check. */
#define OFF(field) offsetof(struct ccci_meta, field)
#define ADJACENT(a, b, type) (OFF(b) == OFF(a) + sizeof(type))
_Static_assert(ADJACENT(deps, ndeps, void *) &&
                   ADJACENT(secrets, nsecrets, void *),
               "record arrays: pointer then count");
_Static_assert(ADJACENT(data_check_service, data_check_write, char *) &&
                   ADJACENT(data_check_write, data_check_read, char *),
               "DATA_CHECK: three adjacent strings");

/* The one table: order is enum ccci_meta_key's, the docs' and the dump's. */
static const struct ccci_keytab_key keys[] = {
    {"UPGRADE_BASE_VERSION", &t_tag, OFF(upgrade_base_version), NULL,
     "the newest release tag before the PR head", 0, 0,
     "The release the upgrade tier starts from."},
    {"SKIP_TIERS", &t_tiers, OFF(skip_tiers), "[]", NULL, 0, 0,
     "Tiers not run (reported `skip`, which caps the level below them)."},
    {"QUICK_TIERS", &t_tiers, OFF(quick_tiers), "[install]", NULL, 0, 0,
     "Tiers a quick run (`--quick`) runs on the PR head."},
    {"DEPS", &t_deps, OFF(deps), NULL, "`[]`", 0, 0,
     "Cold dependencies, deployed (and torn down) before the base."},
    {"ENV", &t_envmap, OFF(env), "{}", NULL, 0, 0,
     "Values set in the app env after `app new`."},
    {"COMPOSE_FILES", &t_compose_files, OFF(compose_files), "[]",
     "`[]`: `COMPOSE_FILE` of .env.sample", 0, 0,
     "Compose overlays to deploy (written as `COMPOSE_FILE`)."},
    {"SECRETS", &t_secrets, OFF(secrets), NULL, "`{}`: all generated", 0, 0,
     "Per secret: its generated length, or a value inserted from a file."},
    {"HEALTH_PATH", &t_http_path, OFF(health_path), "/", NULL, 0, 0,
     "Path the app must answer on over HTTPS."},
    {"HEALTH_STATUS", &t_statuses, OFF(health_status_text), "[200-399]", NULL,
     0, 0, "HTTP statuses accepted from HEALTH_PATH: codes or ranges."},
    {"HEALTH_TIMEOUT", &ccci_keytab_duration, OFF(health_timeout_ms), "5m",
     NULL, CCCI_SEC(1), CCCI_DAY(1),
     "Time for every service to run and HEALTH_PATH to answer."},
    {"DEPLOY_TIMEOUT", &ccci_keytab_duration, OFF(deploy_timeout_ms), "15m",
     NULL, CCCI_SEC(1), CCCI_DAY(1),
     "Time limit of one `abra app deploy` (also abra's `TIMEOUT`)."},
    {"SERVICES", &t_services, OFF(services), "[]",
     "`[]`: every service of the compose files", 0, 0,
     "Services that must run (N/N replicas)."},
    {"BACKUP", &t_tribool, OFF(backup), NULL,
     "true when a service has the label `backupbot.backup=true`", 0, 0,
     "Run the backup and restore tiers."},
    {"DATA_CHECK", &t_data_check, OFF(data_check_service), NULL,
     "none: upgrade and restore check readiness only", 0, 0,
     "Commands that write a marker and read it back, to prove data survives "
     "upgrade and restore."},
    {"CUSTOM_TESTS", &t_globs, OFF(custom_tests), "[tests/test_*.py]", NULL, 0,
     0,
     "The recipe's own tests (the custom tier): files under tests/, "
     "relative to the recipe's top directory; hook files never count."},
    {"TEST_RUNNER", &t_argv, OFF(test_runner), "[python3, -m, pytest, -q]",
     NULL, 0, 0, "argv the custom tests run with (their paths appended)."},
    {"SCREENSHOT", &ccci_keytab_bool, OFF(screenshot), "false", NULL, 0, 0,
     "Take a screenshot of HEALTH_PATH for the results."},
    {"TIMEOUT", &ccci_keytab_duration, OFF(timeout_ms), NULL,
     "`0`: the daemon's `deadline`", 0, CCCI_DAY(7),
     "Time limit of the whole run (at most the daemon's `deadline`)."},
    {"SERVERS", &t_servers, OFF(servers), "[]", "`[]`: any server", 0, 0,
     "The servers of the daemon's pool (config `servers:`) the run may go "
     "to: one of them. Ignored without `servers:` (one implicit server); "
     "the harness does not read it."},
    {"SERVER_LABELS", &t_labels, OFF(server_labels), "[]", "`[]`: any server",
     0, 0,
     "Labels the run's server must all have (`servers[].labels`, like "
     "`heavy` or `arm64`). Ignored without `servers:`; the harness does not "
     "read it."},
};

_Static_assert(CCCI_ARRAY_LEN(keys) == CCCI_META_NKEYS, "one key per enum");

static const struct ccci_keytab table = {keys, CCCI_ARRAY_LEN(keys),
                                         sizeof(keys[0]), 0};

/* ---- load ---- */

/* HEALTH_STATUS's text as ranges (the engine checked every item). */
static void derive(struct ccci_meta *m)
{
  size_t i;
  free(m->health_status);
  m->health_status =
      ccci_xcalloc(m->health_status_text.n + 1, sizeof(*m->health_status));
  m->nhealth_status = 0;
  for (i = 0; i < m->health_status_text.n; i++) {
    struct ccci_meta_status_range *r = &m->health_status[m->nhealth_status];
    if (parse_status(m->health_status_text.v[i], &r->lo, &r->hi))
      m->nhealth_status++;
  }
}

void ccci_meta_defaults(struct ccci_meta *m)
{
  size_t i;
  memset(m, 0, sizeof(*m));
  ccci_keytab_defaults(&table, m);
  for (i = 0; i < CCCI_META_NKEYS; i++)
    m->origin[i].source = CCCI_META_FROM_DEFAULT;
  derive(m);
}

void ccci_meta_free(struct ccci_meta *m)
{
  if (m == NULL)
    return;
  ccci_keytab_free(&table, m);
  free(m->health_status);
  memset(m, 0, sizeof(*m));
}

int ccci_meta_parse(const char *name, const char *base_dir, const char *text,
                    size_t len, enum ccci_meta_source source,
                    struct ccci_meta *m, char **errors)
{
  size_t seen[CCCI_META_NKEYS] = {0}, i;
  int r = ccci_keytab_parse_seen(&table, name, base_dir, text, len,
                                 CCCI_META_MAX_BYTES, m, seen, errors);
  for (i = 0; i < CCCI_META_NKEYS; i++) {
    if (seen[i] == 0)
      continue;
    m->origin[i].source = source;
    m->origin[i].line = seen[i];
  }
  derive(m);
  return r;
}

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

/* Parse the file @p path over @p m when it exists; errors appended to
 * @p all. */
static int load_one(const char *path, enum ccci_meta_source source,
                    struct ccci_meta *m, struct ccci_buf *all)
{
  char *text = NULL, *base = NULL, *err = NULL;
  size_t len = 0;
  int r;

  if (path == NULL || (access(path, F_OK) < 0 && errno == ENOENT))
    return 0;
  r = ccci_keytab_read_file(path, CCCI_META_MAX_BYTES, &text, &len, &base,
                            &err);
  if (r == 0)
    r = ccci_meta_parse(base_name(path), base, text, len, source, m, &err);
  if (err != NULL && ccci_buf_printf(all, "%s", err) < 0)
    r = -ENOMEM; /* the buffer is uncapped */
  free(err);
  free(text);
  free(base);
  return r;
}

int ccci_meta_load(const char *operator_file, const char *recipe_file,
                   struct ccci_meta *out, char **errors)
{
  struct ccci_buf all;
  int r1, r2;

  *errors = NULL;
  ccci_meta_defaults(out);
  ccci_buf_init(&all, SIZE_MAX);
  r1 = load_one(recipe_file, CCCI_META_FROM_RECIPE, out, &all);
  r2 = load_one(operator_file, CCCI_META_FROM_OPERATOR, out, &all);
  if (r1 < 0 || r2 < 0) {
    *errors = ccci_buf_detach(&all);
    return -EINVAL;
  }
  ccci_buf_close(&all);
  return 0;
}

/* Parse @p path (named @p shown in errors) over @p m when it exists. */
static int placement_file(const char *path, const char *shown,
                          enum ccci_meta_source source, struct ccci_meta *m,
                          struct ccci_buf *all)
{
  char *text = NULL, *base = NULL, *err = NULL;
  size_t len = 0;
  int r;

  if (path == NULL || (access(path, F_OK) < 0 && errno == ENOENT))
    return 0;
  r = ccci_keytab_read_file(path, CCCI_META_MAX_BYTES, &text, &len, &base,
                            &err);
  if (r == 0)
    r = ccci_meta_parse(shown, base, text, len, source, m, &err);
  if (err != NULL && ccci_buf_printf(all, "%s", err) < 0)
    r = -ENOMEM; /* the buffer is uncapped */
  free(err);
  free(text);
  free(base);
  return r;
}

int ccci_meta_placement(const char *own_path, const char *own_text,
                        size_t own_len, const char *overlay_path,
                        struct ccci_strlist *servers,
                        struct ccci_strlist *labels, char **err)
{
  static const char own_name[] = "tests/recipe_meta.yml";
  struct ccci_meta m;
  struct ccci_buf all;
  char *e = NULL;
  int r1 = 0, r2;

  *err = NULL;
  memset(servers, 0, sizeof(*servers));
  memset(labels, 0, sizeof(*labels));
  ccci_meta_defaults(&m);
  ccci_buf_init(&all, SIZE_MAX);
  if (own_path != NULL) {
    r1 = placement_file(own_path, own_name, CCCI_META_FROM_RECIPE, &m, &all);
  } else if (own_text != NULL) {
    r1 = ccci_meta_parse(own_name, NULL, own_text, own_len,
                         CCCI_META_FROM_RECIPE, &m, &e);
    if (e != NULL && ccci_buf_printf(&all, "%s", e) < 0)
      r1 = -ENOMEM;
    free(e);
  }
  r2 = placement_file(overlay_path, overlay_path, CCCI_META_FROM_OPERATOR, &m,
                      &all);
  if (r1 < 0 || r2 < 0) {
    ccci_meta_free(&m);
    *err = ccci_buf_detach(&all);
    if (*err == NULL)
      *err = ccci_xstrdup("recipe_meta.yml: cannot be read");
    return -EINVAL;
  }
  ccci_buf_close(&all);
  ccci_strlist_copy(servers, &m.servers);
  ccci_strlist_copy(labels, &m.server_labels);
  ccci_meta_free(&m);
  return 0;
}

bool ccci_meta_status_ok(const struct ccci_meta *m, long status)
{
  size_t i;
  for (i = 0; i < m->nhealth_status; i++)
    if (status >= (long)m->health_status[i].lo &&
        status <= (long)m->health_status[i].hi)
      return true;
  return false;
}

const char *ccci_meta_key_name(enum ccci_meta_key k)
{
  if ((unsigned)k >= CCCI_META_NKEYS)
    return NULL;
  return keys[k].name;
}

const char *ccci_meta_source_name(enum ccci_meta_source s)
{
  switch (s) {
  case CCCI_META_FROM_DEFAULT:
    return "default";
  case CCCI_META_FROM_RECIPE:
    return "recipe";
  case CCCI_META_FROM_OPERATOR:
    return "operator";
  }
  return "?";
}

/* ---- output ---- */

char *ccci_meta_dump_key(const struct ccci_meta *m, enum ccci_meta_key k)
{
  struct ccci_keytab one = {&keys[k], 1, sizeof(keys[0]), 0};
  struct ccci_buf line;
  ccci_buf_init(&line, SIZE_MAX);
  ccci_keytab_dump(&one, m, &line);
  return ccci_buf_detach(&line);
}

char *ccci_meta_dump(const struct ccci_meta *m)
{
  struct ccci_buf b;
  size_t i;
  int r = 0;

  ccci_buf_init(&b, SIZE_MAX);
  for (i = 0; i < CCCI_META_NKEYS; i++) {
    char *text = ccci_meta_dump_key(m, (enum ccci_meta_key)i);
    if (m->origin[i].source == CCCI_META_FROM_DEFAULT)
      r = ccci_buf_printf(&b, "# default\n%s", text);
    else
      r = ccci_buf_printf(&b, "# %s, line %zu\n%s",
                          ccci_meta_source_name(m->origin[i].source),
                          m->origin[i].line, text);
    free(text);
  }
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}

json_t *ccci_meta_to_json(const struct ccci_meta *m)
{
  json_t *root = json_object();
  ccci_keytab_to_json(&table, m, root);
  return root;
}

/* The example file of the docs; test_meta.c parses it. */
static const char example[] =
    "# tests/recipe_meta.yml of a recipe (every key is optional)\n"
    "UPGRADE_BASE_VERSION: 1.2.0+2.4\n"
    "SKIP_TIERS: [custom]\n"
    "DEPS:\n"
    "  - recipe: mariadb\n"
    "    version: 2.0.1+10.11\n"
    "    env: {MARIADB_DATABASE: app}\n"
    "ENV:\n"
    "  SMTP_HOST: mail.example.org\n"
    "COMPOSE_FILES: [compose.yml, compose.smtp.yml]\n"
    "SECRETS:\n"
    "  db_password: {length: 32}\n"
    "  api_key: {generate: false, value_file: api_key.txt}\n"
    "HEALTH_PATH: /healthz\n"
    "HEALTH_STATUS: [200, 301-302]\n"
    "HEALTH_TIMEOUT: 10m\n"
    "SERVICES: [app, db]\n"
    "BACKUP: true\n"
    "DATA_CHECK:\n"
    "  service: app\n"
    "  write: echo {marker} > /var/lib/app/ccci-marker\n"
    "  read: cat /var/lib/app/ccci-marker\n"
    "TEST_RUNNER: [python3, -m, pytest, -q, -x]\n"
    "SERVER_LABELS: [heavy]\n";

const char *ccci_meta_example(void)
{
  return example;
}

/* The default of @p k as the docs show it. */
static char *doc_default(const struct ccci_keytab_key *k)
{
  if (k->def_doc != NULL)
    return ccci_xstrdup(k->def_doc);
  if (k->def != NULL)
    return ccci_xasprintf("`%s`", k->def);
  return ccci_xstrdup("none");
}

static void doc_row(struct ccci_buf *b, const char *name,
                    const struct ccci_keytab_key *k)
{
  char range[80] = "";
  char *def = doc_default(k);
  int r;
  if (k->type->storage == CCCI_KEYTAB_U64) {
    char lo[32], hi[32];
    ccci_keytab_format(k, k->min, lo);
    ccci_keytab_format(k, k->max, hi);
    snprintf(range, sizeof(range), " (%s to %s)", lo, hi);
  }
  r = ccci_buf_printf(b, "| `%s` | %s%s | %s | %s |\n", name, k->type->doc_name,
                      range, def, k->doc);
  (void)r; /* uncapped */
  free(def);
}

static void doc_fields(struct ccci_buf *b, const char *title,
                       const struct ccci_keytab *fields)
{
  size_t i;
  int r = ccci_buf_printf(b,
                          "\n### %s\n\n"
                          "| key | type | default | meaning |\n"
                          "|---|---|---|---|\n",
                          title);
  (void)r; /* uncapped */
  for (i = 0; i < fields->n; i++) {
    const struct ccci_keytab_key *k = ccci_keytab_at(fields, i);
    doc_row(b, k->name, k);
  }
}

char *ccci_meta_docs(void)
{
  struct ccci_buf b;
  size_t i;
  int r;

  ccci_buf_init(&b, SIZE_MAX);
  r = ccci_buf_printf(
      &b,
      "# recipe_meta.yml reference\n\n"
      "<!-- Generated by `ccci meta docs` from the key table in "
      "src/harness/meta.c; CI checks it is current. Do not edit by hand. "
      "-->\n\n"
      "A recipe tunes how `ccci harness` tests it with one YAML file, "
      "`recipe_meta.yml`. Two places are read, both optional:\n\n"
      "1. the recipe's own `tests/recipe_meta.yml` (in the recipe's "
      "repository, as of the tested commit);\n"
      "2. the operator's `<harness.overlays_dir>/<recipe>/recipe_meta.yml` "
      "(config `harness.overlays_dir`, docs/config.md), for what an operator "
      "needs without changing the recipe.\n\n"
      "Merge rule: key by key, the operator's file wins. A key the operator "
      "sets replaces the recipe's value whole (lists, maps and records are "
      "not merged item by item); a key set in neither file takes its "
      "default; an empty value (`KEY:`, `~`) counts as not set. Each file "
      "is at most 64 KiB. Relative paths (`value_file`) are relative to "
      "the directory of the file that names them.\n\n"
      "Errors name the file's base name, the 1-based line and column of "
      "the key, and for an unknown key the nearest known one, nested keys "
      "too, for example\n"
      "`recipe_meta.yml:3:1: unknown key 'UPGRADE_BASE_VERISON'; did you "
      "mean 'UPGRADE_BASE_VERSION'?` or "
      "`recipe_meta.yml:5:5: unknown key 'DEPS[0].recpe'; did you mean "
      "'DEPS[0].recipe'?`. A recipe_meta.yml with an error fails the run "
      "before anything is deployed.\n\n"
      "Types: a *duration* is one or more `<integer><unit>` with units "
      "`ms`, `s`, `m`, `h`, `d` (`90s`, `1h30m`); tiers are `upgrade`, "
      "`install`, `backup`, `restore`, `custom` (`deploy` always runs; "
      "docs/levels.md); a status is a code `200` or a range `200-399`, "
      "each from 100 to 599; a *recipe name* (DEPS) is lowercase letters, "
      "digits and `-`, not at either end, at most 61 bytes (the harness "
      "names a dependency's app `<recipe>-<first label of the app's "
      "domain>`, one DNS label).\n\n"
      "Placement: `SERVERS` and `SERVER_LABELS` are read by the daemon, "
      "not the harness, when it accepts a run (a local submit from the "
      "copied recipe, a forge run from the file at the pinned commit), with "
      "the operator's file over the recipe's as above. With a pool "
      "(`servers:` in the daemon's config, docs/config.md) the run goes to "
      "one of the `SERVERS` (any when empty) that has every one of the "
      "`SERVER_LABELS`; a run no server of the pool matches waits queued. "
      "Without `servers:` both are ignored: every run goes to the one "
      "implicit server. A file with an error places the run anywhere (the "
      "harness then fails it before deploying). `ccci meta check -c CONFIG "
      "DIR` warns when the pool has no such server.\n\n"
      "## Keys\n\n"
      "| key | type | default | meaning |\n"
      "|---|---|---|---|\n");
  for (i = 0; i < CCCI_META_NKEYS; i++)
    doc_row(&b, keys[i].name, &keys[i]);
  doc_fields(&b, "`DEPS` items", &dep_table);
  doc_fields(&b, "`SECRETS` values (keyed by the secret's name)",
             &secret_table);
  r = ccci_buf_printf(&b, "\nA secret is either generated (the default) or "
                          "inserted from `value_file` with `generate: "
                          "false`.\n");
  doc_fields(&b, "`DATA_CHECK`", &data_check_table);
  r = ccci_buf_printf(
      &b,
      "\nThe commands run as `sh -c <command>` in the service through "
      "`abra app run` (config `harness.abra.run`); `{marker}` is replaced by "
      "the harness's marker text. Without DATA_CHECK, upgrade and restore "
      "check readiness only and results.json says `data_checked: false`.\n"
      "\n## Example\n\n```yaml\n%s```\n",
      example);
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}
