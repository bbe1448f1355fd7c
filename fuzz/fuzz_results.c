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
  if (a.level < -1 || a.level > CCCI_LEVEL_MAX)
    abort();
  if (a.error != NULL && strlen(a.error) > CCCI_RESULTS_TEXT_MAX)
    abort();
  for (i = 0; i < a.ntiers; i++) {
    const struct ccci_results_tier *t = &a.tiers[i];
    if (t->reason != NULL && strlen(t->reason) > CCCI_RESULTS_TEXT_MAX)
      abort();
    /* Known tiers first, in run order, each with its status in st[]. */
    if (i > 0 && t->tier >= 0 &&
        (a.tiers[i - 1].tier < 0 || a.tiers[i - 1].tier >= t->tier))
      abort();
    if (t->tier >= 0 && a.st[t->tier] != t->st)
      abort();
    if (a.complete && t->st == CCCI_TS_NONE)
      abort(); /* complete: every status known */
    if (a.complete && ccci_tier_status_failed(t->st) && !a.failed)
      abort();
  }
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
