/* Drone-format log lines: step markers, UTF-8-safe cuts and the encoder. */
#include "ccci/logs/logline.h"

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

/* Is the byte @p c copied as it is (printable ASCII but '"' and '\\')? */
static inline bool plain(uint8_t c)
{
  return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

/* The copy loops below store whole blocks and may write up to @p n bytes at
 * @p d before they know how many of them are plain: that is safe because
 * the escaped form of @p n input bytes is never shorter than @p n bytes (an
 * ill-formed byte becomes three), so the rest of the line overwrites them. */

#if defined(__SSE2__)
#include <emmintrin.h>

/* Bit j set when byte j of @p v needs more than a copy. Adding one moves
 * DEL to 0x80 and 0xFF to 0, so one signed compare catches the C0 controls,
 * DEL and every byte >= 0x80. */
static inline unsigned block_work(__m128i v)
{
  __m128i w =
      _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(1)), _mm_set1_epi8(0x21));
  w = _mm_or_si128(w, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
  w = _mm_or_si128(w, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
  return (unsigned)_mm_movemask_epi8(w);
}

/* Copy the plain bytes that start the @p n bytes at @p s to @p d (see the
 * note above on what else may be written) and return their count. */
static inline size_t copy_plain(char *d, const uint8_t *s, size_t n)
{
  size_t k = 0, j;
  uint32_t a, z;
  unsigned m;
  __m128i v, v2;

  if (n >= 16) {
    /* Two blocks a turn: one branch for 32 plain bytes. */
    for (; n - k >= 32; k += 32) {
      v = _mm_loadu_si128((const __m128i *)(const void *)(s + k));
      v2 = _mm_loadu_si128((const __m128i *)(const void *)(s + k + 16));
      _mm_storeu_si128((__m128i *)(void *)(d + k), v);
      _mm_storeu_si128((__m128i *)(void *)(d + k + 16), v2);
      m = block_work(v) | block_work(v2) << 16;
      if (m != 0)
        return k + (size_t)__builtin_ctz(m);
    }
    for (; n - k >= 16; k += 16) {
      v = _mm_loadu_si128((const __m128i *)(const void *)(s + k));
      _mm_storeu_si128((__m128i *)(void *)(d + k), v);
      m = block_work(v);
      if (m != 0)
        return k + (size_t)__builtin_ctz(m);
    }
    if (k == n)
      return n;
    /* The tail, as the last 16 bytes: their first 16 - (n - k) bytes are
     * plain and were copied already, so storing them again is harmless,
     * and the final '\n' of a line needs no byte loop. */
    v = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
    _mm_storeu_si128((__m128i *)(void *)(d + n - 16), v);
    m = block_work(v) >> (16 - (n - k));
    return m != 0 ? k + (size_t)__builtin_ctz(m) : n;
  }
  if (n >= 8) {
    /* The first and the last 8 bytes, overlapping, as one block. */
    v = _mm_unpacklo_epi64(
        _mm_loadl_epi64((const __m128i *)(const void *)s),
        _mm_loadl_epi64((const __m128i *)(const void *)(s + n - 8)));
    _mm_storel_epi64((__m128i *)(void *)d, v);
    _mm_storel_epi64((__m128i *)(void *)(d + n - 8), _mm_unpackhi_epi64(v, v));
    m = block_work(v);
    if ((m & 0xFF) != 0)
      return (size_t)__builtin_ctz(m);
    return m != 0 ? n - 8 + (size_t)__builtin_ctz(m >> 8) : n;
  }
  if (n >= 4) {
    /* The same with the first and the last 4 bytes. */
    memcpy(&a, s, 4);
    memcpy(&z, s + n - 4, 4);
    memcpy(d, &a, 4);
    memcpy(d + n - 4, &z, 4);
    m = block_work(_mm_unpacklo_epi32(_mm_cvtsi32_si128((int)a),
                                      _mm_cvtsi32_si128((int)z))) &
        0xFF;
    if ((m & 0xF) != 0)
      return (size_t)__builtin_ctz(m);
    return m != 0 ? n - 4 + (size_t)__builtin_ctz(m >> 4) : n;
  }
  for (j = 0; j < n && plain(s[j]); j++)
    d[j] = (char)s[j];
  return j;
}

#else /* a portable word at a time */

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

static inline size_t copy_plain(char *d, const uint8_t *s, size_t n)
{
  size_t k = 0;
  uint64_t w;

  for (; n - k >= 8; k += 8) {
    memcpy(&w, s + k, 8);
    if (needs_work(w))
      break;
    memcpy(d + k, &w, 8);
  }
  for (; k < n && plain(s[k]); k++)
    d[k] = (char)s[k];
  return k;
}
#endif

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
  uint8_t c;

  for (;;) {
    k = copy_plain(d, s + i, n - i);
    d += k;
    i += k;
    /* A run of bytes that need work (escapes and non-ASCII text) and of
     * lone plain bytes among them. */
    while (i < n) {
      c = s[i];
      if (plain(c)) {
        /* A lone plain byte between two that need work (a space in
         * text) costs less here than a block. */
        if (n - i < 2 || plain(s[i + 1]))
          break;
        *d++ = (char)c;
        i++;
        continue;
      }
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
        if (n - i >= 4)
          memcpy(d, s + i, 4); /* one fixed-size move; see copy_plain */
        else
          memcpy(d, s + i, k);
        d += k;
        i += k;
      }
    }
    if (i == n)
      return d;
  }
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

static const uint64_t ten_pow[20] = {
    UINT64_C(1),
    UINT64_C(10),
    UINT64_C(100),
    UINT64_C(1000),
    UINT64_C(10000),
    UINT64_C(100000),
    UINT64_C(1000000),
    UINT64_C(10000000),
    UINT64_C(100000000),
    UINT64_C(1000000000),
    UINT64_C(10000000000),
    UINT64_C(100000000000),
    UINT64_C(1000000000000),
    UINT64_C(10000000000000),
    UINT64_C(100000000000000),
    UINT64_C(1000000000000000),
    UINT64_C(10000000000000000),
    UINT64_C(100000000000000000),
    UINT64_C(1000000000000000000),
    UINT64_C(10000000000000000000),
};

/* The number of decimal digits of @p v: log10 from the bit length
 * (1233 / 4096 is just above log10(2)), corrected by one compare. Setting
 * the low bit changes no count and gives 0 its one digit. */
static inline size_t digits(uint64_t v)
{
  uint64_t w = v | 1;
  size_t t = ((size_t)(64 - __builtin_clzll(w)) * 1233) >> 12;
  return t + (w >= ten_pow[t]);
}

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* Write @p v in decimal, two digits at a time from the end. */
static inline char *put_u64(char *d, uint64_t v)
{
  size_t n = digits(v);
  char *e = d + n;

  while (v >= 100) {
    e -= 2;
    memcpy(e, digit_pairs + 2 * (v % 100), 2);
    v /= 100;
  }
  if (v >= 10)
    memcpy(e - 2, digit_pairs + 2 * v, 2);
  else
    e[-1] = (char)('0' + v);
  return d + n;
}

static inline char *put(char *d, const char *s, size_t n)
{
  memcpy(d, s, n);
  return d + n;
}

int ccci_logline_encode(struct ccci_buf *b, uint64_t pos, const char *text,
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
  /* need <= room, so only growth can be left to do (the buffer keeps one
   * byte past its length for the NUL). */
  if (b->data == NULL || b->cap - b->len <= need) {
    if (ccci_buf_reserve(b, need) < 0)
      return -ENOBUFS;
  }
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

/* ---- markers and cuts ---- */

int ccci_logline_marker(const char *line, size_t len,
                        char name[CCCI_LOGLINE_NAME_MAX + 1])
{
  static const char prefix[] = "~~~ step ";
  const size_t plen = sizeof(prefix) - 1;
  size_t n, i;
  char c;

  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len <= plen || memcmp(line, prefix, plen) != 0)
    return 0;
  n = len - plen;
  if (n > CCCI_LOGLINE_NAME_MAX)
    return 0;
  for (i = 0; i < n; i++) {
    c = line[plen + i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      continue;
    if (i > 0 && (c == '_' || c == '.' || c == '-'))
      continue;
    return 0;
  }
  memcpy(name, line + plen, n);
  name[n] = '\0';
  return 1;
}

size_t ccci_logline_cut(const char *text, size_t len, size_t max)
{
  const uint8_t *s = (const uint8_t *)text;
  size_t k, start, bad;

  if (max == 0)
    max = 1;
  if (len <= max)
    return len;
  /* Only a well-formed sequence that starts at most three bytes before the
   * cut can straddle it; look back over continuation bytes for its lead. */
  for (k = 1; k <= 3 && k <= max; k++) {
    if ((s[max - k] & 0xC0) == 0x80)
      continue;
    start = max - k;
    if (s[start] >= 0x80 && utf8_seq(s + start, len - start, &bad) > k &&
        start > 0)
      return start;
    return max;
  }
  return max;
}
