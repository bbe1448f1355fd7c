/* The floor under bench/fanin.py: the least a daemon that logs its
 * children's pipes into files can spend on this machine. N children
 * (bench/fanin_writer) write MIB MiB each into pipes; one thread reads every
 * pipe (epoll, 64 KiB reads, as the daemon does) and writes each byte to a
 * per-child file with pwrite in 256 KiB batches, plus `grow` percent more
 * (the Drone framing makes the log about 32 % larger than its input). No
 * redaction, no encoding, no run bookkeeping: only the kernel's part of the
 * log path. Prints CPU seconds per GiB of input for this process (user and
 * system): reads alone, each read written at once, and batched per child
 * as the daemon does.
 *
 *   fanin_floor WRITER [MIB] [N] [GROW_PERCENT] [DIR]
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RBUF (64 * 1024)
#define WBATCH (256 * 1024)

struct child {
  int rfd, ofd;
  pid_t pid;
  char *out;
  size_t used;
  off_t off;
};

static double cpu(double *user)
{
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  *user = (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6;
  return *user + (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static void put(struct child *c, const char *p, size_t n, int grow)
{
  if (c->out == NULL) {
    /* Unbatched: each read written at once from the read buffer. */
    size_t len = n + n * (size_t)grow / 100;
    if (c->ofd >= 0 && pwrite(c->ofd, p, len, c->off) != (ssize_t)len)
      exit(1);
    c->off += (off_t)len;
    return;
  }
  while (n > 0) {
    size_t k = n < WBATCH - c->used ? n : WBATCH - c->used;
    memcpy(c->out + c->used, p, k);
    c->used += k;
    p += k;
    n -= k;
    if (c->used == WBATCH) {
      size_t len = c->used + c->used * (size_t)grow / 100;
      if (c->ofd >= 0 && pwrite(c->ofd, c->out, len, c->off) != (ssize_t)len)
        exit(1);
      c->off += (off_t)len;
      c->used = 0;
    }
  }
}

static double run(const char *writer, const char *mib, int n, int grow,
                  const char *dir, bool batch, double *user)
{
  struct child *cs = calloc((size_t)n, sizeof(*cs));
  int ep = epoll_create1(EPOLL_CLOEXEC), left = n, i;
  static char rbuf[2 * RBUF];
  double u0, c0 = cpu(&u0), c1;

  for (i = 0; i < n; i++) {
    int p[2];
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)writer, (char *)mib, NULL};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    if (pipe2(p, O_CLOEXEC) < 0)
      exit(1);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    if (posix_spawn(&cs[i].pid, writer, &fa, NULL, argv, environ) != 0)
      exit(1);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    cs[i].rfd = p[0];
    cs[i].out = batch ? malloc(WBATCH * 2) : NULL;
    cs[i].ofd = -1;
    if (dir != NULL) {
      char path[4096];
      snprintf(path, sizeof(path), "%s/%d.log", dir, i);
      cs[i].ofd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    }
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  }
  while (left > 0) {
    struct epoll_event evs[64];
    int k = epoll_wait(ep, evs, 64, -1), j;
    for (j = 0; j < k; j++) {
      struct child *c = evs[j].data.ptr;
      ssize_t r = read(c->rfd, rbuf, RBUF);
      if (r > 0) {
        put(c, rbuf, (size_t)r, grow);
      } else if (r == 0 || errno != EINTR) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->rfd, NULL);
        close(c->rfd);
        left--;
      }
    }
  }
  c1 = cpu(user);
  *user -= u0;
  for (i = 0; i < n; i++) {
    if (cs[i].ofd >= 0) {
      if (cs[i].used > 0 &&
          pwrite(cs[i].ofd, cs[i].out, cs[i].used, cs[i].off) < 0)
        exit(1);
      close(cs[i].ofd);
    }
    waitpid(cs[i].pid, NULL, 0);
    free(cs[i].out);
  }
  close(ep);
  free(cs);
  return c1 - c0;
}

int main(int argc, char **argv)
{
  const char *writer = argc > 1 ? argv[1] : "build/bench/fanin_writer";
  const char *mib = argc > 2 ? argv[2] : "4";
  int n = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 64;
  int grow = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 32;
  const char *dir = argc > 5 ? argv[5] : "/tmp";
  double gib = (double)n * strtod(mib, NULL) / 1024.0, user, c;
  char tmpl[4096];

  snprintf(tmpl, sizeof(tmpl), "%s/fanin-floor-XXXXXX", dir);
  if (mkdtemp(tmpl) == NULL)
    return 1;
  printf("floor: %d children x %s MiB, pipes read in 64 KiB, files written "
         "in 256 KiB (+%d%%)\n",
         n, mib, grow);
  c = run(writer, mib, n, grow, NULL, false, &user);
  printf("%-36s %6.2f CPU-s/GiB (user %.2f)\n", "read only", c / gib,
         user / gib);
  c = run(writer, mib, n, grow, tmpl, false, &user);
  printf("%-36s %6.2f CPU-s/GiB (user %.2f)\n", "read, write each read at once",
         c / gib, user / gib);
  c = run(writer, mib, n, grow, tmpl, true, &user);
  printf("%-36s %6.2f CPU-s/GiB (user %.2f)\n",
         "read, write in 256 KiB per child", c / gib, user / gib);
  for (int i = 0; i < n; i++) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/%d.log", tmpl, i);
    unlink(path);
  }
  rmdir(tmpl);
  return 0;
}
