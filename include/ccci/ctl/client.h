/* The blocking client side of the control socket, for the CLI. */
#ifndef CCCI_CLIENT_H
#define CCCI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "ccci/core/util.h"

/** A connection to the daemon. */
struct ccci_client {
  int fd;
  struct ccci_buf in;
  size_t head; /**< bytes of `in` already taken */
};

/**
 * Connect to the daemon's socket at @p path. Returns 0, or a negative errno
 * with a message in @p err naming the path and what to check.
 */
int ccci_client_connect(struct ccci_client *c, const char *path,
                        char **err) CCCI_WUR;

/** Send @p req as one line. 0, or a negative errno with @p err. */
int ccci_client_send(struct ccci_client *c, const json_t *req,
                     char **err) CCCI_WUR;

/**
 * Receive one message (one line, at most CCCI_PROTO_MAX_REPLY bytes) within
 * @p timeout_ms (negative: no limit). Returns 0 with a new reference in
 * @p msg; -ECONNRESET when the daemon closed the connection; -ETIMEDOUT;
 * -EPROTO for a line that is not a JSON object; each with @p err set.
 */
int ccci_client_recv(struct ccci_client *c, json_t **msg, int timeout_ms,
                     char **err) CCCI_WUR;

/** True when a whole message is already buffered (recv will not block). */
bool ccci_client_pending(const struct ccci_client *c);

/** Close the connection. */
void ccci_client_close(struct ccci_client *c);

#endif
