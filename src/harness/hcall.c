/* The harness's command runner: one redacted output stream, process groups,
 * timeouts and stop signals, with poll(2) and waitpid (no libuv). */
#include "ccci/harness/hcall.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ccci/logs/redact.h"

/* A partial line longer than this is written as a line of its own. */
#define LINE_MAX_BYTES (64 * 1024)

static struct {
  struct ccci_redact *red;
  struct ccci_redact_value *vals;
  size_t nvals;
  int sigpipe[2];
  uint64_t deadline_ms;
} H = {NULL, NULL, 0, {-1, -1}, 0};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
  int e = errno;
  char c = (char)sig;
  if (sig != SIGCHLD && stop_sig == 0)
    stop_sig = sig;
  if (H.sigpipe[1] >= 0 && write(H.sigpipe[1], &c, 1) < 0) {
    /* The pipe is full: a wakeup is already pending. */
  }
  errno = e;
}

static void write_all(const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* stdout is gone: nothing else can be told */
    p += w;
    n -= (size_t)w;
  }
}

/* Every byte the harness prints goes through here. */
static void emit(const char *p, size_t n)
{
  const char *out;
  size_t len;
  if (ccci_redact_feed(H.red, p, n, &out, &len) < 0)
    return;
  write_all(out, len);
}

static int rebuild_set(void)
{
  struct ccci_redact_set *set = NULL;
  int r = ccci_redact_set_new(H.vals, H.nvals, CCCI_REDACT_MIN_LEN, &set);
  if (r < 0)
    return r;
  if (H.red == NULL) {
    H.red = ccci_redact_new(set, CCCI_REDACT_MASK);
    r = H.red != NULL ? 0 : -ENOMEM;
  } else {
    r = ccci_redact_swap(H.red, set);
  }
  ccci_redact_set_unref(set);
  return r;
}

char *ccci_hcall_redact_str(const char *s)
{
  struct ccci_redact_set *set = NULL;
  struct ccci_redact *r;
  struct ccci_buf b;
  const char *out;
  size_t len;
  if (s == NULL)
    return NULL;
  if (ccci_redact_set_new(H.vals, H.nvals, CCCI_REDACT_MIN_LEN, &set) < 0)
    return ccci_xstrdup(CCCI_REDACT_MASK);
  r = ccci_redact_new(set, CCCI_REDACT_MASK);
  ccci_redact_set_unref(set);
  if (r == NULL)
    return ccci_xstrdup(CCCI_REDACT_MASK);
  ccci_buf_init(&b, 1024 * 1024);
  if (ccci_redact_feed(r, s, strlen(s), &out, &len) < 0 ||
      ccci_buf_append(&b, out, len) < 0 ||
      ccci_redact_finish(r, &out, &len) < 0 ||
      ccci_buf_append(&b, out, len) < 0) {
    ccci_redact_free(r);
    ccci_buf_close(&b);
    return ccci_xstrdup(CCCI_REDACT_MASK);
  }
  ccci_redact_free(r);
  return ccci_buf_detach(&b);
}

int ccci_hcall_add_secret(const void *value, size_t len)
{
  void *copy;
  if (len == 0)
    return 0;
  copy = ccci_xmalloc(len);
  memcpy(copy, value, len);
  H.vals = ccci_xrealloc(H.vals, (H.nvals + 1) * sizeof(*H.vals));
  H.vals[H.nvals].data = copy;
  H.vals[H.nvals].len = len;
  H.nvals++;
  return rebuild_set();
}

int ccci_hcall_init(const char *const *values, const size_t *lens, size_t n)
{
  struct sigaction sa;
  size_t i;
  int r;

  if (pipe2(H.sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return -errno;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  for (i = 0; i < n; i++) {
    void *copy = ccci_xmalloc(lens[i] + 1);
    memcpy(copy, values[i], lens[i]);
    H.vals = ccci_xrealloc(H.vals, (H.nvals + 1) * sizeof(*H.vals));
    H.vals[H.nvals].data = copy;
    H.vals[H.nvals].len = lens[i];
    H.nvals++;
  }
  r = rebuild_set();
  return r;
}

void ccci_hcall_close(void)
{
  const char *out;
  size_t len, i;
  if (H.red != NULL && ccci_redact_finish(H.red, &out, &len) == 0)
    write_all(out, len);
  ccci_redact_free(H.red);
  H.red = NULL;
  for (i = 0; i < H.nvals; i++)
    ccci_wipe_free((void *)H.vals[i].data, H.vals[i].len);
  free(H.vals);
  H.vals = NULL;
  H.nvals = 0;
}

void ccci_hcall_printf(const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start(ap, fmt);
  s = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  emit(s, strlen(s));
  free(s);
}

int ccci_hcall_stopped(void)
{
  return stop_sig;
}

void ccci_hcall_set_deadline(uint64_t deadline_ms)
{
  H.deadline_ms = deadline_ms;
}

bool ccci_hcall_deadline_passed(void)
{
  return H.deadline_ms != 0 && ccci_now_ms() >= H.deadline_ms;
}

/* Print argv as a shell would read it back: words with special characters
 * in single quotes. */
static void print_argv(char *const *argv)
{
  struct ccci_buf b;
  size_t i;
  ccci_buf_init(&b, 1024 * 1024);
  if (ccci_buf_append(&b, "$", 1) < 0)
    abort();
  for (i = 0; argv[i] != NULL; i++) {
    const char *a = argv[i];
    bool plain = *a != '\0' &&
                 strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
                           "yz0123456789-_./:=+,@%") == strlen(a);
    int r;
    if (plain) {
      r = ccci_buf_printf(&b, " %s", a);
    } else {
      const char *p;
      r = ccci_buf_append(&b, " '", 2);
      for (p = a; r == 0 && *p != '\0'; p++)
        r = *p == '\'' ? ccci_buf_append(&b, "'\\''", 4)
                       : ccci_buf_append(&b, p, 1);
      if (r == 0)
        r = ccci_buf_append(&b, "'", 1);
    }
    if (r < 0)
      break;
  }
  if (ccci_buf_append(&b, "\n", 1) == 0)
    emit(b.data, b.len);
  ccci_buf_close(&b);
}

struct stream {
  int fd;
  bool print;
  struct ccci_buf line; /* the partial line */
  struct ccci_buf *cap; /* capture, or NULL */
  char last[512];       /* the last complete line (stderr: for reasons) */
  const struct ccci_strlist *match; /* texts looked for, or NULL */
  const char **matched;             /* the first one found */
};

/* Whether @p pat (not empty) is in the @p n bytes at @p p, in any case. */
static bool has_text(const char *p, size_t n, const char *pat)
{
  size_t m = strlen(pat), i;
  if (m == 0 || m > n)
    return false;
  for (i = 0; i + m <= n; i++)
    if (strncasecmp(p + i, pat, m) == 0)
      return true;
  return false;
}

static void stream_match(struct stream *s, const char *p, size_t n)
{
  size_t i;
  if (s->match == NULL || *s->matched != NULL)
    return;
  for (i = 0; i < s->match->n; i++)
    if (has_text(p, n, s->match->v[i])) {
      *s->matched = s->match->v[i];
      return;
    }
}

static void stream_line(struct stream *s, const char *p, size_t n)
{
  size_t k = n < sizeof(s->last) - 1 ? n : sizeof(s->last) - 1;
  if (n > 0) {
    memcpy(s->last, p, k);
    s->last[k] = '\0';
  }
  stream_match(s, p, n);
  if (s->print) {
    emit(p, n);
    emit("\n", 1);
  }
}

static void stream_read(struct stream *s)
{
  char buf[16384];
  ssize_t n = read(s->fd, buf, sizeof(buf));
  size_t i, start = 0;
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    if (s->line.len > 0)
      stream_line(s, s->line.data, s->line.len);
    ccci_buf_consume(&s->line, s->line.len);
    close(s->fd);
    s->fd = -1;
    return;
  }
  if (s->cap != NULL && ccci_buf_append(s->cap, buf, (size_t)n) < 0) {
    /* Past the cap the rest is not kept; the caller sees a cut text. */
  }
  for (i = 0; i < (size_t)n; i++) {
    if (buf[i] != '\n')
      continue;
    if (s->line.len > 0) {
      if (ccci_buf_append(&s->line, buf + start, i - start) < 0) {
        /* Cannot happen: the partial line is kept under its cap. */
      }
      stream_line(s, s->line.data, s->line.len);
      ccci_buf_consume(&s->line, s->line.len);
    } else {
      stream_line(s, buf + start, i - start);
    }
    start = i + 1;
  }
  if (start < (size_t)n) {
    if (s->line.len + ((size_t)n - start) > LINE_MAX_BYTES) {
      if (ccci_buf_append(&s->line, buf + start, (size_t)n - start) < 0) {
        /* over the cap: write what is held, then this piece */
        stream_line(s, s->line.data, s->line.len);
        ccci_buf_consume(&s->line, s->line.len);
        stream_line(s, buf + start, (size_t)n - start);
        goto wiped;
      }
      stream_line(s, s->line.data, s->line.len);
      ccci_buf_consume(&s->line, s->line.len);
    } else if (ccci_buf_append(&s->line, buf + start, (size_t)n - start) < 0) {
      stream_line(s, buf + start, (size_t)n - start);
    }
  }
wiped:
  explicit_bzero(buf, sizeof(buf));
}

static pid_t spawn(const struct ccci_hcall *c, int out[2], int err[2],
                   int *exec_errno)
{
  int ep[2];
  pid_t pid;
  ssize_t n;
  int e = 0;

  if (pipe2(ep, O_CLOEXEC) < 0)
    return -errno;
  pid = fork();
  if (pid < 0) {
    e = errno;
    close(ep[0]);
    close(ep[1]);
    return -e;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    size_t i;
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      close(devnull);
    }
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    if (c->cwd != NULL && chdir(c->cwd) < 0) {
      e = errno;
      if (write(ep[1], &e, sizeof(e)) < 0)
        _exit(126);
      _exit(126);
    }
    for (i = 0; c->env != NULL && c->env[i] != NULL; i++)
      putenv(c->env[i]);
    execvp(c->argv[0], c->argv);
    e = errno;
    if (write(ep[1], &e, sizeof(e)) < 0)
      _exit(127);
    _exit(127);
  }
  setpgid(pid, pid); /* both sides: no race with an early kill(-pid) */
  close(ep[1]);
  do {
    n = read(ep[0], &e, sizeof(e));
  } while (n < 0 && errno == EINTR);
  close(ep[0]);
  *exec_errno = n == (ssize_t)sizeof(e) ? e : 0;
  return pid;
}

int ccci_hcall_run(const struct ccci_hcall *c, struct ccci_hcall_result *res)
{
  int out[2] = {-1, -1}, err[2] = {-1, -1}, exec_errno = 0, wst = 0;
  struct stream so, se;
  struct ccci_buf cap;
  uint64_t start = ccci_now_ms(), kill_at = 0;
  bool reaped = false, killing = false, hard = false;
  pid_t pid;

  memset(res, 0, sizeof(*res));
  ccci_buf_init(&cap, CCCI_HCALL_CAPTURE_MAX);
  if (!c->quiet)
    print_argv(c->argv);
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
    int e = -errno;
    if (out[0] >= 0) {
      close(out[0]);
      close(out[1]);
    }
    return e;
  }
  pid = spawn(c, out, err, &exec_errno);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return (int)pid;
  }
  memset(&so, 0, sizeof(so));
  memset(&se, 0, sizeof(se));
  so.fd = out[0];
  so.print = !c->withhold && !c->quiet;
  so.cap = c->capture ? &cap : NULL;
  so.match = c->match;
  so.matched = &res->matched;
  ccci_buf_init(&so.line, LINE_MAX_BYTES);
  se.fd = err[0];
  /* A withheld call's stderr is not printed either: its values reach the
   * redactor only after the call (its last line is still in res->err). */
  se.print = !c->withhold;
  se.match = c->match;
  se.matched = &res->matched;
  ccci_buf_init(&se.line, LINE_MAX_BYTES);
  fcntl(so.fd, F_SETFL, O_NONBLOCK);
  fcntl(se.fd, F_SETFL, O_NONBLOCK);
  res->end = CCCI_HCALL_EXITED;

  while (!reaped || so.fd >= 0 || se.fd >= 0) {
    struct pollfd pf[3];
    nfds_t np = 0;
    uint64_t now = ccci_now_ms();
    int timeout = 1000;
    char drain[64];

    if (!killing && !reaped) {
      enum ccci_hcall_end why = CCCI_HCALL_EXITED;
      if (!c->ignore_stop && stop_sig != 0)
        why = CCCI_HCALL_STOPPED;
      else if (!c->ignore_stop && H.deadline_ms != 0 && now >= H.deadline_ms)
        why = CCCI_HCALL_DEADLINE;
      else if (c->timeout_ms != 0 && now - start >= c->timeout_ms)
        why = CCCI_HCALL_TIMEOUT;
      if (why != CCCI_HCALL_EXITED) {
        res->end = why;
        killing = true;
        kill_at = now + CCCI_HCALL_KILL_GRACE_MS;
        kill(-pid, SIGTERM);
      }
    }
    if (killing && !hard && now >= kill_at) {
      hard = true;
      kill(-pid, SIGKILL);
    }
    if (reaped && !hard) {
      /* The call is over: whatever it left in its group goes now, so it
       * cannot hold the pipes open. */
      hard = true;
      kill(-pid, SIGKILL);
      kill_at = now + CCCI_HCALL_KILL_GRACE_MS;
    }
    if (reaped && now >= kill_at + CCCI_HCALL_KILL_GRACE_MS)
      break; /* a process outside the group holds the pipes: give up */
    if (killing && !hard)
      timeout = (int)(kill_at - now);
    else if (!killing && c->timeout_ms != 0 &&
             start + c->timeout_ms - now < (uint64_t)timeout)
      timeout = (int)(start + c->timeout_ms - now);
    if (timeout < 0)
      timeout = 0;
    if (so.fd >= 0) {
      pf[np].fd = so.fd;
      pf[np++].events = POLLIN;
    }
    if (se.fd >= 0) {
      pf[np].fd = se.fd;
      pf[np++].events = POLLIN;
    }
    pf[np].fd = H.sigpipe[0];
    pf[np++].events = POLLIN;
    if (poll(pf, np, reaped ? 100 : timeout) > 0) {
      nfds_t k;
      for (k = 0; k < np; k++) {
        if ((pf[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
          continue;
        if (pf[k].fd == so.fd)
          stream_read(&so);
        else if (pf[k].fd == se.fd)
          stream_read(&se);
        else
          while (read(H.sigpipe[0], drain, sizeof(drain)) > 0) {
          }
      }
    }
    if (!reaped) {
      pid_t w = waitpid(pid, &wst, WNOHANG);
      if (w == pid || (w < 0 && errno == ECHILD))
        reaped = true;
    }
  }
  if (so.fd >= 0)
    close(so.fd);
  if (se.fd >= 0)
    close(se.fd);
  if (exec_errno != 0) {
    res->end = CCCI_HCALL_NOEXEC;
    res->status = exec_errno;
  } else if (res->end == CCCI_HCALL_EXITED) {
    if (WIFEXITED(wst)) {
      res->status = WEXITSTATUS(wst);
    } else {
      res->end = CCCI_HCALL_SIGNALED;
      res->status = WTERMSIG(wst);
    }
  }
  if (se.last[0] != '\0')
    res->err = ccci_xstrdup(se.last);
  explicit_bzero(so.last, sizeof(so.last));
  ccci_buf_close(&so.line);
  ccci_buf_close(&se.line);
  if (c->capture) {
    res->out_len = cap.len;
    res->out = ccci_xmalloc(cap.len + 1);
    if (cap.len > 0)
      memcpy(res->out, cap.data, cap.len);
    res->out[cap.len] = '\0';
  }
  if (cap.data != NULL) /* it may hold the secret table */
    explicit_bzero(cap.data, cap.len);
  ccci_buf_close(&cap);
  return 0;
}

bool ccci_hcall_ok(const struct ccci_hcall_result *res)
{
  return res->end == CCCI_HCALL_EXITED && res->status == 0;
}

char *ccci_hcall_why(const struct ccci_hcall_result *res, const char *what)
{
  switch (res->end) {
  case CCCI_HCALL_EXITED:
    if (res->err != NULL)
      return ccci_xasprintf("%s exited with status %d: %s", what, res->status,
                            res->err);
    return ccci_xasprintf("%s exited with status %d", what, res->status);
  case CCCI_HCALL_SIGNALED:
    return ccci_xasprintf("%s was killed by signal %d", what, res->status);
  case CCCI_HCALL_TIMEOUT:
    return ccci_xasprintf("%s timed out", what);
  case CCCI_HCALL_DEADLINE:
    return ccci_xasprintf("%s was stopped at the run's deadline", what);
  case CCCI_HCALL_STOPPED:
    return ccci_xasprintf("%s was stopped: the harness got %s", what,
                          stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
  case CCCI_HCALL_NOEXEC:
    return ccci_xasprintf("%s could not be executed: %s", what,
                          strerror(res->status));
  }
  return ccci_xstrdup(what);
}

void ccci_hcall_result_free(struct ccci_hcall_result *res)
{
  if (res->out != NULL)
    ccci_wipe_free(res->out, res->out_len + 1);
  free(res->err);
  memset(res, 0, sizeof(*res));
}
