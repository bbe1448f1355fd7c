/* The forge bot's insides, shared by its files (not an interface): the
 * bot's and a repo's state, and the functions one file lends another.
 * forgebot.c: life, requests, ordered writes, the repo state files, the
 * self-check and the reporter; poller.c: the pollers; accept.c: the
 * acceptance path of a comment; outbox.c: the outbox. Cross-file
 * functions are prefixed fb_. */
#ifndef CCCI_FORGE_FORGEBOT_INT_H
#define CCCI_FORGE_FORGEBOT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccci/core/fileq.h"
#include "ccci/core/list.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/forgebot.h"
#include "ccci/forge/httpc.h"
#include "ccci/runs/run.h"

/* Seen comment ids are kept this far behind the watermark. */
#define SEEN_KEEP_S 86400
#define BACKOFF_MAX_MS (5u * 60u * 1000u)

struct seen {
  int64_t id, created;
};

struct prid {
  int64_t pr, id;
};

struct repo {
  struct ccci_forgebot *b;
  char *full, *owner, *state_path;
  uv_timer_t timer;
  uint64_t page_sent; /* when the last page was asked for, loop time in ms */
  uint64_t due;       /* when the poll is (or was last) due, loop time in ms;
                         its timer starts at the next slot boundary */
  bool removed;
  /* persisted */
  bool enrolled;
  int64_t watermark, enrolled_at;
  struct seen *seen;
  size_t nseen;
  char **replied; /* "user#pr" */
  size_t nreplied;
  struct prid *results; /* the results comment of each PR */
  size_t nresults;
  bool dirty; /* changed since the state file was written */
  /* the poll going on */
  bool busy;
  unsigned page, backoff;
  size_t fetched; /* comments read in this poll */
  int64_t max_updated;
  struct ccci_forge_comment_list cand; /* comments that may trigger */
  size_t next;
};

struct member {
  char *key; /* "org/user" */
  bool yes;
  uint64_t until_ms;
};

/* A forge write, persisted in outbox/<seq>.json until the forge took it. */
struct obx {
  uint64_t seq;
  json_t *j;
  struct obx *next;
};

struct ccci_forgebot {
  uv_loop_t *loop;
  struct ccci_runs *runs;
  struct ccci_runs_finish_observer finished; /* reports forge runs */
  struct ccci_config *(*config)(void *arg);
  const char *(*public_url)(void *arg);
  void *arg;
  char *state_dir, *forge_dir, *outbox_dir;
  char *base; /* <url>/api/v1 */
  char *auth; /* "Authorization: token ..." (wiped when replaced) */
  struct ccci_httpc *http;
  char *bot;         /* the bot's login, once known */
  char *check_error; /* the self-check's complaint, or NULL */
  struct repo **repos;
  size_t nrepos;
  struct member *members;
  size_t nmembers;
  struct obx *ob_head, *ob_tail;
  uint64_t ob_seq;
  bool ob_busy;
  unsigned ob_backoff;
  uv_timer_t ob_timer, check_timer;
  struct ccci_fileq files; /* the state, outbox and marker files, in order */
  struct ccci_list reqs;   /* requests in flight (struct req) */
  struct ccci_list trigs;  /* comments on their way through acceptance */
  unsigned pending;        /* file writes and run acceptances in flight */
  unsigned handles;
  bool stopping, warned_no_url;
  void (*done)(void *);
  void *done_arg;
  struct ccci_forgebot_counters n; /* outbox_backlog counted when read */
};

/* forgebot.c */

/* @p ms, give or take a quarter. */
uint64_t fb_jitter(uint64_t ms);
/* Write @p data (taken; NULL: unlink @p path, taken) after every write
 * queued before, then call @p done. */
void fb_put_file(struct ccci_forgebot *b, char *path, char *data,
                 void (*done)(struct ccci_forgebot *, void *, int), void *arg);
/* One API call: @p method on `<url>/api/v1<path>` (taken), @p body JSON
 * (taken) or NULL; @p cb follows (inline only when it cannot be sent). */
void fb_call(struct ccci_forgebot *b, const char *method, char *path,
             json_t *body,
             void (*cb)(struct ccci_forgebot *, void *,
                        const struct ccci_httpc_response *),
             void *arg);
/* fb_call for a file's bytes (`GET <url>/api/v1<path>`, @p path taken):
 * accepts application/octet-stream as the raw file endpoints answer. */
void fb_get_file(struct ccci_forgebot *b, char *path,
                 void (*cb)(struct ccci_forgebot *, void *,
                            const struct ccci_httpc_response *),
                 void *arg);
/* A 2xx answer. */
bool fb_ok_status(const struct ccci_httpc_response *resp);
/* Whether a failed call is worth trying again (network, 5xx, 429). */
bool fb_transient(const struct ccci_httpc_response *resp);
/* The error or status of @p r, for a log line. */
void fb_describe(char *buf, size_t n, const struct ccci_httpc_response *r);
/* Queue the repo's state file (a whole snapshot). */
void fb_state_save(struct repo *r,
                   void (*done)(struct ccci_forgebot *, void *, int),
                   void *arg);
bool fb_is_seen(const struct repo *r, int64_t id);
void fb_mark_seen(struct repo *r, int64_t id, int64_t created);
/* The enrolled repo @p full, or NULL. */
struct repo *fb_repo_of(struct ccci_forgebot *b, const char *full);
/* The results comment of PR @p pr (0: not known), and setting it. */
int64_t fb_results_id(const struct repo *r, int64_t pr);
void fb_set_results_id(struct repo *r, int64_t pr, int64_t id);
/* The eyes reaction and the pending status of an accepted run. */
void fb_ack_run(struct ccci_forgebot *b, const struct ccci_run_meta *m,
                const char *dir);
/* Free the bot once it stops and nothing is in flight. */
void fb_maybe_freed(struct ccci_forgebot *b);

/* outbox.c */

/* Queue a forge write @p j (taken), durably; a status replaces a waiting
 * one of the same commit and context. */
void fb_ob_push(struct ccci_forgebot *b, json_t *j);
/* Send the next entry unless one is on its way or waiting for a retry. */
void fb_ob_kick(struct ccci_forgebot *b);
/* Read the entries an earlier daemon left, in their order. */
void fb_ob_load(struct ccci_forgebot *b);

/* accept.c */

/* The ledger's verdict on @p c and the repo's ledger alone (@p r NULL:
 * not enrolled); a final one is settled (the id seen). */
enum ccci_ledger_verdict fb_first_look(struct ccci_forgebot *b, struct repo *r,
                                       const struct ccci_forge_comment *c);
/* Free the comments still on their way through acceptance (at stop). */
void fb_trigs_free(struct ccci_forgebot *b);

/* poller.c */

/* Poll @p r at @p at (loop time), started at the slot boundary from there. */
void fb_repo_at(struct repo *r, uint64_t at, uint64_t interval_ms);

#endif
