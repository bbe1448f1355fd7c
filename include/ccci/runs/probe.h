/* One probe of a pool server on the loop (SPEC section 12): a short
 * command (harness.probe_command) in its own session, as harness.user when
 * set, its output (stdout and stderr together) kept up to a cap, killed
 * with its process group after a timeout or on request. */
#ifndef CCCI_PROBE_H
#define CCCI_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/util.h"

/** The output a probe keeps (the rest is read and dropped). */
#define CCCI_PROBE_OUT_MAX 4096
/** After the probe exited, how long its pipe may stay open (a process that
 * left its group): then it is closed. */
#define CCCI_PROBE_DRAIN_MS 1000

/** What to run. Everything is copied by start. */
struct ccci_probe_spec {
  const char *self_exe; /**< a first word `ccci` of @p argv runs this */
  char *const *argv;    /**< NULL-terminated */
  char *const *env;     /**< NULL-terminated */
  const char *user;     /**< harness.user, or NULL: the daemon's */
  uint64_t timeout_ms;  /**< 0: none */
};

/** How a probe ended. */
struct ccci_probe_result {
  int64_t exit_status; /**< its exit code, -1 when killed by a signal */
  int term_signal;     /**< the signal that ended it, or 0 */
  bool timed_out;      /**< killed after timeout_ms */
  const char *out;     /**< its output (not NUL-terminated), valid during
                            the call */
  size_t len;
  bool truncated; /**< it printed more than CCCI_PROBE_OUT_MAX */
};

struct ccci_probe;

/** Called once, on the loop, when the probe's exit is known and its pipe
 * is done. The probe is freed after the call returns. */
typedef void (*ccci_probe_done)(const struct ccci_probe_result *res, void *arg);

/**
 * Spawn the probe of @p spec. Returns 0 and the probe in @p out (valid
 * until @p done returns), or a negative errno with a message in @p err;
 * then @p done is never called.
 */
int ccci_probe_start(uv_loop_t *loop, const struct ccci_probe_spec *spec,
                     ccci_probe_done done, void *arg, struct ccci_probe **out,
                     char **err) CCCI_WUR;

/** SIGKILL the probe's process group (the daemon stops); @p done follows. */
void ccci_probe_kill(struct ccci_probe *p);

#endif
