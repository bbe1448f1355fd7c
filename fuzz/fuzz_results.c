/* libFuzzer target: the results.json reader, and that a run is never
 * failed without complete results. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/runs/results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  struct ccci_results a, b;
  size_t i;
  int ra = ccci_results_parse(text, size, &a);
  int rb = ccci_results_parse(text, size, &b);

  if (a.failed && !a.complete)
    abort(); /* failed implies complete */
  if (a.complete && (ra != 0 || a.ntiers == 0))
    abort();
  if (a.level < -1 || a.level > 9)
    abort();
  /* Pure: the same answer each time. */
  if (ra != rb || a.complete != b.complete || a.failed != b.failed ||
      a.level != b.level || a.ntiers != b.ntiers)
    abort();
  for (i = 0; i < a.ntiers; i++)
    if (strcmp(a.tiers[i].name, b.tiers[i].name) != 0 ||
        strcmp(a.tiers[i].status, b.tiers[i].status) != 0)
      abort();
  ccci_results_clear(&a);
  ccci_results_clear(&b);
  return 0;
}
