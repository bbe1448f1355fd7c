/* The counters of `ccci status` as one struct of plain numbers, and their
 * rendering as the socket's JSON; any other front renders the same struct. */
#ifndef CCCI_COUNTERS_H
#define CCCI_COUNTERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccci/ctl/ctl.h"
#include "ccci/forge/forgebot.h"
#include "ccci/runs/runs.h"
#include "ccci/serve/tail.h"
#include "ccci/serve/web.h"

/** Everything `status` counts; a part a daemon lacks is marked absent. */
struct ccci_serve_counters {
  /* The daemon's own. */
  struct ccci_ctl_counters ctl;
  uint64_t config_reloads;
  uint64_t config_reload_errors;
  bool has_runs; /**< false before the runs are open and after they close */
  struct ccci_runs_counters runs;
  bool has_forge; /**< false without forge.url, and once stopping */
  struct ccci_forgebot_counters forge;
  bool has_tail;
  struct ccci_tail_counters tail;
  bool has_web; /**< false without the HTTP front */
  struct ccci_web_counters web;
};

/**
 * Read the runs', the bot's, the tail engine's and the HTTP front's parts of @p
 * c from those that exist (NULL: the part is absent). The daemon's own are the
 * caller's to set.
 */
void ccci_serve_counters_read(struct ccci_serve_counters *c,
                              struct ccci_runs *rs, struct ccci_forgebot *fb,
                              const struct ccci_tail *t,
                              const struct ccci_web *w);

/**
 * `status`'s `counters` object (a new reference): flat keys in a fixed
 * order, the parts that are absent left out (docs/protocol.md).
 */
json_t *ccci_serve_counters_json(const struct ccci_serve_counters *c);

#endif
