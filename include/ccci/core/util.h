/* Small shared helpers: allocation, capped buffers, files, clocks, text. */
#ifndef CCCI_UTIL_H
#define CCCI_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CCCI_WUR __attribute__((warn_unused_result))
#define CCCI_PRINTF(f, a) __attribute__((format(printf, f, a)))

#define ccci_container_of(ptr, type, member)                                   \
  ((type *)((char *)(ptr)-offsetof(type, member)))

#define CCCI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** Allocate @p n bytes; a failure of such a small, fixed allocation aborts. */
void *ccci_xmalloc(size_t n);
/** Zeroed allocation of @p n elements of @p size bytes; aborts on failure. */
void *ccci_xcalloc(size_t n, size_t size);
/** realloc() that aborts on failure. */
void *ccci_xrealloc(void *p, size_t n);
/** strdup() that aborts on failure; NULL stays NULL. */
char *ccci_xstrdup(const char *s);
/** strndup() that aborts on failure. */
char *ccci_xstrndup(const char *s, size_t n);
/** Formatted allocation; aborts on failure. The caller frees the result. */
char *ccci_xasprintf(const char *fmt, ...) CCCI_PRINTF(1, 2);
/** vasprintf() that aborts on failure. */
char *ccci_xvasprintf(const char *fmt, va_list ap) CCCI_PRINTF(1, 0);
/** Wipe @p n bytes at @p p (explicit_bzero) and free it. NULL is allowed. */
void ccci_wipe_free(void *p, size_t n);
/** Wipe a NUL-terminated string and free it. NULL is allowed. */
void ccci_wipe_free_str(char *s);

/** Blocks from this size on come from ccci_io_alloc's own mappings. */
#define CCCI_IO_MAP_MIN (64u * 1024u)

/**
 * Memory for the daemon's hot I/O buffers (pipe reads, redactor output,
 * encoded log lines). Blocks of CCCI_IO_MAP_MIN bytes and more are private
 * mappings marked MADV_DONTFORK: a fork for uv_spawn neither copies their
 * page tables nor turns them copy-on-write, which would cost the daemon one
 * page fault per page it writes afterwards. A forked child must therefore
 * not touch them (ours only exec). Freed blocks of a power-of-two size are
 * wiped and kept for reuse (4 MiB at most), which spares the page faults
 * of fresh mappings. Smaller blocks come from malloc. Thread-safe; aborts
 * on failure, like ccci_xmalloc.
 */
void *ccci_io_alloc(size_t n);
/** Wipe and release a block of @p n bytes from ccci_io_alloc (NULL ok). */
void ccci_io_free(void *p, size_t n);

/**
 * A growable byte buffer with a hard cap, for anything fed from outside.
 * `data` is always NUL-terminated when non-NULL (the NUL is not in `len`).
 * Its storage comes from ccci_io_alloc.
 */
struct ccci_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max; /**< never grows beyond this many bytes of content */
};

/** Start an empty buffer that refuses to hold more than @p max bytes. */
void ccci_buf_init(struct ccci_buf *b, size_t max);
/** Make room for @p extra more bytes; 0, or -ENOBUFS past the cap. */
int ccci_buf_reserve(struct ccci_buf *b, size_t extra) CCCI_WUR;
/** Append; returns 0, or -ENOBUFS (and appends nothing) past the cap. */
int ccci_buf_append(struct ccci_buf *b, const void *p, size_t n) CCCI_WUR;
/** Append formatted text; -ENOBUFS past the cap. */
int ccci_buf_printf(struct ccci_buf *b, const char *fmt, ...) CCCI_WUR
    CCCI_PRINTF(2, 3);
/** Drop the first @p n bytes. */
void ccci_buf_consume(struct ccci_buf *b, size_t n);
/** Hand the contents to the caller (never NULL) and reset the buffer. */
char *ccci_buf_detach(struct ccci_buf *b);
/** Free the contents (wiped first: buffers may hold secrets). */
void ccci_buf_close(struct ccci_buf *b);

/**
 * Read a whole file of at most @p max bytes into a NUL-terminated heap
 * string. Returns 0, -EFBIG when larger, or a negative errno.
 */
int ccci_read_file(const char *path, size_t max, char **out,
                   size_t *len) CCCI_WUR;
/**
 * As ccci_read_file, for a file @p rel under @p dir written by someone else
 * (a run's harness): no symbolic link on the way (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so -ELOOP or -EXDEV), opened
 * without blocking, and only a regular file (else -EINVAL).
 */
int ccci_read_file_beneath(const char *dir, const char *rel, size_t max,
                           char **out, size_t *len) CCCI_WUR;
/**
 * Replace @p path atomically: write a temp file in the same directory, fsync
 * it, rename it over @p path, fsync the directory. Returns 0 or -errno.
 */
int ccci_write_file_atomic(const char *path, const void *data, size_t len,
                           mode_t mode) CCCI_WUR;
/**
 * Replace @p path atomically (temp file, rename) without fsync: for files
 * that can be rebuilt, like logs/index.json. Returns 0 or -errno.
 */
int ccci_write_file_replace(const char *path, const void *data, size_t len,
                            mode_t mode) CCCI_WUR;
/** mkdir -p with @p mode for the directories it creates. 0 or -errno. */
int ccci_mkdir_p(const char *path, mode_t mode) CCCI_WUR;
/** The directory part of @p path as a new string ("." when none). */
char *ccci_dirname(const char *path);
/** @p rel joined to @p base unless @p rel is absolute; a new string. */
char *ccci_path_join(const char *base, const char *rel);

/** Milliseconds on the monotonic clock. */
uint64_t ccci_now_ms(void);
/** Format @p t as RFC 3339 UTC ("2026-11-24T03:57:48Z") into @p out. */
void ccci_rfc3339(time_t t, char out[32]);

/** Strict decimal parse of a whole string into @p out; 0, -EINVAL, -ERANGE. */
int ccci_parse_u64(const char *s, uint64_t *out) CCCI_WUR;
/** Optimal-string-alignment edit distance between @p a and @p b. */
size_t ccci_edit_distance(const char *a, const char *b);

/** Set FD_CLOEXEC on @p fd. 0 or -errno. */
int ccci_set_cloexec(int fd) CCCI_WUR;

#endif
