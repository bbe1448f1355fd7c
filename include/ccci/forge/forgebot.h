/* The forge bot: polls the enrolled repos for `!testme`, authorises,
 * accepts runs durably, and reports back through a persisted outbox
 * (docs/forge.md). Policy only: HTTP goes through ccci_httpc, responses
 * through forgeapi. */
#ifndef CCCI_FORGEBOT_H
#define CCCI_FORGEBOT_H

#include <jansson.h>
#include <uv.h>

#include "ccci/core/config.h"
#include "ccci/core/util.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/httpc.h"
#include "ccci/forge/ledger.h"
#include "ccci/runs/runs.h"

struct ccci_forgebot;

/** What the daemon lends the bot. */
struct ccci_forgebot_env {
  uv_loop_t *loop;
  const char *state_dir;
  struct ccci_runs *runs;
  /** The current configuration (a new reference). */
  struct ccci_config *(*config)(void *arg);
  /** The base of links to a run (`<base>/runs/<id>`), valid until control
   * returns to the loop; NULL: no link is posted. */
  const char *(*public_url)(void *arg);
  void *arg;
};

/**
 * Start the bot for a configuration with `forge.url` set: read the token
 * (an unreadable token file is an error naming it), start the self-check,
 * the pollers (each repo with a random phase) and the outbox left by an
 * earlier daemon. Returns 0, or a negative errno with a message in @p err.
 */
int ccci_forgebot_new(const struct ccci_forgebot_env *env,
                      struct ccci_forgebot **out, char **err) CCCI_WUR;

/**
 * SIGHUP: read the token again (the old one is wiped), follow changes of
 * `forge.repos`, run the self-check again.
 */
void ccci_forgebot_reload(struct ccci_forgebot *b);

/** What became of a comment given to ccci_forgebot_accept_trigger. */
struct ccci_forgebot_verdict {
  enum ccci_ledger_verdict verdict; /**< final, or retry; never a NEED_ */
  /** accept, supersede, duplicate: the run's id (valid during the call) */
  const char *run_id;
  /** retry: the step that failed ("the membership check", ...) */
  const char *what;
  /** retry: the forge's answer to that step, or NULL (not an answer) */
  const struct ccci_httpc_response *resp;
};

/**
 * The acceptance path of one comment of enrolled repo @p repo, read by poll
 * or (next) by hook, through the repo's durable ledger (ledger.h): the seen
 * ids, the replies sent, and the run dirs named after the comment
 * (`<created_at as YYYYMMDD-HHMMSS>-c<id>`), so a comment that arrives
 * twice, either way, runs once. In order: the PR must be open, the
 * commenter allowlisted or a member of the owner org (else one reply per
 * (user, PR)), then the run is accepted durably and the `eyes` reaction
 * and the `pending` status go to the outbox.
 *
 * @p c is copied (its body is only read for the trigger grammar). Returns
 * the verdict at once when the comment and the ledger settle it (no call
 * of @p cb; retry while the bot stops or before its self-check learnt
 * its login), or CCCI_LEDGER_NEED_PULL when the forge is asked: then @p cb
 * follows with the verdict, later on the loop, or before the return only
 * when a request could not even be sent. A final
 * verdict records the id as seen; retry records nothing (read the comment
 * again later). Once the bot stops, a pending @p cb is never called.
 */
enum ccci_ledger_verdict ccci_forgebot_accept_trigger(
    struct ccci_forgebot *b, const char *repo,
    const struct ccci_forge_comment *c,
    void (*cb)(void *arg, const struct ccci_forgebot_verdict *v), void *arg);

/** The upper bounds of the poll latency buckets, in ms. */
#define CCCI_FORGEBOT_LATENCY_MS 50, 100, 250, 500, 1000, 2500, 5000, 10000
#define CCCI_FORGEBOT_LATENCY_BUCKETS 8

/** `status`'s `forge` object (a new reference). */
json_t *ccci_forgebot_status(struct ccci_forgebot *b);
/** The bot's counters for `status`, since the daemon started. */
struct ccci_forgebot_counters {
  uint64_t polls;          /**< polls of a repo's comments done */
  uint64_t poll_errors;    /**< of which failed */
  uint64_t requests;       /**< HTTP requests sent to the forge */
  uint64_t triggers;       /**< runs accepted from comments */
  uint64_t unauthorised;   /**< triggers refused: not a member */
  uint64_t outbox_backlog; /**< outbox entries waiting now */
  uint64_t sent;           /**< outbox entries delivered */
  uint64_t send_errors;    /**< failed deliveries (retried) */
  /** Poll requests answered, by latency: [i] counts those within
   * CCCI_FORGEBOT_LATENCY_MS[i] and above the bucket before; the last, the
   * slower ones (not cumulative; /metrics sums them). */
  uint64_t poll_latency[CCCI_FORGEBOT_LATENCY_BUCKETS + 1];
  uint64_t poll_latency_ms; /**< the sum of those latencies */
};

/** Fill @p out with the bot's counters now. */
void ccci_forgebot_counters(struct ccci_forgebot *b,
                            struct ccci_forgebot_counters *out);
/** Problems for `status` (appended to @p problems). */
void ccci_forgebot_problems(struct ccci_forgebot *b, json_t *problems);

/**
 * Stop: timers and requests end (unsent outbox entries stay on disk for
 * the next start); @p done is called once nothing is in flight, and the bot
 * is freed after it returns.
 */
void ccci_forgebot_free(struct ccci_forgebot *b, void (*done)(void *arg),
                        void *arg);

#endif
