/* Domain locks: <state_dir>/locks/<domain>.lock held with flock(2), taken
 * only without blocking, checked against replacement. */
#include "ccci/runs/domlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file replaced this many times in a row under one probe is a fight the
 * next probe can try again. */
#define MAX_REOPEN 8

char *ccci_domlock_path(const char *locks_dir, const char *domain)
{
  return ccci_xasprintf("%s/%s.lock", locks_dir, domain);
}

int ccci_domlock_try(const char *locks_dir, const char *domain)
{
  char *path = ccci_domlock_path(locks_dir, domain);
  int fd = -1, r = -EAGAIN, i;

  for (i = 0; i < MAX_REOPEN; i++) {
    struct stat a, b;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0 && errno == ENOENT) {
      r = ccci_mkdir_p(locks_dir, 0750);
      if (r < 0)
        break;
      fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    }
    if (fd < 0) {
      r = -errno;
      break;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      r = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
      close(fd);
      fd = -1;
      break;
    }
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      free(path);
      return fd;
    }
    /* Unlinked or replaced by its last holder: lock the file now there. */
    close(fd);
    fd = -1;
    r = -EAGAIN;
  }
  free(path);
  return r;
}

void ccci_domlock_release(const char *locks_dir, const char *domain, int fd,
                          bool unlink_it)
{
  if (unlink_it) {
    /* Only the file this descriptor holds: never one that replaced it. */
    char *path = ccci_domlock_path(locks_dir, domain);
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
      (void)unlink(path);
    free(path);
  }
  close(fd);
}

int ccci_domlock_held(const char *locks_dir, const char *domain)
{
  char *path = ccci_domlock_path(locks_dir, domain);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;
  int e = errno;
  free(path);
  if (fd < 0)
    return e == ENOENT ? 0 : -e;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0)
    r = errno == EWOULDBLOCK ? 1 : -errno;
  close(fd);
  return r;
}
