/* Unit tests of proto: request parsing, error replies and line encoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/ctl/proto.h"

#define LINE(s) (s), (sizeof(s) - 1)

/* Parse @p len bytes of @p line, which must be refused with @p code; returns
 * the error message (owned by the returned reply in @p errp). */
static const char *expect_error(const char *line, size_t len, const char *code,
                                json_t **errp)
{
  json_t *req = (json_t *)1, *err = NULL, *e;
  const char *op = "stale";
  const char *msg;

  assert_int_equal(ccci_proto_parse_request(line, len, &req, &op, &err),
                   -EINVAL);
  assert_null(req);
  assert_null(op);
  assert_non_null(err);
  assert_true(json_is_false(json_object_get(err, "ok")));
  e = json_object_get(err, "error");
  assert_true(json_is_object(e));
  assert_string_equal(json_string_value(json_object_get(e, "code")), code);
  msg = json_string_value(json_object_get(e, "message"));
  assert_non_null(msg);
  assert_true(strlen(msg) > 0);
  *errp = err;
  return msg;
}

/* Refused with @p code and exactly the message @p want. */
static void expect_message(const char *line, size_t len, const char *code,
                           const char *want)
{
  json_t *err;
  const char *msg = expect_error(line, len, code, &err);
  assert_string_equal(msg, want);
  json_decref(err);
}

/* Accepted with operation @p want_op; returns the request. */
static json_t *expect_ok(const char *line, size_t len, const char *want_op)
{
  json_t *req = NULL, *err = (json_t *)1;
  const char *op = NULL;

  assert_int_equal(ccci_proto_parse_request(line, len, &req, &op, &err), 0);
  assert_null(err);
  assert_non_null(req);
  assert_true(json_is_object(req));
  assert_string_equal(op, want_op);
  /* The op is borrowed from the request. */
  assert_ptr_equal(op, json_string_value(json_object_get(req, "op")));
  return req;
}

static void test_valid_request(void **state)
{
  json_t *req;
  (void)state;

  req = expect_ok(LINE("{\"v\":1,\"op\":\"status\"}"), "status");
  json_decref(req);

  req = expect_ok(
      LINE("  {\"op\": \"cancel\", \"v\": 1, \"run\": \"r-12\", \"n\": [1]}"),
      "cancel");
  assert_string_equal(json_string_value(json_object_get(req, "run")), "r-12");
  assert_int_equal(json_array_size(json_object_get(req, "n")), 1);
  json_decref(req);
}

static void test_garbage(void **state)
{
  json_t *err;
  const char *msg;
  (void)state;

  msg = expect_error(LINE("garbage"), CCCI_E_BAD_JSON, &err);
  assert_int_equal(strncmp(msg, "malformed JSON at column ", 25), 0);
  json_decref(err);
  msg = expect_error(LINE("{\"v\":1,\"op\":"), CCCI_E_BAD_JSON, &err);
  assert_int_equal(strncmp(msg, "malformed JSON at column ", 25), 0);
  json_decref(err);
  expect_error(LINE(""), CCCI_E_BAD_JSON, &err);
  json_decref(err);
  /* A bare value is not a request either, and not JSON the parser takes. */
  expect_error(LINE("1"), CCCI_E_BAD_JSON, &err);
  json_decref(err);
  /* Duplicate keys are refused rather than resolved silently. */
  expect_error(LINE("{\"v\":1,\"op\":\"a\",\"op\":\"b\"}"), CCCI_E_BAD_JSON,
               &err);
  json_decref(err);
}

static void test_not_an_object(void **state)
{
  (void)state;
  expect_message(LINE("[1,2]"), CCCI_E_BAD_REQUEST,
                 "a request is a JSON object like {\"v\":1,\"op\":\"status\"}");
  expect_message(LINE("[]"), CCCI_E_BAD_REQUEST,
                 "a request is a JSON object like {\"v\":1,\"op\":\"status\"}");
}

static void test_version(void **state)
{
  (void)state;
  expect_message(LINE("{\"op\":\"status\"}"), CCCI_E_BAD_REQUEST,
                 "field 'v' must be the integer 1");
  expect_message(LINE("{\"v\":\"1\",\"op\":\"status\"}"), CCCI_E_BAD_REQUEST,
                 "field 'v' must be the integer 1");
  expect_message(LINE("{\"v\":1.0,\"op\":\"status\"}"), CCCI_E_BAD_REQUEST,
                 "field 'v' must be the integer 1");
  expect_message(LINE("{\"v\":null,\"op\":\"status\"}"), CCCI_E_BAD_REQUEST,
                 "field 'v' must be the integer 1");
  expect_message(LINE("{\"v\":2,\"op\":\"status\"}"), CCCI_E_VERSION,
                 "protocol version 2 is not supported; this daemon speaks 1");
  expect_message(LINE("{\"v\":0,\"op\":\"status\"}"), CCCI_E_VERSION,
                 "protocol version 0 is not supported; this daemon speaks 1");
  expect_message(LINE("{\"v\":-1,\"op\":\"status\"}"), CCCI_E_VERSION,
                 "protocol version -1 is not supported; this daemon speaks 1");
}

static void test_op(void **state)
{
  static const char want[] = "field 'op' must be a non-empty string";
  (void)state;
  expect_message(LINE("{\"v\":1}"), CCCI_E_BAD_REQUEST, want);
  expect_message(LINE("{\"v\":1,\"op\":3}"), CCCI_E_BAD_REQUEST, want);
  expect_message(LINE("{\"v\":1,\"op\":null}"), CCCI_E_BAD_REQUEST, want);
  expect_message(LINE("{\"v\":1,\"op\":[\"status\"]}"), CCCI_E_BAD_REQUEST,
                 want);
  expect_message(LINE("{\"v\":1,\"op\":\"\"}"), CCCI_E_BAD_REQUEST, want);
}

static void test_trailing_data(void **state)
{
  static const char want[] = "one JSON object per line; found more after it";
  (void)state;
  expect_message(LINE("{\"v\":1,\"op\":\"status\"} {}"), CCCI_E_BAD_JSON, want);
  expect_message(LINE("{\"v\":1,\"op\":\"status\"}{\"v\":1,\"op\":\"status\"}"),
                 CCCI_E_BAD_JSON, want);
  expect_message(LINE("{\"v\":1,\"op\":\"status\"}x"), CCCI_E_BAD_JSON, want);
  /* A NUL byte inside the line is data, not the end of it. */
  expect_message(LINE("{\"v\":1,\"op\":\"status\"}\0 "), CCCI_E_BAD_JSON, want);
}

static void test_trailing_whitespace(void **state)
{
  json_t *req;
  (void)state;
  req = expect_ok(LINE("{\"v\":1,\"op\":\"status\"}  \t \r"), "status");
  json_decref(req);
}

/* Only the @p len bytes given are the line: what follows them in memory
 * (here the "\r\n" a CRLF client sends, which ctl.c strips from len) must
 * not be looked at. A regression test: the check after json_loadb() once
 * used strspn(), which scanned past len to the next NUL and so refused CRLF
 * requests with "found more after it". */
static void test_bytes_after_len_ignored(void **state)
{
  static const char crlf[] = "{\"v\":1,\"op\":\"status\"}\r\n";
  static const char spaced[] = "{\"v\":1,\"op\":\"status\"}   \n";
  static const char head[] = "{\"v\":1,\"op\":\"status\"} \t";
  char *exact;
  json_t *req;
  (void)state;

  req = expect_ok(crlf, sizeof(crlf) - 3, "status");
  json_decref(req);
  req = expect_ok(spaced, sizeof(spaced) - 3, "status");
  json_decref(req);

  /* A line that fills its allocation exactly, with no terminator after it
   * (ASan reports any read past the end). */
  exact = ccci_xmalloc(sizeof(head) - 1);
  memcpy(exact, head, sizeof(head) - 1);
  req = expect_ok(exact, sizeof(head) - 1, "status");
  json_decref(req);
  free(exact);
}

static void test_too_large(void **state)
{
  static const char head[] = "{\"v\":1,\"op\":\"status\"}";
  char *big = ccci_xmalloc(CCCI_PROTO_MAX_REQUEST + 2);
  json_t *req, *err;
  (void)state;

  /* Exactly the limit (a request padded with blanks) is accepted... */
  memset(big, ' ', CCCI_PROTO_MAX_REQUEST + 1);
  big[CCCI_PROTO_MAX_REQUEST + 1] = '\0';
  memcpy(big, head, sizeof(head) - 1);
  req = expect_ok(big, CCCI_PROTO_MAX_REQUEST, "status");
  json_decref(req);

  /* ...one byte more is refused before parsing. */
  expect_message(big, CCCI_PROTO_MAX_REQUEST + 1, CCCI_E_TOO_LARGE,
                 "request is larger than 65536 bytes");
  /* Even when the JSON in it is valid and the rest is a string. */
  memset(big, 'a', CCCI_PROTO_MAX_REQUEST + 1);
  memcpy(big, "{\"v\":1,\"op\":\"", 13);
  memcpy(big + CCCI_PROTO_MAX_REQUEST - 1, "\"}", 2);
  big[CCCI_PROTO_MAX_REQUEST + 1] = '\0';
  expect_error(big, CCCI_PROTO_MAX_REQUEST + 1, CCCI_E_TOO_LARGE, &err);
  json_decref(err);
  free(big);
}

static void test_invalid_utf8(void **state)
{
  json_t *err;
  const char *msg;
  (void)state;

  msg =
      expect_error(LINE("{\"v\":1,\"op\":\"st\xff\"}"), CCCI_E_BAD_JSON, &err);
  assert_int_equal(strncmp(msg, "malformed JSON at column ", 25), 0);
  json_decref(err);
  /* An overlong encoding of '/' and a lone continuation byte. */
  expect_error(LINE("{\"v\":1,\"op\":\"\xc0\xaf\"}"), CCCI_E_BAD_JSON, &err);
  json_decref(err);
  expect_error(LINE("{\"v\":1,\"op\":\"a\x80\"}"), CCCI_E_BAD_JSON, &err);
  json_decref(err);
  /* Valid UTF-8 is fine. */
  json_decref(
      expect_ok(LINE("{\"v\":1,\"op\":\"st\xc3\xa4tus\"}"), "st\xc3\xa4tus"));
}

static void test_error_and_ok_replies(void **state)
{
  json_t *j;
  char *s;
  size_t len;
  (void)state;

  j = ccci_proto_error(CCCI_E_UNKNOWN_OP, "unknown op '%s' (%d)", "x", 3);
  s = ccci_proto_encode(j, &len);
  assert_string_equal(s, "{\"ok\":false,\"error\":{\"code\":\"unknown-op\","
                         "\"message\":\"unknown op 'x' (3)\"}}\n");
  assert_int_equal(len, strlen(s));
  free(s);
  json_decref(j);

  j = ccci_proto_ok();
  assert_int_equal(json_object_set_new(j, "n", json_integer(5)), 0);
  s = ccci_proto_encode(j, &len);
  assert_string_equal(s, "{\"ok\":true,\"n\":5}\n");
  assert_int_equal(len, 18);
  free(s);
  json_decref(j);
}

static size_t count_char(const char *s, size_t len, char c)
{
  size_t i, n = 0;
  for (i = 0; i < len; i++)
    n += s[i] == c;
  return n;
}

static void test_encode_one_line(void **state)
{
  json_t *j, *back;
  json_error_t je;
  char *s;
  size_t len, i;
  (void)state;

  j = ccci_proto_ok();
  assert_int_equal(
      json_object_set_new(j, "text", json_string("line 1\nline 2\r\n\n")), 0);
  assert_int_equal(
      json_object_set_new(j, "sep", json_string("a\xe2\x80\xa8z\xc3\xa4")), 0);
  assert_int_equal(
      json_object_set_new(j, "list", json_pack("[s,s]", "\n", "x\ty")), 0);
  s = ccci_proto_encode(j, &len);
  assert_int_equal(len, strlen(s));
  assert_true(len >= 2);
  /* Exactly one newline, the last byte; nothing else breaks the line. */
  assert_int_equal(s[len - 1], '\n');
  assert_int_equal(count_char(s, len, '\n'), 1);
  assert_int_equal(count_char(s, len, '\r'), 0);
  for (i = 0; i < len; i++)
    assert_true((unsigned char)s[i] < 0x80);
  /* And it parses back to the same message, as a request line would. */
  back = json_loadb(s, len - 1, 0, &je);
  assert_non_null(back);
  assert_true(json_equal(back, j));
  json_decref(back);
  free(s);
  json_decref(j);
}

static void test_encode_then_parse(void **state)
{
  json_t *msg =
      json_pack("{s:i,s:s,s:s}", "v", 1, "op", "logs", "note", "two\nlines");
  json_t *req;
  char *s;
  size_t len;
  (void)state;

  s = ccci_proto_encode(msg, &len);
  req = expect_ok(s, len - 1, "logs");
  assert_string_equal(json_string_value(json_object_get(req, "note")),
                      "two\nlines");
  json_decref(req);
  free(s);
  json_decref(msg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_request),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_not_an_object),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_op),
      cmocka_unit_test(test_trailing_data),
      cmocka_unit_test(test_trailing_whitespace),
      cmocka_unit_test(test_bytes_after_len_ignored),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_error_and_ok_replies),
      cmocka_unit_test(test_encode_one_line),
      cmocka_unit_test(test_encode_then_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
