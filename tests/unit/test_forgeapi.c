/* Unit tests of forgeapi.c: the forge response parsers on realistic fixtures
 * and on every broken field, and RFC 3339 times. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "ccci/forge/forgeapi.h"
#include "ccci/forge/trigger.h"

#ifndef CCCI_FIXTURES
#error "CCCI_FIXTURES must name tests/fixtures"
#endif

/* ---- helpers ---- */

/* The fixture tests/fixtures/forge/<name> as a NUL-terminated string. */
static char *fixture(const char *name, size_t *len)
{
  char *path = ccci_xasprintf("%s/forge/%s", CCCI_FIXTURES, name);
  char *text = NULL;
  size_t n = 0;

  assert_int_equal(ccci_read_file(path, 1024 * 1024, &text, &n), 0);
  free(path);
  if (len != NULL)
    *len = n;
  return text;
}

/*
 * The fixture with the value at @p path ('/'-separated keys and array
 * indexes; "" is the whole document) replaced by the JSON @p value, or
 * deleted when @p value is NULL. Returns the new document's text.
 */
static char *mutate(const char *name, const char *path, const char *value)
{
  char *text = fixture(name, NULL);
  json_t *doc = json_loads(text, 0, NULL), *parent = NULL, *cur;
  char *p = ccci_xstrdup(path), *seg, *save = NULL, *last = NULL, *out;
  json_t *v = NULL;

  free(text);
  assert_non_null(doc);
  if (value != NULL) {
    v = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
  }
  if (path[0] == '\0') {
    json_decref(doc);
    out = json_dumps(v, JSON_ENCODE_ANY);
    json_decref(v);
    free(p);
    return out;
  }
  cur = doc;
  for (seg = strtok_r(p, "/", &save); seg != NULL;
       seg = strtok_r(NULL, "/", &save)) {
    if (last != NULL) {
      parent = cur;
      cur = json_is_array(parent)
                ? json_array_get(parent, strtoul(last, NULL, 10))
                : json_object_get(parent, last);
      assert_non_null(cur);
    }
    last = seg;
  }
  if (json_is_array(cur)) {
    if (v == NULL)
      assert_int_equal(json_array_remove(cur, strtoul(last, NULL, 10)), 0);
    else
      assert_int_equal(json_array_set_new(cur, strtoul(last, NULL, 10), v), 0);
  } else if (v == NULL) {
    assert_int_equal(json_object_del(cur, last), 0);
  } else {
    assert_int_equal(json_object_set_new(cur, last, v), 0);
  }
  out = json_dumps(doc, 0);
  json_decref(doc);
  free(p);
  return out;
}

enum kind { USER, COMMENTS, COMMENT, PULL, STATUS, REACTION };

/* Parse @p text as @p k; on success free what was parsed. */
static int parse(enum kind k, const char *text, size_t len, char **err)
{
  struct ccci_forge_user u;
  struct ccci_forge_comment_list l;
  struct ccci_forge_comment c;
  struct ccci_forge_pull p;
  struct ccci_forge_status s;
  struct ccci_forge_reaction r;
  int rc = -1;

  switch (k) {
  case USER:
    rc = ccci_forge_parse_user(text, len, &u, err);
    assert_null(rc < 0 ? u.login : NULL);
    ccci_forge_user_close(&u);
    break;
  case COMMENTS:
    rc = ccci_forge_parse_comments(text, len, &l, err);
    if (rc < 0) {
      assert_null(l.items);
      assert_int_equal(l.n, 0);
    }
    ccci_forge_comment_list_close(&l);
    break;
  case COMMENT:
    rc = ccci_forge_parse_comment(text, len, &c, err);
    assert_null(rc < 0 ? c.body : NULL);
    ccci_forge_comment_close(&c);
    break;
  case PULL:
    rc = ccci_forge_parse_pull(text, len, &p, err);
    assert_null(rc < 0 ? p.head_ref : NULL);
    ccci_forge_pull_close(&p);
    break;
  case STATUS:
    rc = ccci_forge_parse_status(text, len, &s, err);
    assert_null(rc < 0 ? s.context : NULL);
    ccci_forge_status_close(&s);
    break;
  case REACTION:
    rc = ccci_forge_parse_reaction(text, len, &r, err);
    assert_null(rc < 0 ? r.content : NULL);
    ccci_forge_reaction_close(&r);
    break;
  }
  return rc;
}

static const char *const fixture_of[] = {
    "user.json", "comments.json", "comment.json",
    "pull.json", "status.json",   "reaction.json",
};

/* Mutate the fixture of @p k at @p path and expect the error @p msg (NULL:
 * expect success). */
static void expect(enum kind k, const char *path, const char *value,
                   const char *msg)
{
  char *text = mutate(fixture_of[k], path, value);
  char *err = NULL;
  int rc = parse(k, text, strlen(text), &err);

  if (msg == NULL) {
    if (rc != 0)
      fail_msg("%s=%s: unexpected error: %s", path, value ? value : "(del)",
               err ? err : "(none)");
    assert_null(err);
  } else {
    if (rc != -EINVAL || err == NULL || strcmp(err, msg) != 0)
      fail_msg("%s=%s: got %d '%s', want '%s'", path, value ? value : "(del)",
               rc, err ? err : "(none)", msg);
  }
  free(err);
  free(text);
}

/* A JSON string of @p n copies of 'a'. */
static char *long_string(size_t n)
{
  char *s = ccci_xmalloc(n + 3);
  s[0] = '"';
  memset(s + 1, 'a', n);
  s[n + 1] = '"';
  s[n + 2] = '\0';
  return s;
}

/* ---- the fixtures parse to the right values ---- */

static void test_user_fixture(void **state)
{
  struct ccci_forge_user u;
  size_t len;
  char *text = fixture("user.json", &len), *err = (char *)"x";
  (void)state;

  assert_int_equal(ccci_forge_parse_user(text, len, &u, &err), 0);
  assert_null(err);
  assert_int_equal(u.id, 1042);
  assert_string_equal(u.login, "ccci-bot");
  ccci_forge_user_close(&u);
  assert_null(u.login);
  free(text);
}

static void test_comments_fixture(void **state)
{
  struct ccci_forge_comment_list l;
  struct ccci_forge_comment *c;
  size_t len;
  char *text = fixture("comments.json", &len), *err = NULL;
  (void)state;

  assert_int_equal(ccci_forge_parse_comments(text, len, &l, &err), 0);
  assert_null(err);
  assert_int_equal(l.n, 2);
  c = &l.items[0];
  assert_int_equal(c->id, 51877);
  assert_string_equal(c->user_login, "decentral1se");
  assert_int_equal(c->user_id, 311);
  assert_true(c->on_pr);
  assert_false(c->body_too_long);
  assert_int_equal(c->issue_number, 42);
  assert_string_equal(c->pull_request_url,
                      "https://git.coopcloud.tech/coop-cloud/nextcloud/"
                      "pulls/42");
  assert_string_equal(c->issue_url, "");
  /* 2026-11-24T03:57:48Z; the fraction of updated_at is dropped. */
  assert_int_equal(c->created_at, 1795492668);
  assert_int_equal(c->updated_at, 1795492668 + 22);
  assert_int_equal(ccci_forge_trigger(c->body, strlen(c->body)),
                   CCCI_FORGE_TRIGGER_TESTME_QUICK);

  c = &l.items[1];
  assert_int_equal(c->id, 51879);
  assert_string_equal(c->user_login, "3wordchant");
  assert_false(c->on_pr);
  assert_int_equal(c->issue_number, 40);
  assert_string_equal(c->pull_request_url, "");
  assert_int_equal(c->created_at, 1795492668 + 133);
  /* The `!testme` is quoted in a fence. */
  assert_int_equal(ccci_forge_trigger(c->body, strlen(c->body)),
                   CCCI_FORGE_TRIGGER_NONE);
  ccci_forge_comment_list_close(&l);
  assert_null(l.items);
  free(text);
}

static void test_empty_comment_list(void **state)
{
  struct ccci_forge_comment_list l;
  char *err = NULL;
  (void)state;

  assert_int_equal(ccci_forge_parse_comments("[]", 2, &l, &err), 0);
  assert_int_equal(l.n, 0);
  assert_null(l.items);
  ccci_forge_comment_list_close(&l);
}

static void test_comment_fixture(void **state)
{
  struct ccci_forge_comment c;
  size_t len;
  char *text = fixture("comment.json", &len), *err = NULL;
  (void)state;

  assert_int_equal(ccci_forge_parse_comment(text, len, &c, &err), 0);
  assert_int_equal(c.id, 51880);
  assert_string_equal(c.user_login, "ccci-bot");
  assert_int_equal(c.issue_number, 42);
  assert_true(c.on_pr);
  assert_true(ccci_forge_has_marker(c.body, strlen(c.body)));
  assert_int_equal(ccci_forge_trigger(c.body, strlen(c.body)),
                   CCCI_FORGE_TRIGGER_NONE);
  ccci_forge_comment_close(&c);
  free(text);
}

static void test_pull_fixture(void **state)
{
  struct ccci_forge_pull p;
  size_t len;
  char *text = fixture("pull.json", &len), *err = NULL;
  (void)state;

  assert_int_equal(ccci_forge_parse_pull(text, len, &p, &err), 0);
  assert_int_equal(p.number, 42);
  assert_int_equal(p.state, CCCI_FORGE_PR_OPEN);
  assert_false(p.merged);
  assert_string_equal(p.head_sha, "3f786850e387550fdab836ed7e6dc881de23001b");
  assert_string_equal(p.head_ref, "bump-30.0.2");
  assert_string_equal(p.user_login, "decentral1se");
  assert_string_equal(p.html_url,
                      "https://codeberg.org/coop-cloud/nextcloud/pulls/42");
  ccci_forge_pull_close(&p);
  free(text);

  /* A SHA-256 repository. */
  text = mutate("pull.json", "head/sha",
                "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f"
                "00a08\"");
  assert_int_equal(ccci_forge_parse_pull(text, strlen(text), &p, &err), 0);
  assert_int_equal(strlen(p.head_sha), 64);
  ccci_forge_pull_close(&p);
  free(text);
}

static void test_closed_merged_pull(void **state)
{
  struct ccci_forge_pull p;
  char *text, *err = NULL;
  json_t *j;
  (void)state;

  text = fixture("pull.json", NULL);
  j = json_loads(text, 0, NULL);
  free(text);
  json_object_set_new(j, "state", json_string("closed"));
  json_object_set_new(j, "merged", json_true());
  text = json_dumps(j, 0);
  json_decref(j);
  assert_int_equal(ccci_forge_parse_pull(text, strlen(text), &p, &err), 0);
  assert_int_equal(p.state, CCCI_FORGE_PR_CLOSED);
  assert_true(p.merged);
  ccci_forge_pull_close(&p);
  free(text);
}

static void test_status_and_reaction_fixtures(void **state)
{
  struct ccci_forge_status s;
  struct ccci_forge_reaction r;
  size_t len, i;
  char *text = fixture("status.json", &len), *err = NULL;
  static const char *const names[] = {"pending", "success", "error",
                                      "failure", "warning", "skipped"};
  (void)state;

  assert_int_equal(ccci_forge_parse_status(text, len, &s, &err), 0);
  assert_int_equal(s.id, 90211);
  assert_int_equal(s.state, CCCI_FORGE_STATUS_PENDING);
  assert_string_equal(s.context, "ccci/testme");
  ccci_forge_status_close(&s);
  free(text);
  for (i = 0; i < CCCI_ARRAY_LEN(names); i++) {
    char *v = ccci_xasprintf("\"%s\"", names[i]);
    text = mutate("status.json", "status", v);
    assert_int_equal(ccci_forge_parse_status(text, strlen(text), &s, &err), 0);
    assert_int_equal(s.state, (int)i);
    assert_string_equal(
        ccci_forge_status_state_name((enum ccci_forge_status_state)i),
        names[i]);
    ccci_forge_status_close(&s);
    free(text);
    free(v);
  }

  text = fixture("reaction.json", &len);
  assert_int_equal(ccci_forge_parse_reaction(text, len, &r, &err), 0);
  assert_string_equal(r.content, "eyes");
  assert_string_equal(r.user_login, "ccci-bot");
  ccci_forge_reaction_close(&r);
  free(text);
}

/* ---- errors name the field ---- */

static void test_user_errors(void **state)
{
  char *s;
  (void)state;

  expect(USER, "id", NULL, "id: missing");
  expect(USER, "id", "\"1042\"", "id: expected an integer");
  expect(USER, "id", "1042.0", "id: expected an integer");
  expect(USER, "id", "null", "id: expected an integer");
  expect(USER, "id", "-1", NULL); /* the ghost user */
  expect(USER, "login", NULL, "login: missing");
  expect(USER, "login", "null", "login: expected a string");
  expect(USER, "login", "[\"a\"]", "login: expected a string");
  expect(USER, "login", "\"\"", "login: empty");
  s = long_string(255);
  expect(USER, "login", s, NULL);
  free(s);
  s = long_string(256);
  expect(USER, "login", s, "login: longer than 255 bytes");
  free(s);
  expect(USER, "", "[]", "response: expected an object");
  expect(USER, "", "null", "response: expected an object");
  expect(USER, "", "\"ccci-bot\"", "response: expected an object");
}

static void test_comments_errors(void **state)
{
  char *s;
  (void)state;

  expect(COMMENTS, "", "{}", "comments: expected an array");
  expect(COMMENTS, "1", "42", "comments[1]: expected an object");
  expect(COMMENTS, "1/id", NULL, "comments[1].id: missing");
  expect(COMMENTS, "0/id", "0", "comments[0].id: expected a positive integer");
  expect(COMMENTS, "0/id", "\"51877\"", "comments[0].id: expected an integer");
  expect(COMMENTS, "1/user", NULL, "comments[1].user: missing");
  expect(COMMENTS, "1/user", "null", "comments[1].user: expected an object");
  expect(COMMENTS, "0/user/login", "7",
         "comments[0].user.login: expected a string");
  expect(COMMENTS, "1/user/login", NULL, "comments[1].user.login: missing");
  expect(COMMENTS, "1/user/login", "\"\"", "comments[1].user.login: empty");
  expect(COMMENTS, "1/user/id", NULL, "comments[1].user.id: missing");
  expect(COMMENTS, "1/user/id", "true",
         "comments[1].user.id: expected an integer");
  expect(COMMENTS, "0/body", NULL, "comments[0].body: missing");
  expect(COMMENTS, "0/body", "null", "comments[0].body: expected a string");
  expect(COMMENTS, "0/body", "\"\"", NULL);
  expect(COMMENTS, "0/pull_request_url", "5",
         "comments[0].pull_request_url: expected a string");
  expect(COMMENTS, "0/issue_url", "{}",
         "comments[0].issue_url: expected a string");
  s = long_string(CCCI_FORGE_STR_MAX + 1);
  expect(COMMENTS, "0/pull_request_url", s,
         "comments[0].pull_request_url: longer than 4096 bytes");
  free(s);
  expect(COMMENTS, "1/created_at", NULL, "comments[1].created_at: missing");
  expect(COMMENTS, "1/created_at", "\"yesterday\"",
         "comments[1].created_at: expected an RFC 3339 date-time, like "
         "2026-11-24T03:57:48Z");
  expect(COMMENTS, "1/updated_at", "1795492668",
         "comments[1].updated_at: expected a string");
  expect(COMMENTS, "0/updated_at", "\"2026-11-24 03:57:48\"",
         "comments[0].updated_at: expected an RFC 3339 date-time, like "
         "2026-11-24T03:57:48Z");
  /* The first error wins. */
  expect(COMMENTS, "1", "{}", "comments[1].id: missing");
}

static void test_comments_optional_fields(void **state)
{
  struct ccci_forge_comment_list l;
  char *text, *err = NULL;
  (void)state;

  expect(COMMENTS, "0/pull_request_url", NULL, NULL);
  expect(COMMENTS, "0/issue_url", "null", NULL);
  /* An absent pull_request_url: not on a PR, number from issue_url. */
  text = mutate("comments.json", "1/pull_request_url", NULL);
  assert_int_equal(ccci_forge_parse_comments(text, strlen(text), &l, &err), 0);
  assert_string_equal(l.items[1].pull_request_url, "");
  assert_false(l.items[1].on_pr);
  assert_int_equal(l.items[1].issue_number, 40);
  ccci_forge_comment_list_close(&l);
  free(text);
  /* A null one likewise. */
  text = mutate("comments.json", "0/pull_request_url", "null");
  assert_int_equal(ccci_forge_parse_comments(text, strlen(text), &l, &err), 0);
  assert_false(l.items[0].on_pr);
  assert_int_equal(l.items[0].issue_number, 0);
  ccci_forge_comment_list_close(&l);
  free(text);
}

/* The trailing number of the URLs: only a whole last segment of digits. */
static void test_issue_numbers(void **state)
{
  static const struct {
    const char *url;
    int64_t n;
  } cases[] = {
      {"\"https://f.example/o/r/pulls/7\"", 7},
      {"\"https://f.example/o/r/pulls/\"", 0},
      {"\"https://f.example/o/r/pulls/7#issuecomment-1\"", 0},
      {"\"https://f.example/o/r/pulls/x7\"", 0},
      {"\"7\"", 0},
      {"\"/99999999999999999999\"", 0},
      {"\"/9223372036854775807\"", 0}, /* above the cap we allow */
      {"\"/922337203685477580\"", 922337203685477580},
  };
  struct ccci_forge_comment_list l;
  size_t i;
  char *text, *err = NULL;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(cases); i++) {
    text = mutate("comments.json", "0/pull_request_url", cases[i].url);
    assert_int_equal(ccci_forge_parse_comments(text, strlen(text), &l, &err),
                     0);
    assert_true(l.items[0].on_pr);
    assert_int_equal(l.items[0].issue_number, cases[i].n);
    ccci_forge_comment_list_close(&l);
    free(text);
  }
}

/* A huge body in a list marks that entry; one comment alone is an error. */
static void test_body_cap(void **state)
{
  struct ccci_forge_comment_list l;
  char *s, *text, *err = NULL;
  (void)state;

  s = long_string(CCCI_FORGE_BODY_MAX);
  expect(COMMENT, "body", s, NULL);
  expect(COMMENTS, "0/body", s, NULL);
  free(s);
  s = long_string(CCCI_FORGE_BODY_MAX + 1);
  expect(COMMENT, "body", s, "body: longer than 65536 bytes");
  text = mutate("comments.json", "0/body", s);
  assert_int_equal(ccci_forge_parse_comments(text, strlen(text), &l, &err), 0);
  assert_true(l.items[0].body_too_long);
  assert_null(l.items[0].body);
  assert_false(l.items[1].body_too_long);
  assert_non_null(l.items[1].body);
  ccci_forge_comment_list_close(&l);
  free(text);
  free(s);
}

static void test_comments_count_cap(void **state)
{
  struct ccci_buf b;
  char *err = NULL;
  size_t i;
  (void)state;

  for (i = CCCI_FORGE_COMMENTS_MAX; i <= CCCI_FORGE_COMMENTS_MAX + 1; i++) {
    size_t k;
    ccci_buf_init(&b, 1024 * 1024);
    assert_int_equal(ccci_buf_append(&b, "[", 1), 0);
    for (k = 0; k < i; k++)
      assert_int_equal(
          ccci_buf_printf(&b,
                          "%s{\"id\":%zu,\"user\":{\"id\":1,\"login\":\"u\"},"
                          "\"body\":\"\",\"created_at\":\"2026-01-01T00:00:00Z"
                          "\",\"updated_at\":\"2026-01-01T00:00:00Z\"}",
                          k ? "," : "", k + 1),
          0);
    assert_int_equal(ccci_buf_append(&b, "]", 1), 0);
    if (i == CCCI_FORGE_COMMENTS_MAX) {
      assert_int_equal(parse(COMMENTS, b.data, b.len, &err), 0);
    } else {
      assert_int_equal(parse(COMMENTS, b.data, b.len, &err), -EINVAL);
      assert_string_equal(err, "comments: more than 1000 entries");
      free(err);
    }
    ccci_buf_close(&b);
  }
}

static void test_comment_errors(void **state)
{
  struct ccci_forge_comment c;
  char *text, *err = NULL;
  (void)state;

  expect(COMMENT, "", "[]", "response: expected an object");
  expect(COMMENT, "id", NULL, "id: missing");
  expect(COMMENT, "id", "-3", "id: expected a positive integer");
  expect(COMMENT, "body", "1", "body: expected a string");
  expect(COMMENT, "user", "\"ccci-bot\"", "user: expected an object");
  expect(COMMENT, "user/login", NULL, "user.login: missing");
  expect(COMMENT, "created_at", "\"2026-13-01T00:00:00Z\"",
         "created_at: expected an RFC 3339 date-time, like "
         "2026-11-24T03:57:48Z");
  /* Times are optional for a single comment. */
  text = mutate("comment.json", "created_at", NULL);
  assert_int_equal(ccci_forge_parse_comment(text, strlen(text), &c, &err), 0);
  assert_int_equal(c.created_at, 0);
  assert_int_equal(c.updated_at, 1795492668 + 732);
  ccci_forge_comment_close(&c);
  free(text);
}

static void test_pull_errors(void **state)
{
  char *s;
  (void)state;

  expect(PULL, "", "[1]", "response: expected an object");
  expect(PULL, "number", NULL, "number: missing");
  expect(PULL, "number", "0", "number: expected a positive integer");
  expect(PULL, "number", "\"42\"", "number: expected an integer");
  expect(PULL, "state", NULL, "state: missing");
  expect(PULL, "state", "\"merged\"", "state: expected \"open\" or \"closed\"");
  expect(PULL, "state", "\"Open\"", "state: expected \"open\" or \"closed\"");
  expect(PULL, "state", "1", "state: expected a string");
  expect(PULL, "merged", NULL, "merged: missing");
  expect(PULL, "merged", "\"false\"", "merged: expected a boolean");
  expect(PULL, "merged", "null", "merged: expected a boolean");
  expect(PULL, "head", NULL, "head: missing");
  expect(PULL, "head", "[]", "head: expected an object");
  expect(PULL, "head/sha", NULL, "head.sha: missing");
  expect(PULL, "head/sha", "null", "head.sha: expected a string");
  expect(PULL, "head/sha", "\"3F786850E387550FDAB836ED7E6DC881DE23001B\"",
         "head.sha: expected 40 or 64 lowercase hex digits");
  expect(PULL, "head/sha", "\"3f786850e387550fdab836ed7e6dc881de23001\"",
         "head.sha: expected 40 or 64 lowercase hex digits");
  expect(PULL, "head/sha", "\"3f786850e387550fdab836ed7e6dc881de23001g\"",
         "head.sha: expected 40 or 64 lowercase hex digits");
  expect(PULL, "head/sha", "\"\"",
         "head.sha: expected 40 or 64 lowercase hex digits");
  expect(PULL, "head/ref", NULL, "head.ref: missing");
  expect(PULL, "head/ref", "\"\"", NULL);
  s = long_string(CCCI_FORGE_STR_MAX + 1);
  expect(PULL, "head/ref", s, "head.ref: longer than 4096 bytes");
  free(s);
  expect(PULL, "user", NULL, "user: missing");
  expect(PULL, "user/login", "false", "user.login: expected a string");
  expect(PULL, "html_url", NULL, "html_url: missing");
  expect(PULL, "html_url", "[]", "html_url: expected a string");
  /* Extra and unknown fields are ignored. */
  expect(PULL, "base", NULL, NULL);
  expect(PULL, "ccci_future_field", "{\"x\":[1,2]}", NULL);
}

static void test_status_and_reaction_errors(void **state)
{
  (void)state;

  expect(STATUS, "", "3", "response: expected an object");
  expect(STATUS, "id", NULL, "id: missing");
  expect(STATUS, "id", "0", "id: expected a positive integer");
  expect(STATUS, "status", NULL, "status: missing");
  expect(STATUS, "status", "\"bogus\"", "status: unknown state 'bogus'");
  expect(STATUS, "status", "7", "status: expected a string");
  expect(STATUS, "context", NULL, "context: missing");
  expect(STATUS, "context", "\"\"", "context: empty");
  expect(STATUS, "creator", NULL, NULL);

  expect(REACTION, "", "[]", "response: expected an object");
  expect(REACTION, "content", NULL, "content: missing");
  expect(REACTION, "content", "\"\"", "content: empty");
  expect(REACTION, "user", NULL, "user: missing");
  expect(REACTION, "user/login", NULL, "user.login: missing");
}

/* Bad JSON, duplicate keys, oversize input, and a body that is not
 * NUL-terminated. */
static void test_json_level(void **state)
{
  static const char text[] = "{\"id\":7,\"login\":\"x\"}GARBAGE";
  struct ccci_forge_user u;
  char *err = NULL;
  enum kind k;
  (void)state;

  for (k = USER; k <= REACTION; k++) {
    err = NULL;
    assert_int_equal(parse(k, "{\"id\":", 6, &err), -EINVAL);
    assert_non_null(err);
    assert_true(strncmp(err, "invalid JSON at line 1 column ", 30) == 0);
    free(err);
    err = NULL;
    assert_int_equal(parse(k, "", 0, &err), -EINVAL);
    assert_non_null(err);
    free(err);
    err = NULL;
    /* Never read: the length alone is refused. */
    assert_int_equal(parse(k, "[]", (size_t)CCCI_FORGE_RESPONSE_MAX + 1, &err),
                     -EFBIG);
    assert_string_equal(err, "response: larger than 33554432 bytes");
    free(err);
    /* A NULL err is allowed. */
    assert_int_equal(parse(k, "nope", 4, NULL), -EINVAL);
  }
  err = NULL;
  assert_int_equal(parse(USER, "{\"id\":1,\"id\":2,\"login\":\"a\"}", 27, &err),
                   -EINVAL);
  assert_non_null(strstr(err, "duplicate object key"));
  free(err);

  err = NULL;
  assert_int_equal(ccci_forge_parse_user(text, sizeof(text) - 1 - 7, &u, &err),
                   0);
  assert_int_equal(u.id, 7);
  assert_string_equal(u.login, "x");
  ccci_forge_user_close(&u);
  /* A NUL escape never reaches a C string. */
  err = NULL;
  assert_int_equal(parse(USER, "{\"id\":1,\"login\":\"a\\u0000b\"}", 27, &err),
                   -EINVAL);
  free(err);
}

/* ---- times ---- */

static void test_parse_time(void **state)
{
  static const struct {
    const char *s;
    int64_t t;
  } good[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"1969-12-31T23:59:59Z", -1},
      {"2026-11-24T03:57:48Z", 1795492668},
      {"2026-11-24t03:57:48z", 1795492668},
      {"2026-11-24T04:57:48+01:00", 1795492668},
      {"2026-11-23T22:27:48-05:30", 1795492668},
      {"2026-11-24T03:57:48-00:00", 1795492668},
      {"2026-11-24T03:57:48.999999999Z", 1795492668},
      {"2026-11-24T04:57:48.5+01:00", 1795492668},
      {"2026-11-24T03:57:48.000000000000000000001Z", 1795492668},
      {"2024-02-29T00:00:00Z", 1709164800},
      {"2000-02-29T12:00:00Z", 951825600},
      {"2016-12-31T23:59:60Z", 1483228800}, /* a leap second */
      {"0001-01-01T00:00:00Z", -62135596800},
      {"0000-01-01T00:00:00Z", -62167219200},
      {"9999-12-31T23:59:59Z", 253402300799},
      {"2026-11-24T00:00:00+23:59", 1795478400 - 86340},
  };
  static const char *const bad[] = {
      "",
      "2026-11-24",
      "2026-11-24T03:57Z",
      "2026-11-24T03:57:48",
      "2026-11-24 03:57:48Z",
      "2026-11-24T03:57:48.Z",
      "2026-11-24T03:57:48.5",
      "2026-11-24T03:57:48+01",
      "2026-11-24T03:57:48+0100",
      "2026-11-24T03:57:48+24:00",
      "2026-11-24T03:57:48+01:60",
      "2026-11-24T03:57:48ZZ",
      "2026-11-24T03:57:48Z ",
      " 2026-11-24T03:57:48Z",
      "2026-00-24T03:57:48Z",
      "2026-13-24T03:57:48Z",
      "2026-11-00T03:57:48Z",
      "2026-11-31T03:57:48Z",
      "2023-02-29T03:57:48Z",
      "2100-02-29T03:57:48Z",
      "2026-11-24T24:00:00Z",
      "2026-11-24T23:60:00Z",
      "2026-11-24T23:59:61Z",
      "26-11-24T03:57:48Z",
      "+2026-11-24T03:57:48Z",
      "2026-1-24T03:57:48Z",
      "2026-11-24T3:57:48Z",
      "２026-11-24T03:57:48Z",
  };
  size_t i;
  int64_t t;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(good); i++) {
    t = 42;
    if (ccci_forge_parse_time(good[i].s, &t) != 0 || t != good[i].t)
      fail_msg("%s: got %lld, want %lld", good[i].s, (long long)t,
               (long long)good[i].t);
  }
  for (i = 0; i < CCCI_ARRAY_LEN(bad); i++) {
    t = 42;
    if (ccci_forge_parse_time(bad[i], &t) != -EINVAL || t != 42)
      fail_msg("'%s' was accepted", bad[i]);
  }
  assert_int_equal(ccci_forge_parse_time(NULL, &t), -EINVAL);
}

static void test_format_time(void **state)
{
  char out[32], ref[32];
  int64_t t, back;
  struct tm tm;
  time_t tt;
  (void)state;

  ccci_forge_format_time(0, out);
  assert_string_equal(out, "1970-01-01T00:00:00Z");
  ccci_forge_format_time(-1, out);
  assert_string_equal(out, "1969-12-31T23:59:59Z");
  ccci_forge_format_time(1795492668, out);
  assert_string_equal(out, "2026-11-24T03:57:48Z");
  ccci_forge_format_time(INT64_MIN, out);
  assert_string_equal(out, "0000-01-01T00:00:00Z");
  ccci_forge_format_time(INT64_MAX, out);
  assert_string_equal(out, "9999-12-31T23:59:59Z");
  /* Agrees with gmtime and parses back, across four centuries. */
  for (t = -62167219200; t < 253402300799; t += 86400 * 97 + 3607) {
    ccci_forge_format_time(t, out);
    tt = (time_t)t;
    assert_non_null(gmtime_r(&tt, &tm));
    strftime(ref, sizeof(ref), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (tm.tm_year + 1900 >= 1000)
      assert_string_equal(out, ref);
    assert_int_equal(ccci_forge_parse_time(out, &back), 0);
    assert_int_equal(back, t);
  }
}

/* An issue_comment webhook body (Gitea's IssueCommentPayload, trimmed). */
#define HOOK_HEAD                                                              \
  "{\"action\":\"created\",\"issue\":{\"id\":9,\"number\":42,"                 \
  "\"state\":\"open\",\"pull_request\":{\"merged\":false}},"                   \
  "\"repository\":{\"full_name\":\"coop-cloud/nextcloud\",\"name\":"           \
  "\"nextcloud\",\"owner\":{\"login\":\"coop-cloud\"}},"                       \
  "\"sender\":{\"id\":3,\"login\":\"alice\"},"

static void test_hook(void **state)
{
  static const char ok[] = HOOK_HEAD
      "\"comment\":{\"id\":77,\"body\":\"!testme\\n\","
      "\"user\":{\"id\":3,\"login\":\"alice\"},"
      "\"pull_request_url\":\"https://f/coop-cloud/nextcloud/pulls/42\","
      "\"issue_url\":\"\",\"created_at\":\"2026-11-24T03:57:48Z\","
      "\"updated_at\":\"2026-11-24T03:57:48Z\"}}";
  /* Older forges leave pull_request_url empty in hooks: issue.pull_request
   * says it is a PR, issue.number gives the number. */
  static const char no_pr_url[] =
      HOOK_HEAD "\"comment\":{\"id\":78,\"body\":\"x\","
                "\"user\":{\"id\":3,\"login\":\"alice\"},"
                "\"issue_url\":\"https://f/coop-cloud/nextcloud/issues/x\","
                "\"created_at\":\"2026-11-24T03:57:48Z\","
                "\"updated_at\":\"2026-11-24T03:57:49Z\"}}";
  static const char no_time[] =
      HOOK_HEAD "\"comment\":{\"id\":79,\"body\":\"x\","
                "\"user\":{\"id\":3,\"login\":\"alice\"}}}";
  static const char no_comment[] = HOOK_HEAD "\"x\":1}";
  struct ccci_forge_hook h;
  char *err = NULL;
  (void)state;

  assert_int_equal(ccci_forge_parse_hook(ok, strlen(ok), &h, &err), 0);
  assert_null(err);
  assert_string_equal(h.action, "created");
  assert_string_equal(h.repo, "coop-cloud/nextcloud");
  assert_int_equal(h.comment.id, 77);
  assert_string_equal(h.comment.user_login, "alice");
  assert_int_equal(h.comment.issue_number, 42);
  assert_true(h.comment.on_pr);
  assert_int_equal(h.comment.created_at, 1795492668);
  ccci_forge_hook_close(&h);

  assert_int_equal(
      ccci_forge_parse_hook(no_pr_url, strlen(no_pr_url), &h, &err), 0);
  assert_true(h.comment.on_pr);
  assert_int_equal(h.comment.issue_number, 42);
  ccci_forge_hook_close(&h);

  assert_int_equal(ccci_forge_parse_hook(no_time, strlen(no_time), &h, &err),
                   -EINVAL);
  assert_string_equal(err, "comment.created_at: missing");
  free(err);
  assert_int_equal(
      ccci_forge_parse_hook(no_comment, strlen(no_comment), &h, &err), -EINVAL);
  assert_string_equal(err, "comment: missing");
  free(err);
  assert_int_equal(ccci_forge_parse_hook("[1]", 3, &h, &err), -EINVAL);
  assert_string_equal(err, "response: expected an object");
  free(err);
  assert_int_equal(
      ccci_forge_parse_hook(ok, CCCI_FORGE_HOOK_MAX + 1u, &h, &err), -EFBIG);
  free(err);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hook),
      cmocka_unit_test(test_user_fixture),
      cmocka_unit_test(test_comments_fixture),
      cmocka_unit_test(test_empty_comment_list),
      cmocka_unit_test(test_comment_fixture),
      cmocka_unit_test(test_pull_fixture),
      cmocka_unit_test(test_closed_merged_pull),
      cmocka_unit_test(test_status_and_reaction_fixtures),
      cmocka_unit_test(test_user_errors),
      cmocka_unit_test(test_comments_errors),
      cmocka_unit_test(test_comments_optional_fields),
      cmocka_unit_test(test_issue_numbers),
      cmocka_unit_test(test_body_cap),
      cmocka_unit_test(test_comments_count_cap),
      cmocka_unit_test(test_comment_errors),
      cmocka_unit_test(test_pull_errors),
      cmocka_unit_test(test_status_and_reaction_errors),
      cmocka_unit_test(test_json_level),
      cmocka_unit_test(test_parse_time),
      cmocka_unit_test(test_format_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
