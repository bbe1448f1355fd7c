/* `ccci meta check`: a recipe checkout's recipe_meta.yml and hook files
 * checked the way the harness would use them (docs/harness.md). */
#ifndef CCCI_METACHECK_H
#define CCCI_METACHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/config.h"
#include "ccci/core/util.h"
#include "ccci/harness/hooks.h"
#include "ccci/harness/meta.h"

/** One error or warning. */
struct ccci_metacheck_msg {
  char *file;    /**< relative to the recipe for its files, else as given */
  size_t line;   /**< 1-based; 0: unknown */
  size_t column; /**< 1-based; 0: unknown */
  char *message;
};

/** Where a run would find one hook file. */
struct ccci_metacheck_hook {
  char *path; /**< shown as ccci_metacheck_msg.file; NULL: none */
  enum ccci_meta_source source; /**< FROM_DEFAULT: none */
};

/** The outcome of ccci_metacheck_run. */
struct ccci_metacheck {
  char *recipe;          /**< the base name of the checkout's real path */
  char *recipe_file;     /**< "tests/recipe_meta.yml" */
  char *operator_file;   /**< `<overlays>/<recipe>/recipe_meta.yml`, or NULL */
  struct ccci_meta meta; /**< the effective settings (as far as they load) */
  /** Per key: the file its origin names has an error in its value, so the
   * value shown is what was there before (the key does not load). */
  bool failed[CCCI_META_NKEYS];
  struct ccci_metacheck_msg *errors;
  size_t nerrors;
  struct ccci_metacheck_msg *warnings;
  size_t nwarnings;
  struct ccci_metacheck_hook hooks[CCCI_HOOK_COUNT];
};

/**
 * Check the recipe checkout @p dir into @p out (which need not be
 * initialised): its `tests/recipe_meta.yml` and the operator's
 * `<overlays_dir>/<recipe>/recipe_meta.yml` (@p overlays_dir may be NULL),
 * each parsed on its own so each error names its file, merged as
 * ccci_meta_load does; the hook files as ccci_hook_find finds them; the
 * DEPS recipes in `<abra_dir>/recipes/` (@p abra_dir may be NULL: not
 * looked for). Reads files, runs nothing. Returns 0 when the check ran
 * (its errors are in @p out), or -ENOENT / -ENOTDIR when @p dir is not a
 * directory, with an allocated sentence in @p cause. @p out is always safe
 * to pass to ccci_metacheck_free.
 */
int ccci_metacheck_run(const char *dir, const char *overlays_dir,
                       const char *abra_dir, struct ccci_metacheck *out,
                       char **cause) CCCI_WUR;

/**
 * Add to @p c's warnings what the daemon's pool of @p cfg (`servers:`)
 * cannot give the run: each SERVERS entry that is not one of its servers,
 * and, when no server of the pool is in SERVERS (if set) and has every
 * SERVER_LABELS, that the run would wait queued. Each warning names the
 * key's file and line. Nothing without `servers:` (placement is ignored on
 * the one implicit server) or when the keys are not set.
 */
void ccci_metacheck_pool(struct ccci_metacheck *c,
                         const struct ccci_config *cfg);

/** Free what @p c holds and zero it. NULL is fine. */
void ccci_metacheck_free(struct ccci_metacheck *c);

/**
 * Where key @p k of @p c came from, as the text output shows it: `default`,
 * `recipe tests/recipe_meta.yml:3`, `operator /srv/ov/app/recipe_meta.yml:1`,
 * with `, does not load` when the key's value has an error. Allocated.
 */
char *ccci_metacheck_origin(const struct ccci_metacheck *c,
                            enum ccci_meta_key k);

/**
 * The JSON document of `ccci meta check --json` (docs/harness.md): recipe,
 * valid, errors, warnings, keys (value, source, file, line, loaded) and
 * hooks (path, source). New reference.
 */
json_t *ccci_metacheck_to_json(const struct ccci_metacheck *c);

#endif
