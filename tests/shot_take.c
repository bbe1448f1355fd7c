/* Takes one screenshot with ccci_shot_take, for tests/integration/
 * test_shot.py (the harness's own path, without a harness run):
 *   shot_take CHROMIUM URL DOMAIN GATEWAY INSECURE PNG TIMEOUT_MS
 * GATEWAY empty: DNS; INSECURE 0 or 1. Prints `taken <ms>`, `missing: <why>`
 * or `failed: <why>` as the last line; exits 0, 2 or 1 (64: usage). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/util.h"
#include "ccci/harness/hcall.h"
#include "ccci/harness/shot.h"

int main(int argc, char **argv)
{
  struct ccci_shot s;
  enum ccci_shot_end end;
  uint64_t t0, ms;
  char *why = NULL;
  int rc;

  if (argc != 8 || ccci_parse_u64(argv[7], &s.timeout_ms) < 0) {
    fprintf(stderr, "usage: shot_take CHROMIUM URL DOMAIN GATEWAY INSECURE "
                    "PNG TIMEOUT_MS\n");
    return 64;
  }
  s.chromium = argv[1];
  s.url = argv[2];
  s.domain = argv[3];
  s.gateway = argv[4][0] != '\0' ? argv[4] : NULL;
  s.insecure = strcmp(argv[5], "1") == 0;
  s.png = argv[6];
  if (ccci_hcall_init(NULL, NULL, 0) < 0) {
    fprintf(stderr, "shot_take: cannot start the output\n");
    return 1;
  }
  t0 = ccci_now_ms();
  end = ccci_shot_take(&s, &why);
  ms = ccci_now_ms() - t0;
  switch (end) {
  case CCCI_SHOT_TAKEN:
    ccci_hcall_printf("taken %llu\n", (unsigned long long)ms);
    rc = 0;
    break;
  case CCCI_SHOT_MISSING:
    ccci_hcall_printf("missing: %s\n", why);
    rc = 2;
    break;
  default:
    ccci_hcall_printf("failed: %s\n", why);
    rc = 1;
    break;
  }
  free(why);
  ccci_hcall_close();
  return rc;
}
