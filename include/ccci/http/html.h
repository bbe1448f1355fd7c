/* HTML for the pages: escaping of every byte from outside, and terminal
 * colours (ANSI SGR sequences) as spans (docs/http.md). */
#ifndef CCCI_HTML_H
#define CCCI_HTML_H

#include <stddef.h>

#include "ccci/core/util.h"

/**
 * Append @p len bytes at @p p to @p b, escaped for HTML text and for a
 * quoted attribute value (& < > " '). Bytes that are not valid UTF-8 become
 * U+FFFD, control bytes other than tab and newline are dropped. Returns 0 or
 * -ENOBUFS (the buffer's cap).
 */
int ccci_html_escape(struct ccci_buf *b, const char *p, size_t len) CCCI_WUR;

/** ccci_html_escape of a NUL-terminated string. */
int ccci_html_escape_str(struct ccci_buf *b, const char *s) CCCI_WUR;

/**
 * Append one log line's text, escaped, with its ANSI SGR colour and style
 * sequences as `<span class="...">` (classes documented in docs/http.md:
 * `a-b` bold, `a-f<n>`/`a-g<n>` foreground/background 0..15, 256-colour and
 * true colour mapped to the nearest of those); every other escape
 * sequence is dropped. Spans are balanced within the line. Returns 0 or
 * -ENOBUFS.
 */
int ccci_html_ansi(struct ccci_buf *b, const char *p, size_t len) CCCI_WUR;

#endif
