/* Benchmark child for bench/tail.py: writes lines stamped with the
 * CLOCK_MONOTONIC time of their write(2), paced or as fast as it can. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000ull

static unsigned long long now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * NSEC + (unsigned long long)ts.tv_nsec;
}

static int write_all(const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int parse_ul(const char *s, unsigned long *out)
{
  char *end;
  errno = 0;
  *out = strtoul(s, &end, 10);
  return errno != 0 || end == s || *end != '\0' || s[0] == '-' ? -1 : 0;
}

/* Waits until the gate file exists (all tail clients attached), so that
 * every line is live when it is written; gives up after five minutes. */
static int wait_gate(const char *gate)
{
  struct stat st;
  unsigned long long limit = now_ns() + 300 * NSEC;
  struct timespec pause = {0, 2000000};
  while (stat(gate, &st) != 0) {
    if (now_ns() > limit)
      return -1;
    nanosleep(&pause, NULL);
  }
  return 0;
}

static void usage(void)
{
  fprintf(stderr, "usage: tail_writer [-r LINES_PER_S (0: full speed)] "
                  "[-s SECONDS] [-n LINES] [-b LINE_BYTES] [-g GATE_FILE]\n");
}

int main(int argc, char **argv)
{
  unsigned long rate = 200, seconds = 20, count = 0, size = 100;
  const char *gate = NULL;
  static char line[65536];
  static const char marker[] = "~~~ step bench\n";
  unsigned long long start, stop, period, deadline;
  unsigned long i;
  int opt;

  while ((opt = getopt(argc, argv, "r:s:n:b:g:")) != -1) {
    int bad = 0;
    switch (opt) {
    case 'r':
      bad = parse_ul(optarg, &rate);
      break;
    case 's':
      bad = parse_ul(optarg, &seconds);
      break;
    case 'n':
      bad = parse_ul(optarg, &count);
      break;
    case 'b':
      bad = parse_ul(optarg, &size);
      break;
    case 'g':
      gate = optarg;
      break;
    default:
      bad = 1;
    }
    if (bad) {
      usage();
      return 2;
    }
  }
  if (size < 48 || size > sizeof(line)) {
    fprintf(stderr, "tail_writer: line size must be 48 to %zu\n", sizeof(line));
    return 2;
  }
  /* The marker puts the stamped lines into step 1, pos 0 onwards. */
  if (write_all(marker, sizeof(marker) - 1) != 0)
    return 1;
  if (gate != NULL && wait_gate(gate) != 0) {
    fprintf(stderr, "tail_writer: gate %s never opened\n", gate);
    return 3;
  }
  memset(line, 'x', size);
  line[size - 1] = '\n';
  period = rate > 0 ? NSEC / rate : 0;
  start = now_ns();
  stop = start + seconds * NSEC;
  deadline = start;
  for (i = 0; count == 0 || i < count; i++) {
    unsigned long long t;
    int n;
    if (period > 0) {
      /* Absolute deadlines: a late wake-up does not shift later lines. */
      struct timespec ts = {(time_t)(deadline / NSEC), (long)(deadline % NSEC)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
             EINTR)
        ;
      deadline += period;
    }
    t = now_ns();
    if (count == 0 && t >= stop)
      break;
    n = snprintf(line, size, "tick %lu t=%llu ", i, t);
    if (n < 0 || (size_t)n >= size - 1)
      return 1;
    line[n] = 'x';
    if (write_all(line, size) != 0)
      return 1;
  }
  return 0;
}
