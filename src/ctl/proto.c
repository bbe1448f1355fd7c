/* The control-socket protocol envelope: one JSON object per line. */
#include "ccci/ctl/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

json_t *ccci_proto_error(const char *code, const char *fmt, ...)
{
  va_list ap;
  char *msg, *p;
  json_t *j;

  va_start(ap, fmt);
  msg = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  /* Messages may quote the request; keep them printable ASCII so they are
   * always valid JSON strings and safe on a terminal. */
  for (p = msg; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
      *p = '?';
  j = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message",
                msg);
  free(msg);
  return j;
}

json_t *ccci_proto_ok(void)
{
  return json_pack("{s:b}", "ok", 1);
}

/* Are the bytes from @p from to @p len blanks? (@p line is not terminated.) */
static bool only_space(const char *line, size_t from, size_t len)
{
  size_t i;
  if (from > len)
    return false;
  for (i = from; i < len; i++)
    if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
      return false;
  return true;
}

int ccci_proto_parse_request(const char *line, size_t len, json_t **req,
                             const char **op, json_t **err)
{
  json_error_t je;
  json_t *j, *v, *o;

  *req = NULL;
  *op = NULL;
  *err = NULL;
  if (len > CCCI_PROTO_MAX_REQUEST) {
    *err = ccci_proto_error(CCCI_E_TOO_LARGE, "request is larger than %d bytes",
                            CCCI_PROTO_MAX_REQUEST);
    return -EINVAL;
  }
  j = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK,
                 &je);
  if (j == NULL) {
    *err = ccci_proto_error(CCCI_E_BAD_JSON, "malformed JSON at column %d: %s",
                            je.column, je.text);
    return -EINVAL;
  }
  /* Only whitespace may follow the object on its line. */
  if (!only_space(line, (size_t)je.position, len)) {
    json_decref(j);
    *err = ccci_proto_error(CCCI_E_BAD_JSON,
                            "one JSON object per line; found more after it");
    return -EINVAL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    *err =
        ccci_proto_error(CCCI_E_BAD_REQUEST, "a request is a JSON object like "
                                             "{\"v\":1,\"op\":\"status\"}");
    return -EINVAL;
  }
  v = json_object_get(j, "v");
  if (!json_is_integer(v)) {
    json_decref(j);
    *err =
        ccci_proto_error(CCCI_E_BAD_REQUEST, "field 'v' must be the integer %d",
                         CCCI_PROTO_VERSION);
    return -EINVAL;
  }
  if (json_integer_value(v) != CCCI_PROTO_VERSION) {
    *err =
        ccci_proto_error(CCCI_E_VERSION,
                         "protocol version %lld is not supported; this "
                         "daemon speaks %d",
                         (long long)json_integer_value(v), CCCI_PROTO_VERSION);
    json_decref(j);
    return -EINVAL;
  }
  o = json_object_get(j, "op");
  if (!json_is_string(o) || json_string_length(o) == 0) {
    json_decref(j);
    *err = ccci_proto_error(CCCI_E_BAD_REQUEST,
                            "field 'op' must be a non-empty string");
    return -EINVAL;
  }
  *req = j;
  *op = json_string_value(o);
  return 0;
}

char *ccci_proto_encode(const json_t *msg, size_t *len)
{
  char *s = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
  char *line;
  size_t n;
  if (s == NULL)
    s = ccci_xstrdup("{\"ok\":false,\"error\":{\"code\":\"internal\","
                     "\"message\":\"cannot encode the reply\"}}");
  n = strlen(s);
  line = ccci_xmalloc(n + 2);
  memcpy(line, s, n);
  line[n] = '\n';
  line[n + 1] = '\0';
  free(s);
  *len = n + 1;
  return line;
}
