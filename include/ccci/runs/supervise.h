/* The per-run supervisor: the hidden `ccci supervise` command that stands
 * between the daemon and a run's harness, and the exit detail it leaves. */
#ifndef CCCI_SUPERVISE_H
#define CCCI_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/exit.h"
#include "ccci/core/util.h"

/** The exit detail's file name inside --state DIR. */
#define CCCI_SUPERVISE_EXIT_FILE "exit"
/** Exit status when the supervisor cannot set up (user, state dir, fork). */
#define CCCI_SUPERVISE_EXIT_SETUP 125
/** Exit status of a harness that could not be executed. */
#define CCCI_SUPERVISE_EXIT_EXEC 127
/** The longest --kill-grace accepted, in milliseconds (one day). */
#define CCCI_SUPERVISE_MAX_GRACE_MS 86400000u
/** The most --drain-fd options accepted. */
#define CCCI_SUPERVISE_MAX_DRAIN_FDS 8

/**
 * How a run's harness ended, as written to `<DIR>/exit`:
 * `{"exit_code":N|null,"signal":S|null,"core_dumped":bool,
 *   "killed_after_grace":bool,"daemon_died":bool}` and a newline.
 */
struct ccci_supervise_exit {
  int exit_code;           /**< the harness's exit code; -1 (null): killed */
  int signal;              /**< the signal that killed it; 0 (null): none */
  bool core_dumped;        /**< the signal left a core dump */
  bool killed_after_grace; /**< kill_grace ran out: the run got SIGKILL */
  bool daemon_died;        /**< the daemon was gone before the run ended */
};

/** Fill @p e from a waitpid() status; the two flags are left alone. */
void ccci_supervise_exit_from_status(struct ccci_supervise_exit *e, int status);

/** The supervisor's own exit status for @p e: exit code, or 128+signal. */
int ccci_supervise_exit_status(const struct ccci_supervise_exit *e);

/** Encode @p e as one line of JSON ending in "\n"; the caller frees it. */
char *ccci_supervise_exit_encode(const struct ccci_supervise_exit *e);

/**
 * Decode the exit detail in @p text (@p len bytes). Unknown keys are
 * ignored; the five known ones are required and must have their types.
 * Returns 0, or -EINVAL with nothing promised about @p e.
 */
int ccci_supervise_exit_decode(const char *text, size_t len,
                               struct ccci_supervise_exit *e) CCCI_WUR;

/**
 * Read and decode `<state_dir>/exit`. Returns 0, -ENOENT when the supervisor
 * wrote none (it was killed, or it failed before the harness), -EINVAL when
 * the file is not an exit detail, or another negative errno.
 */
int ccci_supervise_exit_read(const char *state_dir,
                             struct ccci_supervise_exit *e) CCCI_WUR;

/**
 * `ccci supervise`: run one harness under supervision and exit with its
 * status. Not listed by `ccci --help`; only the daemon starts it.
 *
 *     CCCI_DAEMON_PID=<pid> ccci supervise --state DIR --kill-grace MS
 *         [--lock-fd N] [--drain-fd N]... [--user NAME] -- HARNESS ARGV...
 *
 * The daemon spawns it in its own session (uv_spawn, UV_PROCESS_DETACHED)
 * with stdin /dev/null and stdout/stderr the write ends of two real pipes.
 *
 * - `CCCI_DAEMON_PID` (required) is the daemon's pid. The harness gets the
 *   supervisor's environment unchanged except that this variable is removed.
 * - `--state DIR`: where the exit detail goes (created when missing; it
 *   must be writable, as the harness user when --user is given).
 * - `--kill-grace MS`: time between SIGTERM and SIGKILL on a stop.
 * - `--lock-fd N`: the run's domain lock (a held flock). Marked close-on-exec
 *   and held until every process of the run is gone; the harness never has
 *   it.
 * - `--drain-fd N` (up to CCCI_SUPERVISE_MAX_DRAIN_FDS): duplicates of the
 *   daemon's read ends of the pipes. Left alone while the daemon lives; once
 *   it is gone they are read and discarded, so a harness tearing down after
 *   the daemon died never meets EPIPE.
 * - `--user NAME`: switch to the user (initgroups, setgid, setuid) before
 *   anything else, after giving it the stdout/stderr pipes so the harness
 *   can open /dev/stdout and /dev/stderr.
 *
 * Start: switch user; PR_SET_PDEATHSIG(SIGTERM); if the parent is no longer
 * CCCI_DAEMON_PID, the harness is not started and the supervisor ends as if
 * stopped (signal 15, daemon_died, exit 143); become child subreaper; take
 * SIGTERM, SIGINT, SIGHUP and SIGCHLD through a signalfd; fork the harness
 * into its own process group with default signal dispositions, an empty
 * mask and only fds 0-2, and execvp it.
 *
 * SIGTERM, SIGINT or SIGHUP (a cancel, a deadline, or the daemon's death)
 * sends SIGTERM to the harness's group; kill_grace later (not restarted by
 * more signals) SIGKILL goes to the group and to every descendant of the
 * supervisor. When the harness exits, every remaining descendant is
 * SIGKILLed at once and all are reaped. Then the exit detail is written
 * atomically and the supervisor exits with the harness's exit code, or
 * 128+signal.
 *
 * Exit status: the harness's as above; 64 for a usage error (a missing or
 * invalid CCCI_DAEMON_PID included); 125 (CCCI_SUPERVISE_EXIT_SETUP) when it
 * cannot switch user, use the state dir or fork; 127 when the harness cannot
 * be executed. Messages go to stderr as `<level> supervise: <message>`.
 * docs/supervisor.md has the design.
 */
int ccci_supervise_main(int argc, char **argv);

#endif
