/* One supervised process of a run on the loop: the supervisor spawned in
 * its own session, its two pipes through a redactor and a line assembler
 * each into the log store, the deadline, and the stop funnel. */
#include "ccci/runs/runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/log.h"
#include "ccci/logs/logline.h"

/* One pipe read at most: the size of a Linux pipe's default buffer. */
#define RBUF_SIZE 65536

struct side {
  struct ccci_runner *r;
  uv_pipe_t h;
  bool open;    /* the handle is initialised and not closed */
  bool done;    /* EOF (or drained): nothing more comes */
  bool reading; /* uv_read_start is in effect */
  struct ccci_redact *red;
  struct ccci_buf partial; /* the line being assembled */
  bool cont;               /* the current line already lost pieces */
  char *rbuf;              /* RBUF_SIZE bytes from ccci_io_alloc */
};

struct ccci_runner {
  uv_loop_t *loop;
  char *run_id;
  uv_process_t proc;
  uv_timer_t deadline, backstop, drain;
  struct side out, err;
  struct ccci_logstore *logs;
  uint64_t *redacted_bytes, *redacted_masks; /* the owner's, or NULL */
  ccci_runner_done done;
  void *arg;
  struct ccci_runner_result res;
  uint64_t start_ms, kill_grace_ms, drain_ms;
  int pid;
  unsigned handles; /* open handles; the runner is freed at zero */
  bool exited, stopping, finished, freeing, paused;
};

static void on_handle_close(uv_handle_t *h)
{
  struct ccci_runner *r = h->data;
  if (--r->handles == 0 && r->freeing) {
    ccci_redact_free(r->out.red);
    ccci_redact_free(r->err.red);
    ccci_buf_close(&r->out.partial);
    ccci_buf_close(&r->err.partial);
    ccci_io_free(r->out.rbuf, RBUF_SIZE);
    ccci_io_free(r->err.rbuf, RBUF_SIZE);
    free(r->run_id);
    free(r);
  }
}

static void close_handle(struct ccci_runner *r, uv_handle_t *h)
{
  if (!uv_is_closing(h))
    uv_close(h, on_handle_close);
  (void)r;
}

/* ---- lines ---- */

/* Hand a line of the assembler to the log store, cut into pieces of at
 * most CCCI_LOGLINE_MAX bytes on UTF-8 boundaries. */
static void put_line(struct side *s, const char *p, size_t len, bool whole)
{
  while (len > CCCI_LOGLINE_MAX) {
    size_t piece = ccci_logline_cut(p, len, CCCI_LOGLINE_MAX);
    ccci_logstore_line(s->r->logs, p, piece, false);
    p += piece;
    len -= piece;
    whole = false;
  }
  ccci_logstore_line(s->r->logs, p, len, whole);
}

/* Released (redacted) bytes of one pipe: complete lines go out, the rest
 * waits for its newline; a partial line reaching the cap goes out as a
 * piece. */
static void assemble(struct side *s, const char *p, size_t len)
{
  int rc;
  while (len > 0) {
    const char *nl = memchr(p, '\n', len);
    size_t n = nl ? (size_t)(nl - p) + 1 : len;
    if (nl != NULL && s->partial.len == 0) {
      put_line(s, p, n, !s->cont);
      s->cont = false;
    } else if (nl != NULL) {
      rc = ccci_buf_append(&s->partial, p, n);
      (void)rc; /* uncapped: bounded by the piece logic below */
      put_line(s, s->partial.data, s->partial.len, !s->cont);
      ccci_buf_consume(&s->partial, s->partial.len);
      s->cont = false;
    } else {
      rc = ccci_buf_append(&s->partial, p, n);
      (void)rc;
      /* Cut only with a few bytes past the limit in hand, so a UTF-8
       * sequence straddling it is whole when the cut is chosen. */
      while (s->partial.len >= CCCI_LOGLINE_MAX + 4) {
        size_t piece =
            ccci_logline_cut(s->partial.data, s->partial.len, CCCI_LOGLINE_MAX);
        ccci_logstore_line(s->r->logs, s->partial.data, piece, false);
        ccci_buf_consume(&s->partial, piece);
        s->cont = true;
      }
    }
    p += n;
    len -= n;
  }
}

/* The end of one pipe: the redactor's rest, then the unfinished line. */
static void side_finish(struct side *s)
{
  const char *out;
  size_t len;
  uint64_t m0 = s->red != NULL ? ccci_redact_masked(s->red) : 0;
  if (s->red != NULL && ccci_redact_finish(s->red, &out, &len) == 0)
    assemble(s, out, len);
  if (s->red != NULL && s->r->redacted_masks != NULL)
    *s->r->redacted_masks += ccci_redact_masked(s->red) - m0;
  if (s->partial.len > 0) {
    put_line(s, s->partial.data, s->partial.len, !s->cont);
    ccci_buf_consume(&s->partial, s->partial.len);
  }
}

/* ---- completion ---- */

static void maybe_finish(struct ccci_runner *r)
{
  if (r->finished || !r->exited || !r->out.done || !r->err.done)
    return;
  r->finished = true;
  uv_timer_stop(&r->drain);
  uv_timer_stop(&r->deadline);
  uv_timer_stop(&r->backstop);
  r->res.duration_ms = ccci_now_ms() - r->start_ms;
  r->done(r, &r->res, r->arg);
}

static void side_close(struct side *s)
{
  if (s->done)
    return;
  s->done = true;
  if (s->reading)
    uv_read_stop((uv_stream_t *)&s->h);
  s->reading = false;
  side_finish(s);
  ccci_logstore_flush(s->r->logs);
  close_handle(s->r, (uv_handle_t *)&s->h);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct side *s = ccci_container_of((uv_pipe_t *)h, struct side, h);
  (void)hint;
  *buf = uv_buf_init(s->rbuf, RBUF_SIZE);
}

static void read_start(struct side *s);

static void on_logs_drained(void *arg)
{
  struct ccci_runner *r = arg;
  r->paused = false;
  read_start(&r->out);
  read_start(&r->err);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
  struct side *s = ccci_container_of((uv_pipe_t *)st, struct side, h);
  struct ccci_runner *r = s->r;
  const char *out;
  size_t len;
  uint64_t m0;
  (void)buf;

  if (n == 0)
    return;
  if (n < 0) {
    if (n != UV_EOF)
      ccci_log(CCCI_LOG_WARN, "runner", r->run_id, "pipe read failed: %s",
               uv_strerror((int)n));
    side_close(s);
    maybe_finish(r);
    return;
  }
  m0 = ccci_redact_masked(s->red);
  if (ccci_redact_feed(s->red, s->rbuf, (size_t)n, &out, &len) == 0)
    assemble(s, out, len);
  if (r->redacted_bytes != NULL)
    *r->redacted_bytes += (uint64_t)n;
  if (r->redacted_masks != NULL)
    *r->redacted_masks += ccci_redact_masked(s->red) - m0;
  ccci_logstore_flush(r->logs);
  /* A child faster than the disk is slowed: its pipe is not read. */
  if (ccci_logstore_backlog(r->logs) > CCCI_LOGSTORE_HIGH_WATER) {
    r->paused = true;
    if (r->out.reading && !r->out.done)
      uv_read_stop((uv_stream_t *)&r->out.h);
    if (r->err.reading && !r->err.done)
      uv_read_stop((uv_stream_t *)&r->err.h);
    r->out.reading = r->err.reading = false;
  }
}

static void read_start(struct side *s)
{
  if (s->done || s->reading || s->r->paused)
    return;
  if (uv_read_start((uv_stream_t *)&s->h, on_alloc, on_read) == 0)
    s->reading = true;
}

static void on_drain_timeout(uv_timer_t *t)
{
  struct ccci_runner *r = t->data;
  if (r->paused) {
    /* Not reading because the disk is behind: that is not a stuck pipe. */
    uv_timer_start(&r->drain, on_drain_timeout, r->drain_ms, 0);
    return;
  }
  r->res.drain_timeout = true;
  ccci_log(CCCI_LOG_WARN, "runner", r->run_id,
           "pipes still open %llu ms after the supervisor exited; closing "
           "them",
           (unsigned long long)r->drain_ms);
  side_close(&r->out);
  side_close(&r->err);
  maybe_finish(r);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
  struct ccci_runner *r = p->data;
  r->exited = true;
  r->pid = 0;
  r->res.exit_status = sig ? -1 : status;
  r->res.term_signal = sig;
  uv_timer_stop(&r->backstop);
  uv_timer_stop(&r->deadline);
  close_handle(r, (uv_handle_t *)&r->proc);
  if (!r->out.done || !r->err.done)
    uv_timer_start(&r->drain, on_drain_timeout, r->drain_ms, 0);
  maybe_finish(r);
}

/* ---- the stop funnel ---- */

/* SIGKILL every process of the supervisor's session (its pid). */
static void kill_session(int sid)
{
  DIR *d = opendir("/proc");
  struct dirent *de;
  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    char path[300], buf[512], *close_paren;
    uint64_t pid;
    int s = 0, fd;
    ssize_t n;
    if (ccci_parse_u64(de->d_name, &pid) < 0)
      continue;
    snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
      continue;
    buf[n] = '\0';
    /* pid (comm) state ppid pgrp session ... */
    close_paren = strrchr(buf, ')');
    if (close_paren != NULL &&
        sscanf(close_paren + 2, "%*c %*d %*d %d", &s) == 1 && s == sid)
      kill((pid_t)pid, SIGKILL);
  }
  closedir(d);
}

static void on_backstop(uv_timer_t *t)
{
  struct ccci_runner *r = t->data;
  if (r->exited)
    return;
  r->res.backstop = true;
  ccci_log(CCCI_LOG_ERROR, "runner", r->run_id,
           "the supervisor (pid %d) is still alive %llu ms after SIGTERM; "
           "SIGKILL to its session",
           r->pid,
           (unsigned long long)(r->kill_grace_ms + CCCI_RUNNER_BACKSTOP_MS));
  kill_session(r->pid);
  kill(r->pid, SIGKILL);
}

void ccci_runner_stop(struct ccci_runner *r, bool cancel)
{
  if (r->stopping || r->exited)
    return;
  r->stopping = true;
  if (cancel)
    r->res.cancelled = true;
  uv_timer_stop(&r->deadline);
  ccci_log(CCCI_LOG_INFO, "runner", r->run_id, "stopping (%s)",
           cancel ? "cancel" : "deadline");
  if (uv_process_kill(&r->proc, SIGTERM) < 0)
    ccci_log(CCCI_LOG_WARN, "runner", r->run_id,
             "cannot signal the supervisor");
  uv_timer_start(&r->backstop, on_backstop,
                 r->kill_grace_ms + CCCI_RUNNER_BACKSTOP_MS, 0);
}

static void on_deadline(uv_timer_t *t)
{
  struct ccci_runner *r = t->data;
  r->res.timed_out = true;
  ccci_runner_stop(r, false);
}

/* ---- start ---- */

static char **supervisor_argv(const struct ccci_runner_spec *sp)
{
  size_t n = 0, i, k = 0;
  char **v;
  while (sp->argv[n] != NULL)
    n++;
  v = ccci_xcalloc(n + 20, sizeof(char *));
  v[k++] = ccci_xstrdup(sp->self_exe);
  v[k++] = ccci_xstrdup("supervise");
  v[k++] = ccci_xstrdup("--state");
  v[k++] = ccci_xstrdup(sp->state_dir);
  v[k++] = ccci_xstrdup("--kill-grace");
  v[k++] = ccci_xasprintf("%llu", (unsigned long long)sp->kill_grace_ms);
  v[k++] = ccci_xstrdup("--drain-fd");
  v[k++] = ccci_xstrdup("3");
  v[k++] = ccci_xstrdup("--drain-fd");
  v[k++] = ccci_xstrdup("4");
  if (sp->lock_fd >= 0) {
    v[k++] = ccci_xstrdup("--lock-fd");
    v[k++] = ccci_xstrdup("5");
  }
  if (sp->user != NULL) {
    v[k++] = ccci_xstrdup("--user");
    v[k++] = ccci_xstrdup(sp->user);
  }
  v[k++] = ccci_xstrdup("--");
  for (i = 0; i < n; i++) {
    /* `ccci` as the program is the daemon's own binary (`[ccci, harness]`
     * runs the harness of the same build, wherever it is installed). */
    if (i == 0 && strcmp(sp->argv[0], CCCI_RUNNER_SELF) == 0)
      v[k++] = ccci_xstrdup(sp->self_exe);
    else
      v[k++] = ccci_xstrdup(sp->argv[i]);
  }
  return v;
}

static void free_argv(char **v)
{
  size_t i;
  for (i = 0; v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

static void side_init(struct ccci_runner *r, struct side *s,
                      struct ccci_redact_set *set)
{
  s->r = r;
  s->red = ccci_redact_new(set, NULL);
  ccci_buf_init(&s->partial, SIZE_MAX);
  s->rbuf = ccci_io_alloc(RBUF_SIZE);
  s->h.data = r;
}

int ccci_runner_start(uv_loop_t *loop, const struct ccci_runner_spec *sp,
                      ccci_runner_done done, void *arg,
                      struct ccci_runner **out, char **err)
{
  struct ccci_runner *r;
  uv_process_options_t opt;
  uv_stdio_container_t stdio[6];
  uv_file po[2] = {-1, -1}, pe[2] = {-1, -1};
  int dup_o = -1, dup_e = -1, rc;
  char **argv = NULL;

  *out = NULL;
  *err = NULL;
  rc = uv_pipe(po, UV_NONBLOCK_PIPE, 0);
  if (rc == 0)
    rc = uv_pipe(pe, UV_NONBLOCK_PIPE, 0);
  if (rc == 0) {
    dup_o = fcntl(po[0], F_DUPFD_CLOEXEC, 3);
    dup_e = fcntl(pe[0], F_DUPFD_CLOEXEC, 3);
    if (dup_o < 0 || dup_e < 0)
      rc = uv_translate_sys_error(errno);
  }
  if (rc < 0) {
    *err = ccci_xasprintf("cannot create the run's pipes: %s", uv_strerror(rc));
    goto fail_fds;
  }

  r = ccci_xcalloc(1, sizeof(*r));
  r->loop = loop;
  r->run_id = ccci_xstrdup(sp->run_id);
  r->logs = sp->logs;
  r->redacted_bytes = sp->redacted_bytes;
  r->redacted_masks = sp->redacted_masks;
  r->done = done;
  r->arg = arg;
  r->kill_grace_ms = sp->kill_grace_ms;
  r->drain_ms = sp->drain_timeout_ms;
  r->start_ms = ccci_now_ms();
  side_init(r, &r->out, sp->secrets);
  side_init(r, &r->err, sp->secrets);

  memset(&opt, 0, sizeof(opt));
  memset(stdio, 0, sizeof(stdio));
  argv = supervisor_argv(sp);
  opt.file = argv[0];
  opt.args = argv;
  opt.env = (char **)sp->env;
  opt.flags = UV_PROCESS_DETACHED;
  opt.exit_cb = on_proc_exit;
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = po[1];
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = pe[1];
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = dup_o;
  stdio[4].flags = UV_INHERIT_FD;
  stdio[4].data.fd = dup_e;
  stdio[5].flags = UV_INHERIT_FD;
  stdio[5].data.fd = sp->lock_fd;
  opt.stdio = stdio;
  opt.stdio_count = sp->lock_fd >= 0 ? 6 : 5;
  r->proc.data = r;
  rc = uv_spawn(loop, &r->proc, &opt);
  free_argv(argv);
  /* The children hold their ends now; the daemon keeps only the reads. */
  close(po[1]);
  close(pe[1]);
  close(dup_o);
  close(dup_e);
  if (rc < 0) {
    *err = ccci_xasprintf("cannot start the supervisor %s: %s", sp->self_exe,
                          uv_strerror(rc));
    close(po[0]);
    close(pe[0]);
    /* A failed uv_spawn still needs its handle closed. */
    r->freeing = true;
    r->handles = 1;
    uv_close((uv_handle_t *)&r->proc, on_handle_close);
    return rc;
  }
  r->pid = r->proc.pid;
  r->handles = 6;
  uv_pipe_init(loop, &r->out.h, 0);
  uv_pipe_init(loop, &r->err.h, 0);
  uv_pipe_open(&r->out.h, po[0]);
  uv_pipe_open(&r->err.h, pe[0]);
  r->out.open = r->err.open = true;
  uv_timer_init(loop, &r->deadline);
  uv_timer_init(loop, &r->backstop);
  uv_timer_init(loop, &r->drain);
  r->deadline.data = r->backstop.data = r->drain.data = r;
  if (sp->deadline_ms > 0)
    uv_timer_start(&r->deadline, on_deadline, sp->deadline_ms, 0);
  ccci_logstore_on_drain(r->logs, on_logs_drained, r);
  read_start(&r->out);
  read_start(&r->err);
  *out = r;
  return 0;

fail_fds:
  if (po[0] >= 0) {
    close(po[0]);
    close(po[1]);
  }
  if (pe[0] >= 0) {
    close(pe[0]);
    close(pe[1]);
  }
  if (dup_o >= 0)
    close(dup_o);
  if (dup_e >= 0)
    close(dup_e);
  return rc;
}

int ccci_runner_pid(const struct ccci_runner *r)
{
  return r->pid;
}

int ccci_runner_swap_secrets(struct ccci_runner *r, struct ccci_redact_set *set)
{
  int rc = 0;
  if (!r->out.done)
    rc = ccci_redact_swap(r->out.red, set);
  if (rc == 0 && !r->err.done)
    rc = ccci_redact_swap(r->err.red, set);
  return rc;
}

void ccci_runner_free(struct ccci_runner *r)
{
  r->freeing = true;
  ccci_logstore_on_drain(r->logs, NULL, NULL);
  close_handle(r, (uv_handle_t *)&r->deadline);
  close_handle(r, (uv_handle_t *)&r->backstop);
  close_handle(r, (uv_handle_t *)&r->drain);
  /* Pipes and the process handle are closed by now (done came after). */
  close_handle(r, (uv_handle_t *)&r->out.h);
  close_handle(r, (uv_handle_t *)&r->err.h);
  close_handle(r, (uv_handle_t *)&r->proc);
}
