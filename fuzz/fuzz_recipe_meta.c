/* libFuzzer target: recipe_meta.yml (harness/meta on the key-table engine,
 * records included), and its dump reading back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/harness/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const char *name, const char *text, size_t len,
                 struct ccci_meta *m, char **errors)
{
  ccci_meta_defaults(m);
  return ccci_meta_parse(name, "/base", text, len, CCCI_META_FROM_RECIPE, m,
                         errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_meta m, again;
  char *errors = NULL, *dump;
  json_t *a, *b;
  size_t i;

  if (parse("fuzz.yml", (const char *)data, size, &m, &errors) < 0) {
    /* Every failure explains itself, each line naming the file. */
    const char *line = errors;
    if (errors == NULL || *errors == '\0')
      abort();
    for (; line != NULL && *line != '\0'; line = strchr(line, '\n') + 1) {
      if (strncmp(line, "fuzz.yml:", 9) != 0 || strchr(line, '\n') == NULL)
        abort();
    }
    free(errors);
    ccci_meta_free(&m);
    return 0;
  }
  /* What loads is consistent: a status range per HEALTH_STATUS item. */
  if (m.nhealth_status != m.health_status_text.n || m.nhealth_status == 0)
    abort();
  for (i = 0; i < m.nhealth_status; i++)
    if (m.health_status[i].lo > m.health_status[i].hi ||
        !ccci_meta_status_ok(&m, (long)m.health_status[i].lo))
      abort();
  dump = ccci_meta_dump(&m);
  if (parse("dump.yml", dump, strlen(dump), &again, &errors) < 0)
    abort(); /* the dump must parse back */
  a = ccci_meta_to_json(&m);
  b = ccci_meta_to_json(&again);
  if (!json_equal(a, b))
    abort(); /* ... to the same values */
  json_decref(a);
  json_decref(b);
  free(dump);
  ccci_meta_free(&again);
  ccci_meta_free(&m);
  return 0;
}
