/* A small recipe-meta-like key table: the key-table test and fuzzer only. */
#include "keytab_meta.h"

#include <ctype.h>
#include <stddef.h>

static char *resolve(const char *v, const char *base_dir)
{
  return ccci_path_join(base_dir, v);
}

static bool upper_name(const char *k)
{
  if (*k == '\0')
    return false;
  for (; *k != '\0'; k++)
    if (!isupper((unsigned char)*k) && *k != '_')
      return false;
  return true;
}

static const struct ccci_keytab_type t_path = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "path",
    .expect = "a path",
    .convert = resolve,
};

static const struct ccci_keytab_type t_env = {
    .storage = CCCI_KEYTAB_MAP,
    .doc_name = "map of NAME to string",
    .expect = "a map of upper-case names to strings",
    .valid_key = upper_name,
    .key_expect = "an upper-case name",
};

#define OFF(field) offsetof(struct meta, field)

static const struct ccci_keytab_key keys[] = {
    {"name", &ccci_keytab_string, OFF(name), NULL, NULL, 0, 0, "Recipe."},
    {"port", &ccci_keytab_int, OFF(port), "80", NULL, 1, 65535, "Port."},
    {"flaky", &ccci_keytab_bool, OFF(flaky), "false", NULL, 0, 0, "Retry."},
    {"tags", &ccci_keytab_strings, OFF(tags), "[]", NULL, 0, 0, "Tags."},
    {"script", &t_path, OFF(script), NULL, NULL, 0, 0, "Test script."},
    {"source.repo", &ccci_keytab_string, OFF(source.repo), NULL, NULL, 0, 0,
     "Repo."},
    {"source.branch", &ccci_keytab_string, OFF(source.branch), "main", NULL, 0,
     0, "Branch."},
    {"source.timeout", &ccci_keytab_duration, OFF(source.timeout_ms), "10m",
     NULL, CCCI_SEC(1), CCCI_HOUR(1), "Clone time limit."},
    {"health.check.path", &ccci_keytab_string, OFF(health_check.path), "/",
     NULL, 0, 0, "Probe path."},
    {"health.check.tries", &ccci_keytab_int, OFF(health_check.tries), "3", NULL,
     1, 100, "Probes."},
    {"env", &t_env, OFF(env), "{}", NULL, 0, 0, "Environment."},
};

const struct ccci_keytab meta_table = {keys, CCCI_ARRAY_LEN(keys),
                                       sizeof(keys[0]), 0};
