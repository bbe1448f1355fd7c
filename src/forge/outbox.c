/* The forge bot's outbox: forge writes persisted in outbox/<seq>.json and
 * sent one at a time, in order, retried with capped backoff (docs/forge.md,
 * "The outbox"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/log.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/trigger.h"
#include "forgebot_int.h"

#define OUTBOX_MIN_MS 1000u

static void on_ob_timer(uv_timer_t *t);

static char *ob_path(const struct ccci_forgebot *b, uint64_t seq)
{
  return ccci_xasprintf("%s/%020llu.json", b->outbox_dir,
                        (unsigned long long)seq);
}

static void ob_append(struct ccci_forgebot *b, struct obx *o)
{
  if (b->ob_tail != NULL)
    b->ob_tail->next = o;
  else
    b->ob_head = o;
  b->ob_tail = o;
}

static void ob_written(struct ccci_forgebot *b, void *arg, int rc)
{
  (void)arg;
  (void)rc; /* kept in memory either way; a failed file is logged */
  fb_ob_kick(b);
}

/* Queue a forge write @p j (taken), durably; a status replaces a waiting
 * one of the same commit and context. It is sent once its file is written. */
void fb_ob_push(struct ccci_forgebot *b, json_t *j)
{
  struct obx *o = ccci_xcalloc(1, sizeof(*o)), **pp;
  const char *kind = json_string_value(json_object_get(j, "kind"));
  char *text;

  /* The newest status of a commit and context wins: a waiting older one
   * (not the one being sent) is dropped. */
  for (pp = &b->ob_head;
       kind != NULL && strcmp(kind, "status") == 0 && *pp != NULL;) {
    struct obx *x = *pp;
    static const char *const keys[] = {"kind", "repo", "sha", "context"};
    bool same = !(x == b->ob_head && b->ob_busy);
    size_t i;
    for (i = 0; i < CCCI_ARRAY_LEN(keys) && same; i++)
      same = json_equal(json_object_get(x->j, keys[i]),
                        json_object_get(j, keys[i]));
    if (!same) {
      pp = &x->next;
      continue;
    }
    *pp = x->next;
    fb_put_file(b, ob_path(b, x->seq), NULL, NULL, NULL);
    json_decref(x->j);
    free(x);
  }
  for (b->ob_tail = b->ob_head; b->ob_tail != NULL && b->ob_tail->next != NULL;)
    b->ob_tail = b->ob_tail->next;
  o->seq = ++b->ob_seq;
  o->j = j;
  text = json_dumps(j, JSON_COMPACT);
  ob_append(b, o);
  fb_put_file(b, ob_path(b, o->seq), text, ob_written, NULL);
}

static void ob_sent(struct ccci_forgebot *b);

static void on_ob_response(struct ccci_forgebot *b, void *arg,
                           const struct ccci_httpc_response *resp)
{
  struct obx *o = arg;
  char why[160];
  if (b->stopping)
    return;
  if (fb_ok_status(resp)) {
    const char *kind = json_string_value(json_object_get(o->j, "kind"));
    if (kind != NULL && strcmp(kind, "results") == 0 &&
        json_integer_value(json_object_get(o->j, "comment_id")) == 0) {
      /* Created: keep its id so later runs edit it. */
      struct ccci_forge_comment c;
      struct repo *r =
          fb_repo_of(b, json_string_value(json_object_get(o->j, "repo")));
      if (r != NULL &&
          ccci_forge_parse_comment(resp->body, resp->body_len, &c, NULL) == 0) {
        fb_set_results_id(r, json_integer_value(json_object_get(o->j, "pr")),
                          c.id);
        ccci_forge_comment_close(&c);
        fb_state_save(r, NULL, NULL);
      }
    }
    b->n.sent++;
    ob_sent(b);
    return;
  }
  fb_describe(why, sizeof(why), resp);
  b->n.send_errors++;
  /* A create whose answer was lost may have happened: look again for the
   * marker before the next try. */
  json_object_del(o->j, "searched");
  if (fb_transient(resp)) {
    uint64_t wait = (uint64_t)OUTBOX_MIN_MS
                    << (b->ob_backoff < 9 ? b->ob_backoff : 9);
    wait = fb_jitter(wait);
    if (wait > BACKOFF_MAX_MS)
      wait = BACKOFF_MAX_MS;
    if (resp->retry_after_s > 0 && (uint64_t)resp->retry_after_s * 1000u > wait)
      wait = (uint64_t)resp->retry_after_s * 1000u;
    b->ob_backoff++;
    ccci_warn("forge", "outbox: %s failed (%s); again in %llu ms",
              json_string_value(json_object_get(o->j, "kind")), why,
              (unsigned long long)wait);
    b->ob_busy = false;
    uv_timer_start(&b->ob_timer, on_ob_timer, wait, 0);
    return;
  }
  if (resp->status == 404 &&
      json_integer_value(json_object_get(o->j, "comment_id")) != 0) {
    /* The results comment is gone: post a new one. */
    json_object_set_new(o->j, "comment_id", json_integer(0));
    b->ob_busy = false;
    fb_ob_kick(b);
    return;
  }
  ccci_error("forge", "outbox: %s refused by the forge (%s); dropped",
             json_string_value(json_object_get(o->j, "kind")), why);
  ob_sent(b);
}

/* The head entry is done (sent, or dropped as refused): next one. */
static void ob_sent(struct ccci_forgebot *b)
{
  struct obx *o = b->ob_head;
  b->ob_head = o->next;
  if (b->ob_head == NULL)
    b->ob_tail = NULL;
  b->ob_busy = false;
  b->ob_backoff = 0;
  fb_put_file(b, ob_path(b, o->seq), NULL, NULL, NULL);
  json_decref(o->j);
  free(o);
  fb_ob_kick(b);
}

/* The results comment of a PR whose id is not known: look for the bot's
 * comment with the marker before creating one. */
static void on_pr_comments(struct ccci_forgebot *b, void *arg,
                           const struct ccci_httpc_response *resp)
{
  struct obx *o = arg;
  struct ccci_forge_comment_list l;
  size_t i;
  int64_t found = 0;
  if (b->stopping)
    return;
  if (!fb_ok_status(resp)) {
    on_ob_response(b, o, resp);
    return;
  }
  if (ccci_forge_parse_comments(resp->body, resp->body_len, &l, NULL) < 0) {
    /* A bad answer is tried again like a server error. */
    struct ccci_httpc_response bad = *resp;
    bad.status = 502;
    on_ob_response(b, o, &bad);
    return;
  }
  for (i = 0; i < l.n && found == 0; i++)
    if (b->bot != NULL && strcmp(l.items[i].user_login, b->bot) == 0 &&
        l.items[i].body != NULL &&
        ccci_forge_has_marker(l.items[i].body, strlen(l.items[i].body)))
      found = l.items[i].id;
  ccci_forge_comment_list_close(&l);
  json_object_set_new(o->j, "comment_id", json_integer(found));
  json_object_set_new(o->j, "searched", json_true());
  b->ob_busy = false;
  fb_ob_kick(b);
}

static void ob_send(struct ccci_forgebot *b, struct obx *o)
{
  json_t *j = o->j;
  const char *kind = json_string_value(json_object_get(j, "kind"));
  const char *repo = json_string_value(json_object_get(j, "repo"));

  b->ob_busy = true;
  if (kind == NULL || repo == NULL) {
    ob_sent(b);
  } else if (strcmp(kind, "reaction") == 0) {
    fb_call(b, "POST",
            ccci_xasprintf("/repos/%s/issues/comments/%lld/reactions", repo,
                           (long long)json_integer_value(
                               json_object_get(j, "comment_id"))),
            json_pack("{s:s}", "content", "eyes"), on_ob_response, o);
  } else if (strcmp(kind, "status") == 0) {
    json_t *body =
        json_pack("{s:O,s:O,s:O}", "state", json_object_get(j, "state"),
                  "context", json_object_get(j, "context"), "description",
                  json_object_get(j, "description"));
    if (json_is_string(json_object_get(j, "target_url")))
      json_object_set(body, "target_url", json_object_get(j, "target_url"));
    fb_call(b, "POST",
            ccci_xasprintf("/repos/%s/statuses/%s", repo,
                           json_string_value(json_object_get(j, "sha"))),
            body, on_ob_response, o);
  } else if (strcmp(kind, "reply") == 0) {
    fb_call(
        b, "POST",
        ccci_xasprintf("/repos/%s/issues/%lld/comments", repo,
                       (long long)json_integer_value(json_object_get(j, "pr"))),
        json_pack("{s:O}", "body", json_object_get(j, "body")), on_ob_response,
        o);
  } else if (strcmp(kind, "results") == 0) {
    struct repo *r = fb_repo_of(b, repo);
    int64_t pr = json_integer_value(json_object_get(j, "pr"));
    int64_t id = json_integer_value(json_object_get(j, "comment_id"));
    if (id == 0 && r != NULL)
      id = fb_results_id(r, pr);
    if (id != 0) {
      json_object_set_new(j, "comment_id", json_integer(id));
      fb_call(
          b, "PATCH",
          ccci_xasprintf("/repos/%s/issues/comments/%lld", repo, (long long)id),
          json_pack("{s:O}", "body", json_object_get(j, "body")),
          on_ob_response, o);
    } else if (!json_is_true(json_object_get(j, "searched"))) {
      fb_call(
          b, "GET",
          ccci_xasprintf("/repos/%s/issues/%lld/comments", repo, (long long)pr),
          NULL, on_pr_comments, o);
    } else {
      fb_call(
          b, "POST",
          ccci_xasprintf("/repos/%s/issues/%lld/comments", repo, (long long)pr),
          json_pack("{s:O}", "body", json_object_get(j, "body")),
          on_ob_response, o);
    }
  } else {
    ccci_error("forge", "outbox: unknown entry kind '%s'; dropped", kind);
    ob_sent(b);
  }
}

static void on_ob_timer(uv_timer_t *t)
{
  fb_ob_kick(t->data);
}

void fb_ob_kick(struct ccci_forgebot *b)
{
  if (b->stopping || b->ob_busy || b->ob_head == NULL ||
      uv_is_active((uv_handle_t *)&b->ob_timer))
    return;
  ob_send(b, b->ob_head);
}

/* Entries an earlier daemon left, in their order. */
void fb_ob_load(struct ccci_forgebot *b)
{
  char **names = NULL;
  size_t n = 0, i;
  uv_fs_t req;
  uv_dirent_t de;
  if (uv_fs_scandir(NULL, &req, b->outbox_dir, 0, NULL) >= 0) {
    while (uv_fs_scandir_next(&req, &de) != UV_EOF) {
      size_t l = strlen(de.name);
      if (l > 5 && strcmp(de.name + l - 5, ".json") == 0) {
        names = ccci_xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = ccci_xstrdup(de.name);
      }
    }
  }
  uv_fs_req_cleanup(&req);
  /* scandir sorts; the names are zero-padded sequence numbers. */
  for (i = 0; i < n; i++) {
    char *path = ccci_xasprintf("%s/%s", b->outbox_dir, names[i]), *text = NULL;
    size_t len = 0;
    uint64_t seq = strtoull(names[i], NULL, 10);
    json_t *j = NULL;
    if (ccci_read_file(path, 1 << 20, &text, &len) == 0)
      j = json_loadb(text, len, 0, NULL);
    free(text);
    if (json_is_object(j) && seq > 0) {
      struct obx *o = ccci_xcalloc(1, sizeof(*o));
      o->seq = seq;
      o->j = j;
      ob_append(b, o);
      if (seq > b->ob_seq)
        b->ob_seq = seq;
    } else {
      ccci_warn("forge", "outbox: %s is damaged; removed", path);
      json_decref(j);
      unlink(path);
    }
    free(path);
    free(names[i]);
  }
  free(names);
  if (b->ob_head != NULL)
    ccci_info("forge", "outbox: %llu entries left by an earlier daemon",
              (unsigned long long)(b->ob_seq));
}
