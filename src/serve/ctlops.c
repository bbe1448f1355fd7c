/* The ops on the control socket: a request line's object becomes an op
 * call, its reply a line; a tail stream's messages become protocol lines. */
#include "ccci/serve/ctlops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/ctl/proto.h"
#include "ccci/runs/run.h"

/* One request of a socket client, while its reply is to come. */
struct sock_call {
  struct ccci_op_call op; /* what the op sees */
  struct ccci_ctl_call *ctl;
  struct ccci_tail_sink sink; /* when the op made it a stream */
};

static void sock_reply(struct ccci_op_call *oc, json_t *reply)
{
  struct sock_call *c = ccci_container_of(oc, struct sock_call, op);
  ccci_ctl_reply(c->ctl, reply);
  free(c);
}

/* ---- a tail stream as protocol lines (docs/protocol.md) ---- */

static struct sock_call *of_sink(struct ccci_tail_sink *s)
{
  return ccci_container_of(s, struct sock_call, sink);
}

static void sink_begin(struct ccci_tail_sink *s, const char *id,
                       enum ccci_run_state state)
{
  json_t *ok = ccci_proto_ok();
  json_object_set_new(ok, "id", json_string(id));
  json_object_set_new(ok, "state", json_string(ccci_run_state_name(state)));
  (void)ccci_ctl_stream_json(of_sink(s)->ctl, ok);
}

static void sink_step(struct ccci_tail_sink *s, unsigned n, const char *name)
{
  json_t *j = json_object();
  json_object_set_new(j, "type", json_string("step"));
  json_object_set_new(j, "n", json_integer(n));
  json_object_set_new(j, "name", json_string(name));
  (void)ccci_ctl_stream_json(of_sink(s)->ctl, j);
}

/* Each encoded line, already a JSON object, wrapped in place as
 * `{"type":"line","step":n,"line":<line>}`: one send for the batch. */
static void sink_lines(struct ccci_tail_sink *s, unsigned n, uint64_t pos,
                       const char *p, size_t len)
{
  char prefix[48];
  size_t plen, lines = 0;
  const char *q, *end = p + len, *nl;
  char *out, *d;
  (void)pos;

  plen = (size_t)snprintf(prefix, sizeof(prefix),
                          "{\"type\":\"line\",\"step\":%u,\"line\":", n);
  for (q = p; q < end; q = nl + 1) {
    nl = memchr(q, '\n', (size_t)(end - q));
    lines++;
  }
  d = out = ccci_xmalloc(len + lines * (plen + 1));
  for (q = p; q < end; q = nl + 1) {
    nl = memchr(q, '\n', (size_t)(end - q));
    memcpy(d, prefix, plen);
    d += plen;
    memcpy(d, q, (size_t)(nl - q));
    d += nl - q;
    *d++ = '}';
    *d++ = '\n';
  }
  (void)ccci_ctl_stream_send(of_sink(s)->ctl, out, (size_t)(d - out));
}

static bool sink_full(const struct ccci_tail_sink *s)
{
  const struct sock_call *c = ccci_container_of(s, struct sock_call, sink);
  return ccci_ctl_stream_queued(c->ctl) >= CCCI_CTL_STREAM_HIGH_WATER;
}

static void sink_close(struct sock_call *c)
{
  ccci_ctl_stream_end(c->ctl);
  free(c);
}

static void sink_end(struct ccci_tail_sink *s, const struct ccci_runs_view *v)
{
  struct sock_call *c = of_sink(s);
  bool finished = v->state == CCCI_RUN_FINISHED;
  const char *reason = ccci_run_reason_name(v->reason);
  json_t *j = json_object();

  json_object_set_new(j, "type", json_string("end"));
  json_object_set_new(j, "state", json_string(ccci_run_state_name(v->state)));
  json_object_set_new(j, "reason",
                      reason != NULL && finished ? json_string(reason)
                                                 : json_null());
  json_object_set_new(j, "exit_code",
                      finished && v->exit_code >= 0 ? json_integer(v->exit_code)
                                                    : json_null());
  (void)ccci_ctl_stream_json(c->ctl, j);
  sink_close(c);
}

/* Without a result the stream just ends: the client sees the connection
 * close before an end message. */
static void sink_error(struct ccci_tail_sink *s, int err)
{
  (void)err;
  sink_close(of_sink(s));
}

static const struct ccci_tail_sink_ops sink_ops = {
    .begin = sink_begin,
    .step = sink_step,
    .lines = sink_lines,
    .full = sink_full,
    .end = sink_end,
    .error = sink_error,
};

static void on_ctl_stream(void *arg, bool gone)
{
  struct sock_call *c = arg;
  if (!gone) {
    ccci_tail_sink_drained(&c->sink);
    return;
  }
  ccci_tail_sink_gone(&c->sink);
  sink_close(c);
}

static struct ccci_tail_sink *sock_stream(struct ccci_op_call *oc)
{
  struct sock_call *c = ccci_container_of(oc, struct sock_call, op);
  c->sink.ops = &sink_ops;
  ccci_ctl_stream_watch(c->ctl, on_ctl_stream, c);
  return &c->sink;
}

json_t *ccci_ctlops_handle(struct ccci_ctl_call *call,
                           const struct ccci_ctl_peer *peer, json_t *req,
                           void *env)
{
  struct sock_call *c = ccci_xcalloc(1, sizeof(*c));
  json_t *reply;

  c->op.uid = peer->uid;
  c->op.reply = sock_reply;
  c->op.stream = sock_stream;
  c->ctl = call;
  reply = ccci_ops_call(env, &c->op, req);
  if (reply != CCCI_OP_LATER) {
    free(c);
    return reply;
  }
  return CCCI_CTL_LATER;
}
