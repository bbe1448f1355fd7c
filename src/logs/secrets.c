/* Secret values read from files: the scan rules of SPEC section 7. */
#include "ccci/logs/secrets.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct scan {
  struct ccci_secrets *out;
  struct {
    dev_t dev;
    ino_t ino;
  } * seen; /* directories already read */
  size_t nseen;
  size_t files;
  char *err;
  bool stat_only;     /* fingerprint only: no file is read */
  struct ccci_buf fp; /* "path dev ino mtime size" per file */
};

static void warn(struct scan *sc, char *msg)
{
  struct ccci_secrets *o = sc->out;
  o->warnings = ccci_xrealloc(o->warnings, (o->nwarnings + 1) * sizeof(char *));
  o->warnings[o->nwarnings++] = msg;
}

static int read_secret(struct scan *sc, const char *path, const struct stat *st)
{
  struct ccci_secrets *o = sc->out;
  char *data = NULL;
  size_t len = 0;
  int r;

  if (++sc->files > CCCI_SECRET_MAX_FILES) {
    sc->err = ccci_xasprintf("more than %d secret files; refusing to go on",
                             CCCI_SECRET_MAX_FILES);
    return -E2BIG;
  }
  r = ccci_buf_printf(&sc->fp, "%s %llu %llu %lld.%09ld %lld\n", path,
                      (unsigned long long)st->st_dev,
                      (unsigned long long)st->st_ino,
                      (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                      (long long)st->st_size);
  (void)r; /* uncapped */
  if (sc->stat_only)
    return 0;
  r = ccci_read_file(path, CCCI_SECRET_MAX_BYTES, &data, &len);
  if (r == -EFBIG) {
    warn(sc, ccci_xasprintf("secret file %s is larger than %d bytes; "
                            "skipped (its value is not masked)",
                            path, CCCI_SECRET_MAX_BYTES));
    return 0;
  }
  if (r < 0) {
    sc->err = ccci_xasprintf("cannot read the secret file %s: %s", path,
                             strerror(-r));
    return r;
  }
  while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
    data[--len] = '\0';
  o->v = ccci_xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
  o->v[o->n].path = ccci_xstrdup(path);
  o->v[o->n].value = (unsigned char *)data;
  o->v[o->n].len = len;
  o->n++;
  return 0;
}

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int scan_path(struct scan *sc, const char *path);

static int scan_dir(struct scan *sc, const char *path, const struct stat *st)
{
  DIR *d;
  struct dirent *de;
  char **names = NULL;
  size_t n = 0, i;
  int r = 0;

  for (i = 0; i < sc->nseen; i++)
    if (sc->seen[i].dev == st->st_dev && sc->seen[i].ino == st->st_ino)
      return 0; /* a loop, or a directory reached twice */
  sc->seen = ccci_xrealloc(sc->seen, (sc->nseen + 1) * sizeof(*sc->seen));
  sc->seen[sc->nseen].dev = st->st_dev;
  sc->seen[sc->nseen++].ino = st->st_ino;

  d = opendir(path);
  if (d == NULL) {
    r = -errno;
    sc->err = ccci_xasprintf("cannot read the secrets directory %s: %s", path,
                             strerror(errno));
    return r;
  }
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    names = ccci_xrealloc(names, (n + 1) * sizeof(char *));
    names[n++] = ccci_xasprintf("%s/%s", path, de->d_name);
  }
  if (errno != 0) {
    r = -errno;
    sc->err = ccci_xasprintf("cannot list the secrets directory %s: %s", path,
                             strerror(errno));
  }
  closedir(d);
  if (n > 0)
    qsort(names, n, sizeof(char *), name_cmp);
  for (i = 0; i < n; i++) {
    if (r == 0)
      r = scan_path(sc, names[i]);
    free(names[i]);
  }
  free(names);
  return r;
}

/* stat() follows symlinks: a dangling one cannot be read, so it fails. */
static int scan_path(struct scan *sc, const char *path)
{
  struct stat st;
  if (stat(path, &st) < 0) {
    int r = -errno;
    sc->err =
        ccci_xasprintf("cannot read the secret %s: %s", path, strerror(errno));
    return r;
  }
  if (S_ISDIR(st.st_mode))
    return scan_dir(sc, path, &st);
  if (S_ISREG(st.st_mode))
    return read_secret(sc, path, &st);
  return 0; /* sockets, fifos, devices: not secrets */
}

static int scan_all(struct scan *sc, const char *dir, bool dir_optional,
                    const char *const *files, size_t nfiles)
{
  size_t i;
  int r = 0;

  if (dir != NULL) {
    struct stat st;
    int sr = stat(dir, &st);
    if (sr < 0 && errno == ENOENT && dir_optional) {
      if (!sc->stat_only)
        warn(sc, ccci_xasprintf("secrets directory %s does not exist; no "
                                "secrets from it",
                                dir));
    } else if (sr == 0 && !S_ISDIR(st.st_mode)) {
      sc->err =
          ccci_xasprintf("the secrets directory %s is not a directory", dir);
      r = -ENOTDIR;
    } else {
      r = scan_path(sc, dir);
    }
  }
  for (i = 0; i < nfiles && r == 0; i++) {
    struct stat st;
    if (stat(files[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      sc->err = ccci_xasprintf("the secret file %s is a directory", files[i]);
      r = -EISDIR;
    } else {
      r = scan_path(sc, files[i]);
    }
  }
  free(sc->seen);
  return r;
}

int ccci_secrets_load(const char *dir, bool dir_optional,
                      const char *const *files, size_t nfiles,
                      struct ccci_secrets *out, char **err)
{
  struct scan sc;
  int r;

  memset(out, 0, sizeof(*out));
  memset(&sc, 0, sizeof(sc));
  sc.out = out;
  ccci_buf_init(&sc.fp, SIZE_MAX);
  *err = NULL;
  r = scan_all(&sc, dir, dir_optional, files, nfiles);
  if (r < 0) {
    ccci_buf_close(&sc.fp);
    ccci_secrets_free(out);
    *err = sc.err;
    return r;
  }
  out->fingerprint = ccci_buf_detach(&sc.fp);
  return 0;
}

int ccci_secrets_fingerprint(const char *dir, bool dir_optional,
                             const char *const *files, size_t nfiles,
                             char **fingerprint, char **err)
{
  struct ccci_secrets none;
  struct scan sc;
  int r;

  memset(&none, 0, sizeof(none));
  memset(&sc, 0, sizeof(sc));
  sc.out = &none;
  sc.stat_only = true;
  ccci_buf_init(&sc.fp, SIZE_MAX);
  *err = NULL;
  *fingerprint = NULL;
  r = scan_all(&sc, dir, dir_optional, files, nfiles);
  ccci_secrets_free(&none);
  if (r < 0) {
    ccci_buf_close(&sc.fp);
    *err = sc.err;
    return r;
  }
  *fingerprint = ccci_buf_detach(&sc.fp);
  return 0;
}

void ccci_secrets_free(struct ccci_secrets *s)
{
  size_t i;
  for (i = 0; i < s->n; i++) {
    free(s->v[i].path);
    ccci_wipe_free(s->v[i].value, s->v[i].len);
  }
  free(s->v);
  for (i = 0; i < s->nwarnings; i++)
    free(s->warnings[i]);
  free(s->warnings);
  free(s->fingerprint);
  memset(s, 0, sizeof(*s));
}
