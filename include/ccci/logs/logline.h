/* Drone-format log lines: step markers, UTF-8-safe cuts and the encoder. */
#ifndef CCCI_LOGLINE_H
#define CCCI_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

#include "ccci/core/util.h"

/** A line longer than this many bytes (before escaping) is cut in pieces. */
#define CCCI_LOGLINE_MAX (64 * 1024)
/** Longest step name a marker can carry (the buffer needs one more byte). */
#define CCCI_LOGLINE_NAME_MAX 32

/**
 * Is the line of @p len bytes at @p line (given without its trailing '\n')
 * a step marker, exactly `^~~~ step ([a-z0-9][a-z0-9_.-]{0,31})\r?$`?
 * Returns 1 and the step name, NUL-terminated, in @p name; otherwise 0 and
 * @p name is left untouched. Case-sensitive; no other blanks are allowed.
 */
int ccci_logline_marker(const char *line, size_t len,
                        char name[CCCI_LOGLINE_NAME_MAX + 1]);

/**
 * The length of the first piece of a line of @p len raw bytes (before
 * escaping, with its '\n' if it has one) when pieces hold at most @p max
 * bytes: @p len when it fits, otherwise the largest n <= @p max that does
 * not split a well-formed UTF-8 sequence. Ill-formed bytes may be cut
 * anywhere. Never 0 for @p len > 0: when backing off would leave nothing
 * (@p max < 4), the result is @p max; a @p max of 0 counts as 1.
 */
size_t ccci_logline_cut(const char *text, size_t len, size_t max);

/**
 * Append one line object `{"pos":N,"out":"...","time":S}` and a '\n' to
 * @p b. `out` is the @p len bytes at @p text (a trailing '\n' included) read
 * as UTF-8 with each maximal ill-formed subsequence replaced by one U+FFFD
 * (Python's `decode('utf-8', errors='replace')`), then JSON-escaped: the
 * short forms `\" \\ \b \f \n \r \t`, `\u00xx` (lower-case hex) for other
 * C0 controls, DEL and the C1 controls U+0080..U+009F; everything else,
 * U+FFFD included, is written as raw UTF-8. So the result is always valid
 * JSON. Returns 0, or -ENOBUFS when the line would take @p b past its cap;
 * then nothing is appended.
 */
int ccci_logline_encode(struct ccci_buf *b, uint64_t pos, const char *text,
                        size_t len, uint64_t time_s) CCCI_WUR;

#endif
