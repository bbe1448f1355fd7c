/* libFuzzer target: the config parser, and its dump parsing back to the
 * same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_config *cfg = NULL, *again = NULL;
  char *errors = NULL, *dump;

  if (ccci_config_parse("fuzz.yml", "/base", (const char *)data, size, &cfg,
                        &errors) < 0) {
    /* Every failure explains itself, starting with the file name. */
    if (errors == NULL || strncmp(errors, "fuzz.yml", 8) != 0)
      abort();
    free(errors);
    return 0;
  }
  dump = ccci_config_dump(cfg);
  if (ccci_config_parse("dump.yml", "/base", dump, strlen(dump), &again,
                        &errors) < 0)
    abort(); /* the effective config must parse back */
  if (ccci_config_diff(cfg, again, NULL, NULL) != 0)
    abort(); /* ... to the same values */
  free(dump);
  ccci_config_unref(again);
  ccci_config_unref(cfg);
  return 0;
}
