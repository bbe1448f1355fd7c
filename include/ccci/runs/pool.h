/* The daemon's pool of swarm servers (SPEC section 12, docs/concurrency.md):
 * the server table built from the configuration and merged on reload, the
 * runs holding a slot on each, health (connection errors in a row, probe
 * backoff), drain and its file <state_dir>/servers.json, and the JSON of
 * `ccci server ls`. Pure but for reading and encoding the drain file: the
 * caller spawns the probes and writes the file. */
#ifndef CCCI_POOL_H
#define CCCI_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/config.h"
#include "ccci/core/util.h"

/** The drain file's schema version. */
#define CCCI_POOL_FILE_VERSION 1
/** Largest drain file read. */
#define CCCI_POOL_FILE_MAX (256 * 1024)
/** Longest connection error text kept (`last_error`). */
#define CCCI_POOL_ERROR_MAX 200

/** One server of the pool. Strings are owned. */
struct ccci_pool_server {
  /* From the configuration (the last one it was in). */
  char *name;
  unsigned capacity;
  char *domain_suffix;
  char *gateway; /**< NULL: DNS */
  bool gateway_insecure;
  struct ccci_strlist labels;
  /* State kept across reloads. */
  bool removed;     /**< not in the configuration any more: finishes its runs */
  bool drained;     /**< `ccci server drain` */
  bool unhealthy;   /**< fails reached pool.unhealthy_after */
  unsigned running; /**< runs holding a slot on it */
  uint64_t fails;   /**< connection errors in a row */
  uint64_t connection_errors_total;
  uint64_t runs_started;
  uint64_t probes, probe_failures;
  char *last_error;       /**< the connection error text, or NULL */
  uint64_t backoff_ms;    /**< the probe backoff now (0: none yet) */
  uint64_t next_probe_ms; /**< unhealthy: loop ms of the next probe */
  bool probing;           /**< a probe is running */
};

/** The pool: servers in config order, then removed ones with runs. */
struct ccci_pool {
  struct ccci_pool_server *v;
  size_t n;
  /** The names the drain file lists (also of servers not in the pool: one
   * added back later comes back drained). */
  struct ccci_strlist drained;
};

/** An empty pool. */
void ccci_pool_init(struct ccci_pool *p);

/** Free everything in @p p (the struct is the caller's). */
void ccci_pool_close(struct ccci_pool *p);

/**
 * Follow the configuration's servers @p v (@p n of them, config order):
 * servers that stay keep their drain, health and counters and take the
 * new capacity, suffix, gateway and labels; servers no longer there stay,
 * marked removed, while they have runs (and go when they have none);
 * added ones start healthy (drained when the drain file names them). A
 * removed server that comes back is not removed any more.
 */
void ccci_pool_merge(struct ccci_pool *p, const struct ccci_server_conf *v,
                     size_t n);

/** The server named @p name, or NULL. */
struct ccci_pool_server *ccci_pool_find(struct ccci_pool *p, const char *name);

/** Takes no new run: drained, unhealthy or removed. */
bool ccci_pool_closed(const struct ccci_pool_server *s);

/** A run takes a slot on @p name (if it is in the pool). @p started: a
 * new run (counted in runs_started), not an orphan being torn down. */
void ccci_pool_take(struct ccci_pool *p, const char *name, bool started);

/** A run lets go of its slot on @p name; a removed server whose last run
 * it was leaves the pool. */
void ccci_pool_release(struct ccci_pool *p, const char *name);

/** What a run's end says about its server (the harness's state/server). */
enum ccci_pool_health {
  CCCI_POOL_SAME,      /**< nothing changed that matters */
  CCCI_POOL_UNHEALTHY, /**< it became unhealthy now */
};

/**
 * Feed a run's end on server @p name: when @p reached > 0, fails =
 * @p connection_errors, else fails += it (SPEC section 12). When fails
 * reaches @p unhealthy_after (> 0), the server becomes unhealthy and its
 * first probe is due @p first_probe_ms after @p now (give it jittered, see
 * ccci_pool_backoff). @p error (may be NULL) is the connection error text
 * that matched, kept capped. Returns what changed.
 */
enum ccci_pool_health
ccci_pool_feed(struct ccci_pool *p, const char *name, uint64_t reached,
               uint64_t connection_errors, const char *error,
               uint64_t unhealthy_after, uint64_t now, uint64_t first_probe_ms);

/**
 * The next probe backoff after @p prev (0: the first): @p min_ms, then
 * doubling, at most @p max_ms.
 */
uint64_t ccci_pool_backoff(uint64_t prev, uint64_t min_ms, uint64_t max_ms);

/** @p b jittered by +-25% with the random number @p r. */
uint64_t ccci_pool_jitter(uint64_t b, unsigned r);

/**
 * A probe of @p s ended: @p ok makes it healthy (fails 0, no backoff);
 * otherwise the next probe is due @p next_in_ms after @p now (the caller
 * computes it with ccci_pool_backoff and ccci_pool_jitter, having set
 * s->backoff_ms).
 */
void ccci_pool_probe_ended(struct ccci_pool_server *s, bool ok, uint64_t now,
                           uint64_t next_in_ms);

/**
 * Drain (@p drained) or undrain server @p name. Returns 0 (also when it
 * already was), or -ENOENT when it is not in the pool.
 */
int ccci_pool_set_drained(struct ccci_pool *p, const char *name,
                          bool drained) CCCI_WUR;

/** The drain file's text for @p p (allocated, with its length). */
char *ccci_pool_drain_text(const struct ccci_pool *p, size_t *len);

/**
 * Parse a drain file's @p len bytes: `{"version":1,"drained":[names]}`.
 * Fills @p p's drained names (servers in the pool become drained) and
 * returns 0, or -EINVAL with a message in @p err (then nothing changed).
 */
int ccci_pool_drain_parse(struct ccci_pool *p, const char *text, size_t len,
                          char **err) CCCI_WUR;

/**
 * Read the drain file @p path: a missing file is none (0). A file that
 * cannot be read or parsed returns a negative errno with a message naming
 * the file in @p err, and the pool stays undrained.
 */
int ccci_pool_drain_load(struct ccci_pool *p, const char *path,
                         char **err) CCCI_WUR;

/** The number of servers that are unhealthy, and drained. */
void ccci_pool_counts(const struct ccci_pool *p, uint64_t *unhealthy,
                      uint64_t *drained);

/**
 * Server @p s as `ccci server ls` shows it (runs.h, ccci_runs_servers):
 * @p queued of the queued runs match it; @p now is the loop's time. A new
 * reference.
 */
json_t *ccci_pool_server_json(const struct ccci_pool_server *s, uint64_t queued,
                              uint64_t now);

#endif
