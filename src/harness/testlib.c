/* The ccci_testlib module: embedded at build time (python/embed.cmake) and
 * written into a run for the recipe's tests. */
#include "ccci/harness/testlib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ccci/core/util.h"

/* python/ccci_testlib.py with a NUL after it, and its length without the
 * NUL (the generated gen/testlib_py.c). */
extern const char ccci_testlib_py[];
extern const size_t ccci_testlib_py_len;

const char *ccci_testlib_source(void)
{
  return ccci_testlib_py;
}

int ccci_testlib_write(const char *dir, char **why)
{
  char *path = NULL;
  int r;

  *why = NULL;
  r = ccci_mkdir_p(dir, 0755);
  if (r < 0) {
    *why = ccci_xasprintf("cannot create %s: %s", dir, strerror(-r));
    return r;
  }
  path = ccci_path_join(dir, "ccci_testlib.py");
  r = ccci_write_file_atomic(path, ccci_testlib_py, ccci_testlib_py_len, 0644);
  /* The module is read-only for everyone, whatever the umask: it is code
   * the recipe's tests import, not a secret. */
  if (r == 0 && chmod(path, 0644) < 0)
    r = -errno;
  if (r < 0)
    *why = ccci_xasprintf("cannot write %s: %s", path, strerror(-r));
  free(path);
  return r;
}
