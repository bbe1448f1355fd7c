/* `ccci harness`: checkout, the tiers over one base deployment, teardown,
 * results.json. Sequential: every command goes through ccci_hcall_run. */
#include "ccci/harness/harness.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccci/core/config.h"
#include "ccci/core/util.h"
#include "ccci/harness/abratext.h"
#include "ccci/harness/hcall.h"
#include "ccci/harness/hooks.h"
#include "ccci/harness/shot.h"
#include "ccci/harness/testlib.h"
#include "ccci/harness/meta.h"
#include "ccci/runs/levels.h"
#include "ccci/runs/recipe.h"

/* Timeouts of the calls that have no recipe_meta.yml key. */
#define CALL_TIMEOUT_MS (5u * 60u * 1000u)
#define GIT_TIMEOUT_MS (10u * 60u * 1000u)
#define HEALTH_REQUEST_TIMEOUT_MS 10000L
#define READY_POLL_MS 1000
/* The cold dependencies a run may have. */
#define MAX_APPS 17
#define STATE_FILE_MAX 4096

/* The abra command templates: config keys harness.abra.<name>. */
#define TMPL(n)                                                                \
  {                                                                            \
#n, offsetof(struct ccci_config, harness.abra.n)                           \
  }
static const struct {
  const char *name;
  size_t off;
} templates[] = {
    TMPL(new),      TMPL(secret_generate), TMPL(secret_insert), TMPL(deploy),
    TMPL(undeploy), TMPL(volume_remove),   TMPL(secret_remove), TMPL(remove),
    TMPL(backup),   TMPL(snapshots),       TMPL(restore),       TMPL(run),
    TMPL(services), TMPL(labels),          TMPL(volumes),       TMPL(secrets),
    TMPL(probe),
};
#undef TMPL

struct app {
  char *recipe;
  char *domain;
  char *stack;
  char *envfile;
  struct ccci_strmap env; /* extra env values (a dependency's `env`) */
  bool created;           /* `app new` was called */
  bool deployed;          /* a deploy was called */
  bool head;              /* the PR head is what it runs (base only) */
};

/* What the harness is doing: a connection error stops the tiers, ends a
 * teardown early, or is the probe's answer. */
enum phase {
  PHASE_RUN,
  PHASE_TEARDOWN,
  PHASE_PROBE,
};

struct tier {
  enum ccci_tier_status st;
  char *reason;
  time_t started;
  double duration_s;
  bool data_checked;
};

struct h {
  /* the run */
  char *run_id, *recipe, *recipe_dir, *ref, *sha, *pr, *repo, *clone_url;
  char *token_file, *abra_real, *overlays, *gateway;
  bool gateway_insecure, quick, keep, standalone, teardown_only, server_flag;
  bool probe;
  int run_flags; /* flags given other than --server (--probe takes none) */
  int upto;      /* --tier: the last tier that runs; -1 all */
  char *results, *deploys_f, *opstate_f, *deps_f, *depskip_f;
  char *run_dir, *abra_dir, *checkout, *snapshot, *askpass;
  char *snap_dir, *overlay_snap, *lib_dir, *artifacts;
  char *server;
  /* state/server (docs/harness-contract.md): the calls that reached the
   * server, the connection errors in a row at the end and the
   * harness.connection_errors entry of the last one */
  char *server_f;
  unsigned long reached, conn_errors;
  char *conn_pattern;
  bool conn_error_last; /* the last server call was a connection error */
  char *sticky;         /* `unreachable` line: the run's first one's pattern */
  char *unreachable;    /* `server S unreachable: P`, after the first */
  enum phase phase;
  uint64_t teardown_grace_ms;
  struct ccci_config *cfg;
  /* the recipe */
  struct ccci_meta meta;
  bool meta_loaded;
  /* the hook files in use (docs/hooks.md): a path in the snapshot, or NULL */
  char *hook[CCCI_HOOK_COUNT];
  char *install_steps_why; /* install_steps.sh failed: why */
  char *shot;              /* the install tier's screenshot, run-dir relative */
  char *base_version, *head_tag;
  /* the apps: [0] the base, then the cold dependencies */
  struct app apps[MAX_APPS];
  size_t napps;
  unsigned deploys;
  /* the outcome */
  struct tier t[CCCI_TIER_COUNT];
  char *error;
  bool noexec;
  bool teardown_clean, secrets_clean, torn_down;
  time_t started;
  uint64_t t0;
  unsigned marker_seq;
};

static char *envdup(const char *name)
{
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? ccci_xstrdup(v) : NULL;
}

static const char *nz(const char *s)
{
  return s != NULL ? s : "";
}

static const struct ccci_config *the_cfg;

/* The template @p name of the config (a view, not a copy). */
static struct ccci_strlist tmpl(const char *name)
{
  struct ccci_strlist l = {NULL, 0};
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(templates); i++)
    if (strcmp(templates[i].name, name) == 0)
      l = *(const struct ccci_strlist *)(const void *)((const char *)the_cfg +
                                                       templates[i].off);
  return l;
}

/* ---- state files ---- */

static void state_write(const char *path, const char *text)
{
  int r;
  if (path == NULL)
    return;
  r = ccci_write_file_atomic(path, text, strlen(text), 0640);
  if (r < 0)
    ccci_hcall_printf("ccci harness: cannot write %s: %s\n", path,
                      strerror(-r));
}

static void write_opstate(struct h *h, bool deployed)
{
  char *s = ccci_xasprintf("%s\ndomain %s\nserver %s\n",
                           deployed ? "deployed" : "clean",
                           nz(h->apps[0].domain), nz(h->server));
  state_write(h->opstate_f, s);
  free(s);
}

static void write_deps(struct h *h)
{
  struct ccci_buf b;
  size_t i;
  ccci_buf_init(&b, STATE_FILE_MAX * 4);
  for (i = 1; i < h->napps; i++)
    if (h->apps[i].created &&
        ccci_buf_printf(&b, "%s cold\n", h->apps[i].domain) < 0)
      break;
  state_write(h->deps_f, b.data != NULL ? b.data : "");
  ccci_buf_close(&b);
}

static void write_deploys(struct h *h)
{
  char s[32];
  snprintf(s, sizeof(s), "%u\n", h->deploys);
  state_write(h->deploys_f, s);
}

/* @p s on one line of a state file: control bytes become '?'. */
static char *one_line(const char *s)
{
  char *c = ccci_xstrdup(s), *p;
  for (p = c; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  return c;
}

/* state/server: only counts, the server's name and the configured text
 * that matched, never a call's output (no secret can reach the file). */
static void write_server(struct h *h)
{
  char *name = one_line(nz(h->server)), *pat = NULL, *st = NULL, *s;
  if (h->conn_errors > 0 && h->conn_pattern != NULL)
    pat = one_line(h->conn_pattern);
  if (h->sticky != NULL)
    st = one_line(h->sticky);
  s = ccci_xasprintf(
      "server %s\nreached %lu\nconnection_errors %lu\n%s%s%s%s%s%s", name,
      h->reached, h->conn_errors, pat != NULL ? "error " : "", nz(pat),
      pat != NULL ? "\n" : "", st != NULL ? "unreachable " : "", nz(st),
      st != NULL ? "\n" : "");
  state_write(h->server_f, s);
  free(s);
  free(st);
  free(pat);
  free(name);
}

/* Read state/server back (`--teardown` after the run): its counts go on
 * when it names the same server. */
static void read_server(struct h *h)
{
  char *text = NULL, *line, *save = NULL;
  size_t len;
  bool same = false;
  if (h->server_f == NULL ||
      ccci_read_file(h->server_f, STATE_FILE_MAX, &text, &len) < 0)
    return;
  for (line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    uint64_t n = 0;
    if (strncmp(line, "server ", 7) == 0)
      same = strcmp(line + 7, nz(h->server)) == 0;
    else if (same && strncmp(line, "reached ", 8) == 0 &&
             ccci_parse_u64(line + 8, &n) == 0)
      h->reached = (unsigned long)n;
    else if (same && strncmp(line, "connection_errors ", 18) == 0 &&
             ccci_parse_u64(line + 18, &n) == 0)
      h->conn_errors = (unsigned long)n;
    else if (same && strncmp(line, "error ", 6) == 0) {
      free(h->conn_pattern);
      h->conn_pattern = ccci_xstrdup(line + 6);
    } else if (same && strncmp(line, "unreachable ", 12) == 0) {
      free(h->sticky);
      h->sticky = ccci_xstrdup(line + 12);
    }
  }
  free(text);
}

/* Set once the server could not be reached during the run: no new call of
 * the tiers starts, the tiers end `error` (static like the stop signal,
 * which interrupted() reads the same way). */
static bool stop_unreachable;

/* Count call @p res to the server: exit 0 reached it; a failure whose
 * output holds one of harness.connection_errors is a connection error;
 * another failure breaks the row (something answered). A call that could
 * not be executed says nothing about the server. */
static void server_note(struct h *h, const struct ccci_hcall_result *res)
{
  if (res->end == CCCI_HCALL_NOEXEC)
    return;
  h->conn_error_last = false;
  if (ccci_hcall_ok(res)) {
    h->reached++;
    h->conn_errors = 0;
  } else if (res->matched != NULL) {
    h->conn_errors++;
    h->conn_error_last = true;
    free(h->conn_pattern);
    h->conn_pattern = ccci_xstrdup(res->matched);
    /* The run's first: sticky (`unreachable`), whatever comes after; a
     * later `--teardown` keeps the line but never starts it. */
    if (h->sticky == NULL && !h->teardown_only)
      h->sticky = ccci_xstrdup(res->matched);
    if (h->unreachable == NULL) {
      h->unreachable = ccci_xasprintf("server %s unreachable: %s",
                                      nz(h->server), res->matched);
      if (h->phase == PHASE_RUN) {
        stop_unreachable = true;
        ccci_hcall_printf("%s: the tiers stop here (teardown is still "
                          "tried)\n",
                          h->unreachable);
      }
    }
  } else if (res->end == CCCI_HCALL_EXITED) {
    h->conn_errors = 0;
  }
  write_server(h);
}

/* abra calls that only read and write the local env files (`app new`
 * --offline, `app remove`): they never contact the server. */
static bool contacts_server(const char *name)
{
  return strcmp(name, "new") != 0 && strcmp(name, "remove") != 0;
}

/* ---- running things ---- */

/* Run template @p name for @p a with @p extra vars (@p quiet: not
 * logged); the caller frees @p res. A call that contacts the server is
 * matched against harness.connection_errors and counted in state/server.
 * Returns 0 when it ran. */
static int call_q(struct h *h, const char *name, const struct app *a,
                  const struct ccci_abratext_vars *extra, uint64_t timeout_ms,
                  bool capture, bool withhold, bool ignore_stop, bool quiet,
                  struct ccci_hcall_result *res)
{
  struct ccci_strlist t = tmpl(name);
  struct ccci_abratext_vars v;
  struct ccci_hcall c;
  char **argv = NULL;
  int r;

  memset(&v, 0, sizeof(v));
  if (extra != NULL)
    v = *extra;
  v.domain = a->domain;
  v.server = h->server;
  v.recipe = a->recipe;
  v.stack = a->stack;
  r = ccci_abratext_expand(&t, &v, &argv);
  if (r < 0) {
    memset(res, 0, sizeof(*res));
    res->end = CCCI_HCALL_NOEXEC;
    res->status = EINVAL;
    return 0;
  }
  memset(&c, 0, sizeof(c));
  c.argv = argv;
  c.timeout_ms = timeout_ms;
  c.capture = capture;
  c.withhold = withhold;
  c.ignore_stop = ignore_stop;
  c.quiet = quiet;
  if (contacts_server(name))
    c.match = &h->cfg->harness.connection_errors;
  r = ccci_hcall_run(&c, res);
  ccci_abratext_argv_free(argv);
  if (r == 0 && res->end == CCCI_HCALL_NOEXEC)
    h->noexec = true;
  if (r == 0 && c.match != NULL)
    server_note(h, res);
  return r;
}

static int call(struct h *h, const char *name, const struct app *a,
                const struct ccci_abratext_vars *extra, uint64_t timeout_ms,
                bool capture, bool withhold, bool ignore_stop,
                struct ccci_hcall_result *res)
{
  return call_q(h, name, a, extra, timeout_ms, capture, withhold, ignore_stop,
                false, res);
}

/* Run argv (git, cp, the tests) with optional @p cwd and extra @p env. */
static int run_argv(struct h *h, char *const *argv, const char *cwd,
                    char *const *env, uint64_t timeout_ms, bool capture,
                    bool quiet, struct ccci_hcall_result *res)
{
  struct ccci_hcall c;
  int r;
  memset(&c, 0, sizeof(c));
  c.argv = argv;
  c.cwd = cwd;
  c.env = env;
  c.timeout_ms = timeout_ms;
  c.capture = capture;
  c.quiet = quiet;
  r = ccci_hcall_run(&c, res);
  if (r == 0 && res->end == CCCI_HCALL_NOEXEC)
    h->noexec = true;
  return r;
}

/* git -C <checkout> ARGS..., output captured when @p out is not NULL. A
 * failure sets @p why. */
static bool git(struct h *h, const char *dir, char **out, char **why,
                const char *a0, ...)
{
  const char *argv[24];
  struct ccci_hcall_result res;
  va_list ap;
  size_t n = 0;
  const char *a;
  bool ok;

  argv[n++] = "git";
  if (dir != NULL) {
    argv[n++] = "-C";
    argv[n++] = dir;
  }
  va_start(ap, a0);
  for (a = a0; a != NULL && n < CCCI_ARRAY_LEN(argv) - 1;
       a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  if (run_argv(h, (char *const *)(uintptr_t)argv, NULL, NULL, GIT_TIMEOUT_MS,
               out != NULL, out != NULL, &res) < 0) {
    *why = ccci_xstrdup("cannot start git");
    return false;
  }
  ok = ccci_hcall_ok(&res);
  if (!ok && why != NULL)
    *why = ccci_hcall_why(&res, "git");
  if (out != NULL) {
    size_t l;
    *out = ok ? ccci_xstrdup(res.out) : NULL;
    if (*out != NULL) {
      l = strlen(*out);
      while (l > 0 && ((*out)[l - 1] == '\n' || (*out)[l - 1] == '\r'))
        (*out)[--l] = '\0';
    }
  }
  ccci_hcall_result_free(&res);
  return ok;
}

/* Sleep @p ms unless a stop signal or the deadline comes first. */
static void nap(int ms)
{
  uint64_t end = ccci_now_ms() + (uint64_t)ms;
  while (ccci_hcall_stopped() == 0 && !ccci_hcall_deadline_passed() &&
         !stop_unreachable) {
    uint64_t now = ccci_now_ms();
    if (now >= end)
      return;
    poll(NULL, 0, (int)(end - now < 100 ? end - now : 100));
  }
}

static bool interrupted(void)
{
  return ccci_hcall_stopped() != 0 || ccci_hcall_deadline_passed() ||
         stop_unreachable;
}

/* ---- tiers bookkeeping ---- */

static void tier_begin(struct h *h, enum ccci_tier t)
{
  h->t[t].started = time(NULL);
  h->t[t].duration_s = (double)ccci_now_ms();
  ccci_hcall_printf("~~~ step %s\n", ccci_tier_name(t));
}

/* End tier @p t with @p st and @p reason (taken); an unreachable server
 * makes it an error naming the server; a stop or the deadline turns a
 * failure into cancelled or timeout. */
static void tier_end(struct h *h, enum ccci_tier t, enum ccci_tier_status st,
                     char *reason)
{
  if (stop_unreachable && h->unreachable != NULL) {
    st = CCCI_TS_ERROR;
    free(reason);
    reason = ccci_xstrdup(h->unreachable);
  } else if (st != CCCI_TS_PASS && st != CCCI_TS_SKIP) {
    if (ccci_hcall_stopped() != 0)
      st = CCCI_TS_CANCELLED;
    else if (ccci_hcall_deadline_passed())
      st = CCCI_TS_TIMEOUT;
  }
  h->t[t].st = st;
  free(h->t[t].reason);
  h->t[t].reason = reason;
  h->t[t].duration_s = ((double)ccci_now_ms() - h->t[t].duration_s) / 1000.0;
  ccci_hcall_printf("%s: %s%s%s\n", ccci_tier_name(t),
                    ccci_tier_status_name(st), reason != NULL ? ": " : "",
                    nz(reason));
}

static void tier_skip(struct h *h, enum ccci_tier t, const char *reason)
{
  tier_begin(h, t);
  tier_end(h, t, CCCI_TS_SKIP, ccci_xstrdup(reason));
}

static bool tier_passed(const struct h *h, enum ccci_tier t)
{
  return h->t[t].st == CCCI_TS_PASS;
}

/* Whether tier @p t runs (QUICK_TIERS, --tier); a reason when not. */
static const char *tier_unselected(const struct h *h, enum ccci_tier t)
{
  const char *name = ccci_tier_name(t);
  if (t == CCCI_TIER_DEPLOY)
    return NULL;
  if (h->meta_loaded && ccci_strlist_has(&h->meta.skip_tiers, name))
    return "SKIP_TIERS names it";
  if (h->upto >= 0 && (int)t > h->upto)
    return "not selected (--tier: the run stops after an earlier tier)";
  return NULL;
}

/* ---- the app env file ---- */

/* Set KEY=value in the env file text: replace a `KEY=` or `#KEY=` line,
 * else append. */
static char *env_set(const char *text, const char *key, const char *val)
{
  struct ccci_buf b;
  const char *p = text;
  size_t kl = strlen(key);
  bool done = false;
  ccci_buf_init(&b, 4 * 1024 * 1024);
  while (*p != '\0') {
    size_t ll = strcspn(p, "\n");
    const char *q = p;
    while (*q == '#' || *q == ' ')
      q++;
    if (!done && (size_t)(p + ll - q) > kl && memcmp(q, key, kl) == 0 &&
        q[kl] == '=') {
      if (ccci_buf_printf(&b, "%s=%s\n", key, val) < 0)
        break;
      done = true;
    } else if (ccci_buf_append(&b, p, ll) < 0 ||
               ccci_buf_append(&b, "\n", 1) < 0) {
      break;
    }
    p += ll;
    if (*p == '\n')
      p++;
  }
  if (!done && ccci_buf_printf(&b, "%s=%s\n", key, val) < 0) {
    /* past 4 MiB: the env file is not an env file */
  }
  return ccci_buf_detach(&b);
}

/* The value of an uncommented `KEY=value` line of @p text, its quotes
 * taken off; NULL when there is none. A new string. */
static char *env_get(const char *text, const char *key)
{
  const char *p = text;
  size_t kl = strlen(key);
  while (*p != '\0') {
    size_t ll = strcspn(p, "\n");
    if (ll > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
      const char *v = p + kl + 1;
      size_t vl = ll - kl - 1;
      while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\r'))
        vl--;
      if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
        v++;
        vl -= 2;
      }
      return ccci_xstrndup(v, vl);
    }
    p += ll;
    if (*p == '\n')
      p++;
  }
  return NULL;
}

/* The version (`v1`) of SECRET_<NAME>_VERSION in @p text, or NULL. Also
 * rewrites its comment for @p s's length/generate into *text. */
static char *env_secret(char **text, const struct ccci_meta_secret *s)
{
  char *key = ccci_xasprintf("SECRET_%s_VERSION", s->name), *k, *ver = NULL;
  const char *p = *text;
  struct ccci_buf b;
  for (k = key; *k != '\0'; k++)
    *k = (char)(*k >= 'a' && *k <= 'z' ? *k - 'a' + 'A' : *k == '-' ? '_' : *k);
  ccci_buf_init(&b, 4 * 1024 * 1024);
  while (*p != '\0') {
    size_t ll = strcspn(p, "\n"), kl = strlen(key);
    if (ll > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
      const char *v = p + kl + 1;
      size_t vl = strcspn(v, " \t#\n");
      free(ver);
      ver = ccci_xstrndup(v, vl);
      if (ccci_buf_printf(&b, "%s=%s", key, ver) < 0)
        break;
      if (s->value_file != NULL || !s->generate) {
        if (ccci_buf_printf(&b, " # generate=false") < 0)
          break;
      } else if (s->length > 0 &&
                 ccci_buf_printf(&b, " # length=%llu",
                                 (unsigned long long)s->length) < 0) {
        break;
      }
      if (ccci_buf_append(&b, "\n", 1) < 0)
        break;
    } else if (ccci_buf_append(&b, p, ll) < 0 ||
               ccci_buf_append(&b, "\n", 1) < 0) {
      break;
    }
    p += ll;
    if (*p == '\n')
      p++;
  }
  free(*text);
  *text = ccci_buf_detach(&b);
  free(key);
  return ver;
}

/* Write ENV, COMPOSE_FILES, TIMEOUT and SECRETS into @p a's env file, and
 * insert the SECRETS with a value_file. */
static bool configure_app(struct h *h, struct app *a, char **why)
{
  char *text = NULL, *t;
  size_t len, i;
  int r = ccci_read_file(a->envfile, 4 * 1024 * 1024, &text, &len);
  char secs[32];

  if (r < 0) {
    *why = ccci_xasprintf("cannot read the app env file %s: %s", a->envfile,
                          strerror(-r));
    return false;
  }
  for (i = 0; i < a->env.n; i++) {
    t = env_set(text, a->env.keys[i], a->env.vals[i]);
    free(text);
    text = t;
  }
  if (a == &h->apps[0]) {
    for (i = 0; i < h->meta.env.n; i++) {
      t = env_set(text, h->meta.env.keys[i], h->meta.env.vals[i]);
      free(text);
      text = t;
    }
    if (h->meta.compose_files.n > 0 || h->hook[CCCI_HOOK_COMPOSE] != NULL) {
      struct ccci_buf b;
      ccci_buf_init(&b, 64 * 1024);
      for (i = 0; i < h->meta.compose_files.n; i++)
        if (ccci_buf_printf(&b, "%s%s", i > 0 ? ":" : "",
                            h->meta.compose_files.v[i]) < 0)
          break;
      if (h->meta.compose_files.n == 0) {
        /* The app env's own list (from .env.sample), else abra's default. */
        char *cur = env_get(text, "COMPOSE_FILE");
        if (ccci_buf_printf(&b, "%s",
                            cur != NULL && *cur != '\0' ? cur : "compose.yml") <
            0) {
          /* 64 KiB of compose file names: cut */
        }
        free(cur);
      }
      if (h->hook[CCCI_HOOK_COMPOSE] != NULL &&
          ccci_buf_printf(&b, ":%s", ccci_hook_info(CCCI_HOOK_COMPOSE)->file) <
              0) {
        /* as above */
      }
      ccci_hcall_printf("COMPOSE_FILE=%s\n", b.data != NULL ? b.data : "");
      t = env_set(text, "COMPOSE_FILE", b.data != NULL ? b.data : "");
      ccci_buf_close(&b);
      free(text);
      text = t;
    }
    for (i = 0; i < h->meta.nsecrets; i++) {
      char *v = env_secret(&text, &h->meta.secrets[i]);
      free(v);
    }
  }
  snprintf(secs, sizeof(secs), "%llu",
           (unsigned long long)(h->meta.deploy_timeout_ms / 1000));
  t = env_set(text, "TIMEOUT", secs);
  free(text);
  text = t;
  r = ccci_write_file_atomic(a->envfile, text, strlen(text), 0640);
  if (r < 0) {
    *why = ccci_xasprintf("cannot write the app env file %s: %s", a->envfile,
                          strerror(-r));
    free(text);
    return false;
  }
  ccci_hcall_printf(
      "wrote %zu ENV value%s%s and TIMEOUT=%s into %s\n",
      a->env.n + (a == &h->apps[0] ? h->meta.env.n : 0),
      a->env.n + (a == &h->apps[0] ? h->meta.env.n : 0) == 1 ? "" : "s",
      a == &h->apps[0] && (h->meta.compose_files.n > 0 ||
                           h->hook[CCCI_HOOK_COMPOSE] != NULL)
          ? ", COMPOSE_FILE"
          : "",
      secs, a->envfile);
  for (i = 0; a == &h->apps[0] && i < h->meta.nsecrets; i++) {
    const struct ccci_meta_secret *s = &h->meta.secrets[i];
    struct ccci_abratext_vars v;
    struct ccci_hcall_result res;
    char *val = NULL, *ver, *lname, *k;
    size_t vl;
    if (s->value_file == NULL)
      continue;
    /* The recipe's own file is PR code: it may not make the harness read
     * a file of its choosing into the app (a token, another run's files). */
    if (h->meta.origin[CCCI_META_SECRETS].source != CCCI_META_FROM_OPERATOR) {
      *why = ccci_xasprintf(
          "SECRETS.%s.value_file: only the operator's overlay "
          "(<harness.overlays_dir>/%s/recipe_meta.yml) may name a value "
          "file; the recipe's tests/recipe_meta.yml is PR code",
          s->name, h->recipe);
      free(text);
      return false;
    }
    r = ccci_read_file(s->value_file, 64 * 1024, &val, &vl);
    if (r < 0) {
      *why = ccci_xasprintf("SECRETS.%s.value_file %s: %s", s->name,
                            s->value_file, strerror(-r));
      free(text);
      return false;
    }
    while (vl > 0 && (val[vl - 1] == '\n' || val[vl - 1] == '\r'))
      vl--;
    if (ccci_hcall_add_secret(val, vl) < 0) {
      ccci_wipe_free_str(val);
      *why = ccci_xstrdup("cannot add a secret to the redactor");
      free(text);
      return false;
    }
    ccci_wipe_free_str(val);
    ver = env_secret(&text, s);
    lname = ccci_xstrdup(s->name);
    for (k = lname; *k != '\0'; k++)
      *k = (char)(*k >= 'A' && *k <= 'Z' ? *k - 'A' + 'a' : *k);
    memset(&v, 0, sizeof(v));
    v.secret = lname;
    v.version = ver != NULL ? ver : "v1";
    v.file = s->value_file;
    r = call(h, "secret_insert", a, &v, CALL_TIMEOUT_MS, false, false, false,
             &res);
    free(lname);
    free(ver);
    if (r < 0 || !ccci_hcall_ok(&res)) {
      *why = r < 0 ? ccci_xstrdup("cannot start abra")
                   : ccci_hcall_why(&res, "abra app secret insert");
      ccci_hcall_result_free(&res);
      free(text);
      return false;
    }
    ccci_hcall_result_free(&res);
  }
  free(text);
  return true;
}

/* ---- readiness ---- */

static int health_progress(void *p, curl_off_t a, curl_off_t b, curl_off_t c,
                           curl_off_t d)
{
  (void)p;
  (void)a;
  (void)b;
  (void)c;
  (void)d;
  return interrupted() ? 1 : 0;
}

static size_t health_sink(char *p, size_t s, size_t n, void *arg)
{
  (void)p;
  (void)arg;
  return s * n;
}

static bool gateway_plain(const struct h *h)
{
  return h->gateway != NULL && strncmp(h->gateway, "http://", 7) == 0;
}

/* https://<domain> (http:// with a plain-HTTP gateway). A new string. */
static char *app_url(const struct h *h, const struct app *a)
{
  return ccci_xasprintf("%s://%s", gateway_plain(h) ? "http" : "https",
                        a->domain);
}

/* GET HEALTH_PATH of @p a: the status, or -1 with @p why. */
static long health_get(struct h *h, const struct app *a, char **why)
{
  CURL *c = curl_easy_init();
  struct curl_slist *to = NULL;
  char *base = app_url(h, a), *url, err[CURL_ERROR_SIZE] = "";
  const char *path = h->meta.health_path != NULL ? h->meta.health_path : "/";
  long status = -1;
  CURLcode rc;

  url = ccci_xasprintf("%s%s%s", base, path[0] == '/' ? "" : "/", path);
  if (c == NULL) {
    *why = ccci_xstrdup("cannot start libcurl");
    goto out;
  }
  if (h->gateway != NULL) {
    const char *hp = gateway_plain(h) ? h->gateway + 7 : h->gateway;
    char *ct = ccci_xasprintf("::%s", hp);
    size_t l = strlen(ct);
    if (l > 0 && ct[l - 1] == '/')
      ct[l - 1] = '\0';
    to = curl_slist_append(NULL, ct);
    free(ct);
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, to);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HEALTH_REQUEST_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, health_sink);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, health_progress);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (h->gateway_insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    *why = ccci_xasprintf("GET %s: %s", url,
                          err[0] != '\0' ? err : curl_easy_strerror(rc));
    goto out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
  if (c != NULL)
    curl_easy_cleanup(c);
  curl_slist_free_all(to);
  free(url);
  free(base);
  return status;
}

/* Wait for @p a: services N/N, then HEALTH_PATH accepted, within
 * HEALTH_TIMEOUT. Returns true when ready; else @p why. */
static bool ready(struct h *h, struct app *a, bool http, char **why)
{
  uint64_t end = ccci_now_ms() + h->meta.health_timeout_ms;
  char *last = NULL;
  bool services_ok = false;
  unsigned tries = 0;

  ccci_hcall_printf("waiting for %s: services running%s (up to %llu s)\n",
                    a->domain, http ? ", then HEALTH_PATH answering" : "",
                    (unsigned long long)(h->meta.health_timeout_ms / 1000));
  for (;;) {
    struct ccci_hcall_result res;
    char *w = NULL;
    if (!services_ok) {
      /* Log the first and every tenth poll: the rest would drown the log. */
      bool quiet = tries % 10 != 0;
      if (call_q(h, "services", a, NULL, CALL_TIMEOUT_MS, true, false, false,
                 quiet, &res) < 0) {
        *why = ccci_xstrdup("cannot start docker");
        free(last);
        return false;
      }
      if (res.end == CCCI_HCALL_NOEXEC) {
        *why = ccci_hcall_why(&res, "docker");
        ccci_hcall_result_free(&res);
        free(last);
        return false;
      }
      if (!ccci_hcall_ok(&res)) {
        w = ccci_hcall_why(&res, "docker service ls");
      } else if (ccci_abratext_services_ready(
                     res.out, a->stack,
                     a == &h->apps[0] ? &h->meta.services : NULL, &w) == 1) {
        services_ok = true;
        ccci_hcall_printf("services of %s: all running\n", a->stack);
      }
      ccci_hcall_result_free(&res);
    }
    if (services_ok && !http) {
      free(last);
      return true;
    }
    if (services_ok) {
      long st = health_get(h, a, &w);
      if (st >= 0 && ccci_meta_status_ok(&h->meta, st)) {
        ccci_hcall_printf("GET %s%s: %ld\n", a->domain, nz(h->meta.health_path),
                          st);
        free(last);
        return true;
      }
      if (st >= 0)
        w = ccci_xasprintf("GET %s%s answered %ld", a->domain,
                           nz(h->meta.health_path), st);
    }
    if (w != NULL) {
      free(last);
      last = w;
    }
    tries++;
    if (interrupted() || ccci_now_ms() >= end) {
      *why =
          ccci_xasprintf("not ready within HEALTH_TIMEOUT (%llu s): %s",
                         (unsigned long long)(h->meta.health_timeout_ms / 1000),
                         last != NULL ? last : "no answer");
      free(last);
      return false;
    }
    nap(READY_POLL_MS);
  }
}

/* ---- one app: new, secrets, deploy ---- */

static bool deploy_call(struct h *h, struct app *a, char **why)
{
  struct ccci_hcall_result res;
  bool first = !a->deployed;
  int r;
  if (first) {
    /* Counted before it runs: a crash mid-deploy still counts. */
    h->deploys++;
    write_deploys(h);
  }
  a->deployed = true;
  r = call(h, "deploy", a, NULL, h->meta.deploy_timeout_ms, false, false, false,
           &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    if (r == 0 && res.end == CCCI_HCALL_TIMEOUT)
      *why = ccci_xasprintf(
          "abra app deploy timed out after DEPLOY_TIMEOUT (%llu s)",
          (unsigned long long)(h->meta.deploy_timeout_ms / 1000));
    else
      *why = r < 0 ? ccci_xstrdup("cannot start abra")
                   : ccci_hcall_why(&res, "abra app deploy");
    ccci_hcall_result_free(&res);
    return false;
  }
  ccci_hcall_result_free(&res);
  return true;
}

static bool new_app(struct h *h, struct app *a, bool http, char **why)
{
  struct ccci_hcall_result res;
  struct ccci_strlist vals = {NULL, 0};
  int r, n;
  size_t i;

  a->created = true;
  write_deps(h);
  write_opstate(h, true);
  r = call(h, "new", a, NULL, CALL_TIMEOUT_MS, false, false, false, &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    *why = r < 0 ? ccci_xstrdup("cannot start abra")
                 : ccci_hcall_why(&res, "abra app new");
    ccci_hcall_result_free(&res);
    return false;
  }
  ccci_hcall_result_free(&res);
  if (!configure_app(h, a, why))
    return false;
  /* The generated values are printed by abra in a table: withheld from the
   * log, every value masked from now on. */
  r = call(h, "secret_generate", a, NULL, CALL_TIMEOUT_MS, true, true, false,
           &res);
  if (r < 0) {
    *why = ccci_xstrdup("cannot start abra");
    return false;
  }
  n = res.out != NULL ? ccci_abratext_secret_values(res.out, res.out_len, &vals)
                      : 0;
  for (i = 0; i < vals.n; i++) {
    if (ccci_hcall_add_secret(vals.v[i], strlen(vals.v[i])) < 0)
      n = -ENOMEM;
    explicit_bzero(vals.v[i], strlen(vals.v[i]));
  }
  ccci_strlist_clear(&vals);
  if (!ccci_hcall_ok(&res)) {
    *why = ccci_hcall_why(&res, "abra app secret generate");
    ccci_hcall_result_free(&res);
    return false;
  }
  ccci_hcall_result_free(&res);
  if (n < 0) {
    *why = ccci_xstrdup("cannot mask the generated secrets");
    return false;
  }
  ccci_hcall_printf("generated %d secret%s (values withheld)\n", n,
                    n == 1 ? "" : "s");
  if (!deploy_call(h, a, why))
    return false;
  return ready(h, a, http, why);
}

/* ---- the checkout ---- */

static bool is_git_repo(struct h *h, const char *dir)
{
  char *out = NULL, *why = NULL;
  char *gitdir = ccci_xasprintf("%s/.git", dir);
  struct stat st;
  bool ok = stat(gitdir, &st) == 0;
  free(gitdir);
  if (ok && git(h, dir, &out, &why, "rev-parse", "--verify", "HEAD", NULL)) {
    free(out);
    return true;
  }
  free(why);
  return false;
}

static bool checkout(struct h *h, char **why)
{
  char *recipes = ccci_xasprintf("%s/recipes", h->abra_dir);
  bool ok = false;
  int r = ccci_mkdir_p(recipes, 0750);

  if (r < 0) {
    *why = ccci_xasprintf("cannot create %s: %s", recipes, strerror(-r));
    goto out;
  }
  if (h->clone_url != NULL) {
    char *refspec;
    if (!git(h, NULL, NULL, why, "init", "-q", h->checkout, NULL))
      goto out;
    if (h->pr != NULL)
      refspec = ccci_xasprintf("+refs/pull/%s/head:refs/ccci/head", h->pr);
    else
      refspec = ccci_xasprintf("+%s:refs/ccci/head",
                               h->ref != NULL ? h->ref : "HEAD");
    ok = git(h, h->checkout, NULL, why, "fetch", "-q", "--tags", h->clone_url,
             refspec, NULL);
    free(refspec);
    if (!ok)
      goto out;
    ok = false;
    if (h->sha == NULL && !git(h, h->checkout, &h->sha, why, "rev-parse",
                               "refs/ccci/head^{commit}", NULL))
      goto out;
  } else if (is_git_repo(h, h->recipe_dir)) {
    if (!git(h, NULL, NULL, why, "clone", "-q", "--no-hardlinks", h->recipe_dir,
             h->checkout, NULL))
      goto out;
  } else {
    char *err = NULL;
    ccci_hcall_printf("%s is not a git repository: committing it into a fresh "
                      "one (no release tags)\n",
                      h->recipe_dir);
    r = ccci_recipe_copy(h->recipe_dir, h->checkout, &err);
    if (r < 0) {
      *why = ccci_xasprintf("cannot copy the recipe: %s",
                            err != NULL ? err : strerror(-r));
      free(err);
      goto out;
    }
    if (!git(h, h->checkout, NULL, why, "init", "-q", NULL) ||
        !git(h, h->checkout, NULL, why, "add", "-A", NULL) ||
        !git(h, h->checkout, NULL, why, "-c", "user.name=ccci", "-c",
             "user.email=ccci@localhost", "commit", "-q", "--no-verify", "-m",
             "ccci: the recipe as submitted", NULL))
      goto out;
  }
  if (h->sha == NULL) {
    const char *rev = h->ref != NULL && h->clone_url == NULL ? h->ref : "HEAD";
    char *spec = ccci_xasprintf("%s^{commit}", rev);
    ok = git(h, h->checkout, &h->sha, why, "rev-parse", "--verify", spec, NULL);
    free(spec);
    if (!ok)
      goto out;
    ok = false;
  }
  if (!git(h, h->checkout, NULL, why, "checkout", "-q", "-f", h->sha, NULL)) {
    char *w = *why;
    *why = ccci_xasprintf("checkout of %s failed: %s", h->sha, w);
    free(w);
    goto out;
  }
  ok = true;
out:
  free(recipes);
  return ok;
}

/* The release tags: the base (newest before the head) and the head's own. */
static void find_versions(struct h *h)
{
  char *out = NULL, *why = NULL;
  const char *tags[512];
  size_t n = 0;
  char *p, *save = NULL;
  const char *best;

  if (git(h, h->checkout, &out, &why, "tag", "--merged", h->sha,
          "--no-contains", h->sha, NULL)) {
    for (p = strtok_r(out, "\n", &save); p != NULL && n < 512;
         p = strtok_r(NULL, "\n", &save))
      tags[n++] = p;
    best = ccci_abratext_newest_release(tags, n);
    if (best != NULL && h->base_version == NULL)
      h->base_version = ccci_xstrdup(best);
  }
  free(out);
  free(why);
  out = NULL;
  why = NULL;
  n = 0;
  if (git(h, h->checkout, &out, &why, "tag", "--points-at", h->sha, NULL)) {
    for (p = strtok_r(out, "\n", &save); p != NULL && n < 512;
         p = strtok_r(NULL, "\n", &save))
      tags[n++] = p;
    best = ccci_abratext_newest_release(tags, n);
    if (best != NULL)
      h->head_tag = ccci_xstrdup(best);
  }
  free(out);
  free(why);
}

/* ---- data checks ---- */

static bool have_data_check(const struct h *h)
{
  return h->meta.data_check_service != NULL &&
         h->meta.data_check_write != NULL && h->meta.data_check_read != NULL;
}

static char *subst_marker(const char *cmd, const char *marker)
{
  struct ccci_buf b;
  const char *p = cmd, *q;
  ccci_buf_init(&b, 64 * 1024);
  while ((q = strstr(p, "{marker}")) != NULL) {
    if (ccci_buf_append(&b, p, (size_t)(q - p)) < 0 ||
        ccci_buf_append(&b, marker, strlen(marker)) < 0)
      break;
    p = q + strlen("{marker}");
  }
  if (ccci_buf_append(&b, p, strlen(p)) < 0) {
    /* a 64 KiB DATA_CHECK command is cut */
  }
  return ccci_buf_detach(&b);
}

static char *new_marker(struct h *h, const char *what)
{
  return ccci_xasprintf("ccci-%s-%s-%u-%ld",
                        h->run_id != NULL ? h->run_id : "local", what,
                        ++h->marker_seq, (long)time(NULL));
}

/* Run DATA_CHECK write (@p write) or read with @p marker; a read returns
 * whether the output holds @p marker. */
static bool data_cmd(struct h *h, bool write, const char *marker, bool *seen,
                     char **why)
{
  struct ccci_strlist args = {NULL, 0};
  struct ccci_abratext_vars v;
  struct ccci_hcall_result res;
  char *cmd = subst_marker(
      write ? h->meta.data_check_write : h->meta.data_check_read, marker);
  int r;
  ccci_strlist_add(&args, "sh");
  ccci_strlist_add(&args, "-c");
  ccci_strlist_add(&args, cmd);
  free(cmd);
  memset(&v, 0, sizeof(v));
  v.service = h->meta.data_check_service;
  v.args = &args;
  r = call(h, "run", &h->apps[0], &v, CALL_TIMEOUT_MS, !write, false, false,
           &res);
  ccci_strlist_clear(&args);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    *why = r < 0 ? ccci_xstrdup("cannot start abra")
                 : ccci_hcall_why(&res, write ? "DATA_CHECK write"
                                              : "DATA_CHECK read");
    ccci_hcall_result_free(&res);
    return false;
  }
  if (seen != NULL)
    *seen = res.out != NULL && strstr(res.out, marker) != NULL;
  ccci_hcall_result_free(&res);
  return true;
}

/* ---- hooks (docs/hooks.md) ---- */

/* Largest hook file copied into the snapshot. */
#define HOOK_FILE_MAX (4 * 1024 * 1024)

/* Copy the regular file @p from to @p to with its mode bits. */
static int copy_one(const char *from, const char *to, char **why)
{
  char *text = NULL;
  size_t len;
  struct stat st;
  int r = stat(from, &st) < 0 ? -errno : 0;
  if (r == 0 && !S_ISREG(st.st_mode))
    r = -EINVAL;
  if (r == 0)
    r = ccci_read_file(from, HOOK_FILE_MAX, &text, &len);
  if (r == 0)
    r = ccci_write_file_atomic(to, text, len, st.st_mode & 0777);
  if (r < 0)
    *why = ccci_xasprintf("cannot copy %s: %s", from,
                          r == -EINVAL ? "not a regular file" : strerror(-r));
  free(text);
  return r;
}

#define HOOK_ENV_MAX 32

static void env_add(char **env, size_t *n, const char *k, const char *v)
{
  if (*n < HOOK_ENV_MAX - 1)
    env[(*n)++] = ccci_xasprintf("%s=%s", k, nz(v));
}

/* What a hook or a recipe test gets on top of the harness's environment;
 * free with free_env. The git token does not pass. */
static char **hook_env(struct h *h, enum ccci_tier tier, const char *hook)
{
  char **env = ccci_xcalloc(HOOK_ENV_MAX, sizeof(char *));
  size_t n = 0, i;
  char *url = app_url(h, &h->apps[0]), *tj, *pp;
  const char *old = getenv("PYTHONPATH");
  struct ccci_strlist t = tmpl("run");
  json_t *a = json_array();

  for (i = 0; i < t.n; i++)
    json_array_append_new(a, json_string(t.v[i]));
  tj = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  /* ccci's module first: a recipe's file of that name cannot replace it. */
  pp = ccci_xasprintf("%s:%s:%s%s%s", h->lib_dir, h->overlay_snap, h->snapshot,
                      old != NULL && *old != '\0' ? ":" : "", nz(old));
  env_add(env, &n, "CCCI_APP_URL", url);
  env_add(env, &n, "CCCI_APP_DOMAIN", h->apps[0].domain);
  env_add(env, &n, "CCCI_STACK", h->apps[0].stack);
  env_add(env, &n, "CCCI_SERVER", h->server);
  env_add(env, &n, "CCCI_TIER", ccci_tier_name(tier));
  env_add(env, &n, "CCCI_HOOK", hook);
  env_add(env, &n, "CCCI_GATEWAY", h->gateway);
  env_add(env, &n, "CCCI_GATEWAY_INSECURE", h->gateway_insecure ? "1" : "0");
  env_add(env, &n, "CCCI_RECIPE_CHECKOUT", h->checkout);
  env_add(env, &n, "CCCI_ARTIFACTS_DIR", h->artifacts);
  env_add(env, &n, "CCCI_HEALTH_PATH",
          h->meta.health_path != NULL ? h->meta.health_path : "/");
  env_add(env, &n, "CCCI_ABRA_RUN_TEMPLATE", tj != NULL ? tj : "[]");
  env_add(env, &n, "CCCI_RUN_ID", h->run_id);
  env_add(env, &n, "CCCI_RECIPE", h->recipe);
  env_add(env, &n, "CCCI_SHA", h->sha);
  env_add(env, &n, "CCCI_PR", h->pr);
  env_add(env, &n, "PYTHONPATH", pp);
  /* An entry without '=' unsets the variable (putenv). */
  env[n++] = ccci_xstrdup("GIT_ASKPASS");
  env[n++] = ccci_xstrdup("CCCI_GIT_TOKEN_FILE");
  env[n] = NULL;
  free(tj);
  free(pp);
  free(url);
  return env;
}

static void free_env(char **env)
{
  size_t i;
  for (i = 0; env[i] != NULL; i++)
    free(env[i]);
  free(env);
}

/* @p path relative to the snapshot dir, where hooks and tests run. */
static const char *snap_rel(const struct h *h, const char *path)
{
  size_t n = strlen(h->snap_dir);
  return strncmp(path, h->snap_dir, n) == 0 && path[n] == '/' ? path + n + 1
                                                              : path;
}

/* Run hook @p k in tier @p tier: an executable hook itself, a tier test
 * with TEST_RUNNER. False with @p why when it failed. */
static bool run_hook(struct h *h, enum ccci_hook k, enum ccci_tier tier,
                     char **why)
{
  const struct ccci_hook_info *hi = ccci_hook_info(k);
  struct ccci_strlist argv = {NULL, 0};
  struct ccci_hcall_result res;
  struct ccci_hcall c;
  char **env;
  size_t i;
  int r;

  if (hi->run_by_tests) {
    for (i = 0; i < h->meta.test_runner.n; i++)
      ccci_strlist_add(&argv, h->meta.test_runner.v[i]);
    if (argv.n == 0) {
      *why = ccci_xasprintf("%s: TEST_RUNNER is empty", hi->file);
      return false;
    }
    ccci_strlist_add(&argv, snap_rel(h, h->hook[k]));
  } else {
    ccci_strlist_add(&argv, h->hook[k]);
  }
  ccci_hcall_printf(
      "%s (the %s's hook)\n", hi->file,
      strncmp(h->hook[k], h->overlay_snap, strlen(h->overlay_snap)) == 0
          ? "operator"
          : "recipe");
  env = hook_env(h, tier, hi->file);
  memset(&c, 0, sizeof(c));
  c.argv = argv.v;
  c.cwd = h->snap_dir;
  c.env = env;
  c.timeout_ms = h->meta.deploy_timeout_ms;
  /* Not run_argv: a hook that cannot be executed fails its tier, it is
   * not the harness's own missing tool (exit 127). */
  r = ccci_hcall_run(&c, &res);
  free_env(env);
  ccci_strlist_clear(&argv);
  if (r < 0) {
    *why = ccci_xasprintf("cannot start %s", hi->file);
    return false;
  }
  if (!ccci_hcall_ok(&res)) {
    if (res.end == CCCI_HCALL_NOEXEC && res.status == EACCES)
      *why = ccci_xasprintf("%s is not executable (chmod +x it)", hi->file);
    else
      *why = ccci_hcall_why(&res, hi->file);
    ccci_hcall_result_free(&res);
    return false;
  }
  ccci_hcall_result_free(&res);
  ccci_hcall_printf("%s: passed\n", hi->file);
  return true;
}

/* ---- the tiers ---- */

static bool checkout_rev_in(struct h *h, const char *dir, const char *rev,
                            char **why)
{
  char *w = NULL;
  if (git(h, dir, NULL, &w, "checkout", "-q", "-f", rev, NULL))
    return true;
  *why = ccci_xasprintf("git checkout -f %s: %s", rev, w);
  free(w);
  return false;
}

/* compose.ccci.yml into the recipe checkout's top directory, where
 * COMPOSE_FILE names it (after every checkout: the recipe may track a file
 * of that name). */
static bool place_compose(struct h *h, char **why)
{
  char *to;
  int r;
  if (h->hook[CCCI_HOOK_COMPOSE] == NULL)
    return true;
  to = ccci_path_join(h->checkout, ccci_hook_info(CCCI_HOOK_COMPOSE)->file);
  r = copy_one(h->hook[CCCI_HOOK_COMPOSE], to, why);
  free(to);
  return r == 0;
}

/* The recipe's own checkout at @p rev, its CI overlay in place. */
static bool checkout_rev(struct h *h, const char *rev, char **why)
{
  return checkout_rev_in(h, h->checkout, rev, why) && place_compose(h, why);
}

/* A dependency's recipe: cloned from the operator's abra dir (abra fetches
 * recipes only online, and runs are offline) at its DEPS version, else its
 * newest release tag, else its HEAD. */
static bool prepare_dep(struct h *h, struct app *a, const char *version,
                        char **why)
{
  char *src = ccci_xasprintf("%s/recipes/%s", h->abra_real, a->recipe);
  char *dst = ccci_xasprintf("%s/recipes/%s", h->abra_dir, a->recipe);
  char *tags = NULL, *w = NULL, *rev = NULL;
  struct stat st;
  bool ok = false;

  if (strcmp(a->recipe, h->recipe) == 0) {
    *why = ccci_xasprintf("a recipe cannot depend on itself (%s)", a->recipe);
    goto out;
  }
  if (stat(dst, &st) == 0) {
    ok = true; /* two dependencies on one recipe share the checkout */
    goto out;
  }
  if (stat(src, &st) < 0) {
    *why = ccci_xasprintf("the recipe %s is not in %s/recipes (DEPS recipes "
                          "come from the operator's abra dir)",
                          a->recipe, h->abra_real);
    goto out;
  }
  if (!git(h, NULL, NULL, why, "clone", "-q", "--no-hardlinks", src, dst, NULL))
    goto out;
  if (version != NULL) {
    rev = ccci_xstrdup(version);
  } else if (git(h, dst, &tags, &w, "tag", "--list", NULL)) {
    const char *list[512];
    size_t n = 0;
    char *p, *save = NULL;
    const char *best;
    for (p = strtok_r(tags, "\n", &save); p != NULL && n < 512;
         p = strtok_r(NULL, "\n", &save))
      list[n++] = p;
    best = ccci_abratext_newest_release(list, n);
    if (best != NULL)
      rev = ccci_xstrdup(best);
  }
  if (rev != NULL && !checkout_rev_in(h, dst, rev, why))
    goto out;
  ok = true;
out:
  free(w);
  free(tags);
  free(rev);
  free(src);
  free(dst);
  return ok;
}

static void tier_deploy(struct h *h, bool base_is_head)
{
  char *why = NULL;
  size_t i;
  tier_begin(h, CCCI_TIER_DEPLOY);
  for (i = 1; i < h->napps; i++) {
    ccci_hcall_printf("dependency %s (%s)\n", h->apps[i].domain,
                      h->apps[i].recipe);
    if (!prepare_dep(h, &h->apps[i], h->meta.deps[i - 1].version, &why) ||
        !new_app(h, &h->apps[i], false, &why)) {
      char *w = ccci_xasprintf("dependency %s: %s", h->apps[i].recipe, why);
      free(why);
      tier_end(h, CCCI_TIER_DEPLOY, CCCI_TS_FAIL, w);
      return;
    }
  }
  if (!base_is_head) {
    ccci_hcall_printf("base: release %s\n", h->base_version);
    if (!checkout_rev(h, h->base_version, &why)) {
      tier_end(h, CCCI_TIER_DEPLOY, CCCI_TS_ERROR, why);
      return;
    }
  } else {
    ccci_hcall_printf("base: the PR head %s\n", h->sha);
  }
  h->apps[0].head = base_is_head;
  if (!new_app(h, &h->apps[0], true, &why)) {
    tier_end(h, CCCI_TIER_DEPLOY, h->noexec ? CCCI_TS_ERROR : CCCI_TS_FAIL,
             why);
    return;
  }
  /* On the base, once it is ready: what it sets up is data the upgrade,
   * backup and restore carry. Its failure is the install tier's. */
  if (h->hook[CCCI_HOOK_INSTALL_STEPS] != NULL &&
      !run_hook(h, CCCI_HOOK_INSTALL_STEPS, CCCI_TIER_INSTALL, &why))
    h->install_steps_why = why;
  tier_end(h, CCCI_TIER_DEPLOY, CCCI_TS_PASS, NULL);
}

static bool check_labels(struct h *h, char **why)
{
  struct ccci_hcall_result res;
  int r = call(h, "labels", &h->apps[0], NULL, CALL_TIMEOUT_MS, true, false,
               false, &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    *why = r < 0 ? ccci_xstrdup("cannot start docker")
                 : ccci_hcall_why(&res, "docker service inspect");
    ccci_hcall_result_free(&res);
    return false;
  }
  r = ccci_abratext_labels_check(res.out, h->apps[0].stack, h->sha, h->head_tag,
                                 why);
  ccci_hcall_result_free(&res);
  if (r == 1)
    ccci_hcall_printf("version labels match the PR head %.12s\n", h->sha);
  return r == 1;
}

static void tier_upgrade(struct h *h)
{
  char *why = NULL, *marker = NULL;
  bool seen = false;
  struct tier *t = &h->t[CCCI_TIER_UPGRADE];
  bool test = h->hook[CCCI_HOOK_TEST_UPGRADE] != NULL;

  tier_begin(h, CCCI_TIER_UPGRADE);
  if (have_data_check(h) && !test) {
    marker = new_marker(h, "upgrade");
    if (!data_cmd(h, true, marker, NULL, &why))
      goto fail;
  }
  ccci_hcall_printf("upgrade: %s -> the PR head %s\n", h->base_version, h->sha);
  if (!checkout_rev(h, h->sha, &why))
    goto fail;
  h->apps[0].head = true;
  if (!deploy_call(h, &h->apps[0], &why)) {
    h->apps[0].head = false;
    goto fail;
  }
  if (!ready(h, &h->apps[0], !test, &why))
    goto fail;
  if (test) {
    /* test_upgrade.py replaces HEALTH_PATH, DATA_CHECK and the labels. */
    if (!run_hook(h, CCCI_HOOK_TEST_UPGRADE, CCCI_TIER_UPGRADE, &why))
      goto fail;
    tier_end(h, CCCI_TIER_UPGRADE, CCCI_TS_PASS, NULL);
    return;
  }
  if (marker != NULL) {
    t->data_checked = true;
    if (!data_cmd(h, false, marker, &seen, &why)) {
      char *w = why;
      why = ccci_xasprintf("the DATA_CHECK marker written before the upgrade "
                           "is gone: %s",
                           w);
      free(w);
      goto fail;
    }
    if (!seen) {
      why = ccci_xstrdup("the DATA_CHECK marker written before the upgrade "
                         "is gone");
      goto fail;
    }
    ccci_hcall_printf("the data written before the upgrade is there\n");
  }
  if (!check_labels(h, &why))
    goto fail;
  free(marker);
  tier_end(h, CCCI_TIER_UPGRADE, CCCI_TS_PASS, NULL);
  return;
fail:
  free(marker);
  tier_end(h, CCCI_TIER_UPGRADE, CCCI_TS_FAIL, why);
}

/* How long the browser of SCREENSHOT may take. */
#define SHOT_TIMEOUT_MS (2u * 60u * 1000u)

/* SCREENSHOT: artifacts/install.png of HEALTH_PATH. The picture is an
 * artifact, not a check: no browser, or one that makes no PNG, is a note in
 * the tier's reason (returned), never its failure. */
static char *screenshot(struct h *h)
{
  struct ccci_shot s;
  char *why = NULL, *base, *url, *png, *note = NULL;
  const char *path = h->meta.health_path != NULL ? h->meta.health_path : "/";
  enum ccci_shot_end e;

  if (!h->meta.screenshot)
    return NULL;
  base = app_url(h, &h->apps[0]);
  url = ccci_xasprintf("%s%s%s", base, path[0] == '/' ? "" : "/", path);
  png = ccci_xasprintf("%s/install.png", h->artifacts);
  memset(&s, 0, sizeof(s));
  s.chromium = h->cfg->harness.chromium;
  s.url = url;
  s.domain = h->apps[0].domain;
  s.gateway = h->gateway;
  s.insecure = h->gateway_insecure;
  s.png = png;
  s.timeout_ms = SHOT_TIMEOUT_MS;
  e = ccci_shot_take(&s, &why);
  if (e == CCCI_SHOT_TAKEN) {
    free(h->shot);
    h->shot = ccci_xstrdup("artifacts/install.png");
    ccci_hcall_printf("screenshot of %s saved as %s\n", url, png);
  } else {
    note = ccci_xasprintf("screenshot: %s", why != NULL ? why : "not taken");
    ccci_hcall_printf("%s (the tier does not fail for it)\n", note);
  }
  free(why);
  free(png);
  free(url);
  free(base);
  return note;
}

static void tier_install(struct h *h)
{
  char *why = NULL;
  bool test = h->hook[CCCI_HOOK_TEST_INSTALL] != NULL;
  tier_begin(h, CCCI_TIER_INSTALL);
  if (h->install_steps_why != NULL) {
    tier_end(h, CCCI_TIER_INSTALL, CCCI_TS_FAIL,
             ccci_xstrdup(h->install_steps_why));
    return;
  }
  if (!h->apps[0].head) {
    /* The upgrade's redeploy did not happen: deploy the head now. */
    if (!checkout_rev(h, h->sha, &why) || !deploy_call(h, &h->apps[0], &why)) {
      tier_end(h, CCCI_TIER_INSTALL, CCCI_TS_FAIL, why);
      return;
    }
    h->apps[0].head = true;
  }
  if (!ready(h, &h->apps[0], !test, &why) ||
      (test && !run_hook(h, CCCI_HOOK_TEST_INSTALL, CCCI_TIER_INSTALL, &why))) {
    tier_end(h, CCCI_TIER_INSTALL, CCCI_TS_FAIL, why);
    return;
  }
  tier_end(h, CCCI_TIER_INSTALL, CCCI_TS_PASS, screenshot(h));
}

/* The number of snapshot lines, or -1 with @p why. */
static long snapshots(struct h *h, char **why)
{
  struct ccci_hcall_result res;
  long n = 0;
  const char *p;
  int r = call(h, "snapshots", &h->apps[0], NULL, CALL_TIMEOUT_MS, true, false,
               false, &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    *why = r < 0 ? ccci_xstrdup("cannot start abra")
                 : ccci_hcall_why(&res, "abra app backup snapshots");
    ccci_hcall_result_free(&res);
    return -1;
  }
  for (p = res.out; p != NULL && *p != '\0';) {
    size_t l = strcspn(p, "\n");
    if (strspn(p, " \t\r") < l)
      n++;
    p += l;
    if (*p == '\n')
      p++;
  }
  ccci_hcall_result_free(&res);
  return n;
}

static bool compose_has_backup(struct h *h)
{
  char *text = NULL, *path;
  size_t len, i;
  bool has = false;
  path = ccci_xasprintf("%s/compose.yml", h->checkout);
  if (ccci_read_file(path, 4 * 1024 * 1024, &text, &len) == 0)
    has = ccci_abratext_has_backup_label(text);
  free(path);
  free(text);
  for (i = 0; !has && i <= h->meta.compose_files.n; i++) {
    if (i == h->meta.compose_files.n && h->hook[CCCI_HOOK_COMPOSE] == NULL)
      break;
    path = ccci_path_join(h->checkout,
                          i < h->meta.compose_files.n
                              ? h->meta.compose_files.v[i]
                              : ccci_hook_info(CCCI_HOOK_COMPOSE)->file);
    text = NULL;
    if (ccci_read_file(path, 4 * 1024 * 1024, &text, &len) == 0)
      has = ccci_abratext_has_backup_label(text);
    free(path);
    free(text);
  }
  return has;
}

static char *backup_marker;

static void tier_backup(struct h *h)
{
  char *why = NULL;
  struct ccci_hcall_result res;
  long before, after;
  bool test = h->hook[CCCI_HOOK_TEST_BACKUP] != NULL;
  int r;

  tier_begin(h, CCCI_TIER_BACKUP);
  if (h->meta.backup == 0) {
    tier_end(h, CCCI_TIER_BACKUP, CCCI_TS_SKIP,
             ccci_xstrdup("BACKUP is false in recipe_meta.yml"));
    return;
  }
  if (h->meta.backup < 0 && !compose_has_backup(h)) {
    tier_end(h, CCCI_TIER_BACKUP, CCCI_TS_SKIP,
             ccci_xstrdup("no backupbot.backup label in the compose files "
                          "and BACKUP is not set"));
    return;
  }
  /* The marker is for the restore's generic check. */
  if (have_data_check(h) && h->hook[CCCI_HOOK_TEST_RESTORE] == NULL) {
    backup_marker = new_marker(h, "backup");
    if (!data_cmd(h, true, backup_marker, NULL, &why))
      goto fail;
  }
  before = test ? 0 : snapshots(h, &why);
  if (before < 0)
    goto fail;
  r = call(h, "backup", &h->apps[0], NULL, h->meta.deploy_timeout_ms, false,
           false, false, &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    why = r < 0 ? ccci_xstrdup("cannot start abra")
                : ccci_hcall_why(&res, "abra app backup create");
    ccci_hcall_result_free(&res);
    goto fail;
  }
  ccci_hcall_result_free(&res);
  if (test) {
    /* test_backup.py replaces the snapshot count. */
    if (!run_hook(h, CCCI_HOOK_TEST_BACKUP, CCCI_TIER_BACKUP, &why))
      goto fail;
    tier_end(h, CCCI_TIER_BACKUP, CCCI_TS_PASS, NULL);
    return;
  }
  after = snapshots(h, &why);
  if (after < 0)
    goto fail;
  if (after != before + 1) {
    why = ccci_xasprintf("expected one new snapshot, found %ld before and %ld "
                         "after the backup",
                         before, after);
    goto fail;
  }
  ccci_hcall_printf("one new snapshot (%ld in all)\n", after);
  tier_end(h, CCCI_TIER_BACKUP, CCCI_TS_PASS, NULL);
  return;
fail:
  tier_end(h, CCCI_TIER_BACKUP, CCCI_TS_FAIL, why);
}

static void tier_restore(struct h *h)
{
  char *why = NULL, *changed = NULL;
  struct ccci_hcall_result res;
  bool seen = false;
  bool test = h->hook[CCCI_HOOK_TEST_RESTORE] != NULL;
  int r;

  tier_begin(h, CCCI_TIER_RESTORE);
  if (backup_marker != NULL) {
    changed = new_marker(h, "changed");
    if (!data_cmd(h, true, changed, NULL, &why))
      goto fail;
  }
  r = call(h, "restore", &h->apps[0], NULL, h->meta.deploy_timeout_ms, false,
           false, false, &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    why = r < 0 ? ccci_xstrdup("cannot start abra")
                : ccci_hcall_why(&res, "abra app restore");
    ccci_hcall_result_free(&res);
    goto fail;
  }
  ccci_hcall_result_free(&res);
  if (!ready(h, &h->apps[0], !test, &why))
    goto fail;
  if (test) {
    /* test_restore.py replaces HEALTH_PATH and the DATA_CHECK marker. */
    if (!run_hook(h, CCCI_HOOK_TEST_RESTORE, CCCI_TIER_RESTORE, &why))
      goto fail;
    free(changed);
    tier_end(h, CCCI_TIER_RESTORE, CCCI_TS_PASS, NULL);
    return;
  }
  if (backup_marker != NULL) {
    h->t[CCCI_TIER_RESTORE].data_checked = true;
    if (!data_cmd(h, false, backup_marker, &seen, &why)) {
      char *w = why;
      why = ccci_xasprintf("the DATA_CHECK marker written before the backup "
                           "is not back after the restore: %s",
                           w);
      free(w);
      goto fail;
    }
    if (!seen) {
      why = ccci_xstrdup("the DATA_CHECK marker written before the backup is "
                         "not back after the restore");
      goto fail;
    }
    ccci_hcall_printf("the data written before the backup is back\n");
  }
  free(changed);
  tier_end(h, CCCI_TIER_RESTORE, CCCI_TS_PASS, NULL);
  return;
fail:
  free(changed);
  tier_end(h, CCCI_TIER_RESTORE, CCCI_TS_FAIL, why);
}

static void add_arg(void *arg, const char *s)
{
  ccci_strlist_add(arg, s);
}

static void tier_custom(struct h *h)
{
  struct ccci_strlist argv = {NULL, 0};
  struct ccci_hcall_result res;
  char **env, *why = NULL;
  size_t i, nfiles = 0;
  uint64_t timeout = 0;
  int r;

  tier_begin(h, CCCI_TIER_CUSTOM);
  for (i = 0; i < h->meta.test_runner.n; i++)
    ccci_strlist_add(&argv, h->meta.test_runner.v[i]);
  for (i = 0; i < h->meta.custom_tests.n; i++)
    nfiles += ccci_hook_match_tests(h->snap_dir, h->meta.custom_tests.v[i],
                                    add_arg, &argv);
  if (nfiles == 0 || argv.n == nfiles) {
    tier_end(h, CCCI_TIER_CUSTOM, CCCI_TS_SKIP,
             ccci_xstrdup(nfiles == 0 ? "no test matches CUSTOM_TESTS in the "
                                        "recipe's tests/"
                                      : "TEST_RUNNER is empty"));
    goto out;
  }
  if (h->hook[CCCI_HOOK_SETUP_CUSTOM] != NULL &&
      !run_hook(h, CCCI_HOOK_SETUP_CUSTOM, CCCI_TIER_CUSTOM, &why)) {
    tier_end(h, CCCI_TIER_CUSTOM, CCCI_TS_ERROR, why);
    goto out;
  }
  env = hook_env(h, CCCI_TIER_CUSTOM, "");
  if (h->meta.timeout_ms != 0)
    timeout = h->meta.timeout_ms;
  r = run_argv(h, argv.v, h->snap_dir, env, timeout, false, false, &res);
  free_env(env);
  if (r < 0 || !ccci_hcall_ok(&res))
    tier_end(h, CCCI_TIER_CUSTOM, CCCI_TS_FAIL,
             r < 0 ? ccci_xstrdup("cannot start TEST_RUNNER")
                   : ccci_hcall_why(&res, "the recipe's tests"));
  else
    tier_end(h, CCCI_TIER_CUSTOM, CCCI_TS_PASS, NULL);
  if (r == 0)
    ccci_hcall_result_free(&res);
out:
  ccci_strlist_clear(&argv);
}

/* ---- teardown ---- */

/* Lines of template @p name's output for @p a that are not blank, or -1. */
static long leftovers(struct h *h, const char *name, const struct app *a,
                      uint64_t timeout)
{
  struct ccci_hcall_result res;
  long n = 0;
  const char *p;
  size_t sl = strlen(a->stack);
  int r = call(h, name, a, NULL, timeout, true, false, true, &res);
  if (r < 0 || !ccci_hcall_ok(&res)) {
    ccci_hcall_result_free(&res);
    return -1;
  }
  for (p = res.out; p != NULL && *p != '\0';) {
    size_t l = strcspn(p, "\n");
    /* Only names of this stack count (a filter the template may lack). */
    if (l > sl && memcmp(p, a->stack, sl) == 0 && p[sl] == '_')
      n++;
    p += l;
    if (*p == '\n')
      p++;
  }
  ccci_hcall_result_free(&res);
  return n;
}

static uint64_t teardown_left(uint64_t end)
{
  uint64_t now = ccci_now_ms();
  return now >= end ? 1 : end - now;
}

/* Remove the app's env file (`remove`), the handle every other teardown
 * call needs: only once nothing of the app is left on the server, so a
 * later `ccci harness --teardown` can still remove what a failed call
 * left. */
static void remove_app(struct h *h, const struct app *a, uint64_t end, long sv,
                       long vo, long se)
{
  struct ccci_hcall_result res;
  uint64_t left = teardown_left(end);

  if (sv != 0 || vo != 0 || se != 0) {
    ccci_hcall_printf("keeping the env file of %s: `ccci harness --teardown` "
                      "needs it to remove what is left\n",
                      a->domain);
    return;
  }
  if (call(h, "remove", a, NULL,
           left < CALL_TIMEOUT_MS ? left : CALL_TIMEOUT_MS, false, false, true,
           &res) == 0)
    ccci_hcall_result_free(&res);
}

static void teardown(struct h *h)
{
  static const char *const steps[] = {"undeploy", "volume_remove",
                                      "secret_remove"};
  uint64_t end = ccci_now_ms() + h->teardown_grace_ms;
  size_t i, k;
  bool any = false;

  ccci_hcall_printf("~~~ step teardown\n");
  h->phase = PHASE_TEARDOWN;
  h->conn_error_last = false; /* tried again, even after the tiers' error */
  h->teardown_clean = true;
  h->secrets_clean = true;
  for (i = 0; i < h->napps; i++)
    any = any || h->apps[i].created;
  if (!any) {
    ccci_hcall_printf("nothing was deployed\n");
  }
  /* The base first, then the dependencies in reverse order. */
  for (k = 0; k < h->napps; k++) {
    struct app *a = &h->apps[k == 0 ? 0 : h->napps - k];
    struct stat st;
    long sv, vo, se;
    if (!a->created)
      continue;
    for (i = 0; i < CCCI_ARRAY_LEN(steps) && !h->conn_error_last; i++) {
      struct ccci_hcall_result res;
      uint64_t left = teardown_left(end);
      if (call(h, steps[i], a, NULL,
               left < CALL_TIMEOUT_MS ? left : CALL_TIMEOUT_MS, false, false,
               true, &res) == 0)
        ccci_hcall_result_free(&res);
    }
    /* A server that cannot be reached ends the teardown at once: every
     * other call would wait for it too. What is left is unknown. */
    if (h->conn_error_last) {
      ccci_hcall_printf("teardown stopped: %s; what is left on it is "
                        "unknown (`ccci harness --teardown` again once it "
                        "answers)\n",
                        h->unreachable != NULL ? h->unreachable
                                               : "the server is unreachable");
      h->teardown_clean = false;
      h->secrets_clean = false;
      break;
    }
    sv = leftovers(h, "services", a, teardown_left(end));
    vo = h->conn_error_last ? -1
                            : leftovers(h, "volumes", a, teardown_left(end));
    se = h->conn_error_last ? -1
                            : leftovers(h, "secrets", a, teardown_left(end));
    if (!h->conn_error_last)
      remove_app(h, a, end, sv, vo, se);
    if (sv != 0 || vo != 0 || stat(a->envfile, &st) == 0) {
      ccci_hcall_printf("teardown of %s is not clean: %s services, %s "
                        "volumes left%s\n",
                        a->domain,
                        sv < 0   ? "unknown"
                        : sv > 0 ? "some"
                                 : "no",
                        vo < 0   ? "unknown"
                        : vo > 0 ? "some"
                                 : "no",
                        stat(a->envfile, &st) == 0 ? ", the env file is there"
                                                   : "");
      h->teardown_clean = false;
    }
    if (se != 0) {
      ccci_hcall_printf("secrets of %s left: %s\n", a->domain,
                        se < 0 ? "unknown" : "some");
      h->secrets_clean = false;
    }
  }
  if (h->teardown_clean && h->secrets_clean) {
    write_opstate(h, false);
    ccci_hcall_printf("teardown clean\n");
  }
  h->torn_down = true;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  if (flag == FTW_DP || flag == FTW_D)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

/* rm -rf that never follows a link (servers/ links to the real one). */
static void remove_tree(const char *dir)
{
  struct stat st;
  if (lstat(dir, &st) < 0)
    return;
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove the run's ABRA_DIR, but only one that is the run's own: inside the
 * run dir, its servers/ the link to the operator's (or absent). Anything
 * else may be an operator's real abra state, which is left alone. */
static void remove_abra_dir(const struct h *h)
{
  size_t n = strlen(h->run_dir);
  char *servers = ccci_xasprintf("%s/servers", h->abra_dir);
  struct stat st;
  bool own = strncmp(h->abra_dir, h->run_dir, n) == 0 &&
             h->abra_dir[n] == '/' &&
             (lstat(servers, &st) < 0 ? errno == ENOENT : S_ISLNK(st.st_mode));
  if (own)
    remove_tree(h->abra_dir);
  else
    printf("leaving %s in place: it is not this run's own ABRA_DIR (not "
           "under %s, or its servers/ is not a link)\n",
           h->abra_dir, h->run_dir);
  free(servers);
}

/* ---- results.json ---- */

static json_t *jstr(const char *s)
{
  char *r;
  json_t *j;
  if (s == NULL)
    return json_null();
  r = ccci_hcall_redact_str(s);
  j = json_string(r);
  free(r);
  return j != NULL ? j : json_string("(not UTF-8)");
}

static int level_of(const struct h *h)
{
  enum ccci_tier_status st[CCCI_TIER_COUNT];
  size_t i;
  for (i = 0; i < CCCI_TIER_COUNT; i++)
    st[i] = h->t[i].st;
  return ccci_level_compute(st, h->quick);
}

/* The tier table a maintainer reads at the end of the run. */
static void print_tiers(const struct h *h)
{
  size_t i;
  ccci_hcall_printf("%-8s %-9s %9s  %s\n", "tier", "status", "duration",
                    "reason");
  for (i = 0; i < CCCI_TIER_COUNT; i++) {
    const struct tier *t = &h->t[i];
    if (t->st == CCCI_TS_NONE)
      continue;
    ccci_hcall_printf(
        "%-8s %-9s %8.1fs  %s\n", ccci_tier_name((enum ccci_tier)i),
        ccci_tier_status_name(t->st),
        t->started != 0 && t->duration_s > 0 ? t->duration_s : 0.0,
        nz(t->reason));
  }
}

static void write_results(struct h *h)
{
  json_t *j = json_object(), *tiers = json_object(), *inv = json_object();
  char ts[32];
  char *text;
  int level = level_of(h), r;
  size_t i;
  uint64_t pr = 0;

  if (h->error != NULL && h->t[CCCI_TIER_DEPLOY].st == CCCI_TS_NONE) {
    /* Stopped before any tier (bad recipe_meta.yml, checkout): the deploy
     * tier could not be run. */
    h->t[CCCI_TIER_DEPLOY].st = CCCI_TS_ERROR;
    free(h->t[CCCI_TIER_DEPLOY].reason);
    h->t[CCCI_TIER_DEPLOY].reason = ccci_xstrdup(h->error);
  }
  json_object_set_new(j, "version", json_integer(1));
  json_object_set_new(j, "run", jstr(h->run_id));
  json_object_set_new(j, "recipe", jstr(h->recipe));
  json_object_set_new(j, "repo", jstr(h->repo));
  if (h->pr != NULL && ccci_parse_u64(h->pr, &pr) == 0)
    json_object_set_new(j, "pr", json_integer((json_int_t)pr));
  else
    json_object_set_new(j, "pr", json_null());
  json_object_set_new(j, "sha", jstr(h->sha));
  json_object_set_new(j, "ref", jstr(h->ref));
  json_object_set_new(j, "domain", jstr(h->apps[0].domain));
  json_object_set_new(j, "server", jstr(h->server));
  json_object_set_new(j, "base_version", jstr(h->base_version));
  json_object_set_new(j, "quick", json_boolean(h->quick));
  for (i = 0; i < CCCI_TIER_COUNT; i++) {
    const struct tier *t = &h->t[i];
    json_t *o;
    if (t->st == CCCI_TS_NONE)
      continue;
    o = json_object();
    json_object_set_new(o, "status", json_string(ccci_tier_status_name(t->st)));
    json_object_set_new(o, "reason", jstr(t->reason));
    if (t->started != 0) {
      ccci_rfc3339(t->started, ts);
      json_object_set_new(o, "started_at", json_string(ts));
    } else {
      json_object_set_new(o, "started_at", json_null());
    }
    json_object_set_new(
        o, "duration_s",
        json_real(t->duration_s > 0 && t->started != 0
                      ? (double)(long)(t->duration_s * 1000) / 1000.0
                      : 0.0));
    json_object_set_new(o, "step",
                        t->started != 0
                            ? json_string(ccci_tier_name((enum ccci_tier)i))
                            : json_null());
    if (i == CCCI_TIER_UPGRADE || i == CCCI_TIER_RESTORE)
      json_object_set_new(o, "data_checked", json_boolean(t->data_checked));
    if (i == CCCI_TIER_INSTALL && h->shot != NULL)
      json_object_set_new(o, "artifacts", json_pack("[s]", h->shot));
    json_object_set_new(tiers, ccci_tier_name((enum ccci_tier)i), o);
  }
  json_object_set_new(j, "tiers", tiers);
  if (h->shot != NULL)
    json_object_set_new(j, "artifacts", json_pack("[s]", h->shot));
  json_object_set_new(j, "level", json_string(ccci_level_text(level)));
  json_object_set_new(j, "level_name", json_string(ccci_level_name(level)));
  json_object_set_new(j, "deploys", json_integer(h->deploys));
  {
    unsigned cold = 0;
    for (i = 1; i < h->napps; i++)
      cold += h->apps[i].created;
    json_object_set_new(
        inv, "deploy_budget_ok",
        json_boolean(h->deploys == 0 || h->deploys == 1 + cold));
  }
  json_object_set_new(inv, "teardown_clean",
                      json_boolean(h->torn_down && h->teardown_clean));
  json_object_set_new(inv, "secrets_clean",
                      json_boolean(h->torn_down && h->secrets_clean));
  json_object_set_new(j, "invariants", inv);
  json_object_set_new(j, "error", jstr(h->error));
  ccci_rfc3339(h->started, ts);
  json_object_set_new(j, "started_at", json_string(ts));
  json_object_set_new(
      j, "duration_s",
      json_real((double)(long)(ccci_now_ms() - h->t0) / 1000.0));
  text =
      json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
  json_decref(j);
  if (text == NULL)
    return;
  r = ccci_write_file_atomic(h->results, text, strlen(text), 0640);
  if (r < 0)
    ccci_hcall_printf("ccci harness: cannot write %s: %s\n", h->results,
                      strerror(-r));
  free(text);
}

/* ---- setup ---- */

static const char usage_text[] =
    "usage: ccci harness [--recipe DIR] [--ref REF] [--domain D] [--server S]\n"
    "                    [--quick] [--results FILE] [--run-dir DIR] [--keep]\n"
    "                    [--tier T]... | --teardown [--run-dir DIR]\n"
    "       ccci harness --probe [--server S]\n";

static int usage_error(const char *fmt, const char *arg)
{
  fputs("ccci harness: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n", stderr);
  fputs(usage_text, stderr);
  return CCCI_HARNESS_EXIT_USAGE;
}

static void setopt(char **slot, const char *v)
{
  free(*slot);
  *slot = ccci_xstrdup(v);
}

static int parse_args(struct h *h, int argc, char **argv)
{
  int i;
  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    char **slot = NULL;
    if (strcmp(a, "--quick") == 0) {
      h->quick = true;
      h->run_flags++;
      continue;
    }
    if (strcmp(a, "--keep") == 0) {
      h->keep = true;
      h->run_flags++;
      continue;
    }
    if (strcmp(a, "--teardown") == 0) {
      h->teardown_only = true;
      h->run_flags++;
      continue;
    }
    if (strcmp(a, "--probe") == 0) {
      h->probe = true;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_text, stdout);
      return -1;
    }
    if (strcmp(a, "--recipe") == 0)
      slot = &h->recipe_dir;
    else if (strcmp(a, "--ref") == 0)
      slot = &h->ref;
    else if (strcmp(a, "--domain") == 0)
      slot = &h->apps[0].domain;
    else if (strcmp(a, "--server") == 0)
      slot = &h->server;
    else if (strcmp(a, "--results") == 0)
      slot = &h->results;
    else if (strcmp(a, "--run-dir") == 0)
      slot = &h->run_dir;
    else if (strcmp(a, "--tier") != 0)
      return usage_error("unknown argument '%s'", a);
    if (i + 1 >= argc)
      return usage_error("%s needs a value", a);
    if (slot == NULL) {
      if (h->upto >= 0)
        return usage_error("%s", "--tier is given once: the last tier to run");
      h->upto = ccci_tier_parse(argv[i + 1]);
      h->run_flags++;
      if (h->upto < 0)
        return usage_error("--tier: no tier '%s' (deploy, upgrade, install, "
                           "backup, restore, custom)",
                           argv[i + 1]);
      i++;
      continue;
    }
    setopt(slot, argv[++i]);
    if (slot == &h->server)
      h->server_flag = true;
    else
      h->run_flags++;
    if (slot == &h->recipe_dir)
      h->standalone = true;
  }
  return 0;
}

static char *abs_path(const char *p)
{
  char buf[PATH_MAX];
  if (p == NULL)
    return NULL;
  if (realpath(p, buf) != NULL)
    return ccci_xstrdup(buf);
  return ccci_xstrdup(p);
}

static char *base_name(const char *dir)
{
  size_t n = strlen(dir);
  const char *s;
  while (n > 1 && dir[n - 1] == '/')
    n--;
  s = memrchr(dir, '/', n);
  s = s != NULL ? s + 1 : dir;
  return ccci_xstrndup(s, (size_t)(dir + n - s));
}

/* Fill @p h from the environment contract, then the flags' defaults. */
static int setup_env(struct h *h)
{
  char *v;
  h->run_id = envdup("CCCI_RUN_ID");
  if (h->recipe_dir == NULL)
    h->recipe_dir = envdup("CCCI_RECIPE_DIR");
  h->recipe = h->standalone ? NULL : envdup("CCCI_RECIPE");
  if (h->ref == NULL)
    h->ref = envdup("CCCI_REF");
  if (!h->standalone)
    h->sha = envdup("CCCI_SHA");
  h->pr = h->standalone ? NULL : envdup("CCCI_PR");
  h->repo = h->standalone ? NULL : envdup("CCCI_REPO");
  h->clone_url = h->standalone ? NULL : envdup("CCCI_CLONE_URL");
  h->token_file = envdup("CCCI_GIT_TOKEN_FILE");
  h->abra_real = envdup("CCCI_ABRA_DIR_REAL");
  h->overlays = envdup("CCCI_OVERLAYS_DIR");
  h->gateway = envdup("CCCI_GATEWAY");
  v = getenv("CCCI_GATEWAY_INSECURE");
  h->gateway_insecure = v != NULL && strcmp(v, "1") == 0;
  if (!h->quick) {
    v = getenv("CCCI_QUICK");
    h->quick = v != NULL && strcmp(v, "1") == 0;
  }
  if (h->server == NULL)
    h->server = envdup("CCCI_SERVER");
  if (h->server == NULL)
    h->server = ccci_xstrdup("default");
  if (h->apps[0].domain == NULL && !h->standalone)
    h->apps[0].domain = envdup("CCCI_DOMAIN");
  if (h->results == NULL && !h->standalone)
    h->results = envdup("CCCI_RESULTS_FILE");
  /* The state files and ABRA_DIR of the environment are the daemon's
   * (CCCI_RUN_ID says it started us): a maintainer's own ABRA_DIR (often
   * ~/.abra, exported for abra itself) is never the run's, which is removed
   * at the end. */
  if (!h->standalone && getenv("CCCI_RUN_ID") != NULL) {
    if (h->run_dir == NULL && h->results != NULL)
      h->run_dir = ccci_dirname(h->results);
    h->deploys_f = envdup("CCCI_DEPLOYS_FILE");
    h->opstate_f = envdup("CCCI_OPSTATE_FILE");
    h->deps_f = envdup("CCCI_DEPS_FILE");
    h->depskip_f = envdup("CCCI_DEPSKIP_FILE");
    h->server_f = envdup("CCCI_SERVER_FILE");
    h->abra_dir = envdup("ABRA_DIR");
  }
  if (h->abra_real == NULL) {
    const char *home = getenv("HOME");
    h->abra_real = ccci_xasprintf("%s/.abra", home != NULL ? home : "");
  }
  return 0;
}

/* A maintainer's run of recipe @p name keeps its dir at one place, so that
 * `ccci harness --teardown --recipe DIR` finds what `--keep` left:
 * $XDG_STATE_HOME/ccci/harness/<name> (~/.local/state/...). */
static char *standalone_dir(const char *recipe_dir)
{
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char *abs = abs_path(recipe_dir), *name = base_name(abs), *d;
  if (xdg != NULL && xdg[0] == '/')
    d = ccci_xasprintf("%s/ccci/harness/%s", xdg, name);
  else
    d = ccci_xasprintf("%s/.local/state/ccci/harness/%s",
                       home != NULL && *home != '\0' ? home : "/tmp", name);
  free(abs);
  free(name);
  return d;
}

/* Whether the opstate file @p path says something is deployed. */
static bool opstate_deployed(const char *path)
{
  char *text = NULL;
  size_t len;
  bool yes = ccci_read_file(path, STATE_FILE_MAX, &text, &len) == 0 &&
             strncmp(text, "deployed\n", 9) == 0;
  free(text);
  return yes;
}

/* Standalone defaults: the recipe's run dir (or one under $TMPDIR), its
 * state files. */
static int setup_dirs(struct h *h)
{
  int r;
  if (h->run_dir == NULL && h->standalone)
    h->run_dir = standalone_dir(h->recipe_dir);
  if (h->run_dir == NULL) {
    const char *tmp = getenv("TMPDIR");
    char *t = ccci_xasprintf("%s/ccci-harness-XXXXXX",
                             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(t) == NULL) {
      fprintf(stderr, "ccci harness: cannot create %s: %s\n", t,
              strerror(errno));
      free(t);
      return CCCI_HARNESS_EXIT_FAILED;
    }
    h->run_dir = t;
  }
  r = ccci_mkdir_p(h->run_dir, 0750);
  if (r < 0) {
    fprintf(stderr, "ccci harness: cannot create %s: %s\n", h->run_dir,
            strerror(-r));
    return CCCI_HARNESS_EXIT_FAILED;
  }
  if (h->results == NULL)
    h->results = ccci_xasprintf("%s/results.json", h->run_dir);
  if (h->opstate_f == NULL || h->deps_f == NULL || h->deploys_f == NULL ||
      h->server_f == NULL) {
    char *sd = ccci_xasprintf("%s/state", h->run_dir);
    if (ccci_mkdir_p(sd, 0750) < 0) {
      /* the writes below say why */
    }
    if (h->opstate_f == NULL)
      h->opstate_f = ccci_xasprintf("%s/opstate", sd);
    if (h->deps_f == NULL)
      h->deps_f = ccci_xasprintf("%s/deps", sd);
    if (h->deploys_f == NULL)
      h->deploys_f = ccci_xasprintf("%s/deploys", sd);
    if (h->server_f == NULL)
      h->server_f = ccci_xasprintf("%s/server", sd);
    free(sd);
  }
  if (h->abra_dir == NULL)
    h->abra_dir = ccci_xasprintf("%s/abra", h->run_dir);
  setenv("ABRA_DIR", h->abra_dir, 1);
  return 0;
}

static void dep_domain(struct h *h, struct app *a)
{
  const char *base = h->apps[0].domain, *dot = strchr(base, '.');
  size_t fl = dot != NULL ? (size_t)(dot - base) : strlen(base);
  size_t rl = strlen(a->recipe);
  /* <dep>-<first label of the base>.<rest>, the label cut to 63 bytes. */
  if (rl + 1 + fl > 63)
    fl = rl + 1 < 63 ? 63 - rl - 1 : 0;
  a->domain = ccci_xasprintf("%s-%.*s%s", a->recipe, (int)fl, base,
                             dot != NULL ? dot : "");
}

static void app_fill(struct h *h, struct app *a)
{
  a->stack = ccci_abratext_stack(a->domain);
  a->envfile =
      ccci_xasprintf("%s/servers/%s/%s.env", h->abra_dir, h->server, a->domain);
}

static bool link_servers(struct h *h, char **why)
{
  char *link = ccci_xasprintf("%s/servers", h->abra_dir);
  struct stat st;
  int r = ccci_mkdir_p(h->abra_dir, 0750);
  bool ok = false;
  if (r < 0) {
    *why = ccci_xasprintf("cannot create %s: %s", h->abra_dir, strerror(-r));
    goto out;
  }
  if (lstat(link, &st) == 0) {
    ok = true;
    goto out;
  }
  {
    char *real = ccci_xasprintf("%s/servers", h->abra_real);
    r = ccci_mkdir_p(real, 0750);
    if (r == 0 && symlink(real, link) < 0)
      r = -errno;
    if (r < 0)
      *why =
          ccci_xasprintf("cannot link %s to %s: %s", link, real, strerror(-r));
    else
      ccci_hcall_printf("%s -> %s\n", link, real);
    free(real);
    ok = r == 0;
  }
out:
  free(link);
  return ok;
}

static bool make_askpass(struct h *h, char **why)
{
  static const char script[] =
      "#!/bin/sh\n"
      "# git asks for a user name and a password: the token is the password.\n"
      "case \"$1\" in\n"
      "Username*) echo ccci ;;\n"
      "*) cat \"$CCCI_GIT_TOKEN_FILE\" ;;\n"
      "esac\n";
  char *tok = NULL;
  size_t len;
  int r;
  if (h->token_file == NULL)
    return true;
  r = ccci_read_file(h->token_file, 64 * 1024, &tok, &len);
  if (r < 0) {
    *why = ccci_xasprintf("cannot read the git token file %s: %s",
                          h->token_file, strerror(-r));
    return false;
  }
  while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
    len--;
  r = ccci_hcall_add_secret(tok, len);
  ccci_wipe_free_str(tok);
  if (r < 0) {
    *why = ccci_xstrdup("cannot mask the git token");
    return false;
  }
  h->askpass = ccci_xasprintf("%s/askpass.sh", h->run_dir);
  r = ccci_write_file_atomic(h->askpass, script, strlen(script), 0700);
  if (r < 0) {
    *why = ccci_xasprintf("cannot write %s: %s", h->askpass, strerror(-r));
    return false;
  }
  setenv("GIT_ASKPASS", h->askpass, 1);
  setenv("CCCI_GIT_TOKEN_FILE", h->token_file, 1);
  return true;
}

static bool load_meta(struct h *h)
{
  char *op = NULL, *rf = ccci_xasprintf("%s/recipe_meta.yml", h->snapshot);
  char *errors = NULL;
  struct stat st;
  int r;
  if (h->overlays != NULL)
    op = ccci_xasprintf("%s/%s/recipe_meta.yml", h->overlays, h->recipe);
  if (stat(rf, &st) < 0) {
    free(rf);
    rf = NULL;
  }
  r = ccci_meta_load(op, rf, &h->meta, &errors);
  free(op);
  free(rf);
  if (r < 0) {
    ccci_meta_free(&h->meta); /* what the files set before the error */
    h->error = errors != NULL ? errors : ccci_xstrdup("bad recipe_meta.yml");
    ccci_hcall_printf("%s\n", h->error);
    return false;
  }
  free(errors);
  h->meta_loaded = true;
  return true;
}

static bool setup_apps(struct h *h)
{
  size_t i;
  if (h->meta.ndeps + 1 > MAX_APPS) {
    h->error = ccci_xasprintf("DEPS: at most %d dependencies", MAX_APPS - 1);
    return false;
  }
  for (i = 0; i < h->meta.ndeps; i++) {
    struct app *a = &h->apps[1 + i];
    size_t j;
    a->recipe = ccci_xstrdup(h->meta.deps[i].recipe);
    dep_domain(h, a);
    app_fill(h, a);
    for (j = 0; j < h->meta.deps[i].env.n; j++) {
      struct ccci_strmap *m = &a->env;
      m->keys = ccci_xrealloc(m->keys, (m->n + 1) * sizeof(char *));
      m->vals = ccci_xrealloc(m->vals, (m->n + 1) * sizeof(char *));
      m->keys[m->n] = ccci_xstrdup(h->meta.deps[i].env.keys[j]);
      m->vals[m->n] = ccci_xstrdup(h->meta.deps[i].env.vals[j]);
      m->n++;
    }
  }
  h->napps = 1 + h->meta.ndeps;
  return true;
}

/* The run's deadline on the monotonic clock: CCCI_DEADLINE_IN, capped by
 * TIMEOUT. */
static void set_deadline(struct h *h)
{
  const char *in = getenv("CCCI_DEADLINE_IN");
  uint64_t s, dl = 0;
  if (in != NULL && ccci_parse_u64(in, &s) == 0 && s > 0)
    dl = h->t0 + s * 1000;
  if (h->meta_loaded && h->meta.timeout_ms != 0 &&
      (dl == 0 || h->t0 + h->meta.timeout_ms < dl))
    dl = h->t0 + h->meta.timeout_ms;
  ccci_hcall_set_deadline(dl);
}

static void run_tiers(struct h *h)
{
  bool quick = h->quick;
  bool want[CCCI_TIER_COUNT];
  bool base_is_head;
  const char *why_head = NULL;
  size_t i;

  for (i = 0; i < CCCI_TIER_COUNT; i++)
    want[i] = !quick || i == CCCI_TIER_DEPLOY ||
              ccci_strlist_has(&h->meta.quick_tiers,
                               ccci_tier_name((enum ccci_tier)i));
  if (h->meta.upgrade_base_version != NULL)
    h->base_version = ccci_xstrdup(h->meta.upgrade_base_version);
  find_versions(h);
  base_is_head = quick || h->base_version == NULL ||
                 tier_unselected(h, CCCI_TIER_UPGRADE) != NULL;
  if (h->base_version == NULL)
    why_head = "no release tag before the PR head: the head was deployed as "
               "the base";
  if (base_is_head && h->base_version != NULL) {
    free(h->base_version);
    h->base_version = NULL;
  }
  tier_deploy(h, base_is_head);
  for (i = CCCI_TIER_UPGRADE; i < CCCI_TIER_COUNT; i++) {
    enum ccci_tier t = (enum ccci_tier)i;
    const char *skip = tier_unselected(h, t);
    if (t == CCCI_TIER_INSTALL && h->install_steps_why != NULL) {
      tier_install(h); /* records the hook's failure */
      continue;
    }
    if (!want[i])
      continue;
    if (stop_unreachable) {
      tier_begin(h, t);
      tier_end(h, t, CCCI_TS_ERROR, NULL); /* the reason names the server */
      continue;
    }
    if (interrupted()) {
      tier_skip(h, t,
                ccci_hcall_stopped() != 0 ? "the run was stopped"
                                          : "the run's deadline passed");
      continue;
    }
    if (!tier_passed(h, CCCI_TIER_DEPLOY)) {
      tier_skip(h, t, "the deploy tier did not pass");
      continue;
    }
    if (skip != NULL) {
      tier_skip(h, t, skip);
      continue;
    }
    if (h->install_steps_why != NULL) {
      tier_skip(h, t, "install_steps.sh failed (the install tier says why)");
      continue;
    }
    switch (t) {
    case CCCI_TIER_UPGRADE:
      if (why_head != NULL)
        tier_skip(h, t, why_head);
      else
        tier_upgrade(h);
      break;
    case CCCI_TIER_INSTALL:
      tier_install(h);
      break;
    case CCCI_TIER_BACKUP:
    case CCCI_TIER_RESTORE:
    case CCCI_TIER_CUSTOM:
      if (!tier_passed(h, CCCI_TIER_INSTALL) && want[CCCI_TIER_INSTALL] &&
          tier_unselected(h, CCCI_TIER_INSTALL) == NULL)
        tier_skip(h, t, "the install tier did not pass");
      else if (t == CCCI_TIER_RESTORE && !tier_passed(h, CCCI_TIER_BACKUP))
        tier_skip(h, t, "the backup tier did not pass");
      else if (t == CCCI_TIER_BACKUP)
        tier_backup(h);
      else if (t == CCCI_TIER_RESTORE)
        tier_restore(h);
      else
        tier_custom(h);
      break;
    default:
      break;
    }
  }
}

/* Say which files in @p dir (shown as @p shown) look like hook files but
 * are not used as any (`ccci meta check` refuses them). */
static void warn_misnamed(const char *dir, const char *shown)
{
  DIR *d = dir != NULL ? opendir(dir) : NULL;
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *why = e->d_name[0] != '.' ? ccci_hook_misnamed(e->d_name) : NULL;
    if (why != NULL)
      ccci_hcall_printf("warning: %s/%s\n", shown, why);
    free(why);
  }
  closedir(d);
}

/* The snapshot (docs/hooks.md): the recipe's tests/ and the operator's hook
 * files as they are at the run's start, and the hooks the run uses. */
static bool snapshot_tests(struct h *h, char **why)
{
  char *src = ccci_xasprintf("%s/tests", h->checkout), *err = NULL, *od;
  struct stat st;
  size_t k;
  int r;
  h->snap_dir = ccci_xasprintf("%s/snapshot", h->run_dir);
  h->snapshot = ccci_xasprintf("%s/tests", h->snap_dir);
  h->overlay_snap = ccci_xasprintf("%s/overlay", h->snap_dir);
  h->lib_dir = ccci_xasprintf("%s/lib", h->snap_dir);
  h->artifacts = ccci_xasprintf("%s/artifacts", h->run_dir);
  remove_tree(h->snap_dir);
  remove_tree(h->artifacts); /* an earlier attempt's */
  r = ccci_mkdir_p(h->artifacts, 0750);
  if (r == 0)
    r = ccci_mkdir_p(h->overlay_snap, 0750);
  if (r == 0)
    r = stat(src, &st) == 0 ? ccci_recipe_copy(src, h->snapshot, &err)
                            : ccci_mkdir_p(h->snapshot, 0750);
  free(src);
  if (r < 0) {
    *why = ccci_xasprintf("cannot snapshot the recipe's tests/: %s",
                          err != NULL ? err : strerror(-r));
    free(err);
    return false;
  }
  ccci_hcall_printf("tests/ of %.12s snapshotted to %s\n", h->sha, h->snapshot);
  od = h->overlays != NULL ? ccci_xasprintf("%s/%s", h->overlays, h->recipe)
                           : NULL;
  for (k = 0; k < CCCI_HOOK_COUNT && r == 0; k++) {
    const struct ccci_hook_info *hi = ccci_hook_info((enum ccci_hook)k);
    char *path = NULL;
    enum ccci_meta_source from =
        ccci_hook_find(od, h->snapshot, (enum ccci_hook)k, &path);
    if (from == CCCI_META_FROM_OPERATOR) {
      char *to = ccci_path_join(h->overlay_snap, hi->file);
      r = copy_one(path, to, why);
      free(path);
      path = to;
    }
    if (path != NULL && r == 0)
      ccci_hcall_printf("hook %s: the %s's (%s)\n", hi->file,
                        from == CCCI_META_FROM_OPERATOR ? "operator" : "recipe",
                        path);
    h->hook[k] = path;
  }
  if (r == 0)
    r = ccci_testlib_write(h->lib_dir, why);
  if (r == 0) {
    warn_misnamed(h->snapshot, "tests");
    warn_misnamed(od, od);
  }
  free(od);
  return r == 0;
}

/* Read opstate/deps back for --teardown. */
static void read_state(struct h *h)
{
  char *text = NULL, *line, *save = NULL;
  size_t len;
  if (h->opstate_f != NULL &&
      ccci_read_file(h->opstate_f, STATE_FILE_MAX, &text, &len) == 0) {
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
      if (strncmp(line, "domain ", 7) == 0 && h->apps[0].domain == NULL)
        h->apps[0].domain = ccci_xstrdup(line + 7);
      else if (strncmp(line, "server ", 7) == 0 && !h->server_flag) {
        /* The server the run used wins over today's config and
         * CCCI_SERVER: that is where its apps are. */
        free(h->server);
        h->server = ccci_xstrdup(line + 7);
      }
    }
  }
  free(text);
  text = NULL;
  h->napps = 1;
  if (h->deps_f != NULL &&
      ccci_read_file(h->deps_f, STATE_FILE_MAX * 4, &text, &len) == 0) {
    for (line = strtok_r(text, "\n", &save);
         line != NULL && h->napps < MAX_APPS;
         line = strtok_r(NULL, "\n", &save)) {
      char *sp = strchr(line, ' ');
      if (sp == NULL || strcmp(sp + 1, "cold") != 0)
        continue;
      h->apps[h->napps].domain = ccci_xstrndup(line, (size_t)(sp - line));
      h->apps[h->napps].recipe = ccci_xstrdup("");
      h->apps[h->napps].created = true;
      h->napps++;
    }
  }
  free(text);
}

static void h_free(struct h *h)
{
  size_t i;
  char **s[] = {&h->run_id,
                &h->recipe,
                &h->recipe_dir,
                &h->ref,
                &h->sha,
                &h->pr,
                &h->repo,
                &h->clone_url,
                &h->token_file,
                &h->abra_real,
                &h->overlays,
                &h->gateway,
                &h->results,
                &h->deploys_f,
                &h->opstate_f,
                &h->deps_f,
                &h->depskip_f,
                &h->run_dir,
                &h->abra_dir,
                &h->checkout,
                &h->snapshot,
                &h->askpass,
                &h->server,
                &h->base_version,
                &h->head_tag,
                &h->error,
                &h->snap_dir,
                &h->overlay_snap,
                &h->lib_dir,
                &h->artifacts,
                &h->install_steps_why,
                &h->shot,
                &h->server_f,
                &h->conn_pattern,
                &h->sticky,
                &h->unreachable};
  for (i = 0; i < CCCI_ARRAY_LEN(s); i++)
    free(*s[i]);
  for (i = 0; i < MAX_APPS; i++) {
    struct app *a = &h->apps[i];
    size_t j;
    free(a->recipe);
    free(a->domain);
    free(a->stack);
    free(a->envfile);
    for (j = 0; j < a->env.n; j++) {
      free(a->env.keys[j]);
      free(a->env.vals[j]);
    }
    free(a->env.keys);
    free(a->env.vals);
  }
  for (i = 0; i < CCCI_TIER_COUNT; i++)
    free(h->t[i].reason);
  for (i = 0; i < CCCI_HOOK_COUNT; i++)
    free(h->hook[i]);
  if (h->meta_loaded)
    ccci_meta_free(&h->meta);
  ccci_config_unref(h->cfg);
  free(backup_marker);
  backup_marker = NULL;
  stop_unreachable = false;
}

static int load_config(struct h *h, const char *config)
{
  char *errors = NULL;
  const char *path = config != NULL ? config : getenv("CCCI_CONFIG");
  int r;
  if (path == NULL || *path == '\0') {
    h->cfg = ccci_config_default();
    return 0;
  }
  r = ccci_config_load_file(path, &h->cfg, &errors);
  if (r < 0) {
    fprintf(stderr, "ccci harness: cannot read the config: %s\n",
            errors != NULL ? errors : strerror(-r));
    free(errors);
    return CCCI_HARNESS_EXIT_CONFIG;
  }
  free(errors);
  return 0;
}

/* The server's settings the daemon would pass: with `servers:` the
 * server's own domain_suffix and gateway, else harness.*; the daemon's
 * environment wins (CCCI_GATEWAY set, even empty: DNS). */
static int pick_server(struct h *h)
{
  const struct ccci_server_conf *sc;
  bool daemon = !h->standalone && getenv("CCCI_RUN_ID") != NULL;
  size_t i;

  if (getenv("CCCI_SERVER") == NULL && !h->server_flag &&
      h->cfg->harness.server != NULL) {
    free(h->server);
    h->server = ccci_xstrdup(h->cfg->harness.server);
  }
  sc = ccci_config_server(h->cfg, h->server);
  if (sc == NULL && h->cfg->servers.n > 0 && h->server_flag &&
      !h->teardown_only && !h->probe) {
    struct ccci_buf b;
    int code;
    ccci_buf_init(&b, 64 * 1024);
    for (i = 0; i < h->cfg->servers.n; i++)
      if (ccci_buf_printf(&b, "%s%s", i > 0 ? ", " : "",
                          h->cfg->servers.v[i].name) < 0)
        break;
    code = usage_error("--server %s is not one of the config's servers",
                       h->server);
    fprintf(stderr, "servers: %s\n", b.data != NULL ? b.data : "");
    ccci_buf_close(&b);
    return code;
  }
  if (daemon && getenv("CCCI_GATEWAY") != NULL)
    return 0; /* h->gateway is the daemon's (NULL when empty) */
  if (h->gateway == NULL) {
    const char *g = sc != NULL ? sc->gateway : h->cfg->harness.gateway;
    if (g != NULL) {
      h->gateway = ccci_xstrdup(g);
      h->gateway_insecure =
          sc != NULL ? sc->gateway_insecure : h->cfg->harness.gateway_insecure;
    }
  }
  return 0;
}

/* `ccci harness --probe`: the harness.abra.probe template once, through
 * the one call function (logged, timed out, matched). 0 reached; 1 a
 * connection error; 2 anything else. */
static int do_probe(struct h *h)
{
  struct ccci_hcall_result res;
  struct app none;
  uint64_t timeout;
  char *why;
  int code, r;

  the_cfg = h->cfg;
  code = pick_server(h);
  if (code != 0)
    return code;
  if (!ccci_valid_server_name(h->server))
    return usage_error("--probe: '%s' is not a server name", h->server);
  h->phase = PHASE_PROBE;
  /* The operator's abra state, as the daemon passes it (abra templates). */
  if (getenv("ABRA_DIR") == NULL || *getenv("ABRA_DIR") == '\0') {
    if (h->cfg->harness.abra_dir != NULL &&
        getenv("CCCI_ABRA_DIR_REAL") == NULL)
      setenv("ABRA_DIR", h->cfg->harness.abra_dir, 1);
    else
      setenv("ABRA_DIR", h->abra_real, 1);
  }
  if (ccci_hcall_init(NULL, NULL, 0) < 0) {
    fprintf(stderr, "ccci harness --probe: cannot start\n");
    return CCCI_HARNESS_EXIT_PROBE_FAILED;
  }
  memset(&none, 0, sizeof(none));
  timeout = h->cfg->pool.probe_timeout_ms != 0 ? h->cfg->pool.probe_timeout_ms
                                               : CALL_TIMEOUT_MS;
  r = call(h, "probe", &none, NULL, timeout, false, false, false, &res);
  if (r < 0) {
    ccci_hcall_close();
    fprintf(stderr,
            "ccci harness --probe: server %s: cannot start the "
            "probe: %s\n",
            h->server, strerror(-r));
    return CCCI_HARNESS_EXIT_PROBE_FAILED;
  }
  if (ccci_hcall_ok(&res)) {
    ccci_hcall_printf("server %s reached\n", h->server);
    code = CCCI_HARNESS_EXIT_OK;
  } else if (res.matched != NULL) {
    code = CCCI_HARNESS_EXIT_PROBE_UNREACHABLE;
  } else {
    code = CCCI_HARNESS_EXIT_PROBE_FAILED;
  }
  ccci_hcall_close();
  if (code == CCCI_HARNESS_EXIT_PROBE_UNREACHABLE) {
    fprintf(stderr, "server %s unreachable: %s\n", h->server, res.matched);
  } else if (code != CCCI_HARNESS_EXIT_OK) {
    why = ccci_hcall_why(&res, "the probe");
    fprintf(stderr, "ccci harness --probe: server %s: %s\n", h->server, why);
    free(why);
  }
  ccci_hcall_result_free(&res);
  return code;
}

static int do_teardown(struct h *h)
{
  size_t i;
  int code;
  read_state(h);
  read_server(h);
  if (h->apps[0].domain == NULL) {
    ccci_hcall_printf("ccci harness --teardown: no domain (CCCI_DOMAIN or "
                      "the opstate file): nothing to tear down\n");
    return CCCI_HARNESS_EXIT_OK;
  }
  h->apps[0].recipe = ccci_xstrdup(nz(h->recipe));
  h->apps[0].created = true;
  for (i = 0; i < h->napps; i++)
    app_fill(h, &h->apps[i]);
  teardown(h);
  code = h->teardown_clean && h->secrets_clean ? CCCI_HARNESS_EXIT_OK
                                               : CCCI_HARNESS_EXIT_FAILED;
  if (code == CCCI_HARNESS_EXIT_OK)
    remove_abra_dir(h);
  return code;
}

int ccci_harness_main(int argc, char **argv, const char *config)
{
  struct h h;
  char *why = NULL;
  int code, r, sig;
  size_t i;

  memset(&h, 0, sizeof(h));
  h.upto = -1;
  h.t0 = ccci_now_ms();
  h.started = time(NULL);
  r = parse_args(&h, argc, argv);
  if (r != 0) {
    h_free(&h);
    return r < 0 ? CCCI_HARNESS_EXIT_OK : r;
  }
  setup_env(&h);
  if (h.probe) {
    code = h.run_flags > 0 ? usage_error("%s", "--probe takes only --server S")
                           : load_config(&h, config);
    if (code == 0)
      code = do_probe(&h);
    h_free(&h);
    return code;
  }
  if (!h.teardown_only && h.recipe_dir == NULL) {
    h_free(&h);
    return usage_error("%s", "no recipe: --recipe DIR or CCCI_RECIPE_DIR");
  }
  code = load_config(&h, config);
  if (code != 0) {
    h_free(&h);
    return code;
  }
  the_cfg = h.cfg;
  h.teardown_grace_ms = h.cfg->teardown_grace_ms;
  code = pick_server(&h);
  if (code != 0) {
    h_free(&h);
    return code;
  }
  if (h.overlays == NULL && h.cfg->harness.overlays_dir != NULL)
    h.overlays = ccci_xstrdup(h.cfg->harness.overlays_dir);
  if (h.token_file == NULL && h.cfg->harness.git_token_file != NULL)
    h.token_file = ccci_xstrdup(h.cfg->harness.git_token_file);
  if (getenv("CCCI_ABRA_DIR_REAL") == NULL && h.cfg->harness.abra_dir != NULL) {
    free(h.abra_real);
    h.abra_real = ccci_xstrdup(h.cfg->harness.abra_dir);
  }
  {
    const char *g = getenv("CCCI_TEARDOWN_GRACE_S");
    uint64_t s;
    if (g != NULL && ccci_parse_u64(g, &s) == 0)
      h.teardown_grace_ms = s * 1000;
  }
  code = setup_dirs(&h);
  if (code != 0) {
    h_free(&h);
    return code;
  }
  if (h.run_id == NULL) /* standalone: the run dir names the run */
    h.run_id = base_name(h.run_dir);
  if (h.standalone && !h.teardown_only && opstate_deployed(h.opstate_f)) {
    fprintf(stderr,
            "ccci harness: an earlier run's deployment is still up (kept with "
            "--keep, or its teardown failed); remove it first with: ccci "
            "harness --teardown --recipe %s%s%s\n",
            h.recipe_dir, h.run_dir != NULL ? " --run-dir " : "",
            nz(h.run_dir));
    h_free(&h);
    return CCCI_HARNESS_EXIT_FAILED;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
      ccci_hcall_init(NULL, NULL, 0) < 0) {
    fprintf(stderr, "ccci harness: cannot start\n");
    h_free(&h);
    return CCCI_HARNESS_EXIT_FAILED;
  }
  setenv("GIT_TERMINAL_PROMPT", "0", 1);
  if (h.teardown_only) {
    code = do_teardown(&h);
    goto done;
  }
  {
    char *abs = abs_path(h.recipe_dir);
    free(h.recipe_dir);
    h.recipe_dir = abs;
  }
  if (h.recipe == NULL)
    h.recipe = base_name(h.recipe_dir);
  if (h.apps[0].domain == NULL) {
    const struct ccci_server_conf *sc = ccci_config_server(h.cfg, h.server);
    h.apps[0].domain = ccci_xasprintf(
        "%s-local.%s", h.recipe,
        sc != NULL ? sc->domain_suffix : h.cfg->harness.domain_suffix);
  }
  h.apps[0].recipe = ccci_xstrdup(h.recipe);
  app_fill(&h, &h.apps[0]);
  h.napps = 1;
  h.checkout = ccci_xasprintf("%s/recipes/%s", h.abra_dir, h.recipe);
  ccci_hcall_printf("ccci harness: recipe %s, domain %s, server %s, run dir "
                    "%s\n",
                    h.recipe, h.apps[0].domain, h.server, h.run_dir);
  write_opstate(&h, false);
  write_server(&h); /* an earlier attempt's counts go */
  /* No deploys file until the first deploy: a run that never deployed has
   * none, so the daemon does not check its budget (SPEC section 4) and a
   * bad recipe_meta.yml is a failure, not deploy-budget. An earlier
   * attempt's file goes. */
  if (unlink(h.deploys_f) < 0 && errno != ENOENT)
    ccci_hcall_printf("cannot remove %s: %s\n", h.deploys_f, strerror(errno));
  state_write(h.deps_f, "");
  if (!make_askpass(&h, &why) || !link_servers(&h, &why) ||
      !checkout(&h, &why) || !snapshot_tests(&h, &why) ||
      !place_compose(&h, &why)) {
    h.error = why;
    why = NULL;
    ccci_hcall_printf("ccci harness: %s\n", h.error);
    goto finish;
  }
  if (!load_meta(&h) || !setup_apps(&h))
    goto finish;
  set_deadline(&h);
  run_tiers(&h);
finish:
  sig = ccci_hcall_stopped();
  if (sig != 0) {
    /* Stopped: the results so far first, in case teardown is cut short. */
    free(h.error);
    h.error =
        ccci_xasprintf("stopped by %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    write_results(&h);
  } else if (h.unreachable != NULL && h.error == NULL) {
    h.error = ccci_xstrdup(h.unreachable);
    write_results(&h);
  }
  if (!h.keep)
    teardown(&h);
  else
    ccci_hcall_printf("--keep: the deployment stays; tear it down with: ccci "
                      "harness --teardown --run-dir %s\n",
                      h.run_dir);
  sig = ccci_hcall_stopped();
  if (sig != 0 && h.error == NULL)
    h.error =
        ccci_xasprintf("stopped by %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
  if (h.unreachable != NULL && h.error == NULL)
    h.error = ccci_xstrdup(h.unreachable); /* teardown could not reach it */
  write_results(&h);
  if (!h.keep && h.teardown_clean && h.secrets_clean)
    remove_abra_dir(&h);
  if (sig != 0) {
    code = 128 + sig;
  } else if (h.unreachable != NULL) {
    /* Not the recipe's failure: the server could not be reached. */
    code = CCCI_HARNESS_EXIT_UNREACHABLE;
    ccci_hcall_printf("%s: exit %d (not a recipe failure)\n", h.unreachable,
                      code);
  } else if (h.noexec) {
    code = CCCI_HARNESS_EXIT_NOEXEC;
  } else {
    code = h.error != NULL ? CCCI_HARNESS_EXIT_FAILED : CCCI_HARNESS_EXIT_OK;
    for (i = 0; i < CCCI_TIER_COUNT; i++)
      if (ccci_tier_status_failed(h.t[i].st))
        code = CCCI_HARNESS_EXIT_FAILED;
    /* Never leave a deployment behind quietly: a teardown that left
     * something fails the run (its invariants say what). */
    if (!h.keep && !(h.teardown_clean && h.secrets_clean)) {
      ccci_hcall_printf("teardown left %s behind: the run fails; `ccci "
                        "harness --teardown` removes the rest\n",
                        !h.teardown_clean ? "parts of the deployment"
                                          : "secrets");
      code = CCCI_HARNESS_EXIT_FAILED;
    }
  }
  print_tiers(&h);
  {
    int level = level_of(&h);
    ccci_hcall_printf("level %s (%s); results in %s\n", ccci_level_text(level),
                      ccci_level_name(level), h.results);
  }
done:
  ccci_hcall_close();
  curl_global_cleanup();
  free(why);
  h_free(&h);
  return code;
}
