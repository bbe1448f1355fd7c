/* Benchmark client for bench/sse.py: N SSE clients of one Drone stream in
 * one epoll process; latency of every line from the writer's stamp to the
 * client's read(2), no gap, no duplicate, the `eof` event at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000ull
#define BUF_CAP (1024 * 1024)
/* Histogram: 1 us buckets below 100 ms, 1 ms buckets up to 100 s. */
#define FINE_US 100000
#define COARSE_MS 100000
#define NBUCKETS (FINE_US + COARSE_MS + 1)

struct client {
  int fd;
  int head, done, eof, err_event;
  char *buf;
  size_t len;
  uint64_t next_pos, lines;
};

static uint64_t hist[NBUCKETS];
static uint64_t lat_max_ns, lat_count;
static uint64_t gaps, dups, nostamp, errors;

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static void record(uint64_t ns)
{
  uint64_t us = ns / 1000, b;
  if (us < FINE_US)
    b = us;
  else if (ns / 1000000 < COARSE_MS)
    b = FINE_US + ns / 1000000;
  else
    b = NBUCKETS - 1;
  hist[b]++;
  lat_count++;
  if (ns > lat_max_ns)
    lat_max_ns = ns;
}

/* The upper edge of the bucket holding quantile q, in milliseconds. */
static double quantile_ms(double q)
{
  uint64_t want = (uint64_t)(q * (double)lat_count), seen = 0;
  size_t b;
  if (lat_count == 0)
    return 0.0;
  if (want >= lat_count)
    want = lat_count - 1;
  for (b = 0; b < NBUCKETS; b++) {
    seen += hist[b];
    if (seen > want)
      break;
  }
  if (b < FINE_US)
    return (double)(b + 1) / 1000.0;
  if (b < NBUCKETS - 1)
    return (double)(b - FINE_US + 1);
  return (double)lat_max_ns / 1e6;
}

static int find_u64(const char *p, const char *end, const char *key,
                    uint64_t *out)
{
  size_t kn = strlen(key);
  const char *k = memmem(p, (size_t)(end - p), key, kn);
  if (k == NULL || k + kn >= end || k[kn] < '0' || k[kn] > '9')
    return -1;
  *out = strtoull(k + kn, NULL, 10);
  return 0;
}

/* One line of the stream (without its newline). */
static void on_line(struct client *c, const char *p, const char *end,
                    uint64_t now)
{
  uint64_t pos, t;
  size_t n = (size_t)(end - p);
  if (c->err_event) {
    c->err_event = 0;
    if (n == 9 && memcmp(p, "data: eof", 9) == 0)
      c->done = 1;
    else
      errors++;
    return;
  }
  if (n == 12 && memcmp(p, "event: error", 12) == 0) {
    c->err_event = 1;
    return;
  }
  if (n < 7 || memcmp(p, "data: {", 7) != 0)
    return;
  if (find_u64(p, end, "\"pos\":", &pos) != 0) {
    errors++;
    return;
  }
  if (pos > c->next_pos)
    gaps++;
  else if (pos < c->next_pos)
    dups++;
  c->next_pos = pos + 1;
  c->lines++;
  if (find_u64(p, end, " t=", &t) == 0)
    record(now > t ? now - t : 0);
  else if (memmem(p, n, "\"out\":\"[ccci] ", 14) == NULL)
    nostamp++;
}

/* 1 when the client is over (closed, error or eof). */
static int on_readable(struct client *c)
{
  for (;;) {
    ssize_t n;
    uint64_t now;
    char *p, *nl, *end;
    if (c->len == BUF_CAP) {
      errors++;
      return 1;
    }
    n = read(c->fd, c->buf + c->len, BUF_CAP - c->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (n <= 0) {
      c->eof = 1;
      if (n < 0)
        errors++;
      return 1;
    }
    now = now_ns();
    c->len += (size_t)n;
    p = c->buf;
    end = c->buf + c->len;
    if (!c->head) {
      char *h = memmem(p, c->len, "\r\n\r\n", 4);
      if (h == NULL)
        continue;
      if (c->len < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) {
        errors++;
        return 1;
      }
      c->head = 1;
      p = h + 4;
    }
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
      on_line(c, p, nl, now);
      p = nl + 1;
    }
    c->len = (size_t)(end - p);
    memmove(c->buf, p, c->len);
    if (c->done)
      return 1;
  }
}

static int connect_one(const char *host, int port, const char *path)
{
  struct sockaddr_in sa;
  char req[1024];
  int fd, n, off = 0;

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return -EINVAL;
  n = snprintf(req, sizeof(req),
               "GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
               "Accept: text/event-stream\r\n\r\n",
               path, host, port);
  if (n < 0 || (size_t)n >= sizeof(req))
    return -EINVAL;
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  while (off < n) {
    ssize_t w = write(fd, req + off, (size_t)(n - off));
    if (w <= 0) {
      close(fd);
      return -EIO;
    }
    off += (int)w;
  }
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    close(fd);
    return -EIO;
  }
  return fd;
}

static double cpu_seconds(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* usage: sse_reader -n CLIENTS -t TIMEOUT_S HOST PORT PATH; prints "ready"
 * once every client is connected and its request sent, then one JSON
 * object when every client is over. */
int main(int argc, char **argv)
{
  unsigned long nclients = 1, timeout = 600;
  int opt, ep, i, live = 0, port, unfinished = 0, eof_no_end = 0;
  struct client *cl;
  struct epoll_event evs[256];
  uint64_t limit;

  while ((opt = getopt(argc, argv, "n:t:")) != -1) {
    if (opt == 'n')
      nclients = strtoul(optarg, NULL, 10);
    else if (opt == 't')
      timeout = strtoul(optarg, NULL, 10);
    else
      return 2;
  }
  if (argc - optind != 3 || nclients == 0 || nclients > 100000) {
    fprintf(stderr, "usage: sse_reader -n CLIENTS -t SECONDS HOST PORT PATH\n");
    return 2;
  }
  port = (int)strtol(argv[optind + 1], NULL, 10);
  cl = calloc(nclients, sizeof(*cl));
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (cl == NULL || ep < 0)
    return 1;
  for (i = 0; i < (int)nclients; i++) {
    struct epoll_event ev;
    struct client *c = &cl[i];
    c->fd = connect_one(argv[optind], port, argv[optind + 2]);
    if (c->fd < 0) {
      fprintf(stderr, "sse_reader: connect: %s\n", strerror(-c->fd));
      return 1;
    }
    c->buf = malloc(BUF_CAP);
    if (c->buf == NULL)
      return 1;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
      return 1;
    live++;
  }
  printf("ready\n");
  fflush(stdout);
  limit = now_ns() + (uint64_t)timeout * NSEC;
  while (live > 0 && now_ns() < limit) {
    int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 1000);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return 1;
    for (i = 0; i < n; i++) {
      struct client *c = evs[i].data.ptr;
      if (c->fd < 0 || !on_readable(c))
        continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      live--;
    }
  }
  for (i = 0; i < (int)nclients; i++) {
    if (!cl[i].done && cl[i].eof)
      eof_no_end++;
    else if (!cl[i].done)
      unfinished++;
  }
  printf("{\"samples\":%" PRIu64 ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
         "\"max_ms\":%.3f,\"gaps\":%" PRIu64 ",\"dups\":%" PRIu64
         ",\"nostamp\":%" PRIu64 ",\"errors\":%" PRIu64
         ",\"eof_without_end\":%d,\"unfinished\":%d,\"cpu_s\":%.3f,"
         "\"hist_fine_us\":%d,\"per_client\":[",
         lat_count, quantile_ms(0.50), quantile_ms(0.99),
         (double)lat_max_ns / 1e6, gaps, dups, nostamp, errors, eof_no_end,
         unfinished, cpu_seconds(), FINE_US);
  for (i = 0; i < (int)nclients; i++)
    printf("%s%" PRIu64, i ? "," : "", cl[i].lines);
  printf("]}\n");
  fflush(stdout);
  for (i = 0; i < (int)nclients; i++) {
    if (cl[i].fd >= 0)
      close(cl[i].fd);
    free(cl[i].buf);
  }
  free(cl);
  close(ep);
  return 0;
}
