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
#include <yaml.h>

#include "build_info.h"

/* How a key's value is stored in struct ccci_config. */
enum storage { S_STR, S_U64, S_LIST, S_MAP };

/* What a key's value must look like. */
enum type {
  T_PATH,
  T_SECRET_PATH,
  T_STRING,
  T_URL,
  T_LISTEN,
  T_DNS,
  T_INT,
  T_DURATION,
  T_SIZE,
  T_ARGV,
  T_PATHLIST,
  T_NAMELIST,
  T_REPOLIST,
  T_ENVMAP,
};

struct type_info {
  enum storage storage;
  const char *doc_name; /* in docs/config.md */
  const char *expect;   /* "expected ..." in errors */
};

static const struct type_info types[] = {
    [T_PATH] = {S_STR, "path", "a path"},
    [T_SECRET_PATH] = {S_STR, "path (secret file)", "a path to a file"},
    [T_STRING] = {S_STR, "string", "a non-empty string"},
    [T_URL] = {S_STR, "URL", "an http:// or https:// URL"},
    [T_LISTEN] = {S_STR, "host:port", "host:port, like 127.0.0.1:8080"},
    [T_DNS] = {S_STR, "DNS name", "a DNS name, like ci.example.org"},
    [T_INT] = {S_U64, "integer", "an integer"},
    [T_DURATION] = {S_U64, "duration",
                    "a duration, like 500ms, 90s, 10m, 2h or 1d"},
    [T_SIZE] = {S_U64, "size", "a size, like 4096, 64KiB, 256MiB or 1GiB"},
    [T_ARGV] = {S_LIST, "list of strings (argv)",
                "a non-empty list of strings (the program and its arguments)"},
    [T_PATHLIST] = {S_LIST, "list of paths", "a list of paths"},
    [T_NAMELIST] = {S_LIST, "list of strings", "a list of non-empty strings"},
    [T_REPOLIST] = {S_LIST, "list of owner/name", "a list of owner/name repos"},
    [T_ENVMAP] = {S_MAP, "map of string to string",
                  "a map of environment variable names to strings"},
};

struct key {
  const char *name;
  enum type type;
  size_t off;
  const char *def;     /* YAML text of the default; NULL: computed or none */
  const char *def_doc; /* the default as docs show it, when not `def` */
  enum ccci_reload reload;
  uint64_t min, max; /* for integers, durations and sizes */
  bool active;       /* does this version act on the key yet? */
  const char *doc;
};

#define OFF(field) offsetof(struct ccci_config, field)
#define SEC(n) ((uint64_t)(n)*1000u)
#define MIN(n) SEC((uint64_t)(n)*60u)
#define HOUR(n) MIN((uint64_t)(n)*60u)
#define DAY(n) HOUR((uint64_t)(n)*24u)
#define KiB(n) ((uint64_t)(n)*1024u)
#define MiB(n) KiB((uint64_t)(n)*1024u)
#define GiB(n) MiB((uint64_t)(n)*1024u)
#define TiB(n) GiB((uint64_t)(n)*1024u)

#define EXAMPLE_HARNESS CCCI_EXAMPLES_DIR "/example-harness"

/* The one table of keys: order here is the order of docs and dumps; keys of
 * a section are contiguous. */
static const struct key keys[] = {
    {"state_dir", T_PATH, OFF(state_dir), NULL,
     "`$XDG_STATE_HOME/ccci`, else `~/.local/state/ccci`", CCCI_RELOAD_RESTART,
     0, 0, true, "Runs, logs, ledger, locks and the single-instance lock."},
    {"socket", T_PATH, OFF(socket), NULL, "`<state_dir>/ccci.sock`",
     CCCI_RELOAD_RESTART, 0, 0, true,
     "The control socket (mode 0660; its directory is made 0750)."},
    {"secrets_dir", T_PATH, OFF(secrets_dir), "/run/secrets", NULL,
     CCCI_RELOAD_NEXT_RUN, 0, 0, true,
     "Every regular file under it (recursively) holds a value to mask."},
    {"secret_files", T_PATHLIST, OFF(secret_files), "[]", NULL,
     CCCI_RELOAD_NEXT_RUN, 0, 0, true, "More files whose values are masked."},
    {"min_secret_len", T_INT, OFF(min_secret_len), "8", NULL,
     CCCI_RELOAD_NEXT_RUN, 1, 4096, true,
     "Secret values shorter than this are not masked (and are reported)."},
    {"capacity", T_INT, OFF(capacity), "2", NULL, CCCI_RELOAD_LIVE, 1, 1024,
     true, "Runs at once (running or cancelling)."},
    {"deadline", T_DURATION, OFF(deadline_ms), "60m", NULL,
     CCCI_RELOAD_NEXT_RUN, SEC(1), DAY(7), true, "Time limit of one run."},
    {"kill_grace", T_DURATION, OFF(kill_grace_ms), "30s", NULL,
     CCCI_RELOAD_NEXT_RUN, 0, HOUR(1), true,
     "From SIGTERM to SIGKILL when a run is stopped."},
    {"teardown_grace", T_DURATION, OFF(teardown_grace_ms), "10m", NULL,
     CCCI_RELOAD_NEXT_RUN, 0, DAY(1), true,
     "Time for a teardown after cancel, deadline or orphaning."},
    {"drain_timeout", T_DURATION, OFF(drain_timeout_ms), "5s", NULL,
     CCCI_RELOAD_NEXT_RUN, 0, MIN(10), true,
     "How long a run's pipes may stay open after its supervisor exits."},
    {"shutdown_grace", T_DURATION, OFF(shutdown_grace_ms), "0s", NULL,
     CCCI_RELOAD_LIVE, 0, DAY(1), true,
     "On daemon stop, wait this long for runs before cancelling them."},
    {"log_max_bytes", T_SIZE, OFF(log_max_bytes), "256MiB", NULL,
     CCCI_RELOAD_NEXT_RUN, KiB(64), TiB(1), true,
     "Cap of one run's log; past it the head is kept."},
    {"min_free_bytes", T_SIZE, OFF(min_free_bytes), "1GiB", NULL,
     CCCI_RELOAD_LIVE, 0, TiB(1024), true,
     "Below this much free space on the state dir no run is admitted."},
    {"retention.max_age", T_DURATION, OFF(retention.max_age_ms), "30d", NULL,
     CCCI_RELOAD_LIVE, HOUR(1), DAY(36500), true,
     "Finished runs older than this lose their logs, later their meta."},
    {"retention.max_bytes", T_SIZE, OFF(retention.max_bytes), "20GiB", NULL,
     CCCI_RELOAD_LIVE, MiB(1), TiB(1024), true,
     "Cap of the total size of finished runs."},
    {"harness.command", T_ARGV, OFF(harness.command),
     "[\"" EXAMPLE_HARNESS "\"]",
     "`[<examples>/example-harness]`: the example harness shipped in "
     "examples/ (until `ccci harness` exists)",
     CCCI_RELOAD_NEXT_RUN, 0, 0, true, "argv of the per-run harness."},
    {"harness.teardown_command", T_ARGV, OFF(harness.teardown_command),
     "[\"" EXAMPLE_HARNESS "\", \"--teardown\"]",
     "`[<examples>/example-harness, --teardown]`", CCCI_RELOAD_NEXT_RUN, 0, 0,
     true, "argv of the teardown of a run's domain."},
    {"harness.domain_suffix", T_DNS, OFF(harness.domain_suffix), "ci.local",
     NULL, CCCI_RELOAD_NEXT_RUN, 0, 0, true,
     "App domains are `<recipe>-pr<N>.<domain_suffix>`."},
    {"harness.user", T_STRING, OFF(harness.user), NULL, "none (the daemon's)",
     CCCI_RELOAD_NEXT_RUN, 0, 0, true,
     "Run the harness as this user (a separate uid in the docker group)."},
    {"harness.env", T_ENVMAP, OFF(harness.env), "{}", NULL,
     CCCI_RELOAD_NEXT_RUN, 0, 0, true,
     "Extra environment variables for the harness (not for secrets: use "
     "secret files)."},
    {"janitor.interval", T_DURATION, OFF(janitor.interval_ms), "5m", NULL,
     CCCI_RELOAD_LIVE, SEC(1), DAY(1), true, "Period of the janitor sweep."},
    {"forge.url", T_URL, OFF(forge.url), NULL, "none (no forge: local runs)",
     CCCI_RELOAD_RESTART, 0, 0, true,
     "Base URL of the Gitea or Forgejo (API under `<url>/api/v1`)."},
    {"forge.token_file", T_SECRET_PATH, OFF(forge.token_file), NULL, "none",
     CCCI_RELOAD_LIVE, 0, 0, true,
     "File holding the bot's API token (re-read on SIGHUP)."},
    {"forge.repos", T_REPOLIST, OFF(forge.repos), "[]", NULL, CCCI_RELOAD_LIVE,
     0, 0, true, "Enrolled repos, `owner/name`."},
    {"forge.poll_interval", T_DURATION, OFF(forge.poll_interval_ms), "30s",
     NULL, CCCI_RELOAD_LIVE, SEC(1), DAY(1), true, "Poll period per repo."},
    {"forge.max_connections", T_INT, OFF(forge.max_connections), "16", NULL,
     CCCI_RELOAD_LIVE, 1, 256, true, "Forge requests in flight at most."},
    {"forge.allowlist", T_NAMELIST, OFF(forge.allowlist), "[]", NULL,
     CCCI_RELOAD_LIVE, 0, 0, true,
     "Forge users allowed to trigger although not org members."},
    {"forge.auth_cache", T_DURATION, OFF(forge.auth_cache_ms), "10m", NULL,
     CCCI_RELOAD_LIVE, 0, DAY(1), true,
     "How long membership answers are cached."},
    {"forge.status_context", T_STRING, OFF(forge.status_context), "ccci/testme",
     NULL, CCCI_RELOAD_NEXT_RUN, 0, 0, true, "Context of the commit statuses."},
    {"forge.webhook_secret_file", T_SECRET_PATH, OFF(forge.webhook_secret_file),
     NULL, "none", CCCI_RELOAD_LIVE, 0, 0, false,
     "File holding the webhook secret; enables `POST /hook`."},
    {"http.listen", T_LISTEN, OFF(http.listen), "127.0.0.1:8080", NULL,
     CCCI_RELOAD_RESTART, 0, 0, false,
     "Address of the HTTP front (port 0: any, reported by status)."},
    {"http.public_url", T_URL, OFF(http.public_url), NULL, "none",
     CCCI_RELOAD_LIVE, 0, 0, true, "Base of links posted to the forge."},
};

#define NKEYS CCCI_ARRAY_LEN(keys)

static void *slot(struct ccci_config *cfg, const struct key *k)
{
  return (char *)cfg + k->off;
}

static const void *cslot(const struct ccci_config *cfg, const struct key *k)
{
  return (const char *)cfg + k->off;
}

/* ---- durations and sizes ---- */

static int mul_add(uint64_t *acc, uint64_t n, uint64_t unit)
{
  if (unit != 0 && n > UINT64_MAX / unit)
    return -ERANGE;
  if (*acc > UINT64_MAX - n * unit)
    return -ERANGE;
  *acc += n * unit;
  return 0;
}

int ccci_config_parse_duration(const char *s, uint64_t *ms)
{
  static const struct {
    const char *u;
    uint64_t ms;
  } units[] = {
      {"ms", 1}, {"s", SEC(1)}, {"m", MIN(1)}, {"h", HOUR(1)}, {"d", DAY(1)}};
  uint64_t total = 0;

  if (s == NULL || *s == '\0')
    return -EINVAL;
  if (strcmp(s, "0") == 0) {
    *ms = 0;
    return 0;
  }
  while (*s != '\0') {
    uint64_t n = 0;
    size_t i, best = CCCI_ARRAY_LEN(units);
    if (!isdigit((unsigned char)*s))
      return -EINVAL;
    while (isdigit((unsigned char)*s)) {
      uint64_t d = (uint64_t)(*s++ - '0');
      if (n > (UINT64_MAX - d) / 10)
        return -ERANGE;
      n = n * 10 + d;
    }
    /* The longest unit that matches ("ms" before "m"). */
    for (i = 0; i < CCCI_ARRAY_LEN(units); i++) {
      size_t l = strlen(units[i].u);
      if (strncmp(s, units[i].u, l) == 0 &&
          (best == CCCI_ARRAY_LEN(units) || l > strlen(units[best].u)))
        best = i;
    }
    if (best == CCCI_ARRAY_LEN(units))
      return -EINVAL;
    if (mul_add(&total, n, units[best].ms) < 0)
      return -ERANGE;
    s += strlen(units[best].u);
  }
  *ms = total;
  return 0;
}

int ccci_config_parse_size(const char *s, uint64_t *bytes)
{
  static const struct {
    const char *u;
    uint64_t mult;
  } units[] = {{"", 1},
               {"B", 1},
               {"KiB", KiB(1)},
               {"MiB", MiB(1)},
               {"GiB", GiB(1)},
               {"TiB", TiB(1)},
               {"KB", 1000u},
               {"kB", 1000u},
               {"MB", 1000000u},
               {"GB", 1000000000u},
               {"TB", 1000000000000u}};
  uint64_t n = 0, total = 0;
  size_t i;

  if (s == NULL || !isdigit((unsigned char)*s))
    return -EINVAL;
  while (isdigit((unsigned char)*s)) {
    uint64_t d = (uint64_t)(*s++ - '0');
    if (n > (UINT64_MAX - d) / 10)
      return -ERANGE;
    n = n * 10 + d;
  }
  for (i = 0; i < CCCI_ARRAY_LEN(units); i++) {
    if (strcmp(s, units[i].u) == 0) {
      if (mul_add(&total, n, units[i].mult) < 0)
        return -ERANGE;
      *bytes = total;
      return 0;
    }
  }
  return -EINVAL;
}

void ccci_config_format_duration(uint64_t ms, char out[32])
{
  static const struct {
    const char *u;
    uint64_t ms;
  } units[] = {{"d", DAY(1)}, {"h", HOUR(1)}, {"m", MIN(1)}, {"s", SEC(1)}};
  size_t i;
  if (ms == 0) {
    snprintf(out, 32, "0s");
    return;
  }
  for (i = 0; i < CCCI_ARRAY_LEN(units); i++) {
    if (ms % units[i].ms == 0) {
      snprintf(out, 32, "%llu%s", (unsigned long long)(ms / units[i].ms),
               units[i].u);
      return;
    }
  }
  snprintf(out, 32, "%llums", (unsigned long long)ms);
}

void ccci_config_format_size(uint64_t bytes, char out[32])
{
  static const struct {
    const char *u;
    uint64_t mult;
  } units[] = {
      {"TiB", TiB(1)}, {"GiB", GiB(1)}, {"MiB", MiB(1)}, {"KiB", KiB(1)}};
  size_t i;
  for (i = 0; bytes != 0 && i < CCCI_ARRAY_LEN(units); i++) {
    if (bytes % units[i].mult == 0) {
      snprintf(out, 32, "%llu%s", (unsigned long long)(bytes / units[i].mult),
               units[i].u);
      return;
    }
  }
  snprintf(out, 32, "%llu", (unsigned long long)bytes);
}

static void format_number(const struct key *k, uint64_t v, char out[32])
{
  if (k->type == T_DURATION)
    ccci_config_format_duration(v, out);
  else if (k->type == T_SIZE)
    ccci_config_format_size(v, out);
  else
    snprintf(out, 32, "%llu", (unsigned long long)v);
}

/* ---- values: free, compare ---- */

static void strlist_free(struct ccci_strlist *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* Lists stay NULL-terminated, so an argv can be used as is. */
static void strlist_push(struct ccci_strlist *l, char *s)
{
  l->v = ccci_xrealloc(l->v, (l->n + 2) * sizeof(*l->v));
  l->v[l->n++] = s;
  l->v[l->n] = NULL;
}

static void strmap_free(struct ccci_strmap *m)
{
  size_t i;
  for (i = 0; i < m->n; i++) {
    free(m->keys[i]);
    free(m->vals[i]);
  }
  free(m->keys);
  free(m->vals);
  m->keys = NULL;
  m->vals = NULL;
  m->n = 0;
}

static void value_free(struct ccci_config *cfg, const struct key *k)
{
  void *p = slot(cfg, k);
  switch (types[k->type].storage) {
  case S_STR:
    free(*(char **)p);
    *(char **)p = NULL;
    break;
  case S_U64:
    *(uint64_t *)p = 0;
    break;
  case S_LIST:
    strlist_free(p);
    break;
  case S_MAP:
    strmap_free(p);
    break;
  }
}

static bool str_eq(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static bool value_equal(const struct ccci_config *a,
                        const struct ccci_config *b, const struct key *k)
{
  const void *pa = cslot(a, k), *pb = cslot(b, k);
  size_t i;
  switch (types[k->type].storage) {
  case S_STR:
    return str_eq(*(char *const *)pa, *(char *const *)pb);
  case S_U64:
    return *(const uint64_t *)pa == *(const uint64_t *)pb;
  case S_LIST: {
    const struct ccci_strlist *la = pa, *lb = pb;
    if (la->n != lb->n)
      return false;
    for (i = 0; i < la->n; i++)
      if (strcmp(la->v[i], lb->v[i]) != 0)
        return false;
    return true;
  }
  case S_MAP: {
    const struct ccci_strmap *ma = pa, *mb = pb;
    if (ma->n != mb->n)
      return false;
    for (i = 0; i < ma->n; i++)
      if (strcmp(ma->keys[i], mb->keys[i]) != 0 ||
          strcmp(ma->vals[i], mb->vals[i]) != 0)
        return false;
    return true;
  }
  }
  return false;
}

/* ---- parsing ---- */

struct parse {
  const char *name;
  const char *base_dir;
  yaml_document_t *doc;
  struct ccci_config *cfg;
  struct ccci_buf errors;
  unsigned nerrors;
  size_t seen_line[NKEYS]; /* 1-based line where a key was set; 0: not */
  struct {
    const char *name;
    size_t line;
  } sections[16]; /* sections seen at the top level */
  size_t nsections;
};

static void add_error(struct parse *ps, const yaml_mark_t *mark,
                      const char *fmt, ...) CCCI_PRINTF(3, 4);

static void add_error(struct parse *ps, const yaml_mark_t *mark,
                      const char *fmt, ...)
{
  va_list ap;
  char *msg;
  int r;

  ps->nerrors++;
  if (ps->nerrors > CCCI_CONFIG_MAX_ERRORS)
    return;
  va_start(ap, fmt);
  msg = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  if (ps->nerrors == CCCI_CONFIG_MAX_ERRORS) {
    free(msg);
    msg = ccci_xstrdup("too many errors; stopping here");
  }
  if (mark != NULL)
    r = ccci_buf_printf(&ps->errors, "%s:%zu:%zu: %s\n", ps->name,
                        mark->line + 1, mark->column + 1, msg);
  else
    r = ccci_buf_printf(&ps->errors, "%s: %s\n", ps->name, msg);
  (void)r; /* the error buffer is uncapped (SIZE_MAX) */
  free(msg);
}

/* A short, printable rendering of @p len bytes of user text for messages:
 * control bytes, quotes and backslashes as \xNN, cut after 60 bytes. */
static char *printable_n(const char *v, size_t len)
{
  struct ccci_buf b;
  size_t i;
  int r = 0;

  ccci_buf_init(&b, SIZE_MAX);
  for (i = 0; i < len && i < 60 && r == 0; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
      r = ccci_buf_printf(&b, "\\x%02x", c);
    else
      r = ccci_buf_append(&b, &v[i], 1);
  }
  if (r == 0 && len > 60)
    r = ccci_buf_append(&b, "...", 3);
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}

static char *printable(const char *s)
{
  return printable_n(s, strlen(s));
}

static char *show(const yaml_node_t *n)
{
  return printable_n((const char *)n->data.scalar.value, n->data.scalar.length);
}

static const char *node_kind(const yaml_node_t *n)
{
  switch (n->type) {
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "a scalar";
  }
}

static bool is_null(const yaml_node_t *n)
{
  const char *v;
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  v = (const char *)n->data.scalar.value;
  return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

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

/* Check one string item of @p type; on success returns the value to store. */
static char *check_string(struct parse *ps, const struct key *k, enum type type,
                          const char *label, const yaml_node_t *n,
                          const yaml_mark_t *mark)
{
  const char *v = (const char *)n->data.scalar.value;
  bool ok = true;
  char *shown;

  if (strlen(v) != n->data.scalar.length) {
    add_error(ps, mark, "%s: contains a NUL byte", label);
    return NULL;
  }
  switch (type) {
  case T_PATH:
  case T_SECRET_PATH:
  case T_PATHLIST:
    ok = *v != '\0';
    if (ok)
      return ccci_path_join(ps->base_dir, v);
    break;
  case T_STRING:
  case T_ARGV:
  case T_NAMELIST:
    ok = *v != '\0';
    break;
  case T_URL:
    ok = valid_url(v);
    if (ok) {
      char *u = ccci_xstrdup(v);
      size_t l = strlen(u);
      while (l > 0 && u[l - 1] == '/')
        u[--l] = '\0';
      return u;
    }
    break;
  case T_LISTEN:
    ok = valid_listen(v);
    break;
  case T_DNS:
    ok = valid_dns(v);
    break;
  case T_REPOLIST:
    ok = valid_repo(v);
    break;
  default:
    break;
  }
  if (ok)
    return ccci_xstrdup(v);
  shown = show(n);
  add_error(ps, mark, "%s: expected %s, got '%s'", label, types[k->type].expect,
            shown);
  free(shown);
  return NULL;
}

static void parse_number(struct parse *ps, const struct key *k,
                         const yaml_node_t *n, const yaml_mark_t *mark)
{
  const char *v = (const char *)n->data.scalar.value;
  uint64_t x = 0;
  int r;
  char *shown;

  if (k->type == T_DURATION)
    r = ccci_config_parse_duration(v, &x);
  else if (k->type == T_SIZE)
    r = ccci_config_parse_size(v, &x);
  else
    r = ccci_parse_u64(v, &x);
  if (r == 0 && strlen(v) != n->data.scalar.length)
    r = -EINVAL;
  shown = show(n);
  if (r == -EINVAL) {
    add_error(ps, mark, "%s: expected %s, got '%s'", k->name,
              types[k->type].expect, shown);
  } else if (r < 0 || x < k->min || x > k->max) {
    char lo[32], hi[32];
    format_number(k, k->min, lo);
    format_number(k, k->max, hi);
    add_error(ps, mark, "%s: %s is out of range (%s to %s)", k->name, shown, lo,
              hi);
  } else {
    *(uint64_t *)slot(ps->cfg, k) = x;
  }
  free(shown);
}

static void parse_list(struct parse *ps, const struct key *k,
                       const yaml_node_t *n, const yaml_mark_t *mark)
{
  struct ccci_strlist l = {NULL, 0};
  yaml_node_item_t *it;
  bool bad = false;

  for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++) {
    yaml_node_t *item = yaml_document_get_node(ps->doc, *it);
    char label[160];
    char *v;
    snprintf(label, sizeof(label), "%s[%zu]", k->name,
             (size_t)(it - n->data.sequence.items.start));
    if (item == NULL || item->type != YAML_SCALAR_NODE || is_null(item)) {
      add_error(ps, item ? &item->start_mark : mark,
                "%s: expected a string, got %s", label,
                item == NULL || is_null(item) ? "nothing" : node_kind(item));
      bad = true;
      continue;
    }
    v = check_string(ps, k, k->type, label, item, &item->start_mark);
    if (v == NULL)
      bad = true;
    else
      strlist_push(&l, v);
  }
  if (!bad && k->type == T_ARGV && l.n == 0) {
    add_error(ps, mark, "%s: expected %s, got an empty list", k->name,
              types[k->type].expect);
    bad = true;
  }
  if (bad) {
    strlist_free(&l);
    return;
  }
  strlist_free(slot(ps->cfg, k));
  *(struct ccci_strlist *)slot(ps->cfg, k) = l;
}

static void parse_map(struct parse *ps, const struct key *k,
                      const yaml_node_t *n)
{
  struct ccci_strmap m = {NULL, NULL, 0};
  yaml_node_pair_t *p;
  bool bad = false;
  size_t i;

  for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(ps->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(ps->doc, p->value);
    const char *name;
    bool dup = false;
    if (kn == NULL || vn == NULL)
      continue;
    name = (const char *)kn->data.scalar.value;
    if (kn->type != YAML_SCALAR_NODE || !valid_env_name(name) ||
        strlen(name) != kn->data.scalar.length) {
      add_error(ps, &kn->start_mark,
                "%s: expected an environment variable name "
                "([A-Za-z_][A-Za-z0-9_]*) as key",
                k->name);
      bad = true;
      continue;
    }
    if (vn->type != YAML_SCALAR_NODE ||
        strlen((const char *)vn->data.scalar.value) != vn->data.scalar.length) {
      add_error(ps, &kn->start_mark, "%s.%s: expected a string, got %s",
                k->name, name,
                vn->type == YAML_SCALAR_NODE ? "a NUL byte" : node_kind(vn));
      bad = true;
      continue;
    }
    for (i = 0; i < m.n; i++)
      dup = dup || strcmp(m.keys[i], name) == 0;
    if (dup) {
      add_error(ps, &kn->start_mark, "duplicate key '%s.%s'", k->name, name);
      bad = true;
      continue;
    }
    m.keys = ccci_xrealloc(m.keys, (m.n + 1) * sizeof(*m.keys));
    m.vals = ccci_xrealloc(m.vals, (m.n + 1) * sizeof(*m.vals));
    m.keys[m.n] = ccci_xstrdup(name);
    m.vals[m.n] =
        ccci_xstrdup(is_null(vn) ? "" : (char *)vn->data.scalar.value);
    m.n++;
  }
  if (bad) {
    strmap_free(&m);
    return;
  }
  strmap_free(slot(ps->cfg, k));
  *(struct ccci_strmap *)slot(ps->cfg, k) = m;
}

/* Parse the value node @p n of key @p k, set at @p mark. */
static void parse_value(struct parse *ps, const struct key *k,
                        const yaml_node_t *n, const yaml_mark_t *mark)
{
  enum storage st = types[k->type].storage;

  if (is_null(n))
    return; /* an empty value means the default */
  if (st == S_LIST && n->type != YAML_SEQUENCE_NODE) {
    add_error(ps, mark, "%s: expected %s, got %s", k->name,
              types[k->type].expect, node_kind(n));
    return;
  }
  if (st == S_MAP && n->type != YAML_MAPPING_NODE) {
    add_error(ps, mark, "%s: expected %s, got %s", k->name,
              types[k->type].expect, node_kind(n));
    return;
  }
  if ((st == S_STR || st == S_U64) && n->type != YAML_SCALAR_NODE) {
    add_error(ps, mark, "%s: expected %s, got %s", k->name,
              types[k->type].expect, node_kind(n));
    return;
  }
  switch (st) {
  case S_STR: {
    char *v = check_string(ps, k, k->type, k->name, n, mark);
    if (v != NULL) {
      free(*(char **)slot(ps->cfg, k));
      *(char **)slot(ps->cfg, k) = v;
    }
    break;
  }
  case S_U64:
    parse_number(ps, k, n, mark);
    break;
  case S_LIST:
    parse_list(ps, k, n, mark);
    break;
  case S_MAP:
    parse_map(ps, k, n);
    break;
  }
}

/* Is @p prefix (without the dot) the name of a section? */
static bool is_section(const char *name)
{
  size_t i, l = strlen(name);
  for (i = 0; i < NKEYS; i++)
    if (strncmp(keys[i].name, name, l) == 0 && keys[i].name[l] == '.')
      return true;
  return false;
}

static void consider(const char *full, const char *cand, size_t len,
                     char best[128], size_t *bestd)
{
  char c[128];
  size_t d;
  snprintf(c, sizeof(c), "%.*s", (int)len, cand);
  d = ccci_edit_distance(full, c);
  if (d < *bestd) {
    *bestd = d;
    memcpy(best, c, sizeof(c));
  }
}

/* An unknown key: name the nearest known key (or section, at the top). */
static void suggest(struct parse *ps, const char *full, const yaml_mark_t *m)
{
  char best[128] = "", *shown;
  size_t bestd = SIZE_MAX, i;
  bool top = strchr(full, '.') == NULL;

  for (i = 0; i < NKEYS; i++) {
    const char *dot = strchr(keys[i].name, '.');
    consider(full, keys[i].name, strlen(keys[i].name), best, &bestd);
    if (top && dot != NULL)
      consider(full, keys[i].name, (size_t)(dot - keys[i].name), best, &bestd);
  }
  shown = printable(full);
  add_error(ps, m, "unknown key '%s'; did you mean '%s'?", shown, best);
  free(shown);
}

static void parse_mapping(struct parse *ps, const yaml_node_t *map,
                          const char *prefix);

/* A top-level key that names a section: its value is a mapping of keys. */
static void parse_section(struct parse *ps, const yaml_node_t *kn,
                          const yaml_node_t *vn, const char *full)
{
  size_t i;
  char *sub;

  for (i = 0; i < ps->nsections; i++) {
    if (strcmp(ps->sections[i].name, full) == 0) {
      add_error(ps, &kn->start_mark,
                "duplicate key '%s' (first set at line %zu)", full,
                ps->sections[i].line);
      return;
    }
  }
  if (ps->nsections < CCCI_ARRAY_LEN(ps->sections)) {
    ps->sections[ps->nsections].name = (const char *)kn->data.scalar.value;
    ps->sections[ps->nsections++].line = kn->start_mark.line + 1;
  }
  if (is_null(vn))
    return;
  if (vn->type != YAML_MAPPING_NODE) {
    add_error(ps, &kn->start_mark, "%s: expected a mapping of keys, got %s",
              full, node_kind(vn));
    return;
  }
  sub = ccci_xasprintf("%s.", full);
  parse_mapping(ps, vn, sub);
  free(sub);
}

static void parse_pair(struct parse *ps, const yaml_node_t *kn,
                       const yaml_node_t *vn, const char *full, bool top)
{
  size_t i;

  for (i = 0; i < NKEYS; i++) {
    if (strcmp(keys[i].name, full) != 0)
      continue;
    if (ps->seen_line[i] != 0) {
      add_error(ps, &kn->start_mark,
                "duplicate key '%s' (first set at line %zu)", full,
                ps->seen_line[i]);
      return;
    }
    ps->seen_line[i] = kn->start_mark.line + 1;
    parse_value(ps, &keys[i], vn, &kn->start_mark);
    return;
  }
  if (top && is_section(full))
    parse_section(ps, kn, vn, full);
  else
    suggest(ps, full, &kn->start_mark);
}

static void parse_mapping(struct parse *ps, const yaml_node_t *map,
                          const char *prefix)
{
  yaml_node_pair_t *p;

  for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
       p++) {
    yaml_node_t *kn = yaml_document_get_node(ps->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(ps->doc, p->value);
    char *full;

    if (kn == NULL || vn == NULL)
      continue;
    if (kn->type != YAML_SCALAR_NODE ||
        strlen((const char *)kn->data.scalar.value) != kn->data.scalar.length) {
      add_error(ps, &kn->start_mark, "keys must be plain strings, got %s",
                node_kind(kn));
      continue;
    }
    full = ccci_xasprintf("%s%s", prefix, (const char *)kn->data.scalar.value);
    parse_pair(ps, kn, vn, full, prefix[0] == '\0');
    free(full);
  }
}

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

/* Set the table defaults by parsing each key's default text with the same
 * code that parses the file. */
static void apply_defaults(struct ccci_config *cfg)
{
  size_t i;
  for (i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    yaml_parser_t parser;
    yaml_document_t doc;
    struct parse ps;
    yaml_node_t *root;

    if (k->def == NULL)
      continue;
    memset(&ps, 0, sizeof(ps));
    ps.name = "<default>";
    ps.cfg = cfg;
    ps.doc = &doc;
    ccci_buf_init(&ps.errors, SIZE_MAX);
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)k->def,
                                 strlen(k->def));
    if (!yaml_parser_load(&parser, &doc)) {
      fprintf(stderr, "fatal config: default of %s does not parse\n", k->name);
      abort();
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL)
      parse_value(&ps, k, root, &root->start_mark);
    if (ps.nerrors != 0) {
      fprintf(stderr, "fatal config: default of %s: %s", k->name,
              ps.errors.data);
      abort();
    }
    ccci_buf_close(&ps.errors);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
  }
}

static void finish_defaults(struct ccci_config *cfg)
{
  if (cfg->state_dir == NULL)
    cfg->state_dir = default_state_dir();
  if (cfg->socket == NULL)
    cfg->socket = ccci_xasprintf("%s/ccci.sock", cfg->state_dir);
}

/* The defaults are parsed once (on whichever thread loads a config first)
 * and copied into every new config. */
static struct ccci_config defaults;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void defaults_init(void)
{
  apply_defaults(&defaults);
}

static void copy_value(struct ccci_config *dst, const struct key *k)
{
  const void *src = cslot(&defaults, k);
  void *p = slot(dst, k);
  size_t i;

  switch (types[k->type].storage) {
  case S_STR:
    *(char **)p = ccci_xstrdup(*(char *const *)src);
    break;
  case S_U64:
    *(uint64_t *)p = *(const uint64_t *)src;
    break;
  case S_LIST: {
    const struct ccci_strlist *from = src;
    struct ccci_strlist *to = p;
    for (i = 0; i < from->n; i++)
      strlist_push(to, ccci_xstrdup(from->v[i]));
    break;
  }
  case S_MAP: {
    const struct ccci_strmap *from = src;
    struct ccci_strmap *to = p;
    to->keys = ccci_xcalloc(from->n, sizeof(char *));
    to->vals = ccci_xcalloc(from->n, sizeof(char *));
    for (i = 0; i < from->n; i++) {
      to->keys[i] = ccci_xstrdup(from->keys[i]);
      to->vals[i] = ccci_xstrdup(from->vals[i]);
    }
    to->n = from->n;
    break;
  }
  }
}

static struct ccci_config *config_new(const char *source, const char *base)
{
  struct ccci_config *cfg = ccci_xcalloc(1, sizeof(*cfg));
  size_t i;

  pthread_once(&defaults_once, defaults_init);
  cfg->refs = 1;
  cfg->source = ccci_xstrdup(source);
  cfg->base_dir = ccci_xstrdup(base);
  for (i = 0; i < NKEYS; i++)
    copy_value(cfg, &keys[i]);
  return cfg;
}

struct ccci_config *ccci_config_default(void)
{
  struct ccci_config *cfg = config_new("<embedded>", NULL);
  finish_defaults(cfg);
  return cfg;
}

static void yaml_error(struct parse *ps, const yaml_parser_t *parser)
{
  const yaml_mark_t *m = &parser->problem_mark;
  if (parser->error == YAML_MEMORY_ERROR) {
    add_error(ps, NULL, "invalid YAML: out of memory");
    return;
  }
  if (parser->context != NULL)
    add_error(ps, m, "invalid YAML: %s %s", parser->problem, parser->context);
  else
    add_error(ps, m, "invalid YAML: %s",
              parser->problem ? parser->problem : "cannot parse");
}

int ccci_config_parse(const char *name, const char *base_dir, const char *text,
                      size_t len, struct ccci_config **out, char **errors)
{
  yaml_parser_t parser;
  yaml_document_t doc, extra;
  struct parse ps;
  yaml_node_t *root;
  bool have_doc = false;

  *out = NULL;
  *errors = NULL;
  memset(&ps, 0, sizeof(ps));
  ps.name = name;
  ps.base_dir = base_dir;
  ps.doc = &doc;
  ps.cfg = config_new(name, base_dir);
  ccci_buf_init(&ps.errors, SIZE_MAX);

  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(
      &parser, (const unsigned char *)(text != NULL ? text : ""), len);
  if (len > CCCI_CONFIG_MAX_BYTES) {
    add_error(&ps, NULL, "file is larger than %d bytes", CCCI_CONFIG_MAX_BYTES);
    goto done;
  }
  if (!yaml_parser_load(&parser, &doc)) {
    yaml_error(&ps, &parser);
    goto done;
  }
  have_doc = true;
  root = yaml_document_get_root_node(&doc);
  /* An empty document leaves every key at its default. */
  if (root != NULL && !is_null(root) && root->type != YAML_MAPPING_NODE)
    add_error(&ps, &root->start_mark,
              "expected a mapping of keys at the top level, got %s",
              node_kind(root));
  else if (root != NULL && !is_null(root))
    parse_mapping(&ps, root, "");
  if (!yaml_parser_load(&parser, &extra)) {
    yaml_error(&ps, &parser);
  } else {
    root = yaml_document_get_root_node(&extra);
    if (root != NULL)
      add_error(&ps, &root->start_mark,
                "only one YAML document is allowed (remove '---')");
    yaml_document_delete(&extra);
  }

done:
  if (have_doc)
    yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (ps.nerrors != 0) {
    *errors = ccci_buf_detach(&ps.errors);
    ccci_config_unref(ps.cfg);
    return -EINVAL;
  }
  ccci_buf_close(&ps.errors);
  finish_defaults(ps.cfg);
  *out = ps.cfg;
  return 0;
}

int ccci_config_load_file(const char *path, struct ccci_config **out,
                          char **errors)
{
  char *text = NULL, *dir, *abs;
  size_t len = 0;
  int r;

  *out = NULL;
  *errors = NULL;
  r = ccci_read_file(path, CCCI_CONFIG_MAX_BYTES, &text, &len);
  if (r == -EFBIG) {
    *errors = ccci_xasprintf("%s: file is larger than %d bytes\n", path,
                             CCCI_CONFIG_MAX_BYTES);
    return -EINVAL;
  }
  if (r < 0) {
    *errors = ccci_xasprintf("%s: cannot read: %s\n", path, strerror(-r));
    return -EINVAL;
  }
  /* Relative paths in the file are relative to its directory, made
   * absolute so they mean the same wherever they are used. */
  dir = ccci_dirname(path);
  abs = realpath(dir, NULL);
  r = ccci_config_parse(path, abs != NULL ? abs : dir, text, len, out, errors);
  free(abs);
  free(dir);
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
  size_t i;
  if (cfg == NULL || --cfg->refs > 0)
    return;
  for (i = 0; i < NKEYS; i++)
    value_free(cfg, &keys[i]);
  free(cfg->source);
  free(cfg->base_dir);
  free(cfg);
}

/* ---- output ---- */

/* Characters a YAML double-quoted scalar must escape beyond ASCII: NEL,
 * LINE and PARAGRAPH SEPARATOR are line breaks there, and a BOM is dropped. */
static const struct {
  const char *utf8;
  const char *escape;
} yaml_escapes[] = {{"\xc2\x85", "\\N"},
                    {"\xe2\x80\xa8", "\\L"},
                    {"\xe2\x80\xa9", "\\P"},
                    {"\xef\xbb\xbf", "\\uFEFF"}};

static const char *yaml_escape(const char *s, size_t *len)
{
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(yaml_escapes); i++) {
    *len = strlen(yaml_escapes[i].utf8);
    if (strncmp(s, yaml_escapes[i].utf8, *len) == 0)
      return yaml_escapes[i].escape;
  }
  *len = 1;
  return NULL;
}

/* A YAML double-quoted scalar (its escapes are a superset of JSON's). */
static void quote(struct ccci_buf *b, const char *s)
{
  int r = ccci_buf_append(b, "\"", 1);
  while (*s != '\0' && r == 0) {
    unsigned char c = (unsigned char)*s;
    size_t step;
    const char *esc = yaml_escape(s, &step);
    if (esc != NULL)
      r = ccci_buf_printf(b, "%s", esc);
    else if (c == '"' || c == '\\')
      r = ccci_buf_printf(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      r = ccci_buf_printf(b, "\\x%02x", c);
    else
      r = ccci_buf_append(b, s, 1);
    s += step;
  }
  if (r == 0)
    r = ccci_buf_append(b, "\"", 1);
  (void)r; /* uncapped */
}

static void dump_value(struct ccci_buf *b, const struct ccci_config *cfg,
                       const struct key *k)
{
  const void *p = cslot(cfg, k);
  char num[32];
  size_t i;
  int r = 0;

  switch (types[k->type].storage) {
  case S_STR:
    if (*(char *const *)p == NULL)
      r = ccci_buf_printf(b, "null");
    else
      quote(b, *(char *const *)p);
    break;
  case S_U64:
    format_number(k, *(const uint64_t *)p, num);
    r = ccci_buf_printf(b, "%s", num);
    break;
  case S_LIST: {
    const struct ccci_strlist *l = p;
    r = ccci_buf_append(b, "[", 1);
    for (i = 0; i < l->n; i++) {
      if (i > 0)
        r = ccci_buf_append(b, ", ", 2);
      quote(b, l->v[i]);
    }
    if (r == 0)
      r = ccci_buf_append(b, "]", 1);
    break;
  }
  case S_MAP: {
    const struct ccci_strmap *m = p;
    r = ccci_buf_append(b, "{", 1);
    for (i = 0; i < m->n; i++) {
      if (i > 0)
        r = ccci_buf_append(b, ", ", 2);
      quote(b, m->keys[i]);
      r = ccci_buf_append(b, ": ", 2);
      quote(b, m->vals[i]);
    }
    if (r == 0)
      r = ccci_buf_append(b, "}", 1);
    break;
  }
  }
  (void)r; /* uncapped */
}

char *ccci_config_dump(const struct ccci_config *cfg)
{
  struct ccci_buf b;
  size_t i;
  int r = 0;
  char section[64] = "";

  ccci_buf_init(&b, SIZE_MAX);
  r = ccci_buf_printf(&b, "# effective configuration from %s\n", cfg->source);
  for (i = 0; i < NKEYS; i++) {
    const char *dot = strchr(keys[i].name, '.');
    const char *leaf = keys[i].name;
    if (dot != NULL) {
      size_t sl = (size_t)(dot - keys[i].name);
      if (strlen(section) != sl || strncmp(section, keys[i].name, sl) != 0) {
        snprintf(section, sizeof(section), "%.*s", (int)sl, keys[i].name);
        r = ccci_buf_printf(&b, "%s:\n", section);
      }
      leaf = dot + 1;
      r = ccci_buf_append(&b, "  ", 2);
    }
    r = ccci_buf_printf(&b, "%s: ", leaf);
    dump_value(&b, cfg, &keys[i]);
    r = ccci_buf_append(&b, "\n", 1);
  }
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}

static json_t *value_json(const struct ccci_config *cfg, const struct key *k)
{
  const void *p = cslot(cfg, k);
  char num[32];
  json_t *j;
  size_t i;

  switch (types[k->type].storage) {
  case S_STR:
    return *(char *const *)p ? json_string(*(char *const *)p) : json_null();
  case S_U64:
    if (k->type == T_INT)
      return json_integer((json_int_t) * (const uint64_t *)p);
    format_number(k, *(const uint64_t *)p, num);
    return json_string(num);
  case S_LIST: {
    const struct ccci_strlist *l = p;
    j = json_array();
    for (i = 0; i < l->n; i++)
      json_array_append_new(j, json_string(l->v[i]));
    return j;
  }
  case S_MAP: {
    const struct ccci_strmap *m = p;
    j = json_object();
    for (i = 0; i < m->n; i++)
      json_object_set_new(j, m->keys[i], json_string(m->vals[i]));
    return j;
  }
  }
  return json_null();
}

json_t *ccci_config_to_json(const struct ccci_config *cfg)
{
  json_t *root = json_object();
  size_t i;

  json_object_set_new(root, "source", json_string(cfg->source));
  for (i = 0; i < NKEYS; i++) {
    const char *dot = strchr(keys[i].name, '.');
    if (dot == NULL) {
      json_object_set_new(root, keys[i].name, value_json(cfg, &keys[i]));
    } else {
      char sec[64];
      json_t *s;
      snprintf(sec, sizeof(sec), "%.*s", (int)(dot - keys[i].name),
               keys[i].name);
      s = json_object_get(root, sec);
      if (s == NULL) {
        s = json_object();
        json_object_set_new(root, sec, s);
      }
      json_object_set_new(s, dot + 1, value_json(cfg, &keys[i]));
    }
  }
  return root;
}

size_t ccci_config_diff(const struct ccci_config *a,
                        const struct ccci_config *b,
                        void (*cb)(const char *key, enum ccci_reload reload,
                                   bool active, void *arg),
                        void *arg)
{
  size_t i, n = 0;
  for (i = 0; i < NKEYS; i++) {
    if (value_equal(a, b, &keys[i]))
      continue;
    n++;
    if (cb != NULL)
      cb(keys[i].name, keys[i].reload, keys[i].active, arg);
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
      "src/config.c; CI checks it is current. Do not edit by hand. -->\n\n"
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
      "*Used* says whether this version acts on the key yet; a key not yet "
      "used is accepted and checked, and `ccci serve` warns when one is set "
      "to something other than its default.\n\n"
      "| key | type | default | range | reload | used | meaning |\n"
      "|---|---|---|---|---|---|---|\n");
  for (i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    char range[80] = "";
    if (types[k->type].storage == S_U64) {
      char lo[32], hi[32];
      format_number(k, k->min, lo);
      format_number(k, k->max, hi);
      snprintf(range, sizeof(range), "%s to %s", lo, hi);
    }
    if (k->def_doc != NULL)
      r = ccci_buf_printf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n",
                          k->name, types[k->type].doc_name, k->def_doc, range,
                          reload_doc(k->reload), k->active ? "yes" : "not yet",
                          k->doc);
    else
      r = ccci_buf_printf(&b, "| `%s` | %s | `%s` | %s | %s | %s | %s |\n",
                          k->name, types[k->type].doc_name, k->def, range,
                          reload_doc(k->reload), k->active ? "yes" : "not yet",
                          k->doc);
  }
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}
