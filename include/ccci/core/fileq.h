/* Durable file writes off the loop, in order: a queue of atomic writes
 * (and unlinks) done one at a time on libuv's thread pool. A write queued
 * for the path of the write still waiting at the end of the queue replaces
 * it (the latest text wins; nobody needed the older one on disk), so a
 * state file rewritten at every transition costs one write in flight and at
 * most one waiting. */
#ifndef CCCI_FILEQ_H
#define CCCI_FILEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/list.h"

/** Make the file's directory (and its parents, 0750) before writing. */
#define CCCI_FILEQ_MKDIR 1u

/** Called on the loop once the write that holds the caller's data is done:
 * 0, or a negative errno. */
typedef void (*ccci_fileq_done)(void *arg, int rc);

/** A queue; embed it in its owner. */
struct ccci_fileq {
  uv_loop_t *loop;
  struct ccci_list jobs;    /**< waiting, oldest first */
  struct fileq_job *flight; /**< on the pool, or NULL */
  uint64_t done;            /**< writes and unlinks carried out */
};

/** Make @p q an empty queue on @p loop. */
void ccci_fileq_init(struct ccci_fileq *q, uv_loop_t *loop);

/**
 * Write the @p len bytes of @p data (taken; NULL: unlink @p path, a missing
 * file being no error) to @p path (taken) atomically (temporary file,
 * fsync, rename, fsync of the directory; mode 0640) after every write
 * queued before, then call @p done (may be NULL). @p flags:
 * CCCI_FILEQ_MKDIR or 0. When the write waiting last in the queue is for
 * the same path with the same flags, it takes @p data instead of its own,
 * and both dones are called, in order, when it is done.
 */
void ccci_fileq_put(struct ccci_fileq *q, char *path, char *data, size_t len,
                    unsigned flags, ccci_fileq_done done, void *arg);

/** Whether a write is in flight or waiting (the owner may be freed only
 * when this is false: the pool holds a pointer into it). */
bool ccci_fileq_busy(const struct ccci_fileq *q);

#endif
