/* What this machine charges for the kernel work a run costs the daemon:
 * a syscall, a page fault on fresh memory, a copy-on-write fault after a
 * fork, a fork of a process holding MiB of written memory, and the file
 * operations of a run dir (mkdir, a file created, written, fsync'ed and
 * renamed over another, a directory fsync). CPU time of this process, so
 * the figures hold on a busy machine too. Put next to docs/perf.md's
 * figures to tell the machine's share from the daemon's.
 *
 *   machine [DIR]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu(void)
{
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static void touch(char *p, size_t n, char v)
{
  size_t i;
  for (i = 0; i < n; i += 4096)
    ((volatile char *)p)[i] = v;
}

static void file_ops(const char *dir)
{
  enum { N = 300 };
  char path[4096], tmp[4200], data[600];
  double t0;
  int i, fd;

  memset(data, 'x', sizeof(data));
  t0 = cpu();
  for (i = 0; i < N; i++) {
    snprintf(path, sizeof(path), "%s/d%d", dir, i);
    if (mkdir(path, 0750) < 0)
      exit(1);
  }
  printf("%-44s %8.1f us\n", "mkdir (a new directory)", (cpu() - t0) * 1e6 / N);
  for (int fsync_file = 1; fsync_file >= 0; fsync_file--) {
    t0 = cpu();
    for (i = 0; i < N; i++) {
      snprintf(path, sizeof(path), "%s/d%d/meta.json", dir, i);
      snprintf(tmp, sizeof(tmp), "%s.tmp", path);
      fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data))
        exit(1);
      if (fsync_file)
        fsync(fd);
      close(fd);
      if (rename(tmp, path) < 0)
        exit(1);
    }
    printf("%-44s %8.1f us\n",
           fsync_file ? "600 B file: create, write, fsync, rename"
                      : "600 B file: create, write, rename (no fsync)",
           (cpu() - t0) * 1e6 / N);
  }
  t0 = cpu();
  for (i = 0; i < N; i++) {
    snprintf(path, sizeof(path), "%s/d%d", dir, i);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fsync(fd);
    close(fd);
  }
  printf("%-44s %8.1f us\n", "fsync of a directory", (cpu() - t0) * 1e6 / N);
  for (i = 0; i < N; i++) {
    snprintf(path, sizeof(path), "%s/d%d/meta.json", dir, i);
    unlink(path);
    snprintf(path, sizeof(path), "%s/d%d", dir, i);
    rmdir(path);
  }
}

int main(int argc, char **argv)
{
  const char *base = argc > 1 ? argv[1] : "/tmp";
  const size_t sz = 64u << 20;
  char dir[2048];
  double t0;
  int i, n = 200000;
  char *p;
  pid_t pid;

  t0 = cpu();
  for (i = 0; i < n; i++)
    syscall(SYS_getppid);
  printf("%-44s %8.2f us\n", "syscall (getppid)", (cpu() - t0) * 1e6 / n);

  p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
           0);
  t0 = cpu();
  touch(p, sz, 1);
  printf("%-44s %8.2f us\n", "page fault, fresh anonymous page",
         (cpu() - t0) * 1e6 / (double)(sz / 4096));

  t0 = cpu();
  pid = fork();
  if (pid == 0)
    _exit(0);
  printf("%-44s %8.0f us\n", "fork with 64 MiB written", (cpu() - t0) * 1e6);
  waitpid(pid, NULL, 0);
  t0 = cpu();
  touch(p, sz, 2);
  printf("%-44s %8.2f us\n", "write fault after the fork (per page)",
         (cpu() - t0) * 1e6 / (double)(sz / 4096));
  munmap(p, sz);

  snprintf(dir, sizeof(dir), "%s/ccci-machine-XXXXXX", base);
  if (mkdtemp(dir) == NULL)
    return 1;
  file_ops(dir);
  rmdir(dir);
  return 0;
}
