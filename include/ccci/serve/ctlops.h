/* The ops on the control socket: a request line's object becomes an op
 * call, its reply a line; a tail stream's messages become protocol lines. */
#ifndef CCCI_CTLOPS_H
#define CCCI_CTLOPS_H

#include <jansson.h>

#include "ccci/ctl/ctl.h"
#include "ccci/serve/ops.h"

/**
 * The control socket's handler (give it to ccci_ctl_start with the
 * struct ccci_ops_env as its argument, which must outlive the socket):
 * answers @p req through ccci_ops_call, deferred and streamed replies
 * included.
 */
json_t *ccci_ctlops_handle(struct ccci_ctl_call *call,
                           const struct ccci_ctl_peer *peer, json_t *req,
                           void *env);

#endif
