/* libFuzzer target: the control-socket request parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/ctl/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *req = NULL, *err = NULL;
  const char *op = NULL;
  char *line;
  size_t len;

  if (ccci_proto_parse_request((const char *)data, size, &req, &op, &err) ==
      0) {
    if (req == NULL || op == NULL || err != NULL)
      abort();
    line = ccci_proto_encode(req, &len);
    /* One line, exactly one newline, at the end. */
    if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
      abort();
    free(line);
    json_decref(req);
    return 0;
  }
  if (err == NULL || req != NULL ||
      !json_is_string(json_object_get(json_object_get(err, "error"), "code")))
    abort();
  json_decref(err);
  return 0;
}
