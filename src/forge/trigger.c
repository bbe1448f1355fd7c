/* The `!testme` grammar (CommonMark lines and fences) and the results
 * comment's marker. */
#include "ccci/forge/trigger.h"

#include <stdbool.h>
#include <string.h>

/* ---- the trigger grammar ---- */

static bool is_blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r';
}

/* Leading spaces of the line, or 4 when there are more than 3 or a tab comes
 * first (CommonMark: a tab indents to column 4, too deep for a fence). */
static size_t fence_indent(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n && i < 4 && s[i] == ' ')
    i++;
  if (i < n && i < 4 && s[i] == '\t')
    return 4;
  return i;
}

/* The length of the run of @p c at the start of @p s. */
static size_t run_of(const char *s, size_t n, char c)
{
  size_t i = 0;
  while (i < n && s[i] == c)
    i++;
  return i;
}

/* Does the line open a fence? Sets its character and length. */
static bool fence_open(const char *s, size_t n, char *fc, size_t *fl)
{
  size_t i = fence_indent(s, n), k;
  char c;

  if (i > 3 || i >= n || (s[i] != '`' && s[i] != '~'))
    return false;
  c = s[i];
  k = run_of(s + i, n - i, c);
  if (k < 3)
    return false;
  if (c == '`' && memchr(s + i + k, '`', n - i - k) != NULL)
    return false; /* a backtick in the info string: inline code, no fence */
  *fc = c;
  *fl = k;
  return true;
}

/* Does the line close the fence of @p fl characters @p fc? */
static bool fence_close(const char *s, size_t n, char fc, size_t fl)
{
  size_t i = fence_indent(s, n), k;

  if (i > 3)
    return false;
  k = run_of(s + i, n - i, fc);
  if (k < fl)
    return false;
  for (i += k; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t')
      return false;
  return true;
}

/* The trigger of one line outside any fence. */
static enum ccci_forge_trigger line_trigger(const char *s, size_t n)
{
  static const char full[] = "!testme", quick[] = "!testme --quick";

  while (n > 0 && is_blank(s[0])) {
    s++;
    n--;
  }
  while (n > 0 && is_blank(s[n - 1]))
    n--;
  if (n == sizeof(full) - 1 && memcmp(s, full, n) == 0)
    return CCCI_FORGE_TRIGGER_TESTME;
  if (n == sizeof(quick) - 1 && memcmp(s, quick, n) == 0)
    return CCCI_FORGE_TRIGGER_TESTME_QUICK;
  return CCCI_FORGE_TRIGGER_NONE;
}

enum ccci_forge_trigger ccci_forge_trigger(const char *body, size_t len)
{
  size_t start = 0, end, fl = 0;
  char fc = 0;
  bool in_fence = false;
  enum ccci_forge_trigger t;

  while (start < len) {
    /* CommonMark line endings: LF, CR, CRLF. */
    for (end = start; end < len && body[end] != '\n' && body[end] != '\r';)
      end++;
    if (in_fence) {
      if (fence_close(body + start, end - start, fc, fl))
        in_fence = false;
    } else if (fence_open(body + start, end - start, &fc, &fl)) {
      in_fence = true;
    } else {
      t = line_trigger(body + start, end - start);
      if (t != CCCI_FORGE_TRIGGER_NONE)
        return t;
    }
    if (end + 1 < len && body[end] == '\r' && body[end + 1] == '\n')
      end++;
    start = end + 1;
  }
  return CCCI_FORGE_TRIGGER_NONE;
}

/* ---- the results comment's marker ---- */

const char *ccci_forge_marker(void)
{
  return CCCI_FORGE_MARKER;
}

bool ccci_forge_has_marker(const char *body, size_t len)
{
  return body != NULL && memmem(body, len, CCCI_FORGE_MARKER,
                                sizeof(CCCI_FORGE_MARKER) - 1) != NULL;
}
