/* A temporary directory for one test fixture: made under /tmp, removed
 * with everything below it. Tests only. */
#ifndef CCCI_TEST_TMPDIR_H
#define CCCI_TEST_TMPDIR_H

#include <dirent.h>
#include <ftw.h>
#include <string.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Remove one entry of a tree (an nftw() callback, children first). */
static inline int tmpdir_rm_entry(const char *path, const struct stat *st,
                                  int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Make /tmp/ccci-test-<name>-XXXXXX and return its resolved path (the
 * loaders compare realpath()s), to free(); NULL on failure. */
static inline char *tmpdir_make(const char *name)
{
  char tmpl[PATH_MAX];

  if (snprintf(tmpl, sizeof(tmpl), "/tmp/ccci-test-%s-XXXXXX", name) >=
          (int)sizeof(tmpl) ||
      mkdtemp(tmpl) == NULL)
    return NULL;
  return realpath(tmpl, NULL);
}

/* Remove @p dir and everything below it; 0 or -1. */
static inline int tmpdir_remove(const char *dir)
{
  return nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A cmocka setup: a fresh tmpdir_make(@p name) in *@p state; -1 when it
 * cannot be made. */
static inline int tmpdir_setup(void **state, const char *name)
{
  char *dir = tmpdir_make(name);
  if (dir == NULL)
    return -1;
  *state = dir;
  return 0;
}

/* The cmocka teardown of tmpdir_setup. */
static inline int tmpdir_teardown(void **state)
{
  char *dir = *state;
  int r = tmpdir_remove(dir);
  free(dir);
  return r;
}

/* How many entries (besides . and ..) are in @p dir; (size_t)-1 when it
 * cannot be read. */
static inline size_t tmpdir_count(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  size_t n = 0;
  if (d == NULL)
    return (size_t)-1;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

#endif
