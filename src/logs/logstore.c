/* A run's log store: steps as Drone-format JSON-lines files with ordered,
 * asynchronous writes on the loop, and logs/index.json. */
#include "ccci/logs/logstore.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/log.h"
#include "ccci/logs/logline.h"

/* Pending bytes of a step that start a write without waiting for a flush. */
#define FLUSH_BYTES (256u * 1024u)
/* Lines wait this long for company before they are written (a write is a
 * thread-pool round trip; readers take fresh lines from memory). */
#define WRITE_DELAY_MS 10
/* Room for the marker steps plus steps the daemon starts itself. */
#define MAX_FILES (CCCI_LOGSTORE_MAX_STEPS + 8)

struct step {
  struct ccci_logstore *ls;
  unsigned n;
  char name[40];
  int fd;
  uint64_t start_ms;
  uint64_t lines, bytes; /* encoded bytes accepted */
  uint64_t written;      /* bytes on disk: the next write's offset */
  struct ccci_buf pending;
  /* Double buffering: lines go to pending while spare is being written;
   * both keep their capacity, so a busy step allocates nothing. */
  struct ccci_buf spare;
  bool in_flight;
  size_t flight_len, flight_done;
  uv_fs_t req;
  bool failed;
};

struct ccci_logstore {
  uv_loop_t *loop;
  char *dir;
  char *run_id;
  struct step *steps[MAX_FILES];
  unsigned nsteps;
  unsigned marker_steps;
  uint64_t max_bytes, total, lines;
  bool truncated;
  size_t backlog;
  bool paused;
  void (*drain_cb)(void *);
  void *drain_arg;
  struct ccci_list watchers;
  struct ccci_list *walk_next; /* the next watcher told, while telling */
  uv_timer_t wtimer; /* WRITE_DELAY_MS after the first unwritten line */
  bool dirty;        /* lines or steps since the watchers were told */
  /* index.json: written on the thread pool, one at a time, latest wins. */
  uv_work_t idx_work;
  char *idx_text, *idx_flight;
  bool idx_busy;
  /* close */
  bool closing, done_now;
  void (*done)(void *);
  void *done_arg;
};

static void flush(struct step *st);
static void maybe_done(struct ccci_logstore *ls);

static char *index_text(const struct ccci_logstore *ls)
{
  json_t *a = json_array();
  char *s;
  unsigned i;
  for (i = 0; i < ls->nsteps; i++) {
    const struct step *st = ls->steps[i];
    json_array_append_new(a, json_pack("{s:i,s:s,s:I,s:I,s:b}", "n", (int)st->n,
                                       "name", st->name, "lines",
                                       (json_int_t)st->lines, "bytes",
                                       (json_int_t)st->bytes, "open",
                                       !ls->closing && i + 1 == ls->nsteps));
  }
  s = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  return s;
}

static void idx_work(uv_work_t *w)
{
  struct ccci_logstore *ls =
      ccci_container_of(w, struct ccci_logstore, idx_work);
  char *path = ccci_xasprintf("%s/index.json", ls->dir);
  size_t n = strlen(ls->idx_flight);
  ls->idx_flight[n] = '\n'; /* there is room: see idx_start() */
  /* A failed rewrite keeps the previous index; the next change retries.
   * No fsync: after a crash the index may lag; the step files are the log. */
  if (ccci_write_file_replace(path, ls->idx_flight, n + 1, 0640) < 0)
    ls->idx_flight[n] = '\0';
  free(path);
}

static void idx_start(struct ccci_logstore *ls);

static void idx_done(uv_work_t *w, int status)
{
  struct ccci_logstore *ls =
      ccci_container_of(w, struct ccci_logstore, idx_work);
  (void)status;
  free(ls->idx_flight);
  ls->idx_flight = NULL;
  ls->idx_busy = false;
  if (ls->idx_text != NULL)
    idx_start(ls);
  else
    maybe_done(ls);
}

static void idx_start(struct ccci_logstore *ls)
{
  size_t n = strlen(ls->idx_text);
  ls->idx_flight = ccci_xrealloc(ls->idx_text, n + 2);
  ls->idx_text = NULL;
  if (uv_queue_work(ls->loop, &ls->idx_work, idx_work, idx_done) < 0) {
    free(ls->idx_flight);
    ls->idx_flight = NULL;
    return;
  }
  ls->idx_busy = true;
}

/* Queue a rewrite of index.json with the current steps. */
static void index_write(struct ccci_logstore *ls)
{
  char *t = index_text(ls);
  if (t == NULL)
    return;
  free(ls->idx_text);
  ls->idx_text = t;
  if (!ls->idx_busy)
    idx_start(ls);
}

static void backlog_sub(struct ccci_logstore *ls, size_t n)
{
  ls->backlog -= n;
  if (ls->paused && ls->backlog < CCCI_LOGSTORE_LOW_WATER) {
    ls->paused = false;
    if (ls->drain_cb != NULL)
      ls->drain_cb(ls->drain_arg);
  }
}

static void on_write(uv_fs_t *req)
{
  struct step *st = ccci_container_of(req, struct step, req);
  struct ccci_logstore *ls = st->ls;
  ssize_t r = req->result;

  uv_fs_req_cleanup(req);
  if (r < 0) {
    ccci_log(CCCI_LOG_ERROR, "logs", ls->run_id,
             "cannot write step %u (%s): %s; its later lines are lost", st->n,
             st->name, uv_strerror((int)r));
    st->failed = true;
    backlog_sub(ls, st->flight_len - st->flight_done);
    st->flight_done = st->flight_len;
  } else {
    st->flight_done += (size_t)r;
    st->written += (uint64_t)r;
    backlog_sub(ls, (size_t)r);
  }
  if (st->flight_done < st->flight_len && !st->failed) {
    /* A short write: the rest goes next, at its offset. */
    uv_buf_t b = uv_buf_init(st->spare.data + st->flight_done,
                             (unsigned)(st->flight_len - st->flight_done));
    if (uv_fs_write(ls->loop, &st->req, st->fd, &b, 1, (int64_t)st->written,
                    on_write) == 0)
      return;
    st->failed = true;
    backlog_sub(ls, st->flight_len - st->flight_done);
  }
  st->spare.len = 0;
  st->in_flight = false;
  if (st->failed) {
    backlog_sub(ls, st->pending.len);
    st->pending.len = 0;
  }
  flush(st);
  maybe_done(ls);
}

/* Start a write of what is pending unless one is in flight. */
static void flush(struct step *st)
{
  struct ccci_logstore *ls = st->ls;
  struct ccci_buf t;
  uv_buf_t b;

  if (st->in_flight || st->pending.len == 0 || st->fd < 0)
    return;
  t = st->spare;
  st->spare = st->pending;
  st->pending = t;
  st->flight_len = st->spare.len;
  st->flight_done = 0;
  b = uv_buf_init(st->spare.data, (unsigned)st->flight_len);
  if (uv_fs_write(ls->loop, &st->req, st->fd, &b, 1, (int64_t)st->written,
                  on_write) < 0) {
    st->failed = true;
    backlog_sub(ls, st->flight_len);
    st->spare.len = 0;
    return;
  }
  st->in_flight = true;
}

static void step_close_fd(struct step *st)
{
  if (st->fd >= 0 && !st->in_flight && st->pending.len == 0) {
    close(st->fd);
    st->fd = -1;
    ccci_buf_close(&st->pending);
    ccci_buf_close(&st->spare);
  }
}

static int step_open(struct ccci_logstore *ls, const char *name)
{
  struct step *st;
  char *path;
  unsigned n = ls->nsteps;

  if (n >= MAX_FILES)
    return -ENOSPC;
  st = ccci_xcalloc(1, sizeof(*st));
  st->ls = ls;
  st->n = n;
  snprintf(st->name, sizeof(st->name), "%s", name);
  st->start_ms = uv_now(ls->loop);
  ccci_buf_init(&st->pending, SIZE_MAX);
  ccci_buf_init(&st->spare, SIZE_MAX);
  path = ccci_xasprintf("%s/%u-%s.jsonl", ls->dir, n, st->name);
  /* Opening a new file in our own directory is quick; writes are async. */
  st->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (st->fd < 0) {
    int r = -errno;
    ccci_log(CCCI_LOG_ERROR, "logs", ls->run_id, "cannot create %s: %s", path,
             strerror(errno));
    free(path);
    ccci_buf_close(&st->pending);
    free(st);
    return r;
  }
  free(path);
  if (n > 0) {
    flush(ls->steps[n - 1]);
    step_close_fd(ls->steps[n - 1]);
  }
  ls->steps[ls->nsteps++] = st;
  ls->dirty = true;
  index_write(ls);
  return 0;
}

/* A step already on disk (a reopened store): closed, served from its file. */
static void step_add_closed(struct ccci_logstore *ls, const char *name,
                            uint64_t lines, uint64_t bytes)
{
  struct step *st = ccci_xcalloc(1, sizeof(*st));
  st->ls = ls;
  st->n = ls->nsteps;
  memcpy(st->name, name, strlen(name) + 1); /* callers check it fits */
  st->fd = -1;
  st->lines = lines;
  st->bytes = st->written = bytes;
  ccci_buf_init(&st->pending, SIZE_MAX);
  ccci_buf_init(&st->spare, SIZE_MAX);
  ls->steps[ls->nsteps++] = st;
  ls->total += bytes;
  ls->lines += lines;
}

/* The steps a store left in @p dir: index.json's list when each entry's
 * file is there with its size, else the files `<n>-<name>.jsonl` from 0 on
 * (their line counts unknown: 0). */
static void load_steps(struct ccci_logstore *ls)
{
  char *path = ccci_xasprintf("%s/index.json", ls->dir), *text = NULL;
  json_t *idx = NULL, *e;
  size_t i;
  struct stat sb;

  if (ccci_read_file(path, 1 << 20, &text, NULL) == 0)
    idx = json_loads(text, 0, NULL);
  free(text);
  free(path);
  json_array_foreach(json_is_array(idx) ? idx : NULL, i, e)
  {
    const char *name = json_string_value(json_object_get(e, "name"));
    json_int_t n = json_integer_value(json_object_get(e, "n"));
    char *f;
    bool ok;
    /* A name we could not have written ends the list like a gap. */
    if (name == NULL || strlen(name) >= sizeof(((struct step *)0)->name) ||
        n != (json_int_t)i || i >= MAX_FILES - 1)
      break;
    f = ccci_xasprintf("%s/%u-%s.jsonl", ls->dir, (unsigned)i, name);
    ok = stat(f, &sb) == 0;
    free(f);
    if (!ok)
      break;
    step_add_closed(ls, name,
                    (uint64_t)json_integer_value(json_object_get(e, "lines")),
                    (uint64_t)sb.st_size);
  }
  json_decref(idx);
  if (ls->nsteps == 0) {
    struct ccci_logstore_file f[MAX_FILES - 1];
    unsigned n = ccci_logstore_scan(ls->dir, f, MAX_FILES - 1), k;
    for (k = 0; k < n; k++)
      step_add_closed(ls, f[k].name, 0, f[k].bytes);
  }
}

unsigned ccci_logstore_scan(const char *dir, struct ccci_logstore_file *out,
                            unsigned max)
{
  bool *have = ccci_xcalloc(max ? max : 1, sizeof(bool));
  struct dirent *de;
  DIR *d = opendir(dir);
  unsigned n = 0;

  while (d != NULL && (de = readdir(d)) != NULL) {
    char *end, *path;
    unsigned long k = strtoul(de->d_name, &end, 10);
    size_t l = strlen(de->d_name), nl;
    struct stat sb;
    if (end == de->d_name || *end != '-' || k >= max || l < 7 ||
        strcmp(de->d_name + l - 6, ".jsonl") != 0)
      continue;
    nl = l - 6 - (size_t)(end + 1 - de->d_name);
    if (nl == 0 || nl >= sizeof(out[k].name))
      continue;
    path = ccci_xasprintf("%s/%s", dir, de->d_name);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
      memcpy(out[k].name, end + 1, nl);
      out[k].name[nl] = '\0';
      out[k].bytes = (uint64_t)sb.st_size;
      have[k] = true;
    }
    free(path);
  }
  if (d != NULL)
    closedir(d);
  while (n < max && have[n])
    n++;
  free(have);
  return n;
}

/* Open a store in @p dir with a first new step @p step; with @p reopen the
 * steps already there come first (closed). */
static int store_open(uv_loop_t *loop, const char *dir, const char *run_id,
                      uint64_t max_bytes, bool reopen, const char *step,
                      struct ccci_logstore **out, char **err)
{
  struct ccci_logstore *ls;
  unsigned i;
  int r;

  *out = NULL;
  *err = NULL;
  r = ccci_mkdir_p(dir, 0750);
  if (r < 0) {
    *err = ccci_xasprintf("cannot create %s: %s", dir, strerror(-r));
    return r;
  }
  ls = ccci_xcalloc(1, sizeof(*ls));
  ls->loop = loop;
  ccci_list_init(&ls->watchers);
  ls->dir = ccci_xstrdup(dir);
  ls->run_id = ccci_xstrdup(run_id);
  ls->max_bytes = max_bytes;
  if (reopen) {
    load_steps(ls);
    ls->marker_steps = CCCI_LOGSTORE_MAX_STEPS; /* markers are plain lines */
  }
  r = step_open(ls, step);
  if (r < 0) {
    *err = ccci_xasprintf("cannot create step %s in %s: %s", step, dir,
                          strerror(-r));
    for (i = 0; i < ls->nsteps; i++)
      free(ls->steps[i]);
    free(ls->dir);
    free(ls->run_id);
    free(ls);
    return r;
  }
  uv_timer_init(loop, &ls->wtimer);
  ls->wtimer.data = ls;
  *out = ls;
  return 0;
}

int ccci_logstore_open(uv_loop_t *loop, const char *dir, const char *run_id,
                       uint64_t max_bytes, struct ccci_logstore **out,
                       char **err)
{
  return store_open(loop, dir, run_id, max_bytes, false, "init", out, err);
}

int ccci_logstore_reopen(uv_loop_t *loop, const char *dir, const char *run_id,
                         uint64_t max_bytes, const char *step,
                         struct ccci_logstore **out, char **err)
{
  return store_open(loop, dir, run_id, max_bytes, true, step, out, err);
}

static void add(struct ccci_logstore *ls, const char *text, size_t len)
{
  struct step *st = ls->steps[ls->nsteps - 1];
  size_t before = st->pending.len;
  uint64_t secs = (uv_now(ls->loop) - st->start_ms) / 1000u;

  if (st->failed)
    return;
  if (ccci_logline_encode(&st->pending, st->lines, text, len, secs) < 0)
    return;
  st->lines++;
  ls->dirty = true;
  st->bytes += st->pending.len - before;
  ls->total += st->pending.len - before;
  ls->lines++;
  ls->backlog += st->pending.len - before;
  if (ls->backlog > CCCI_LOGSTORE_HIGH_WATER)
    ls->paused = true;
  /* Lines are batched: a write goes out per ccci_logstore_flush() (after
   * each pipe read) or once this much is pending. */
  if (st->pending.len >= FLUSH_BYTES)
    flush(st);
}

/* Tell every watcher; a callback may remove itself (or the next one). */
static void notify(struct ccci_logstore *ls, enum ccci_logstore_event ev)
{
  struct ccci_list *it = ls->watchers.next;
  ls->dirty = false;
  while (it != &ls->watchers) {
    struct ccci_logstore_watch *w =
        ccci_container_of(it, struct ccci_logstore_watch, link);
    ls->walk_next = it->next;
    if (ev == CCCI_LOGSTORE_CLOSED)
      ccci_logstore_unwatch(ls, w);
    w->cb(w, ev);
    it = ls->walk_next;
  }
  ls->walk_next = NULL;
}

static void flush_all(struct ccci_logstore *ls)
{
  unsigned i;
  for (i = 0; i < ls->nsteps; i++)
    flush(ls->steps[i]);
}

static void on_wtimer(uv_timer_t *t)
{
  flush_all(t->data);
}

void ccci_logstore_flush(struct ccci_logstore *ls)
{
  if (!uv_is_active((uv_handle_t *)&ls->wtimer))
    uv_timer_start(&ls->wtimer, on_wtimer, WRITE_DELAY_MS, 0);
  if (ls->dirty)
    notify(ls, CCCI_LOGSTORE_DATA);
}

unsigned ccci_logstore_nsteps(const struct ccci_logstore *ls)
{
  return ls->nsteps;
}

void ccci_logstore_stepinfo(const struct ccci_logstore *ls, unsigned n,
                            struct ccci_logstore_stepinfo *out)
{
  const struct step *st = ls->steps[n];
  out->name = st->name;
  out->bytes = st->bytes;
  out->lines = st->lines;
  out->closed = ls->closing || n + 1 < ls->nsteps;
}

size_t ccci_logstore_peek(const struct ccci_logstore *ls, unsigned n,
                          uint64_t off, const char **p)
{
  const struct step *st = ls->steps[n];
  /* Memory holds the write in flight (from its start offset), then what
   * is pending: together the bytes from there up to st->bytes. */
  uint64_t base = st->written - (st->in_flight ? st->flight_done : 0);

  if (st->in_flight) {
    if (off >= base && off < base + st->flight_len) {
      *p = st->spare.data + (off - base);
      return (size_t)(base + st->flight_len - off);
    }
    base += st->flight_len;
  }
  if (off >= base && off < base + st->pending.len) {
    *p = st->pending.data + (off - base);
    return (size_t)(base + st->pending.len - off);
  }
  return 0;
}

char *ccci_logstore_path(const struct ccci_logstore *ls, unsigned n)
{
  return ccci_xasprintf("%s/%u-%s.jsonl", ls->dir, n, ls->steps[n]->name);
}

void ccci_logstore_watch(struct ccci_logstore *ls,
                         struct ccci_logstore_watch *w)
{
  ccci_list_add_head(&ls->watchers, &w->link);
}

void ccci_logstore_unwatch(struct ccci_logstore *ls,
                           struct ccci_logstore_watch *w)
{
  if (ls->walk_next == &w->link)
    ls->walk_next = w->link.next;
  ccci_list_remove(&w->link);
}

void ccci_logstore_line(struct ccci_logstore *ls, const char *text, size_t len,
                        bool whole)
{
  char name[33];
  if (ls->closing)
    return;
  if (whole && ls->marker_steps + 1 < CCCI_LOGSTORE_MAX_STEPS) {
    size_t l = len > 0 && text[len - 1] == '\n' ? len - 1 : len;
    if (ccci_logline_marker(text, l, name) == 1) {
      ls->marker_steps++;
      if (step_open(ls, name) == 0)
        return;
    }
  }
  if (ls->truncated)
    return;
  if (ls->total + len > ls->max_bytes) {
    char msg[160];
    int n = snprintf(msg, sizeof(msg),
                     "[ccci] the log reached log_max_bytes (%llu bytes); "
                     "later lines are dropped, the run goes on\n",
                     (unsigned long long)ls->max_bytes);
    ls->truncated = true;
    ccci_log(CCCI_LOG_WARN, "logs", ls->run_id, "log truncated at %llu bytes",
             (unsigned long long)ls->max_bytes);
    add(ls, msg, (size_t)n);
    return;
  }
  add(ls, text, len);
}

void ccci_logstore_step(struct ccci_logstore *ls, const char *name)
{
  if (!ls->closing)
    (void)step_open(ls, name);
}

size_t ccci_logstore_backlog(const struct ccci_logstore *ls)
{
  return ls->backlog;
}

void ccci_logstore_on_drain(struct ccci_logstore *ls, void (*cb)(void *arg),
                            void *arg)
{
  ls->drain_cb = cb;
  ls->drain_arg = arg;
}

void ccci_logstore_counts(const struct ccci_logstore *ls, uint64_t *lines,
                          uint64_t *bytes)
{
  *lines = ls->lines;
  *bytes = ls->total;
}

/* The last step of a close: free, then tell. */
static void on_wtimer_closed(uv_handle_t *h)
{
  struct ccci_logstore *ls = h->data;
  void (*done)(void *) = ls->done;
  void *arg = ls->done_arg;
  unsigned i;
  for (i = 0; i < ls->nsteps; i++) {
    ccci_buf_close(&ls->steps[i]->pending);
    ccci_buf_close(&ls->steps[i]->spare);
    free(ls->steps[i]);
  }
  free(ls->dir);
  free(ls->run_id);
  free(ls);
  done(arg);
}

static void maybe_done(struct ccci_logstore *ls)
{
  unsigned i;

  if (!ls->closing || ls->done_now)
    return;
  for (i = 0; i < ls->nsteps; i++) {
    step_close_fd(ls->steps[i]);
    if (ls->steps[i]->fd >= 0)
      return;
  }
  if (ls->idx_busy || ls->idx_text != NULL || ls->done == NULL)
    return;
  ls->done_now = true;
  notify(ls, CCCI_LOGSTORE_CLOSED);
  uv_close((uv_handle_t *)&ls->wtimer, on_wtimer_closed);
}

void ccci_logstore_close(struct ccci_logstore *ls, void (*done)(void *arg),
                         void *arg)
{
  unsigned i;
  ls->closing = true;
  ls->done = done;
  ls->done_arg = arg;
  ls->drain_cb = NULL;
  uv_timer_stop(&ls->wtimer);
  for (i = 0; i < ls->nsteps; i++)
    flush(ls->steps[i]);
  index_write(ls);
  maybe_done(ls);
}
