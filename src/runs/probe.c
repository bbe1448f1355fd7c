/* One probe of a pool server: spawned in its own session, output capped,
 * killed with its group on timeout or request. */
#include "ccci/runs/probe.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/runs/runner.h"

struct ccci_probe {
  uv_loop_t *loop;
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t timer;
  unsigned open; /* handles not closed yet */
  int pid;
  bool exited, eof, told;
  struct ccci_probe_result res;
  char buf[CCCI_PROBE_OUT_MAX];
  size_t len;
  char rbuf[4096];
  ccci_probe_done done;
  void *arg;
};

static void on_closed(uv_handle_t *h)
{
  struct ccci_probe *p = h->data;
  if (--p->open == 0)
    free(p);
}

/* Exit known and the pipe done (EOF or the drain time passed): tell, then
 * close everything. */
static void maybe_done(struct ccci_probe *p)
{
  if (p->told || !p->exited || !p->eof)
    return;
  p->told = true;
  uv_timer_stop(&p->timer);
  p->res.out = p->buf;
  p->res.len = p->len;
  p->done(&p->res, p->arg);
  uv_close((uv_handle_t *)&p->proc, on_closed);
  if (!uv_is_closing((uv_handle_t *)&p->out))
    uv_close((uv_handle_t *)&p->out, on_closed);
  uv_close((uv_handle_t *)&p->timer, on_closed);
}

static void pipe_done(struct ccci_probe *p)
{
  p->eof = true;
  uv_read_stop((uv_stream_t *)&p->out);
  maybe_done(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
  struct ccci_probe *p = h->data;
  (void)hint;
  *b = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
  struct ccci_probe *p = s->data;
  if (n < 0) {
    pipe_done(p);
    return;
  }
  if (n > 0) {
    size_t room = sizeof(p->buf) - p->len, take = (size_t)n;
    if (take > room) {
      take = room;
      p->res.truncated = true;
    }
    memcpy(p->buf + p->len, b->base, take);
    p->len += take;
  }
}

static void on_timer(uv_timer_t *t)
{
  struct ccci_probe *p = t->data;
  if (!p->exited) {
    p->res.timed_out = true;
    ccci_probe_kill(p);
    return;
  }
  /* Exited, but a process that left its group keeps the pipe open. */
  pipe_done(p);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig)
{
  struct ccci_probe *p = h->data;
  p->exited = true;
  p->res.exit_status = sig != 0 ? -1 : status;
  p->res.term_signal = sig;
  /* What is left of its group goes with it. */
  if (p->pid > 0)
    kill(-p->pid, SIGKILL);
  if (!p->eof)
    uv_timer_start(&p->timer, on_timer, CCCI_PROBE_DRAIN_MS, 0);
  maybe_done(p);
}

void ccci_probe_kill(struct ccci_probe *p)
{
  if (p->pid > 0 && !p->exited)
    kill(-p->pid, SIGKILL);
}

/* harness.user's uid and gid into @p opt. */
static int set_user(uv_process_options_t *opt, const char *user, char **err)
{
  struct passwd pw, *res = NULL;
  char buf[4096];
  int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
  if (rc != 0 || res == NULL) {
    *err = ccci_xasprintf("harness.user %s: %s", user,
                          rc != 0 ? strerror(rc) : "no such user");
    return rc != 0 ? -rc : -ENOENT;
  }
  if (pw.pw_uid == getuid())
    return 0; /* already that user: nothing to switch */
  opt->flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
  opt->uid = pw.pw_uid;
  opt->gid = pw.pw_gid;
  return 0;
}

int ccci_probe_start(uv_loop_t *loop, const struct ccci_probe_spec *sp,
                     ccci_probe_done done, void *arg, struct ccci_probe **out,
                     char **err)
{
  struct ccci_probe *p;
  uv_process_options_t opt;
  uv_stdio_container_t stdio[3];
  uv_file fds[2] = {-1, -1};
  char **argv = NULL;
  size_t n = 0, i;
  bool spawned = false;
  int rc;

  *out = NULL;
  *err = NULL;
  while (sp->argv[n] != NULL)
    n++;
  if (n == 0) {
    *err = ccci_xstrdup("harness.probe_command is empty");
    return -EINVAL;
  }
  memset(&opt, 0, sizeof(opt));
  if (sp->user != NULL && (rc = set_user(&opt, sp->user, err)) < 0)
    return rc;
  rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
  if (rc < 0) {
    *err =
        ccci_xasprintf("cannot create the probe's pipe: %s", uv_strerror(rc));
    return rc;
  }
  argv = ccci_xcalloc(n + 1, sizeof(char *));
  for (i = 0; i < n; i++)
    argv[i] = i == 0 && strcmp(sp->argv[0], CCCI_RUNNER_SELF) == 0
                  ? (char *)sp->self_exe
                  : sp->argv[i];
  p = ccci_xcalloc(1, sizeof(*p));
  p->loop = loop;
  p->done = done;
  p->arg = arg;
  p->res.exit_status = -1;
  uv_pipe_init(loop, &p->out, 0);
  uv_timer_init(loop, &p->timer);
  p->proc.data = p->out.data = p->timer.data = p;
  p->open = 2;
  rc = uv_pipe_open(&p->out, fds[0]);
  if (rc == 0) {
    fds[0] = -1;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    opt.file = argv[0];
    opt.args = argv;
    opt.env = (char **)sp->env;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = on_exit_cb;
    /* Its own session: its group is killed as one. */
    opt.flags |= UV_PROCESS_DETACHED;
    rc = uv_spawn(loop, &p->proc, &opt);
    spawned = true;
  }
  free(argv);
  if (fds[0] >= 0)
    close(fds[0]);
  close(fds[1]);
  if (rc < 0) {
    *err = ccci_xasprintf("cannot start %s: %s", sp->argv[0], uv_strerror(rc));
    /* A failed uv_spawn leaves its handle to be closed too. */
    p->exited = p->eof = p->told = true;
    if (spawned) {
      p->open++;
      uv_close((uv_handle_t *)&p->proc, on_closed);
    }
    uv_close((uv_handle_t *)&p->out, on_closed);
    uv_close((uv_handle_t *)&p->timer, on_closed);
    return rc;
  }
  p->open = 3;
  p->pid = p->proc.pid;
  rc = uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
  if (rc < 0)
    p->eof = true;
  if (sp->timeout_ms > 0)
    uv_timer_start(&p->timer, on_timer, sp->timeout_ms, 0);
  *out = p;
  return 0;
}
