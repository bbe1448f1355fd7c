/* libFuzzer target: every forge response parser, RFC 3339 times and the
 * trigger grammar, with the invariants each must keep. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/forge/forgeapi.h"
#include "ccci/forge/trigger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every refusal says why; a failed parse returned a zeroed struct. */
static void check(int r, char *err, const void *out, size_t n)
{
  static const unsigned char zero[256];
  if (n > sizeof(zero))
    abort();
  if (r == 0) {
    if (err != NULL)
      abort();
    return;
  }
  if (err == NULL || err[0] == '\0' || memcmp(out, zero, n) != 0)
    abort();
  free(err);
}

/* The grammar's result does not depend on LF versus CRLF line endings, nor
 * on a trailing line ending. */
static void grammar(const char *s, size_t n)
{
  enum ccci_forge_trigger t = ccci_forge_trigger(s, n);
  char *crlf = malloc(2 * n + 2);
  size_t i, k = 0;

  if (crlf == NULL)
    return;
  for (i = 0; i < n; i++) {
    if (s[i] == '\n')
      crlf[k++] = '\r';
    crlf[k++] = s[i];
  }
  if (ccci_forge_trigger(crlf, k) != t)
    abort();
  crlf[k++] = '\n';
  if (ccci_forge_trigger(crlf, k) != t)
    abort();
  free(crlf);
}

/* A parsed time formats to a string that parses back to it. */
static void times(const char *s)
{
  char out[32];
  int64_t t, back;

  if (ccci_forge_parse_time(s, &t) < 0)
    return;
  ccci_forge_format_time(t, out);
  if (t >= -62167219200 && t <= 253402300799 &&
      (ccci_forge_parse_time(out, &back) < 0 || back != t))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  struct ccci_forge_user u;
  struct ccci_forge_comment_list l;
  struct ccci_forge_comment c;
  struct ccci_forge_pull p;
  struct ccci_forge_status st;
  struct ccci_forge_reaction re;
  struct ccci_forge_hook h;
  char *err = NULL, *z;
  size_t i;
  int r;

  r = ccci_forge_parse_user(s, size, &u, &err);
  check(r, err, &u, sizeof(u));
  ccci_forge_user_close(&u);

  r = ccci_forge_parse_comments(s, size, &l, &err);
  check(r, err, &l, sizeof(l));
  for (i = 0; i < l.n; i++) {
    struct ccci_forge_comment *e = &l.items[i];
    if (e->body == NULL ? !e->body_too_long : strlen(e->body) > 65536)
      abort();
    if (e->user_login == NULL || e->user_login[0] == '\0' ||
        e->pull_request_url == NULL || e->issue_url == NULL ||
        e->on_pr != (e->pull_request_url[0] != '\0') || e->issue_number < 0)
      abort();
    if (e->body != NULL)
      (void)ccci_forge_trigger(e->body, strlen(e->body));
  }
  ccci_forge_comment_list_close(&l);

  r = ccci_forge_parse_comment(s, size, &c, &err);
  check(r, err, &c, sizeof(c));
  ccci_forge_comment_close(&c);

  r = ccci_forge_parse_hook(s, size, &h, &err);
  check(r, err, &h, sizeof(h));
  if (r == 0 && (h.action == NULL || h.action[0] == '\0' || h.repo == NULL ||
                 strchr(h.repo, '/') == NULL || h.comment.body == NULL ||
                 strlen(h.comment.body) > 65536 || h.comment.created_at == 0 ||
                 h.comment.issue_number <= 0 ||
                 (h.comment.pull_request_url[0] != '\0') != h.comment.on_pr))
    abort();
  ccci_forge_hook_close(&h);

  r = ccci_forge_parse_pull(s, size, &p, &err);
  check(r, err, &p, sizeof(p));
  if (r == 0 && strlen(p.head_sha) != 40 && strlen(p.head_sha) != 64)
    abort();
  ccci_forge_pull_close(&p);

  r = ccci_forge_parse_status(s, size, &st, &err);
  check(r, err, &st, sizeof(st));
  ccci_forge_status_close(&st);

  r = ccci_forge_parse_reaction(s, size, &re, &err);
  check(r, err, &re, sizeof(re));
  ccci_forge_reaction_close(&re);

  grammar(s, size);
  (void)ccci_forge_has_marker(s, size);

  z = malloc(size + 1);
  if (z == NULL)
    return 0;
  memcpy(z, data, size);
  z[size] = '\0';
  times(z);
  free(z);
  return 0;
}
