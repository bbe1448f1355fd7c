/* Live tail of runs' logs for control-socket clients: the backlog from the
 * step files, then lines from the log store's memory, with no gap and no
 * duplicate, each client at its own pace.
 *
 * A session's position is a step and the byte offset of its next whole
 * line in that step's encoded stream. The bytes before the store's memory
 * are in the file, the rest in memory, so one offset serves both: a client
 * that falls behind simply reads the file until it catches up. */
#include "ccci/serve/tail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/log.h"
#include "ccci/ctl/proto.h"
#include "ccci/logs/logline.h"
#include "ccci/logs/logstore.h"
#include "ccci/runs/run.h"

/* Input bytes turned into protocol lines per send. */
#define CHUNK (64u * 1024u)
/* The longest encoded line: 64 KiB of text, each byte escaped to at most
 * six, plus the frame; a longer one means a damaged file. */
#define LINE_MAX_BYTES (6u * CCCI_LOGLINE_MAX + 128u)
/* Steps a log can have: the marker steps plus the daemon's own. */
#define MAX_STEPS (CCCI_LOGSTORE_MAX_STEPS + 8)

struct session {
  struct ccci_tail *t;
  struct session *prev, *next;
  struct ccci_ctl_call *call;
  char id[CCCI_RUN_ID_MAX + 1];
  bool follow;
  int only;          /* the one step to stream, or -1 */
  char *only_name;   /* ... given by name, until it is seen */
  uint64_t from;     /* lines to skip in the first step streamed */
  unsigned k;        /* the step being streamed */
  bool k_announced;  /* its step message was sent */
  uint64_t off, pos; /* its next whole line: byte offset and pos */
  uint64_t eof_off;  /* the step's file ended here (UINT64_MAX: no) */
  char prefix[48];   /* `{"type":"line","step":k,"line":` */
  size_t prefix_len;
  /* The live store being watched, or NULL. */
  struct ccci_logstore *ls;
  struct ccci_logstore *gone_ls; /* closed: never watch it again */
  struct ccci_logstore_watch w;
  /* Without a live store: the steps as the files show them. */
  struct ccci_logstore_file *snap;
  unsigned nsnap;
  bool snap_valid;
  /* Reading a step file. */
  int fd;
  unsigned fd_step;
  uv_fs_t req;
  bool reading;
  struct ccci_buf fbuf; /* bytes from the file at off, not yet sent */
  bool ended;           /* the stream is over; free when no read is out */
};

struct ccci_tail {
  uv_loop_t *loop;
  struct ccci_runs *rs;
  struct session *sessions;
  struct ccci_tail_counters counters;
  bool closing;
};

static void pump(struct session *s);

/* ---- the session's life ---- */

static void session_unlink_store(struct session *s)
{
  if (s->ls != NULL)
    ccci_logstore_unwatch(s->ls, &s->w);
  s->ls = NULL;
}

static void session_free(struct session *s)
{
  struct ccci_tail *t = s->t;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    t->sessions = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  if (s->fd >= 0)
    close(s->fd);
  ccci_buf_close(&s->fbuf);
  free(s->snap);
  free(s->only_name);
  free(s);
  t->counters.clients--;
  if (t->closing && t->sessions == NULL)
    free(t);
}

/* End the stream (with @p end as its last message when not NULL). */
static void session_end(struct session *s, json_t *end)
{
  if (s->ended) {
    json_decref(end);
    return;
  }
  s->ended = true;
  session_unlink_store(s);
  if (end != NULL)
    (void)ccci_ctl_stream_json(s->call, end);
  ccci_ctl_stream_end(s->call);
  s->call = NULL;
  if (!s->reading)
    session_free(s);
}

static json_t *end_message(const struct ccci_runs_view *v)
{
  json_t *j = json_object();
  const char *reason = ccci_run_reason_name(v->reason);
  json_object_set_new(j, "type", json_string("end"));
  json_object_set_new(j, "state", json_string(ccci_run_state_name(v->state)));
  json_object_set_new(j, "reason",
                      reason != NULL && v->state == CCCI_RUN_FINISHED
                          ? json_string(reason)
                          : json_null());
  json_object_set_new(j, "exit_code",
                      v->state == CCCI_RUN_FINISHED && v->exit_code >= 0
                          ? json_integer(v->exit_code)
                          : json_null());
  return j;
}

static void on_stream(void *arg, bool gone)
{
  struct session *s = arg;
  if (gone) {
    s->ended = true;
    session_unlink_store(s);
    ccci_ctl_stream_end(s->call);
    s->call = NULL;
    if (!s->reading)
      session_free(s);
    return;
  }
  pump(s);
}

/* ---- where the steps are ---- */

static void on_store(struct ccci_logstore_watch *w, enum ccci_logstore_event ev)
{
  struct session *s = ccci_container_of(w, struct session, w);
  unsigned i, n;

  if (ev == CCCI_LOGSTORE_DATA) {
    pump(s);
    return;
  }
  /* The store is done and about to go: everything is in the files now,
   * and these are their final sizes. The run's state changes right after,
   * and the observer wakes the session then. */
  n = ccci_logstore_nsteps(s->ls);
  free(s->snap);
  s->snap = ccci_xcalloc(n ? n : 1, sizeof(*s->snap));
  for (i = 0; i < n; i++) {
    struct ccci_logstore_stepinfo si;
    ccci_logstore_stepinfo(s->ls, i, &si);
    snprintf(s->snap[i].name, sizeof(s->snap[i].name), "%s", si.name);
    s->snap[i].bytes = si.bytes;
  }
  s->nsnap = n;
  s->snap_valid = true;
  s->gone_ls = s->ls;
  s->ls = NULL; /* already unwatched by the store */
}

/* The steps of a run without a live store, from its logs directory (a
 * small local directory: read on the loop, like the store's own file
 * creation). */
static void snap_scan(struct session *s, const char *dir)
{
  char *logs = ccci_xasprintf("%s/logs", dir);
  free(s->snap);
  s->snap = ccci_xcalloc(MAX_STEPS, sizeof(*s->snap));
  s->nsnap = ccci_logstore_scan(logs, s->snap, MAX_STEPS);
  s->snap_valid = true;
  free(logs);
}

/* Step @p k as the session can see it now: false when it does not exist
 * (yet). */
static bool step_get(struct session *s, const struct ccci_runs_view *v,
                     unsigned k, struct ccci_logstore_stepinfo *out)
{
  if (s->ls != NULL) {
    if (k >= ccci_logstore_nsteps(s->ls))
      return false;
    ccci_logstore_stepinfo(s->ls, k, out);
    return true;
  }
  if (!s->snap_valid)
    snap_scan(s, v->dir);
  if (k >= s->nsnap)
    return false;
  out->name = s->snap[k].name;
  out->bytes = s->snap[k].bytes;
  out->lines = 0;
  /* Files without a store grow no more until the run starts again. */
  out->closed = k + 1 < s->nsnap || v->state == CCCI_RUN_FINISHED;
  return true;
}

/* Follow the run's live store when it has one. */
static void attach(struct session *s, const struct ccci_runs_view *v)
{
  /* A store that opens later (the run starts, or the janitor appends its
   * teardown) holds the earlier steps too, as closed ones: the session's
   * position stays valid. */
  if (v->logs == NULL || v->logs == s->ls || v->logs == s->gone_ls)
    return;
  session_unlink_store(s);
  s->ls = v->logs;
  s->w.cb = on_store;
  ccci_logstore_watch(s->ls, &s->w);
  s->snap_valid = false;
}

/* ---- sending ---- */

static void set_step(struct session *s, unsigned k)
{
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  s->k = k;
  s->off = 0;
  s->pos = 0;
  s->eof_off = UINT64_MAX;
  s->k_announced = false;
  ccci_buf_consume(&s->fbuf, s->fbuf.len);
  s->prefix_len =
      (size_t)snprintf(s->prefix, sizeof(s->prefix),
                       "{\"type\":\"line\",\"step\":%u,\"line\":", k);
}

static void announce(struct session *s, const char *name)
{
  json_t *j;
  if (s->k_announced)
    return;
  s->k_announced = true;
  j = json_object();
  json_object_set_new(j, "type", json_string("step"));
  json_object_set_new(j, "n", json_integer(s->k));
  json_object_set_new(j, "name", json_string(name));
  (void)ccci_ctl_stream_json(s->call, j);
}

/* Send the whole lines at @p p (at most @p len bytes, from the session's
 * offset) as protocol lines; returns the bytes consumed. */
static size_t emit(struct session *s, const char *p, size_t len)
{
  const char *q = p, *end = p + len, *nl;
  size_t lines = 0, used, cap;
  char *out, *d;

  while (q < end && (nl = memchr(q, '\n', (size_t)(end - q))) != NULL) {
    lines++;
    q = nl + 1;
  }
  used = (size_t)(q - p);
  if (lines == 0)
    return 0;
  cap = used + lines * (s->prefix_len + 2);
  d = out = ccci_xmalloc(cap ? cap : 1);
  q = p;
  while (q < p + used) {
    nl = memchr(q, '\n', (size_t)(p + used - q));
    if (s->pos >= s->from) {
      memcpy(d, s->prefix, s->prefix_len);
      d += s->prefix_len;
      memcpy(d, q, (size_t)(nl - q));
      d += nl - q;
      *d++ = '}';
      *d++ = '\n';
      s->t->counters.lines++;
    }
    s->pos++;
    q = nl + 1;
  }
  s->off += used;
  if (d > out)
    (void)ccci_ctl_stream_send(s->call, out, (size_t)(d - out));
  else
    free(out);
  return used;
}

/* ---- reading a step file ---- */

static void on_file_read(uv_fs_t *req)
{
  struct session *s = ccci_container_of(req, struct session, req);
  ssize_t n = req->result;

  uv_fs_req_cleanup(req);
  s->reading = false;
  if (s->ended) {
    session_free(s);
    return;
  }
  if (n < 0) {
    ccci_log(CCCI_LOG_WARN, "tail", s->id, "cannot read step %u: %s", s->k,
             uv_strerror((int)n));
    session_end(s, NULL);
    return;
  }
  if (n == 0) {
    /* The file is shorter than the step says (a write failed, or a daemon
     * died mid-line): what is there has been sent. */
    s->off += s->fbuf.len;
    ccci_buf_consume(&s->fbuf, s->fbuf.len);
    s->eof_off = s->off;
    pump(s);
    return;
  }
  s->t->counters.from_disk += (uint64_t)n;
  s->fbuf.len += (size_t)n;
  s->fbuf.data[s->fbuf.len] = '\0';
  ccci_buf_consume(&s->fbuf, emit(s, s->fbuf.data, s->fbuf.len));
  /* An idle client keeps no buffer (a hundred of them add up). */
  if (s->fbuf.len == 0)
    ccci_buf_close(&s->fbuf);
  pump(s);
}

static void file_read(struct session *s, const char *dir, const char *name,
                      uint64_t want)
{
  uint64_t at = s->off + s->fbuf.len;
  uv_buf_t b;

  if (s->fd < 0 || s->fd_step != s->k) {
    char *path = ccci_xasprintf("%s/logs/%u-%s.jsonl", dir, s->k, name);
    if (s->fd >= 0)
      close(s->fd);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    s->fd_step = s->k;
    if (s->fd < 0) {
      ccci_log(CCCI_LOG_WARN, "tail", s->id, "cannot open %s: %s", path,
               strerror(errno));
      free(path);
      session_end(s, NULL);
      return;
    }
    free(path);
  }
  /* Read straight into the line buffer, after the partial line it holds. */
  if (ccci_buf_reserve(&s->fbuf, CHUNK) < 0) {
    ccci_log(CCCI_LOG_WARN, "tail", s->id,
             "step %u has a line over %u bytes at offset %llu: not a log", s->k,
             LINE_MAX_BYTES, (unsigned long long)s->off);
    session_end(s, NULL);
    return;
  }
  b = uv_buf_init(s->fbuf.data + s->fbuf.len,
                  (unsigned)(want - at < CHUNK ? want - at : CHUNK));
  if (uv_fs_read(s->t->loop, &s->req, s->fd, &b, 1, (int64_t)at, on_file_read) <
      0) {
    session_end(s, NULL);
    return;
  }
  s->reading = true;
}

/* ---- the pump ---- */

static bool run_done(const struct ccci_runs_view *v)
{
  return v->state == CCCI_RUN_FINISHED && v->logs == NULL;
}

/* The step the client asked for by name, once it exists. */
static void resolve_only(struct session *s, const struct ccci_runs_view *v)
{
  struct ccci_logstore_stepinfo si;
  unsigned k;
  for (k = 0; s->only_name != NULL && step_get(s, v, k, &si); k++)
    if (strcmp(si.name, s->only_name) == 0) {
      free(s->only_name);
      s->only_name = NULL;
      s->only = (int)k;
      set_step(s, k);
    }
}

/* Send what the client can take now; return to wait for the store, the
 * runs' observer, a file read or the client's drain. */
static void pump(struct session *s)
{
  while (!s->ended && !s->reading) {
    struct ccci_runs_view v;
    struct ccci_logstore_stepinfo si;
    bool waiting_for_name;

    if (ccci_ctl_stream_queued(s->call) >= CCCI_CTL_STREAM_HIGH_WATER)
      return; /* on_stream() goes on */
    if (ccci_runs_view(s->t->rs, s->id, &v) < 0) {
      session_end(s, NULL); /* the run is gone (retention) */
      return;
    }
    attach(s, &v);
    resolve_only(s, &v);
    waiting_for_name = s->only_name != NULL;
    if (waiting_for_name || !step_get(s, &v, s->k, &si)) {
      if (run_done(&v) || !s->follow)
        session_end(s, end_message(&v));
      return;
    }
    if (s->only < 0 || s->only == (int)s->k)
      announce(s, si.name);
    if (s->off < si.bytes && s->off != s->eof_off) {
      const char *p;
      size_t len = 0;
      if (s->ls != NULL)
        len = ccci_logstore_peek(s->ls, s->k, s->off, &p);
      if (len > 0) {
        /* In memory: any bytes read from the file before are the same.
         * Memory holds whole lines; one may be longer than a chunk. */
        ccci_buf_consume(&s->fbuf, s->fbuf.len);
        if (emit(s, p, len < CHUNK ? len : CHUNK) == 0)
          emit(s, p, len);
        continue;
      }
      file_read(s, v.dir, si.name, si.bytes);
      return;
    }
    if (si.closed && s->only < 0) {
      set_step(s, s->k + 1);
      s->from = 0;
      continue;
    }
    if (si.closed || !s->follow) {
      /* The one step is complete, or a snapshot was asked for. */
      if (run_done(&v) || !s->follow)
        session_end(s, end_message(&v));
      return;
    }
    return; /* on_store() goes on */
  }
}

/* ---- the server ---- */

static void on_run_change(void *arg, const char *id)
{
  struct ccci_tail *t = arg;
  struct session *s = t->sessions, *next;
  while (s != NULL) {
    next = s->next;
    if (!s->ended && strcmp(s->id, id) == 0) {
      struct ccci_runs_view v;
      /* Without a store, the files may have changed; a snapshot taken
       * from a store as it closed is exact. Once the run no longer shows
       * that store, it is gone for good. */
      if (s->ls == NULL && s->gone_ls == NULL)
        s->snap_valid = false;
      if (s->gone_ls != NULL && ccci_runs_view(t->rs, id, &v) == 0 &&
          v.logs != s->gone_ls)
        s->gone_ls = NULL;
      pump(s);
    }
    s = next;
  }
}

struct ccci_tail *ccci_tail_new(uv_loop_t *loop, struct ccci_runs *rs)
{
  struct ccci_tail *t = ccci_xcalloc(1, sizeof(*t));
  t->loop = loop;
  t->rs = rs;
  ccci_runs_observe(rs, on_run_change, t);
  return t;
}

static json_t *bad(const char *fmt, const char *field)
{
  return ccci_proto_error(CCCI_E_BAD_REQUEST, fmt, field);
}

json_t *ccci_tail_op(struct ccci_tail *t, struct ccci_ctl_call *call,
                     json_t *req)
{
  json_t *id = json_object_get(req, "id"), *step = json_object_get(req, "step");
  json_t *pos = json_object_get(req, "pos"), *follow;
  struct ccci_runs_view v;
  struct session *s;
  json_t *ok;

  follow = json_object_get(req, "follow");
  if (!json_is_string(id))
    return bad("'%s' must be a run id (string)", "id");
  if (step != NULL && !json_is_null(step) &&
      !(json_is_integer(step) && json_integer_value(step) >= 0 &&
        json_integer_value(step) < MAX_STEPS) &&
      !(json_is_string(step) && json_string_length(step) > 0 &&
        json_string_length(step) <= CCCI_LOGLINE_NAME_MAX))
    return bad("'%s' must be a step number or name", "step");
  if (pos != NULL && !json_is_null(pos) &&
      !(json_is_integer(pos) && json_integer_value(pos) >= 0))
    return bad("'%s' must be an integer >= 0", "pos");
  if (follow != NULL && !json_is_null(follow) && !json_is_boolean(follow))
    return bad("'%s' must be true or false", "follow");
  if (json_string_length(id) > CCCI_RUN_ID_MAX ||
      ccci_runs_view(t->rs, json_string_value(id), &v) < 0)
    return ccci_proto_error("no-such-run", "no run '%.40s'",
                            json_string_value(id));

  s = ccci_xcalloc(1, sizeof(*s));
  s->t = t;
  s->call = call;
  s->fd = -1;
  snprintf(s->id, sizeof(s->id), "%s", json_string_value(id));
  s->follow = follow == NULL || !json_is_false(follow);
  s->only = json_is_integer(step) ? (int)json_integer_value(step) : -1;
  s->only_name =
      json_is_string(step) ? ccci_xstrdup(json_string_value(step)) : NULL;
  s->from = json_is_integer(pos) ? (uint64_t)json_integer_value(pos) : 0;
  ccci_buf_init(&s->fbuf, LINE_MAX_BYTES + CHUNK);
  set_step(s, s->only > 0 ? (unsigned)s->only : 0);
  s->next = t->sessions;
  if (t->sessions != NULL)
    t->sessions->prev = s;
  t->sessions = s;
  t->counters.clients++;
  t->counters.started++;
  ccci_ctl_stream_watch(call, on_stream, s);

  ok = ccci_proto_ok();
  json_object_set_new(ok, "id", json_string(s->id));
  json_object_set_new(ok, "state", json_string(ccci_run_state_name(v.state)));
  (void)ccci_ctl_stream_json(call, ok);
  pump(s);
  return CCCI_CTL_LATER;
}

void ccci_tail_counters(const struct ccci_tail *t,
                        struct ccci_tail_counters *out)
{
  *out = t->counters;
}

void ccci_tail_free(struct ccci_tail *t)
{
  struct session *s = t->sessions, *next;
  ccci_runs_observe(t->rs, NULL, NULL);
  t->closing = true;
  while (s != NULL) {
    next = s->next;
    if (!s->ended)
      session_end(s, NULL);
    s = next;
  }
  if (t->sessions == NULL)
    free(t);
}
