/* Domain locks: <state_dir>/locks/<domain>.lock held with flock(2), taken
 * only without blocking, checked against replacement. */
#ifndef CCCI_DOMLOCK_H
#define CCCI_DOMLOCK_H

#include <stdbool.h>

#include "ccci/core/util.h"

/**
 * The lock file of @p domain in @p locks_dir (allocated). Domains are DNS
 * names, so the name needs no escaping.
 */
char *ccci_domlock_path(const char *locks_dir, const char *domain);

/**
 * Try to take the lock of @p domain without blocking: open (creating it
 * 0640, close-on-exec), flock(LOCK_EX | LOCK_NB), then check that fstat of
 * the descriptor and stat of the path name the same file (a holder may
 * unlink it before letting go; then it starts over, up to 8 times).
 * Returns the locked descriptor, -EWOULDBLOCK when another process holds it
 * (or the file was replaced 8 times in a row: probe again later), or a
 * negative errno.
 */
int ccci_domlock_try(const char *locks_dir, const char *domain) CCCI_WUR;

/**
 * Let go of a lock taken by ccci_domlock_try. With @p unlink_it, the file is
 * removed first (only if the path still names the file @p fd holds), while
 * it is still held (so nobody can hold a lock on a
 * file that is about to go: a waiter that opened it finds the inode
 * changed and opens the path again).
 */
void ccci_domlock_release(const char *locks_dir, const char *domain, int fd,
                          bool unlink_it);

/**
 * Probe the lock of @p domain: 1 when another process holds it, 0 when it
 * is free (it was taken and let go at once, the file kept), or a negative
 * errno. ENOENT counts as free.
 */
int ccci_domlock_held(const char *locks_dir, const char *domain) CCCI_WUR;

#endif
