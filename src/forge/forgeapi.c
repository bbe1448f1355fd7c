/* The forge's API without the I/O: Gitea/Forgejo response parsers, RFC 3339
 * times, the `!testme` trigger grammar and the results comment's marker. */
#include "ccci/forge/forgeapi.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading JSON ---- */

/* A reader keeps the first error; later calls see `bad` and do nothing. */
struct rd {
  char **err;
  bool bad;
  int code; /* the parser's answer once bad: -EINVAL, or -ENOMEM */
};

/* Longest JSON path we build: "comments[999].user" and a key. */
#define PATH_MAX_LEN 64

static void fail(struct rd *rd, const char *path, const char *key,
                 const char *fmt, ...) CCCI_PRINTF(4, 5);

static void fail(struct rd *rd, const char *path, const char *key,
                 const char *fmt, ...)
{
  va_list ap;
  char *msg;

  if (rd->bad)
    return;
  rd->bad = true;
  if (rd->err == NULL)
    return;
  va_start(ap, fmt);
  msg = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  if (key == NULL)
    *rd->err = ccci_xasprintf("%s: %s", path, msg);
  else if (path[0] == '\0')
    *rd->err = ccci_xasprintf("%s: %s", key, msg);
  else
    *rd->err = ccci_xasprintf("%s.%s: %s", path, key, msg);
  free(msg);
}

static const char *type_name(json_type t)
{
  switch (t) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
    return "an integer";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  default:
    return "a value";
  }
}

/*
 * The member @p key of @p obj (at @p path) when it has type @p want. A
 * required member that is absent is "missing"; a null one is mistyped. An
 * optional member that is absent or null gives NULL without an error.
 */
static const json_t *get(struct rd *rd, const json_t *obj, const char *path,
                         const char *key, json_type want, bool required)
{
  const json_t *v;

  if (rd->bad)
    return NULL;
  v = json_object_get(obj, key);
  if (v == NULL || (json_is_null(v) && !required)) {
    if (required)
      fail(rd, path, key, "missing");
    return NULL;
  }
  if (json_typeof(v) != want && !(want == JSON_TRUE && json_is_boolean(v))) {
    fail(rd, path, key, "expected %s", type_name(want));
    return NULL;
  }
  return v;
}

/* A string member no longer than @p max; "" when optional and absent. */
static char *get_str(struct rd *rd, const json_t *obj, const char *path,
                     const char *key, size_t max, bool required, bool nonempty)
{
  const json_t *v = get(rd, obj, path, key, JSON_STRING, required);
  size_t n;

  if (v == NULL)
    return rd->bad ? NULL : ccci_xstrdup("");
  n = json_string_length(v);
  if (n > max) {
    fail(rd, path, key, "longer than %zu bytes", max);
    return NULL;
  }
  if (n == 0 && nonempty) {
    fail(rd, path, key, "empty");
    return NULL;
  }
  return ccci_xstrndup(json_string_value(v), n);
}

static int64_t get_int(struct rd *rd, const json_t *obj, const char *path,
                       const char *key, bool positive)
{
  const json_t *v = get(rd, obj, path, key, JSON_INTEGER, true);
  int64_t n;

  if (v == NULL)
    return 0;
  n = (int64_t)json_integer_value(v);
  if (positive && n <= 0) {
    fail(rd, path, key, "expected a positive integer");
    return 0;
  }
  return n;
}

static bool get_bool(struct rd *rd, const json_t *obj, const char *path,
                     const char *key)
{
  const json_t *v = get(rd, obj, path, key, JSON_TRUE, true);
  return v != NULL && json_is_true(v);
}

/* An RFC 3339 member as epoch seconds; 0 when optional and absent. */
static int64_t get_time(struct rd *rd, const json_t *obj, const char *path,
                        const char *key, bool required)
{
  const json_t *v = get(rd, obj, path, key, JSON_STRING, required);
  int64_t t = 0;

  if (v == NULL)
    return 0;
  if (ccci_forge_parse_time(json_string_value(v), &t) < 0) {
    fail(rd, path, key,
         "expected an RFC 3339 date-time, like "
         "2026-11-24T03:57:48Z");
    return 0;
  }
  return t;
}

/* The object member @p key, and its path in @p sub. */
static const json_t *get_obj(struct rd *rd, const json_t *obj, const char *path,
                             const char *key, char sub[PATH_MAX_LEN])
{
  snprintf(sub, PATH_MAX_LEN, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
  return get(rd, obj, path, key, JSON_OBJECT, true);
}

/* The login of the User member @p key (and its id when @p id is set). */
static char *get_user(struct rd *rd, const json_t *obj, const char *path,
                      const char *key, int64_t *id)
{
  char sub[PATH_MAX_LEN];
  const json_t *u = get_obj(rd, obj, path, key, sub);
  char *login;

  if (u == NULL)
    return NULL;
  login = get_str(rd, u, sub, "login", CCCI_FORGE_LOGIN_MAX, true, true);
  if (id != NULL)
    *id = get_int(rd, u, sub, "id", false);
  return login;
}

/*
 * Load @p len bytes of JSON. Any top-level value is accepted so that a
 * wrong one gets the same "expected an object" error as a nested one.
 */
static json_t *load(const char *body, size_t len, char **err, int *r)
{
  json_error_t je;
  json_t *j;

  if (err != NULL)
    *err = NULL;
  if (len > CCCI_FORGE_RESPONSE_MAX) {
    if (err != NULL)
      *err = ccci_xasprintf("response: larger than %u bytes",
                            CCCI_FORGE_RESPONSE_MAX);
    *r = -EFBIG;
    return NULL;
  }
  j = json_loadb(body != NULL ? body : "", body != NULL ? len : 0,
                 JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  if (j == NULL) {
    if (err != NULL)
      *err = ccci_xasprintf("invalid JSON at line %d column %d: %s", je.line,
                            je.column, je.text);
    *r = -EINVAL;
    return NULL;
  }
  *r = 0;
  return j;
}

/*
 * The shape every parser shares: load the body, let @p read fill @p out
 * from the top-level value (it checks that value's type), and on an error
 * let @p close free what was filled, leaving @p out zeroed. The error code
 * is rd.code (-EINVAL unless the reader said otherwise).
 */
static int parse(const char *body, size_t len, char **err, void *out,
                 size_t size,
                 void (*read)(struct rd *rd, const json_t *j, void *out),
                 void (*close)(void *out))
{
  struct rd rd = {err, false, -EINVAL};
  int r;
  json_t *j = load(body, len, err, &r);

  memset(out, 0, size);
  if (j == NULL)
    return r;
  read(&rd, j, out);
  json_decref(j);
  if (rd.bad) {
    close(out);
    return rd.code;
  }
  return 0;
}

/* A top-level value that must be an object. */
static void want_object(struct rd *rd, const json_t *j)
{
  if (!json_is_object(j))
    fail(rd, "response", NULL, "expected an object");
}

/* ---- users ---- */

void ccci_forge_user_close(struct ccci_forge_user *u)
{
  free(u->login);
  memset(u, 0, sizeof(*u));
}

static void read_user(struct rd *rd, const json_t *j, void *out)
{
  struct ccci_forge_user *u = out;
  want_object(rd, j);
  u->id = get_int(rd, j, "", "id", false);
  u->login = get_str(rd, j, "", "login", CCCI_FORGE_LOGIN_MAX, true, true);
}

static void close_user(void *out)
{
  ccci_forge_user_close(out);
}

int ccci_forge_parse_user(const char *body, size_t len,
                          struct ccci_forge_user *out, char **err)
{
  return parse(body, len, err, out, sizeof(*out), read_user, close_user);
}

/* ---- comments ---- */

/* The number after the last '/' of @p url, or 0. */
static int64_t trailing_number(const char *url)
{
  const char *slash = strrchr(url, '/');
  const char *p;
  int64_t n = 0;

  if (slash == NULL || slash[1] == '\0')
    return 0;
  for (p = slash + 1; *p != '\0'; p++) {
    if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10)
      return 0;
    n = n * 10 + (*p - '0');
  }
  return n;
}

void ccci_forge_comment_close(struct ccci_forge_comment *c)
{
  free(c->user_login);
  free(c->body);
  free(c->pull_request_url);
  free(c->issue_url);
  memset(c, 0, sizeof(*c));
}

/*
 * Read the Comment @p j at @p path into @p c. In a list (@p in_list) the
 * times are required and an over-long body is flagged rather than fatal.
 */
static void read_comment(struct rd *rd, const json_t *j, const char *path,
                         bool in_list, struct ccci_forge_comment *c)
{
  const json_t *b;

  if (!json_is_object(j)) {
    fail(rd, path[0] != '\0' ? path : "response", NULL, "expected an object");
    return;
  }
  c->id = get_int(rd, j, path, "id", true);
  c->user_login = get_user(rd, j, path, "user", &c->user_id);
  b = get(rd, j, path, "body", JSON_STRING, true);
  if (b != NULL && in_list && json_string_length(b) > CCCI_FORGE_BODY_MAX)
    c->body_too_long = true;
  else
    c->body = get_str(rd, j, path, "body", CCCI_FORGE_BODY_MAX, true, false);
  c->pull_request_url = get_str(rd, j, path, "pull_request_url",
                                CCCI_FORGE_STR_MAX, false, false);
  c->issue_url =
      get_str(rd, j, path, "issue_url", CCCI_FORGE_STR_MAX, false, false);
  c->created_at = get_time(rd, j, path, "created_at", in_list);
  c->updated_at = get_time(rd, j, path, "updated_at", in_list);
  if (rd->bad)
    return;
  c->on_pr = c->pull_request_url[0] != '\0';
  c->issue_number = trailing_number(c->issue_url);
  if (c->issue_number == 0)
    c->issue_number = trailing_number(c->pull_request_url);
}

static void read_one_comment(struct rd *rd, const json_t *j, void *out)
{
  read_comment(rd, j, "", false, out);
}

static void close_comment(void *out)
{
  ccci_forge_comment_close(out);
}

int ccci_forge_parse_comment(const char *body, size_t len,
                             struct ccci_forge_comment *out, char **err)
{
  return parse(body, len, err, out, sizeof(*out), read_one_comment,
               close_comment);
}

void ccci_forge_comment_list_close(struct ccci_forge_comment_list *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    ccci_forge_comment_close(&l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

static void read_comments(struct rd *rd, const json_t *j, void *out)
{
  struct ccci_forge_comment_list *l = out;
  char path[PATH_MAX_LEN];
  size_t i, n;

  if (!json_is_array(j)) {
    fail(rd, "comments", NULL, "expected an array");
    return;
  }
  n = json_array_size(j);
  if (n > CCCI_FORGE_COMMENTS_MAX) {
    fail(rd, "comments", NULL, "more than %u entries", CCCI_FORGE_COMMENTS_MAX);
    return;
  }
  if (n > 0) {
    /* Sized by the input: an error, not an abort, when it cannot be had. */
    l->items = calloc(n, sizeof(*l->items));
    if (l->items == NULL) {
      fail(rd, "comments", NULL, "out of memory");
      rd->code = -ENOMEM;
      return;
    }
  }
  for (i = 0; i < n && !rd->bad; i++) {
    snprintf(path, sizeof(path), "comments[%zu]", i);
    l->n = i + 1;
    read_comment(rd, json_array_get(j, i), path, true, &l->items[i]);
  }
}

static void close_comments(void *out)
{
  ccci_forge_comment_list_close(out);
}

int ccci_forge_parse_comments(const char *body, size_t len,
                              struct ccci_forge_comment_list *out, char **err)
{
  return parse(body, len, err, out, sizeof(*out), read_comments,
               close_comments);
}

/* ---- webhooks ---- */

void ccci_forge_hook_close(struct ccci_forge_hook *h)
{
  free(h->action);
  free(h->repo);
  ccci_forge_comment_close(&h->comment);
  memset(h, 0, sizeof(*h));
}

static void read_hook(struct rd *rd, const json_t *j, void *out)
{
  struct ccci_forge_hook *h = out;
  struct ccci_forge_comment *c = &h->comment;
  char sub[PATH_MAX_LEN];
  const json_t *repo, *issue, *cj, *pr = NULL;
  int64_t number = 0;

  want_object(rd, j);
  h->action = get_str(rd, j, "", "action", CCCI_FORGE_STR_MAX, true, true);
  repo = get_obj(rd, j, "", "repository", sub);
  if (repo != NULL)
    h->repo =
        get_str(rd, repo, sub, "full_name", CCCI_FORGE_STR_MAX, true, true);
  issue = get_obj(rd, j, "", "issue", sub);
  if (issue != NULL) {
    number = get_int(rd, issue, sub, "number", true);
    pr = get(rd, issue, sub, "pull_request", JSON_OBJECT, false);
  }
  cj = get_obj(rd, j, "", "comment", sub);
  if (cj == NULL)
    return;
  read_comment(rd, cj, sub, false, c);
  if (rd->bad)
    return;
  if (c->created_at == 0 || c->updated_at == 0) {
    fail(rd, sub, c->created_at == 0 ? "created_at" : "updated_at", "missing");
    return;
  }
  if (h->repo != NULL && strchr(h->repo, '/') == NULL) {
    fail(rd, "repository", "full_name", "expected owner/name");
    return;
  }
  if (c->issue_number == 0)
    c->issue_number = number;
  if (!c->on_pr && pr != NULL) {
    free(c->pull_request_url);
    c->pull_request_url = ccci_xstrdup(c->issue_url);
    c->on_pr = true;
  }
}

static void close_hook(void *out)
{
  ccci_forge_hook_close(out);
}

int ccci_forge_parse_hook(const char *body, size_t len,
                          struct ccci_forge_hook *out, char **err)
{
  if (len > CCCI_FORGE_HOOK_MAX) {
    memset(out, 0, sizeof(*out));
    if (err != NULL)
      *err =
          ccci_xasprintf("webhook: larger than %u bytes", CCCI_FORGE_HOOK_MAX);
    return -EFBIG;
  }
  return parse(body, len, err, out, sizeof(*out), read_hook, close_hook);
}

/* ---- pull requests ---- */

void ccci_forge_pull_close(struct ccci_forge_pull *p)
{
  free(p->head_ref);
  free(p->user_login);
  free(p->html_url);
  memset(p, 0, sizeof(*p));
}

static bool is_lower_hex(const char *s, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

static void read_head(struct rd *rd, const json_t *j, struct ccci_forge_pull *p)
{
  char sub[PATH_MAX_LEN];
  const json_t *head = get_obj(rd, j, "", "head", sub);
  const json_t *sha;
  size_t n;

  if (head == NULL)
    return;
  sha = get(rd, head, sub, "sha", JSON_STRING, true);
  if (sha != NULL) {
    n = json_string_length(sha);
    if ((n != 40 && n != 64) || !is_lower_hex(json_string_value(sha), n))
      fail(rd, sub, "sha", "expected 40 or 64 lowercase hex digits");
    else
      memcpy(p->head_sha, json_string_value(sha), n + 1);
  }
  p->head_ref = get_str(rd, head, sub, "ref", CCCI_FORGE_STR_MAX, true, false);
}

static void read_pull(struct rd *rd, const json_t *j, void *out)
{
  struct ccci_forge_pull *p = out;
  const json_t *state;

  want_object(rd, j);
  p->number = get_int(rd, j, "", "number", true);
  state = get(rd, j, "", "state", JSON_STRING, true);
  if (state != NULL && strcmp(json_string_value(state), "open") == 0)
    p->state = CCCI_FORGE_PR_OPEN;
  else if (state != NULL && strcmp(json_string_value(state), "closed") == 0)
    p->state = CCCI_FORGE_PR_CLOSED;
  else if (state != NULL)
    fail(rd, "", "state", "expected \"open\" or \"closed\"");
  p->merged = get_bool(rd, j, "", "merged");
  read_head(rd, j, p);
  p->user_login = get_user(rd, j, "", "user", NULL);
  p->html_url = get_str(rd, j, "", "html_url", CCCI_FORGE_STR_MAX, true, false);
}

static void close_pull(void *out)
{
  ccci_forge_pull_close(out);
}

int ccci_forge_parse_pull(const char *body, size_t len,
                          struct ccci_forge_pull *out, char **err)
{
  return parse(body, len, err, out, sizeof(*out), read_pull, close_pull);
}

/* ---- commit statuses ---- */

static const char *const status_states[] = {"pending", "success", "error",
                                            "failure", "warning", "skipped"};

const char *ccci_forge_status_state_name(enum ccci_forge_status_state s)
{
  return status_states[s];
}

void ccci_forge_status_close(struct ccci_forge_status *s)
{
  free(s->context);
  memset(s, 0, sizeof(*s));
}

static void read_status(struct rd *rd, const json_t *j, void *out)
{
  struct ccci_forge_status *s = out;
  const json_t *st;
  size_t i;

  want_object(rd, j);
  s->id = get_int(rd, j, "", "id", true);
  st = get(rd, j, "", "status", JSON_STRING, true);
  if (st != NULL) {
    for (i = 0; i < CCCI_ARRAY_LEN(status_states); i++)
      if (strcmp(json_string_value(st), status_states[i]) == 0)
        break;
    if (i < CCCI_ARRAY_LEN(status_states))
      s->state = (enum ccci_forge_status_state)i;
    else
      fail(rd, "", "status", "unknown state '%.40s'", json_string_value(st));
  }
  s->context = get_str(rd, j, "", "context", CCCI_FORGE_STR_MAX, true, true);
}

static void close_status(void *out)
{
  ccci_forge_status_close(out);
}

int ccci_forge_parse_status(const char *body, size_t len,
                            struct ccci_forge_status *out, char **err)
{
  return parse(body, len, err, out, sizeof(*out), read_status, close_status);
}

/* ---- reactions ---- */

void ccci_forge_reaction_close(struct ccci_forge_reaction *r)
{
  free(r->content);
  free(r->user_login);
  memset(r, 0, sizeof(*r));
}

static void read_reaction(struct rd *rd, const json_t *j, void *out)
{
  struct ccci_forge_reaction *r = out;
  want_object(rd, j);
  r->content = get_str(rd, j, "", "content", CCCI_FORGE_STR_MAX, true, true);
  r->user_login = get_user(rd, j, "", "user", NULL);
}

static void close_reaction(void *out)
{
  ccci_forge_reaction_close(out);
}

int ccci_forge_parse_reaction(const char *body, size_t len,
                              struct ccci_forge_reaction *out, char **err)
{
  return parse(body, len, err, out, sizeof(*out), read_reaction,
               close_reaction);
}

/* ---- times ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), exact for every year we accept. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  int64_t era;
  unsigned yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
  int64_t era;
  unsigned doe, yoe, doy, mp;

  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = (unsigned)(z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool leap(int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Read exactly @p n digits at *@p s into @p out; advance. */
static bool digits(const char **s, int n, unsigned *out)
{
  unsigned v = 0;
  int i;
  for (i = 0; i < n; i++) {
    char c = (*s)[i];
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (unsigned)(c - '0');
  }
  *s += n;
  *out = v;
  return true;
}

/* Expect the character @p c at *@p s; advance. */
static bool lit(const char **s, char c)
{
  if (**s != c)
    return false;
  (*s)++;
  return true;
}

int ccci_forge_parse_time(const char *s, int64_t *out)
{
  static const unsigned mdays[] = {31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
  unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
  int sign = 0;
  const char *p = s;

  if (s == NULL)
    return -EINVAL;
  if (!digits(&p, 4, &y) || !lit(&p, '-') || !digits(&p, 2, &mo) ||
      !lit(&p, '-') || !digits(&p, 2, &d))
    return -EINVAL;
  if (*p != 'T' && *p != 't')
    return -EINVAL;
  p++;
  if (!digits(&p, 2, &h) || !lit(&p, ':') || !digits(&p, 2, &mi) ||
      !lit(&p, ':') || !digits(&p, 2, &sec))
    return -EINVAL;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return -EINVAL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p == '+' ? 1 : -1;
    p++;
    if (!digits(&p, 2, &oh) || !lit(&p, ':') || !digits(&p, 2, &om) ||
        oh > 23 || om > 59)
      return -EINVAL;
  } else {
    return -EINVAL;
  }
  if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
    return -EINVAL;
  if (d > mdays[mo - 1] + (mo == 2 && leap(y)))
    return -EINVAL;
  *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
         (int64_t)sign * (oh * 3600 + om * 60);
  return 0;
}

void ccci_forge_format_time(int64_t t, char out[32])
{
  /* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
  const int64_t lo = -62167219200, hi = 253402300799;
  int64_t days, secs, y;
  unsigned m, d;

  if (t < lo)
    t = lo;
  if (t > hi)
    t = hi;
  days = t / 86400;
  secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    days--;
  }
  civil_from_days(days, &y, &m, &d);
  snprintf(out, 32, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02uZ", y, m, d,
           (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
           (unsigned)(secs % 60));
}
