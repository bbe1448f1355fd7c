/* Retention of finished runs: du-like sizes, the max_age and max_bytes
 * decisions, and a removal that never follows a link out of a run dir. */
#include "ccci/runs/retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How deep a tree is walked: every level holds one descriptor. Measuring
 * stops there; removal reports -ELOOP. */
#define MAX_DEPTH 64
/* Passes over a directory whose entries keep coming back (a writer racing
 * the removal, or a file system that skips entries removed during readdir)
 * before its rmdir failure is reported. */
#define REMOVE_PASSES 8
#define MARKER "logs.pruned"
#define MARKER_TMP "logs.pruned.tmp"

/* One walk over a tree: the file system it stays on and its first error. */
struct walk {
  dev_t dev;
  unsigned failures;
  int rc;
  char *where; /* the path of the first error, relative to runs_dir */
};

/* A run while planning. */
struct item {
  const struct ccci_retention_run *run;
  bool exists, has_logs;
  uint64_t size, logs; /* bytes of the whole dir, of its prunable part */
  bool act_set;
  enum ccci_retention_act act;
  const char *why;
};

const char *ccci_retention_act_name(enum ccci_retention_act act)
{
  switch (act) {
  case CCCI_RETENTION_PRUNE_LOGS:
    return "prune-logs";
  case CCCI_RETENTION_REMOVE:
    return "remove";
  }
  return "?";
}

static bool is_dot(const char *name)
{
  return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* Is @p name one of the entries PRUNE_LOGS removes? */
static bool is_prunable(const char *name)
{
  static const char attempt[] = "logs.attempt-";
  return strcmp(name, "logs") == 0 || strcmp(name, "recipe") == 0 ||
         (strncmp(name, attempt, sizeof(attempt) - 1) == 0 &&
          name[sizeof(attempt) - 1] != '\0');
}

static void fail(struct walk *w, const char *rel, const char *name, int rc)
{
  w->failures++;
  if (w->rc != 0)
    return;
  w->rc = rc;
  w->where =
      rel != NULL ? ccci_xasprintf("%s/%s", rel, name) : ccci_xstrdup(name);
}

/*
 * Open directory @p name under @p at as a stream, never through a
 * symlink, and only when it lies on @p dev (checked on the open descriptor,
 * so a swap after an lstat changes nothing). Returns 0 or -errno.
 */
static int open_dir(int at, const char *name, dev_t dev, DIR **out)
{
  struct stat st;
  int fd, rc = 0;
  *out = NULL;
  fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
    goto out;
  }
  if (st.st_dev != dev) {
    rc = -EXDEV;
    goto out;
  }
  *out = fdopendir(fd);
  if (*out == NULL)
    rc = -errno;
out:
  if (*out == NULL)
    close(fd);
  return rc;
}

/* The next entry of @p d other than . and ..; NULL at the end or on an
 * error (then *rc is set). */
static struct dirent *next_entry(DIR *d, int *rc)
{
  struct dirent *e;
  for (;;) {
    errno = 0;
    e = readdir(d);
    if (e == NULL) {
      *rc = errno != 0 ? -errno : 0;
      return NULL;
    }
    if (!is_dot(e->d_name))
      return e;
  }
}

/*
 * Add the du-like size of entry @p name under @p at to *@p bytes. Sizes are
 * estimates: what cannot be read (gone meanwhile, no permission, deeper
 * than MAX_DEPTH, another file system) counts as what lstat showed of it,
 * and the removal, which must get through, reports the error.
 */
static void measure(int at, const char *name, unsigned depth, dev_t dev,
                    uint64_t *bytes)
{
  struct stat st;
  struct dirent *e;
  DIR *d = NULL;
  int rc = 0;
  if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return;
  *bytes += (uint64_t)st.st_blocks * 512u;
  if (!S_ISDIR(st.st_mode) || depth >= MAX_DEPTH)
    return;
  if (open_dir(at, name, dev, &d) < 0)
    return;
  for (;;) {
    e = next_entry(d, &rc);
    if (e == NULL)
      break;
    measure(dirfd(d), e->d_name, depth + 1, dev, bytes);
  }
  closedir(d);
}

static void remove_entry(int at, const char *rel, const char *name,
                         unsigned depth, struct walk *w);

/* Empty directory @p name under @p at and remove it. Entries that come back
 * (or that a file system skipped while we removed) get another pass. */
static void remove_dir(int at, const char *rel, const char *name,
                       unsigned depth, struct walk *w)
{
  struct dirent *e;
  DIR *d = NULL;
  char *sub = NULL;
  unsigned pass, failures;
  int rc;
  if (depth >= MAX_DEPTH) {
    fail(w, rel, name, -ELOOP);
    return;
  }
  rc = open_dir(at, name, w->dev, &d);
  if (rc == -ENOTDIR || rc == -ELOOP) {
    /* Swapped for a file or a link since the lstat: remove that. */
    if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
      fail(w, rel, name, -errno);
    return;
  }
  if (rc < 0) {
    if (rc != -ENOENT)
      fail(w, rel, name, rc);
    return;
  }
  sub = rel != NULL ? ccci_xasprintf("%s/%s", rel, name) : ccci_xstrdup(name);
  for (pass = 0;; pass++) {
    failures = w->failures;
    for (;;) {
      e = next_entry(d, &rc);
      if (e == NULL)
        break;
      remove_entry(dirfd(d), sub, e->d_name, depth + 1, w);
    }
    if (rc < 0) {
      fail(w, rel, name, rc);
      break;
    }
    if (unlinkat(at, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
      break;
    rc = -errno;
    /* An entry we failed on keeps the directory: its error says why. */
    if (w->failures != failures)
      break;
    if ((rc != -ENOTEMPTY && rc != -EEXIST) || pass + 1 >= REMOVE_PASSES) {
      fail(w, rel, name, rc);
      break;
    }
    rewinddir(d);
  }
  closedir(d);
  free(sub);
}

/* rm -rf of entry @p name under @p at: links are removed as links, and no
 * directory on another file system is entered. */
static void remove_entry(int at, const char *rel, const char *name,
                         unsigned depth, struct walk *w)
{
  struct stat st;
  if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT)
      fail(w, rel, name, -errno);
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    remove_dir(at, rel, name, depth, w);
    return;
  }
  if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
    fail(w, rel, name, -errno);
}

/* Open runs_dir (following a link there: it is the caller's root) and note
 * its file system. -errno. */
static int open_root(const char *runs_dir, struct walk *w)
{
  struct stat st;
  int fd = open(runs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  w->dev = st.st_dev;
  return fd;
}

static char *walk_error(const char *runs_dir, const struct walk *w)
{
  return ccci_xasprintf("retention: %s/%s: %s", runs_dir, w->where,
                        strerror(-w->rc));
}

/* ---- planning ---- */

/* Measure the run dir of @p it: its whole size and its prunable part. */
static void measure_run(int root, dev_t dev, struct item *it)
{
  const char *id = it->run->id;
  struct stat st;
  struct dirent *e;
  DIR *d = NULL;
  uint64_t bytes;
  int rc = 0;
  if (fstatat(root, id, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return; /* gone (or unreadable, and then apply says why) */
  it->exists = true;
  it->size = (uint64_t)st.st_blocks * 512u;
  if (!S_ISDIR(st.st_mode) || open_dir(root, id, dev, &d) < 0)
    return;
  for (;;) {
    e = next_entry(d, &rc);
    if (e == NULL)
      break;
    bytes = 0;
    measure(dirfd(d), e->d_name, 1, dev, &bytes);
    it->size += bytes;
    if (is_prunable(e->d_name)) {
      it->has_logs = true;
      it->logs += bytes;
    }
  }
  closedir(d);
}

static int item_cmp(const void *a, const void *b)
{
  const struct item *x = a, *y = b;
  return strcmp(x->run->id, y->run->id);
}

/* Did @p r finish more than @p mult x @p max_age seconds before @p now? */
static bool older_than(const struct ccci_retention_run *r, int64_t now,
                       uint64_t max_age, uint64_t mult)
{
  uint64_t age;
  if (r->finished_at <= 0 || now <= r->finished_at)
    return false;
  age = (uint64_t)now - (uint64_t)r->finished_at;
  return max_age <= UINT64_MAX / mult && age > max_age * mult;
}

static void decide(struct item *it, enum ccci_retention_act act,
                   const char *why)
{
  it->act_set = true;
  it->act = act;
  it->why = why;
}

/* The max_age rule; returns the bytes its actions free. */
static uint64_t plan_age(struct item *items, size_t n, int64_t now,
                         uint64_t max_age)
{
  uint64_t freed = 0;
  size_t i;
  for (i = 0; max_age != 0 && i < n; i++) {
    struct item *it = &items[i];
    if (!it->run->finished || !it->exists)
      continue;
    if (older_than(it->run, now, max_age, 2)) {
      decide(it, CCCI_RETENTION_REMOVE, "max_age");
      freed += it->size;
    } else if (older_than(it->run, now, max_age, 1) && it->has_logs) {
      decide(it, CCCI_RETENTION_PRUNE_LOGS, "max_age");
      freed += it->logs;
    }
  }
  return freed;
}

/* The max_bytes rule on a total of @p total bytes left by the max_age rule:
 * logs of the oldest finished runs first, then their whole dirs. */
static void plan_bytes(struct item *items, size_t n, uint64_t total,
                       uint64_t max_bytes)
{
  size_t i;
  for (i = 0; max_bytes != 0 && total > max_bytes && i < n; i++) {
    struct item *it = &items[i];
    if (!it->run->finished || !it->exists || it->act_set || it->logs == 0)
      continue;
    decide(it, CCCI_RETENTION_PRUNE_LOGS, "max_bytes");
    total -= it->logs;
  }
  for (i = 0; max_bytes != 0 && total > max_bytes && i < n; i++) {
    struct item *it = &items[i];
    uint64_t more;
    if (!it->run->finished || !it->exists)
      continue;
    if (it->act_set && it->act == CCCI_RETENTION_REMOVE)
      continue;
    more = it->act_set ? it->size - it->logs : it->size;
    if (more == 0)
      continue;
    decide(it, CCCI_RETENTION_REMOVE, "max_bytes");
    total -= more;
  }
}

int ccci_retention_plan(const char *runs_dir,
                        const struct ccci_retention_run *runs, size_t n,
                        int64_t now, uint64_t max_age_s, uint64_t max_bytes,
                        struct ccci_retention_action **out, size_t *nout,
                        char **err)
{
  struct walk w = {0};
  struct item *items = NULL;
  struct ccci_retention_action *acts = NULL;
  uint64_t total = 0;
  size_t i, k = 0;
  int root = -1, rc = 0;
  *out = NULL;
  *nout = 0;
  *err = NULL;
  for (i = 0; i < n; i++) {
    if (runs[i].id == NULL || !ccci_run_id_valid(runs[i].id)) {
      *err = ccci_xasprintf("retention: invalid run id '%.60s'",
                            runs[i].id != NULL ? runs[i].id : "(null)");
      rc = -EINVAL;
      goto out;
    }
  }
  if (n == 0)
    goto out;
  items = ccci_xcalloc(n, sizeof(*items));
  for (i = 0; i < n; i++)
    items[i].run = &runs[i];
  qsort(items, n, sizeof(*items), item_cmp);
  for (i = 1; i < n; i++) {
    if (strcmp(items[i - 1].run->id, items[i].run->id) == 0) {
      *err = ccci_xasprintf("retention: run id '%s' given twice",
                            items[i].run->id);
      rc = -EINVAL;
      goto out;
    }
  }
  root = open_root(runs_dir, &w);
  if (root == -ENOENT) {
    root = -1; /* no runs dir: no run takes any room */
    goto out;
  }
  if (root < 0) {
    rc = root;
    root = -1;
    *err = ccci_xasprintf("retention: cannot open %s: %s", runs_dir,
                          strerror(-rc));
    goto out;
  }
  for (i = 0; i < n; i++) {
    measure_run(root, w.dev, &items[i]);
    total += items[i].size;
  }
  total -= plan_age(items, n, now, max_age_s);
  plan_bytes(items, n, total, max_bytes);
  for (i = 0; i < n; i++)
    k += items[i].act_set;
  if (k == 0)
    goto out;
  acts = ccci_xcalloc(k, sizeof(*acts));
  for (i = 0, k = 0; i < n; i++) {
    const struct item *it = &items[i];
    if (!it->act_set)
      continue;
    snprintf(acts[k].id, sizeof(acts[k].id), "%s", it->run->id);
    acts[k].act = it->act;
    acts[k].why = it->why;
    acts[k].bytes_freed =
        it->act == CCCI_RETENTION_REMOVE ? it->size : it->logs;
    k++;
  }
  *out = acts;
  *nout = k;
out:
  if (root >= 0)
    close(root);
  free(items);
  return rc;
}

/* ---- carrying out ---- */

/* Write the marker of a pruned run (temp file, rename). -errno. */
static int write_marker(int run, int64_t now, const char *why)
{
  char when[32], *text;
  size_t len, done = 0;
  ssize_t k;
  int fd = -1, rc = 0;
  ccci_rfc3339((time_t)now, when);
  text = ccci_xasprintf("logs pruned %s by retention.%s\n", when, why);
  len = strlen(text);
  if (unlinkat(run, MARKER_TMP, 0) < 0 && errno != ENOENT) {
    rc = -errno;
    goto out;
  }
  fd = openat(run, MARKER_TMP,
              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = -errno;
    goto out;
  }
  while (done < len) {
    k = write(fd, text + done, len - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rc = -errno;
      goto out;
    }
    done += (size_t)k;
  }
  if (close(fd) < 0) {
    fd = -1;
    rc = -errno;
    goto out;
  }
  fd = -1;
  if (renameat(run, MARKER_TMP, run, MARKER) < 0)
    rc = -errno;
out:
  if (fd >= 0)
    close(fd);
  if (rc < 0)
    (void)unlinkat(run, MARKER_TMP, 0);
  free(text);
  return rc;
}

/* The prunable entries of run dir @p d, as a NULL-terminated array. */
static int list_prunable(DIR *d, char ***out, size_t *n)
{
  struct dirent *e;
  char **names = NULL;
  size_t cap = 0;
  int rc = 0;
  *n = 0;
  for (;;) {
    e = next_entry(d, &rc);
    if (e == NULL)
      break;
    if (!is_prunable(e->d_name))
      continue;
    if (*n + 1 >= cap) {
      cap = cap != 0 ? cap * 2 : 8;
      names = ccci_xrealloc(names, cap * sizeof(*names));
    }
    names[(*n)++] = ccci_xstrdup(e->d_name);
    names[*n] = NULL;
  }
  *out = names;
  return rc;
}

/* PRUNE_LOGS of run @p id; errors go to @p w. */
static void prune(int root, const char *id, int64_t now, const char *why,
                  struct walk *w)
{
  struct stat st;
  DIR *d = NULL;
  char **names = NULL;
  size_t n = 0, i;
  bool marked;
  int rc, mrc = 0;
  rc = open_dir(root, id, w->dev, &d);
  if (rc == -ELOOP)
    rc = -ENOTDIR; /* a symlink stands at the run's name */
  if (rc < 0) {
    if (rc != -ENOENT) /* vanished meanwhile: nothing to do */
      fail(w, NULL, id, rc);
    return;
  }
  rc = list_prunable(d, &names, &n);
  if (rc < 0) {
    fail(w, NULL, id, rc);
    goto out;
  }
  if (n == 0)
    goto out; /* already pruned, or never had logs: leave it as it is */
  marked = fstatat(dirfd(d), MARKER, &st, AT_SYMLINK_NOFOLLOW) == 0;
  /* The marker goes first so that no reader sees the logs gone without
   * it; if the disk is too full to write it, the logs go anyway and the
   * marker is tried again in the room they leave. */
  if (!marked)
    mrc = write_marker(dirfd(d), now, why);
  for (i = 0; i < n; i++)
    remove_entry(dirfd(d), id, names[i], 1, w);
  if (mrc < 0)
    mrc = write_marker(dirfd(d), now, why);
  if (mrc < 0)
    fail(w, id, MARKER, mrc);
out:
  for (i = 0; i < n; i++)
    free(names[i]);
  free(names);
  closedir(d);
}

int ccci_retention_apply(const char *runs_dir,
                         const struct ccci_retention_action *a, int64_t now,
                         char **err)
{
  struct walk w = {0};
  int root = -1, rc = 0;
  *err = NULL;
  if (memchr(a->id, '\0', sizeof(a->id)) == NULL) {
    *err = ccci_xstrdup("retention: run id not terminated");
    return -EINVAL;
  }
  if (!ccci_run_id_valid(a->id)) {
    *err = ccci_xasprintf("retention: invalid run id '%.60s'", a->id);
    return -EINVAL;
  }
  if (a->act != CCCI_RETENTION_PRUNE_LOGS && a->act != CCCI_RETENTION_REMOVE) {
    *err = ccci_xasprintf("retention: unknown action %d for run %s",
                          (int)a->act, a->id);
    return -EINVAL;
  }
  root = open_root(runs_dir, &w);
  if (root == -ENOENT)
    return 0; /* no runs dir: the run is gone already */
  if (root < 0) {
    rc = root;
    *err = ccci_xasprintf("retention: cannot open %s: %s", runs_dir,
                          strerror(-rc));
    return rc;
  }
  if (a->act == CCCI_RETENTION_REMOVE)
    remove_entry(root, NULL, a->id, 0, &w);
  else
    prune(root, a->id, now, a->why != NULL ? a->why : "unknown", &w);
  rc = w.rc;
  if (rc != 0)
    *err = walk_error(runs_dir, &w);
  close(root);
  free(w.where);
  return rc;
}
