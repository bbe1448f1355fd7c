/* The run outcome (SPEC sections 4 and 8, docs/harness-contract.md): how
 * the supervision ended, the harness's state files and results.json, to
 * the run's reason, whether its domain is torn down first, its level and
 * its commit status. Pure: the caller reads the files and carries it out. */
#ifndef CCCI_OUTCOME_H
#define CCCI_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/runs/results.h"
#include "ccci/runs/run.h"

/** ccci_outcome_case.deploys when state/deploys was never written. */
#define CCCI_OUTCOME_NO_FILE (-2)

/** The facts of one ended run. */
struct ccci_outcome_case {
  /**
   * The janitor took over a run another daemon instance left (its lock
   * free): only results.json counts, and the domain is torn down.
   */
  bool adopted;
  bool cancelled;       /**< `ccci cancel`, or the runner was stopped so */
  bool timed_out;       /**< the deadline fired */
  bool supervisor_died; /**< the supervisor was killed (signal, backstop) */
  int exit_code;        /**< the harness's exit code; -1: unknown */
  int signal;           /**< the signal that ended the harness; 0: none */
  /** state/deploys: a count, -1 when not a count, or CCCI_OUTCOME_NO_FILE. */
  long long deploys;
  long long cold_deps;   /**< `<name> cold` lines in state/deps */
  bool opstate_deployed; /**< state/opstate starts with `deployed` */
  /** state/server has the sticky `unreachable <pattern>` line: the harness
   * stopped the run at a connection error (SPEC section 12). */
  bool unreachable;
  /** results.json as read; NULL when not read (then no level: a run seen
   * to end gets its reason without it) */
  const struct ccci_results *results;
};

/** What the deploy budget (DG4.1) found. */
enum ccci_outcome_budget {
  CCCI_BUDGET_UNCHECKED, /**< not a success or failure, or never deployed */
  CCCI_BUDGET_KEPT,      /**< deploys == 1 + cold dependencies */
  CCCI_BUDGET_NOT_COUNT, /**< state/deploys is not a count */
  CCCI_BUDGET_OVER,      /**< another number of deploys */
};

/** The verdict. */
struct ccci_outcome {
  enum ccci_run_reason reason;
  enum ccci_outcome_budget budget;
  /** Tear the domain down before the run finishes (a deployment may be
   * left: stopped while deployed, its server unreachable while deployed,
   * or adopted by the janitor). */
  bool teardown;
  /** The run ended as `error` because its server could not be reached
   * (the note says `server <name> unreachable: <pattern>`). */
  bool unreachable;
  int level;                 /**< the level reported; -1: none */
  const char *commit_status; /**< as the forge reporter posts it */
};

/**
 * The level a run finished with @p reason reports: the `level` of @p r
 * when @p r is complete and the reason keeps the level (success, failure);
 * else -1 ("none" in docs/harness-contract.md). @p r may be NULL. The
 * outcome and the forge reporter both use it, so they agree.
 */
int ccci_outcome_level(enum ccci_run_reason reason,
                       const struct ccci_results *r);

/** Largest state/server file read. */
#define CCCI_OUTCOME_SERVER_MAX 4096

/** The harness's state/server (CCCI_SERVER_FILE, SPEC section 12). */
struct ccci_outcome_server {
  char name[256];             /**< `server <name>` */
  uint64_t reached;           /**< calls that got an answer */
  uint64_t connection_errors; /**< calls in a row that did not, at the end */
  char error[256]; /**< the harness.connection_errors entry matched */
  /** `unreachable <pattern>`: the run stopped at a connection error (kept
   * by every later write of the run); empty when not. */
  char unreachable[256];
};

/**
 * Parse state/server's @p len bytes: lines `server <name>`, `reached <n>`,
 * `connection_errors <n>`, `error <pattern>` (only with connection errors),
 * `unreachable <pattern>` (sticky, once the run stopped at one), unknown
 * keys skipped. Returns 0, or -EINVAL with a
 * reason in @p why (a static string) when a line is malformed, `reached`
 * or `connection_errors` is missing, or a value is too long.
 */
int ccci_outcome_server_parse(const char *text, size_t len,
                              struct ccci_outcome_server *out,
                              const char **why) CCCI_WUR;

/** Decide (the tables of docs/harness-contract.md). */
struct ccci_outcome ccci_outcome_decide(const struct ccci_outcome_case *c);

/**
 * What a teardown try did: forced when it ran out of time (@p forced: its
 * deadline fired or its session was killed), clean when it exited 0, else
 * failed.
 */
enum ccci_teardown ccci_outcome_teardown(bool forced, long long exit_status);

#endif
