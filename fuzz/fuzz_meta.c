/* libFuzzer target: the meta.json reader, and that what it accepts writes
 * back to JSON that reads to the same record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/runs/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_run_meta m, again;
  json_t *j =
      json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  json_t *out, *out2;
  char *err = NULL;

  if (j == NULL)
    return 0;
  if (ccci_run_meta_from_json(j, &m, &err) < 0) {
    if (err == NULL || err[0] == '\0')
      abort(); /* every refusal says why */
    free(err);
    json_decref(j);
    return 0;
  }
  out = ccci_run_meta_to_json(&m);
  if (ccci_run_meta_from_json(out, &again, &err) < 0)
    abort(); /* what we write, we read */
  out2 = ccci_run_meta_to_json(&again);
  if (!json_equal(out, out2))
    abort();
  json_decref(out);
  json_decref(out2);
  ccci_run_meta_clear(&m);
  ccci_run_meta_clear(&again);
  json_decref(j);
  return 0;
}
