/* The forge bot's pollers: one timer per enrolled repo, the comment pages
 * from the watermark, the first poll's baseline, and the candidates handed
 * one at a time to the acceptance path (docs/forge.md, "Polling"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/log.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/ledger.h"
#include "forgebot_int.h"

#define PAGE 50
/* `since` reaches this far behind the watermark (forge clocks round). */
#define OVERLAP_S 60
/* Polls start on a grid of slots this long (at most a quarter of the poll
 * interval), so the repos whose random phases fall in one slot poll in one
 * loop iteration: on this kind of machine a wakeup from idle costs about as
 * much CPU as a poll itself (docs/perf.md). */
#define POLL_SLOT_MS 250u

/* ---- polling ---- */

static void on_repo_timer(uv_timer_t *t);

/* Poll @p r in @p ms. */
static void repo_next(struct repo *r, uint64_t ms)
{
  if (r->removed || r->b->stopping)
    return;
  r->due = uv_now(r->b->loop) + ms;
  uv_timer_start(&r->timer, on_repo_timer, ms, 0);
}

/* Poll @p r at @p at (loop time, not in the past), started at the first
 * slot boundary from there. */
void fb_repo_at(struct repo *r, uint64_t at, uint64_t interval_ms)
{
  uint64_t slot = interval_ms / 4, now = uv_now(r->b->loop), start;
  if (r->removed || r->b->stopping)
    return;
  if (slot > POLL_SLOT_MS)
    slot = POLL_SLOT_MS;
  start = slot > 1 ? (at + slot - 1) / slot * slot : at;
  r->due = at;
  uv_timer_start(&r->timer, on_repo_timer, start - now, 0);
}

/* The next regular poll: one interval after the last one was due (not
 * after it ended), so the period is the interval on average, each one
 * within a slot of it. */
static void repo_again(struct repo *r)
{
  struct ccci_config *cfg = r->b->config(r->b->arg);
  uint64_t iv = cfg->forge.poll_interval_ms, at = r->due + iv;
  uint64_t now = uv_now(r->b->loop);
  /* A poll that took longer than the interval (many pages, a slow forge)
   * is followed a whole interval later, never back to back. */
  if (at < now)
    at = now + iv;
  fb_repo_at(r, at, iv);
  ccci_config_unref(cfg);
}

static void poll_failed(struct repo *r, const char *what,
                        const struct ccci_httpc_response *resp)
{
  struct ccci_config *cfg = r->b->config(r->b->arg);
  uint64_t wait = cfg->forge.poll_interval_ms;
  char why[160];
  unsigned k = r->backoff < 16 ? r->backoff : 16;
  ccci_config_unref(cfg);
  while (k-- > 0 && wait < BACKOFF_MAX_MS)
    wait *= 2;
  /* Jitter spreads the repos (within the cap); Retry-After is a floor,
   * never shortened. */
  wait = fb_jitter(wait);
  if (wait > BACKOFF_MAX_MS)
    wait = BACKOFF_MAX_MS;
  if (resp != NULL && resp->retry_after_s > 0 &&
      (uint64_t)resp->retry_after_s * 1000u > wait)
    wait = (uint64_t)resp->retry_after_s * 1000u;
  r->backoff++;
  r->b->n.poll_errors++;
  if (resp != NULL)
    fb_describe(why, sizeof(why), resp);
  else
    snprintf(why, sizeof(why), "%s", "bad answer");
  ccci_warn("forge", "%s: %s failed (%s); polling again in %llu ms", r->full,
            what, why, (unsigned long long)wait);
  ccci_forge_comment_list_close(&r->cand);
  r->busy = false;
  repo_next(r, wait);
}

static void poll_done(struct repo *r)
{
  size_t i, k = 0;
  if (r->max_updated > r->watermark) {
    r->watermark = r->max_updated;
    r->dirty = true;
  }
  for (i = 0; i < r->nseen; i++)
    if (r->seen[i].created >= r->watermark - SEEN_KEEP_S)
      r->seen[k++] = r->seen[i];
  r->dirty = r->dirty || k != r->nseen;
  r->nseen = k;
  ccci_forge_comment_list_close(&r->cand);
  r->busy = false;
  r->backoff = 0;
  r->b->n.polls++;
  /* An idle repo's poll writes nothing. */
  if (r->dirty)
    fb_state_save(r, NULL, NULL);
  repo_again(r);
}

/* ---- the poll's candidates ---- */

static void poll_next_candidate(struct repo *r);

static void on_candidate(void *arg, const struct ccci_forgebot_verdict *v)
{
  struct repo *r = arg;
  if (v->verdict == CCCI_LEDGER_RETRY) {
    poll_failed(r, v->what, v->resp);
    return;
  }
  r->next++;
  poll_next_candidate(r);
}

/* The comments that may trigger, one at a time through the acceptance
 * path; the watermark advances only after all of them. */
static void poll_next_candidate(struct repo *r)
{
  for (; r->next < r->cand.n; r->next++)
    if (ccci_forgebot_accept_trigger(r->b, r->full, &r->cand.items[r->next],
                                     on_candidate, r) == CCCI_LEDGER_NEED_PULL)
      return;
  poll_done(r);
}

static void get_page(struct repo *r);

/* Count one poll request's latency in its bucket. */
static void latency(struct ccci_forgebot *b, uint64_t ms)
{
  static const uint64_t bounds[] = {CCCI_FORGEBOT_LATENCY_MS};
  size_t i = 0;
  while (i < CCCI_FORGEBOT_LATENCY_BUCKETS && ms > bounds[i])
    i++;
  b->n.poll_latency[i]++;
  b->n.poll_latency_ms += ms;
}

/* The first poll read every page: the last page's Date is the enrolment
 * time and the watermark, so every comment it returned was made by then
 * and a comment it did not return counts. */
static void enrol(struct repo *r, int64_t date)
{
  r->enrolled = true;
  r->watermark = r->enrolled_at = date;
  ccci_info("forge", "%s: enrolled; comments from %lld on count", r->full,
            (long long)date);
  r->max_updated = r->watermark;
  r->dirty = true;
  poll_done(r);
}

static void on_comments(struct ccci_forgebot *b, void *arg,
                        const struct ccci_httpc_response *resp)
{
  struct repo *r = arg;
  struct ccci_forge_comment_list l;
  char *err = NULL;
  size_t i;
  if (b->stopping)
    return;
  latency(b, uv_now(b->loop) - r->page_sent);
  if (!fb_ok_status(resp)) {
    poll_failed(r, "listing comments", resp);
    return;
  }
  if (!r->enrolled && resp->date <= 0) {
    poll_failed(r, "the first poll (no Date header)", NULL);
    return;
  }
  if (ccci_forge_parse_comments(resp->body, resp->body_len, &l, &err) < 0) {
    ccci_warn("forge", "%s: the comments answer: %s", r->full, err);
    free(err);
    poll_failed(r, "listing comments", NULL);
    return;
  }
  for (i = 0; i < l.n; i++) {
    struct ccci_forge_comment *c = &l.items[i];
    if (c->updated_at > r->max_updated)
      r->max_updated = c->updated_at;
    /* The first poll's comments all predate enrolment, even one made in
     * the second of its Date: the ledger calls them baseline. */
    if (fb_first_look(b, r, c) != CCCI_LEDGER_NEED_PULL)
      continue;
    /* Moved into the candidates (the list keeps ownership otherwise). */
    r->cand.items =
        ccci_xrealloc(r->cand.items, (r->cand.n + 1) * sizeof(*r->cand.items));
    r->cand.items[r->cand.n++] = *c;
    memset(c, 0, sizeof(*c));
  }
  i = l.n;
  r->fetched += i;
  ccci_forge_comment_list_close(&l);
  /* A full page, or fewer than the forge counts (a server whose page is
   * smaller than ours): there is more. */
  if (i >= PAGE || (i > 0 && resp->total_count > 0 &&
                    r->fetched < (size_t)resp->total_count)) {
    r->page++;
    get_page(r);
    return;
  }
  if (!r->enrolled) {
    enrol(r, resp->date);
    return;
  }
  r->next = 0;
  poll_next_candidate(r);
}

/* One page of the comments listing; the first poll has no watermark yet
 * and reads them all. */
static void get_page(struct repo *r)
{
  char since[32];
  r->page_sent = uv_now(r->b->loop);
  if (!r->enrolled) {
    fb_call(r->b, "GET",
            ccci_xasprintf("/repos/%s/issues/comments?limit=%d&page=%u",
                           r->full, PAGE, r->page),
            NULL, on_comments, r);
    return;
  }
  ccci_forge_format_time(r->watermark - OVERLAP_S, since);
  fb_call(r->b, "GET",
          ccci_xasprintf("/repos/%s/issues/comments?since=%s&limit=%d&page=%u",
                         r->full, since, PAGE, r->page),
          NULL, on_comments, r);
}

static void on_repo_timer(uv_timer_t *t)
{
  struct repo *r = ccci_container_of(t, struct repo, timer);
  if (r->busy || r->b->stopping)
    return;
  if (r->b->bot == NULL) {
    repo_next(r, 1000); /* the bot's login comes first */
    return;
  }
  r->busy = true;
  r->page = 1;
  r->fetched = 0;
  r->max_updated = r->watermark;
  memset(&r->cand, 0, sizeof(r->cand));
  get_page(r);
}
