/* libFuzzer target: the key-table engine on a second table (the test's
 * recipe-meta-like one), and its dump parsing back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keytab_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const char *name, const char *text, size_t len, struct meta *m,
                 char **errors)
{
  memset(m, 0, sizeof(*m));
  ccci_keytab_defaults(&meta_table, m);
  return ccci_keytab_parse(&meta_table, name, "/base", text, len, 65536, m,
                           errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct meta m, again;
  struct ccci_buf b;
  char *errors = NULL, *dump;
  size_t i;

  if (parse("fuzz.yml", (const char *)data, size, &m, &errors) < 0) {
    /* Every failure explains itself, starting with the file name. */
    if (errors == NULL || strncmp(errors, "fuzz.yml", 8) != 0)
      abort();
    free(errors);
    ccci_keytab_free(&meta_table, &m);
    return 0;
  }
  ccci_buf_init(&b, SIZE_MAX);
  ccci_keytab_dump(&meta_table, &m, &b);
  dump = ccci_buf_detach(&b);
  if (parse("dump.yml", dump, strlen(dump), &again, &errors) < 0)
    abort(); /* the dump must parse back */
  for (i = 0; i < meta_table.n; i++)
    if (!ccci_keytab_equal(ccci_keytab_at(&meta_table, i), &m, &again))
      abort(); /* ... to the same values */
  free(dump);
  ccci_keytab_free(&meta_table, &again);
  ccci_keytab_free(&meta_table, &m);
  return 0;
}
