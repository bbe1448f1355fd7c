/* A temporary directory for one test fixture: made under /tmp, removed
 * with everything below it. Tests only. */
#ifndef CCCI_TEST_TMPDIR_H
#define CCCI_TEST_TMPDIR_H

#include <ftw.h>
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

#endif
