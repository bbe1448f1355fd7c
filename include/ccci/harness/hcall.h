/* The harness's one way to run a command (abra, docker, git, the recipe's
 * tests): logged before it runs, non-interactive, in its own process group,
 * under a timeout, killed on SIGTERM, its output redacted line by line. */
#ifndef CCCI_HCALL_H
#define CCCI_HCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/keytab.h"
#include "ccci/core/util.h"

/** How long a stopped call gets between SIGTERM and SIGKILL to its group. */
#define CCCI_HCALL_KILL_GRACE_MS 2000
/** Output a call may capture (bytes per stream). */
#define CCCI_HCALL_CAPTURE_MAX (1024 * 1024)

/**
 * Start the harness's output: its stdout, through one streaming redactor
 * (SPEC section 7) that masks @p n secret values (copied), more added with
 * ccci_hcall_add_secret. Installs the SIGTERM, SIGINT and SIGCHLD handlers
 * the calls wait on. Returns 0 or a negative errno.
 */
int ccci_hcall_init(const char *const *values, const size_t *lens,
                    size_t n) CCCI_WUR;

/** Flush the redactor (end of stream) and free everything. */
void ccci_hcall_close(void);

/**
 * Mask @p len bytes at @p value from now on (values shorter than the
 * redactor's minimum length are not masked). Returns 0 or a negative errno.
 */
int ccci_hcall_add_secret(const void *value, size_t len) CCCI_WUR;

/** @p s with every secret known so far masked (a new string; NULL stays
 * NULL): for text that leaves by another way than stdout (results.json). */
char *ccci_hcall_redact_str(const char *s);

/** Print formatted text (a whole line, with its newline) through the
 * redactor to stdout. */
void ccci_hcall_printf(const char *fmt, ...) CCCI_PRINTF(1, 2);

/** The signal that stopped the harness (SIGTERM, SIGINT), or 0. */
int ccci_hcall_stopped(void);

/** Milliseconds on the monotonic clock past which no call is started and
 * a running one is killed (0: none); calls with ignore_stop only obey their
 * own timeout. */
void ccci_hcall_set_deadline(uint64_t deadline_ms);

/** Whether the harness deadline (ccci_hcall_set_deadline) has passed. */
bool ccci_hcall_deadline_passed(void);

/** What to run. */
struct ccci_hcall {
  char *const *argv;   /**< argv[0] looked up on PATH */
  char *const *env;    /**< extra NAME=value entries (NULL-terminated), or
                          NULL */
  const char *cwd;     /**< NULL: the harness's */
  uint64_t timeout_ms; /**< 0: none */
  bool capture;        /**< keep stdout in `out` */
  bool withhold;       /**< print none of stdout (its values are secret) */
  bool quiet;          /**< do not log the command line or stdout */
  bool ignore_stop;    /**< run on after SIGTERM and the deadline
                          (teardown) */
  /** Texts looked for, in any case, in every line of stdout and stderr
   * (captured, withheld and quiet output too), or NULL: the
   * `harness.connection_errors` of a call that contacts a server. Empty
   * entries never match. */
  const struct ccci_strlist *match;
};

/** How it went. */
enum ccci_hcall_end {
  CCCI_HCALL_EXITED,   /**< exited; see `status` */
  CCCI_HCALL_SIGNALED, /**< killed by a signal it did not get from us */
  CCCI_HCALL_TIMEOUT,  /**< killed at its timeout */
  CCCI_HCALL_DEADLINE, /**< killed at the harness deadline */
  CCCI_HCALL_STOPPED,  /**< killed because the harness got SIGTERM/SIGINT */
  CCCI_HCALL_NOEXEC,   /**< could not be executed (`status` is the errno) */
};

/** The result of ccci_hcall_run. */
struct ccci_hcall_result {
  enum ccci_hcall_end end;
  int status; /**< exit status, signal or errno by `end` */
  char *out;  /**< captured stdout (NUL-terminated) or NULL; wipe it */
  size_t out_len;
  char *err; /**< the last stderr line (for reasons), or NULL */
  /** The first entry of the call's `match` found in its output (a pointer
   * into that list, not a copy), or NULL. */
  const char *matched;
};

/**
 * Run @p c: print `$ argv...` (redacted) unless quiet, stdin /dev/null,
 * stdout and stderr read line by line and printed through the redactor
 * (stdout withheld or captured as asked), its own process group; on its
 * timeout, the harness deadline or a stop signal the group gets SIGTERM,
 * then SIGKILL after CCCI_HCALL_KILL_GRACE_MS. Fills @p res (free with
 * ccci_hcall_result_free). Returns 0 when it ran (whatever its status) or
 * a negative errno when it could not be started (pipe or fork failed).
 */
int ccci_hcall_run(const struct ccci_hcall *c,
                   struct ccci_hcall_result *res) CCCI_WUR;

/** Whether @p res is an exit with status 0. */
bool ccci_hcall_ok(const struct ccci_hcall_result *res);

/** A sentence saying why @p res is not ok, naming @p what (new string). */
char *ccci_hcall_why(const struct ccci_hcall_result *res, const char *what);

/** Wipe and free what @p res holds. */
void ccci_hcall_result_free(struct ccci_hcall_result *res);

#endif
