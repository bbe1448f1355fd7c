/* SCREENSHOT: a PNG of the app's HEALTH_PATH taken with Debian's headless
 * chromium, reaching the app through harness.gateway (docs/hooks.md). */
#ifndef CCCI_SHOT_H
#define CCCI_SHOT_H

#include <stdbool.h>
#include <stdint.h>

/** What to photograph. */
struct ccci_shot {
  const char *chromium; /**< the browser (harness.chromium, a command name
                           or a path) */
  const char *url;      /**< https://<domain><HEALTH_PATH> */
  const char *domain;   /**< the app's domain */
  const char *gateway;  /**< harness.gateway (`host:port` or
                           `http://host:port`), NULL: DNS */
  bool insecure;        /**< harness.gateway_insecure */
  const char *png;      /**< where the PNG goes (its directory exists) */
  uint64_t timeout_ms;  /**< the browser's time limit */
};

/** How a screenshot went. */
enum ccci_shot_end {
  CCCI_SHOT_TAKEN,   /**< the PNG is written (and starts with a PNG header) */
  CCCI_SHOT_MISSING, /**< no browser: not a failure of the tier */
  CCCI_SHOT_FAILED,  /**< the browser ran and made no PNG */
};

/**
 * Take @p s through ccci_hcall_run (logged, timed out, killed on a stop).
 * Returns how it went; @p why (allocated) says why for MISSING and FAILED.
 */
enum ccci_shot_end ccci_shot_take(const struct ccci_shot *s, char **why);

#endif
