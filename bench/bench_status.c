/* Benchmark: control-socket round trips against a running daemon.
 *   bench_status SOCKET [REQUESTS] [CLIENTS]
 * Prints sequential latency (p50, p99) on one connection and the throughput
 * of CLIENTS connections each keeping one request in flight, and the ratio. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ccci/core/util.h"

static const char req[] = "{\"v\":1,\"op\":\"status\"}\n";

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int dial(const char *path)
{
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    fprintf(stderr, "bench_status: connect %s: %s\n", path, strerror(errno));
    exit(1);
  }
  return fd;
}

/* Read until a newline; replies are small, so one line per call. */
static void read_reply(int fd)
{
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      fprintf(stderr, "bench_status: daemon closed the connection\n");
      exit(1);
    }
    if (buf[n - 1] == '\n')
      return;
  }
}

static void send_req(int fd)
{
  if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
    fprintf(stderr, "bench_status: write: %s\n", strerror(errno));
    exit(1);
  }
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  int n, clients, i, fd, done = 0, sent = 0;
  double *lat, t0, seq_s, par_s;
  struct pollfd *pfd;

  if (argc < 2) {
    fprintf(stderr, "usage: bench_status SOCKET [REQUESTS] [CLIENTS]\n");
    return 64;
  }
  n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20000;
  clients = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 64;
  if (n <= 0 || clients <= 0)
    return 64;
  lat = ccci_xcalloc((size_t)n, sizeof(double));

  fd = dial(argv[1]);
  t0 = now_us();
  for (i = 0; i < n; i++) {
    double t = now_us();
    send_req(fd);
    read_reply(fd);
    lat[i] = now_us() - t;
  }
  seq_s = (now_us() - t0) / 1e6;
  close(fd);
  qsort(lat, (size_t)n, sizeof(double), cmp);

  pfd = ccci_xcalloc((size_t)clients, sizeof(*pfd));
  for (i = 0; i < clients; i++) {
    pfd[i].fd = dial(argv[1]);
    pfd[i].events = POLLIN;
  }
  t0 = now_us();
  for (i = 0; i < clients && sent < n; i++, sent++)
    send_req(pfd[i].fd);
  while (done < n) {
    if (poll(pfd, (nfds_t)clients, 10000) <= 0) {
      fprintf(stderr, "bench_status: no reply within 10 s\n");
      return 1;
    }
    for (i = 0; i < clients; i++) {
      if (!(pfd[i].revents & POLLIN))
        continue;
      read_reply(pfd[i].fd);
      done++;
      if (sent < n) {
        send_req(pfd[i].fd);
        sent++;
      }
    }
  }
  par_s = (now_us() - t0) / 1e6;
  for (i = 0; i < clients; i++)
    close(pfd[i].fd);

  printf("status round trips, %d requests\n", n);
  printf(
      "  sequential, 1 connection   p50 %7.1f us  p99 %7.1f us  %8.0f req/s\n",
      lat[n / 2], lat[(size_t)n * 99 / 100], n / seq_s);
  printf("  %d connections in flight   %8.0f req/s\n", clients, n / par_s);
  printf("  ratio parallel/sequential  %8.2f\n", seq_s / par_s);
  free(lat);
  free(pfd);
  return 0;
}
