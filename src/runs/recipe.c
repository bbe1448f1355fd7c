/* A submitted recipe into its run dir: the capped copy of the directory,
 * meta.json, and the removal of a run dir that could not be made. */
#include "ccci/runs/recipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One copy: what it took so far against the caps, and its first error. */
struct copy {
  uint64_t bytes, entries;
  char *err;
};

static int copy_file(struct copy *s, const char *from, const char *to,
                     mode_t mode)
{
  int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), out, rc = 0;
  char buf[65536];
  if (in < 0)
    return -errno;
  out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
  if (out < 0) {
    rc = -errno;
    close(in);
    return rc;
  }
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf)), w = 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? -errno : 0;
      break;
    }
    s->bytes += (uint64_t)n;
    if (s->bytes > CCCI_RECIPE_MAX_BYTES) {
      rc = -EFBIG;
      break;
    }
    while (w < n) {
      ssize_t k = write(out, buf + w, (size_t)(n - w));
      if (k < 0 && errno == EINTR)
        continue;
      if (k < 0) {
        rc = -errno;
        break;
      }
      w += k;
    }
    if (rc < 0)
      break;
  }
  close(in);
  if (close(out) < 0 && rc == 0)
    rc = -errno;
  return rc;
}

static int copy_tree(struct copy *s, const char *from, const char *to)
{
  DIR *d;
  struct dirent *de;
  int rc = 0;

  if (mkdir(to, 0750) < 0)
    return -errno;
  d = opendir(from);
  if (d == NULL)
    return -errno;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    char *f, *t;
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (++s->entries > CCCI_RECIPE_MAX_ENTRIES) {
      rc = -E2BIG;
      break;
    }
    f = ccci_xasprintf("%s/%s", from, de->d_name);
    t = ccci_xasprintf("%s/%s", to, de->d_name);
    if (lstat(f, &st) < 0) {
      rc = -errno;
    } else if (S_ISDIR(st.st_mode)) {
      rc = copy_tree(s, f, t);
    } else if (S_ISREG(st.st_mode)) {
      rc = copy_file(s, f, t, st.st_mode);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(f, target, sizeof(target) - 1);
      if (n < 0) {
        rc = -errno;
      } else {
        target[n] = '\0';
        if (symlink(target, t) < 0)
          rc = -errno;
      }
    }
    if (rc < 0 && s->err == NULL)
      s->err =
          ccci_xasprintf("cannot copy %s: %s", f,
                         rc == -EFBIG   ? "the directory is over 256 MiB"
                         : rc == -E2BIG ? "the directory has over 50000 entries"
                                        : strerror(-rc));
    free(f);
    free(t);
  }
  closedir(d);
  return rc;
}

/* Remove @p path and everything below it (best effort). */
static void remove_tree(const char *path)
{
  DIR *d = opendir(path);
  struct dirent *de;
  if (d != NULL) {
    while ((de = readdir(d)) != NULL) {
      char *p;
      struct stat st;
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      p = ccci_xasprintf("%s/%s", path, de->d_name);
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
        remove_tree(p);
      else
        unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(path);
}

int ccci_recipe_copy(const char *from, const char *to, char **err)
{
  struct copy c = {0, 0, NULL};
  int rc = copy_tree(&c, from, to);
  *err = c.err;
  return rc;
}

int ccci_recipe_accept(const char *dir, const char *src,
                       const struct ccci_run_meta *m, char **err)
{
  char *recipe = ccci_xasprintf("%s/recipe", dir);
  int rc = 0;

  *err = NULL;
  if (src != NULL)
    rc = ccci_recipe_copy(src, recipe, err);
  if (rc < 0 && *err == NULL)
    *err = ccci_xasprintf("cannot copy %s: %s", src, strerror(-rc));
  if (rc == 0) {
    char *meta = ccci_xasprintf("%s/meta.json", dir);
    rc = ccci_run_meta_write(meta, m);
    if (rc < 0)
      *err = ccci_xasprintf("cannot write %s: %s", meta, strerror(-rc));
    free(meta);
  }
  if (rc < 0)
    remove_tree(dir);
  free(recipe);
  return rc;
}
