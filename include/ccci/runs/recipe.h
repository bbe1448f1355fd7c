/* A submitted recipe into its run dir (SPEC section 4): the recipe
 * directory copied under caps, then meta.json written durably. Blocking
 * file I/O, for the thread pool. */
#ifndef CCCI_RECIPE_H
#define CCCI_RECIPE_H

#include <stdint.h>

#include "ccci/core/util.h"
#include "ccci/runs/run.h"

/** Largest recipe directory copied (the bytes of its regular files). */
#define CCCI_RECIPE_MAX_BYTES (256u * 1024u * 1024u)
/** Most entries (files, directories, links) of a recipe directory. */
#define CCCI_RECIPE_MAX_ENTRIES 50000

/**
 * Copy the tree at @p from to @p to (made, 0750): directories, regular
 * files (their mode bits) and symbolic links (as links); other kinds are
 * skipped, and links are never followed. Fails with -EFBIG past
 * CCCI_RECIPE_MAX_BYTES and -E2BIG past CCCI_RECIPE_MAX_ENTRIES. Returns 0,
 * or a negative errno with a message naming the file in @p err (allocated;
 * NULL when the failure was at @p from or @p to itself). What was copied
 * stays.
 */
int ccci_recipe_copy(const char *from, const char *to, char **err) CCCI_WUR;

/**
 * Fill the run dir @p dir (it exists): copy @p src (NULL: no recipe) to
 * `<dir>/recipe`, then write @p m to `<dir>/meta.json` atomically. On
 * failure @p dir is removed with all below it. Returns 0, or a negative
 * errno with a message in @p err (allocated).
 */
int ccci_recipe_accept(const char *dir, const char *src,
                       const struct ccci_run_meta *m, char **err) CCCI_WUR;

#endif
