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

/** Free what @p r holds and empty it. */
void ccci_results_clear(struct ccci_results *r);

#endif
