/* The ops of the daemon (docs/protocol.md): each takes a request object and
 * returns its reply, or says the reply comes later, knowing nothing of the
 * transport that carried them (the control socket today). */
#ifndef CCCI_OPS_H
#define CCCI_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ccci/forge/forgebot.h"
#include "ccci/runs/runs.h"
#include "ccci/serve/counters.h"
#include "ccci/serve/tail.h"

/** Returned by a handler whose reply comes later (see ccci_op_call). */
extern json_t ccci_op_later;
#define CCCI_OP_LATER (&ccci_op_later)

/** A request being answered, as its transport presents it to the op. */
struct ccci_op_call {
  uid_t uid; /**< the caller (SO_PEERCRED on the socket) */
  /**
   * Answer later, taking @p reply: an op that returned CCCI_OP_LATER calls
   * it exactly once, unless it made the call a stream.
   */
  void (*reply)(struct ccci_op_call *call, json_t *reply);
  /**
   * Make the call a stream of tail messages: the transport's sink for it
   * (its ops set), which the op hands to ccci_tail_start() and then
   * returns CCCI_OP_LATER.
   */
  struct ccci_tail_sink *(*stream)(struct ccci_op_call *call);
};

struct ccci_web;

/** The daemon's facts for `status`, as they are now. */
struct ccci_ops_daemon {
  const char *instance;
  const char *state_dir;
  const char *socket;
  const char *config; /**< the config's source */
  time_t started_at, config_loaded_at;
  uint64_t uptime_s;
  bool stopping;
  /** The daemon's own counters; the ops read the rest. */
  struct ccci_serve_counters counters;
};

/** What the daemon lends the ops; it keeps the pointers current. */
struct ccci_ops_env {
  struct ccci_runs *runs;      /**< NULL once closed */
  struct ccci_tail *tail;      /**< NULL once freed */
  struct ccci_forgebot *forge; /**< NULL without forge.url, and once stopping */
  struct ccci_web *web;        /**< the HTTP front; NULL once stopping */
  /** Fill @p out (the strings valid until control returns to the loop). */
  void (*daemon)(void *arg, struct ccci_ops_daemon *out);
  void *arg;
};

/** An op handler: the reply to @p req (a new reference) or CCCI_OP_LATER. */
typedef json_t *(*ccci_op_fn)(const struct ccci_ops_env *env,
                              struct ccci_op_call *call, json_t *req);

/** One entry of the op table. */
struct ccci_op {
  const char *name;
  ccci_op_fn fn;
};

/** The op named @p name, or NULL. */
const struct ccci_op *ccci_ops_find(const char *name);

/**
 * Answer @p req, an envelope the transport checked (`"v"` and a string
 * `"op"`, ccci_proto_parse_request): the op's reply, `unknown-op` naming
 * the known ones, `internal` when the op failed, or CCCI_OP_LATER.
 */
json_t *ccci_ops_call(const struct ccci_ops_env *env, struct ccci_op_call *call,
                      json_t *req);

#endif
