/* libFuzzer target: the abra/docker output parsers (the secret table, service
 * replicas, version labels, backupbot labels) and the release tag order. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/harness/abratext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1), *why = NULL, *half;
  struct ccci_strlist vals = {NULL, 0};
  const char *tags[2];
  size_t i;
  int n;

  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  n = ccci_abratext_secret_values(text, size, &vals);
  if (n >= 0 && (size_t)n != vals.n)
    abort();
  for (i = 0; i < vals.n; i++) {
    if (strlen(vals.v[i]) == 0 || strlen(vals.v[i]) > size)
      abort(); /* a value is a non-empty piece of the input */
    free(vals.v[i]);
  }
  free(vals.v);
  if (ccci_abratext_services_ready(text, "s", NULL, &why) == 0 && why == NULL)
    abort(); /* not ready always says why */
  free(why);
  why = NULL;
  n = ccci_abratext_labels_check(text, "s", "0123456789abcdef", NULL, &why);
  if (n != 1 && why == NULL)
    abort();
  free(why);
  (void)ccci_abratext_has_backup_label(text);
  /* The tag order is antisymmetric. */
  half = strchr(text, '\n');
  if (half != NULL) {
    *half = '\0';
    tags[0] = text;
    tags[1] = half + 1;
    if ((ccci_abratext_tag_cmp(tags[0], tags[1]) > 0) !=
        (ccci_abratext_tag_cmp(tags[1], tags[0]) < 0))
      abort();
    (void)ccci_abratext_newest_release(tags, 2);
  }
  free(text);
  return 0;
}
