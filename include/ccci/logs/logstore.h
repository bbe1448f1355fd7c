/* A run's log store: steps as Drone-format JSON-lines files with ordered,
 * asynchronous writes on the loop, and logs/index.json. */
#ifndef CCCI_LOGSTORE_H
#define CCCI_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/list.h"
#include "ccci/core/util.h"

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
 * Reopen the store of a run whose log is already in @p dir (the janitor's
 * teardown of a run another daemon left): the steps there stay as closed
 * steps (from index.json, else from the files), step markers are plain
 * lines, and a new step @p step is opened after them. Errors as
 * ccci_logstore_open.
 */
int ccci_logstore_reopen(uv_loop_t *loop, const char *dir, const char *run_id,
                         uint64_t max_bytes, const char *step,
                         struct ccci_logstore **out, char **err) CCCI_WUR;

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

/* ---- readers (live tail) ---- */

/** What a reader learns of one step. */
struct ccci_logstore_stepinfo {
  const char *name; /**< valid while the store lives */
  uint64_t bytes;   /**< encoded bytes of the step so far (whole lines) */
  uint64_t lines;
  bool closed; /**< no line will be added: a later step started, or closing */
};

/** A step file found on disk. */
struct ccci_logstore_file {
  char name[40];
  uint64_t bytes;
};

/**
 * The step files in @p dir (`<n>-<name>.jsonl`, regular files, contiguous
 * from 0; at most @p max): @p out[n] gets step n's name and size. Returns how
 * many. For logs no store has open (a finished run, a dead daemon's).
 */
unsigned ccci_logstore_scan(const char *dir, struct ccci_logstore_file *out,
                            unsigned max);

/** Steps so far. */
unsigned ccci_logstore_nsteps(const struct ccci_logstore *ls);
/** Describe step @p n (< ccci_logstore_nsteps). */
void ccci_logstore_stepinfo(const struct ccci_logstore *ls, unsigned n,
                            struct ccci_logstore_stepinfo *out);
/**
 * The encoded bytes of step @p n from byte offset @p off that are still in
 * memory: sets @p p and returns how many follow contiguously (whole lines),
 * or 0 when @p off is past the end or its bytes have already left memory,
 * in which case they are in the step's file (ccci_logstore_path). The bytes
 * stay valid only until control returns to the loop.
 */
size_t ccci_logstore_peek(const struct ccci_logstore *ls, unsigned n,
                          uint64_t off, const char **p);
/** The path of step @p n's file (allocated). */
char *ccci_logstore_path(const struct ccci_logstore *ls, unsigned n);

/** Events for watchers. */
enum ccci_logstore_event {
  CCCI_LOGSTORE_DATA,  /**< new lines or a new step */
  CCCI_LOGSTORE_CLOSED /**< all written; the store is freed after this */
};

/**
 * A watcher, embedded by its owner. Its callback runs on the loop after a
 * burst of lines (at ccci_logstore_flush) and once when the store is done;
 * after CCCI_LOGSTORE_CLOSED the watcher is already removed.
 */
struct ccci_logstore_watch {
  void (*cb)(struct ccci_logstore_watch *w, enum ccci_logstore_event ev);
  struct ccci_list link; /* in the store's watchers */
};

/** Add @p w (its cb set) to the store's watchers. */
void ccci_logstore_watch(struct ccci_logstore *ls,
                         struct ccci_logstore_watch *w);
/** Remove @p w; allowed from inside its own callback. */
void ccci_logstore_unwatch(struct ccci_logstore *ls,
                           struct ccci_logstore_watch *w);

/**
 * Write what is queued, close every file, write the final index.json (no
 * step open) and call @p done; the store is freed after @p done returns.
 */
void ccci_logstore_close(struct ccci_logstore *ls, void (*done)(void *arg),
                         void *arg);

#endif
