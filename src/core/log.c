/* The daemon's log: one line per entry on stderr, `level module: message`. */
#include "ccci/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum ccci_log_level min_level = CCCI_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ccci_log_set_level(enum ccci_log_level level)
{
  min_level = level;
}

void ccci_log(enum ccci_log_level level, const char *module, const char *run,
              const char *fmt, ...)
{
  char line[4096];
  size_t n = 0;
  const char *p;
  char *msg;
  va_list ap;
  int saved = errno;

  if (level < min_level)
    return;
  va_start(ap, fmt);
  msg = ccci_xvasprintf(fmt, ap);
  va_end(ap);

  n = (size_t)snprintf(line, sizeof(line), "%s %s: ", level_names[level],
                       module);
  if (run != NULL && n < sizeof(line))
    n += (size_t)snprintf(line + n, sizeof(line) - n, "run=%s ", run);
  if (n > sizeof(line) - 8)
    n = sizeof(line) - 8;
  /* Escape control bytes so one entry is always one line; leave room for
   * "...\n" when the message is longer than the line. */
  for (p = msg; *p != '\0' && n < sizeof(line) - 8; p++) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f)
      n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", c);
    else
      line[n++] = (char)c;
  }
  if (*p != '\0') {
    memcpy(line + n, "...", 3);
    n += 3;
  }
  line[n++] = '\n';
  free(msg);
  {
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
  }
  errno = saved;
}
