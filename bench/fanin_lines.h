/* The CI-like lines of the fan-in benchmarks (bench/fanin_writer.c prints
 * them, bench/bench_logpath.c encodes them): one in 100 carries @p secret. */
#ifndef CCCI_BENCH_FANIN_LINES_H
#define CCCI_BENCH_FANIN_LINES_H

#include <stdio.h>

/* Line @p i, newline included, into @p buf (@p cap >= 512 bytes); returns
 * its length. */
static inline int fanin_line(char *buf, size_t cap, unsigned long i,
                             const char *secret)
{
  if (secret != NULL && i % 100 == 0)
    return snprintf(buf, cap,
                    "2026-11-24T05:00:%02lu.%03luZ step %lu: token=%s ok\n",
                    i % 60, i % 1000, i, secret);
  return snprintf(buf, cap,
                  "2026-11-24T05:00:%02lu.%03luZ abra: deploying service "
                  "app_%lu (replicas 1/1) sha256:%08lx%08lx\n",
                  i % 60, i % 1000, i % 97, i * 2654435761u, ~i);
}

#endif
