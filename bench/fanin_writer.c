/* Benchmark child for bench/fanin.py: writes N MiB of CI-like lines to
 * stdout (some carrying a secret from $FANIN_SECRET), as fast as it can. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanin_lines.h"

int main(int argc, char **argv)
{
  unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 4;
  unsigned long target = mib * 1024 * 1024, written = 0, i = 0;
  const char *secret = getenv("FANIN_SECRET");
  static char buf[65536];
  size_t used = 0;

  while (written < target) {
    char line[512];
    int n = fanin_line(line, sizeof(line), i, secret);
    i++;
    if (used + (size_t)n > sizeof(buf)) {
      if (write(1, buf, used) != (ssize_t)used)
        return 1;
      written += used;
      used = 0;
    }
    memcpy(buf + used, line, (size_t)n);
    used += (size_t)n;
  }
  if (used > 0 && write(1, buf, used) != (ssize_t)used)
    return 1;
  return 0;
}
