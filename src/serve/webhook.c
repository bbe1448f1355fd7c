/* POST /hook: Gitea/Forgejo `issue_comment` webhooks, verified with the
 * shared secret (HMAC-SHA256 of the raw body) and fed to the forge bot's
 * acceptance path, the one polling uses (docs/http.md, "Webhook"). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ccci/core/log.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/forgebot.h"
#include "web_int.h"

/* The largest secret file read. */
#define SECRET_MAX 4096

/* One request waiting for the acceptance path's verdict. */
struct hook {
  struct ccci_list link; /* on w->hooks while waiting */
  struct ccci_web *w;
  struct ccci_http_req *req; /* NULL once answered */
};

/* Answer @p r with a small JSON object {"status": ..., more}. */
static void answer(struct ccci_web *w, struct ccci_http_req *r, int status,
                   json_t *j)
{
  ccci_web_json(w, r, status, j);
}

static void ignored(struct ccci_web *w, struct ccci_http_req *r,
                    const char *why)
{
  answer(w, r, 202, json_pack("{s:s,s:s}", "result", "ignored", "reason", why));
}

/* The verdict's answer: a run (new or known), or why not. */
static void verdict_answer(struct ccci_web *w, struct ccci_http_req *r,
                           enum ccci_ledger_verdict v, const char *run_id,
                           const char *what)
{
  switch (v) {
  case CCCI_LEDGER_ACCEPT:
  case CCCI_LEDGER_SUPERSEDE:
    w->c.hook_triggers++;
    answer(w, r, 201,
           json_pack("{s:s,s:s}", "result", ccci_ledger_verdict_name(v), "run",
                     run_id != NULL ? run_id : ""));
    return;
  case CCCI_LEDGER_DUPLICATE:
    answer(w, r, 200,
           json_pack("{s:s,s:s}", "result", "duplicate", "run",
                     run_id != NULL ? run_id : ""));
    return;
  case CCCI_LEDGER_ALREADY_SEEN:
    /* Polling (or an earlier delivery) decided it already. */
    answer(w, r, 200, json_pack("{s:s}", "result", "already-seen"));
    return;
  case CCCI_LEDGER_RETRY:
    /* Polling reads the comment again; the forge may redeliver too. */
    answer(w, r, 503,
           json_pack("{s:s,s:s}", "result", "retry", "reason",
                     what != NULL ? what : "cannot tell now"));
    return;
  default:
    ignored(w, r, ccci_ledger_verdict_name(v));
  }
}

static void on_verdict(void *arg, const struct ccci_forgebot_verdict *v)
{
  struct hook *h = arg;
  if (h->req != NULL) {
    ccci_list_remove(&h->link);
    verdict_answer(h->w, h->req, v->verdict, v->run_id, v->what);
  }
  free(h);
}

/* Is @p sig (hex, any case) the HMAC-SHA256 of @p body with the secret? */
static bool signature_ok(const struct ccci_web *w, const char *sig,
                         const char *body, size_t len)
{
  unsigned char mac[EVP_MAX_MD_SIZE], got[32];
  unsigned int n = 0;
  size_t i;

  if (sig == NULL || strlen(sig) != 64 || w->hook_secret == NULL)
    return false;
  for (i = 0; i < 32; i++) {
    int hi = OPENSSL_hexchar2int((unsigned char)sig[2 * i]);
    int lo = OPENSSL_hexchar2int((unsigned char)sig[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    got[i] = (unsigned char)(hi << 4 | lo);
  }
  if (HMAC(EVP_sha256(), w->hook_secret, (int)w->hook_secret_len,
           (const unsigned char *)body, len, mac, &n) == NULL ||
      n != 32)
    return false;
  return CRYPTO_memcmp(mac, got, 32) == 0;
}

static bool enrolled(const struct ccci_config *cfg, const char *repo)
{
  size_t i;
  for (i = 0; i < cfg->forge.repos.n; i++)
    if (strcmp(cfg->forge.repos.v[i], repo) == 0)
      return true;
  return false;
}

/* The event name of the delivery: either forge's header. */
static const char *event_of(const struct ccci_http_req *r)
{
  const char *e = ccci_http_header(r, "X-Gitea-Event");
  return e != NULL ? e : ccci_http_header(r, "X-Forgejo-Event");
}

static const char *signature_of(const struct ccci_http_req *r)
{
  const char *s = ccci_http_header(r, "X-Gitea-Signature");
  return s != NULL ? s : ccci_http_header(r, "X-Forgejo-Signature");
}

/* The payload is signed and an issue_comment: parse it and accept. */
static void accept_hook(struct ccci_web *w, struct ccci_http_req *r,
                        const struct ccci_config *cfg, const char *body,
                        size_t len)
{
  struct ccci_forgebot *fb = w->env.ops->forge;
  struct ccci_forge_hook hk;
  enum ccci_ledger_verdict v;
  struct hook *h;
  char *err = NULL;

  if (ccci_forge_parse_hook(body, len, &hk, &err) < 0) {
    ccci_web_error(w, r, 400, "not an issue_comment payload: %s", err);
    free(err);
    return;
  }
  if (strcmp(hk.action, "created") != 0) {
    /* Edits never trigger (SPEC section 3), deletions neither. */
    ignored(w, r, "not a new comment");
    ccci_forge_hook_close(&hk);
    return;
  }
  if (!enrolled(cfg, hk.repo)) {
    ignored(w, r, "not enrolled");
    ccci_forge_hook_close(&hk);
    return;
  }
  if (fb == NULL || w->stopping) {
    ccci_web_error(w, r, 503, "the forge bot is not running");
    ccci_forge_hook_close(&hk);
    return;
  }
  h = ccci_xcalloc(1, sizeof(*h));
  h->w = w;
  h->req = r;
  ccci_list_add_tail(&w->hooks, &h->link);
  v = ccci_forgebot_accept_trigger(fb, hk.repo, &hk.comment, on_verdict, h);
  ccci_forge_hook_close(&hk);
  if (v == CCCI_LEDGER_NEED_PULL)
    return; /* on_verdict answers (it may have already) and frees h */
  ccci_list_remove(&h->link);
  free(h);
  verdict_answer(w, r, v, NULL, NULL);
}

void ccci_web_hook(struct ccci_web *w, struct ccci_http_req *r,
                   const char *const *arg)
{
  struct ccci_config *cfg = ccci_web_config(w);
  const char *event, *body;
  size_t len = 0;

  (void)arg;
  if (cfg->forge.url == NULL || cfg->forge.webhook_secret_file == NULL) {
    ccci_web_error(w, r, 404, "no webhook is configured");
    goto out;
  }
  if (w->hook_secret == NULL) {
    ccci_web_error(w, r, 503, "the webhook secret cannot be read");
    goto out;
  }
  body = ccci_http_body(r, &len);
  if (!signature_ok(w, signature_of(r), body, len)) {
    w->c.hooks_refused++;
    ccci_warn("http", "POST /hook from %s: missing or wrong signature",
              ccci_http_peer(r));
    ccci_web_error(w, r, 401, "missing or wrong signature");
    goto out;
  }
  w->c.hooks++;
  event = event_of(r);
  if (event == NULL || strcmp(event, "issue_comment") != 0) {
    ignored(w, r, "not an issue_comment event");
    goto out;
  }
  accept_hook(w, r, cfg, body, len);
out:
  ccci_config_unref(cfg);
}

static void secret_clear(struct ccci_web *w)
{
  if (w->hook_secret != NULL)
    ccci_wipe_free(w->hook_secret, w->hook_secret_len);
  w->hook_secret = NULL;
  w->hook_secret_len = 0;
}

void ccci_web_hook_reload(struct ccci_web *w, const struct ccci_config *cfg)
{
  const char *path = cfg->forge.webhook_secret_file;
  char *text = NULL;
  size_t len = 0, n;
  int rc;

  /* Read at start and on SIGHUP only, on the loop like the forge token:
   * a small local file. */
  secret_clear(w);
  if (path == NULL || cfg->forge.url == NULL)
    return;
  rc = ccci_read_file(path, SECRET_MAX, &text, &len);
  if (rc < 0) {
    ccci_error("http",
               "cannot read forge.webhook_secret_file %s: %s; POST /hook "
               "answers 503",
               path, strerror(-rc));
    return;
  }
  n = len;
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
    n--;
  if (n == 0) {
    ccci_wipe_free(text, len);
    ccci_error("http",
               "forge.webhook_secret_file %s is empty; POST /hook answers 503",
               path);
    return;
  }
  w->hook_secret = ccci_xmalloc(n + 1);
  memcpy(w->hook_secret, text, n);
  w->hook_secret[n] = '\0';
  w->hook_secret_len = n;
  ccci_wipe_free(text, len);
}

void ccci_web_hook_stop(struct ccci_web *w)
{
  /* The bot stops before the front (daemon.c), so no verdict can still
   * come for these: their callbacks are never called and they go here. */
  while (!ccci_list_empty(&w->hooks)) {
    struct hook *h =
        ccci_container_of(ccci_list_first(&w->hooks), struct hook, link);
    ccci_list_remove(&h->link);
    ccci_web_error(w, h->req, 503, "the daemon is stopping");
    free(h);
  }
}
