/* results.json, the harness's report of a run (SPEC section 8): the one
 * reader that the run outcome, the janitor and the forge reporter share.
 * Pure apart from ccci_results_read's one capped file read. */
#ifndef CCCI_RESULTS_H
#define CCCI_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/util.h"

/** Largest results.json read. */
#define CCCI_RESULTS_MAX_BYTES (1u << 20)

/** One tier as results.json names it. */
struct ccci_results_tier {
  char *name;   /**< the member name in `tiers` */
  char *status; /**< its `status` string (any string; see `complete`) */
};

/** What results.json says. */
struct ccci_results {
  /**
   * A JSON object (no duplicate key anywhere) with a `level` member and a
   * non-empty `tiers` object whose members are all objects with a `status`
   * of pass, fail, skip or error.
   */
  bool complete;
  /** Complete, and a tier failed or errored (else false). */
  bool failed;
  /** `level` when it is an integer from 0 to 9, else -1. */
  int level;
  /** The tiers that are objects with a string `status`, in file order. */
  struct ccci_results_tier *tiers;
  size_t ntiers;
};

/**
 * Parse the @p len bytes at @p text (no terminator needed). @p out is
 * always set (empty and not complete when the text is not a JSON object
 * without duplicate keys); free it with ccci_results_clear. Returns 0, or
 * -EINVAL when the text is not such an object.
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

/** Free what @p r holds and empty it. */
void ccci_results_clear(struct ccci_results *r);

#endif
