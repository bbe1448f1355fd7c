/* libFuzzer target: the janitor's results.json check, and that a run is
 * never failed without complete results. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "ccci/runs/janitor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  bool failed = true, again = false;
  bool complete = ccci_janitor_results_complete(text, size, &failed);

  if (failed && !complete)
    abort(); /* failed implies complete, whatever it held before */
  /* Pure: the same answer whatever the caller's flag held. */
  if (ccci_janitor_results_complete(text, size, &again) != complete ||
      again != failed)
    abort();
  return 0;
}
