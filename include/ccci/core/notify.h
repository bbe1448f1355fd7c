/* systemd readiness: the sd_notify datagram, without libsystemd. */
#ifndef CCCI_NOTIFY_H
#define CCCI_NOTIFY_H

#include "ccci/core/util.h"

/**
 * Send @p state (e.g. "READY=1\nMAINPID=42") to `$NOTIFY_SOCKET` when it is
 * set (a path, or `@name` for the abstract namespace). Returns 0 when sent or
 * when the variable is unset, else a negative errno.
 */
int ccci_notify(const char *state) CCCI_WUR;

#endif
