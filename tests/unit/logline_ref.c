/* The log-line encoder as of commit 5827f3f, kept verbatim as the reference
 * the differential test and the fuzzer compare ccci_logline_encode with. */
#include "logline_ref.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* ---- UTF-8, after the Unicode Standard's Table 3-7 ---- */

/* The length of the sequence a byte starts, 0 for bytes that start none:
 * ASCII is handled apart, continuation bytes, the overlong leads C0 and
 * C1, and F5..FF (beyond U+10FFFF) are ill-formed on their own. */
static const uint8_t seq_len[256] = {
    [0xC2 ... 0xDF] = 2,
    [0xE0 ... 0xEF] = 3,
    [0xF0 ... 0xF4] = 4,
};

/* Is @p c a valid second byte after the lead byte @p lead? The narrowed
 * ranges rule out overlongs (E0, F0), surrogates (ED) and code points above
 * U+10FFFF (F4). */
static inline bool second_ok(uint8_t lead, uint8_t c)
{
  switch (lead) {
  case 0xE0:
    return c >= 0xA0 && c <= 0xBF;
  case 0xED:
    return c >= 0x80 && c <= 0x9F;
  case 0xF0:
    return c >= 0x90 && c <= 0xBF;
  case 0xF4:
    return c >= 0x80 && c <= 0x8F;
  default:
    return c >= 0x80 && c <= 0xBF;
  }
}

/* At @p p (@p n > 0 bytes, p[0] >= 0x80): the length of the well-formed
 * sequence that starts there; or 0, with the length of the maximal
 * ill-formed subpart to replace by one U+FFFD in @p bad (at least 1). */
static inline size_t utf8_seq(const uint8_t *p, size_t n, size_t *bad)
{
  size_t want = seq_len[p[0]], i;

  if (want == 0 || n < 2 || !second_ok(p[0], p[1])) {
    *bad = 1;
    return 0;
  }
  for (i = 2; i < want; i++) {
    if (i >= n || (p[i] & 0xC0) != 0x80) {
      *bad = i;
      return 0;
    }
  }
  return want;
}

/* ---- JSON escaping ---- */

/* The short escape of an ASCII byte ('n' for "\n"), 0 for a byte written as
 * it is and 'u' for one written as \u00xx. */
static const char ascii_esc[128] = {
    [0x00 ... 0x07] = 'u', ['\b'] = 'b',  ['\t'] = 't', ['\n'] = 'n',
    [0x0B] = 'u',          ['\f'] = 'f',  ['\r'] = 'r', [0x0E ... 0x1F] = 'u',
    ['"'] = '"',           ['\\'] = '\\', [0x7F] = 'u',
};

static const char hex[] = "0123456789abcdef";

/* The worst case of the line object around `out`: the keys, two 20-digit
 * numbers, the braces and the newline. */
#define FRAME_MAX 66
/* The frame without the digits. */
#define FRAME_FIXED 26
/* An input byte yields at most six output bytes (`\u00xx`). */
#define ESC_MAX 6

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Nonzero when some byte of @p x is zero (no false negatives). */
static inline uint64_t has_zero(uint64_t x)
{
  return (x - ONES) & ~x & HIGHS;
}

/* Nonzero when some byte of the word @p w needs more than a copy: non-ASCII,
 * a control byte, DEL, a quote or a backslash. */
static inline uint64_t needs_work(uint64_t w)
{
  return (w & HIGHS) | has_zero(w & (ONES * 0xE0)) |
         has_zero(w ^ (ONES * '"')) | has_zero(w ^ (ONES * '\\')) |
         has_zero(w ^ (ONES * 0x7F));
}

static inline char *put_u00(char *d, uint8_t c)
{
  d[0] = '\\';
  d[1] = 'u';
  d[2] = '0';
  d[3] = '0';
  d[4] = hex[c >> 4];
  d[5] = hex[c & 0xF];
  return d + 6;
}

/* Write the escaped form of the @p n bytes at @p s to @p d, which has room
 * for ESC_MAX * @p n bytes; returns the end of what was written. */
static char *escape(char *d, const uint8_t *s, size_t n)
{
  size_t i = 0, k, bad;
  uint64_t w;
  uint8_t c;

  while (i < n) {
    /* The common case: eight plain bytes at a time, copied as they are. */
    while (n - i >= 8) {
      memcpy(&w, s + i, 8);
      if (needs_work(w))
        break;
      memcpy(d, &w, 8);
      d += 8;
      i += 8;
    }
    while (i < n && s[i] < 0x80 && ascii_esc[s[i]] == 0)
      *d++ = (char)s[i++];
    if (i == n)
      break;
    c = s[i];
    if (c < 0x80) {
      if (ascii_esc[c] == 'u') {
        d = put_u00(d, c);
      } else {
        d[0] = '\\';
        d[1] = ascii_esc[c];
        d += 2;
      }
      i++;
      continue;
    }
    k = utf8_seq(s + i, n - i, &bad);
    if (k == 0) {
      memcpy(d, "\xEF\xBF\xBD", 3);
      d += 3;
      i += bad;
    } else if (c == 0xC2 && s[i + 1] < 0xA0) {
      d = put_u00(d, s[i + 1]); /* a C1 control */
      i += 2;
    } else {
      memcpy(d, s + i, k);
      d += k;
      i += k;
    }
  }
  return d;
}

/* The exact length of escape()'s output for the @p n bytes at @p s. */
static size_t escaped_len(const uint8_t *s, size_t n)
{
  size_t i = 0, out = 0, k, bad;

  while (i < n) {
    if (s[i] < 0x80) {
      out += ascii_esc[s[i]] == 0 ? 1 : ascii_esc[s[i]] == 'u' ? 6 : 2;
      i++;
      continue;
    }
    k = utf8_seq(s + i, n - i, &bad);
    if (k == 0) {
      out += 3;
      i += bad;
    } else {
      out += s[i] == 0xC2 && s[i + 1] < 0xA0 ? 6 : k;
      i += k;
    }
  }
  return out;
}

static size_t digits(uint64_t v)
{
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

static char *put_u64(char *d, uint64_t v)
{
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0)
    *d++ = tmp[--n];
  return d;
}

static char *put(char *d, const char *s, size_t n)
{
  memcpy(d, s, n);
  return d + n;
}

int ref_logline_encode(struct ccci_buf *b, uint64_t pos, const char *text,
                       size_t len, uint64_t time_s)
{
  const uint8_t *s = (const uint8_t *)text;
  size_t room = b->max > b->len ? b->max - b->len : 0;
  size_t need;
  char *d;

  if (room >= FRAME_MAX && len <= (room - FRAME_MAX) / ESC_MAX) {
    /* The worst case fits: one reservation, no second pass. */
    need = FRAME_MAX + ESC_MAX * len;
  } else {
    /* Near the cap: measure exactly. The output is never shorter than the
     * input, so a line longer than the room fails without a look. */
    if (len > room)
      return -ENOBUFS;
    need = FRAME_FIXED + digits(pos) + digits(time_s) + escaped_len(s, len);
    if (need > room)
      return -ENOBUFS;
  }
  if (ccci_buf_reserve(b, need) < 0)
    return -ENOBUFS;
  d = b->data + b->len;
  d = put(d, "{\"pos\":", 7);
  d = put_u64(d, pos);
  d = put(d, ",\"out\":\"", 8);
  if (len > 0)
    d = escape(d, s, len);
  d = put(d, "\",\"time\":", 9);
  d = put_u64(d, time_s);
  d = put(d, "}\n", 2);
  b->len = (size_t)(d - b->data);
  b->data[b->len] = '\0';
  return 0;
}
