/* The tail engine: a run's log from its step files, then live lines from
 * the log store's memory, with no gap and no duplicate, each reader at its
 * own pace, delivered to a sink (the control socket's stream today). */
#ifndef CCCI_TAIL_H
#define CCCI_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/logs/logstore.h"
#include "ccci/runs/runs.h"

/** Steps a log can have: the marker steps plus the daemon's own. */
#define CCCI_TAIL_MAX_STEPS (CCCI_LOGSTORE_MAX_STEPS + 8)

struct ccci_tail;
struct ccci_tail_sink;

/** Counters for `status`. */
struct ccci_tail_counters {
  uint64_t clients;   /**< tail streams open now */
  uint64_t started;   /**< tail streams started since start */
  uint64_t lines;     /**< lines sent to tail clients */
  uint64_t from_disk; /**< bytes of those read back from step files */
};

/**
 * Where a stream goes: a transport implements these for its clients. The
 * engine calls them on the loop, in this order: begin; then step and lines
 * any number of times; then exactly one of end or error, after which it
 * never touches the sink again (the sink may free itself there). A sink
 * tells the engine of a drain or of its client's going from the loop, never
 * from inside these callbacks.
 */
struct ccci_tail_sink_ops {
  /** The stream starts: run @p id, in @p state now. */
  void (*begin)(struct ccci_tail_sink *s, const char *id,
                enum ccci_run_state state);
  /** Step @p n, named @p name, is streamed from here on. */
  void (*step)(struct ccci_tail_sink *s, unsigned n, const char *name);
  /**
   * Whole encoded lines of step @p n (Drone JSON objects, each ending in a
   * newline), @p len bytes at @p p, the first at line position @p pos. The
   * bytes are valid only during the call.
   */
  void (*lines)(struct ccci_tail_sink *s, unsigned n, uint64_t pos,
                const char *p, size_t len);
  /**
   * Is the sink past its high-water mark? Then the engine sends nothing
   * more until ccci_tail_sink_drained(); what is written meanwhile is read
   * back from the step files, so the sink never has to hold more.
   */
  bool (*full)(const struct ccci_tail_sink *s);
  /** The log is complete (or, without follow, sent as it was): @p v tells
   * the run's state, reason and exit code now. */
  void (*end)(struct ccci_tail_sink *s, const struct ccci_runs_view *v);
  /**
   * The stream stops without a result: -ENOENT the run is gone (retention),
   * -EIO a step file cannot be read or is not a log, -ECANCELED the daemon
   * stops.
   */
  void (*error)(struct ccci_tail_sink *s, int err);
};

/** A sink, embedded by its transport's client. */
struct ccci_tail_sink {
  const struct ccci_tail_sink_ops *ops;
  struct ccci_tail_session *session; /**< the engine's, while it streams */
};

/** What the daemon lends the engine. */
struct ccci_tail_env {
  uv_loop_t *loop;
  /** Describe run @p id now (as ccci_runs_view): 0, or -ENOENT. */
  int (*view)(void *arg, const char *id, struct ccci_runs_view *out);
  void *arg;
};

/** What a reader asks for (docs/protocol.md, `tail`). */
struct ccci_tail_request {
  const char *id;
  bool follow;           /**< false: what is there now, then end */
  int step;              /**< the one step to stream, or -1 for all */
  const char *step_name; /**< the one step by name (once it exists), or NULL */
  uint64_t from;         /**< lines to skip in the first step streamed */
  /**
   * With every step (@p step -1): the step to start at, the steps before
   * it skipped (0: from the first). A reader that resumes after line
   * `pos` of step k asks for from_step k and from pos + 1.
   */
  unsigned from_step;
  /**
   * With one step (@p step or @p step_name) and @p follow: end once that
   * step is complete (a later step started, or the log closed), as Drone's
   * step stream does, rather than with the run. The end then tells the
   * run's state at that moment.
   */
  bool end_with_step;
};

/** A tail engine on @p env (copied). Its owner tells it of run changes. */
struct ccci_tail *ccci_tail_new(const struct ccci_tail_env *env);

/**
 * Stream @p req to @p sink (set its ops first): begin at once, then the
 * log. A run that does not exist gets error(-ENOENT); a caller that must
 * answer "no such run" otherwise checks first. @p req is copied.
 */
void ccci_tail_start(struct ccci_tail *t, const struct ccci_tail_request *req,
                     struct ccci_tail_sink *sink);

/** The sink fell below its high-water mark: the stream goes on. */
void ccci_tail_sink_drained(struct ccci_tail_sink *sink);

/**
 * The sink's client is gone: the engine stops and calls the sink no more
 * (not even end or error); the sink may be freed once this returns.
 */
void ccci_tail_sink_gone(struct ccci_tail_sink *sink);

/**
 * Run @p id changed state, or its log store opened or closed (wire it to
 * ccci_runs_observe): streams of that run go on or end.
 */
void ccci_tail_run_changed(struct ccci_tail *t, const char *id);

/** Read the counters. */
void ccci_tail_counters(const struct ccci_tail *t,
                        struct ccci_tail_counters *out);

/**
 * Stop every stream with error(-ECANCELED) (the daemon stops) and free the
 * engine once no file read is in flight (the loop must run for that).
 */
void ccci_tail_free(struct ccci_tail *t);

#endif
