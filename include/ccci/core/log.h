/* The daemon's log: one line per entry on stderr, `level module: message`. */
#ifndef CCCI_LOG_H
#define CCCI_LOG_H

#include "ccci/core/util.h"

enum ccci_log_level {
  CCCI_LOG_DEBUG,
  CCCI_LOG_INFO,
  CCCI_LOG_WARN,
  CCCI_LOG_ERROR,
};

/** Entries below @p level are dropped (default: info). */
void ccci_log_set_level(enum ccci_log_level level);

/**
 * Write one entry as `<level> <module>: [run=<id> ]<message>\n` to stderr in a
 * single write. Control bytes in the message (newlines included) are escaped
 * as `\xNN`, so an entry is always exactly one line. @p run may be NULL.
 */
void ccci_log(enum ccci_log_level level, const char *module, const char *run,
              const char *fmt, ...) CCCI_PRINTF(4, 5);

#define ccci_debug(mod, ...) ccci_log(CCCI_LOG_DEBUG, mod, NULL, __VA_ARGS__)
#define ccci_info(mod, ...) ccci_log(CCCI_LOG_INFO, mod, NULL, __VA_ARGS__)
#define ccci_warn(mod, ...) ccci_log(CCCI_LOG_WARN, mod, NULL, __VA_ARGS__)
#define ccci_error(mod, ...) ccci_log(CCCI_LOG_ERROR, mod, NULL, __VA_ARGS__)

#endif
