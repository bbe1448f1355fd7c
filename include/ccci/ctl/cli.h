/* The command-line commands: each takes the global options and its own
 * arguments and returns the process exit code. */
#ifndef CCCI_CLI_H
#define CCCI_CLI_H

#include <stdbool.h>

#include "ccci/core/exit.h"

/** Options that may stand before or after the subcommand. */
struct ccci_cli {
  const char *socket; /**< -s / --socket */
  const char *config; /**< -c / --config */
  bool json;          /**< --json */
};

/** `ccci status`: ask the daemon for its state and counters. */
int ccci_cmd_status(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci config check FILE` and `ccci config docs`. */
int ccci_cmd_config(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci version`. */
int ccci_cmd_version(const struct ccci_cli *cli, int argc, char **argv);
/**
 * `ccci redact`: filter stdin to stdout, masking the secrets of
 * --secrets-dir (default /run/secrets) and --secret-file; exit 2 when a
 * secret cannot be read (fail closed).
 */
int ccci_cmd_redact(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci submit DIR [--ref REF] [--pr N] [--quick]`: prints the run id. */
int ccci_cmd_submit(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci show RUN`: meta and steps; exit code by the run's reason. */
int ccci_cmd_show(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci cancel RUN`. */
int ccci_cmd_cancel(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci ps [--state S] [--recipe R]`. */
int ccci_cmd_ps(const struct ccci_cli *cli, int argc, char **argv);
/**
 * `ccci tail RUN [--step S] [--from N] [--no-follow]`: print a run's log as
 * it is written; the exit code tells the run's result (as `show`).
 */
int ccci_cmd_tail(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci janitor [--dry-run]`: sweep now, print each decision. */
int ccci_cmd_janitor(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci drain`: stop admitting runs. */
int ccci_cmd_drain(const struct ccci_cli *cli, int argc, char **argv);
/**
 * `ccci server ls`, `ccci server drain NAME`, `ccci server undrain NAME`:
 * the pool of swarm servers (docs/protocol.md, `server_ls`). An unknown
 * server exits CCCI_EXIT_NO_SUCH_RUN (3) with the daemon's message.
 */
int ccci_cmd_server(const struct ccci_cli *cli, int argc, char **argv);
/** `ccci harness ...` (ccci_harness_main, docs/harness.md). */
int ccci_cmd_harness(const struct ccci_cli *cli, int argc, char **argv);
/** The hidden `ccci supervise` (see ccci_supervise_main). */
int ccci_cmd_supervise(const struct ccci_cli *cli, int argc, char **argv);

/**
 * A usage error when @p cmd got arguments (@p argc > 0): prints it and
 * returns CCCI_EXIT_USAGE; else 0.
 */
int ccci_cli_no_args(const char *cmd, int argc, char **argv);

/** Print a usage error naming @p what and return CCCI_EXIT_USAGE. */
int ccci_cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
