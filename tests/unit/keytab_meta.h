/* A small recipe-meta-like key table: the key-table test and fuzzer only. */
#ifndef CCCI_TEST_KEYTAB_META_H
#define CCCI_TEST_KEYTAB_META_H

#include <stdbool.h>
#include <stdint.h>

#include "ccci/core/keytab.h"

/** What a made-up `recipe_meta.yml` holds. */
struct meta {
  char *name;
  uint64_t port;
  bool flaky;
  struct ccci_strlist tags;
  char *script; /**< a path, resolved against the file's directory */
  struct {
    char *repo;
    char *branch;
    uint64_t timeout_ms;
  } source;
  struct {
    char *path;
    uint64_t tries;
  } health_check; /**< the section `health.check`, two levels deep */
  struct ccci_strmap env;
};

/** The table of struct meta: name, port, flaky, tags, script, source.*,
 * health.check.*, env. */
extern const struct ccci_keytab meta_table;

#endif
