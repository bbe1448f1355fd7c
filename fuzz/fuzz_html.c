/* libFuzzer target: HTML escaping and ANSI spans. The output is valid
 * UTF-8, holds no '<' or '>' but those of our own balanced, unnested
 * spans, no quote, and every '&' starts one of our entities; escaping is
 * the same as ANSI rendering of text without escape sequences. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/util.h"
#include "ccci/http/html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;",
                                       "&#39;"};

static bool valid_utf8(const unsigned char *p, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i], len, k, cp;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
      len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
      len = 4, cp = c & 0x07;
    else
      return false;
    if (i + len > n)
      return false;
    for (k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F))
      return false;
    i += len;
  }
  return true;
}

/* Text with entities only: no control but tab and newline. */
static void check_text(const char *p, size_t n)
{
  size_t i, k;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '<' || c == '>' || c == '"' || c == '\'' || c == 0x7F ||
        (c < 0x20 && c != '\t' && c != '\n'))
      abort();
    if (c != '&')
      continue;
    for (k = 0; k < CCCI_ARRAY_LEN(entities); k++)
      if (strncmp(p + i, entities[k], strlen(entities[k])) == 0)
        break;
    if (k == CCCI_ARRAY_LEN(entities))
      abort();
  }
  if (!valid_utf8((const unsigned char *)p, n))
    abort();
}

/* Spans: `<span class="...">` with a-* classes, then `</span>` before the
 * next one opens and before every newline and the end. */
static void check_spans(const char *p, size_t n)
{
  static const char open[] = "<span class=\"", close[] = "</span>";
  bool in = false;
  size_t i = 0, start = 0;
  while (i < n) {
    if (p[i] == '\n' && in)
      abort();
    if (p[i] != '<') {
      i++;
      continue;
    }
    check_text(p + start, i - start);
    if (!in && strncmp(p + i, open, sizeof(open) - 1) == 0) {
      const char *q = p + i + sizeof(open) - 1;
      const char *e = memchr(q, '"', n - (size_t)(q - p));
      if (e == NULL || e + 1 >= p + n || e[1] != '>' || e == q)
        abort();
      for (; q < e; q++)
        if (!(*q == ' ' || *q == '-' || (*q >= 'a' && *q <= 'z') ||
              (*q >= '0' && *q <= '9')))
          abort();
      in = true;
      i = (size_t)(e - p) + 2;
    } else if (in && strncmp(p + i, close, sizeof(close) - 1) == 0) {
      in = false;
      i += sizeof(close) - 1;
    } else
      abort();
    start = i;
  }
  check_text(p + start, n - start);
  if (in)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_buf esc, ans, small;
  const char *in = (const char *)data;
  bool has_esc = memchr(data, 0x1b, size) != NULL;

  if (size > 64 * 1024)
    return 0;
  ccci_buf_init(&esc, SIZE_MAX);
  ccci_buf_init(&ans, SIZE_MAX);
  if (ccci_html_escape(&esc, in, size) != 0 ||
      ccci_html_ansi(&ans, in, size) != 0)
    abort();
  check_text(esc.data != NULL ? esc.data : "", esc.len);
  check_spans(ans.data != NULL ? ans.data : "", ans.len);
  if (!has_esc && (esc.len != ans.len ||
                   (esc.len != 0 && memcmp(esc.data, ans.data, esc.len) != 0)))
    abort();
  /* A cap too small leaves the buffer as it was. */
  if (ans.len > 0) {
    ccci_buf_init(&small, ans.len);
    if (ccci_buf_append(&small, "x", 1) != 0 ||
        ccci_html_ansi(&small, in, size) != -ENOBUFS || small.len != 1 ||
        small.data[1] != '\0')
      abort();
    ccci_buf_close(&small);
  }
  ccci_buf_close(&esc);
  ccci_buf_close(&ans);
  return 0;
}
