/* Small shared helpers: allocation, capped buffers, files, clocks, text. */
#include "ccci/core/util.h"

#include <errno.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void oom(void)
{
  static const char msg[] = "fatal util: out of memory\n";
  ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)r;
  abort();
}

void *ccci_xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    oom();
  return p;
}

void *ccci_xcalloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

void *ccci_xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (q == NULL)
    oom();
  return q;
}

char *ccci_xstrdup(const char *s)
{
  char *d;
  if (s == NULL)
    return NULL;
  d = strdup(s);
  if (d == NULL)
    oom();
  return d;
}

char *ccci_xstrndup(const char *s, size_t n)
{
  char *d = strndup(s, n);
  if (d == NULL)
    oom();
  return d;
}

char *ccci_xvasprintf(const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    oom();
  return s;
}

char *ccci_xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start(ap, fmt);
  s = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  return s;
}

void ccci_wipe_free(void *p, size_t n)
{
  if (p == NULL)
    return;
  explicit_bzero(p, n);
  free(p);
}

void ccci_wipe_free_str(char *s)
{
  if (s != NULL)
    ccci_wipe_free(s, strlen(s));
}

/* Freed power-of-two blocks are kept for reuse, up to IO_POOL_MAX bytes in
 * all: a new mapping costs a page fault per page on first touch and an
 * munmap costs a TLB shootdown, and runs come and go all day. */
#define IO_CLASSES 8 /* 64 KiB .. 8 MiB */
#define IO_POOL_MAX (4u * 1024u * 1024u)

static struct {
  pthread_mutex_t lock;
  void *free[IO_CLASSES]; /* each block's first word links the next */
  size_t bytes;
} io_pool = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0};

/* The pool class of an @p n byte block, or -1 when it is not pooled. */
static int io_class(size_t n)
{
  int c;
  for (c = 0; c < IO_CLASSES; c++)
    if (n == (size_t)CCCI_IO_MAP_MIN << c)
      return c;
  return -1;
}

void *ccci_io_alloc(size_t n)
{
  void *p = NULL;
  int c;
  if (n < CCCI_IO_MAP_MIN)
    return ccci_xmalloc(n);
  c = io_class(n);
  if (c >= 0) {
    pthread_mutex_lock(&io_pool.lock);
    p = io_pool.free[c];
    if (p != NULL) {
      memcpy(&io_pool.free[c], p, sizeof(void *));
      io_pool.bytes -= n;
    }
    pthread_mutex_unlock(&io_pool.lock);
    if (p != NULL)
      return p;
  }
  p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "fatal: out of memory (%zu bytes)\n", n);
    abort();
  }
  /* Only an optimisation: without it the block is merely shared
   * copy-on-write with a child until the child execs. */
  (void)madvise(p, n, MADV_DONTFORK);
  return p;
}

void ccci_io_free(void *p, size_t n)
{
  int c;
  if (p == NULL)
    return;
  if (n < CCCI_IO_MAP_MIN) {
    ccci_wipe_free(p, n);
    return;
  }
  explicit_bzero(p, n);
  c = io_class(n);
  if (c >= 0) {
    pthread_mutex_lock(&io_pool.lock);
    if (io_pool.bytes + n <= IO_POOL_MAX) {
      memcpy(p, &io_pool.free[c], sizeof(void *));
      io_pool.free[c] = p;
      io_pool.bytes += n;
      p = NULL;
    }
    pthread_mutex_unlock(&io_pool.lock);
  }
  if (p != NULL)
    munmap(p, n);
}

void ccci_buf_init(struct ccci_buf *b, size_t max)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

int ccci_buf_reserve(struct ccci_buf *b, size_t extra)
{
  size_t need, ncap;
  char *nd;
  if (extra > b->max || b->len > b->max - extra)
    return -ENOBUFS;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  ncap = b->cap ? b->cap : 64;
  while (ncap < need)
    ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  /* Copy rather than realloc so the old bytes can be wiped. */
  nd = ccci_io_alloc(ncap);
  if (b->data != NULL) {
    memcpy(nd, b->data, b->len + 1);
    ccci_io_free(b->data, b->cap);
  }
  b->data = nd;
  b->cap = ncap;
  return 0;
}

int ccci_buf_append(struct ccci_buf *b, const void *p, size_t n)
{
  int r = ccci_buf_reserve(b, n);
  if (r < 0)
    return r;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int ccci_buf_printf(struct ccci_buf *b, const char *fmt, ...)
{
  va_list ap;
  char *s;
  int r;
  va_start(ap, fmt);
  s = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  r = ccci_buf_append(b, s, strlen(s));
  free(s);
  return r;
}

void ccci_buf_consume(struct ccci_buf *b, size_t n)
{
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
  }
  if (b->data != NULL)
    b->data[b->len] = '\0';
}

char *ccci_buf_detach(struct ccci_buf *b)
{
  char *d = b->data;
  if (d == NULL) {
    d = ccci_xstrdup("");
  } else if (b->cap >= CCCI_IO_MAP_MIN) {
    /* The caller frees with free(): hand over a malloc copy. */
    d = ccci_xstrndup(b->data, b->len);
    ccci_io_free(b->data, b->cap);
  }
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return d;
}

void ccci_buf_close(struct ccci_buf *b)
{
  ccci_io_free(b->data, b->cap);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

/* Read all of @p fd (closed here) as ccci_read_file does. */
static int read_fd(int fd, size_t max, char **out, size_t *len)
{
  struct ccci_buf b;
  char chunk[8192];
  int r = 0;

  *out = NULL;
  if (len != NULL)
    *len = 0;
  ccci_buf_init(&b, max);
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = -errno;
      break;
    }
    if (n == 0)
      break;
    if (ccci_buf_append(&b, chunk, (size_t)n) < 0) {
      r = -EFBIG;
      break;
    }
  }
  explicit_bzero(chunk, sizeof(chunk));
  close(fd);
  if (r < 0) {
    ccci_buf_close(&b);
    return r;
  }
  if (len != NULL)
    *len = b.len;
  *out = ccci_buf_detach(&b);
  return 0;
}

int ccci_read_file(const char *path, size_t max, char **out, size_t *len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  *out = NULL;
  if (len != NULL)
    *len = 0;
  if (fd < 0)
    return -errno;
  return read_fd(fd, max, out, len);
}

int ccci_read_file_beneath(const char *dir, const char *rel, size_t max,
                           char **out, size_t *len)
{
  struct open_how how;
  struct stat st;
  int dfd, fd;

  *out = NULL;
  if (len != NULL)
    *len = 0;
  dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  memset(&how, 0, sizeof(how));
  how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
  if (fd < 0) {
    int e = errno;
    close(dfd);
    return -e;
  }
  close(dfd);
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return -EINVAL;
  }
  if ((uint64_t)st.st_size > (uint64_t)max) {
    close(fd);
    return -EFBIG;
  }
  return read_fd(fd, max, out, len);
}

static int write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_replace(const char *path, const void *data, size_t len,
                         mode_t mode, bool durable);

static int fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = 0;
  if (fd < 0)
    return -errno;
  if (fsync(fd) < 0)
    r = -errno;
  close(fd);
  return r;
}

int ccci_write_file_atomic(const char *path, const void *data, size_t len,
                           mode_t mode)
{
  return write_replace(path, data, len, mode, true);
}

int ccci_write_file_replace(const char *path, const void *data, size_t len,
                            mode_t mode)
{
  return write_replace(path, data, len, mode, false);
}

static int write_replace(const char *path, const void *data, size_t len,
                         mode_t mode, bool durable)
{
  char *tmp = ccci_xasprintf("%s.tmp.%ld", path, (long)getpid());
  char *dir = NULL;
  int fd = -1, r;

  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    r = -errno;
    goto out;
  }
  r = write_all(fd, data, len);
  if (r == 0 && durable && fsync(fd) < 0)
    r = -errno;
  if (close(fd) < 0 && r == 0)
    r = -errno;
  fd = -1;
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0) {
    unlink(tmp);
    goto out;
  }
  if (durable) {
    dir = ccci_dirname(path);
    r = fsync_dir(dir);
  }
out:
  free(dir);
  free(tmp);
  return r;
}

int ccci_mkdir_p(const char *path, mode_t mode)
{
  char *p = ccci_xstrdup(path);
  size_t i, n = strlen(p);
  int r = 0;

  for (i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0')
      continue;
    p[i] = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST) {
      r = -errno;
      break;
    }
    if (i < n)
      p[i] = '/';
  }
  if (r == 0) {
    struct stat st;
    if (stat(path, &st) < 0)
      r = -errno;
    else if (!S_ISDIR(st.st_mode))
      r = -ENOTDIR;
  }
  free(p);
  return r;
}

char *ccci_dirname(const char *path)
{
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    return ccci_xstrdup(".");
  if (slash == path)
    return ccci_xstrdup("/");
  return ccci_xstrndup(path, (size_t)(slash - path));
}

char *ccci_path_join(const char *base, const char *rel)
{
  if (rel[0] == '/' || base == NULL || base[0] == '\0')
    return ccci_xstrdup(rel);
  return ccci_xasprintf("%s/%s", base, rel);
}

uint64_t ccci_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ccci_rfc3339(time_t t, char out[32])
{
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int ccci_parse_u64(const char *s, uint64_t *out)
{
  uint64_t v = 0;
  if (s == NULL || *s == '\0')
    return -EINVAL;
  for (; *s != '\0'; s++) {
    unsigned d;
    if (*s < '0' || *s > '9')
      return -EINVAL;
    d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -ERANGE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

size_t ccci_edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b), i, j, res;
  size_t *prev2, *prev, *cur;

  if (la > 256 || lb > 256)
    return la > lb ? la : lb;
  prev2 = ccci_xcalloc(lb + 1, sizeof(size_t));
  prev = ccci_xcalloc(lb + 1, sizeof(size_t));
  cur = ccci_xcalloc(lb + 1, sizeof(size_t));
  for (j = 0; j <= lb; j++)
    prev[j] = j;
  for (i = 1; i <= la; i++) {
    size_t *t;
    cur[0] = i;
    for (j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = prev[j] + 1;
      if (cur[j - 1] + 1 < v)
        v = cur[j - 1] + 1;
      if (prev[j - 1] + cost < v)
        v = prev[j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          prev2[j - 2] + 1 < v)
        v = prev2[j - 2] + 1;
      cur[j] = v;
    }
    t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  res = prev[lb];
  free(prev2);
  free(prev);
  free(cur);
  return res;
}

int ccci_set_cloexec(int fd)
{
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0)
    return -errno;
  if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
    return -errno;
  return 0;
}
