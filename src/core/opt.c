/* One option of a command line: "-x V", "--long V" or "--long=V". */
#include "ccci/core/opt.h"

#include <errno.h>
#include <string.h>

int ccci_opt_value(int argc, char **argv, int *i, const char *shrt,
                   const char *lng, const char **out, char **cause)
{
  const char *a = argv[*i];
  size_t l = strlen(lng);

  if ((shrt != NULL && strcmp(a, shrt) == 0) || strcmp(a, lng) == 0) {
    if (*i + 1 >= argc) {
      *cause = ccci_xasprintf("option %s needs a value", a);
      return -EINVAL;
    }
    *out = argv[++*i];
    return 1;
  }
  if (strncmp(a, lng, l) == 0 && a[l] == '=') {
    *out = a + l + 1;
    return 1;
  }
  return 0;
}
