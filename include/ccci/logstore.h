/* A run's log store: steps as Drone-format JSON-lines files with ordered,
 * asynchronous writes on the loop, and logs/index.json. */
#ifndef CCCI_LOGSTORE_H
#define CCCI_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/util.h"

/** At most this many steps come from markers (`0-init` counts). */
#define CCCI_LOGSTORE_MAX_STEPS 64
/** Above this many bytes queued for the disk, producers should pause. */
#define CCCI_LOGSTORE_HIGH_WATER (8u * 1024u * 1024u)
/** Below this many, paused producers are told to go on. */
#define CCCI_LOGSTORE_LOW_WATER (2u * 1024u * 1024u)

struct ccci_logstore;

/**
 * Open the store in @p dir (created 0750; a step `0-init` is opened at
 * once). @p max_bytes caps the encoded bytes of all steps: past it one
 * truncation line is written and later lines are dropped. @p run_id is for
 * the daemon's own log lines. Returns 0 and the store in @p out, or a
 * negative errno with a message in @p err.
 */
int ccci_logstore_open(uv_loop_t *loop, const char *dir, const char *run_id,
                       uint64_t max_bytes, struct ccci_logstore **out,
                       char **err) CCCI_WUR;

/**
 * Add one line (@p len bytes, with its trailing newline if it had one).
 * When @p whole (the line was not cut) and it is a step marker, a new step
 * starts instead (after CCCI_LOGSTORE_MAX_STEPS steps markers are plain
 * lines). Lines are written in the order they are added, in batches: call
 * ccci_logstore_flush() after a burst of lines.
 */
void ccci_logstore_line(struct ccci_logstore *ls, const char *text, size_t len,
                        bool whole);

/** Start the writes of what is queued (lines are batched until then). */
void ccci_logstore_flush(struct ccci_logstore *ls);

/** Start a step named @p name (e.g. "teardown") whatever the step count. */
void ccci_logstore_step(struct ccci_logstore *ls, const char *name);

/** Bytes queued for the disk (encoded, not yet written). */
size_t ccci_logstore_backlog(const struct ccci_logstore *ls);

/**
 * Call @p cb when the backlog falls below CCCI_LOGSTORE_LOW_WATER after
 * having been above CCCI_LOGSTORE_HIGH_WATER.
 */
void ccci_logstore_on_drain(struct ccci_logstore *ls, void (*cb)(void *arg),
                            void *arg);

/** Lines and bytes written so far (for status and tests). */
void ccci_logstore_counts(const struct ccci_logstore *ls, uint64_t *lines,
                          uint64_t *bytes);

/**
 * Write what is queued, close every file, write the final index.json (no
 * step open) and call @p done; the store is freed after @p done returns.
 */
void ccci_logstore_close(struct ccci_logstore *ls, void (*done)(void *arg),
                         void *arg);

#endif
