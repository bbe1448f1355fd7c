/* The scheduler's decision (SPEC sections 4 and 12, docs/concurrency.md):
 * which queued run starts next and on which server of the pool, given the
 * servers' free slots, labels, drain and health, the repos' round-robin
 * turn, each domain's line and its lock probe backoff. Pure: the caller
 * probes the chosen run's domain lock and carries the verdict out. */
#ifndef CCCI_SCHED_H
#define CCCI_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A run's placement: no class (it may go to any server). */
#define CCCI_SCHED_ANYWHERE ((size_t)-1)

/** A domain line (the runs of one domain, whatever their server). */
struct ccci_sched_domain {
  /** A run of the daemon holds it (running, tearing down, or another
   * instance's detached run whose supervisor still holds the lock). */
  bool busy;
  /** Its lock was held outside the daemon: not probed before this time
   * (loop ms; 0: probe at once). */
  uint64_t next_probe_ms;
};

/** A server of the pool. */
struct ccci_sched_server {
  const char *name;
  unsigned capacity; /**< runs that may hold a slot on it */
  unsigned running;  /**< runs holding a slot on it now */
  const char *const *labels;
  size_t nlabels;
  /** Takes no new run: drained (`ccci server drain`), unhealthy, or
   * removed from the config (its runs finish). */
  bool closed;
};

/**
 * Where the runs of a class may go (recipe_meta.yml's SERVERS and
 * SERVER_LABELS): a server whose name is one of @p servers (none: any
 * name) and that has every label of @p labels.
 */
struct ccci_sched_place {
  const char *const *servers;
  size_t nservers;
  const char *const *labels;
  size_t nlabels;
};

/** A queued run (queued or waiting-lock). */
struct ccci_sched_run {
  const char *repo; /**< owner/name, or local/<recipe> */
  size_t domain;    /**< index into ccci_sched_input.domains */
  size_t place;     /**< index into ccci_sched_input.places, or
                         CCCI_SCHED_ANYWHERE */
};

/** The facts of one admission. */
struct ccci_sched_input {
  const struct ccci_sched_run *runs; /**< in queue (creation) order */
  size_t nruns;
  const struct ccci_sched_domain *domains;
  const struct ccci_sched_server *servers; /**< in config order */
  size_t nservers;
  const struct ccci_sched_place *places;
  size_t nplaces;
  const char *last_repo; /**< the repo the last admission served, or NULL */
  /** The server the last admission chose (round-robin among equals), or
   * NULL. */
  const char *last_server;
  bool draining; /**< `ccci drain`: no new run starts */
  bool stopping; /**< the daemon stops */
  bool disk_ok;  /**< min_free_bytes is free (looked at only when
                      ccci_sched_has_slot) */
  uint64_t now;  /**< loop ms */
  /**
   * Out, @p nruns entries or NULL: set for every run found behind its
   * domain (held by a run of the daemon, behind an older run of its line,
   * or its lock in backoff); the caller shows it waiting-lock. Runs not
   * looked at are left as they are.
   */
  bool *waiting;
  /**
   * Out, @p nruns entries or NULL: set for every run looked at whose
   * placement no server of @p servers matches at all (whatever its slots,
   * drain or health): it waits until the pool changes. Left as they are
   * for the others.
   */
  bool *unplaceable;
};

/** What to do. */
enum ccci_sched_kind {
  CCCI_SCHED_CLOSED,   /**< no slot: draining, stopping, or every open
                            server full */
  CCCI_SCHED_DISK_LOW, /**< a slot, but the disk is low: look again later */
  CCCI_SCHED_START,    /**< probe the lock of @p run's domain and start it
                            on @p server */
  CCCI_SCHED_WAIT,     /**< nothing can start before @p wake_ms */
  CCCI_SCHED_IDLE,     /**< nothing can start, and no time to wait for */
};

/** The verdict. */
struct ccci_sched_verdict {
  enum ccci_sched_kind kind;
  size_t run;    /**< START: index into the runs */
  size_t server; /**< START: index into the servers */
  /** The earliest lock probe time of the domains looked at in backoff
   * (0: none); with START, of those looked at before the run. */
  uint64_t wake_ms;
};

/** Does server @p s match placement @p p (NULL: any server)? Its slots,
 * drain and health are not looked at. */
bool ccci_sched_matches(const struct ccci_sched_server *s,
                        const struct ccci_sched_place *p);

/** Whether a run may start at all now: not draining or stopping, and an
 * open server has a free slot. */
bool ccci_sched_has_slot(const struct ccci_sched_input *in);

/**
 * Decide: round-robin over the repos with queued runs (in name order,
 * starting after @p last_repo), in each repo its runs oldest first. The
 * first run found whose domain is not busy, whose domain's probe time has
 * come, that no older run of its line is held before, and that an open
 * server matching its placement has a free slot for, starts there. The
 * server is the least loaded of those (running / capacity), the first
 * after @p last_server in config order among equals. So a domain's runs
 * start one at a time in queue order, on whichever server. When the
 * caller's probe of the lock fails, it sets the domain's backoff and
 * decides again. O(runs log runs + servers x placement classes looked at).
 */
struct ccci_sched_verdict ccci_sched_decide(const struct ccci_sched_input *in);

#endif
