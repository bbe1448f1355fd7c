/* Unit tests of domlock.c: real lock files and real flock(2) in a temporary
 * directory, a second process as the other holder, and the inode check. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/runs/domlock.h"
#include "tmpdir.h"

#define DOMAIN "hello-pr7.ci.test"

/* The other holder: a forked child that runs one command at a time. */
struct peer {
  pid_t pid;
  int cmd;   /* parent -> child, one command byte */
  int reply; /* child -> parent, 0 or an errno (int) */
};

struct fixture {
  char *dir;   /* the mkdtemp() directory */
  char *locks; /* <dir>/state/locks, missing at the start of each test */
  char *path;  /* <locks>/DOMAIN.lock */
  mode_t umask_was;
  struct peer peer;
  int holder_fd; /* a lock the flock hook lets go of */
};

static struct fixture *fx;

/*
 * This executable's flock() and unlink(): the core is a static library
 * linked into it, so domlock.c's calls land here. Unarmed they are the
 * plain system calls; armed, a test acts at the exact moment between
 * ccci_domlock_try's open() and its flock(), or inside
 * ccci_domlock_release just before the unlink, without racing anything.
 * The test code itself locks through raw_flock(), never through these.
 */
static void (*flock_hook)(void);
static int flock_calls;
static void (*unlink_hook)(const char *path);
static int unlink_calls;

int flock(int fd, int op)
{
  if (flock_hook != NULL) {
    flock_calls++;
    flock_hook();
  }
  return (int)syscall(SYS_flock, fd, op);
}

int unlink(const char *path)
{
  if (unlink_hook != NULL) {
    unlink_calls++;
    unlink_hook(path);
  }
  return unlinkat(AT_FDCWD, path, 0);
}

static int raw_flock(int fd, int op)
{
  return (int)syscall(SYS_flock, fd, op);
}

/* Put a new empty file at @p path with rename(2). 0 or -errno. */
static int replace_file(const char *path)
{
  char *tmp = ccci_xasprintf("%s.new", path);
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640), r = 0;

  if (fd < 0 || close(fd) < 0 || rename(tmp, path) < 0)
    r = -errno;
  free(tmp);
  return r;
}

/* The lowest free descriptor: what the next open() would return. */
static int lowest_free_fd(void)
{
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  close(fd);
  return fd;
}

static ino_t path_ino(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_ino;
}

/* fstat(fd) and stat(path) name the same file. */
static void assert_same_file(int fd, const char *path)
{
  struct stat a, b;
  assert_int_equal(fstat(fd, &a), 0);
  assert_int_equal(stat(path, &b), 0);
  assert_int_equal(a.st_dev, b.st_dev);
  assert_int_equal(a.st_ino, b.st_ino);
}

/* Whether a fresh open file description of @p path can lock it now. */
static int lock_errno(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
  assert_true(fd >= 0);
  if (raw_flock(fd, LOCK_EX | LOCK_NB) < 0)
    e = errno;
  close(fd);
  return e;
}

/* The child: 'o' open (creating), 'l' flock(LOCK_EX | LOCK_NB), 'c' close,
 * 'r' rename a new file over the path. Exits at EOF on its command pipe. */
static void peer_loop(const char *path, int cmd, int reply)
{
  int fd = -1;
  char c;

  while (read(cmd, &c, 1) == 1) {
    int e = 0;
    switch (c) {
    case 'o':
      fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
      e = fd < 0 ? errno : 0;
      break;
    case 'l':
      e = raw_flock(fd, LOCK_EX | LOCK_NB) < 0 ? errno : 0;
      break;
    case 'c':
      e = close(fd) < 0 ? errno : 0;
      fd = -1;
      break;
    case 'r':
      e = -replace_file(path);
      break;
    default:
      e = EINVAL;
    }
    if (write(reply, &e, sizeof(e)) != (ssize_t)sizeof(e))
      break;
  }
  _exit(0);
}

static struct peer *peer_start(void)
{
  struct peer *p = &fx->peer;
  int down[2], up[2], fd;

  assert_int_equal(pipe2(down, O_CLOEXEC), 0);
  assert_int_equal(pipe2(up, O_CLOEXEC), 0);
  p->pid = fork();
  assert_true(p->pid >= 0);
  if (p->pid == 0) {
    /* An inherited copy of a locked descriptor would share its lock. */
    for (fd = 3; fd < 1024; fd++)
      if (fd != down[0] && fd != up[1])
        close(fd);
    peer_loop(fx->path, down[0], up[1]);
  }
  close(down[0]);
  close(up[1]);
  p->cmd = down[1];
  p->reply = up[0];
  return p;
}

/* Run one command in the child; its errno (0 on success). */
static int peer_do(struct peer *p, char c)
{
  int e = -1;
  assert_int_equal(write(p->cmd, &c, 1), 1);
  assert_int_equal(read(p->reply, &e, sizeof(e)), sizeof(e));
  return e;
}

/* EOF on the command pipe: the child closes everything and exits. */
static void peer_stop(struct peer *p)
{
  int status = -1;

  if (p->pid <= 0)
    return;
  close(p->cmd);
  close(p->reply);
  assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
  p->pid = 0;
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static int setup(void **state)
{
  char *dir = tmpdir_make("domlock");
  struct fixture *f;

  if (dir == NULL)
    return -1;
  f = ccci_xcalloc(1, sizeof(*f));
  f->dir = dir;
  f->locks = ccci_xasprintf("%s/state/locks", dir);
  f->path = ccci_domlock_path(f->locks, DOMAIN);
  f->umask_was = umask(022);
  f->holder_fd = -1;
  fx = f;
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  int r;

  flock_hook = NULL;
  unlink_hook = NULL;
  /* A failed test may leave the child waiting for its next command. */
  if (f->peer.pid > 0) {
    kill(f->peer.pid, SIGKILL);
    (void)waitpid(f->peer.pid, NULL, 0);
    close(f->peer.cmd);
    close(f->peer.reply);
  }
  if (f->holder_fd >= 0)
    close(f->holder_fd);
  umask(f->umask_was);
  r = tmpdir_remove(f->dir);
  free(f->path);
  free(f->locks);
  free(f->dir);
  free(f);
  fx = NULL;
  return r;
}

static void test_path(void **state)
{
  char *p = ccci_domlock_path("/var/lib/ccci/locks", "a-pr1.ci.example");
  (void)state;
  assert_string_equal(p, "/var/lib/ccci/locks/a-pr1.ci.example.lock");
  free(p);
}

/* @p fd is a fresh lock of the file at the path: 0640, close-on-exec, and
 * locked (flock locks belong to the open file description, so another
 * open in this process conflicts, and so does another try). */
static void assert_new_lock(int fd, const char *path)
{
  struct stat st;
  int flags = fcntl(fd, F_GETFD);

  assert_true(flags >= 0);
  assert_true(flags & FD_CLOEXEC);
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0640);
  assert_int_equal(st.st_size, 0);
  assert_same_file(fd, path);
  assert_int_equal(lock_errno(path), EWOULDBLOCK);
  assert_int_equal(ccci_domlock_try(fx->locks, DOMAIN), -EWOULDBLOCK);
}

static void test_try_creates_the_dir_and_the_file(void **state)
{
  struct fixture *f = *state;
  struct stat st;
  int fd;

  /* No locks directory yet. */
  assert_int_equal(stat(f->locks, &st), -1);
  assert_int_equal(errno, ENOENT);
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_int_equal(stat(f->locks, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_new_lock(fd, f->path);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
  /* Released without unlink: the file stays, and is free. */
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(lock_errno(f->path), 0);

  /* The file exists: taken as it is, close-on-exec all the same. */
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_new_lock(fd, f->path);
  ccci_domlock_release(f->locks, DOMAIN, fd, true);
  assert_int_equal(lstat(f->path, &st), -1);

  /* The directory exists, the file does not. */
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_new_lock(fd, f->path);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
}

static void test_try_would_block_while_another_process_holds(void **state)
{
  struct fixture *f = *state;
  struct peer *p = peer_start();
  int before, fd;

  assert_int_equal(ccci_mkdir_p(f->locks, 0750), 0);
  assert_int_equal(peer_do(p, 'o'), 0);
  assert_int_equal(peer_do(p, 'l'), 0);
  before = lowest_free_fd();
  assert_int_equal(ccci_domlock_try(f->locks, DOMAIN), -EWOULDBLOCK);
  assert_int_equal(ccci_domlock_try(f->locks, DOMAIN), -EWOULDBLOCK);
  assert_int_equal(lowest_free_fd(), before); /* no descriptor left open */
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 1);

  /* The holder lets go (closes its descriptor): the lock is ours. */
  assert_int_equal(peer_do(p, 'c'), 0);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_same_file(fd, f->path);
  /* And now the other process is the one that waits. */
  assert_int_equal(peer_do(p, 'o'), 0);
  assert_int_equal(peer_do(p, 'l'), EWOULDBLOCK);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
  assert_int_equal(peer_do(p, 'l'), 0);

  /* A holder that exits lets go too (a supervisor that outlived a daemon
   * and finally ends). */
  assert_int_equal(ccci_domlock_try(f->locks, DOMAIN), -EWOULDBLOCK);
  peer_stop(p);
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
}

static void test_held_probes_without_creating(void **state)
{
  struct fixture *f = *state;
  struct stat st;
  struct peer *p;
  int before = lowest_free_fd(), fd;

  /* Neither the directory nor the file exists: free, nothing created. */
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  assert_int_equal(stat(f->locks, &st), -1);
  assert_int_equal(errno, ENOENT);
  assert_int_equal(ccci_mkdir_p(f->locks, 0750), 0);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  assert_int_equal(lstat(f->path, &st), -1);
  assert_int_equal(errno, ENOENT);

  /* An existing free file: 0, kept, and not left locked. */
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 1);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(lock_errno(f->path), 0);

  /* Held by another process: 1, and the holder keeps it. */
  p = peer_start();
  assert_int_equal(peer_do(p, 'o'), 0);
  assert_int_equal(peer_do(p, 'l'), 0);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 1);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 1);
  assert_int_equal(lock_errno(f->path), EWOULDBLOCK);
  peer_stop(p);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  assert_int_equal(lowest_free_fd(), before);
}

/* Inside ccci_domlock_release: at the unlink, is the lock still held? */
static int unlink_saw;

static void check_held_at_unlink(const char *path)
{
  unlink_saw = strcmp(path, fx->path) == 0 ? lock_errno(path) : -1;
}

static void test_release_unlinks_while_held(void **state)
{
  struct fixture *f = *state;
  struct peer *b;
  struct stat st;
  ino_t old;
  int fd;

  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  old = path_ino(f->path);
  /* A waiter opens the old file before the unlink... */
  b = peer_start();
  assert_int_equal(peer_do(b, 'o'), 0);
  assert_int_equal(peer_do(b, 'l'), EWOULDBLOCK);

  unlink_hook = check_held_at_unlink;
  unlink_calls = 0;
  unlink_saw = -1;
  ccci_domlock_release(f->locks, DOMAIN, fd, true);
  unlink_hook = NULL;
  assert_int_equal(unlink_calls, 1);
  assert_int_equal(unlink_saw, EWOULDBLOCK); /* still locked at the unlink */
  assert_int_equal(lstat(f->path, &st), -1);
  assert_int_equal(errno, ENOENT);

  /* ...and locks it after the release: it holds a file nobody can find. */
  assert_int_equal(peer_do(b, 'l'), 0);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  assert_int_equal(lstat(f->path, &st), -1); /* the probe created nothing */

  /* A third open after the unlink gets a new file, and the domain. */
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_same_file(fd, f->path);
  assert_true(path_ino(f->path) != old); /* b keeps the old inode alive */
  assert_int_equal(peer_do(b, 'o'), 0);  /* b, opening the path again */
  assert_int_equal(peer_do(b, 'l'), EWOULDBLOCK);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
  /* b's lock on the unlinked file never counts as holding the domain. */
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
  peer_stop(b);
}

static void test_try_takes_the_file_now_at_the_path(void **state)
{
  struct fixture *f = *state;
  struct peer *p;
  struct stat st;
  ino_t old;
  int fd;

  assert_int_equal(ccci_mkdir_p(f->locks, 0750), 0);
  p = peer_start();
  assert_int_equal(peer_do(p, 'o'), 0);
  assert_int_equal(peer_do(p, 'l'), 0);
  old = path_ino(f->path);
  /* The holder renames a new file over the path and keeps the old one. */
  assert_int_equal(peer_do(p, 'r'), 0);
  assert_true(path_ino(f->path) != old);
  fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(fd >= 0);
  assert_same_file(fd, f->path);
  assert_int_equal(fstat(fd, &st), 0);
  assert_true(st.st_ino != old);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 1);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
  peer_stop(p);
}

/* Flock hooks: what the last holder does between the prober's open() and
 * its flock(). */
static void unlink_and_release(void)
{
  if (fx->holder_fd >= 0)
    ccci_domlock_release(fx->locks, DOMAIN, fx->holder_fd, true);
  fx->holder_fd = -1;
}

static void peer_replaces_and_lets_go(void)
{
  if (fx->peer.pid > 0 && flock_calls == 1) {
    assert_int_equal(peer_do(&fx->peer, 'r'), 0);
    assert_int_equal(peer_do(&fx->peer, 'c'), 0);
  }
}

static void replace_every_time(void)
{
  assert_int_equal(replace_file(fx->path), 0);
}

static void test_try_checks_the_inode_after_locking(void **state)
{
  struct fixture *f = *state;
  struct peer *p;
  int fd, before;

  /* The holder unlinks and lets go after the prober opened the file: the
   * flock succeeds on a file no longer at the path, so it starts over. */
  f->holder_fd = ccci_domlock_try(f->locks, DOMAIN);
  assert_true(f->holder_fd >= 0);
  flock_calls = 0;
  flock_hook = unlink_and_release;
  fd = ccci_domlock_try(f->locks, DOMAIN);
  flock_hook = NULL;
  assert_true(fd >= 0);
  assert_int_equal(f->holder_fd, -1);
  assert_int_equal(flock_calls, 2);
  assert_same_file(fd, f->path);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);

  /* Another process renames a new file over the path and lets go of the
   * old one in the same window. */
  p = peer_start();
  assert_int_equal(peer_do(p, 'o'), 0);
  assert_int_equal(peer_do(p, 'l'), 0);
  flock_calls = 0;
  flock_hook = peer_replaces_and_lets_go;
  fd = ccci_domlock_try(f->locks, DOMAIN);
  flock_hook = NULL;
  assert_true(fd >= 0);
  assert_int_equal(flock_calls, 2);
  assert_same_file(fd, f->path);
  assert_int_equal(peer_do(p, 'o'), 0); /* the new file is the one locked */
  assert_int_equal(peer_do(p, 'l'), EWOULDBLOCK);
  ccci_domlock_release(f->locks, DOMAIN, fd, false);
  peer_stop(p);

  /* Replaced at every try: a bounded fight, given up as "busy" with no
   * descriptor and no lock left behind. */
  before = lowest_free_fd();
  flock_calls = 0;
  flock_hook = replace_every_time;
  fd = ccci_domlock_try(f->locks, DOMAIN);
  flock_hook = NULL;
  assert_int_equal(fd, -EAGAIN);
  assert_true(flock_calls >= 2 && flock_calls <= 64);
  assert_int_equal(lowest_free_fd(), before);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), 0);
}

static void test_symlink_is_refused(void **state)
{
  struct fixture *f = *state;
  static const char keep[] = "not a lock file\n";
  char *target = ccci_xasprintf("%s/target", f->dir);
  char *absent = ccci_xasprintf("%s/absent", f->dir);
  char buf[64];
  struct stat st;
  int fd, before;
  ssize_t n;

  assert_int_equal(ccci_mkdir_p(f->locks, 0750), 0);
  fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, keep, sizeof(keep) - 1), sizeof(keep) - 1);
  close(fd);
  assert_int_equal(symlink(target, f->path), 0);

  before = lowest_free_fd();
  assert_int_equal(ccci_domlock_try(f->locks, DOMAIN), -ELOOP);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), -ELOOP);
  assert_int_equal(lowest_free_fd(), before);
  /* The target: same contents, same mode, not locked. */
  fd = open(target, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  n = read(fd, buf, sizeof(buf));
  close(fd);
  assert_int_equal(n, sizeof(keep) - 1);
  assert_memory_equal(buf, keep, sizeof(keep) - 1);
  assert_int_equal(stat(target, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(lock_errno(target), 0);
  assert_int_equal(lstat(f->path, &st), 0);
  assert_true(S_ISLNK(st.st_mode));

  /* A dangling link: refused, and its target is not created. */
  assert_int_equal(unlink(f->path), 0);
  assert_int_equal(symlink(absent, f->path), 0);
  assert_int_equal(ccci_domlock_try(f->locks, DOMAIN), -ELOOP);
  assert_int_equal(ccci_domlock_held(f->locks, DOMAIN), -ELOOP);
  assert_int_equal(lstat(absent, &st), -1);
  assert_int_equal(errno, ENOENT);
  free(target);
  free(absent);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path),
      T(test_try_creates_the_dir_and_the_file),
      T(test_try_would_block_while_another_process_holds),
      T(test_held_probes_without_creating),
      T(test_release_unlinks_while_held),
      T(test_try_takes_the_file_now_at_the_path),
      T(test_try_checks_the_inode_after_locking),
      T(test_symlink_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
