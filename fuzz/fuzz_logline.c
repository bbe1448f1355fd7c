/* libFuzzer target: the log-line encoder, the UTF-8-safe cut and markers. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccci/logs/logline.h"
#include "logline_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The length of the well-formed UTF-8 sequence at @p s (@p n > 0 bytes) by
 * the Unicode Table 3-7, or 0 when it is ill-formed there. */
static size_t well_formed(const uint8_t *s, size_t n)
{
  uint8_t c = s[0], lo = 0x80, hi = 0xBF;
  size_t want, k;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    want = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    want = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    want = 4;
  else
    return 0;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (n < want || s[1] < lo || s[1] > hi)
    return 0;
  for (k = 2; k < want; k++)
    if (s[k] < 0x80 || s[k] > 0xBF)
      return 0;
  return want;
}

/* The cut is within bounds, splits no well-formed sequence unless it must
 * (one would start at 0) and backs off no further than it has to. */
static void check_cut(const uint8_t *s, size_t n, size_t max)
{
  size_t got = ccci_logline_cut((const char *)s, n, max), i, w, start;
  if (max == 0)
    max = 1;
  if (n <= max) {
    if (got != n)
      abort();
    return;
  }
  if (got == 0 || got > max)
    abort();
  start = max;
  for (i = 0; i < max; i += w ? w : 1) {
    w = well_formed(s + i, n - i);
    if (w > 1 && i + w > max)
      start = i;
  }
  if (got != (start == 0 ? max : start))
    abort();
}

static void check_marker(const uint8_t *s, size_t n)
{
  char name[CCCI_LOGLINE_NAME_MAX + 1];
  size_t len, i;
  if (ccci_logline_marker((const char *)s, n, name) != 1)
    return;
  len = strlen(name);
  if (len == 0 || len > CCCI_LOGLINE_NAME_MAX || n < len + 9 ||
      memcmp(s, "~~~ step ", 9) != 0 || memcmp(s + 9, name, len) != 0)
    abort();
  for (i = 0; i < len; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') ||
          (name[i] >= '0' && name[i] <= '9') ||
          (i > 0 && strchr("_.-", name[i]) != NULL)))
      abort();
}

/* Encode, and return the parsed `out` string (a new reference). */
static json_t *encode_and_parse(struct ccci_buf *b, uint64_t pos,
                                const char *text, size_t len, uint64_t t)
{
  json_error_t je;
  json_t *j, *out;

  ccci_buf_init(b, 16 * CCCI_LOGLINE_MAX * 8);
  if (ccci_logline_encode(b, pos, text, len, t) != 0)
    abort();
  /* One line: a single newline, at the end; keys in the documented order. */
  if (b->len == 0 || b->data[b->len - 1] != '\n' ||
      memchr(b->data, '\n', b->len - 1) != NULL ||
      memcmp(b->data, "{\"pos\":", 7) != 0)
    abort();
  j = json_loadb(b->data, b->len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
  if (j == NULL || !json_is_object(j) || json_object_size(j) != 3 ||
      json_integer_value(json_object_get(j, "pos")) != (json_int_t)pos ||
      json_integer_value(json_object_get(j, "time")) != (json_int_t)t)
    abort();
  out = json_object_get(j, "out");
  if (!json_is_string(out))
    abort();
  json_incref(out);
  json_decref(j);
  return out;
}

/* Encode with the encoder and the reference into buffers capped at @p max
 * that hold @p prefix bytes already; abort unless the results, contents and
 * terminators are identical. The text is a heap copy of exactly @p n bytes,
 * so ASan sees any read past its end. Returns the length of the line. */
static size_t diff_one(const uint8_t *text, size_t n, uint64_t pos, uint64_t t,
                       size_t prefix, size_t max)
{
  struct ccci_buf got, want;
  char *copy = malloc(n > 0 ? n : 1);
  size_t i, line;
  int rg, rw;
  if (copy == NULL)
    abort();
  if (n > 0)
    memcpy(copy, text, n);
  ccci_buf_init(&got, max);
  ccci_buf_init(&want, max);
  for (i = 0; i < prefix; i++)
    if (ccci_buf_append(&got, "p", 1) != 0 ||
        ccci_buf_append(&want, "p", 1) != 0)
      abort();
  rw = ref_logline_encode(&want, pos, copy, n, t);
  rg = ccci_logline_encode(&got, pos, copy, n, t);
  if (rg != rw || got.len != want.len ||
      (want.len > 0 && (memcmp(got.data, want.data, want.len) != 0 ||
                        got.data[got.len] != '\0')))
    abort();
  line = want.len - prefix;
  ccci_buf_close(&got);
  ccci_buf_close(&want);
  free(copy);
  return line;
}

/* The encoder against the reference: uncapped, at the exact size, one byte
 * short, around the worst-case reservation, and at a cap the input picks. */
static void check_diff(const uint8_t *data, size_t size)
{
  uint64_t pos = 0, t = 0;
  size_t prefix = size > 0 ? data[size - 1] % 24 : 0, line, worst;
  size_t i;
  for (i = 0; i < 8 && i < size; i++)
    pos = pos << 8 | data[i];
  for (i = 8; i < 16 && i < size; i++)
    t = t << 8 | data[i];
  pos >>= size % 64;
  line = diff_one(data, size, pos, t, prefix, SIZE_MAX / 2);
  (void)diff_one(data, size, pos, t, prefix, prefix + line);
  (void)diff_one(data, size, pos, t, prefix, prefix + line - 1);
  worst = prefix + 66 + 6 * size;
  (void)diff_one(data, size, pos, t, prefix, worst);
  (void)diff_one(data, size, pos, t, prefix, worst - 1);
  if (size >= 2)
    (void)diff_one(data, size, pos, t, prefix,
                   prefix + ((size_t)data[0] << 8 | data[1]) % (line + 8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_buf b1, b2;
  json_t *o1, *o2;
  uint64_t pos = size, t = size > 0 ? data[0] : 0;

  if (size > 4 * CCCI_LOGLINE_MAX)
    return 0;
  check_diff(data, size);
  o1 = encode_and_parse(&b1, pos, (const char *)data, size, t);
  /* Idempotence: the decoded text is valid UTF-8 and encodes the same. */
  o2 = encode_and_parse(&b2, pos, json_string_value(o1), json_string_length(o1),
                        t);
  if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0 ||
      !json_equal(o1, o2))
    abort();
  json_decref(o1);
  json_decref(o2);
  ccci_buf_close(&b1);
  ccci_buf_close(&b2);

  check_cut(data, size, 0);
  check_cut(data, size, 1);
  check_cut(data, size, 2);
  check_cut(data, size, 3);
  check_cut(data, size, 4);
  if (size >= 2) {
    check_cut(data, size, size - 1);
    check_cut(data, size, 1 + ((size_t)data[0] | (size_t)data[1] << 8) % size);
  }
  check_marker(data, size);
  return 0;
}
