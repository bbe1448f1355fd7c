/* The tail engine: a run's log from its step files, then live lines from
 * the log store's memory, with no gap and no duplicate, each reader at its
 * own pace, delivered to a sink.
 *
 * A session's position is a step and the byte offset of its next whole
 * line in that step's encoded stream. The bytes before the store's memory
 * are in the file, the rest in memory, so one offset serves both: a reader
 * that falls behind simply reads the file until it catches up. */
#include "ccci/serve/tail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/list.h"
#include "ccci/core/log.h"
#include "ccci/logs/logline.h"
#include "ccci/runs/run.h"

/* Bytes read from a step file, and handed to the sink, at a time. */
#define CHUNK (64u * 1024u)
/* The longest encoded line: 64 KiB of text, each byte escaped to at most
 * six, plus the frame; a longer one means a damaged file. */
#define LINE_MAX_BYTES (6u * CCCI_LOGLINE_MAX + 128u)

struct ccci_tail_session {
  struct ccci_tail *t;
  struct ccci_list node;       /* in t->sessions */
  struct ccci_tail_sink *sink; /* NULL once the stream is over */
  char id[CCCI_RUN_ID_MAX + 1];
  bool follow;
  int only;           /* the one step to stream, or -1 */
  char *only_name;    /* ... given by name, until it is seen */
  uint64_t from;      /* lines to skip in the first step streamed */
  bool end_with_step; /* the one step complete: the end */
  unsigned k;         /* the step being streamed */
  bool k_announced;   /* the sink was told of it */
  uint64_t off, pos;  /* its next whole line: byte offset and pos */
  uint64_t eof_off;   /* the step's file ended here (UINT64_MAX: no) */
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
  struct ccci_tail_env env;
  struct ccci_list sessions;
  struct ccci_tail_counters counters;
  bool closing;
};

static void pump(struct ccci_tail_session *s);

/* ---- the session's life ---- */

static void session_unlink_store(struct ccci_tail_session *s)
{
  if (s->ls != NULL)
    ccci_logstore_unwatch(s->ls, &s->w);
  s->ls = NULL;
}

static void session_free(struct ccci_tail_session *s)
{
  struct ccci_tail *t = s->t;
  ccci_list_remove(&s->node);
  if (s->fd >= 0)
    close(s->fd);
  ccci_buf_close(&s->fbuf);
  free(s->snap);
  free(s->only_name);
  free(s);
  t->counters.clients--;
  if (t->closing && ccci_list_empty(&t->sessions))
    free(t);
}

/* The stream is over: let the sink go (the caller tells it why, unless it
 * is gone); the session is freed once no file read is in flight. */
static void session_detach(struct ccci_tail_session *s)
{
  s->ended = true;
  session_unlink_store(s);
  if (s->sink != NULL)
    s->sink->session = NULL;
  s->sink = NULL;
  if (!s->reading)
    session_free(s);
}

/* End with the run's result. */
static void session_end(struct ccci_tail_session *s,
                        const struct ccci_runs_view *v)
{
  struct ccci_tail_sink *sink = s->sink;
  if (s->ended)
    return;
  session_detach(s);
  sink->ops->end(sink, v);
}

/* Stop without a result (see ccci_tail_sink_ops.error). */
static void session_fail(struct ccci_tail_session *s, int err)
{
  struct ccci_tail_sink *sink = s->sink;
  if (s->ended)
    return;
  session_detach(s);
  sink->ops->error(sink, err);
}

void ccci_tail_sink_drained(struct ccci_tail_sink *sink)
{
  if (sink->session != NULL)
    pump(sink->session);
}

void ccci_tail_sink_gone(struct ccci_tail_sink *sink)
{
  if (sink->session != NULL)
    session_detach(sink->session);
}

/* ---- where the steps are ---- */

static void on_store(struct ccci_logstore_watch *w, enum ccci_logstore_event ev)
{
  struct ccci_tail_session *s =
      ccci_container_of(w, struct ccci_tail_session, w);
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
static void snap_scan(struct ccci_tail_session *s, const char *dir)
{
  char *logs = ccci_xasprintf("%s/logs", dir);
  free(s->snap);
  s->snap = ccci_xcalloc(CCCI_TAIL_MAX_STEPS, sizeof(*s->snap));
  s->nsnap = ccci_logstore_scan(logs, s->snap, CCCI_TAIL_MAX_STEPS);
  s->snap_valid = true;
  free(logs);
}

/* Step @p k as the session can see it now: false when it does not exist
 * (yet). */
static bool step_get(struct ccci_tail_session *s,
                     const struct ccci_runs_view *v, unsigned k,
                     struct ccci_logstore_stepinfo *out)
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
static void attach(struct ccci_tail_session *s, const struct ccci_runs_view *v)
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

static void set_step(struct ccci_tail_session *s, unsigned k)
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
}

static void announce(struct ccci_tail_session *s, const char *name)
{
  if (s->k_announced)
    return;
  s->k_announced = true;
  s->sink->ops->step(s->sink, s->k, name);
}

/* Hand the whole lines at @p p (at most @p len bytes, from the session's
 * offset) to the sink, those before the position asked for skipped;
 * returns the bytes consumed. */
static size_t emit(struct ccci_tail_session *s, const char *p, size_t len)
{
  const char *q = p, *end = p + len, *nl, *first = NULL;
  uint64_t first_pos = 0, lines = 0;

  while (q < end && (nl = memchr(q, '\n', (size_t)(end - q))) != NULL) {
    if (first == NULL && s->pos >= s->from) {
      first = q;
      first_pos = s->pos;
    }
    if (first != NULL)
      lines++;
    s->pos++;
    q = nl + 1;
  }
  s->off += (uint64_t)(q - p);
  if (first != NULL) {
    s->t->counters.lines += lines;
    s->sink->ops->lines(s->sink, s->k, first_pos, first, (size_t)(q - first));
  }
  return (size_t)(q - p);
}

/* ---- reading a step file ---- */

static void on_file_read(uv_fs_t *req)
{
  struct ccci_tail_session *s =
      ccci_container_of(req, struct ccci_tail_session, req);
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
    session_fail(s, -EIO);
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

static void file_read(struct ccci_tail_session *s, const char *dir,
                      const char *name, uint64_t want)
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
      session_fail(s, -EIO);
      return;
    }
    free(path);
  }
  /* Read straight into the line buffer, after the partial line it holds. */
  if (ccci_buf_reserve(&s->fbuf, CHUNK) < 0) {
    ccci_log(CCCI_LOG_WARN, "tail", s->id,
             "step %u has a line over %u bytes at offset %llu: not a log", s->k,
             LINE_MAX_BYTES, (unsigned long long)s->off);
    session_fail(s, -EIO);
    return;
  }
  b = uv_buf_init(s->fbuf.data + s->fbuf.len,
                  (unsigned)(want - at < CHUNK ? want - at : CHUNK));
  if (uv_fs_read(s->t->env.loop, &s->req, s->fd, &b, 1, (int64_t)at,
                 on_file_read) < 0) {
    session_fail(s, -EIO);
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
static void resolve_only(struct ccci_tail_session *s,
                         const struct ccci_runs_view *v)
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

/* Send what the sink can take now; return to wait for the store, a run
 * change, a file read or the sink's drain. */
static void pump(struct ccci_tail_session *s)
{
  while (!s->ended && !s->reading) {
    struct ccci_runs_view v;
    struct ccci_logstore_stepinfo si;
    bool waiting_for_name;

    if (s->sink->ops->full(s->sink))
      return; /* ccci_tail_sink_drained() goes on */
    if (s->t->env.view(s->t->env.arg, s->id, &v) < 0) {
      session_fail(s, -ENOENT); /* the run is gone (retention) */
      return;
    }
    attach(s, &v);
    resolve_only(s, &v);
    waiting_for_name = s->only_name != NULL;
    if (waiting_for_name || !step_get(s, &v, s->k, &si)) {
      if (run_done(&v) || !s->follow)
        session_end(s, &v);
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
      if (run_done(&v) || !s->follow || s->end_with_step)
        session_end(s, &v);
      return;
    }
    return; /* on_store() goes on */
  }
}

/* ---- the engine ---- */

void ccci_tail_run_changed(struct ccci_tail *t, const char *id)
{
  struct ccci_list *it, *nx;
  ccci_list_foreach_safe(it, nx, &t->sessions)
  {
    struct ccci_tail_session *s =
        ccci_container_of(it, struct ccci_tail_session, node);
    struct ccci_runs_view v;
    if (s->ended || strcmp(s->id, id) != 0)
      continue;
    /* Without a store, the files may have changed; a snapshot taken from
     * a store as it closed is exact. Once the run no longer shows that
     * store, it is gone for good. */
    if (s->ls == NULL && s->gone_ls == NULL)
      s->snap_valid = false;
    if (s->gone_ls != NULL && t->env.view(t->env.arg, id, &v) == 0 &&
        v.logs != s->gone_ls)
      s->gone_ls = NULL;
    pump(s);
  }
}

struct ccci_tail *ccci_tail_new(const struct ccci_tail_env *env)
{
  struct ccci_tail *t = ccci_xcalloc(1, sizeof(*t));
  t->env = *env;
  ccci_list_init(&t->sessions);
  return t;
}

void ccci_tail_start(struct ccci_tail *t, const struct ccci_tail_request *req,
                     struct ccci_tail_sink *sink)
{
  struct ccci_tail_session *s = ccci_xcalloc(1, sizeof(*s));
  struct ccci_runs_view v;

  s->t = t;
  s->sink = sink;
  sink->session = s;
  s->fd = -1;
  snprintf(s->id, sizeof(s->id), "%s", req->id);
  s->follow = req->follow;
  s->only = req->step;
  s->only_name = req->step_name ? ccci_xstrdup(req->step_name) : NULL;
  s->from = req->from;
  s->end_with_step = req->end_with_step && (s->only >= 0 || s->only_name);
  ccci_buf_init(&s->fbuf, LINE_MAX_BYTES + CHUNK);
  if (s->only >= 0)
    set_step(s, (unsigned)s->only);
  else
    set_step(s, req->from_step < CCCI_TAIL_MAX_STEPS ? req->from_step
                                                     : CCCI_TAIL_MAX_STEPS);
  ccci_list_add_head(&t->sessions, &s->node);
  t->counters.clients++;
  t->counters.started++;
  if (t->env.view(t->env.arg, s->id, &v) < 0) {
    session_fail(s, -ENOENT);
    return;
  }
  sink->ops->begin(sink, s->id, v.state);
  pump(s);
}

void ccci_tail_counters(const struct ccci_tail *t,
                        struct ccci_tail_counters *out)
{
  *out = t->counters;
}

void ccci_tail_free(struct ccci_tail *t)
{
  struct ccci_list *it, *nx;
  ccci_list_foreach_safe(it, nx, &t->sessions)
  {
    struct ccci_tail_session *s =
        ccci_container_of(it, struct ccci_tail_session, node);
    session_fail(s, -ECANCELED);
  }
  /* What is left waits for its file read; the last one frees the engine. */
  if (ccci_list_empty(&t->sessions))
    free(t);
  else
    t->closing = true;
}
