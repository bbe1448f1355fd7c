/* `ccci harness`: one recipe at one commit through the tiers with abra,
 * then teardown and results.json (SPEC section 8, docs/harness.md). A plain
 * sequential process: no libuv. */
#ifndef CCCI_HARNESS_H
#define CCCI_HARNESS_H

/** Exit status: every tier run passed (skips allowed). */
#define CCCI_HARNESS_EXIT_OK 0
/** Exit status: a tier failed, or the recipe is invalid. */
#define CCCI_HARNESS_EXIT_FAILED 1
/** Exit status: a server call failed with a connection error
 * (`harness.connection_errors`): the tiers stopped, state/server says which
 * text matched. Not a recipe failure. */
#define CCCI_HARNESS_EXIT_UNREACHABLE 2
/** `--probe` exit status: the probe failed with a connection error. */
#define CCCI_HARNESS_EXIT_PROBE_UNREACHABLE 1
/** `--probe` exit status: the probe failed otherwise (or did not run). */
#define CCCI_HARNESS_EXIT_PROBE_FAILED 2
/** Exit status: a usage error. */
#define CCCI_HARNESS_EXIT_USAGE 64
/** Exit status: the configuration cannot be read. */
#define CCCI_HARNESS_EXIT_CONFIG 126
/** Exit status: abra, docker or git cannot be executed. */
#define CCCI_HARNESS_EXIT_NOEXEC 127

/**
 * Run `ccci harness` with its arguments @p argc/@p argv (after the command
 * name) and the config file @p config (NULL: $CCCI_CONFIG, else the
 * embedded default). The environment contract (docs/harness-contract.md)
 * gives the run; flags (`--recipe DIR`, `--ref`, `--domain`, `--server`,
 * `--quick`, `--results`, `--keep`, `--tier`, `--run-dir`) override it for
 * standalone use; `--teardown` tears down what the run's state files say
 * exists; `--probe [--server S]` runs the `harness.abra.probe` template
 * once (exit 0 reached, CCCI_HARNESS_EXIT_PROBE_UNREACHABLE,
 * CCCI_HARNESS_EXIT_PROBE_FAILED, 64 usage). Every call that contacts the
 * server is matched against `harness.connection_errors` and counted in
 * state/server (CCCI_SERVER_FILE). Returns the process exit status:
 * CCCI_HARNESS_EXIT_*, or 128 + the signal that stopped it (after its
 * teardown).
 */
int ccci_harness_main(int argc, char **argv, const char *config);

#endif
