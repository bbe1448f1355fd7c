/* The trigger grammar of `!testme` comments (SPEC section 3) and the hidden
 * marker of the results comment: what the bot reads in a comment body and
 * what it writes into its own. Pure: no I/O, no allocation. */
#ifndef CCCI_FORGE_TRIGGER_H
#define CCCI_FORGE_TRIGGER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The trigger grammar (SPEC section 3).
 *
 * A comment triggers when one of its lines, with spaces, tabs and CRs
 * trimmed at both ends, is exactly `!testme` (a full run) or exactly
 * `!testme --quick` (one space between; a quick run). Case matters;
 * `!testmexyz`, `!testme foo`, `please !testme`, `> !testme` and
 * `!testme  --quick` (two spaces) never trigger.
 *
 * Decisions:
 * - Lines end at LF, CR or CRLF, as in CommonMark.
 * - The first triggering line wins: `!testme --quick` then `!testme` is a
 *   quick run; `!testme` then `!testme --quick` is a full run.
 * - Lines inside a fenced code block never trigger. A fence, as in
 *   CommonMark, is a line indented by at most 3 spaces (a tab is too deep)
 *   starting with 3 or more backticks or tildes; after a backtick fence the
 *   rest of the line (the info string) may not contain a backtick, or the
 *   line is no fence. The block ends at a line indented by at most 3 spaces
 *   holding only a run of the same character at least as long as the
 *   opening, then spaces or tabs. An unclosed fence makes the rest of the
 *   comment code. The fence lines themselves never trigger.
 * - Indentation does not matter outside fences: a `!testme` indented by 4 or
 *   more spaces (a CommonMark indented code block) still triggers, since
 *   the spec trims whitespace and people indent by accident far more often
 *   than they quote `!testme` in an indented block.
 * - Known approximations: fences are only recognised at the top level, so a
 *   fence nested in a list item 4+ spaces deep is not one (its `!testme`
 *   lines trigger); HTML comments are not considered.
 */

/** What a comment asks for. */
enum ccci_forge_trigger {
  CCCI_FORGE_TRIGGER_NONE,
  CCCI_FORGE_TRIGGER_TESTME,
  CCCI_FORGE_TRIGGER_TESTME_QUICK,
};

/**
 * Apply the trigger grammar to a comment body of @p len bytes (need not be
 * NUL-terminated; a NUL is an ordinary character). NULL with 0 is NONE.
 */
enum ccci_forge_trigger ccci_forge_trigger(const char *body, size_t len);

/*
 * The results comment's hidden marker.
 */

/** The marker text; the results comment's first line. */
#define CCCI_FORGE_MARKER "<!-- ccci:results -->"

/**
 * The marker the results comment carries (CCCI_FORGE_MARKER), an HTML
 * comment the forge does not render. Static storage.
 */
const char *ccci_forge_marker(void);

/**
 * Does the body of @p len bytes contain the marker anywhere? Anyone can
 * paste it, so the caller also checks the comment is the bot's own.
 */
bool ccci_forge_has_marker(const char *body, size_t len);

#endif
