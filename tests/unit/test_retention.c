/* Unit tests of retention: the max_age and max_bytes plans on real run dirs,
 * pruning and removal, symlinks, idempotence and refused ids. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "ccci/runs/retention.h"
#include "tmpdir.h"

#define DAY 86400
#define NOW ((int64_t)1800000000)
#define LOG_BYTES (64u * 1024u)

/* One private temporary directory per test, with runs/ inside it. */
struct fx {
  char *tmp;
  char *runs;
};

static int setup(void **state)
{
  char *dir = tmpdir_make("retention");
  struct fx *f;
  if (dir == NULL)
    return -1;
  f = ccci_xcalloc(1, sizeof(*f));
  f->tmp = dir;
  f->runs = ccci_xasprintf("%s/runs", dir);
  if (mkdir(f->runs, 0755) < 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  int r = tmpdir_remove(f->tmp);
  free(f->tmp);
  free(f->runs);
  free(f);
  return r;
}

/* ---- helpers ---- */

static void write_file(const char *path, size_t len)
{
  char buf[4096];
  size_t done = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  memset(buf, 'x', sizeof(buf));
  while (done < len) {
    size_t k = len - done < sizeof(buf) ? len - done : sizeof(buf);
    assert_int_equal(write(fd, buf, k), (ssize_t)k);
    done += k;
  }
  assert_int_equal(close(fd), 0);
}

static void mkdirf(const char *fmt, ...) CCCI_PRINTF(1, 2);
static void mkdirf(const char *fmt, ...)
{
  va_list ap;
  char *p;
  va_start(ap, fmt);
  p = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  assert_int_equal(mkdir(p, 0755), 0);
  free(p);
}

static void filef(size_t len, const char *fmt, ...) CCCI_PRINTF(2, 3);
static void filef(size_t len, const char *fmt, ...)
{
  va_list ap;
  char *p;
  va_start(ap, fmt);
  p = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  write_file(p, len);
  free(p);
}

static bool exists(const char *fmt, ...) CCCI_PRINTF(1, 2);
static bool exists(const char *fmt, ...)
{
  va_list ap;
  struct stat st;
  char *p;
  bool ok;
  va_start(ap, fmt);
  p = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  ok = lstat(p, &st) == 0;
  free(p);
  return ok;
}

/* A run dir as the daemon leaves it: meta, results, logs of @p log_bytes
 * in two attempts, a recipe copy and harness state. */
static void make_run(const struct fx *f, const char *id, size_t log_bytes)
{
  mkdirf("%s/%s", f->runs, id);
  filef(300, "%s/%s/meta.json", f->runs, id);
  filef(100, "%s/%s/results.json", f->runs, id);
  mkdirf("%s/%s/logs", f->runs, id);
  filef(log_bytes, "%s/%s/logs/1-build.jsonl", f->runs, id);
  filef(50, "%s/%s/logs/index.json", f->runs, id);
  mkdirf("%s/%s/logs.attempt-1", f->runs, id);
  filef(log_bytes / 2, "%s/%s/logs.attempt-1/1-build.jsonl", f->runs, id);
  mkdirf("%s/%s/recipe", f->runs, id);
  filef(200, "%s/%s/recipe/recipe.yml", f->runs, id);
  mkdirf("%s/%s/recipe/sub", f->runs, id);
  filef(20, "%s/%s/recipe/sub/x.sh", f->runs, id);
  mkdirf("%s/%s/state", f->runs, id);
  filef(2, "%s/%s/state/deploys", f->runs, id);
}

static uint64_t du_sum;

static int du_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)path;
  (void)flag;
  (void)ftw;
  du_sum += (uint64_t)st->st_blocks * 512u;
  return 0;
}

/* du -s --apparent-size=no of a path, links not followed. */
static uint64_t du(const char *fmt, ...) CCCI_PRINTF(1, 2);
static uint64_t du(const char *fmt, ...)
{
  va_list ap;
  char *p;
  va_start(ap, fmt);
  p = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  du_sum = 0;
  if (nftw(p, du_entry, 16, FTW_PHYS) != 0)
    du_sum = 0;
  free(p);
  return du_sum;
}

/* The bytes PRUNE_LOGS frees in run @p id. */
static uint64_t du_logs(const struct fx *f, const char *id)
{
  return du("%s/%s/logs", f->runs, id) +
         du("%s/%s/logs.attempt-1", f->runs, id) +
         du("%s/%s/recipe", f->runs, id);
}

static void plan_ok(const struct fx *f, const struct ccci_retention_run *runs,
                    size_t n, int64_t now, uint64_t max_age, uint64_t max_bytes,
                    struct ccci_retention_action **acts, size_t *nacts)
{
  char *err = NULL;
  int rc = ccci_retention_plan(f->runs, runs, n, now, max_age, max_bytes, acts,
                               nacts, &err);
  if (rc != 0)
    fail_msg("plan: %d %s", rc, err != NULL ? err : "(no message)");
  assert_null(err);
}

static void apply_ok(const struct fx *f, const struct ccci_retention_action *a,
                     int64_t now)
{
  char *err = NULL;
  int rc = ccci_retention_apply(f->runs, a, now, &err);
  if (rc != 0)
    fail_msg("apply %s: %d %s", a->id, rc, err != NULL ? err : "(none)");
  assert_null(err);
}

static void apply_all(const struct fx *f,
                      const struct ccci_retention_action *acts, size_t n,
                      int64_t now)
{
  size_t i;
  for (i = 0; i < n; i++)
    apply_ok(f, &acts[i], now);
}

static void assert_action(const struct ccci_retention_action *a, const char *id,
                          enum ccci_retention_act act, const char *why)
{
  assert_string_equal(a->id, id);
  assert_int_equal(a->act, act);
  assert_string_equal(a->why, why);
}

/* What a pruned run keeps and what it loses. */
static void assert_pruned(const struct fx *f, const char *id)
{
  assert_true(exists("%s/%s/meta.json", f->runs, id));
  assert_true(exists("%s/%s/results.json", f->runs, id));
  assert_true(exists("%s/%s/state/deploys", f->runs, id));
  assert_true(exists("%s/%s/logs.pruned", f->runs, id));
  assert_false(exists("%s/%s/logs", f->runs, id));
  assert_false(exists("%s/%s/logs.attempt-1", f->runs, id));
  assert_false(exists("%s/%s/recipe", f->runs, id));
  assert_false(exists("%s/%s/logs.pruned.tmp", f->runs, id));
}

static void assert_intact(const struct fx *f, const char *id)
{
  assert_true(exists("%s/%s/meta.json", f->runs, id));
  assert_true(exists("%s/%s/logs/1-build.jsonl", f->runs, id));
  assert_true(exists("%s/%s/logs.attempt-1/1-build.jsonl", f->runs, id));
  assert_true(exists("%s/%s/recipe/sub/x.sh", f->runs, id));
  assert_false(exists("%s/%s/logs.pruned", f->runs, id));
}

static char *slurp(const char *fmt, ...) CCCI_PRINTF(1, 2);
static char *slurp(const char *fmt, ...)
{
  va_list ap;
  char *p, *text = NULL;
  size_t len;
  va_start(ap, fmt);
  p = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  assert_int_equal(ccci_read_file(p, 4096, &text, &len), 0);
  free(p);
  return text;
}

/* ---- max_age ---- */

static void test_age_prune_then_remove(void **state)
{
  struct fx *f = *state;
  const uint64_t max_age = 7 * DAY;
  struct ccci_retention_run runs[] = {
      {"20260101-000000-003", true, NOW - 1 * DAY},   /* young */
      {"20260101-000000-001", true, NOW - 10 * DAY},  /* past max_age */
      {"20260101-000000-002", true, NOW - 15 * DAY},  /* past 2 x max_age */
      {"20260101-000000-004", false, NOW - 30 * DAY}, /* unfinished */
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0, i;
  uint64_t logs1;
  char *marker;
  for (i = 0; i < CCCI_ARRAY_LEN(runs); i++)
    make_run(f, runs[i].id, LOG_BYTES);
  logs1 = du_logs(f, "20260101-000000-001");

  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, max_age, 0, &acts, &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "20260101-000000-001", CCCI_RETENTION_PRUNE_LOGS,
                "max_age");
  assert_int_equal(acts[0].bytes_freed, logs1);
  assert_action(&acts[1], "20260101-000000-002", CCCI_RETENTION_REMOVE,
                "max_age");
  apply_all(f, acts, nacts, NOW);
  free(acts);

  assert_pruned(f, "20260101-000000-001");
  assert_false(exists("%s/20260101-000000-002", f->runs));
  assert_intact(f, "20260101-000000-003");
  assert_intact(f, "20260101-000000-004");
  marker = slurp("%s/20260101-000000-001/logs.pruned", f->runs);
  assert_string_equal(
      marker, "logs pruned 2027-01-15T08:00:00Z by retention.max_age\n");
  free(marker);

  /* Already pruned: nothing more until 2 x max_age. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW + DAY, max_age, 0, &acts, &nacts);
  assert_int_equal(nacts, 0);
  assert_null(acts);

  /* Past 2 x max_age the pruned run goes; the young one is pruned. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW + 7 * DAY, max_age, 0, &acts,
          &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "20260101-000000-001", CCCI_RETENTION_REMOVE,
                "max_age");
  assert_action(&acts[1], "20260101-000000-003", CCCI_RETENTION_PRUNE_LOGS,
                "max_age");
  apply_all(f, acts, nacts, NOW + 7 * DAY);
  free(acts);
  assert_false(exists("%s/20260101-000000-001", f->runs));
  assert_pruned(f, "20260101-000000-003");
  assert_intact(f, "20260101-000000-004");
}

/* Exactly max_age old is not older than max_age; an unknown finish time
 * has no age. */
static void test_age_bounds(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {
      {"r1", true, NOW - 100},
      {"r2", true, NOW - 200},
      {"r3", true, 0},
      {"r4", true, NOW + 1000},
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0, i;
  for (i = 0; i < CCCI_ARRAY_LEN(runs); i++)
    make_run(f, runs[i].id, 4096);
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, 100, 0, &acts, &nacts);
  assert_int_equal(nacts, 1);
  assert_action(&acts[0], "r2", CCCI_RETENTION_PRUNE_LOGS, "max_age");
  free(acts);
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW + 1, 100, 0, &acts, &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "r1", CCCI_RETENTION_PRUNE_LOGS, "max_age");
  assert_action(&acts[1], "r2", CCCI_RETENTION_REMOVE, "max_age");
  free(acts);
  /* A huge max_age neither overflows nor matches. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, UINT64_MAX, 0, &acts, &nacts);
  assert_int_equal(nacts, 0);
}

/* ---- max_bytes ---- */

static void test_bytes_order(void **state)
{
  struct fx *f = *state;
  /* Given out of order: the plan sorts by id. */
  struct ccci_retention_run runs[] = {
      {"20260103-000000-000", true, NOW - 60},
      {"20260101-000000-000", true, NOW - 60},
      {"20260104-000000-000", false, 0},
      {"20260102-000000-000", true, NOW - 60},
  };
  const char *r1 = "20260101-000000-000", *r2 = "20260102-000000-000",
             *r3 = "20260103-000000-000", *r4 = "20260104-000000-000";
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0, i;
  uint64_t total, logs1, logs2, logs3, size1;
  for (i = 0; i < CCCI_ARRAY_LEN(runs); i++)
    make_run(f, runs[i].id, LOG_BYTES);
  total = du("%s/%s", f->runs, r1) + du("%s/%s", f->runs, r2) +
          du("%s/%s", f->runs, r3) + du("%s/%s", f->runs, r4);
  logs1 = du_logs(f, r1);
  logs2 = du_logs(f, r2);
  logs3 = du_logs(f, r3);
  size1 = du("%s/%s", f->runs, r1);

  /* At the cap: nothing. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, 0, total, &acts, &nacts);
  assert_int_equal(nacts, 0);

  /* One byte over: the oldest run's logs are enough. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, 0, total - 1, &acts, &nacts);
  assert_int_equal(nacts, 1);
  assert_action(&acts[0], r1, CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
  assert_int_equal(acts[0].bytes_freed, logs1);
  free(acts);

  /* Over by more than the oldest logs: the next oldest logs too. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, 0, total - logs1 - 1, &acts,
          &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], r1, CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
  assert_action(&acts[1], r2, CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
  free(acts);

  /* Every finished run's logs are not enough: the oldest dir goes whole,
   * the others lose their logs. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, 0,
          total - logs1 - logs2 - logs3 - 1, &acts, &nacts);
  assert_int_equal(nacts, 3);
  assert_action(&acts[0], r1, CCCI_RETENTION_REMOVE, "max_bytes");
  assert_int_equal(acts[0].bytes_freed, size1);
  assert_action(&acts[1], r2, CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
  assert_action(&acts[2], r3, CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
  apply_all(f, acts, nacts, NOW);
  free(acts);
  assert_false(exists("%s/%s", f->runs, r1));
  assert_pruned(f, r2);
  assert_pruned(f, r3);
  assert_intact(f, r4);
  /* Under the cap but for the two markers the estimate leaves out. */
  assert_true(du("%s/%s", f->runs, r2) + du("%s/%s", f->runs, r3) +
                  du("%s/%s", f->runs, r4) <=
              total - logs1 - logs2 - logs3 - 1 +
                  du("%s/%s/logs.pruned", f->runs, r2) +
                  du("%s/%s/logs.pruned", f->runs, r3));

  /* A cap below every finished run: they all go; the unfinished stays. */
  plan_ok(f, runs, CCCI_ARRAY_LEN(runs), NOW, 0, 1, &acts, &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], r2, CCCI_RETENTION_REMOVE, "max_bytes");
  assert_action(&acts[1], r3, CCCI_RETENTION_REMOVE, "max_bytes");
  apply_all(f, acts, nacts, NOW);
  free(acts);
  assert_false(exists("%s/%s", f->runs, r2));
  assert_false(exists("%s/%s", f->runs, r3));
  assert_intact(f, r4);
}

/* Runs max_age prunes count as pruned for max_bytes; a run both rules hit
 * gets one action. */
static void test_age_and_bytes(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {
      {"a1", true, NOW - 10 * DAY},
      {"a2", true, NOW - 60},
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0;
  uint64_t total, logs1;
  make_run(f, "a1", LOG_BYTES);
  make_run(f, "a2", LOG_BYTES);
  total = du("%s/a1", f->runs) + du("%s/a2", f->runs);
  logs1 = du_logs(f, "a1");

  /* max_age's prune of a1 brings the total under the cap. */
  plan_ok(f, runs, 2, NOW, 7 * DAY, total - logs1, &acts, &nacts);
  assert_int_equal(nacts, 1);
  assert_action(&acts[0], "a1", CCCI_RETENTION_PRUNE_LOGS, "max_age");
  free(acts);

  /* Not enough: a2's logs, then a1 whole, one action each. */
  plan_ok(f, runs, 2, NOW, 7 * DAY, total - logs1 - du_logs(f, "a2") - 1, &acts,
          &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "a1", CCCI_RETENTION_REMOVE, "max_bytes");
  assert_action(&acts[1], "a2", CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
  free(acts);
}

static void test_unfinished_never_touched(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {
      {"u1", false, NOW - 100 * DAY},
      {"u2", false, 0},
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0;
  make_run(f, "u1", LOG_BYTES);
  make_run(f, "u2", LOG_BYTES);
  plan_ok(f, runs, 2, NOW, 1, 1, &acts, &nacts);
  assert_int_equal(nacts, 0);
  assert_null(acts);
  assert_intact(f, "u1");
  assert_intact(f, "u2");
}

static void test_disabled_rules(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {
      {"d1", true, NOW - 1000 * DAY},
      {"d2", true, NOW - 1000 * DAY},
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0;
  make_run(f, "d1", LOG_BYTES);
  make_run(f, "d2", LOG_BYTES);
  plan_ok(f, runs, 2, NOW, 0, 0, &acts, &nacts);
  assert_int_equal(nacts, 0);
  /* max_age off, max_bytes far above: nothing either. */
  plan_ok(f, runs, 2, NOW, 0, UINT64_MAX, &acts, &nacts);
  assert_int_equal(nacts, 0);
  /* max_bytes off, max_age on: age alone decides. */
  plan_ok(f, runs, 2, NOW, 600 * DAY, 0, &acts, &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "d1", CCCI_RETENTION_PRUNE_LOGS, "max_age");
  assert_action(&acts[1], "d2", CCCI_RETENTION_PRUNE_LOGS, "max_age");
  free(acts);
  assert_intact(f, "d1");
}

/* ---- safety ---- */

static void test_symlink_targets_survive(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {
      {"s1", true, NOW - 10 * DAY},
      {"s2", true, NOW - 30 * DAY},
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0;
  struct stat st;
  char *target, *link, *tdir;
  mkdirf("%s/outside", f->tmp);
  filef(1024 * 1024, "%s/outside/precious", f->tmp);
  tdir = ccci_xasprintf("%s/outside", f->tmp);
  target = ccci_xasprintf("%s/outside/precious", f->tmp);
  make_run(f, "s1", 4096);
  make_run(f, "s2", 4096);
  link = ccci_xasprintf("%s/s1/logs/escape", f->runs);
  assert_int_equal(symlink(target, link), 0);
  free(link);
  link = ccci_xasprintf("%s/s1/logs/escape-dir", f->runs);
  assert_int_equal(symlink(tdir, link), 0);
  free(link);
  link = ccci_xasprintf("%s/s2/logs/escape-dir", f->runs);
  assert_int_equal(symlink(tdir, link), 0);
  free(link);
  link = ccci_xasprintf("%s/s2/state/escape", f->runs);
  assert_int_equal(symlink(target, link), 0);
  free(link);

  plan_ok(f, runs, 2, NOW, 7 * DAY, 0, &acts, &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "s1", CCCI_RETENTION_PRUNE_LOGS, "max_age");
  /* The target's megabyte is not counted. */
  assert_true(acts[0].bytes_freed < 512 * 1024);
  assert_action(&acts[1], "s2", CCCI_RETENTION_REMOVE, "max_age");
  assert_true(acts[1].bytes_freed < 512 * 1024);
  apply_all(f, acts, nacts, NOW);
  free(acts);
  assert_pruned(f, "s1");
  assert_false(exists("%s/s2", f->runs));
  assert_int_equal(lstat(target, &st), 0);
  assert_int_equal(st.st_size, 1024 * 1024);
  assert_true(exists("%s", tdir));
  free(target);
  free(tdir);
}

/* A run's name that is a symlink to a directory elsewhere: REMOVE unlinks
 * the link, PRUNE refuses, and the directory is untouched. */
static void test_symlinked_run_dir(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_action a = {"l1", CCCI_RETENTION_PRUNE_LOGS, "max_age",
                                    0};
  char *dir, *link, *err = NULL;
  mkdirf("%s/elsewhere", f->tmp);
  mkdirf("%s/elsewhere/logs", f->tmp);
  filef(10, "%s/elsewhere/logs/keep", f->tmp);
  dir = ccci_xasprintf("%s/elsewhere", f->tmp);
  link = ccci_xasprintf("%s/l1", f->runs);
  assert_int_equal(symlink(dir, link), 0);
  assert_int_equal(ccci_retention_apply(f->runs, &a, NOW, &err), -ENOTDIR);
  assert_non_null(err);
  free(err);
  assert_true(exists("%s/elsewhere/logs/keep", f->tmp));
  a.act = CCCI_RETENTION_REMOVE;
  apply_ok(f, &a, NOW);
  assert_false(exists("%s", link));
  assert_true(exists("%s/elsewhere/logs/keep", f->tmp));
  free(dir);
  free(link);
}

static void test_idempotent(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_action prune = {"i1", CCCI_RETENTION_PRUNE_LOGS,
                                        "max_bytes", 0};
  struct ccci_retention_action rm = {"i2", CCCI_RETENTION_REMOVE, "max_age", 0};
  struct stat st1, st2;
  char *m1, *m2, *path;
  make_run(f, "i1", 4096);
  make_run(f, "i2", 4096);
  path = ccci_xasprintf("%s/i1/logs.pruned", f->runs);

  apply_ok(f, &prune, NOW);
  assert_pruned(f, "i1");
  assert_int_equal(lstat(path, &st1), 0);
  m1 = slurp("%s", path);
  assert_non_null(strstr(m1, "retention.max_bytes"));
  /* Again, later: the marker is not rewritten. */
  apply_ok(f, &prune, NOW + DAY);
  assert_pruned(f, "i1");
  assert_int_equal(lstat(path, &st2), 0);
  assert_int_equal(st1.st_ino, st2.st_ino);
  m2 = slurp("%s", path);
  assert_string_equal(m1, m2);
  free(m2);

  /* A prune cut short (recipe/ left behind) is finished, marker kept. */
  mkdirf("%s/i1/recipe", f->runs);
  filef(10, "%s/i1/recipe/left", f->runs);
  apply_ok(f, &prune, NOW + 2 * DAY);
  assert_pruned(f, "i1");
  m2 = slurp("%s", path);
  assert_string_equal(m1, m2);
  free(m2);
  free(m1);

  apply_ok(f, &rm, NOW);
  assert_false(exists("%s/i2", f->runs));
  apply_ok(f, &rm, NOW);
  /* Pruning a vanished run is no error either. */
  snprintf(prune.id, sizeof(prune.id), "i2");
  apply_ok(f, &prune, NOW);
  assert_false(exists("%s/i2", f->runs));
  free(path);
}

static void test_invalid_id_refused(void **state)
{
  struct fx *f = *state;
  static const char *const bad[] = {
      "..",
      "../x",
      "a/b",
      "",
      ".",
      "x.tmp",
      "12345678901234567890123456789012345678901"};
  struct ccci_retention_action a;
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 7, i;
  char *err = NULL;
  mkdirf("%s/victim", f->tmp);
  filef(10, "%s/victim/keep", f->tmp);
  for (i = 0; i < CCCI_ARRAY_LEN(bad); i++) {
    struct ccci_retention_run r = {bad[i], true, NOW - 1000 * DAY};
    assert_int_equal(
        ccci_retention_plan(f->runs, &r, 1, NOW, 1, 1, &acts, &nacts, &err),
        -EINVAL);
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_null(acts);
    assert_int_equal(nacts, 0);

    if (strlen(bad[i]) > CCCI_RUN_ID_MAX)
      continue; /* an action cannot even hold it */
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", bad[i]);
    a.why = "max_age";
    a.act = CCCI_RETENTION_REMOVE;
    assert_int_equal(ccci_retention_apply(f->runs, &a, NOW, &err), -EINVAL);
    assert_non_null(err);
    free(err);
    err = NULL;
  }
  /* "../victim" truncated or not, nothing outside runs/ went. */
  snprintf(a.id, sizeof(a.id), "../victim");
  assert_int_equal(ccci_retention_apply(f->runs, &a, NOW, &err), -EINVAL);
  free(err);
  err = NULL;
  assert_true(exists("%s/victim/keep", f->tmp));
  assert_true(exists("%s", f->runs));

  /* A NULL id and a duplicate are refused too. */
  {
    struct ccci_retention_run r[] = {{"dup", true, 1}, {"dup", true, 2}};
    struct ccci_retention_run rn = {NULL, true, 1};
    assert_int_equal(
        ccci_retention_plan(f->runs, r, 2, NOW, 1, 1, &acts, &nacts, &err),
        -EINVAL);
    free(err);
    err = NULL;
    assert_int_equal(
        ccci_retention_plan(f->runs, &rn, 1, NOW, 1, 1, &acts, &nacts, &err),
        -EINVAL);
    free(err);
    err = NULL;
  }
  /* An id that fills the field without its NUL. */
  memset(a.id, 'a', sizeof(a.id));
  assert_int_equal(ccci_retention_apply(f->runs, &a, NOW, &err), -EINVAL);
  free(err);
  err = NULL;
  /* An unknown action. */
  snprintf(a.id, sizeof(a.id), "ok");
  a.act = (enum ccci_retention_act)7;
  assert_int_equal(ccci_retention_apply(f->runs, &a, NOW, &err), -EINVAL);
  free(err);
}

/* Run dirs that are missing, a missing runs dir, and no runs at all. */
static void test_vanished(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {{"gone", true, NOW - 100 * DAY}};
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 9;
  char *err = NULL, *missing;
  plan_ok(f, runs, 1, NOW, 1, 1, &acts, &nacts);
  assert_int_equal(nacts, 0);
  plan_ok(f, NULL, 0, NOW, 1, 1, &acts, &nacts);
  assert_int_equal(nacts, 0);
  missing = ccci_xasprintf("%s/nope", f->tmp);
  assert_int_equal(
      ccci_retention_plan(missing, runs, 1, NOW, 1, 1, &acts, &nacts, &err), 0);
  assert_null(err);
  assert_int_equal(nacts, 0);
  free(missing);
}

/* Nest @p levels directories `d` in @p path. */
static void nest(const char *path, unsigned levels)
{
  unsigned i;
  int next, fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_true(fd >= 0);
  for (i = 0; i < levels; i++) {
    assert_int_equal(mkdirat(fd, "d", 0755), 0);
    next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(next >= 0);
    close(fd);
    fd = next;
  }
  close(fd);
}

/* Deep trees are removed. One too deep to walk is measured as far as it
 * goes, its removal fails naming the spot, and other runs go on. */
static void test_depth(void **state)
{
  struct fx *f = *state;
  struct ccci_retention_run runs[] = {
      {"deep", true, NOW - 100 * DAY},
      {"next", true, NOW - 100 * DAY},
  };
  struct ccci_retention_action *acts = NULL;
  size_t nacts = 0;
  char *err = NULL, *p;
  make_run(f, "deep", 4096);
  make_run(f, "next", 4096);
  p = ccci_xasprintf("%s/deep/recipe", f->runs);
  nest(p, 30);
  plan_ok(f, runs, 1, NOW, 30 * DAY, 0, &acts, &nacts);
  assert_int_equal(nacts, 1);
  assert_action(&acts[0], "deep", CCCI_RETENTION_REMOVE, "max_age");
  apply_all(f, acts, nacts, NOW);
  free(acts);
  assert_false(exists("%s/deep", f->runs));

  make_run(f, "deep", 4096);
  nest(p, 80);
  plan_ok(f, runs, 2, NOW, 30 * DAY, 0, &acts, &nacts);
  assert_int_equal(nacts, 2);
  assert_action(&acts[0], "deep", CCCI_RETENTION_REMOVE, "max_age");
  assert_action(&acts[1], "next", CCCI_RETENTION_REMOVE, "max_age");
  assert_int_equal(ccci_retention_apply(f->runs, &acts[0], NOW, &err), -ELOOP);
  assert_non_null(err);
  assert_non_null(strstr(err, "/deep/recipe/d/d/d/"));
  free(err);
  apply_ok(f, &acts[1], NOW);
  free(acts);
  assert_false(exists("%s/next", f->runs));
  /* What lay within reach is gone; the rest is reported, not followed. */
  assert_false(exists("%s/deep/meta.json", f->runs));
  free(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_age_prune_then_remove, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_age_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bytes_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_age_and_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unfinished_never_touched, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_disabled_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_symlink_targets_survive, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_symlinked_run_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_id_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_vanished, setup, teardown),
      cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
