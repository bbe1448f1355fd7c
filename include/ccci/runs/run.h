/* A run's record: meta.json (versioned, closed sets of states and
 * reasons), its id, and its encoding. No I/O beyond the atomic write. */
#ifndef CCCI_RUN_H
#define CCCI_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ccci/core/keytab.h"
#include "ccci/core/util.h"

/** meta.json's schema version. */
#define CCCI_META_VERSION 1
/** Longest run id. */
#define CCCI_RUN_ID_MAX 40

/** A run's state (SPEC section 4). */
enum ccci_run_state {
  CCCI_RUN_QUEUED,
  CCCI_RUN_WAITING_LOCK,
  CCCI_RUN_RUNNING,
  CCCI_RUN_CANCELLING,
  CCCI_RUN_FINISHED,
};
/** How many states there are. */
#define CCCI_RUN_STATE_COUNT (CCCI_RUN_FINISHED + 1)

/**
 * The one table of run reasons (SPEC section 4; the table "Reasons,
 * statuses, exit codes" of docs/harness-contract.md is checked against it by
 * tests/unit/test_reasons.c). Per reason: the enum tail, its name in
 * meta.json, the exit code of `ccci show`/`ccci tail` (SPEC section 10), the
 * commit status the forge reporter posts, whether the level of results.json
 * is kept, the meaning and the level column of the docs.
 */
#define CCCI_RUN_REASONS(X)                                                    \
  X(SUCCESS, "success", 0, "success", true,                                    \
    "the harness exited 0 and no complete results.json says a tier failed",    \
    "`level` of results.json when it is complete, else none")                  \
  X(FAILURE, "failure", 1, "failure", true,                                    \
    "the harness exited 1..125, or exited 0 with a complete results.json "     \
    "whose tier failed or `error` is set",                                     \
    "`level` of results.json when it is complete (the rungs that passed), "    \
    "else none")                                                               \
  X(DEPLOY_BUDGET, "deploy-budget", 1, "failure", false,                       \
    "deploys != 1 + cold dependencies (DG4.1)", "none")                        \
  X(TIMEOUT, "timeout", 2, "error", false, "stopped at `deadline`", "none")    \
  X(CANCELLED, "cancelled", 2, "error", false,                                 \
    "stopped by `ccci cancel` (or a newer request)", "none")                   \
  X(ORPHANED, "orphaned", 2, "error", false,                                   \
    "its daemon died and the janitor found no complete results", "none")       \
  X(SUPERSEDED, "superseded", 2, "error", false,                               \
    "replaced by a newer request on the same PR while pending", "none")        \
  X(ERROR, "error", 2, "error", false,                                         \
    "ccci or the harness could not do its job: exit 126/127, a crash by "      \
    "signal, the supervisor died",                                             \
    "none")

/** Why a run finished; NONE until it has. */
enum ccci_run_reason {
  CCCI_REASON_NONE,
#define CCCI_REASON_ENUM(id, name, exit, status, keeps, meaning, level)        \
  CCCI_REASON_##id,
  CCCI_RUN_REASONS(CCCI_REASON_ENUM)
#undef CCCI_REASON_ENUM
  /** The number of values, NONE included. */
  CCCI_REASON_COUNT
};

/** What happened to the run's deployment after a stop. */
enum ccci_teardown {
  CCCI_TEARDOWN_NONE,
  CCCI_TEARDOWN_CLEAN,
  CCCI_TEARDOWN_FORCED,
  CCCI_TEARDOWN_FAILED,
};

/** The fields of meta.json. Strings are owned; NULL is JSON null. */
struct ccci_run_meta {
  char id[CCCI_RUN_ID_MAX + 1];
  uint64_t number;
  char *repo;   /**< owner/name, or local/<recipe> */
  char *recipe; /**< the repo's name, or the directory's base name */
  char *ref;
  char *sha;
  int64_t pr; /**< 0: none */
  char *domain;
  bool quick;
  enum ccci_run_state state;
  enum ccci_run_reason reason;
  json_t *trigger;          /**< object; who and what started the run */
  int64_t submitted_by_uid; /**< -1: none */
  char *daemon_instance;
  time_t created_at, started_at, finished_at; /**< 0: null */
  int exit_code;                              /**< -1: null */
  int signal;                                 /**< 0: null */
  enum ccci_teardown teardown;
  unsigned attempt; /**< 1 for the first start; a re-queued run counts on */
  /** The pool server it was placed on (`server`; NULL until it is, and in
   * files of older versions): recorded before it starts, used by its
   * teardown and the janitor even after the server left the config. */
  char *server;
  /** Where it may go (`placement`: {servers, labels} from recipe_meta.yml's
   * SERVERS and SERVER_LABELS; empty: anywhere). */
  struct ccci_strlist place_servers, place_labels;
};

/** The name of @p s in meta.json (e.g. "waiting-lock"). */
const char *ccci_run_state_name(enum ccci_run_state s);
/** The name of @p r ("success", ...; NULL for NONE). */
const char *ccci_run_reason_name(enum ccci_run_reason r);
/** The name of @p t. */
const char *ccci_teardown_name(enum ccci_teardown t);
/** Parse a state name; -EINVAL when unknown. */
int ccci_run_state_parse(const char *s, enum ccci_run_state *out) CCCI_WUR;
/** Parse a reason name; -EINVAL when unknown. */
int ccci_run_reason_parse(const char *s, enum ccci_run_reason *out) CCCI_WUR;

/**
 * The exit code of `ccci tail`/`ccci show` for a finished run's reason
 * (SPEC section 10): 0 success; 1 failure, deploy-budget; 2 the others
 * (NONE included).
 */
int ccci_run_reason_exit(enum ccci_run_reason r);

/**
 * The commit status the forge reporter posts for @p r: "success",
 * "failure" or "error"; "pending" for NONE (a run not finished yet).
 */
const char *ccci_run_reason_commit_status(enum ccci_run_reason r);

/** Whether a run finished with @p r reports the level of its results.json. */
bool ccci_run_reason_keeps_level(enum ccci_run_reason r);

/** The reason's meaning in one line (the docs' words); NULL for NONE. */
const char *ccci_run_reason_meaning(enum ccci_run_reason r);

/** The docs' level column for @p r ("none", "`level` of results.json ...");
 * NULL for NONE. */
const char *ccci_run_reason_level_doc(enum ccci_run_reason r);

/** Free the strings and the trigger; the struct itself is the caller's. */
void ccci_run_meta_clear(struct ccci_run_meta *m);

/** meta.json as a JSON object (new reference). */
json_t *ccci_run_meta_to_json(const struct ccci_run_meta *m);

/**
 * Read a meta object. Every field is checked: a missing or mistyped field,
 * an unknown state or reason, or `reason` set while not finished, is an
 * error naming the field (allocated in @p err). Returns 0 or -EINVAL.
 */
int ccci_run_meta_from_json(const json_t *j, struct ccci_run_meta *m,
                            char **err) CCCI_WUR;

/**
 * The text of meta.json for @p m (indented JSON and a newline), allocated,
 * with its length in @p len; NULL when out of memory.
 */
char *ccci_run_meta_text(const struct ccci_run_meta *m, size_t *len);

/**
 * Write @p m to @p path atomically (temp file, fsync, rename, fsync of the
 * directory). Returns 0 or a negative errno.
 */
int ccci_run_meta_write(const char *path,
                        const struct ccci_run_meta *m) CCCI_WUR;

/** Read meta.json at @p path (capped at 1 MiB); see ccci_run_meta_from_json. */
int ccci_run_meta_read(const char *path, struct ccci_run_meta *m,
                       char **err) CCCI_WUR;

/**
 * The next run id: `YYYYMMDD-HHMMSS-mmm` (UTC) of max(now, last + 1 ms),
 * so ids sort lexically in creation order even when the clock steps back.
 * @p last_ms holds the previous id's time and is updated.
 */
void ccci_run_id_next(uint64_t *last_ms, char out[CCCI_RUN_ID_MAX + 1]);

/** The time in ms of a run id made by ccci_run_id_next; 0 if not one. */
uint64_t ccci_run_id_ms(const char *id);

/** Is @p id a valid run id (`[0-9A-Za-z-]{1,40}`)? */
bool ccci_run_id_valid(const char *id);

#endif
