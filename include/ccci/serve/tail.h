/* Live tail of runs' logs for control-socket clients: the backlog from the
 * step files, then lines from the log store's memory, with no gap and no
 * duplicate, each client at its own pace. */
#ifndef CCCI_TAIL_H
#define CCCI_TAIL_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/ctl/ctl.h"
#include "ccci/runs/runs.h"

struct ccci_tail;

/** Counters for `status`. */
struct ccci_tail_counters {
  uint64_t clients;   /**< tail streams open now */
  uint64_t started;   /**< tail streams started since start */
  uint64_t lines;     /**< lines sent to tail clients */
  uint64_t from_disk; /**< bytes of those read back from step files */
};

/**
 * Serve tails of the runs of @p rs on @p loop; registers itself as the
 * runs' observer. The runs must outlive the tail server.
 */
struct ccci_tail *ccci_tail_new(uv_loop_t *loop, struct ccci_runs *rs);

/**
 * The `tail` op (docs/protocol.md): validates @p req and either returns an
 * error reply, or takes over @p call as a stream and returns
 * CCCI_CTL_LATER.
 */
json_t *ccci_tail_op(struct ccci_tail *t, struct ccci_ctl_call *call,
                     json_t *req);

/** Read the counters. */
void ccci_tail_counters(const struct ccci_tail *t,
                        struct ccci_tail_counters *out);

/**
 * End every stream without an end message (the daemon stops) and free the
 * server once no file read is in flight (the loop must run for that).
 */
void ccci_tail_free(struct ccci_tail *t);

#endif
