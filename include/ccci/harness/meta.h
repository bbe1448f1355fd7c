/* recipe_meta.yml: a recipe's test settings, the operator's file over the
 * recipe's, key by key (SPEC section 8, docs/recipe-meta.md). */
#ifndef CCCI_META_H
#define CCCI_META_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/keytab.h"

/** Largest recipe_meta.yml accepted (each of the two files). */
#define CCCI_META_MAX_BYTES (64 * 1024)

/** A cold dependency: another recipe deployed before the base. */
struct ccci_meta_dep {
  char *recipe;           /**< its recipe name */
  char *version;          /**< a release tag; NULL: its newest */
  struct ccci_strmap env; /**< extra values of its app env */
};

/** How the harness handles one of the recipe's secrets. */
struct ccci_meta_secret {
  char *name;       /**< as in `SECRET_<NAME>_VERSION`, lowercase */
  uint64_t length;  /**< 0: abra's (the `# length=N` comment, or its own) */
  bool generate;    /**< false: inserted from value_file instead */
  char *value_file; /**< absolute; NULL when generated */
};

/** Accepted HTTP statuses @p lo to @p hi, inclusive. */
struct ccci_meta_status_range {
  unsigned lo, hi;
};

/** The 20 keys, in the order of the table and the docs. */
enum ccci_meta_key {
  CCCI_META_UPGRADE_BASE_VERSION,
  CCCI_META_SKIP_TIERS,
  CCCI_META_QUICK_TIERS,
  CCCI_META_DEPS,
  CCCI_META_ENV,
  CCCI_META_COMPOSE_FILES,
  CCCI_META_SECRETS,
  CCCI_META_HEALTH_PATH,
  CCCI_META_HEALTH_STATUS,
  CCCI_META_HEALTH_TIMEOUT,
  CCCI_META_DEPLOY_TIMEOUT,
  CCCI_META_SERVICES,
  CCCI_META_BACKUP,
  CCCI_META_DATA_CHECK,
  CCCI_META_CUSTOM_TESTS,
  CCCI_META_TEST_RUNNER,
  CCCI_META_SCREENSHOT,
  CCCI_META_TIMEOUT,
  CCCI_META_SERVERS,
  CCCI_META_SERVER_LABELS,
  /** The number of keys. */
  CCCI_META_NKEYS
};

/** Where a key's effective value came from. */
enum ccci_meta_source {
  CCCI_META_FROM_DEFAULT,  /**< neither file sets it */
  CCCI_META_FROM_RECIPE,   /**< the recipe's tests/recipe_meta.yml */
  CCCI_META_FROM_OPERATOR, /**< `<harness.overlays_dir>/<recipe>/...` */
};

/** A recipe's effective settings. Durations are milliseconds. */
struct ccci_meta {
  char *upgrade_base_version;      /**< NULL: newest release tag before head */
  struct ccci_strlist skip_tiers;  /**< tier names */
  struct ccci_strlist quick_tiers; /**< default [install] */
  struct ccci_meta_dep *deps;
  size_t ndeps;
  struct ccci_strmap env;            /**< extra app env values */
  struct ccci_strlist compose_files; /**< empty: COMPOSE_FILE of .env.sample */
  struct ccci_meta_secret *secrets;
  size_t nsecrets;
  char *health_path;                            /**< default "/" */
  struct ccci_meta_status_range *health_status; /**< default 200-399 */
  size_t nhealth_status;
  uint64_t health_timeout_ms;   /**< 5m */
  uint64_t deploy_timeout_ms;   /**< 15m */
  struct ccci_strlist services; /**< empty: all */
  int backup; /**< -1 unset (a backupbot label decides), 0, 1 */
  /** DATA_CHECK; all three NULL when there is none. */
  char *data_check_service, *data_check_write, *data_check_read;
  struct ccci_strlist custom_tests; /**< default [tests/test_*.py] */
  struct ccci_strlist test_runner;  /**< default [python3, -m, pytest, -q] */
  bool screenshot;                  /**< false */
  uint64_t timeout_ms;              /**< 0: unset (the daemon's deadline) */
  /** Placement (the daemon's, with `servers:`; the harness ignores them):
   * the run goes to one of these abra servers (empty: any) ... */
  struct ccci_strlist servers;
  /** ... that has every one of these labels. */
  struct ccci_strlist server_labels;

  /** HEALTH_STATUS as written (`200`, `200-399`); health_status is it
   * parsed. */
  struct ccci_strlist health_status_text;
  /** Per key (enum ccci_meta_key): which file set it, and at which
   * 1-based line (0 for defaults). */
  struct {
    enum ccci_meta_source source;
    size_t line;
  } origin[CCCI_META_NKEYS];
};

/**
 * Load a recipe's settings into @p out (which need not be initialised): the
 * defaults, then the recipe's file @p recipe_file, then the operator's
 * @p operator_file over it, key by key (a key the operator sets replaces
 * the recipe's value whole; an empty value keeps it). Either path may be
 * NULL or name a missing file, which sets nothing. Each file is at most
 * CCCI_META_MAX_BYTES. Returns 0, or -EINVAL with, in @p errors, an
 * allocated text of every error of both files, one per line as
 * `recipe_meta.yml:line:column: message` (the file's base name; 1-based,
 * at the key's first byte; unknown keys, nested ones too, name the nearest
 * known one). @p out is always safe to pass to ccci_meta_free.
 */
int ccci_meta_load(const char *operator_file, const char *recipe_file,
                   struct ccci_meta *out, char **errors) CCCI_WUR;

/**
 * Parse one file's text @p text (@p len bytes, named @p name in messages,
 * relative paths against @p base_dir) over @p m, which holds defaults or
 * an earlier file's values; its keys' origins become @p source. Returns 0
 * or -EINVAL with @p errors as ccci_meta_load. The building block of
 * ccci_meta_load, for tests and fuzzers (no I/O).
 */
int ccci_meta_parse(const char *name, const char *base_dir, const char *text,
                    size_t len, enum ccci_meta_source source,
                    struct ccci_meta *m, char **errors) CCCI_WUR;

/** Set @p m to every key's default (overwriting whatever it held). */
void ccci_meta_defaults(struct ccci_meta *m);

/** Free what @p m holds and zero it. NULL is fine. */
void ccci_meta_free(struct ccci_meta *m);

/**
 * The placement keys of a recipe, for the daemon (docs/recipe-meta.md):
 * SERVERS into @p servers and SERVER_LABELS into @p labels (each a new
 * list of copies, empty when not set; free the strings and `v`). The
 * recipe's own file is read from @p own_path when it is not NULL (a missing
 * file is none), else parsed from the @p own_len bytes at @p own_text when
 * that is not NULL (the text a forge fetched), else there is none; the
 * operator's @p overlay_path (may be NULL; a missing file is none) wins key
 * by key. Every key of both files is checked, as a run would. Returns 0,
 * or -EINVAL with an allocated text in @p err, one error per line as
 * `file:line:column: message` (`tests/recipe_meta.yml` for the recipe's
 * file, the overlay by its path); both lists are then empty. No global
 * state: safe on any thread (libuv's thread pool).
 */
int ccci_meta_placement(const char *own_path, const char *own_text,
                        size_t own_len, const char *overlay_path,
                        struct ccci_strlist *servers,
                        struct ccci_strlist *labels, char **err) CCCI_WUR;

/** Is the HTTP status @p status one HEALTH_STATUS accepts? */
bool ccci_meta_status_ok(const struct ccci_meta *m, long status);

/** The name of key @p k (`UPGRADE_BASE_VERSION`); NULL when out of range. */
const char *ccci_meta_key_name(enum ccci_meta_key k);

/** The name of @p s: `default`, `recipe` or `operator`. */
const char *ccci_meta_source_name(enum ccci_meta_source s);

/**
 * The effective settings as YAML that parses back to the same values, each
 * key with a comment naming where it came from. Allocated.
 */
char *ccci_meta_dump(const struct ccci_meta *m);

/**
 * Key @p k's effective value as one line of YAML, `KEY: value\n` (the line
 * of ccci_meta_dump, without its comment). Allocated.
 */
char *ccci_meta_dump_key(const struct ccci_meta *m, enum ccci_meta_key k);

/** The effective settings as a JSON object (new reference). */
json_t *ccci_meta_to_json(const struct ccci_meta *m);

/** The example recipe_meta.yml of the docs (static text; it loads). */
const char *ccci_meta_example(void);

/** docs/recipe-meta.md, generated from the key table. Allocated. */
char *ccci_meta_docs(void);

#endif
