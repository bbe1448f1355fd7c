/* results.json, the harness's report of a run (SPEC section 8,
 * docs/results.schema.json): the one reader that the run outcome, the
 * janitor and the forge reporter share. Pure apart from ccci_results_read's
 * one capped file read. */
#ifndef CCCI_RESULTS_H
#define CCCI_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/util.h"
#include "ccci/runs/levels.h"

/** Largest results.json read. */
#define CCCI_RESULTS_MAX_BYTES (1u << 20)
/** Longest tier `reason` or top `error` kept, in bytes (longer ones are cut
 * at a UTF-8 character boundary). */
#define CCCI_RESULTS_TEXT_MAX 1024

/** At most this many artifacts are kept of one list (a tier's or the
 * top-level one); later entries are dropped. */
#define CCCI_RESULTS_ARTIFACTS_MAX 16
/** The longest artifact path kept, in bytes. */
#define CCCI_RESULTS_ARTIFACT_PATH_MAX 128

/**
 * A list of artifacts: paths relative to the run directory, each
 * `artifacts/` then one or more components of [A-Za-z0-9_][A-Za-z0-9._-]*
 * joined by `/` (so no `..`, no absolute path, no empty component, no byte
 * a link or a table cell would need escaped), at most
 * CCCI_RESULTS_ARTIFACT_PATH_MAX bytes. Entries that are not such a string
 * are dropped, as are duplicates.
 */
struct ccci_results_artifacts {
  char *path[CCCI_RESULTS_ARTIFACTS_MAX];
  size_t n;
};

/** Whether @p path is an artifact path as struct ccci_results_artifacts
 * keeps them. */
bool ccci_results_artifact_ok(const char *path);

/** One tier as results.json names it. */
struct ccci_results_tier {
  char *name;   /**< the member name in `tiers` */
  char *status; /**< its `status` string (any string; see `complete`) */
  /** The tier named so (enum ccci_tier), or -1 for a name not in the table. */
  int tier;
  /** The status parsed; CCCI_TS_NONE when not a known one. */
  enum ccci_tier_status st;
  /** `reason` when a string (capped at CCCI_RESULTS_TEXT_MAX), else NULL. */
  char *reason;
  /** `duration_s` when a number >= 0, else -1. */
  double duration_s;
  /** `data_checked`: 1 true, 0 false, -1 absent or not a boolean. */
  int data_checked;
  /** `step` when a valid step name (SPEC section 6:
   * [a-z0-9][a-z0-9_.-]{0,31}), else NULL. */
  char *step;
  /** `artifacts`: what the tier saved (empty when absent). */
  struct ccci_results_artifacts artifacts;
};

/** What results.json says. */
struct ccci_results {
  /**
   * A JSON object (no duplicate key anywhere) with a `level` member and a
   * non-empty `tiers` object whose members are all objects with a `status`
   * of pass, fail, skip, error, cancelled or timeout.
   */
  bool complete;
  /** Complete, and a tier failed, errored, timed out or was cancelled, or
   * `error` is a string (else false). */
  bool failed;
  /** `level`: "L0".."L4", or the legacy integer 0..4; else -1. */
  int level;
  /** `quick` is true. */
  bool quick;
  /**
   * The tiers that are objects with a string `status`: first the known
   * tiers in run order, then the others in file order.
   */
  struct ccci_results_tier *tiers;
  size_t ntiers;
  /** The status of each known tier (CCCI_TS_NONE: absent or unknown). */
  enum ccci_tier_status st[CCCI_TIER_COUNT];
  /** `deploys` when an integer >= 0, else -1. */
  long long deploys;
  /** `duration_s` when a number >= 0, else -1. */
  double duration_s;
  /** The `invariants` members: 1 true, 0 false, -1 absent or not boolean. */
  int deploy_budget_ok, teardown_clean, secrets_clean;
  /** `error` when a string (capped at CCCI_RESULTS_TEXT_MAX), else NULL. */
  char *error;
  /** The top-level `artifacts`: everything the run saved (empty when
   * absent). */
  struct ccci_results_artifacts artifacts;
};

/**
 * Parse the @p len bytes at @p text (no terminator needed). @p out is
 * always set (empty and not complete when the text is not a JSON object
 * without duplicate keys); free it with ccci_results_clear. Members of the
 * wrong type read as absent. Returns 0, or -EINVAL when the text is not
 * such an object.
 */
int ccci_results_parse(const char *text, size_t len,
                       struct ccci_results *out) CCCI_WUR;

/**
 * Read and parse the file at @p path (at most CCCI_RESULTS_MAX_BYTES).
 * @p out is always set as by ccci_results_parse. Returns 0, a negative
 * errno from the read (-ENOENT: the harness wrote none; -EFBIG: too
 * large), or -EINVAL.
 */
int ccci_results_read(const char *path, struct ccci_results *out);

/**
 * The first tier in run order whose status fails the run (an entry of
 * @p r's tiers), or NULL.
 */
const struct ccci_results_tier *
ccci_results_first_failed(const struct ccci_results *r);

/**
 * The tier named @p name among @p r's tiers, or NULL.
 */
const struct ccci_results_tier *ccci_results_tier(const struct ccci_results *r,
                                                  const char *name);

/**
 * ccci_level_explain for @p level with @p r's statuses, quick flag and
 * tier reasons (as read: a caller that posts the line masks them first and
 * uses ccci_level_explain itself).
 */
void ccci_results_explain(const struct ccci_results *r, int level,
                          char out[CCCI_LEVEL_EXPLAIN_MAX]);

/** Free what @p r holds and empty it. */
void ccci_results_clear(struct ccci_results *r);

#endif
