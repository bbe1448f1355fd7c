/* A recipe's hook files (SPEC section 8, docs/hooks.md): one table of the
 * files the harness looks for, where it looks, and what each one's contract
 * is. The harness, `ccci meta check` and docs/hooks.md all read it. */
#ifndef CCCI_HOOKS_H
#define CCCI_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/util.h"
#include "ccci/harness/meta.h"

/** The hook files, in the order of the table and the docs. */
enum ccci_hook {
  CCCI_HOOK_INSTALL_STEPS, /**< install_steps.sh */
  CCCI_HOOK_SETUP_CUSTOM,  /**< setup_custom_tests.sh */
  CCCI_HOOK_OPS,           /**< ops.py */
  CCCI_HOOK_COMPOSE,       /**< compose.ccci.yml */
  CCCI_HOOK_TEST_UPGRADE,  /**< test_upgrade.py */
  CCCI_HOOK_TEST_INSTALL,  /**< test_install.py */
  CCCI_HOOK_TEST_BACKUP,   /**< test_backup.py */
  CCCI_HOOK_TEST_RESTORE,  /**< test_restore.py */
  /** The number of hooks. */
  CCCI_HOOK_COUNT
};

/** One hook's contract. */
struct ccci_hook_info {
  const char *file;  /**< its file name (`install_steps.sh`) */
  bool executable;   /**< run directly: must have the executable bit */
  bool run_by_tests; /**< run with TEST_RUNNER (the test_<tier>.py) */
  /** The tier it belongs to (enum ccci_tier), or -1 for none. */
  int tier;
  const char *when;    /**< when it is used */
  const char *limit;   /**< its time limit */
  const char *failure; /**< what its failure does */
  const char *doc;     /**< what it is for */
};

/** Hook @p k's contract; NULL when out of range. */
const struct ccci_hook_info *ccci_hook_info(enum ccci_hook k);

/** The hook whose file name is @p file, or -1. */
int ccci_hook_by_file(const char *file);

/**
 * Where hook @p k is: `<overlay_dir>/<file>` when that exists (the
 * operator's copy wins), else `<tests_dir>/<file>`, else nowhere. Either
 * directory may be NULL. Sets @p path (allocated) and returns
 * CCCI_META_FROM_OPERATOR or CCCI_META_FROM_RECIPE; CCCI_META_FROM_DEFAULT
 * with @p path NULL when neither has it. A directory of that name is not a
 * hook file; a dangling link is one (it fails when used).
 */
enum ccci_meta_source ccci_hook_find(const char *overlay_dir,
                                     const char *tests_dir, enum ccci_hook k,
                                     char **path);

/**
 * For a file name @p file under tests/ that looks like a tier hook but is
 * none (`test_deploy.py`, `test_custom.py`, `test_instal.py`): a sentence
 * saying what is wrong (allocated); NULL for the hook files themselves and
 * for names that are plainly custom tests (`test_login.py`).
 */
char *ccci_hook_misnamed(const char *file);

/**
 * The custom tests one CUSTOM_TESTS @p pattern names: glob(3) matches of
 * `<root>/<pattern>` that lie under `<root>/tests/` and are not hook files
 * (test_install.py is never a custom test). @p each (may be NULL) gets each
 * path relative to @p root. Returns how many matched. The harness's root is
 * the run's snapshot, `ccci meta check`'s the recipe checkout: both find
 * the same files.
 */
size_t ccci_hook_match_tests(const char *root, const char *pattern,
                             void (*each)(void *arg, const char *rel),
                             void *arg);

/** docs/hooks.md, generated from the table. Allocated. */
char *ccci_hooks_docs(void);

#endif
