/* The process exit codes every command shares (SPEC section 10). */
#ifndef CCCI_EXIT_H
#define CCCI_EXIT_H

/** Exit codes of every command (SPEC section 10). */
enum ccci_exit {
  CCCI_EXIT_OK = 0,
  CCCI_EXIT_FAILED = 1,      /**< the run failed; or a check found errors */
  CCCI_EXIT_NOT_OK = 2,      /**< timeout, cancelled, orphaned, ... */
  CCCI_EXIT_NO_SUCH_RUN = 3, /**< no such run */
  CCCI_EXIT_UNFINISHED = 4,  /**< the run is not finished */
  CCCI_EXIT_DAEMON = 5,      /**< unreachable, or a protocol error */
  CCCI_EXIT_USAGE = 64,      /**< bad command line */
};

#endif
