/* The command-line commands: each takes the global options and its own
 * arguments and returns the process exit code. */
#include "ccci/ctl/cli.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "ccci/core/config.h"
#include "ccci/ctl/client.h"
#include "ccci/ctl/proto.h"
#include "ccci/harness/harness.h"
#include "ccci/logs/redact.h"
#include "ccci/logs/secrets.h"
#include "ccci/runs/levels.h"
#include "ccci/runs/outcome.h"
#include "ccci/runs/results.h"
#include "ccci/runs/run.h"
#include "ccci/runs/supervise.h"

/* How long a client waits for a one-shot reply. */
#define REPLY_TIMEOUT_MS 30000

int ccci_cmd_supervise(const struct ccci_cli *cli, int argc, char **argv)
{
  (void)cli;
  return ccci_supervise_main(argc, argv);
}

int ccci_cmd_harness(const struct ccci_cli *cli, int argc, char **argv)
{
  if (cli->json)
    return ccci_cli_usage_error("'harness' writes results.json; it has no "
                                "--json output");
  return ccci_harness_main(argc, argv, cli->config);
}

int ccci_cli_usage_error(const char *fmt, ...)
{
  va_list ap;
  fputs("ccci: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("; see 'ccci --help'\n", stderr);
  return CCCI_EXIT_USAGE;
}

int ccci_cli_no_args(const char *cmd, int argc, char **argv)
{
  if (argc > 0)
    return ccci_cli_usage_error("'%s' takes no argument '%s'", cmd, argv[0]);
  return 0;
}

/* The daemon's socket: -s, else $CCCI_SOCKET, else the config's. */
static char *find_socket(const struct ccci_cli *cli)
{
  const char *env = getenv("CCCI_SOCKET");
  struct ccci_config *cfg = NULL;
  char *path, *errors = NULL;

  if (cli->socket != NULL)
    return ccci_xstrdup(cli->socket);
  if (env != NULL && env[0] != '\0')
    return ccci_xstrdup(env);
  path = cli->config != NULL ? ccci_xstrdup(cli->config)
                             : ccci_config_default_path();
  if (path == NULL) {
    cfg = ccci_config_default();
  } else if (ccci_config_load_file(path, &cfg, &errors) < 0) {
    fprintf(stderr, "%sccci: cannot find the daemon's socket: %s has errors\n",
            errors, path);
    free(errors);
    free(path);
    return NULL;
  }
  free(path);
  path = ccci_xstrdup(cfg->socket);
  ccci_config_unref(cfg);
  return path;
}

/* Send one request and wait for its reply; prints errors itself. */
static int call(const struct ccci_cli *cli, json_t *req, json_t **reply)
{
  struct ccci_client c;
  char *sock = find_socket(cli), *err = NULL;
  int r;

  *reply = NULL;
  if (sock == NULL) {
    json_decref(req);
    return CCCI_EXIT_DAEMON;
  }
  r = ccci_client_connect(&c, sock, &err);
  if (r == 0)
    r = ccci_client_send(&c, req, &err);
  if (r == 0)
    r = ccci_client_recv(&c, reply, REPLY_TIMEOUT_MS, &err);
  ccci_client_close(&c);
  json_decref(req);
  free(sock);
  if (r < 0) {
    fprintf(stderr, "ccci: %s\n", err);
    free(err);
    return CCCI_EXIT_DAEMON;
  }
  if (!json_is_true(json_object_get(*reply, "ok"))) {
    json_t *e = json_object_get(*reply, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    fprintf(stderr, "ccci: %s\n",
            json_string_value(json_object_get(e, "message")));
    r = CCCI_EXIT_DAEMON;
    /* No such run, or no such server: the thing named does not exist. */
    if (code != NULL && (strcmp(code, "no-such-run") == 0 ||
                         strcmp(code, CCCI_E_NO_SUCH_SERVER) == 0))
      r = CCCI_EXIT_NO_SUCH_RUN;
    else if (code != NULL && strcmp(code, "refused") == 0)
      r = CCCI_EXIT_FAILED;
    json_decref(*reply);
    *reply = NULL;
    return r;
  }
  return CCCI_EXIT_OK;
}

static json_t *request(const char *op)
{
  return json_pack("{s:i,s:s}", "v", CCCI_PROTO_VERSION, "op", op);
}

static void print_json(const json_t *j)
{
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s != NULL)
    printf("%s\n", s);
  free(s);
}

static void print_value(const char *indent, const char *key, const json_t *v,
                        int width)
{
  char *s;
  if (json_is_string(v)) {
    printf("%s%-*s %s\n", indent, width, key, json_string_value(v));
    return;
  }
  if (json_is_array(v) && json_array_size(v) == 0) {
    printf("%s%-*s none\n", indent, width, key);
    return;
  }
  s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  printf("%s%-*s %s\n", indent, width, key, s ? s : "?");
  free(s);
}

static void print_object(const char *indent, const json_t *obj)
{
  const char *key;
  json_t *v;
  int width = 0;

  json_object_foreach((json_t *)obj, key, v)
  {
    int l = (int)strlen(key);
    if (!json_is_object(v) && l > width)
      width = l;
  }
  json_object_foreach((json_t *)obj, key, v)
  {
    if (strcmp(key, "ok") == 0)
      continue;
    if (json_is_object(v)) {
      char sub[32];
      printf("%s%s:\n", indent, key);
      snprintf(sub, sizeof(sub), "%s  ", indent);
      print_object(sub, v);
    } else {
      print_value(indent, key, v, width);
    }
  }
}

/* The NOTE column of a server: removed, the next probe, the last error. */
static void server_note(const json_t *s, char *out, size_t n)
{
  json_t *next = json_object_get(s, "next_probe_in_ms");
  const char *err = json_string_value(json_object_get(s, "last_error"));
  size_t len = 0;

  out[0] = '\0';
  if (json_is_true(json_object_get(s, "removed")))
    len += (size_t)snprintf(out + len, n - len, "removed");
  if (json_is_integer(next) && len < n) {
    json_int_t sec = (json_integer_value(next) + 999) / 1000;
    if (sec < 60)
      len += (size_t)snprintf(out + len, n - len, "%sprobe in %llds",
                              len > 0 ? "; " : "", (long long)sec);
    else
      len += (size_t)snprintf(out + len, n - len, "%sprobe in %lldm%02llds",
                              len > 0 ? "; " : "", (long long)(sec / 60),
                              (long long)(sec % 60));
  }
  if (err != NULL && len < n)
    snprintf(out + len, n - len, "%s%s", len > 0 ? "; " : "", err);
}

/* The labels of a server joined by commas ("-" for none), in @p b. */
static const char *server_labels(const json_t *s, struct ccci_buf *b)
{
  json_t *l;
  size_t i;
  int r = 0;
  b->len = 0;
  json_array_foreach(json_object_get(s, "labels"), i, l)
  {
    if (r == 0)
      r = json_is_string(l) ? ccci_buf_printf(b, "%s%s", i > 0 ? "," : "",
                                              json_string_value(l))
                            : 0;
  }
  return r == 0 && b->len > 0 ? b->data : "-";
}

static const char *name_of(const json_t *s)
{
  const char *n = json_string_value(json_object_get(s, "name"));
  return n != NULL ? n : "?";
}

static const char *yes_no(const json_t *s, const char *key)
{
  return json_is_true(json_object_get(s, key)) ? "yes" : "no";
}

/* The pool as a table (`ccci server ls`, `status`), each line after
 * @p indent. */
static void print_servers(const char *indent, const json_t *servers)
{
  struct ccci_buf b;
  json_t *s;
  size_t i;
  int nw = 4, lw = 6;
  char note[512];

  ccci_buf_init(&b, SIZE_MAX);
  json_array_foreach(servers, i, s)
  {
    int l = (int)strlen(name_of(s));
    nw = l > nw ? l : nw;
    l = (int)strlen(server_labels(s, &b));
    lw = l > lw ? l : lw;
  }
  printf("%s%-*s %8s %7s %6s %-7s %-7s %-*s NOTE\n", indent, nw, "NAME",
         "CAPACITY", "RUNNING", "QUEUED", "HEALTHY", "DRAINED", lw, "LABELS");
  json_array_foreach(servers, i, s)
  {
    server_note(s, note, sizeof(note));
    /* No padding after the last column when there is no note. */
    printf("%s%-*s %8lld %7lld %6lld %-7s %-7s %-*s%s%s\n", indent, nw,
           name_of(s),
           (long long)json_integer_value(json_object_get(s, "capacity")),
           (long long)json_integer_value(json_object_get(s, "running")),
           (long long)json_integer_value(json_object_get(s, "queued")),
           yes_no(s, "healthy"), yes_no(s, "drained"), note[0] != '\0' ? lw : 0,
           server_labels(s, &b), note[0] != '\0' ? " " : "", note);
  }
  ccci_buf_close(&b);
}

int ccci_cmd_status(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *reply;
  int r = ccci_cli_no_args("status", argc, argv);

  if (r != 0)
    return r;
  r = call(cli, request("status"), &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  if (cli->json) {
    json_object_del(reply, "ok");
    print_json(reply);
  } else {
    json_t *servers = json_incref(json_object_get(reply, "servers"));
    json_object_del(reply, "servers");
    print_object("", reply);
    if (servers != NULL) {
      printf("servers:\n");
      print_servers("  ", servers);
    }
    json_decref(servers);
  }
  json_decref(reply);
  return CCCI_EXIT_OK;
}

static int config_check(const struct ccci_cli *cli, const char *file)
{
  struct ccci_config *cfg;
  char *errors = NULL;

  if (ccci_config_load_file(file, &cfg, &errors) < 0) {
    fputs(errors, stderr);
    free(errors);
    return CCCI_EXIT_FAILED;
  }
  if (cli->json) {
    json_t *j = ccci_config_to_json(cfg);
    print_json(j);
    json_decref(j);
  } else {
    char *text = ccci_config_dump(cfg);
    fputs(text, stdout);
    free(text);
  }
  ccci_config_unref(cfg);
  return CCCI_EXIT_OK;
}

int ccci_cmd_config(const struct ccci_cli *cli, int argc, char **argv)
{
  if (argc < 1)
    return ccci_cli_usage_error("'config' needs 'check FILE' or 'docs'");
  if (strcmp(argv[0], "check") == 0) {
    if (argc != 2)
      return ccci_cli_usage_error("usage: ccci config check FILE");
    return config_check(cli, argv[1]);
  }
  if (strcmp(argv[0], "docs") == 0) {
    char *doc;
    if (argc != 1)
      return ccci_cli_usage_error("usage: ccci config docs");
    doc = ccci_config_docs();
    fputs(doc, stdout);
    free(doc);
    return CCCI_EXIT_OK;
  }
  return ccci_cli_usage_error("unknown 'config' command '%s' (check, docs)",
                              argv[0]);
}

int ccci_cmd_version(const struct ccci_cli *cli, int argc, char **argv)
{
  int r = ccci_cli_no_args("version", argc, argv);
  if (r != 0)
    return r;
  if (cli->json)
    printf("{\"version\": \"%s\"}\n", CCCI_VERSION);
  else
    printf("ccci %s\n", CCCI_VERSION);
  return CCCI_EXIT_OK;
}

/* Write all of @p p to stdout; false when stdout is gone. */
static bool write_out(const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

struct redact_opts {
  const char *dir;
  bool dir_given;
  const char **files;
  size_t nfiles;
  uint64_t min_len;
  const char *mask;
};

static int redact_args(int argc, char **argv, struct redact_opts *o)
{
  int i;
  for (i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--secrets-dir") != 0 && strcmp(a, "--secret-file") != 0 &&
        strcmp(a, "--min-len") != 0 && strcmp(a, "--mask") != 0)
      return ccci_cli_usage_error("'redact' has no option '%s'", a);
    if (v == NULL)
      return ccci_cli_usage_error("option %s needs a value", a);
    i++;
    if (strcmp(a, "--secrets-dir") == 0) {
      o->dir = v;
      o->dir_given = true;
    } else if (strcmp(a, "--secret-file") == 0) {
      o->files = ccci_xrealloc(o->files, (o->nfiles + 1) * sizeof(char *));
      o->files[o->nfiles++] = v;
    } else if (strcmp(a, "--min-len") == 0) {
      if (ccci_parse_u64(v, &o->min_len) < 0 || o->min_len < 1 ||
          o->min_len > 4096)
        return ccci_cli_usage_error("--min-len takes an integer from 1 to "
                                    "4096, not '%s'",
                                    v);
    } else {
      if (v[0] == '\0')
        return ccci_cli_usage_error("--mask must not be empty");
      o->mask = v;
    }
  }
  return 0;
}

/* Load the secrets and build the set; prints problems itself. */
static int redact_set(const struct redact_opts *o, struct ccci_redact_set **set)
{
  struct ccci_secrets sec;
  struct ccci_redact_value *vals;
  char *err = NULL;
  size_t i;
  int r;

  r = ccci_secrets_load(o->dir, !o->dir_given, o->files, o->nfiles, &sec, &err);
  if (r < 0) {
    fprintf(stderr, "ccci: %s (nothing is filtered until it can be read)\n",
            err);
    free(err);
    return CCCI_EXIT_NOT_OK;
  }
  for (i = 0; i < sec.nwarnings; i++)
    fprintf(stderr, "ccci: warning: %s\n", sec.warnings[i]);
  vals = ccci_xcalloc(sec.n ? sec.n : 1, sizeof(*vals));
  for (i = 0; i < sec.n; i++) {
    if (sec.v[i].len < o->min_len)
      fprintf(stderr,
              "ccci: warning: the secret in %s is shorter than %llu bytes; "
              "it is not masked\n",
              sec.v[i].path, (unsigned long long)o->min_len);
    vals[i].data = sec.v[i].value;
    vals[i].len = sec.v[i].len;
  }
  r = ccci_redact_set_new(vals, sec.n, (size_t)o->min_len, set);
  free(vals);
  ccci_secrets_free(&sec);
  if (r < 0) {
    fprintf(stderr, "ccci: cannot build the secret patterns: %s\n",
            strerror(-r));
    return CCCI_EXIT_NOT_OK;
  }
  return 0;
}

int ccci_cmd_redact(const struct ccci_cli *cli, int argc, char **argv)
{
  struct redact_opts o = {"/run/secrets",      false,           NULL, 0,
                          CCCI_REDACT_MIN_LEN, CCCI_REDACT_MASK};
  struct ccci_redact_set *set = NULL;
  struct ccci_redact *f;
  static char buf[65536];
  const char *out;
  size_t len;
  int r;

  if (cli->json)
    return ccci_cli_usage_error("'redact' writes the filtered input; it has "
                                "no --json output");
  r = redact_args(argc, argv, &o);
  if (r == 0)
    r = redact_set(&o, &set);
  free(o.files);
  if (r != 0)
    return r;
  f = ccci_redact_new(set, o.mask);
  ccci_redact_set_unref(set);
  r = CCCI_EXIT_OK;
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fprintf(stderr, "ccci: cannot read standard input: %s\n",
              strerror(errno));
      r = CCCI_EXIT_FAILED;
      break;
    }
    if (n == 0)
      break;
    if (ccci_redact_feed(f, buf, (size_t)n, &out, &len) < 0 ||
        !write_out(out, len)) {
      r = CCCI_EXIT_FAILED;
      break;
    }
  }
  if (r == CCCI_EXIT_OK &&
      (ccci_redact_finish(f, &out, &len) < 0 || !write_out(out, len)))
    r = CCCI_EXIT_FAILED;
  explicit_bzero(buf, sizeof(buf));
  ccci_redact_free(f);
  return r;
}

int ccci_cmd_submit(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *req = request("submit"), *reply;
  const char *dir = NULL;
  char abs[PATH_MAX];
  int i, r;

  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    uint64_t pr;
    if (strcmp(a, "--quick") == 0) {
      json_object_set_new(req, "quick", json_true());
    } else if ((strcmp(a, "--ref") == 0 || strcmp(a, "--pr") == 0) &&
               i + 1 < argc) {
      if (a[2] == 'r' && a[3] == 'e') {
        json_object_set_new(req, "ref", json_string(argv[++i]));
      } else if (ccci_parse_u64(argv[++i], &pr) < 0 || pr == 0 ||
                 pr > INT32_MAX) {
        json_decref(req);
        return ccci_cli_usage_error("--pr takes a positive integer, not '%s'",
                                    argv[i]);
      } else {
        json_object_set_new(req, "pr", json_integer((json_int_t)pr));
      }
    } else if (a[0] == '-' || dir != NULL) {
      json_decref(req);
      return ccci_cli_usage_error("usage: ccci submit DIR [--ref REF] "
                                  "[--pr N] [--quick]");
    } else {
      dir = a;
    }
  }
  if (dir == NULL) {
    json_decref(req);
    return ccci_cli_usage_error("usage: ccci submit DIR [--ref REF] [--pr N] "
                                "[--quick]");
  }
  if (realpath(dir, abs) == NULL) {
    fprintf(stderr, "ccci: cannot use %s: %s\n", dir, strerror(errno));
    json_decref(req);
    return CCCI_EXIT_USAGE;
  }
  json_object_set_new(req, "dir", json_string(abs));
  r = call(cli, req, &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  if (cli->json) {
    json_object_del(reply, "ok");
    print_json(reply);
  } else {
    printf("%s\n", json_string_value(json_object_get(reply, "id")));
  }
  json_decref(reply);
  return CCCI_EXIT_OK;
}

/* One run id argument, sent as "id" with @p op. */
static int run_op(const struct ccci_cli *cli, const char *op, int argc,
                  char **argv, json_t **reply)
{
  json_t *req;
  if (argc != 1 || argv[0][0] == '-')
    return ccci_cli_usage_error("usage: ccci %s RUN", op);
  req = request(op);
  json_object_set_new(req, "id", json_string(argv[0]));
  return call(cli, req, reply);
}

/* The artifacts of @p res (the run's list, then each tier's not in it),
 * as paths under the run directory @p dir. */
static void show_artifacts(const char *dir, const struct ccci_results *res)
{
  struct ccci_results_artifacts all = res->artifacts;
  size_t i, k, j;
  for (i = 0; i < res->ntiers; i++)
    for (k = 0; k < res->tiers[i].artifacts.n; k++) {
      const char *p = res->tiers[i].artifacts.path[k];
      bool seen = false;
      for (j = 0; j < all.n && !seen; j++)
        seen = strcmp(all.path[j], p) == 0;
      if (!seen && all.n < CCCI_RESULTS_ARTIFACTS_MAX)
        all.path[all.n++] = (char *)p; /* borrowed from res */
    }
  if (all.n == 0)
    return;
  printf("artifacts:\n");
  for (i = 0; i < all.n; i++)
    printf("  %s/%s\n", dir, all.path[i]);
}

/* The level (as the forge reporter states it) with the line explaining it,
 * the tier table and the artifacts of the results.json in @p dir of a run
 * that ended with @p rs (NULL: running). The CLI runs on the daemon's
 * machine, so it reads the file itself. */
static void show_results(const char *dir, const char *rs)
{
  enum ccci_run_reason reason = CCCI_REASON_NONE;
  struct ccci_results res;
  char why[CCCI_LEVEL_EXPLAIN_MAX];
  char *path;
  size_t i;
  int level;
  if (dir == NULL)
    return;
  path = ccci_xasprintf("%s/results.json", dir);
  if (ccci_results_read(path, &res) == 0 && res.ntiers > 0) {
    if (rs != NULL && ccci_run_reason_parse(rs, &reason) == 0) {
      level = ccci_outcome_level(reason, &res);
      ccci_results_explain(&res, level, why);
      if (level >= 0)
        printf("level            %s (%s)\n", ccci_level_text(level),
               ccci_level_name(level));
      else
        printf("level            none (reason %s)\n", rs);
      if (why[0] != '\0')
        printf("why              %s\n", why);
    }
    printf("tiers:\n");
    for (i = 0; i < res.ntiers; i++) {
      const struct ccci_results_tier *t = &res.tiers[i];
      char dur[32] = "";
      if (t->duration_s >= 0)
        snprintf(dur, sizeof(dur), "%.1fs", t->duration_s);
      printf("  %-8s %-9s %7s%s%s\n", t->name, t->status, dur,
             t->reason != NULL ? "  " : "", t->reason != NULL ? t->reason : "");
    }
    if (res.error != NULL)
      printf("error            %s\n", res.error);
    show_artifacts(dir, &res);
  }
  ccci_results_clear(&res);
  free(path);
}

int ccci_cmd_show(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *reply, *run, *steps, *st;
  enum ccci_run_reason reason = CCCI_REASON_NONE;
  const char *rs;
  size_t i;
  int r = run_op(cli, "show", argc, argv, &reply);

  if (r != CCCI_EXIT_OK)
    return r;
  run = json_object_get(reply, "run");
  if (cli->json) {
    print_json(run);
  } else {
    json_t *copy = json_copy(run);
    json_object_del(copy, "steps");
    print_object("", copy);
    json_decref(copy);
    steps = json_object_get(run, "steps");
    printf("steps:\n");
    json_array_foreach(steps, i, st)
    {
      printf("  %3lld %-32s %8lld lines %10lld bytes%s\n",
             (long long)json_integer_value(json_object_get(st, "n")),
             json_string_value(json_object_get(st, "name")),
             (long long)json_integer_value(json_object_get(st, "lines")),
             (long long)json_integer_value(json_object_get(st, "bytes")),
             json_is_true(json_object_get(st, "open")) ? "  (open)" : "");
    }
    show_results(json_string_value(json_object_get(run, "dir")),
                 json_string_value(json_object_get(run, "reason")));
  }
  rs = json_string_value(json_object_get(run, "reason"));
  if (rs == NULL || ccci_run_reason_parse(rs, &reason) < 0)
    r = CCCI_EXIT_UNFINISHED;
  else
    r = ccci_run_reason_exit(reason);
  json_decref(reply);
  return r;
}

int ccci_cmd_cancel(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *reply;
  int r = run_op(cli, "cancel", argc, argv, &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  if (cli->json)
    printf("{\"cancelled\": \"%s\"}\n", argv[0]);
  json_decref(reply);
  return CCCI_EXIT_OK;
}

int ccci_cmd_ps(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *req = request("ps"), *reply, *runs, *run;
  size_t i;
  int k, r;

  for (k = 0; k < argc; k++) {
    if ((strcmp(argv[k], "--state") == 0 || strcmp(argv[k], "--recipe") == 0) &&
        k + 1 < argc) {
      json_object_set_new(req, argv[k] + 2, json_string(argv[k + 1]));
      k++;
    } else {
      json_decref(req);
      return ccci_cli_usage_error("usage: ccci ps [--state S] [--recipe R]");
    }
  }
  r = call(cli, req, &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  runs = json_object_get(reply, "runs");
  if (cli->json) {
    print_json(runs);
  } else {
    printf("%-19s %6s %-24s %-12s %-13s %-20s %s\n", "ID", "NUMBER", "RECIPE",
           "STATE", "REASON", "CREATED", "NOTE");
    json_array_foreach(runs, i, run)
    {
      const char *reason = json_string_value(json_object_get(run, "reason"));
      const char *note = json_string_value(json_object_get(run, "note"));
      printf("%-19s %6lld %-24s %-12s %-13s %-20s %s\n",
             json_string_value(json_object_get(run, "id")),
             (long long)json_integer_value(json_object_get(run, "number")),
             json_string_value(json_object_get(run, "recipe")),
             json_string_value(json_object_get(run, "state")),
             reason ? reason : "-",
             json_string_value(json_object_get(run, "created_at")),
             note ? note : "");
    }
  }
  json_decref(reply);
  return CCCI_EXIT_OK;
}

/* The exit code and result line of a tail's end message. */
static int tail_end(const json_t *m)
{
  const char *state = json_string_value(json_object_get(m, "state"));
  const char *reason = json_string_value(json_object_get(m, "reason"));
  json_t *code = json_object_get(m, "exit_code");
  enum ccci_run_reason rr;

  if (state == NULL || strcmp(state, "finished") != 0 || reason == NULL ||
      ccci_run_reason_parse(reason, &rr) < 0) {
    fprintf(stderr, "ccci: the run is %s (not finished)\n",
            state != NULL ? state : "in an unknown state");
    return CCCI_EXIT_UNFINISHED;
  }
  if (json_is_integer(code))
    fprintf(stderr, "ccci: finished: %s (exit %lld)\n", reason,
            (long long)json_integer_value(code));
  else
    fprintf(stderr, "ccci: finished: %s\n", reason);
  return ccci_run_reason_exit(rr);
}

/* Print one stream message; returns -1 to go on, else the exit code. */
static int tail_print(const struct ccci_cli *cli, const json_t *m)
{
  const char *type = json_string_value(json_object_get(m, "type"));
  json_t *out;

  if (cli->json) {
    char *s = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL)
      printf("%s\n", s);
    free(s);
  }
  if (type == NULL)
    return -1;
  if (strcmp(type, "end") == 0)
    return tail_end(m);
  if (cli->json)
    return -1;
  if (strcmp(type, "step") == 0) {
    printf("--- step %lld: %s ---\n",
           (long long)json_integer_value(json_object_get(m, "n")),
           json_string_value(json_object_get(m, "name")));
  } else if (strcmp(type, "line") == 0) {
    out = json_object_get(json_object_get(m, "line"), "out");
    fwrite(json_string_value(out), 1, json_string_length(out), stdout);
  }
  return -1;
}

int ccci_cmd_tail(const struct ccci_cli *cli, int argc, char **argv)
{
  static const char usage[] =
      "usage: ccci tail RUN [--step S] [--from N] [--no-follow] [--json]";
  json_t *req = request("tail"), *m = NULL;
  struct ccci_client c;
  char *sock, *err = NULL;
  const char *id = NULL;
  uint64_t n;
  int k, r;

  for (k = 0; k < argc; k++) {
    if (strcmp(argv[k], "--no-follow") == 0) {
      json_object_set_new(req, "follow", json_false());
    } else if (strcmp(argv[k], "--step") == 0 && k + 1 < argc) {
      k++;
      json_object_set_new(req, "step",
                          ccci_parse_u64(argv[k], &n) == 0
                              ? json_integer((json_int_t)n)
                              : json_string(argv[k]));
    } else if (strcmp(argv[k], "--from") == 0 && k + 1 < argc) {
      k++;
      if (ccci_parse_u64(argv[k], &n) < 0 || n > INT64_MAX) {
        json_decref(req);
        return ccci_cli_usage_error("--from takes a line number, not '%s'",
                                    argv[k]);
      }
      json_object_set_new(req, "pos", json_integer((json_int_t)n));
    } else if (argv[k][0] != '-' && id == NULL) {
      id = argv[k];
    } else {
      json_decref(req);
      return ccci_cli_usage_error("%s", usage);
    }
  }
  if (id == NULL) {
    json_decref(req);
    return ccci_cli_usage_error("%s", usage);
  }
  json_object_set_new(req, "id", json_string(id));
  sock = find_socket(cli);
  if (sock == NULL) {
    json_decref(req);
    return CCCI_EXIT_DAEMON;
  }
  r = ccci_client_connect(&c, sock, &err);
  free(sock);
  if (r == 0)
    r = ccci_client_send(&c, req, &err);
  json_decref(req);
  if (r == 0)
    r = ccci_client_recv(&c, &m, REPLY_TIMEOUT_MS, &err);
  if (r == 0 && !json_is_true(json_object_get(m, "ok"))) {
    json_t *e = json_object_get(m, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    fprintf(stderr, "ccci: %s\n",
            json_string_value(json_object_get(e, "message")));
    r = code != NULL && strcmp(code, "no-such-run") == 0 ? CCCI_EXIT_NO_SUCH_RUN
                                                         : CCCI_EXIT_DAEMON;
    json_decref(m);
    ccci_client_close(&c);
    return r;
  }
  /* The stream: print as it comes, flushing whenever the next message
   * would have to be waited for. */
  while (r == 0) {
    int code = tail_print(cli, m);
    json_decref(m);
    m = NULL;
    if (code >= 0) {
      fflush(stdout);
      ccci_client_close(&c);
      return code;
    }
    if (!ccci_client_pending(&c))
      fflush(stdout);
    r = ccci_client_recv(&c, &m, -1, &err);
  }
  fflush(stdout);
  ccci_client_close(&c);
  fprintf(stderr, "ccci: %s%s\n", err,
          r == -ECONNRESET ? " before the end of the log (is it stopping?)"
                           : "");
  free(err);
  return CCCI_EXIT_DAEMON;
}

int ccci_cmd_janitor(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *req = request("janitor"), *reply, *ds, *d;
  size_t i;
  int r;

  if (argc == 1 && strcmp(argv[0], "--dry-run") == 0) {
    json_object_set_new(req, "dry_run", json_true());
  } else if (argc != 0) {
    json_decref(req);
    return ccci_cli_usage_error("usage: ccci janitor [--dry-run]");
  }
  r = call(cli, req, &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  ds = json_object_get(reply, "decisions");
  if (cli->json) {
    print_json(ds);
  } else {
    printf("%-5s %-19s %-40s %s\n", "KIND", "RUN", "DOMAIN", "DECISION");
    json_array_foreach(ds, i, d)
    {
      const char *id = json_string_value(json_object_get(d, "id"));
      printf("%-5s %-19s %-40s %s\n",
             json_string_value(json_object_get(d, "kind")), id ? id : "-",
             json_string_value(json_object_get(d, "domain")),
             json_string_value(json_object_get(d, "verdict")));
    }
  }
  json_decref(reply);
  return CCCI_EXIT_OK;
}

int ccci_cmd_drain(const struct ccci_cli *cli, int argc, char **argv)
{
  json_t *reply, *runs, *run;
  size_t i;
  int r = ccci_cli_no_args("drain", argc, argv);
  if (r != 0)
    return r;
  r = call(cli, request("drain"), &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  runs = json_object_get(reply, "running");
  if (cli->json) {
    print_json(runs);
  } else {
    printf("draining: no new run starts; %zu running\n", json_array_size(runs));
    json_array_foreach(runs, i, run)
        printf("  %s\n", json_string_value(json_object_get(run, "id")));
  }
  json_decref(reply);
  return CCCI_EXIT_OK;
}

/* `server drain NAME` / `server undrain NAME`. */
static int server_drain(const struct ccci_cli *cli, const char *sub, int argc,
                        char **argv)
{
  bool drain = strcmp(sub, "drain") == 0;
  json_t *req, *reply, *server;
  int r;

  if (argc != 1 || argv[0][0] == '-')
    return ccci_cli_usage_error("usage: ccci server %s NAME", sub);
  if (!ccci_valid_server_name(argv[0]))
    return ccci_cli_usage_error("'%.64s' is not a server name (letters, "
                                "digits, '.', '_' and '-'); 'ccci server ls' "
                                "lists them",
                                argv[0]);
  req = request(drain ? "server_drain" : "server_undrain");
  json_object_set_new(req, "name", json_string(argv[0]));
  r = call(cli, req, &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  server = json_object_get(reply, "server");
  if (cli->json)
    print_json(server);
  else if (drain)
    printf("server %s drained: it takes no new run; %lld running finish "
           "there\n",
           argv[0],
           (long long)json_integer_value(json_object_get(server, "running")));
  else
    printf("server %s undrained: it takes runs again\n", argv[0]);
  json_decref(reply);
  return CCCI_EXIT_OK;
}

int ccci_cmd_server(const struct ccci_cli *cli, int argc, char **argv)
{
  static const char usage[] =
      "usage: ccci server ls | drain NAME | undrain NAME";
  json_t *reply;
  int r;

  if (argc < 1)
    return ccci_cli_usage_error("%s", usage);
  if (strcmp(argv[0], "drain") == 0 || strcmp(argv[0], "undrain") == 0)
    return server_drain(cli, argv[0], argc - 1, argv + 1);
  if (strcmp(argv[0], "ls") != 0)
    return ccci_cli_usage_error("unknown 'server' command '%s'; %s", argv[0],
                                usage);
  r = ccci_cli_no_args("server ls", argc - 1, argv + 1);
  if (r != 0)
    return r;
  r = call(cli, request("server_ls"), &reply);
  if (r != CCCI_EXIT_OK)
    return r;
  if (cli->json)
    print_json(json_object_get(reply, "servers"));
  else
    print_servers("", json_object_get(reply, "servers"));
  json_decref(reply);
  return CCCI_EXIT_OK;
}
