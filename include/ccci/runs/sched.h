/* The scheduler's decision (SPEC section 4, docs/concurrency.md): which
 * queued run to start next, given the free slots, the repos' round-robin
 * turn, each domain's line and its lock probe backoff. Pure: the caller
 * probes the chosen run's domain lock and carries the verdict out. */
#ifndef CCCI_SCHED_H
#define CCCI_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A domain with queued runs. */
struct ccci_sched_domain {
  /** A run of the daemon holds it (running, tearing down, or another
   * instance's detached run whose supervisor still holds the lock). */
  bool busy;
  /** Its lock was held outside the daemon: not probed before this time
   * (loop ms; 0: probe at once). */
  uint64_t next_probe_ms;
};

/** A queued run (queued or waiting-lock). */
struct ccci_sched_run {
  const char *repo; /**< owner/name, or local/<recipe> */
  size_t domain;    /**< index into ccci_sched_input.domains */
};

/** The facts of one admission. */
struct ccci_sched_input {
  const struct ccci_sched_run *runs; /**< in queue (creation) order */
  size_t nruns;
  const struct ccci_sched_domain *domains;
  const char *last_repo; /**< the repo the last admission served, or NULL */
  unsigned capacity;     /**< runs that may hold a slot */
  unsigned running;      /**< runs holding a slot now */
  bool draining;         /**< `ccci drain`: no new run starts */
  bool stopping;         /**< the daemon stops */
  bool disk_ok;          /**< min_free_bytes is free (looked at only when
                              ccci_sched_has_slot) */
  uint64_t now;          /**< loop ms */
  /**
   * Out, @p nruns entries or NULL: set for every run found behind its
   * domain (held by a run of the daemon, behind an older run of its line,
   * or its lock in backoff); the caller shows it waiting-lock. Runs not
   * looked at are left as they are.
   */
  bool *waiting;
};

/** What to do. */
enum ccci_sched_kind {
  CCCI_SCHED_CLOSED,   /**< no slot: draining, stopping, or full */
  CCCI_SCHED_DISK_LOW, /**< a slot, but the disk is low: look again later */
  CCCI_SCHED_START,    /**< probe the lock of @p run's domain and start it */
  CCCI_SCHED_WAIT,     /**< nothing can start before @p wake_ms */
  CCCI_SCHED_IDLE,     /**< nothing can start, and no time to wait for */
};

/** The verdict. */
struct ccci_sched_verdict {
  enum ccci_sched_kind kind;
  size_t run; /**< START: index into the runs */
  /** The earliest lock probe time of the domains looked at in backoff
   * (0: none); with START, of those looked at before the run. */
  uint64_t wake_ms;
};

/** Whether a run may start at all now: not draining or stopping, and a
 * slot free. */
bool ccci_sched_has_slot(const struct ccci_sched_input *in);

/**
 * Decide: round-robin over the repos with queued runs (in name order,
 * starting after @p last_repo), in each repo its runs oldest first; the
 * first run found whose domain is not busy and whose domain's probe time
 * has come starts, so a domain's runs start one at a time in the order
 * they are looked at. When the caller's probe of the lock fails, it sets
 * the domain's backoff and decides again.
 */
struct ccci_sched_verdict ccci_sched_decide(const struct ccci_sched_input *in);

#endif
