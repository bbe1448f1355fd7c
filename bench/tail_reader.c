/* Benchmark client for bench/tail.py: N live-tail clients in one epoll
 * process; latency from a writer's write(2) to the client's read(2). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000ull
/* A protocol line is at most about 400 KiB (a 64 KiB log line escaped). */
#define BUF_START (64 * 1024)
#define BUF_CAP (512 * 1024)
#define READ_MAX (64 * 1024)
/* Histogram: 1 us buckets below 100 ms, 1 ms buckets up to 100 s. */
#define FINE_US 100000
#define COARSE_MS 100000
#define NBUCKETS (FINE_US + COARSE_MS + 1)

/* The step the benchmark writer's stamped lines go to. */
#define BENCH_STEP 1

enum cstate { C_REPLY, C_STREAM, C_ENDED, C_DONE };

struct client {
  int fd;
  int run; /* index into the run ids */
  enum cstate state;
  int got_end, eof, refused;
  char *buf;
  size_t len, cap;
  uint64_t next_pos;
  uint64_t lines, other_lines;
};

static uint64_t hist[NBUCKETS];
static uint64_t lat_max_ns, lat_count;
static uint64_t tot_lines, tot_other, tot_bytes, tot_out_bytes;
static uint64_t daemon_lines, gaps, missing, dups, mismatch, nostamp, errors,
    bad_lines;
static uint64_t first_line_ns, last_line_ns;
static char first_error[256];

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static void note_error(const char *what, const char *text, size_t n)
{
  size_t i;
  errors++;
  if (first_error[0] != '\0')
    return;
  if (n > 160)
    n = 160;
  snprintf(first_error, sizeof(first_error), "%s: %.*s", what, (int)n, text);
  /* Keep the message printable so the JSON output stays valid. */
  for (i = 0; first_error[i] != '\0'; i++)
    if (first_error[i] == '"' || first_error[i] == '\\' ||
        (unsigned char)first_error[i] < 0x20 ||
        (unsigned char)first_error[i] > 0x7e)
      first_error[i] = '?';
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

/* Unsigned decimal right after `key` in [p, end), or -1 when absent. */
static int find_u64(const char *p, const char *end, const char *key,
                    uint64_t *out)
{
  size_t kn = strlen(key);
  const char *k = memmem(p, (size_t)(end - p), key, kn);
  if (k == NULL || k + kn >= end || *(k + kn) < '0' || *(k + kn) > '9')
    return -1;
  *out = strtoull(k + kn, NULL, 10);
  return 0;
}

static void on_line_obj(struct client *c, const char *p, const char *end,
                        uint64_t now)
{
  uint64_t step, pos, seq, t;
  const char *out, *stamp;

  if (find_u64(p, end, "\"step\":", &step) != 0 ||
      find_u64(p, end, "{\"pos\":", &pos) != 0) {
    bad_lines++;
    note_error("line without step or pos", p, (size_t)(end - p));
    return;
  }
  if (step != BENCH_STEP) {
    c->other_lines++;
    tot_other++;
    return;
  }
  c->lines++;
  tot_lines++;
  if (first_line_ns == 0)
    first_line_ns = now;
  last_line_ns = now;
  if (pos > c->next_pos) {
    gaps++;
    missing += pos - c->next_pos;
  } else if (pos < c->next_pos) {
    dups++;
  }
  if (pos + 1 > c->next_pos)
    c->next_pos = pos + 1;
  out = memmem(p, (size_t)(end - p), "\"out\":\"", 7);
  if (out == NULL) {
    nostamp++;
    return;
  }
  out += 7;
  stamp = memchr(out, '"', (size_t)(end - out));
  if (stamp != NULL)
    tot_out_bytes += (uint64_t)(stamp - out);
  /* The daemon's own lines ("[ccci] finished: success") carry no stamp. */
  if ((size_t)(end - out) >= 6 && memcmp(out, "[ccci]", 6) == 0) {
    daemon_lines++;
    return;
  }
  if (find_u64(out, end, "tick ", &seq) != 0 ||
      find_u64(out, end, " t=", &t) != 0) {
    nostamp++;
    return;
  }
  if (seq != pos)
    mismatch++;
  record(now > t ? now - t : 0);
}

/* The first letter of the "type" of a stream message when it is the first
 * member ('l'ine, 's'tep, 'e'nd), else 0. Blanks are allowed around the
 * punctuation, as in any JSON. */
static int message_type(const char *p, const char *end)
{
  static const char *const names[] = {"line", "step", "end"};
  size_t i;
  while (p < end && (*p == ' ' || *p == '{'))
    p++;
  if (end - p < 6 || memcmp(p, "\"type\"", 6) != 0)
    return 0;
  p += 6;
  while (p < end && (*p == ' ' || *p == ':'))
    p++;
  if (p == end || *p++ != '"')
    return 0;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    size_t n = strlen(names[i]);
    if ((size_t)(end - p) > n && memcmp(p, names[i], n) == 0 && p[n] == '"')
      return names[i][0];
  }
  return 0;
}

static void on_message(struct client *c, const char *p, const char *end,
                       uint64_t now)
{
  if (c->state == C_REPLY) {
    if (end - p >= 10 && memcmp(p, "{\"ok\":true", 10) == 0) {
      c->state = C_STREAM;
    } else {
      note_error("tail refused", p, (size_t)(end - p));
      c->refused = 1;
      c->state = C_DONE;
    }
    return;
  }
  if (c->state != C_STREAM) {
    note_error("message after end", p, (size_t)(end - p));
    return;
  }
  switch (message_type(p, end)) {
  case 'l':
    on_line_obj(c, p, end, now);
    break;
  case 's':
    break;
  case 'e':
    c->got_end = 1;
    c->state = C_ENDED;
    break;
  default:
    note_error("unexpected message", p, (size_t)(end - p));
  }
}

/* Reads what is there; returns 1 when the client is finished. */
static int on_readable(struct client *c)
{
  for (;;) {
    ssize_t n;
    uint64_t now;
    char *p, *nl;
    if (c->cap - c->len < READ_MAX && c->cap < BUF_CAP) {
      size_t ncap = c->cap * 2 > BUF_CAP ? BUF_CAP : c->cap * 2;
      char *nb = realloc(c->buf, ncap);
      if (nb == NULL) {
        note_error("out of memory", "", 0);
        return 1;
      }
      c->buf = nb;
      c->cap = ncap;
    }
    if (c->len == c->cap) {
      note_error("protocol line over 512 KiB", c->buf, 64);
      return 1;
    }
    n = read(c->fd, c->buf + c->len, c->cap - c->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (n < 0) {
      note_error("read", strerror(errno), strlen(strerror(errno)));
      return 1;
    }
    if (n == 0) {
      c->eof = 1;
      return 1;
    }
    now = now_ns();
    tot_bytes += (uint64_t)n;
    c->len += (size_t)n;
    p = c->buf;
    while ((nl = memchr(p, '\n', c->len - (size_t)(p - c->buf))) != NULL) {
      if (nl > p)
        on_message(c, p, nl, now);
      p = nl + 1;
    }
    if (p > c->buf) {
      c->len -= (size_t)(p - c->buf);
      memmove(c->buf, p, c->len);
    }
    if (c->state == C_DONE)
      return 1;
  }
}

static int connect_one(const char *path, const char *id)
{
  struct sockaddr_un sa;
  char req[512];
  int fd, n, off = 0;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  n = snprintf(req, sizeof(req),
               "{\"v\":1,\"op\":\"tail\",\"id\":\"%s\",\"follow\":true}\n", id);
  if (n < 0 || (size_t)n >= sizeof(req))
    return -EINVAL;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  /* Blocking connect and request: simple, and the listen backlog may be
   * shorter than the number of clients. */
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    goto fail;
  while (off < n) {
    ssize_t w = write(fd, req + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      goto fail;
    off += (int)w;
  }
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
    goto fail;
  return fd;
fail:
  n = -errno;
  close(fd);
  return n;
}

static char **read_ids(int *count)
{
  char **ids = NULL, line[256];
  int n = 0, cap = 0;
  while (fgets(line, sizeof(line), stdin) != NULL) {
    size_t l = strcspn(line, " \r\n");
    if (l == 0)
      continue;
    line[l] = '\0';
    if (n == cap) {
      char **ni;
      cap = cap ? cap * 2 : 64;
      ni = realloc(ids, (size_t)cap * sizeof(*ids));
      if (ni == NULL)
        exit(1);
      ids = ni;
    }
    ids[n] = strdup(line);
    if (ids[n] == NULL)
      exit(1);
    n++;
  }
  *count = n;
  return ids;
}

static double cpu_seconds(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void print_result(struct client *cl, int nclients, uint64_t t0,
                         int timed_out)
{
  int i, ended = 0, eof_no_end = 0, refused = 0, unfinished = 0;
  uint64_t t1 = now_ns();
  for (i = 0; i < nclients; i++) {
    if (cl[i].refused)
      refused++;
    else if (cl[i].got_end)
      ended++;
    else if (cl[i].eof)
      eof_no_end++;
    else
      unfinished++;
  }
  printf(
      "{\"clients\":%d,\"ended\":%d,\"eof_without_end\":%d,"
      "\"refused\":%d,\"unfinished\":%d,\"timed_out\":%s,"
      "\"lines\":%" PRIu64 ",\"other_lines\":%" PRIu64
      ",\"daemon_lines\":%" PRIu64 ",\"bytes\":%" PRIu64
      ",\"out_bytes\":%" PRIu64 ",\"samples\":%" PRIu64
      ",\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
      "\"gaps\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"dups\":%" PRIu64
      ",\"mismatch\":%" PRIu64 ",\"nostamp\":%" PRIu64 ",\"bad_lines\":%" PRIu64
      ",\"errors\":%" PRIu64 ",\"first_error\":\"%s\",\"start_ns\":%" PRIu64
      ",\"first_line_ns\":%" PRIu64 ",\"last_line_ns\":%" PRIu64
      ",\"end_ns\":%" PRIu64 ",\"reader_cpu_s\":%.3f,\"per_client\":[",
      nclients, ended, eof_no_end, refused, unfinished,
      timed_out ? "true" : "false", tot_lines, tot_other, daemon_lines,
      tot_bytes, tot_out_bytes, lat_count, quantile_ms(0.50), quantile_ms(0.90),
      quantile_ms(0.99), quantile_ms(0.999), (double)lat_max_ns / 1e6, gaps,
      missing, dups, mismatch, nostamp, bad_lines, errors, first_error, t0,
      first_line_ns, last_line_ns, t1, cpu_seconds());
  for (i = 0; i < nclients; i++)
    printf("%s[%d,%" PRIu64 "]", i ? "," : "", cl[i].run, cl[i].lines);
  printf("]}\n");
  fflush(stdout);
}

static int parse_ul(const char *s, unsigned long *out)
{
  char *end;
  errno = 0;
  *out = strtoul(s, &end, 10);
  return errno != 0 || end == s || *end != '\0' || s[0] == '-' ? -1 : 0;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: tail_reader -n CLIENTS [-t TIMEOUT_S] SOCKET [RUN_ID...]\n"
          "  run ids from argv, or one per line on stdin; client i tails\n"
          "  run i mod the number of ids. Prints \"ready\" once every client\n"
          "  has its tail reply, then one JSON object when all ended.\n");
}

int main(int argc, char **argv)
{
  unsigned long nclients = 1, timeout = 600;
  const char *sock;
  char **ids;
  int nids, opt, ep, i, live = 0, waiting, timed_out = 0;
  struct client *cl;
  struct epoll_event evs[256];
  uint64_t t0, limit;

  while ((opt = getopt(argc, argv, "n:t:")) != -1) {
    int bad = 1;
    if (opt == 'n')
      bad = parse_ul(optarg, &nclients);
    else if (opt == 't')
      bad = parse_ul(optarg, &timeout);
    if (bad) {
      usage();
      return 2;
    }
  }
  if (optind >= argc || nclients == 0 || nclients > 100000) {
    usage();
    return 2;
  }
  sock = argv[optind++];
  if (optind < argc) {
    ids = argv + optind;
    nids = argc - optind;
  } else {
    ids = read_ids(&nids);
  }
  if (nids == 0) {
    fprintf(stderr, "tail_reader: no run ids\n");
    return 2;
  }
  cl = calloc(nclients, sizeof(*cl));
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (cl == NULL || ep < 0)
    return 1;
  t0 = now_ns();
  for (i = 0; i < (int)nclients; i++) {
    struct epoll_event ev;
    struct client *c = &cl[i];
    c->run = i % nids;
    c->fd = connect_one(sock, ids[c->run]);
    if (c->fd < 0) {
      fprintf(stderr, "tail_reader: connect %s: %s\n", sock, strerror(-c->fd));
      return 1;
    }
    c->buf = malloc(BUF_START);
    if (c->buf == NULL)
      return 1;
    c->cap = BUF_START;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
      return 1;
    live++;
  }
  limit = t0 + (uint64_t)timeout * NSEC;
  waiting = 1;
  while (live > 0) {
    int n, k, ms;
    uint64_t now = now_ns();
    if (waiting) {
      /* "ready" once every client has its reply: the writers may start. */
      int pending = 0;
      for (k = 0; k < (int)nclients; k++)
        pending += cl[k].state == C_REPLY;
      if (pending == 0) {
        printf("ready\n");
        fflush(stdout);
        waiting = 0;
        t0 = now;
      }
    }
    if (now >= limit) {
      timed_out = 1;
      break;
    }
    ms = (int)((limit - now) / 1000000) + 1;
    n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])),
                   ms > 1000 ? 1000 : ms);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return 1;
    for (k = 0; k < n; k++) {
      struct client *c = evs[k].data.ptr;
      if (c->fd < 0 || !on_readable(c))
        continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      live--;
    }
  }
  if (waiting) {
    printf("ready\n");
    fflush(stdout);
  }
  print_result(cl, (int)nclients, t0, timed_out);
  for (i = 0; i < (int)nclients; i++) {
    if (cl[i].fd >= 0)
      close(cl[i].fd);
    free(cl[i].buf);
  }
  free(cl);
  close(ep);
  return 0;
}
