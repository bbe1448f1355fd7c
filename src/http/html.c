/* HTML escaping and terminal colours as spans (docs/http.md, "Pages"). Pure:
 * no I/O, fuzzed by fuzz/fuzz_html.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ccci/http/html.h"

/* ---- escaping ---- */

/*
 * The length of the well-formed UTF-8 sequence at @p p (at most @p len
 * bytes), or 0 when it is ill-formed; then @p bad gets the length of its
 * maximal subpart (at least 1), which becomes one U+FFFD, as Python's
 * decode('utf-8', errors='replace') does.
 */
static size_t utf8_seq(const unsigned char *p, size_t len, size_t *bad,
                       uint32_t *cp)
{
  unsigned char c = p[0], lo = 0x80, hi = 0xBF;
  size_t n, i;

  *bad = 1;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  *cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (i = 1; i < n; i++) {
    if (i >= len || p[i] < lo || p[i] > hi) {
      *bad = i;
      return 0;
    }
    *cp = (*cp << 6) | (p[i] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return n;
}

/* Escape into @p b without rolling back (the callers do). */
static int escape(struct ccci_buf *b, const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0;
  int rc;

  /* Plain bytes are copied in runs; the rest one at a time. */
  while (i < len) {
    const char *rep = NULL;
    size_t n, bad, skip;
    uint32_t cp;

    n = utf8_seq(p + i, len - i, &bad, &cp);
    if (n == 1) {
      switch (p[i]) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      case '"':
        rep = "&quot;";
        break;
      case '\'':
        rep = "&#39;";
        break;
      case '\t':
      case '\n':
        break;
      default:
        if (p[i] < 0x20 || p[i] == 0x7F)
          rep = "";
      }
    } else if (n == 0)
      rep = "\xEF\xBF\xBD";
    else if (cp >= 0x80 && cp <= 0x9F)
      rep = ""; /* C1 controls */
    skip = n != 0 ? n : bad;
    if (rep == NULL) {
      run += skip;
      i += skip;
      continue;
    }
    rc = ccci_buf_append(b, p + i - run, run);
    if (rc == 0)
      rc = ccci_buf_append(b, rep, strlen(rep));
    if (rc < 0)
      return rc;
    run = 0;
    i += skip;
  }
  return ccci_buf_append(b, p + i - run, run);
}

int ccci_html_escape(struct ccci_buf *b, const char *p, size_t len)
{
  size_t start = b->len;
  int rc = escape(b, p, len);
  if (rc < 0 && b->data != NULL) {
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}

int ccci_html_escape_str(struct ccci_buf *b, const char *s)
{
  return ccci_html_escape(b, s, strlen(s));
}

/* ---- ANSI SGR ---- */

/* The style of the text: what a span's classes say. */
struct style {
  bool bold, dim, italic, underline;
  int fg, bg; /* 0..15, or -1: the page's own */
};

static const struct style plain = {false, false, false, false, -1, -1};

static bool style_eq(const struct style *a, const struct style *b)
{
  return a->bold == b->bold && a->dim == b->dim && a->italic == b->italic &&
         a->underline == b->underline && a->fg == b->fg && a->bg == b->bg;
}

/* xterm's default 16 colours, the targets of 256-colour and true colour. */
static const unsigned char palette[16][3] = {
    {0x00, 0x00, 0x00}, {0xcd, 0x00, 0x00}, {0x00, 0xcd, 0x00},
    {0xcd, 0xcd, 0x00}, {0x00, 0x00, 0xee}, {0xcd, 0x00, 0xcd},
    {0x00, 0xcd, 0xcd}, {0xe5, 0xe5, 0xe5}, {0x7f, 0x7f, 0x7f},
    {0xff, 0x00, 0x00}, {0x00, 0xff, 0x00}, {0xff, 0xff, 0x00},
    {0x5c, 0x5c, 0xff}, {0xff, 0x00, 0xff}, {0x00, 0xff, 0xff},
    {0xff, 0xff, 0xff},
};

static int nearest16(long r, long g, long bl)
{
  long best = -1;
  int i, pick = 0;
  for (i = 0; i < 16; i++) {
    long dr = r - palette[i][0], dg = g - palette[i][1],
         db = bl - palette[i][2];
    long d = dr * dr + dg * dg + db * db;
    if (best < 0 || d < best) {
      best = d;
      pick = i;
    }
  }
  return pick;
}

/* Colour @p n of the 256-colour palette as one of the 16. */
static int from256(long n)
{
  static const unsigned char level[6] = {0, 0x5f, 0x87, 0xaf, 0xd7, 0xff};
  long g;
  if (n < 16)
    return (int)n;
  if (n < 232) {
    n -= 16;
    return nearest16(level[n / 36], level[(n / 6) % 6], level[n % 6]);
  }
  g = 8 + (n - 232) * 10;
  return nearest16(g, g, g);
}

/* SGR parameters: groups split by ';', each with sub-parameters split by
 * ':'. -1 is an empty field. */
#define SGR_MAX 32
struct sgr {
  long v[SGR_MAX];
  bool sub[SGR_MAX]; /* v[i] followed v[i-1] after a ':' */
  size_t n;
};

static void sgr_parse(const char *p, size_t len, struct sgr *s)
{
  size_t i;
  long cur = -1;
  bool sub = false;
  s->n = 0;
  for (i = 0; i <= len; i++) {
    char c = i < len ? p[i] : ';';
    if (c >= '0' && c <= '9') {
      if (cur < 0)
        cur = 0;
      if (cur < 100000)
        cur = cur * 10 + (c - '0');
      continue;
    }
    if (s->n < SGR_MAX) {
      s->v[s->n] = cur;
      s->sub[s->n] = sub;
      s->n++;
    }
    cur = -1;
    sub = c == ':';
  }
}

/*
 * An extended colour (38/48) starting at group @p i: its colour (0..15, or
 * -1 when malformed) and how many fields it took after the 38/48.
 */
static int sgr_colour(const struct sgr *s, size_t i, size_t *used)
{
  size_t j = i + 1, k;
  long mode, c[3];
  bool colon = j < s->n && s->sub[j];

  *used = 0;
  if (j >= s->n)
    return -1;
  mode = s->v[j];
  if (mode == 5) {
    *used = 2;
    if (j + 1 >= s->n || s->v[j + 1] < 0 || s->v[j + 1] > 255)
      return -1;
    return from256(s->v[j + 1]);
  }
  if (mode != 2) {
    *used = 1;
    return -1;
  }
  /* 38;2;r;g;b, or 38:2:r:g:b, or 38:2:<colour space>:r:g:b. */
  k = j + 1;
  if (colon) {
    size_t m = k;
    while (m < s->n && s->sub[m])
      m++;
    if (m - k >= 4)
      k++;
  }
  *used = k - i - 1 + 3;
  if (k + 2 >= s->n)
    return -1;
  for (size_t t = 0; t < 3; t++) {
    c[t] = s->v[k + t] < 0 ? 0 : s->v[k + t];
    if (c[t] > 255)
      return -1;
  }
  return nearest16(c[0], c[1], c[2]);
}

static void sgr_apply(const struct sgr *s, struct style *st)
{
  size_t i = 0;
  if (s->n == 0) {
    *st = plain;
    return;
  }
  while (i < s->n) {
    long v = s->v[i] < 0 ? 0 : s->v[i];
    size_t used = 0;
    int col;

    if (i > 0 && s->sub[i]) {
      i++; /* a stray sub-parameter */
      continue;
    }
    if (v == 0)
      *st = plain;
    else if (v == 1)
      st->bold = true;
    else if (v == 2)
      st->dim = true;
    else if (v == 3)
      st->italic = true;
    else if (v == 4)
      /* 4:0 is "no underline"; 4:1..4:5 are underline styles. */
      st->underline = !(i + 1 < s->n && s->sub[i + 1] && s->v[i + 1] == 0);
    else if (v == 21)
      st->underline = true;
    else if (v == 22)
      st->bold = st->dim = false;
    else if (v == 23)
      st->italic = false;
    else if (v == 24)
      st->underline = false;
    else if (v >= 30 && v <= 37)
      st->fg = (int)(v - 30);
    else if (v == 39)
      st->fg = -1;
    else if (v >= 40 && v <= 47)
      st->bg = (int)(v - 40);
    else if (v == 49)
      st->bg = -1;
    else if (v >= 90 && v <= 97)
      st->fg = (int)(v - 90 + 8);
    else if (v >= 100 && v <= 107)
      st->bg = (int)(v - 100 + 8);
    else if (v == 38 || v == 48) {
      col = sgr_colour(s, i, &used);
      if (col >= 0) {
        if (v == 38)
          st->fg = col;
        else
          st->bg = col;
      }
    }
    i += 1 + used;
    /* Skip the rest of a colon group. */
    while (i < s->n && s->sub[i])
      i++;
  }
}

static int span_open(struct ccci_buf *b, const struct style *st)
{
  char cls[64];
  size_t n = 0;
  if (st->bold)
    n += (size_t)snprintf(cls + n, sizeof(cls) - n, " a-b");
  if (st->dim)
    n += (size_t)snprintf(cls + n, sizeof(cls) - n, " a-d");
  if (st->italic)
    n += (size_t)snprintf(cls + n, sizeof(cls) - n, " a-i");
  if (st->underline)
    n += (size_t)snprintf(cls + n, sizeof(cls) - n, " a-u");
  if (st->fg >= 0)
    n += (size_t)snprintf(cls + n, sizeof(cls) - n, " a-f%d", st->fg);
  if (st->bg >= 0)
    n += (size_t)snprintf(cls + n, sizeof(cls) - n, " a-g%d", st->bg);
  return ccci_buf_printf(b, "<span class=\"%s\">", cls + 1);
}

/* The text so far, in the style @p want: the open span (if any, in
 * style @p *open) closes when the style changes. */
struct ansi {
  struct ccci_buf *b;
  struct style want, open;
  bool in_span;
};

static int ansi_text(struct ansi *a, const char *p, size_t n)
{
  int rc;
  if (n == 0)
    return 0;
  if (a->in_span && !style_eq(&a->want, &a->open)) {
    rc = ccci_buf_append(a->b, "</span>", 7);
    if (rc < 0)
      return rc;
    a->in_span = false;
  }
  if (!a->in_span && !style_eq(&a->want, &plain)) {
    rc = span_open(a->b, &a->want);
    if (rc < 0)
      return rc;
    a->open = a->want;
    a->in_span = true;
  }
  return escape(a->b, p, n);
}

static int ansi_close(struct ansi *a)
{
  if (!a->in_span)
    return 0;
  a->in_span = false;
  return ccci_buf_append(a->b, "</span>", 7);
}

/*
 * The escape sequence at @p p[0] == ESC: its length in @p len bytes (to the
 * end when it is not terminated). An SGR sequence (CSI ... m without a
 * private marker) is applied to @p st.
 */
static size_t ansi_seq(const char *p, size_t len, struct style *st)
{
  size_t i;
  unsigned char c;

  if (len < 2)
    return len;
  c = (unsigned char)p[1];
  if (c == '[') {
    /* CSI: parameter bytes 0x30-0x3F, intermediates 0x20-0x2F, a final
     * byte 0x40-0x7E. Anything else ends it unterminated (dropped). */
    for (i = 2; i < len; i++) {
      unsigned char d = (unsigned char)p[i];
      if (d >= 0x40 && d <= 0x7E) {
        if (d == 'm' && (i == 2 || (p[2] >= '0' && p[2] <= ';'))) {
          struct sgr s;
          bool ok = true;
          size_t k;
          for (k = 2; k < i; k++)
            if (!((p[k] >= '0' && p[k] <= '9') || p[k] == ';' || p[k] == ':'))
              ok = false;
          if (ok) {
            sgr_parse(p + 2, i - 2, &s);
            sgr_apply(&s, st);
          }
        }
        return i + 1;
      }
      if (d < 0x20 || d > 0x3F)
        return i;
    }
    return len;
  }
  if (c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X') {
    /* OSC, DCS, APC, PM, SOS: a string to BEL (OSC) or ST (ESC \). */
    for (i = 2; i < len; i++) {
      if (p[i] == '\a' && c == ']')
        return i + 1;
      if (p[i] == '\x1b' && i + 1 < len && p[i + 1] == '\\')
        return i + 2;
    }
    return len;
  }
  /* ESC, intermediates 0x20-0x2F, a final byte 0x30-0x7E (charsets, ...). */
  for (i = 1; i < len; i++) {
    unsigned char d = (unsigned char)p[i];
    if (d >= 0x30 && d <= 0x7E)
      return i + 1;
    if (d < 0x20 || d > 0x2F)
      return i;
  }
  return len;
}

static int ansi(struct ccci_buf *b, const char *p, size_t len)
{
  struct ansi a = {b, plain, plain, false};
  size_t i = 0, start = 0;
  int rc;

  while (i < len) {
    if (p[i] == '\n') {
      /* Spans close at a line's end; the style goes on after it. */
      rc = ansi_text(&a, p + start, i - start);
      if (rc == 0)
        rc = ansi_close(&a);
      if (rc == 0)
        rc = ccci_buf_append(b, "\n", 1);
      if (rc < 0)
        return rc;
      start = ++i;
      continue;
    }
    if (p[i] != '\x1b') {
      i++;
      continue;
    }
    rc = ansi_text(&a, p + start, i - start);
    if (rc < 0)
      return rc;
    i += ansi_seq(p + i, len - i, &a.want);
    start = i;
  }
  rc = ansi_text(&a, p + start, i - start);
  if (rc == 0)
    rc = ansi_close(&a);
  return rc;
}

int ccci_html_ansi(struct ccci_buf *b, const char *p, size_t len)
{
  size_t start = b->len;
  int rc = ansi(b, p, len);
  if (rc < 0 && b->data != NULL) {
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}
