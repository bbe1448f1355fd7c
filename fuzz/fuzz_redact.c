/* libFuzzer target: the streaming redactor; the output is the same for
 * every chunking, and no form of any secret survives in it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/util.h"
#include "ccci/logs/redact.h"

/* Input layout: [count % 5] [min_len - 1 (% 16)] [mask choice, and bit 7:
 * swap], then count times [length % 65] [that many bytes], then the text.
 * With the swap bit, the first half of the secrets (rounded up) is the
 * stream's first set and the rest is swapped in at a text offset. */
#define MAX_SECRETS 4
#define MAX_SECRET 64
#define MAX_TEXT (64u * 1024u)
/* Texts up to this long are also fed one byte per write. */
#define MAX_BYTEWISE 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const masks[] = {CCCI_REDACT_MASK, "*", "#", "[REDACTED]",
                                    "XY"};

struct out {
  char *p;
  size_t len, cap;
};

static void out_put(struct out *o, const char *p, size_t n)
{
  if (n == 0)
    return;
  if (o->len + n > o->cap) {
    size_t c = o->cap ? o->cap : 1024;
    while (c < o->len + n)
      c *= 2;
    o->p = ccci_xrealloc(o->p, c);
    o->cap = c;
  }
  memcpy(o->p + o->len, p, n);
  o->len += n;
}

static uint64_t next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct job {
  struct ccci_redact_set *set, *swap_to; /* swap_to: NULL for none */
  const char *mask;
  const uint8_t *text;
  size_t n, swap_at;
};

static void feed(struct ccci_redact *r, const uint8_t *p, size_t n,
                 uint64_t *seed, size_t max_write, struct out *o)
{
  const char *rel;
  size_t pos = 0, rl;

  while (pos < n) {
    size_t w = max_write ? 1 + next(seed) % max_write : n;
    if (w > n - pos)
      w = n - pos;
    if (ccci_redact_feed(r, p + pos, w, &rel, &rl) != 0)
      abort();
    out_put(o, rel, rl);
    pos += w;
  }
}

/* Feed the text in writes of random sizes in [1, max_write] (@p seed picks
 * them; max_write 0: one write, or two around the swap), then finish. The
 * swap happens at a fixed text offset, so the output does not depend on
 * the writes either. */
static void run(const struct job *j, uint64_t seed, size_t max_write,
                struct out *o)
{
  struct ccci_redact *r = ccci_redact_new(j->set, j->mask);
  size_t at = j->swap_to ? j->swap_at : j->n, rl;
  const char *rel;

  o->len = 0;
  feed(r, j->text, at, &seed, max_write, o);
  if (j->swap_to != NULL && ccci_redact_swap(r, j->swap_to) != 0)
    abort();
  feed(r, j->text + at, j->n - at, &seed, max_write, o);
  if (ccci_redact_finish(r, &rel, &rl) != 0)
    abort();
  out_put(o, rel, rl);
  if (ccci_redact_pending(r) != 0)
    abort();
  ccci_redact_free(r);
}

struct leak_check {
  const struct out *o;
  const char *mask;
  size_t min_len;
  /* For values swapped in: occurrences in the text starting before this
   * may have been released before the swap. */
  const uint8_t *text;
  size_t text_len, before;
};

static size_t count(const void *hay, size_t hn, const void *needle, size_t nn)
{
  const char *h, *end, *f;
  size_t c = 0;
  if (hay == NULL || hn < nn)
    return 0;
  h = hay;
  end = h + hn;
  while ((size_t)(end - h) >= nn &&
         (f = memmem(h, (size_t)(end - h), needle, nn)) != NULL) {
    c++;
    h = f + 1;
  }
  return c;
}

/* A form with no byte of the mask can only appear in the output as plain
 * bytes that were next to each other in the input: an unmasked occurrence.
 * A form with a mask byte could be made up by a mask token; skip it. (So a
 * secret sharing a byte with the mask is skipped for its raw form.) */
static void check_form(const unsigned char *form, size_t len, void *arg)
{
  const struct leak_check *c = arg;
  size_t i, ml = strlen(c->mask), allowed = 0;

  if (len < c->min_len)
    abort(); /* ccci_redact_forms reports only forms of min_len or more */
  for (i = 0; i < len; i++)
    if (memchr(c->mask, form[i], ml) != NULL)
      return;
  if (c->before > 0) {
    size_t upto = c->before + len - 1; /* occurrences starting before */
    allowed =
        count(c->text, upto < c->text_len ? upto : c->text_len, form, len);
  }
  if (count(c->o->p, c->o->len, form, len) > allowed)
    abort();
}

static bool same(const struct out *a, const struct out *b)
{
  return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_redact_value vals[MAX_SECRETS];
  struct out whole = {NULL, 0, 0}, other = {NULL, 0, 0};
  struct leak_check lc;
  struct job j = {NULL, NULL, NULL, NULL, 0, 0};
  size_t nvals, nfirst, min_len, i, pos = 3;
  uint64_t seed = 1469598103934665603ull;

  if (size < 3)
    return 0;
  nvals = data[0] % (MAX_SECRETS + 1);
  min_len = 1 + data[1] % 16;
  j.mask = masks[(data[2] & 0x7f) % (sizeof(masks) / sizeof(masks[0]))];
  for (i = 0; i < nvals; i++) {
    size_t l = pos < size ? data[pos++] % (MAX_SECRET + 1) : 0;
    if (l > size - pos)
      l = size - pos;
    vals[i].data = data + pos;
    vals[i].len = l;
    pos += l;
  }
  j.text = data + pos;
  j.n = size - pos < MAX_TEXT ? size - pos : MAX_TEXT;
  for (i = 0; i < size; i++)
    seed = (seed ^ data[i]) * 1099511628211ull;
  nfirst = data[2] & 0x80 ? (nvals + 1) / 2 : nvals;

  if (ccci_redact_set_new(vals, nfirst, min_len, &j.set) != 0)
    abort();
  if (nfirst < nvals) {
    if (ccci_redact_set_new(vals + nfirst, nvals - nfirst, min_len,
                            &j.swap_to) != 0)
      abort();
    j.swap_at = (size_t)(seed % (j.n + 1));
  }
  /* The whole text in one write (two around a swap), then finish. */
  run(&j, seed, 0, &whole);
  /* Other chunkings: small writes, large ones, single bytes. */
  run(&j, seed, 1 + seed % 16, &other);
  if (!same(&whole, &other))
    abort();
  run(&j, seed ^ 0x5555, 4096, &other);
  if (!same(&whole, &other))
    abort();
  if (j.n <= MAX_BYTEWISE) {
    run(&j, seed, 1, &other);
    if (!same(&whole, &other))
      abort();
  }
  /* No form of any secret is left in the output (for values swapped in,
   * none beyond the occurrences that started before the swap). */
  lc.o = &whole;
  lc.mask = j.mask;
  lc.min_len = min_len;
  lc.text = j.text;
  lc.text_len = j.n;
  for (i = 0; i < nvals; i++) {
    lc.before = i < nfirst ? 0 : j.swap_at;
    ccci_redact_forms(vals[i].data, vals[i].len, min_len, check_form, &lc);
  }
  ccci_redact_set_unref(j.set);
  ccci_redact_set_unref(j.swap_to);
  free(whole.p);
  free(other.p);
  return 0;
}
