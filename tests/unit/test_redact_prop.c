/* Property test of the redactor against a brute-force reference: after
 * every write, what was released equals the longest common prefix of the
 * whole-input results over all continuations; at the end, the whole-input
 * result; for random secrets, inputs and chunkings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/logs/redact.h"

struct pats {
  unsigned char *p[512];
  size_t len[512];
  size_t n;
};

static void add_pat(const unsigned char *p, size_t len, void *arg)
{
  struct pats *ps = arg;
  if (ps->n < 512) {
    ps->p[ps->n] = ccci_xmalloc(len);
    memcpy(ps->p[ps->n], p, len);
    ps->len[ps->n++] = len;
  }
}

static void pats_free(struct pats *ps)
{
  size_t i;
  for (i = 0; i < ps->n; i++)
    free(ps->p[i]);
  ps->n = 0;
}

/* The whole-input result, by brute force: mark every byte inside any
 * occurrence, then one mask per maximal marked run. */
static size_t reference(const struct pats *ps, const unsigned char *in,
                        size_t n, const char *mask, char *out)
{
  char *marked = calloc(n + 1, 1);
  size_t i, k, o = 0, ml = strlen(mask);
  for (i = 0; i < n; i++)
    for (k = 0; k < ps->n; k++)
      if (ps->len[k] <= n - i && memcmp(in + i, ps->p[k], ps->len[k]) == 0)
        memset(marked + i, 1, ps->len[k]);
  for (i = 0; i < n; i++) {
    if (marked[i]) {
      if (i == 0 || !marked[i - 1]) {
        memcpy(out + o, mask, ml);
        o += ml;
      }
    } else {
      out[o++] = (char)in[i];
    }
  }
  free(marked);
  return o;
}

/* Longest common prefix of R(P) and R(P.w) over the continuations w that
 * complete a pattern started in P (any other continuation renders P's part
 * like the end of input does, or with a longer common prefix). */
static size_t expected_release(const struct pats *ps, const unsigned char *in,
                               size_t n, const char *mask, char *out)
{
  static unsigned char buf[4096];
  static char other[8192];
  size_t best = reference(ps, in, n, mask, out), k, j;

  memcpy(buf, in, n);
  for (k = 0; k < ps->n; k++) {
    for (j = 1; j < ps->len[k] && j <= n; j++) {
      size_t olen, l = 0;
      if (memcmp(in + n - j, ps->p[k], j) != 0)
        continue;
      memcpy(buf + n, ps->p[k] + j, ps->len[k] - j);
      olen = reference(ps, buf, n + ps->len[k] - j, mask, other);
      while (l < best && l < olen && out[l] == other[l])
        l++;
      best = l;
    }
  }
  return best;
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)((rng_state >> 33) % n);
}

static void run_case(const struct ccci_redact_value *vals, size_t nvals,
                     size_t min_len, const char *mask, const unsigned char *in,
                     size_t n, const size_t *cuts, size_t ncuts)
{
  struct pats ps = {.n = 0};
  struct ccci_redact_set *set;
  struct ccci_redact *r;
  char released[8192], want[8192];
  size_t rl = 0, i, pos = 0, wl;
  const char *o;
  size_t ol;

  for (i = 0; i < nvals; i++)
    ccci_redact_forms(vals[i].data, vals[i].len, min_len, add_pat, &ps);
  assert_int_equal(ccci_redact_set_new(vals, nvals, min_len, &set), 0);
  r = ccci_redact_new(set, mask);
  for (i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : n;
    if (end < pos)
      continue;
    assert_int_equal(ccci_redact_feed(r, in + pos, end - pos, &o, &ol), 0);
    memcpy(released + rl, o, ol);
    rl += ol;
    pos = end;
    wl = expected_release(&ps, in, pos, mask, want);
    if (rl != wl || memcmp(released, want, rl) != 0) {
      fprintf(stderr,
              "after %zu bytes of '%.*s': released '%.*s', want '%.*s'\n", pos,
              (int)n, (const char *)in, (int)rl, released, (int)wl, want);
      for (i = 0; i < nvals; i++)
        fprintf(stderr, "  secret '%.*s'\n", (int)vals[i].len,
                (const char *)vals[i].data);
      fail();
    }
  }
  assert_int_equal(ccci_redact_finish(r, &o, &ol), 0);
  memcpy(released + rl, o, ol);
  rl += ol;
  wl = reference(&ps, in, n, mask, want);
  assert_int_equal(rl, wl);
  assert_memory_equal(released, want, rl);
  ccci_redact_free(r);
  ccci_redact_set_unref(set);
  pats_free(&ps);
}

static void random_cases_opt(const char *alphabet, int cases, size_t minval,
                             size_t maxval, size_t maxin, size_t fixed_min,
                             uint32_t chunk_every)
{
  static const char *const masks[] = {"********", "*", "**", "#", "<x>"};
  size_t na = strlen(alphabet);
  int c;

  for (c = 0; c < cases; c++) {
    unsigned char vbuf[4][32], in[1024];
    struct ccci_redact_value vals[4];
    size_t nvals = 1 + rnd(3), i, n = 0, ncuts = 0, cuts[1024];
    size_t min_len = fixed_min ? fixed_min : 1 + rnd(3);
    const char *mask = masks[rnd(5)];

    for (i = 0; i < nvals; i++) {
      size_t l = minval + rnd((uint32_t)(maxval - minval + 1)), k;
      for (k = 0; k < l; k++)
        vbuf[i][k] = (unsigned char)alphabet[rnd((uint32_t)na)];
      vals[i].data = vbuf[i];
      vals[i].len = l;
    }
    /* Input: random bytes, whole secrets and near-misses (prefixes). */
    while (n < maxin) {
      uint32_t kind = rnd(4);
      if (kind < 2) {
        in[n++] = (unsigned char)alphabet[rnd((uint32_t)na)];
      } else {
        const struct ccci_redact_value *v = &vals[rnd((uint32_t)nvals)];
        size_t l = kind == 2 ? v->len : rnd((uint32_t)v->len + 1);
        if (n + l > maxin)
          break;
        memcpy(in + n, v->data, l);
        n += l;
      }
    }
    switch (chunk_every ? 1 : rnd(3)) {
    case 0: /* one byte per write */
      for (i = 1; i < n; i++)
        cuts[ncuts++] = i;
      break;
    case 1: /* random chunks */
      for (i = 1; i < n; i++)
        if (rnd(chunk_every ? chunk_every : 3) == 0)
          cuts[ncuts++] = i;
      break;
    default: /* one split */
      if (n > 1)
        cuts[ncuts++] = 1 + rnd((uint32_t)n - 1);
    }
    run_case(vals, nvals, min_len, mask, in, n, cuts, ncuts);
  }
}

static void random_cases(const char *alphabet, int cases, size_t maxval,
                         size_t maxin)
{
  random_cases_opt(alphabet, cases, 1, maxval, maxin, 0, 0);
}

/* Long inputs, so the block filter (cold mode) runs between occurrences:
 * block 4 (patterns of 7 bytes or more) and block 2. */
static void test_property_long_inputs(void **state)
{
  (void)state;
  rng_state = 4;
  random_cases_opt("abc", 60, 7, 12, 900, 7, 40);
  random_cases_opt("ab*", 60, 3, 8, 900, 3, 40);
  random_cases_opt("abcdefgh", 60, 8, 20, 900, 8, 90);
}

static void test_property_small_alphabet(void **state)
{
  (void)state;
  rng_state = 1;
  random_cases("ab", 3000, 5, 24);
}

static void test_property_mask_chars(void **state)
{
  (void)state;
  rng_state = 2;
  random_cases("a*b", 3000, 5, 24);
}

static void test_property_encodings(void **state)
{
  (void)state;
  rng_state = 3;
  /* Bytes that JSON, URL and base64 encode differently. */
  random_cases("a\"\\\n%2AYW=", 2000, 6, 40);
}

static void test_property_every_split(void **state)
{
  static const char *const secrets[] = {"abcab", "cabd", "ss", "ssecret99",
                                        "abab"};
  static const char input[] = "xxabcabdyyssecret99ssecret9abababzzabcab";
  struct ccci_redact_value vals[5];
  size_t i, n = sizeof(input) - 1;
  (void)state;
  for (i = 0; i < 5; i++) {
    vals[i].data = secrets[i];
    vals[i].len = strlen(secrets[i]);
  }
  for (i = 1; i < n; i++)
    run_case(vals, 5, 2, "********", (const unsigned char *)input, n, &i, 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_property_small_alphabet),
      cmocka_unit_test(test_property_mask_chars),
      cmocka_unit_test(test_property_encodings),
      cmocka_unit_test(test_property_every_split),
      cmocka_unit_test(test_property_long_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
