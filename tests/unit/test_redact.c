/* Unit tests of the streaming redactor: exact outputs for every form and
 * leak case, each checked as one write, at every split and byte by byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/logs/redact.h"

#define MASK CCCI_REDACT_MASK
#define MIB (1024u * 1024u)

/* ---- helpers ---- */

struct buf {
  char *p;
  size_t len, cap;
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
  if (n == 0)
    return;
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap : 256;
    while (c < b->len + n)
      c *= 2;
    b->p = ccci_xrealloc(b->p, c);
    b->cap = c;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_puts(struct buf *b, const char *s)
{
  buf_put(b, s, strlen(s));
}

static void buf_free(struct buf *b)
{
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)((rng_state >> 33) % n);
}

/* A set of NUL-terminated values (NULL ends the list). */
static struct ccci_redact_set *mkset(size_t min_len, ...)
{
  struct ccci_redact_value vals[16];
  struct ccci_redact_set *set;
  size_t n = 0;
  const char *v;
  va_list ap;

  va_start(ap, min_len);
  while ((v = va_arg(ap, const char *)) != NULL && n < 16) {
    vals[n].data = v;
    vals[n++].len = strlen(v);
  }
  va_end(ap);
  assert_int_equal(ccci_redact_set_new(vals, n, min_len, &set), 0);
  return set;
}

/* Print @p p with C escapes, for failure messages. */
static void dump(const char *label, const void *p, size_t n)
{
  const unsigned char *s = p;
  size_t i, lim = n > 400 ? 400 : n;
  fprintf(stderr, "  %s (%zu bytes): \"", label, n);
  for (i = 0; i < lim; i++) {
    if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
      fputc(s[i], stderr);
    else
      fprintf(stderr, "\\x%02x", s[i]);
  }
  fprintf(stderr, "%s\"\n", lim < n ? "..." : "");
}

/* Filter @p in through a new stream on @p set: a first write of @p first
 * bytes (possibly empty), then writes of @p step bytes, then finish. The
 * concatenated output goes to @p out. */
static void filter(struct ccci_redact_set *set, const char *mask,
                   const void *in, size_t n, size_t first, size_t step,
                   struct buf *out)
{
  struct ccci_redact *r = ccci_redact_new(set, mask);
  const unsigned char *p = in;
  size_t pos = 0, w = first;
  const char *o;
  size_t ol;

  out->len = 0;
  while (pos < n) {
    if (w > n - pos)
      w = n - pos;
    assert_int_equal(ccci_redact_feed(r, p + pos, w, &o, &ol), 0);
    buf_put(out, o, ol);
    pos += w;
    w = step;
  }
  assert_int_equal(ccci_redact_finish(r, &o, &ol), 0);
  buf_put(out, o, ol);
  assert_int_equal(ccci_redact_pending(r), 0);
  ccci_redact_free(r);
}

static void check(const struct buf *got, const void *in, size_t n,
                  const void *want, size_t wl, const char *how, size_t arg)
{
  if (got->len == wl && (wl == 0 || memcmp(got->p, want, wl) == 0))
    return;
  fprintf(stderr, "redacted output differs (%s %zu)\n", how, arg);
  dump("input", in, n);
  dump("got", got->p, got->len);
  dump("want", want, wl);
  fail();
}

/* The output of @p in must be exactly @p want as one write, at every split
 * into two writes, and with one-byte writes. */
static void expect_n(struct ccci_redact_set *set, const char *mask,
                     const void *in, size_t n, const void *want, size_t wl)
{
  struct buf got = {NULL, 0, 0};
  size_t s;

  filter(set, mask, in, n, n ? n : 1, n ? n : 1, &got);
  check(&got, in, n, want, wl, "one write", n);
  for (s = 0; s <= n; s++) {
    filter(set, mask, in, n, s, n ? n : 1, &got);
    check(&got, in, n, want, wl, "split at", s);
  }
  filter(set, mask, in, n, 1, 1, &got);
  check(&got, in, n, want, wl, "one-byte writes", 1);
  buf_free(&got);
}

/* String literals, which may hold NUL bytes. */
#define EXPECT(set, mask, in, want)                                            \
  expect_n((set), (mask), (in), sizeof(in) - 1, (want), sizeof(want) - 1)

static void expect_str(struct ccci_redact_set *set, const char *mask,
                       const char *in, const char *want)
{
  expect_n(set, mask, in, strlen(in), want, strlen(want));
}

/* For inputs too long for every split: one write, the given splits, chunks
 * of 4093 and 64 KiB, and one-byte writes when @p bytewise. */
static void expect_big(struct ccci_redact_set *set, const char *mask,
                       const void *in, size_t n, const void *want, size_t wl,
                       const size_t *splits, size_t nsplits, bool bytewise)
{
  struct buf got = {NULL, 0, 0};
  size_t i;

  filter(set, mask, in, n, n, n, &got);
  check(&got, in, n, want, wl, "one write", n);
  for (i = 0; i < nsplits; i++) {
    filter(set, mask, in, n, splits[i], n, &got);
    check(&got, in, n, want, wl, "split at", splits[i]);
  }
  filter(set, mask, in, n, 4093, 4093, &got);
  check(&got, in, n, want, wl, "chunks of", 4093);
  filter(set, mask, in, n, 65536, 65536, &got);
  check(&got, in, n, want, wl, "chunks of", 65536);
  if (bytewise) {
    filter(set, mask, in, n, 1, 1, &got);
    check(&got, in, n, want, wl, "one-byte writes", 1);
  }
  buf_free(&got);
}

/* The simple reference for generated texts: mask exactly the byte ranges
 * marked in @p marked (one mask per maximal run). */
static void render_marked(const unsigned char *in, const bool *marked, size_t n,
                          const char *mask, struct buf *out)
{
  size_t i;
  out->len = 0;
  for (i = 0; i < n; i++) {
    if (!marked[i])
      buf_put(out, &in[i], 1);
    else if (i == 0 || !marked[i - 1])
      buf_puts(out, mask);
  }
}

static bool contains(const void *hay, size_t hn, const void *needle, size_t nn)
{
  return hn >= nn && memmem(hay, hn, needle, nn) != NULL;
}

/* Plain RFC 4648 base64 (padded), standard or URL alphabet. */
static void b64(const unsigned char *in, size_t n, bool url, struct buf *out)
{
  static const char std[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char urls[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char *a = url ? urls : std;
  size_t i;

  out->len = 0;
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    char q[4] = {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
    buf_put(out, q, 4);
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    char q[4] = {a[v >> 18], a[(v >> 12) & 63], '=', '='};
    buf_put(out, q, 4);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    char q[4] = {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
    buf_put(out, q, 4);
  }
}

/* The characters of base64(@p k bytes + value) that only the value's bits
 * determine: [ceil(8k/6), floor(8(k+len)/6)). */
static void b64_determined(const char *v, size_t k, bool url, struct buf *out)
{
  struct buf all = {NULL, 0, 0};
  unsigned char *tmp = ccci_xcalloc(k + strlen(v) + 1, 1);
  size_t from = (8 * k + 5) / 6, to = 8 * (k + strlen(v)) / 6;

  memcpy(tmp + k, v, strlen(v));
  b64(tmp, k + strlen(v), url, &all);
  out->len = 0;
  buf_put(out, all.p + from, to - from);
  free(tmp);
  buf_free(&all);
}

/* ---- leak cases of other CI runners ---- */

static void test_split_across_writes(void **state)
{
  struct ccci_redact_set *set = mkset(8, "hunter2-secret", NULL);
  (void)state;
  expect_str(set, NULL, "login hunter2-secret ok\n", "login " MASK " ok\n");
  expect_str(set, NULL, "hunter2-secret", MASK);
  expect_str(set, NULL, "a hunter2-secre hunter2-secret\nhunter2-secret",
             "a hunter2-secre " MASK "\n" MASK);
  ccci_redact_set_unref(set);
}

static void test_overlapping(void **state)
{
  struct ccci_redact_set *set = mkset(6, "abcdef", "defghi", NULL);
  (void)state;
  expect_str(set, NULL, "xabcdefghix", "x" MASK "x");
  /* Only the first one completes: the rest of the partial second is
   * released as plain text. */
  expect_str(set, NULL, "xabcdefghx", "x" MASK "ghx");
  expect_str(set, NULL, "xbcdefghix", "xbc" MASK "x");
  ccci_redact_set_unref(set);
}

static void test_nested(void **state)
{
  struct ccci_redact_set *set = mkset(6, "0123456789", "345678", NULL);
  (void)state;
  expect_str(set, NULL, "a0123456789b 345678 c 0123456780 d",
             "a" MASK "b " MASK " c 012" MASK "0 d");
  ccci_redact_set_unref(set);
}

static void test_adjacent(void **state)
{
  struct ccci_redact_set *set = mkset(8, "alpha-secret", "bravo-secret", NULL);
  (void)state;
  expect_str(set, NULL, "[alpha-secretbravo-secret]", "[" MASK "]");
  expect_str(set, NULL, "alpha-secretalpha-secretbravo-secret", MASK);
  expect_str(set, NULL, "alpha-secret bravo-secret", MASK " " MASK);
  expect_str(set, NULL, "alpha-secret\nbravo-secret\n", MASK "\n" MASK "\n");
  ccci_redact_set_unref(set);
}

static void test_short_prefix_of_longer(void **state)
{
  static const char in[] = "xssecret99y ss ssecret9 sss z";
  static const char want[] = "x" MASK "y " MASK " " MASK "ecret9 " MASK " z";
  struct ccci_redact_set *a = mkset(2, "ss", "ssecret99", NULL);
  struct ccci_redact_set *b = mkset(2, "ssecret99", "ss", NULL);
  (void)state;
  expect_str(a, NULL, in, want);
  expect_str(b, NULL, in, want);
  expect_str(a, "*", in, "x*y * *ecret9 * z");
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
}

static void test_self_overlapping_prefixes(void **state)
{
  struct ccci_redact_set *a = mkset(2, "abcab", "cabd", NULL);
  struct ccci_redact_set *b = mkset(2, "cabd", "abcab", NULL);
  (void)state;
  expect_str(a, NULL, "abcabcabd", MASK);
  expect_str(b, NULL, "abcabcabd", MASK);
  expect_str(a, NULL, "xabcabcabdx abcabcax abcabcab abcabd",
             "x" MASK "x " MASK "cax " MASK " " MASK);
  expect_str(a, NULL, "abcabcacabd", MASK "ca" MASK);
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
}

/* A long line with a secret across the 1 MiB mark, and others near the end
 * of the line, fed whole, around the mark, in chunks and byte by byte. */
static void test_secret_at_one_mib(void **state)
{
  static const char *const words[] = {"lorem", "ipsum", "dolor",  "sit",
                                      "amet",  "quis",  "nostrud"};
  static const char sec[] = "straddle-s3cret-value";
  const size_t n = MIB + 65536, sl = sizeof(sec) - 1;
  const size_t at[] = {MIB - 10, MIB + 30000, n - 1 - sl};
  unsigned char *in = ccci_xmalloc(n);
  bool *marked = ccci_xcalloc(n, sizeof(bool));
  struct ccci_redact_set *set = mkset(8, sec, NULL);
  struct buf want = {NULL, 0, 0};
  size_t splits[40], ns = 0, i, pos = 0;
  (void)state;

  rng_state = 11;
  while (pos < n) {
    const char *w = words[rnd(7)];
    size_t l = strlen(w);
    for (i = 0; i < l && pos < n; i++)
      in[pos++] = (unsigned char)w[i];
    if (pos < n)
      in[pos++] = ' ';
  }
  in[n - 1] = '\n';
  for (i = 0; i < 3; i++) {
    memcpy(in + at[i], sec, sl);
    memset(marked + at[i], 1, sl);
  }
  render_marked(in, marked, n, MASK, &want);
  for (i = MIB - 12; i <= MIB + sl; i++)
    splits[ns++] = i;
  expect_big(set, NULL, in, n, want.p, want.len, splits, ns, true);
  free(in);
  free(marked);
  buf_free(&want);
  ccci_redact_set_unref(set);
}

static void test_secrets_over_lines(void **state)
{
  struct ccci_redact_set *set =
      mkset(8, "TOKEN_AAAA1111", "TOKEN_BBBB2222", NULL);
  (void)state;
  expect_str(set, NULL,
             "step 1: TOKEN_AAAA1111\n"
             "TOKEN_BBBB2222 at start\n"
             "both TOKEN_AAAA1111TOKEN_BBBB2222\n"
             "none here\n"
             "TOKEN_AAAA111 almost\n"
             "TOKEN_AAAA1111\r\n",
             "step 1: " MASK "\n" MASK " at start\nboth " MASK
             "\nnone here\nTOKEN_AAAA111 almost\n" MASK "\r\n");
  ccci_redact_set_unref(set);
}

/* ---- forms ---- */

/* Every byte of it changes under URL encoding or one of the base64
 * alphabets at every alignment. */
static const char VAL[] = "~s3cr3t-v@lue/+x~?";

static void test_form_raw(void **state)
{
  struct ccci_redact_set *set = mkset(8, VAL, NULL);
  (void)state;
  expect_str(set, NULL, "key=~s3cr3t-v@lue/+x~?;\n", "key=" MASK ";\n");
  /* A near miss stays. */
  expect_str(set, NULL, "key=~s3cr3t-v@lue/+x~!;\n",
             "key=~s3cr3t-v@lue/+x~!;\n");
  ccci_redact_set_unref(set);
}

static void test_form_json(void **state)
{
  /* ", \, newline, tab and control bytes: JSON escapes them all. */
  static const char val[] = "s3\"cr\\3t\n-v@\tlue\x01/+x\x1f";
  static const char in[] =
      "{\"k\":\"s3\\\"cr\\\\3t\\n-v@\\tlue\\u0001/+x\\u001f\"}"
      "\n{\"k\":\"s3\\\"cr\\\\3t\\n-v@\\tlue\\u0001/+x\\u001F\"}"
      "\nraw: s3\"cr\\3t\n-v@\tlue\x01/+x\x1f\n";
  static const char want[] =
      "{\"k\":\"" MASK "\"}\n{\"k\":\"" MASK "\"}\nraw: " MASK "\n";
  struct ccci_redact_set *set = mkset(8, val, NULL);
  (void)state;
  EXPECT(set, NULL, in, want);
  /* The RFC 8259 short escapes are the only ones: \u000a for a newline is
   * not a form, so only the two lines' own forms are masked. */
  expect_str(set, NULL, "s3\\\"cr\\\\3t\\u000a-v@\\tlue\\u0001/+x\\u001f",
             MASK "\\u000a" MASK);
  ccci_redact_set_unref(set);
}

static void test_form_url(void **state)
{
  struct ccci_redact_set *set = mkset(8, VAL, NULL);
  (void)state;
  expect_str(set, NULL, "GET /cb?token=~s3cr3t-v%40lue%2F%2Bx~%3F&x=1 200\n",
             "GET /cb?token=" MASK "&x=1 200\n");
  ccci_redact_set_unref(set);
}

/* The value inside a larger base64 blob at each byte offset: the characters
 * it alone determines are masked, the ones it shares with its neighbours
 * are not. */
static void test_form_base64(void **state)
{
  struct ccci_redact_set *set = mkset(8, VAL, NULL);
  struct buf plain = {NULL, 0, 0}, blob = {NULL, 0, 0}, det = {NULL, 0, 0};
  struct buf in = {NULL, 0, 0}, want = {NULL, 0, 0}, got = {NULL, 0, 0};
  size_t k, vl = strlen(VAL), w;
  int url;
  (void)state;

  for (url = 0; url < 2; url++) {
    for (k = 0; k < 6; k++) {
      size_t from = (8 * k + 5) / 6, to = 8 * (k + vl) / 6;
      plain.len = 0;
      buf_put(&plain, "XXXXXX", k);
      buf_puts(&plain, VAL);
      buf_puts(&plain, "tail");
      b64((const unsigned char *)plain.p, plain.len, url, &blob);
      b64_determined(VAL, k % 3, url, &det);
      /* The alphabets differ in every determined string. */
      assert_true(contains(det.p, det.len, url ? "-" : "+", 1) ||
                  contains(det.p, det.len, url ? "_" : "/", 1));
      assert_memory_equal(blob.p + from, det.p, det.len);
      assert_int_equal(to - from, det.len);
      in.len = want.len = 0;
      buf_puts(&in, "data: ");
      buf_put(&in, blob.p, blob.len);
      buf_puts(&in, "\n");
      buf_puts(&want, "data: ");
      buf_put(&want, blob.p, from);
      buf_puts(&want, MASK);
      buf_put(&want, blob.p + to, blob.len - to);
      buf_puts(&want, "\n");
      expect_n(set, NULL, in.p, in.len, want.p, want.len);
      filter(set, NULL, in.p, in.len, 3, 3, &got);
      /* No window of min_len of the determined characters survives. */
      for (w = 0; w + 8 <= det.len; w++)
        assert_false(contains(got.p, got.len, det.p + w, 8));
      assert_false(contains(got.p, got.len, VAL, vl));
    }
  }
  /* The other alphabet's encoding of the value is masked too: both are
   * forms. */
  b64_determined(VAL, 0, true, &det);
  in.len = 0;
  buf_puts(&in, "u=");
  buf_put(&in, det.p, det.len);
  expect_n(set, NULL, in.p, in.len, "u=" MASK, 2 + strlen(MASK));
  buf_free(&plain);
  buf_free(&blob);
  buf_free(&det);
  buf_free(&in);
  buf_free(&want);
  buf_free(&got);
  ccci_redact_set_unref(set);
}

static void test_multiline_lf_crlf(void **state)
{
  static const char *const values[] = {
      "first-line-secret\nsecond-line-val\nshort\n",
      "first-line-secret\r\nsecond-line-val\r\nshort\r\n"};
  size_t i;
  (void)state;

  for (i = 0; i < 2; i++) {
    struct ccci_redact_set *set = mkset(8, values[i], NULL);
    assert_int_equal(ccci_redact_set_values(set), 1);
    expect_str(set, NULL, "<first-line-secret\nsecond-line-val\nshort>",
               "<" MASK ">");
    expect_str(set, NULL, "<first-line-secret\r\nsecond-line-val\r\nshort>",
               "<" MASK ">");
    /* Each long line alone; the short one is not masked alone. */
    expect_str(set, NULL, "a first-line-secret b\nc second-line-val d\n",
               "a " MASK " b\nc " MASK " d\n");
    expect_str(set, NULL, "short line: short\n", "short line: short\n");
    expect_str(set, NULL, "first-line-secret\nsecond-line-val\nshor",
               MASK "\n" MASK "\nshor");
    ccci_redact_set_unref(set);
  }
}

#define PEM_BEGIN "-----BEGIN PRIVATE KEY-----"
#define PEM_END "-----END PRIVATE KEY-----"
#define PEM_L1 "MIIBVQIBADANBgkqhkiG9w0BAQEFAASC"
#define PEM_L2 "AT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ"
#define PEM_L3 "Yx2eqTDmWS6U5Q=="

static void test_pem(void **state)
{
  struct ccci_redact_set *set = mkset(
      8, PEM_BEGIN "\n" PEM_L1 "\n" PEM_L2 "\n" PEM_L3 "\n" PEM_END "\n", NULL);
  (void)state;
  /* The armour lines alone are everywhere: not masked. */
  expect_str(set, NULL, PEM_BEGIN "\n(elided)\n" PEM_END "\n",
             PEM_BEGIN "\n(elided)\n" PEM_END "\n");
  expect_str(set, NULL,
             PEM_BEGIN "\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n" PEM_END,
             PEM_BEGIN "\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n" PEM_END);
  /* Body lines alone are. */
  expect_str(set, NULL, "k: " PEM_L1 "\nl: " PEM_L3 " " PEM_L2 "\n",
             "k: " MASK "\nl: " MASK " " MASK "\n");
  /* The whole key, with LF and with CRLF line ends. */
  expect_str(set, NULL,
             "key:\n" PEM_BEGIN "\n" PEM_L1 "\n" PEM_L2 "\n" PEM_L3 "\n" PEM_END
             "\n",
             "key:\n" MASK "\n");
  expect_str(set, NULL,
             "key:\r\n" PEM_BEGIN "\r\n" PEM_L1 "\r\n" PEM_L2 "\r\n" PEM_L3
             "\r\n" PEM_END "\r\n",
             "key:\r\n" MASK "\r\n");
  /* Printed between other armour: the body lines still go. */
  expect_str(set, NULL, PEM_BEGIN "\n" PEM_L1 "\n" PEM_END "\n",
             PEM_BEGIN "\n" MASK "\n" PEM_END "\n");
  ccci_redact_set_unref(set);
}

static void test_trailing_crlf_stripped(void **state)
{
  struct ccci_redact_set *a = mkset(8, "tok3n-value\n", NULL);
  struct ccci_redact_set *b = mkset(8, "tok3n-value\r\n\r\n", NULL);
  (void)state;
  expect_str(a, NULL, "T=tok3n-value\n", "T=" MASK "\n");
  expect_str(a, NULL, "T=tok3n-value\r\nU=tok3n-value",
             "T=" MASK "\r\nU=" MASK);
  expect_str(b, NULL, "T=tok3n-value\n", "T=" MASK "\n");
  assert_int_equal(ccci_redact_set_values(a), 1);
  assert_int_equal(ccci_redact_set_patterns(a), ccci_redact_set_patterns(b));
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
}

static void test_short_values_left_out(void **state)
{
  struct ccci_redact_value vals[6] = {
      {"short", 5},    {"1234567\n", 8},       {"exactly8", 8},
      {"exactly8", 8}, {"longer-value-x", 14}, {"\r\n\r\n", 4},
  };
  struct ccci_redact_set *set;
  (void)state;

  assert_int_equal(ccci_redact_set_new(vals, 6, 0, &set), -EINVAL);
  assert_null(set);
  assert_int_equal(ccci_redact_set_new(vals, 6, 8, &set), 0);
  /* "exactly8" once; "short" and "1234567" (7 once stripped) left out. */
  assert_int_equal(ccci_redact_set_values(set), 2);
  expect_str(set, NULL, "short 1234567 exactly8 longer-value-x",
             "short 1234567 " MASK " " MASK);
  ccci_redact_set_unref(set);
  assert_int_equal(ccci_redact_set_new(vals, 6, 5, &set), 0);
  assert_int_equal(ccci_redact_set_values(set), 4);
  ccci_redact_set_unref(set);
}

/* ---- mask semantics ---- */

static void test_mask_union_and_runs(void **state)
{
  struct ccci_redact_set *set = mkset(8, "SECRETVALUE1", "VALUE1MORE-x", NULL);
  (void)state;
  expect_str(set, NULL, "a SECRETVALUE1MORE-x b", "a " MASK " b");
  expect_str(set, NULL, "SECRETVALUE1 SECRETVALUE1", MASK " " MASK);
  expect_str(set, NULL, "SECRETVALUE1VALUE1MORE-xSECRETVALUE1!", MASK "!");
  expect_str(set, "[REDACTED]", "a SECRETVALUE1MORE-x b SECRETVALUE1",
             "a [REDACTED] b [REDACTED]");
  expect_str(set, "#", "(SECRETVALUE1)(VALUE1MORE-x)", "(#)(#)");
  expect_str(set, "", "x SECRETVALUE1", "x " MASK);
  /* Text that looks like the mask passes unchanged around masked runs. */
  expect_str(set, NULL, "**SECRETVALUE*SECRETVALUE1**",
             "**SECRETVALUE*" MASK "**");
  expect_str(set, "[REDACTED]", "[REDACTED] [REDSECRETVALUE1]",
             "[REDACTED] [RED[REDACTED]]");
  ccci_redact_set_unref(set);
}

static void test_binary_passthrough(void **state)
{
  static const char bin[] = "\x00\xff"
                            "bin\x00secret\x01";
  static const char in[] = "\x1b[31mERROR\x1b[0m h\xc3\xa9llo \xe2\x9c\x93 "
                           "\x00\xff\xfe token=SECRETVALUE1\x00\xff\x00\xff"
                           "bin\x00secret\x01\xff\x1b[0m\n"
                           "\x1b[31mSECRETVALUE1\x1b[0m\n\xff\xfe\x00";
  static const char want[] =
      "\x1b[31mERROR\x1b[0m h\xc3\xa9llo \xe2\x9c\x93 "
      "\x00\xff\xfe token=" MASK "\x00\xff" MASK "\xff\x1b[0m\n"
      "\x1b[31m" MASK "\x1b[0m\n\xff\xfe\x00";
  struct ccci_redact_value vals[2] = {{bin, sizeof(bin) - 1},
                                      {"SECRETVALUE1", 12}};
  struct ccci_redact_set *set;
  (void)state;

  assert_int_equal(ccci_redact_set_new(vals, 2, 8, &set), 0);
  assert_int_equal(ccci_redact_set_values(set), 2);
  EXPECT(set, NULL, in, want);
  /* Its JSON form: \u0000 and \u0001 escapes, 0xff as it is. */
  EXPECT(set, NULL,
         "\"\\u0000\xff"
         "bin\\u0000secret\\u0001\"",
         "\"" MASK "\"");
  ccci_redact_set_unref(set);
}

/* ---- minimal holdback ---- */

static void feed_expect(struct ccci_redact *r, const char *in, const char *want,
                        size_t pending)
{
  const char *o;
  size_t ol;
  assert_int_equal(ccci_redact_feed(r, in, strlen(in), &o, &ol), 0);
  if (ol != strlen(want) || (ol > 0 && memcmp(o, want, ol) != 0)) {
    fprintf(stderr, "after feeding \"%s\"\n", in);
    dump("released", o, ol);
    dump("want", want, strlen(want));
    fail();
  }
  assert_int_equal(ccci_redact_pending(r), pending);
}

static void finish_expect(struct ccci_redact *r, const char *want)
{
  const char *o;
  size_t ol;
  assert_int_equal(ccci_redact_finish(r, &o, &ol), 0);
  assert_int_equal(ol, strlen(want));
  if (ol > 0)
    assert_memory_equal(o, want, ol);
  assert_int_equal(ccci_redact_pending(r), 0);
}

static void test_holdback(void **state)
{
  struct ccci_redact_set *set = mkset(8, "abcdef0123", NULL);
  struct ccci_redact *r = ccci_redact_new(set, NULL);
  const char *sec = "abcdef0123";
  size_t i;
  (void)state;

  feed_expect(r, "hello\n", "hello\n", 0);
  feed_expect(r, "abc", "", 3);
  feed_expect(r, "x", "abcx", 0);
  feed_expect(r, " abcdef0123", " " MASK, 0);
  feed_expect(r, " ", " ", 0);
  /* Byte by byte: nothing until the last byte, then the mask at once. */
  for (i = 0; i + 1 < strlen(sec); i++) {
    char one[2] = {sec[i], 0};
    feed_expect(r, one, "", i + 1);
  }
  feed_expect(r, "3", MASK, 0);
  feed_expect(r, "abcdef012", "", 9);
  finish_expect(r, "abcdef012");
  ccci_redact_free(r);
  ccci_redact_set_unref(set);
}

static void test_holdback_mask_release(void **state)
{
  struct ccci_redact_set *a = mkset(8, "abcdef0123", "0123zzzzzz", NULL);
  struct ccci_redact_set *b = mkset(8, "abcdef0123", "xxabcdef0123yy", NULL);
  struct ccci_redact *r;
  (void)state;

  /* A partial of another value inside the occurrence does not hold the
   * mask back: it merges into the same run whatever comes. */
  r = ccci_redact_new(a, NULL);
  feed_expect(r, "abcdef0123", MASK, 0);
  feed_expect(r, "zzzzzz", "", 0);
  feed_expect(r, "!", "!", 0);
  finish_expect(r, "");
  ccci_redact_free(r);

  /* A partial starting before it does: "xx" may still be masked. */
  r = ccci_redact_new(b, NULL);
  feed_expect(r, "xxabcdef0123", "", 12);
  feed_expect(r, "!", "xx" MASK "!", 0);
  finish_expect(r, "");
  ccci_redact_free(r);
  r = ccci_redact_new(b, NULL);
  feed_expect(r, "xxabcdef0123", "", 12);
  feed_expect(r, "y", "", 13);
  feed_expect(r, "y", MASK, 0);
  finish_expect(r, "");
  ccci_redact_free(r);
  r = ccci_redact_new(b, NULL);
  feed_expect(r, "xxabcdef0123y", "", 13);
  finish_expect(r, "xx" MASK "y");
  ccci_redact_free(r);
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
}

/* ---- scale ---- */

static void random_secret(char *out, size_t len)
{
  static const char alpha[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t i;
  for (i = 0; i < len; i++)
    out[i] = alpha[rnd(64)];
  out[len] = '\0';
}

static void test_ten_mib_line(void **state)
{
  static const char *const secs[] = {"Zq9-first-secret-ALPHA",
                                     "k8_second-secret-BRAVO",
                                     "third-s3cret-CHARLIE-x"};
  static const char *const words[] = {"the",   "quick", "brown", "fox",
                                      "jumps", "over",  "lazy",  "dog"};
  const size_t n = 10 * MIB;
  /* Starts: the first byte, across 64 KiB and 4093-byte chunk boundaries,
   * two back to back (one run), the last bytes. */
  const size_t at[][2] = {
      {0, 0},           {65536 - 5, 1},    {4093 * 300 - 11, 2},
      {5 * MIB, 0},     {5 * MIB + 22, 1}, {7 * MIB + 1, 2},
      {9 * MIB + 3, 1}, {n - 22, 2},
  };
  unsigned char *in = ccci_xmalloc(n);
  bool *marked = ccci_xcalloc(n, sizeof(bool));
  struct ccci_redact_set *set = mkset(8, secs[0], secs[1], secs[2], NULL);
  struct buf want = {NULL, 0, 0}, got = {NULL, 0, 0};
  size_t pos = 0, i;
  (void)state;

  rng_state = 12;
  while (pos < n) {
    const char *w = words[rnd(8)];
    for (i = 0; w[i] != '\0' && pos < n; i++)
      in[pos++] = (unsigned char)w[i];
    if (pos < n)
      in[pos++] = ' ';
  }
  for (i = 0; i < CCCI_ARRAY_LEN(at); i++) {
    const char *s = secs[at[i][1]];
    memcpy(in + at[i][0], s, strlen(s));
    memset(marked + at[i][0], 1, strlen(s));
  }
  render_marked(in, marked, n, MASK, &want);
  /* Eight occurrences of 22 bytes in seven runs. */
  assert_int_equal(want.len, n - 8 * 22 + 7 * 8);
  filter(set, NULL, in, n, 65536, 65536, &got);
  check(&got, "10 MiB", 6, want.p, want.len, "chunks of", 65536);
  filter(set, NULL, in, n, 4093, 4093, &got);
  check(&got, "10 MiB", 6, want.p, want.len, "chunks of", 4093);
  filter(set, NULL, in, n, n, n, &got);
  check(&got, "10 MiB", 6, want.p, want.len, "one write", n);
  free(in);
  free(marked);
  buf_free(&want);
  buf_free(&got);
  ccci_redact_set_unref(set);
}

#define MANY 10000

static void test_ten_thousand_secrets(void **state)
{
  char(*secs)[41] = ccci_xmalloc(MANY * sizeof(*secs));
  struct ccci_redact_value *vals = ccci_xmalloc(MANY * sizeof(*vals));
  struct ccci_redact_set *set;
  struct buf in = {NULL, 0, 0}, want = {NULL, 0, 0};
  uint64_t t0, ms;
  size_t i;
  (void)state;

  rng_state = 13;
  for (i = 0; i < MANY; i++) {
    random_secret(secs[i], 20 + rnd(21));
    vals[i].data = secs[i];
    vals[i].len = strlen(secs[i]);
  }
  t0 = ccci_now_ms();
  assert_int_equal(ccci_redact_set_new(vals, MANY, 8, &set), 0);
  ms = ccci_now_ms() - t0;
  fprintf(stderr,
          "# 10000 secrets: built in %llu ms, %zu patterns, %zu "
          "bytes\n",
          (unsigned long long)ms, ccci_redact_set_patterns(set),
          ccci_redact_set_memory(set));
  assert_true(ms < 20000);
  assert_int_equal(ccci_redact_set_values(set), MANY);
  /* Raw and three base64 forms at least for each. */
  assert_true(ccci_redact_set_patterns(set) >= 4 * MANY);

  /* 100 of them in a log; the text around them (no alphanumeric run long
   * enough to be a form) is untouched. */
  for (i = 0; i < 100; i++) {
    buf_puts(&in, "\n[step] ok: ");
    buf_puts(&want, "\n[step] ok: ");
    buf_puts(&in, secs[i * 97]);
    buf_puts(&want, MASK);
    if (i % 10 == 0) { /* adjacent pairs */
      buf_puts(&in, secs[i * 97 + 1]);
    }
    buf_puts(&in, " <end>");
    buf_puts(&want, " <end>");
  }
  expect_n(set, NULL, in.p, in.len, want.p, want.len);

  /* All of them back to back: one run. */
  in.len = 0;
  buf_puts(&in, "<");
  for (i = 0; i < MANY; i++)
    buf_puts(&in, secs[i]);
  buf_puts(&in, ">");
  expect_big(set, NULL, in.p, in.len, "<" MASK ">", 2 + strlen(MASK), NULL, 0,
             true);
  buf_free(&in);
  buf_free(&want);
  ccci_redact_set_unref(set);
  free(vals);
  explicit_bzero(secs, MANY * sizeof(*secs));
  free(secs);
}

/* ---- swapping the set of a live stream ---- */

/* Feed @p pre, swap to @p next, feed @p post, finish: the output must be
 * exactly @p want whatever the writes within @p pre and within @p post (the
 * swap point is a byte offset, so the result does not depend on them). */
static void swap_case(struct ccci_redact_set *first,
                      struct ccci_redact_set *next, const char *mask,
                      const char *pre, const char *post, const char *want)
{
  size_t pn = strlen(pre), qn = strlen(post), wl = strlen(want), mode;
  struct buf got = {NULL, 0, 0};

  /* mode: 0 one write each, 1 one-byte writes, 2.. a split of pre, then of
   * post. */
  for (mode = 0; mode < 2 + (pn + 1) + (qn + 1); mode++) {
    struct ccci_redact *r = ccci_redact_new(first, mask);
    size_t cut_p = pn, cut_q = qn, step = 0, k;
    const char *o;
    size_t ol;

    if (mode == 1)
      step = 1;
    else if (mode >= 2 && mode < 2 + pn + 1)
      cut_p = mode - 2;
    else if (mode >= 2 + pn + 1)
      cut_q = mode - 2 - (pn + 1);
    got.len = 0;
    for (k = 0; k < 2; k++) {
      const char *s = k == 0 ? pre : post;
      size_t n = k == 0 ? pn : qn, cut = k == 0 ? cut_p : cut_q, pos = 0;
      while (pos < n) {
        size_t w = step ? step : (pos < cut ? cut - pos : n - pos);
        assert_int_equal(ccci_redact_feed(r, s + pos, w, &o, &ol), 0);
        buf_put(&got, o, ol);
        pos += w;
      }
      if (k == 0)
        assert_int_equal(ccci_redact_swap(r, next), 0);
    }
    assert_int_equal(ccci_redact_finish(r, &o, &ol), 0);
    buf_put(&got, o, ol);
    ccci_redact_free(r);
    if (got.len != wl || (wl > 0 && memcmp(got.p, want, wl) != 0)) {
      fprintf(stderr, "swap case, mode %zu (pre cut %zu, post cut %zu)\n", mode,
              cut_p, cut_q);
      dump("pre", pre, pn);
      dump("post", post, qn);
      dump("got", got.p, got.len);
      dump("want", want, wl);
      fail();
    }
  }
  buf_free(&got);
}

static void test_swap_keeps_old_values(void **state)
{
  struct ccci_redact_set *a = mkset(8, "OLDSECRET1", NULL);
  struct ccci_redact_set *b = mkset(8, "NEWSECRET1", NULL);
  struct ccci_redact *r = ccci_redact_new(a, NULL);
  (void)state;

  feed_expect(r, "aaa OLDSECRET1 NEWSECRET1 ", "aaa " MASK " NEWSECRET1 ", 0);
  assert_int_equal(ccci_redact_swap(r, b), 0);
  /* The stream holds its own references. */
  ccci_redact_set_unref(b);
  ccci_redact_set_unref(a);
  feed_expect(r, "x OLDSECRET1 y NEWSECRET1 z", "x " MASK " y " MASK " z", 0);
  finish_expect(r, "");
  ccci_redact_free(r);

  a = mkset(8, "OLDSECRET1", NULL);
  b = mkset(8, "NEWSECRET1", NULL);
  swap_case(a, b, NULL, "aaa OLDSECRET1 ", "x OLDSECRET1 y NEWSECRET1 z",
            "aaa " MASK " x " MASK " y " MASK " z");
  /* Swapping to the set the stream has is a no-op. */
  swap_case(a, a, NULL, "OLDSECRET1 NEWSECRET1", " NEWSECRET1 OLDSECRET1",
            MASK " NEWSECRET1 NEWSECRET1 " MASK);
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
}

static void test_swap_pending_partial(void **state)
{
  struct ccci_redact_set *a = mkset(8, "OLDSECRET1", NULL);
  struct ccci_redact_set *b = mkset(8, "NEWSECRET1", NULL);
  struct ccci_redact_set *c = mkset(8, "SECRET1NEW", NULL);
  struct ccci_redact *r = ccci_redact_new(a, NULL);
  (void)state;

  feed_expect(r, "aaa OLDSEC", "aaa ", 6);
  assert_int_equal(ccci_redact_swap(r, b), 0);
  feed_expect(r, "RET1 b", MASK " b", 0);
  finish_expect(r, "");
  ccci_redact_free(r);
  swap_case(a, b, NULL, "aaa OLDSEC", "RET1 b NEWSECRET1",
            "aaa " MASK " b " MASK);
  /* The undecided tail is rescanned with the new values: a new value that
   * starts inside a pending old one is found. */
  swap_case(a, c, NULL, "x OLDSECRET", "1NEW y", "x " MASK " y");
  swap_case(a, c, NULL, "x OLDSECRET", "2 SECRET1NEW", "x OLDSECRET2 " MASK);
  /* Bytes released before the swap are not recalled, but the rest of a new
   * value that began in them (within the lookback) is masked. */
  swap_case(a, c, NULL, "x SECRET1", "NEW y", "x SECRET1" MASK " y");
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
  ccci_redact_set_unref(c);
}

static void test_swap_adopts_superset(void **state)
{
  enum { NSEC = 5000, NSTREAM = 10 };
  char(*secs)[41] = ccci_xmalloc(NSEC * sizeof(*secs));
  struct ccci_redact_value *vals = ccci_xmalloc(NSEC * sizeof(*vals));
  struct ccci_redact_set *a, *b, *u;
  struct ccci_redact *r[NSTREAM];
  uint64_t t0, union_ms, swap_ms;
  size_t i;
  (void)state;

  rng_state = 14;
  for (i = 0; i < NSEC; i++) {
    random_secret(secs[i], 20 + rnd(21));
    vals[i].data = secs[i];
    vals[i].len = strlen(secs[i]);
  }
  vals[0].data = "OLDSECRET1";
  vals[0].len = 10;
  assert_int_equal(ccci_redact_set_new(vals, NSEC, 8, &a), 0);
  b = mkset(8, "NEWSECRET1", NULL);
  t0 = ccci_now_ms();
  assert_int_equal(ccci_redact_set_union(a, b, &u), 0);
  union_ms = ccci_now_ms() - t0;
  assert_int_equal(ccci_redact_set_values(u), NSEC + 1);
  assert_int_equal(ccci_redact_set_patterns(u),
                   ccci_redact_set_patterns(a) + ccci_redact_set_patterns(b));

  for (i = 0; i < NSTREAM; i++) {
    r[i] = ccci_redact_new(a, NULL);
    feed_expect(r[i], "pre OLDSEC", "pre ", 6);
  }
  t0 = ccci_now_ms();
  for (i = 0; i < NSTREAM; i++)
    assert_int_equal(ccci_redact_swap(r[i], u), 0);
  swap_ms = ccci_now_ms() - t0;
  fprintf(stderr,
          "# union of %d values built in %llu ms; %d swaps took "
          "%llu ms\n",
          NSEC + 1, (unsigned long long)union_ms, NSTREAM,
          (unsigned long long)swap_ms);
  /* Adopted, not rebuilt per stream: rebuilding would cost NSTREAM times
   * the union. */
  assert_true(swap_ms <= union_ms);
  ccci_redact_set_unref(u);
  ccci_redact_set_unref(a);
  for (i = 0; i < NSTREAM; i++) {
    /* '!' is in no form: nothing is held after it. */
    feed_expect(r[i], "RET1 NEWSECRET1 !", MASK " " MASK " !", 0);
    finish_expect(r[i], "");
    ccci_redact_free(r[i]);
  }
  ccci_redact_set_unref(b);
  free(vals);
  explicit_bzero(secs, NSEC * sizeof(*secs));
  free(secs);
}

/* ---- ccci_redact_forms ---- */

struct formlist {
  char *v[64];
  size_t len[64];
  size_t n;
};

static void collect(const unsigned char *p, size_t len, void *arg)
{
  struct formlist *fl = arg;
  assert_true(fl->n < 64);
  fl->v[fl->n] = ccci_xmalloc(len + 1);
  memcpy(fl->v[fl->n], p, len);
  fl->v[fl->n][len] = '\0';
  fl->len[fl->n++] = len;
}

static void formlist_free(struct formlist *fl)
{
  size_t i;
  for (i = 0; i < fl->n; i++)
    free(fl->v[i]);
  fl->n = 0;
}

static size_t count_form(const struct formlist *fl, const void *p, size_t len)
{
  size_t i, c = 0;
  for (i = 0; i < fl->n; i++)
    c += fl->len[i] == len && memcmp(fl->v[i], p, len) == 0;
  return c;
}

/* Every expected form exactly once, and nothing else. */
static void expect_forms(const char *value, size_t min_len,
                         const char *const *want, size_t nwant)
{
  struct formlist fl = {.n = 0};
  size_t i;

  ccci_redact_forms(value, strlen(value), min_len, collect, &fl);
  for (i = 0; i < nwant; i++) {
    if (count_form(&fl, want[i], strlen(want[i])) != 1) {
      size_t k;
      fprintf(stderr, "form \"%s\" of \"%s\" not reported once; got:\n",
              want[i], value);
      for (k = 0; k < fl.n; k++)
        dump("form", fl.v[k], fl.len[k]);
      fail();
    }
  }
  assert_int_equal(fl.n, nwant);
  formlist_free(&fl);
}

static void test_forms_simple(void **state)
{
  struct buf d[6];
  const char *want[8];
  size_t i, n = 0;
  (void)state;

  /* JSON and URL leave it as is, and its base64 has no + or /: the raw
   * value and three base64 forms. */
  for (i = 0; i < 3; i++) {
    memset(&d[i], 0, sizeof(d[i]));
    b64_determined("0123456789abcdef", i, false, &d[i]);
    buf_put(&d[i], "", 1);
  }
  want[0] = "0123456789abcdef";
  want[1] = "MDEyMzQ1Njc4OWFiY2RlZ";
  want[2] = "AxMjM0NTY3ODlhYmNkZW";
  want[3] = "wMTIzNDU2Nzg5YWJjZGVm";
  for (i = 0; i < 3; i++)
    assert_string_equal(d[i].p, want[1 + i]);
  expect_forms("0123456789abcdef", 8, want, 4);
  for (i = 0; i < 3; i++)
    buf_free(&d[i]);

  /* Every form differs: raw, URL, six base64. */
  want[n++] = VAL;
  want[n++] = "~s3cr3t-v%40lue%2F%2Bx~%3F";
  for (i = 0; i < 6; i++) {
    memset(&d[i], 0, sizeof(d[i]));
    b64_determined(VAL, i % 3, i >= 3, &d[i]);
    buf_put(&d[i], "", 1);
    want[n++] = d[i].p;
  }
  expect_forms(VAL, 8, want, n);
  expect_forms("~s3cr3t-v@lue/+x~?\r\n\n", 8, want, n);
  for (i = 0; i < 6; i++)
    buf_free(&d[i]);

  n = 0;
  want[n++] = "s3\"cr\\3t\x01";
  want[n++] = "s3\\\"cr\\\\3t\\u0001";
  want[n++] = "s3%22cr%5C3t%01";
  want[n++] = "czMiY3JcM3QB";
  want[n++] = "MzImNyXDN0A";
  want[n++] = "zMyJjclwzdA";
  expect_forms("s3\"cr\\3t\x01", 8, want, n);
}

static void collect_none(const unsigned char *p, size_t len, void *arg)
{
  (void)p;
  (void)len;
  (void)arg;
  fail_msg("no form expected");
}

static void test_forms_min_len(void **state)
{
  static const char *const a[] = {"A", "Q", "B"};
  static const char *const pem = PEM_BEGIN "\n" PEM_L1 "\n" PEM_END "\n";
  struct formlist fl = {.n = 0};
  size_t i;
  (void)state;

  /* One byte: base64 determines one character at alignments 0 and 2 and
   * none at 1 (an empty form is never reported). */
  expect_forms("A", 1, a, 3);
  ccci_redact_forms("A", 1, 2, collect_none, NULL);
  ccci_redact_forms("short", 5, 8, collect_none, NULL);
  ccci_redact_forms("1234567\n", 8, 8, collect_none, NULL);
  ccci_redact_forms("\n\n", 2, 1, collect_none, NULL);

  /* A multi-line value: the short line has no forms of its own. */
  ccci_redact_forms("line-one-long\nshort\nline-three-x\n", 33, 8, collect,
                    &fl);
  assert_int_equal(count_form(&fl, "line-one-long", 13), 1);
  assert_int_equal(count_form(&fl, "line-three-x", 12), 1);
  assert_int_equal(count_form(&fl, "short", 5), 0);
  assert_int_equal(count_form(&fl, "line-one-long\nshort\nline-three-x", 32),
                   1);
  assert_int_equal(
      count_form(&fl, "line-one-long\r\nshort\r\nline-three-x", 34), 1);
  for (i = 0; i < fl.n; i++)
    assert_true(fl.len[i] >= 8);
  /* The LF and the CRLF value: raw, JSON, URL and three base64 each (no
   * + or / in them); each long line: raw and three base64. */
  assert_int_equal(fl.n, 20);
  formlist_free(&fl);

  /* PEM armour lines are never forms alone. */
  ccci_redact_forms(pem, strlen(pem), 8, collect, &fl);
  assert_int_equal(count_form(&fl, PEM_L1, strlen(PEM_L1)), 1);
  assert_int_equal(count_form(&fl, PEM_BEGIN, strlen(PEM_BEGIN)), 0);
  assert_int_equal(count_form(&fl, PEM_END, strlen(PEM_END)), 0);
  formlist_free(&fl);
}

/* ---- empty sets ---- */

static void test_empty_set(void **state)
{
  static const char in[] = "anything \x00\xff at all *** \n";
  struct ccci_redact_value v = {"short", 5};
  struct ccci_redact_set *set, *shorts;
  struct ccci_redact *r;
  (void)state;

  assert_int_equal(ccci_redact_set_new(NULL, 0, 8, &set), 0);
  assert_int_equal(ccci_redact_set_values(set), 0);
  assert_int_equal(ccci_redact_set_patterns(set), 0);
  assert_int_equal(ccci_redact_set_new(&v, 1, 8, &shorts), 0);
  assert_int_equal(ccci_redact_set_values(shorts), 0);
  EXPECT(set, NULL, in, in);
  EXPECT(shorts, NULL, in, in);
  r = ccci_redact_new(set, NULL);
  feed_expect(r, "a", "a", 0);
  feed_expect(r, "********", "********", 0);
  /* Swapping to real values later masks them from then on. */
  assert_int_equal(ccci_redact_swap(r, shorts), 0);
  ccci_redact_set_unref(shorts);
  shorts = mkset(8, "later-secret", NULL);
  assert_int_equal(ccci_redact_swap(r, shorts), 0);
  feed_expect(r, "x later-secret", "x " MASK, 0);
  finish_expect(r, "");
  ccci_redact_free(r);
  ccci_redact_set_unref(shorts);
  ccci_redact_set_unref(set);
}

/* ---- regressions: bugs these tests found (fixed in 7fe1de0, 606380b) ---- */

/* Was a bug in ccci_redact_swap with speculate(): with a mask whose first
 * character is in the text, speculate() releases text bytes that look like
 * the mask's start ahead of e. A swap then found a new value starting
 * inside them and render() skipped characters of a rendering that no
 * longer started with the released ones: "XYse" + swap + "NEWval!" gave
 * "XYY!", "[RSEC" + swap + "RETSNEW!" dropped the text's '['. Now
 * (docs/redaction.md, swapping) the byte at the release point is masked,
 * so the output continues what went out. The default mask hid this, as
 * '*' repeated overlaps itself. */
static void test_swap_after_speculative_release(void **state)
{
  static const struct {
    const char *mask, *oldv, *newv, *pre, *post, *want;
  } cases[] = {
      {"XY", "XYsecret1", "YseNEWval", "XYse", "NEWval!", "XY!"},
      {"[REDACTED]", "[RSECRETS", "RSECRETSNEW", "[RSEC", "RETSNEW!",
       "[REDACTED]!"},
  };
  size_t c;
  (void)state;

  for (c = 0; c < CCCI_ARRAY_LEN(cases); c++) {
    struct ccci_redact_set *a = mkset(8, cases[c].oldv, NULL);
    struct ccci_redact_set *b = mkset(8, cases[c].newv, NULL);
    swap_case(a, b, cases[c].mask, cases[c].pre, cases[c].post, cases[c].want);
    ccci_redact_set_unref(a);
    ccci_redact_set_unref(b);
  }
}

/* Was a bug in ccci_redact_swap with the cold mode of scan(): the swap
 * rescanned from e, but a write that ended in cold mode left the window up
 * to 3b-3 bytes before e, and the next filter hit re-entered the automaton
 * there, so a new value whose occurrence began before e had its unreleased
 * tail masked or not depending on the sizes of the writes (found by
 * fuzz_redact in swap mode). Here "ab"*10 is swapped in at offset 71, in a
 * run of "ab" from 67: its occurrences start at 67 and 69. Now the swap
 * rescans from a lookback before e and masks every unreleased byte of
 * them (docs/redaction.md), for every split of the writes. */
static void test_swap_boundary_independent_of_writes(void **state)
{
  struct ccci_redact_set *a = mkset(8, "OLDSECRET-VALUE-1", NULL);
  struct ccci_redact_set *b = mkset(8, "abababababababababab", NULL);
  struct buf pre = {NULL, 0, 0}, post = {NULL, 0, 0};
  struct buf masked = {NULL, 0, 0};
  size_t i;
  (void)state;

  /* pre: filler that the old set's block filter misses everywhere (so the
   * write ends in cold mode), then the start of a run of "ab" at 67. */
  for (i = 0; i < 67; i++)
    buf_put(&pre, &"lorem ipsum "[i % 12], 1);
  buf_puts(&pre, "abab");
  /* post: the rest of the run (up to 89), then plain text. */
  buf_puts(&post, "ababababababababab");
  for (i = 0; i < 70; i++)
    buf_puts(&post, "y");
  buf_put(&masked, pre.p, pre.len);
  buf_puts(&masked, MASK);
  buf_put(&masked, post.p + 18, post.len - 18);
  buf_put(&pre, "", 1);
  buf_put(&post, "", 1);
  buf_put(&masked, "", 1);
  swap_case(a, b, NULL, pre.p, post.p, masked.p);
  buf_free(&pre);
  buf_free(&post);
  buf_free(&masked);
  ccci_redact_set_unref(a);
  ccci_redact_set_unref(b);
}

/* Was a bug in multiline() -> bytes_put(): a value whose first line is
 * empty made multiline() append the empty line to a still-empty buffer,
 * memcpy(NULL + 0, p, 0), which UBSan reports (and, built with
 * -fno-sanitize-recover, aborts on). Found by fuzz_redact. */
static void test_multiline_leading_empty_line(void **state)
{
  struct ccci_redact_set *set = mkset(8, "\nleading-blank-line\n", NULL);
  (void)state;
  expect_str(set, NULL, "a\nleading-blank-line b\nc leading-blank-line\r\n",
             "a" MASK " b\nc " MASK "\r\n");
  expect_str(set, NULL, "x\r\nleading-blank-line", "x" MASK);
  ccci_redact_set_unref(set);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_across_writes),
      cmocka_unit_test(test_overlapping),
      cmocka_unit_test(test_nested),
      cmocka_unit_test(test_adjacent),
      cmocka_unit_test(test_short_prefix_of_longer),
      cmocka_unit_test(test_self_overlapping_prefixes),
      cmocka_unit_test(test_secret_at_one_mib),
      cmocka_unit_test(test_secrets_over_lines),
      cmocka_unit_test(test_form_raw),
      cmocka_unit_test(test_form_json),
      cmocka_unit_test(test_form_url),
      cmocka_unit_test(test_form_base64),
      cmocka_unit_test(test_multiline_lf_crlf),
      cmocka_unit_test(test_pem),
      cmocka_unit_test(test_trailing_crlf_stripped),
      cmocka_unit_test(test_short_values_left_out),
      cmocka_unit_test(test_mask_union_and_runs),
      cmocka_unit_test(test_binary_passthrough),
      cmocka_unit_test(test_holdback),
      cmocka_unit_test(test_holdback_mask_release),
      cmocka_unit_test(test_ten_mib_line),
      cmocka_unit_test(test_ten_thousand_secrets),
      cmocka_unit_test(test_swap_keeps_old_values),
      cmocka_unit_test(test_swap_pending_partial),
      cmocka_unit_test(test_swap_adopts_superset),
      cmocka_unit_test(test_forms_simple),
      cmocka_unit_test(test_forms_min_len),
      cmocka_unit_test(test_empty_set),
      cmocka_unit_test(test_swap_after_speculative_release),
      cmocka_unit_test(test_swap_boundary_independent_of_writes),
      cmocka_unit_test(test_multiline_leading_empty_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
