/* abra command templates and the text abra and docker print: pure functions
 * (no I/O), so they are unit-tested and fuzzable on their own. */
#ifndef CCCI_ABRATEXT_H
#define CCCI_ABRATEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/keytab.h"
#include "ccci/core/util.h"

/** The longest stack name abra makes (docker's limit on names it derives). */
#define CCCI_ABRATEXT_STACK_MAX 45

/**
 * The values a template's placeholders take. A NULL string expands to the
 * empty string. `args` replaces an element that is exactly `{args}` with
 * its elements (zero or more).
 */
struct ccci_abratext_vars {
  const char *domain;
  const char *server;
  const char *recipe;
  const char *stack;
  const char *service;
  const char *secret;
  const char *version;
  const char *file;
  const struct ccci_strlist *args;
};

/**
 * Expand the argv template @p tmpl: in each element every `{domain}`,
 * `{server}`, `{recipe}`, `{stack}`, `{service}`, `{secret}`, `{version}`
 * and `{file}` is replaced by its value; an element that is exactly
 * `{args}` becomes the elements of `vars->args`; any other `{...}` text is
 * kept as it is (so docker's `{{.Name}}` passes through). @p out receives a
 * new NULL-terminated argv (free with ccci_abratext_argv_free). Returns 0,
 * or -EINVAL for an empty template.
 */
int ccci_abratext_expand(const struct ccci_strlist *tmpl,
                         const struct ccci_abratext_vars *vars,
                         char ***out) CCCI_WUR;

/** Free an argv from ccci_abratext_expand (NULL is allowed). */
void ccci_abratext_argv_free(char **argv);

/**
 * The stack name abra gives the app of @p domain: every `.` replaced by
 * `_`, cut to CCCI_ABRATEXT_STACK_MAX bytes. A new string.
 */
char *ccci_abratext_stack(const char *domain);

/**
 * Whether @p tag is a release tag: `X.Y.Z` (decimal, an optional leading
 * `v`), optionally followed by `+<upstream version>`.
 */
bool ccci_abratext_is_release(const char *tag);

/**
 * Order two release tags, semver-ish: X, Y, Z numerically, then the
 * upstream parts (after `+`) by their dot-separated parts (numeric parts
 * numerically, others as text; a tag without `+` sorts first). Returns <0,
 * 0 or >0.
 */
int ccci_abratext_tag_cmp(const char *a, const char *b);

/**
 * The newest release tag of @p tags (@p n of them; others are ignored),
 * or NULL when there is none. The result points into @p tags.
 */
const char *ccci_abratext_newest_release(const char *const *tags, size_t n);

/**
 * Collect the secret values of `abra app secret generate` output @p text
 * (@p len bytes): the table whose header has NAME and VALUE columns (plain
 * or box-drawn, `|` or `│` separated); each row's VALUE cell is appended to
 * @p values (new strings; a cell holding NUL bytes gives its NUL-free pieces,
 * so each visible byte is masked). Returns how many values were found (0 is not
 * an error), or -ENOBUFS past 1024 values.
 */
int ccci_abratext_secret_values(const char *text, size_t len,
                                struct ccci_strlist *values) CCCI_WUR;

/**
 * Check the output of the `services` template (`<name> <n>/<m>` per line):
 * every service of @p stack listed (or, when @p want is not empty, every
 * `<stack>_<want>` of it, all of which must be listed) runs with n == m and
 * m > 0, and at least one is listed. Returns 1 when ready, 0 when not with
 * @p why set to an allocated sentence naming the first service not ready.
 */
int ccci_abratext_services_ready(const char *text, const char *stack,
                                 const struct ccci_strlist *want,
                                 char **why) CCCI_WUR;

/**
 * Check the `labels` template output @p json (the app service's labels as a
 * JSON object) against the PR head: `coop-cloud.<stack>.chaos-version` must
 * be a prefix (7 hex digits at least) of @p sha with no `+U` (dirty tree)
 * suffix, and `coop-cloud.<stack>.version` must exist and, when @p head_tag
 * is not NULL (a release tag at the head), equal it. Returns 1 when they
 * match, 0 when not (with @p why allocated), -EINVAL when @p json is not a
 * JSON object (with @p why allocated too).
 */
int ccci_abratext_labels_check(const char *json, const char *stack,
                               const char *sha, const char *head_tag,
                               char **why) CCCI_WUR;

/**
 * Whether the compose text @p text declares a backupbot label
 * (`backupbot.backup=true` or `backupbot.backup: "true"`).
 */
bool ccci_abratext_has_backup_label(const char *text);

#endif
