/* The control-socket protocol envelope: one JSON object per line. */
#ifndef CCCI_PROTO_H
#define CCCI_PROTO_H

#include <jansson.h>
#include <stddef.h>

#include "ccci/core/util.h"

/** The protocol version clients send as `"v"`. */
#define CCCI_PROTO_VERSION 1
/** Largest request line accepted, newline excluded. */
#define CCCI_PROTO_MAX_REQUEST (64 * 1024)
/** Largest reply line a client accepts. */
#define CCCI_PROTO_MAX_REPLY (16 * 1024 * 1024)

/** Error codes of `{"ok":false,"error":{"code":...}}`, documented in
 * docs/protocol.md. */
#define CCCI_E_BAD_JSON "bad-json"
#define CCCI_E_BAD_REQUEST "bad-request"
#define CCCI_E_VERSION "unsupported-version"
#define CCCI_E_UNKNOWN_OP "unknown-op"
#define CCCI_E_TOO_LARGE "too-large"
#define CCCI_E_BUSY "busy"
#define CCCI_E_INTERNAL "internal"
/** `server_drain` / `server_undrain` of a name not in the pool. */
#define CCCI_E_NO_SUCH_SERVER "no-such-server"

/**
 * Parse one request line of @p len bytes (no newline). On success returns 0,
 * the request object in @p req (new reference) and its op in @p op (borrowed
 * from @p req). On failure returns -EINVAL and an error reply in @p err (new
 * reference) that names what is wrong.
 */
int ccci_proto_parse_request(const char *line, size_t len, json_t **req,
                             const char **op, json_t **err) CCCI_WUR;

/** `{"ok":false,"error":{"code":code,"message":...}}` (new reference). */
json_t *ccci_proto_error(const char *code, const char *fmt, ...)
    CCCI_PRINTF(2, 3);

/** `{"ok":true}` (new reference), for the caller to add fields to. */
json_t *ccci_proto_ok(void);

/**
 * Encode @p msg as one compact line ending in a newline. Returns the
 * allocated text and its length in @p len.
 */
char *ccci_proto_encode(const json_t *msg, size_t *len);

#endif
