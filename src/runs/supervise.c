/* The per-run supervisor: forks the harness into its own process group,
 * stops it with SIGTERM then SIGKILL, kills and reaps every descendant as
 * their subreaper, and leaves the exit detail. Plain C without libuv: it
 * owns waitpid(-1). */
#include "ccci/runs/supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ccci/core/log.h"
#include "ccci/core/opt.h"

#define MOD "supervise"
/* The largest exit detail ccci_supervise_exit_read accepts. */
#define EXIT_FILE_MAX 4096
/* While the run's last processes die, /proc is scanned again after these
 * delays (doubling), besides every SIGCHLD. */
#define RESCAN_MIN_MS 5
#define RESCAN_MAX_MS 200
/* Highest descriptor the fallback of close_from() walks to. */
#define CLOSE_FALLBACK_MAX 65536

#define usage_error(...) (ccci_error(MOD, __VA_ARGS__), CCCI_EXIT_USAGE)

struct sup {
  /* The command line and the environment. */
  const char *state_dir;
  uint64_t grace_ms;
  bool have_grace;
  int lock_fd;
  int drain[CCCI_SUPERVISE_MAX_DRAIN_FDS];
  size_t n_drain;
  const char *user;
  pid_t daemon;
  char **argv; /* the harness's, NULL-terminated; owned array */

  /* The run. */
  pid_t self;
  int sfd;
  pid_t harness;     /* its pid, which is also its process group */
  bool harness_done; /* reaped; its status is in detail */
  bool no_children;  /* waitpid() answered ECHILD: the run is gone */
  bool stopping;     /* SIGTERM went to the group */
  uint64_t kill_at;  /* when the kill grace ends, ccci_now_ms() */
  bool draining;
  struct ccci_supervise_exit detail;
};

/* One process seen in /proc. */
struct proc_ent {
  pid_t pid;
  pid_t ppid;
  unsigned long long start; /* starttime: pid plus this names one process */
  char state;
  bool mine; /* a descendant of the supervisor */
};

/* ---- the exit detail ---- */

void ccci_supervise_exit_from_status(struct ccci_supervise_exit *e, int status)
{
  if (WIFSIGNALED(status)) {
    e->exit_code = -1;
    e->signal = WTERMSIG(status);
    e->core_dumped = WCOREDUMP(status) != 0;
  } else {
    e->exit_code = WEXITSTATUS(status);
    e->signal = 0;
    e->core_dumped = false;
  }
}

int ccci_supervise_exit_status(const struct ccci_supervise_exit *e)
{
  if (e->signal > 0)
    return 128 + e->signal;
  if (e->exit_code >= 0)
    return e->exit_code & 0xff;
  return CCCI_SUPERVISE_EXIT_SETUP;
}

char *ccci_supervise_exit_encode(const struct ccci_supervise_exit *e)
{
  char code[16] = "null", sig[16] = "null";

  if (e->exit_code >= 0)
    snprintf(code, sizeof(code), "%d", e->exit_code);
  if (e->signal > 0)
    snprintf(sig, sizeof(sig), "%d", e->signal);
  return ccci_xasprintf("{\"exit_code\":%s,\"signal\":%s,\"core_dumped\":%s,"
                        "\"killed_after_grace\":%s,\"daemon_died\":%s}\n",
                        code, sig, e->core_dumped ? "true" : "false",
                        e->killed_after_grace ? "true" : "false",
                        e->daemon_died ? "true" : "false");
}

/* An integer in [lo, hi] or null (-> @p null_value); false otherwise. */
static bool int_or_null(json_t *v, json_int_t lo, json_int_t hi, int null_value,
                        int *out)
{
  if (json_is_null(v)) {
    *out = null_value;
    return true;
  }
  if (!json_is_integer(v) || json_integer_value(v) < lo ||
      json_integer_value(v) > hi)
    return false;
  *out = (int)json_integer_value(v);
  return true;
}

int ccci_supervise_exit_decode(const char *text, size_t len,
                               struct ccci_supervise_exit *e)
{
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *core, *grace, *died;
  int r = -EINVAL;

  if (!json_is_object(j))
    goto out;
  core = json_object_get(j, "core_dumped");
  grace = json_object_get(j, "killed_after_grace");
  died = json_object_get(j, "daemon_died");
  if (!int_or_null(json_object_get(j, "exit_code"), 0, 255, -1,
                   &e->exit_code) ||
      !int_or_null(json_object_get(j, "signal"), 1, 127, 0, &e->signal) ||
      !json_is_boolean(core) || !json_is_boolean(grace) ||
      !json_is_boolean(died))
    goto out;
  /* Exactly one of the two says how the harness ended. */
  if ((e->exit_code < 0) == (e->signal == 0))
    goto out;
  e->core_dumped = json_is_true(core);
  e->killed_after_grace = json_is_true(grace);
  e->daemon_died = json_is_true(died);
  r = 0;
out:
  json_decref(j);
  return r;
}

int ccci_supervise_exit_read(const char *state_dir,
                             struct ccci_supervise_exit *e)
{
  char *path = ccci_path_join(state_dir, CCCI_SUPERVISE_EXIT_FILE);
  char *text = NULL;
  size_t len = 0;
  int r = ccci_read_file(path, EXIT_FILE_MAX, &text, &len);

  if (r == -EFBIG)
    r = -EINVAL;
  if (r == 0)
    r = ccci_supervise_exit_decode(text, len, e);
  free(text);
  free(path);
  return r;
}

/* ---- the command line ---- */

/* A descriptor handed over by the daemon: above 2 and open. */
static int parse_fd(const char *opt, const char *v, int *fd)
{
  uint64_t n;

  if (ccci_parse_u64(v, &n) < 0 || n < 3 || n > INT_MAX)
    return usage_error("%s: expected a descriptor number above 2, got '%s'",
                       opt, v);
  if (fcntl((int)n, F_GETFD) < 0)
    return usage_error("%s %s: not an open descriptor: %s", opt, v,
                       strerror(errno));
  *fd = (int)n;
  return 0;
}

enum opt { OPT_STATE, OPT_USER, OPT_GRACE, OPT_LOCK, OPT_DRAIN };

static const char *const opt_names[] = {"--state", "--user", "--kill-grace",
                                        "--lock-fd", "--drain-fd"};

static int parse_option(struct sup *s, int argc, char **argv, int *i)
{
  const char *v = NULL;
  char *cause = NULL;
  uint64_t n;
  size_t k;
  int r = 0;

  /* "--name V" or "--name=V". */
  for (k = 0; r == 0 && k < CCCI_ARRAY_LEN(opt_names); k++)
    r = ccci_opt_value(argc, argv, i, NULL, opt_names[k], &v, &cause);
  if (r == 0)
    return usage_error("unknown option '%s'", argv[*i]);
  if (r < 0) {
    r = usage_error("%s", cause);
    free(cause);
    return r;
  }
  switch ((enum opt)(k - 1)) {
  case OPT_STATE:
    s->state_dir = v;
    return 0;
  case OPT_USER:
    s->user = v;
    return 0;
  case OPT_GRACE:
    if (ccci_parse_u64(v, &n) < 0 || n > CCCI_SUPERVISE_MAX_GRACE_MS)
      return usage_error("--kill-grace: expected milliseconds up to %u, got "
                         "'%s'",
                         CCCI_SUPERVISE_MAX_GRACE_MS, v);
    s->grace_ms = n;
    s->have_grace = true;
    return 0;
  case OPT_LOCK:
    return parse_fd("--lock-fd", v, &s->lock_fd);
  case OPT_DRAIN:
    break;
  }
  if (s->n_drain == CCCI_SUPERVISE_MAX_DRAIN_FDS)
    return usage_error("at most %d --drain-fd options",
                       CCCI_SUPERVISE_MAX_DRAIN_FDS);
  return parse_fd("--drain-fd", v, &s->drain[s->n_drain++]);
}

static int parse_args(struct sup *s, int argc, char **argv)
{
  const char *env = getenv("CCCI_DAEMON_PID");
  uint64_t pid;
  int i, r, k;

  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    /* The harness's argv starts at the first word that is not an option
     * (`ccci` itself passes "--" on only to some commands). */
    if (a[0] != '-' || a[1] == '\0')
      break;
    r = parse_option(s, argc, argv, &i);
    if (r != 0)
      return r;
  }
  if (s->state_dir == NULL || s->state_dir[0] == '\0')
    return usage_error("--state DIR is required");
  if (!s->have_grace)
    return usage_error("--kill-grace MS is required");
  if (i >= argc)
    return usage_error("no harness command: expected '-- HARNESS ARGV...'");
  if (env == NULL || ccci_parse_u64(env, &pid) < 0 || pid < 1 || pid > INT_MAX)
    return usage_error("CCCI_DAEMON_PID must hold the daemon's pid, got '%s'",
                       env != NULL ? env : "(unset)");
  s->daemon = (pid_t)pid;
  /* The harness gets everything else unchanged. */
  unsetenv("CCCI_DAEMON_PID");
  s->argv = ccci_xcalloc((size_t)(argc - i) + 1, sizeof(char *));
  for (k = 0; i + k < argc; k++)
    s->argv[k] = argv[i + k];
  return 0;
}

/* ---- set-up ---- */

/* Hand a stdout/stderr pipe to the harness user, so the harness can open
 * /dev/stdout and /dev/stderr (an anonymous pipe is its creator's, 0600). */
static void give_pipe(int fd, uid_t uid)
{
  char link[64], target[64];
  ssize_t n;

  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, target, sizeof(target) - 1);
  if (n < 0)
    return;
  target[n] = '\0';
  /* Only anonymous pipes: never change the owner of a file or a FIFO. */
  if (strncmp(target, "pipe:", 5) != 0)
    return;
  if (fchown(fd, uid, (gid_t)-1) < 0)
    ccci_warn(MOD, "cannot hand fd %d to uid %ld: %s", fd, (long)uid,
              strerror(errno));
}

static int switch_user(const struct sup *s)
{
  struct passwd *pw;
  char *name;
  uid_t uid;
  gid_t gid;
  int r = CCCI_SUPERVISE_EXIT_SETUP;

  errno = 0;
  pw = getpwnam(s->user);
  if (pw == NULL) {
    ccci_error(MOD, "--user %s: %s", s->user,
               errno != 0 ? strerror(errno) : "no such user");
    return r;
  }
  name = ccci_xstrdup(pw->pw_name);
  uid = pw->pw_uid;
  gid = pw->pw_gid;
  /* Already that user (and not root): there is nothing to switch. */
  if (uid != 0 && getuid() == uid && geteuid() == uid && getgid() == gid &&
      getegid() == gid) {
    r = 0;
    goto out;
  }
  give_pipe(STDOUT_FILENO, uid);
  give_pipe(STDERR_FILENO, uid);
  if (initgroups(name, gid) < 0) {
    ccci_error(MOD, "--user %s: cannot set its groups: %s", name,
               strerror(errno));
    goto out;
  }
  if (setgid(gid) < 0 || setuid(uid) < 0) {
    ccci_error(MOD, "--user %s: cannot switch to uid %ld gid %ld: %s", name,
               (long)uid, (long)gid, strerror(errno));
    goto out;
  }
  if (uid != 0 && setuid(0) == 0) {
    ccci_error(MOD, "--user %s: root could be regained after the switch", name);
    goto out;
  }
  r = 0;
out:
  free(name);
  return r;
}

/* The state dir must take the exit detail: check now, not at the end. */
static int check_state_dir(const struct sup *s)
{
  int r = ccci_mkdir_p(s->state_dir, 0750);

  if (r == 0 && access(s->state_dir, W_OK | X_OK) < 0)
    r = -errno;
  if (r < 0) {
    ccci_error(MOD, "--state %s: cannot write there: %s", s->state_dir,
               strerror(-r));
    return CCCI_SUPERVISE_EXIT_SETUP;
  }
  return 0;
}

static int setup(struct sup *s, const sigset_t *mask)
{
  size_t i;
  int r;

  if (s->user != NULL) {
    r = switch_user(s);
    if (r != 0)
      return r;
  }
  /* After the switch: changing credentials clears the death signal. */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
    ccci_error(MOD, "cannot set the parent-death signal: %s", strerror(errno));
    return CCCI_SUPERVISE_EXIT_SETUP;
  }
  r = check_state_dir(s);
  if (r != 0)
    return r;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    ccci_error(MOD, "cannot become a child subreaper: %s", strerror(errno));
    return CCCI_SUPERVISE_EXIT_SETUP;
  }
  s->sfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (s->sfd < 0) {
    ccci_error(MOD, "cannot create a signalfd: %s", strerror(errno));
    return CCCI_SUPERVISE_EXIT_SETUP;
  }
  r = s->lock_fd >= 0 ? ccci_set_cloexec(s->lock_fd) : 0;
  for (i = 0; r == 0 && i < s->n_drain; i++)
    r = ccci_set_cloexec(s->drain[i]);
  if (r < 0) {
    ccci_error(MOD, "cannot mark a descriptor close-on-exec: %s", strerror(-r));
    return CCCI_SUPERVISE_EXIT_SETUP;
  }
  return 0;
}

/* ---- the harness ---- */

static void close_from(int lowfd)
{
  int fd;

#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0u) == 0)
    return;
#endif
  for (fd = lowfd; fd < CLOSE_FALLBACK_MAX; fd++)
    close(fd);
}

/* In the forked child: become the harness. */
__attribute__((noreturn)) static void exec_harness(const struct sup *s)
{
  sigset_t none;
  int sig, e;

  setpgid(0, 0);
  for (sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  }
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  close_from(3);
  execvp(s->argv[0], s->argv);
  e = errno;
  ccci_error(MOD, "cannot run '%s': %s", s->argv[0], strerror(e));
  _exit(CCCI_SUPERVISE_EXIT_EXEC);
}

static int spawn(struct sup *s)
{
  pid_t pid = fork();

  if (pid < 0) {
    ccci_error(MOD, "cannot fork the harness: %s", strerror(errno));
    return CCCI_SUPERVISE_EXIT_SETUP;
  }
  if (pid == 0)
    exec_harness(s);
  /* Both sides set the group, so a signal sent right now already finds
   * it; the child may have exec'd (EACCES) or died (ESRCH) by now. */
  if (setpgid(pid, pid) < 0 && errno != EACCES && errno != ESRCH)
    ccci_warn(MOD, "cannot put the harness in its own group: %s",
              strerror(errno));
  s->harness = pid;
  return 0;
}

/* ---- descendants, through /proc ---- */

static int read_stat(pid_t pid, struct proc_ent *e)
{
  char path[48], buf[1024], *p, *end;
  int fd, field;
  ssize_t n;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -EIO;
  buf[n] = '\0';
  /* "pid (comm) state ppid ..."; comm may hold anything, ')' included. */
  p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ')
    return -EINVAL;
  p += 2;
  e->pid = pid;
  e->state = *p;
  e->mine = false;
  /* Fields from the state on: 0 state, 1 ppid, ..., 19 starttime. */
  for (field = 0; field <= 19; field++) {
    while (*p == ' ')
      p++;
    if (*p == '\0')
      return -EINVAL;
    if (field == 1)
      e->ppid = (pid_t)strtol(p, &end, 10);
    else if (field == 19)
      e->start = strtoull(p, &end, 10);
    while (*p != ' ' && *p != '\0')
      p++;
  }
  return 0;
}

static int cmp_pid(const void *a, const void *b)
{
  const struct proc_ent *x = a, *y = b;
  return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Every process in /proc, sorted by pid, descendants of @p self marked.
 * Returns the count, or -errno when /proc cannot be read. */
static ssize_t scan_procs(pid_t self, struct proc_ent **out)
{
  struct proc_ent *v = NULL;
  size_t n = 0, cap = 0, i;
  struct dirent *de;
  bool changed = true;
  DIR *d = opendir("/proc");

  *out = NULL;
  if (d == NULL)
    return -errno;
  for (;;) {
    uint64_t pid;
    de = readdir(d);
    if (de == NULL)
      break;
    if (ccci_parse_u64(de->d_name, &pid) < 0 || pid > INT_MAX ||
        (pid_t)pid == self)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      v = ccci_xrealloc(v, cap * sizeof(*v));
    }
    if (read_stat((pid_t)pid, &v[n]) == 0)
      n++;
  }
  closedir(d);
  if (n > 0)
    qsort(v, n, sizeof(*v), cmp_pid);
  /* Mark the tree from the top; a pass in pid order usually finds it all,
   * more passes handle parents with higher pids (pid wrap). */
  while (changed) {
    changed = false;
    for (i = 0; i < n; i++) {
      struct proc_ent key, *parent;
      if (v[i].mine)
        continue;
      key.pid = v[i].ppid;
      parent =
          v[i].ppid == self ? NULL : bsearch(&key, v, n, sizeof(*v), cmp_pid);
      if (v[i].ppid == self || (parent != NULL && parent->mine)) {
        v[i].mine = true;
        changed = true;
      }
    }
  }
  *out = v;
  return (ssize_t)n;
}

/* Signal one process, making sure it is still the one scanned: a pidfd
 * pins it, then its start time must match (its pid may have been reaped by
 * its parent and reused since the scan). */
static void signal_proc(const struct proc_ent *e, int sig)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
  int fd = (int)syscall(SYS_pidfd_open, e->pid, 0);
  if (fd >= 0) {
    struct proc_ent now;
    if (read_stat(e->pid, &now) == 0 && now.start == e->start)
      (void)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
    close(fd);
    return;
  }
  if (errno == ESRCH)
    return;
#endif
  kill(e->pid, sig);
}

/* Send @p sig to every live descendant; returns how many there were. */
static int kill_descendants(const struct sup *s, int sig)
{
  static bool warned;
  struct proc_ent *v;
  ssize_t n = scan_procs(s->self, &v), i;
  int count = 0;

  if (n < 0) {
    if (!warned)
      ccci_error(MOD,
                 "cannot read /proc: %s; only the harness's group is "
                 "signalled",
                 strerror((int)-n));
    warned = true;
    return 0;
  }
  for (i = 0; i < n; i++) {
    if (!v[i].mine || v[i].state == 'Z' || v[i].state == 'X')
      continue;
    signal_proc(&v[i], sig);
    count++;
  }
  free(v);
  return count;
}

/* ---- the loop ---- */

static void reap(struct sup *s)
{
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      if (pid == s->harness) {
        ccci_supervise_exit_from_status(&s->detail, status);
        s->harness_done = true;
      }
      continue;
    }
    if (pid < 0 && errno == EINTR)
      continue;
    s->no_children = pid < 0 && errno == ECHILD;
    return;
  }
}

/* The daemon is gone: nobody reads the pipes any more. Read and discard
 * them so the harness's teardown never meets EPIPE, and stop writing to
 * them ourselves (a log line into a full pipe that only we read would
 * block forever); then they reach EOF once the run's last writer is gone. */
static void start_drain(struct sup *s)
{
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  size_t i;

  s->draining = true;
  if (null >= 0) {
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
  }
  for (i = 0; i < s->n_drain; i++) {
    int fl = fcntl(s->drain[i], F_GETFL);
    if (fl >= 0)
      fcntl(s->drain[i], F_SETFL, fl | O_NONBLOCK);
  }
}

static void drain(struct sup *s, size_t i)
{
  static char sink[65536];
  ssize_t n = read(s->drain[i], sink, sizeof(sink));

  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
    return;
  close(s->drain[i]);
  s->drain[i] = -1;
}

static const char *sig_name(int sig)
{
  switch (sig) {
  case SIGTERM:
    return "SIGTERM";
  case SIGINT:
    return "SIGINT";
  case SIGHUP:
    return "SIGHUP";
  default:
    return "a signal";
  }
}

static void on_stop(struct sup *s, int sig)
{
  if (!s->detail.daemon_died && getppid() != s->daemon) {
    s->detail.daemon_died = true;
    start_drain(s);
  }
  if (s->harness_done)
    return;
  if (s->stopping) {
    ccci_info(MOD, "%s: already stopping; SIGKILL in %llu ms", sig_name(sig),
              (unsigned long long)(s->kill_at > ccci_now_ms()
                                       ? s->kill_at - ccci_now_ms()
                                       : 0));
    return;
  }
  s->stopping = true;
  s->kill_at = ccci_now_ms() + s->grace_ms;
  if (kill(-s->harness, SIGTERM) < 0 && errno != ESRCH)
    ccci_warn(MOD, "cannot signal the harness's group: %s", strerror(errno));
  ccci_info(MOD, "%s: SIGTERM to the harness (group %d); SIGKILL in %llu ms",
            sig_name(sig), (int)s->harness, (unsigned long long)s->grace_ms);
}

static void read_signals(struct sup *s)
{
  struct signalfd_siginfo si[8];

  for (;;) {
    ssize_t n = read(s->sfd, si, sizeof(si)), i;
    if (n <= 0)
      return;
    for (i = 0; i < n / (ssize_t)sizeof(si[0]); i++) {
      int sig = (int)si[i].ssi_signo;
      if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
        on_stop(s, sig);
    }
  }
}

static void grace_over(struct sup *s)
{
  s->detail.killed_after_grace = true;
  ccci_warn(MOD,
            "the harness is still running %llu ms after SIGTERM; SIGKILL to "
            "every process of the run",
            (unsigned long long)s->grace_ms);
  if (kill(-s->harness, SIGKILL) < 0 && errno != ESRCH)
    ccci_warn(MOD, "cannot signal the harness's group: %s", strerror(errno));
}

/* Run until the harness and every descendant are gone. */
static void run(struct sup *s)
{
  struct pollfd pfd[1 + CCCI_SUPERVISE_MAX_DRAIN_FDS];
  size_t map[1 + CCCI_SUPERVISE_MAX_DRAIN_FDS];
  int rescan = RESCAN_MIN_MS;
  bool told = false;

  for (;;) {
    uint64_t now;
    int timeout = -1, nfds = 1, k;
    size_t i;

    reap(s);
    if (s->harness_done && s->no_children)
      return;
    now = ccci_now_ms();
    if (s->stopping && !s->harness_done && !s->detail.killed_after_grace &&
        now >= s->kill_at)
      grace_over(s);
    if (s->harness_done || s->detail.killed_after_grace) {
      /* Killing: again after every SIGCHLD and a growing delay, as a
       * process may fork between the scan and its signal. */
      k = kill_descendants(s, SIGKILL);
      if (s->harness_done && !told && k > 0)
        ccci_info(MOD, "the harness exited; SIGKILL to %d leftover process%s",
                  k, k == 1 ? "" : "es");
      told = told || s->harness_done;
      timeout = rescan;
      rescan = rescan * 2 > RESCAN_MAX_MS ? RESCAN_MAX_MS : rescan * 2;
    } else if (s->stopping) {
      timeout = s->kill_at - now > INT_MAX ? INT_MAX : (int)(s->kill_at - now);
    }

    pfd[0].fd = s->sfd;
    pfd[0].events = POLLIN;
    for (i = 0; s->draining && i < s->n_drain; i++) {
      if (s->drain[i] < 0)
        continue;
      pfd[nfds].fd = s->drain[i];
      pfd[nfds].events = POLLIN;
      map[nfds++] = i;
    }
    if (poll(pfd, (nfds_t)nfds, timeout) < 0) {
      if (errno != EINTR)
        ccci_error(MOD, "poll: %s", strerror(errno));
      continue;
    }
    if (pfd[0].revents != 0)
      read_signals(s);
    for (k = 1; k < nfds; k++) {
      if (pfd[k].revents != 0 && s->drain[map[k]] >= 0)
        drain(s, map[k]);
    }
  }
}

static void write_detail(const struct sup *s)
{
  char *path = ccci_path_join(s->state_dir, CCCI_SUPERVISE_EXIT_FILE);
  char *text = ccci_supervise_exit_encode(&s->detail);
  int r = ccci_write_file_atomic(path, text, strlen(text), 0640);

  if (r < 0)
    ccci_error(MOD, "cannot write the exit detail %s: %s", path, strerror(-r));
  free(text);
  free(path);
}

int ccci_supervise_main(int argc, char **argv)
{
  struct sup s;
  sigset_t mask;
  int r;

  memset(&s, 0, sizeof(s));
  s.lock_fd = -1;
  s.sfd = -1;
  s.self = getpid();
  /* Blocked from the very start, so a stop that arrives during the set-up
   * waits in the signalfd instead of killing us. */
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  /* Our stderr may outlive its reader. */
  signal(SIGPIPE, SIG_IGN);

  r = parse_args(&s, argc, argv);
  if (r == 0)
    r = setup(&s, &mask);
  if (r != 0)
    goto out;
  if (getppid() != s.daemon) {
    /* The daemon died before we could watch it: stopped before starting. */
    s.detail.exit_code = -1;
    s.detail.signal = SIGTERM;
    s.detail.daemon_died = true;
    start_drain(&s);
  } else {
    r = spawn(&s);
    if (r != 0)
      goto out;
    run(&s);
  }
  write_detail(&s);
  r = ccci_supervise_exit_status(&s.detail);
out:
  if (s.sfd >= 0)
    close(s.sfd);
  free(s.argv);
  return r;
}
