/* Running a test's loop until a condition holds, within a bound. Tests
 * only.
 *
 * Not `while (!cond) uv_run(loop, UV_RUN_ONCE)`: libuv computes a turn's
 * poll timeout before it runs that turn's due timers and pending
 * callbacks, so when one of those makes the condition true the same turn
 * still blocks in epoll until the loop's next timer (a poll interval, a
 * connection's idle limit: minutes), and a bound checked between turns
 * never gets its chance. Here each turn waits on the loop's backend fd for
 * at most LOOPWAIT_TICK_MS, then runs whatever is ready without blocking. */
#ifndef CCCI_TEST_LOOPWAIT_H
#define CCCI_TEST_LOOPWAIT_H

#include <poll.h>
#include <stdint.h>
#include <uv.h>

#define LOOPWAIT_TICK_MS 10

/* One bounded turn of @p loop. */
static inline void loopwait_turn(uv_loop_t *loop)
{
  struct pollfd p;
  int t = uv_backend_timeout(loop);

  if (t < 0 || t > LOOPWAIT_TICK_MS)
    t = LOOPWAIT_TICK_MS;
  p.fd = uv_backend_fd(loop);
  p.events = POLLIN;
  p.revents = 0;
  (void)poll(&p, 1, t);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* Turn @p loop until @p cond holds or @p seconds have passed; the caller
 * then asserts @p cond. */
#define LOOP_UNTIL(loop, cond, seconds)                                        \
  do {                                                                         \
    uint64_t end_ = uv_hrtime() + (uint64_t)(seconds)*1000000000u;             \
    while (!(cond) && uv_hrtime() < end_)                                      \
      loopwait_turn(loop);                                                     \
  } while (0)

#endif
