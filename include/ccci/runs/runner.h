/* One supervised process of a run on the loop: the supervisor spawned in
 * its own session, its two pipes through a redactor and a line assembler
 * each into the log store, the deadline, and the stop funnel. */
#ifndef CCCI_RUNNER_H
#define CCCI_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/util.h"
#include "ccci/logs/logstore.h"
#include "ccci/logs/redact.h"

/** Extra time after kill_grace before the daemon SIGKILLs the session. */
#define CCCI_RUNNER_BACKSTOP_MS 10000u

/** An argv whose program is exactly this runs the daemon's own binary. */
#define CCCI_RUNNER_SELF "ccci"

/** What to run and how. Everything is copied or referenced by start. */
struct ccci_runner_spec {
  const char *run_id;
  const char *self_exe;  /**< the ccci binary, for `ccci supervise` */
  const char *state_dir; /**< runs/<id>/state: the exit detail lands here */
  /** The harness's argv, NULL-terminated; a first word CCCI_RUNNER_SELF
   * (`ccci`) is replaced by self_exe. */
  char *const *argv;
  char *const *env;     /**< the supervisor's environment, NULL-ended */
  const char *user;     /**< harness.user, or NULL */
  int lock_fd;          /**< handed to the supervisor, or -1 */
  uint64_t deadline_ms; /**< from start; 0: none */
  uint64_t kill_grace_ms;
  uint64_t drain_timeout_ms;
  struct ccci_redact_set *secrets; /**< referenced */
  struct ccci_logstore *logs;      /**< lines go here */
  /** Counters (or NULL): bytes of output through the redactor, and masked
   * runs it wrote; they must outlive the runner. */
  uint64_t *redacted_bytes, *redacted_masks;
};

/** How a runner ended. */
struct ccci_runner_result {
  int64_t exit_status; /**< the supervisor's exit status, -1 if killed */
  int term_signal;     /**< the signal that killed the supervisor, or 0 */
  bool timed_out;      /**< the deadline fired */
  bool cancelled;      /**< ccci_runner_stop(cancel) was called */
  bool backstop;       /**< the supervisor's session had to be SIGKILLed */
  bool drain_timeout;  /**< the pipes were still open drain_timeout after */
  uint64_t duration_ms;
};

struct ccci_runner;

/** Called once when the supervisor's status is known and the pipes are
 * done (EOF, or drain_timeout passed). */
typedef void (*ccci_runner_done)(struct ccci_runner *r,
                                 const struct ccci_runner_result *res,
                                 void *arg);

/**
 * Spawn the supervisor for @p spec. Returns 0 and the runner in @p out, or
 * a negative errno with a message in @p err (then @p done is never called).
 */
int ccci_runner_start(uv_loop_t *loop, const struct ccci_runner_spec *spec,
                      ccci_runner_done done, void *arg,
                      struct ccci_runner **out, char **err) CCCI_WUR;

/**
 * The stop funnel: SIGTERM to the supervisor (it stops the harness with
 * kill_grace), a backstop SIGKILL of its session kill_grace + 10 s later.
 * @p cancel says why (cancel, else timeout). Repeated calls do nothing.
 */
void ccci_runner_stop(struct ccci_runner *r, bool cancel);

/** The supervisor's pid (0 once it is gone). */
int ccci_runner_pid(const struct ccci_runner *r);

/**
 * Swap the secret set of the open streams (see ccci_redact_swap): values
 * are only ever added. Returns 0 or a negative errno.
 */
int ccci_runner_swap_secrets(struct ccci_runner *r,
                             struct ccci_redact_set *set) CCCI_WUR;

/** Release the runner; only after its done callback. */
void ccci_runner_free(struct ccci_runner *r);

#endif
