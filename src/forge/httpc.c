/* The HTTP client glue: libcurl's multi interface driven by the libuv loop,
 * plus request and response plumbing. */
#include "ccci/forge/httpc.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "build_info.h"
#include "ccci/core/list.h"
#include "ccci/core/log.h"

/* One curl socket on the loop. Two kinds:
 *
 * - Connection sockets, opened by open_socket() and closed by close_socket():
 *   their poll lives as long as the descriptor, so a kept-alive connection
 *   keeps its poll between transfers. When curl stops watching one (the
 *   connection goes idle in its cache) the poll stays armed for reading: the
 *   next transfer on it changes nothing in epoll. An idle connection that
 *   turns readable (the server closed it) stops its poll at the first wakeup;
 *   curl finds it dead when it next tries to reuse it.
 * - Any other socket curl watches (its resolver's socketpair): watched from
 *   its first event to CURL_POLL_REMOVE.
 *
 * Found through curl_multi_assign(), or for a connection socket by number
 * among the live ones (valid from open to close, which we both see); never
 * among closing ones: curl may hand us a new socket with the number of one
 * whose poll handle is still closing, and the two must not meet. */
struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct ccci_httpc *h;
  struct ccci_list node; /* in h->socks */
  int events;            /* what the poll is started with; 0: stopped */
  bool conn;             /* a connection socket: lives until close_socket() */
  bool wanted;           /* curl watches it (its last event was not a REMOVE) */
  bool closing;
};

#define EASY_SPARE 16

struct ccci_httpc {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct ccci_httpc_opts opts;
  char *user_agent;
  char *ok_origin;        /* the last "scheme://authority" curl's parser took */
  struct ccci_list xfers; /* in flight */
  /* Easy handles of finished transfers, reset, for the next ones: making
   * one allocates and clears some 20 KiB (its receive buffer included). */
  CURL *spare[EASY_SPARE];
  unsigned nspare;
  struct ccci_list socks; /* open and closing */
  struct ccci_httpc_stats stats;
  unsigned handles; /* the timer plus every sock, closing or not */
  bool closing;
  void (*done)(void *arg);
  void *done_arg;
};

struct ccci_httpc_xfer {
  struct ccci_httpc *h;
  struct ccci_list node; /* in h->xfers */
  CURL *easy;
  struct curl_slist *headers; /* ours: wiped when freed */
  char *req_body;
  size_t req_body_len;
  ccci_httpc_cb cb;
  void *arg;
  struct ccci_buf body;
  struct ccci_buf link;
  int64_t date;
  int64_t retry_delta; /* Retry-After as seconds, or -1 */
  int64_t retry_at;    /* Retry-After as an epoch, or -1 */
  long long total_count;
  uint64_t started_ms;
  bool too_large;
  bool in_cb;
  char errbuf[CURL_ERROR_SIZE];
};

static bool global_ready;

int ccci_httpc_global_init(void)
{
  const curl_version_info_data *v;
  const char *const *p;
  bool http = false, https = false;

  if (global_ready)
    return 0;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -ENOMEM;
  v = curl_version_info(CURLVERSION_NOW);
  for (p = v->protocols; p != NULL && *p != NULL; p++) {
    http = http || strcmp(*p, "http") == 0;
    https = https || strcmp(*p, "https") == 0;
  }
  /* CURLOPT_PROTOCOLS_STR arrived in 7.85.0. */
  if (v->version_num < 0x075500 || !http || !https) {
    curl_global_cleanup();
    return -ENOTSUP;
  }
  if (!(v->features & CURL_VERSION_ASYNCHDNS))
    ccci_warn("http",
              "libcurl %s resolves names synchronously: a slow DNS "
              "server will stall the loop",
              v->version);
  global_ready = true;
  return 0;
}

void ccci_httpc_global_cleanup(void)
{
  if (!global_ready)
    return;
  curl_global_cleanup();
  global_ready = false;
}

/* ---- close-on-exec for descriptors curl opens itself ---- */

/* The descriptors without FD_CLOEXEC, read from /proc/self/fd. */
static int inheritable_fds(int **out, size_t *n)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int *v = NULL;
  size_t len = 0;

  if (d == NULL)
    return -errno;
  while ((e = readdir(d)) != NULL) {
    uint64_t fd;
    int fl;
    if (ccci_parse_u64(e->d_name, &fd) < 0 || fd > INT_MAX ||
        (int)fd == dirfd(d))
      continue;
    fl = fcntl((int)fd, F_GETFD);
    if (fl < 0 || (fl & FD_CLOEXEC))
      continue;
    v = ccci_xrealloc(v, (len + 1) * sizeof(*v));
    v[len++] = (int)fd;
  }
  closedir(d);
  *out = v;
  *n = len;
  return 0;
}

/* curl_multi_init() opens a socketpair (its wakeup channel) without
 * SOCK_CLOEXEC and no option reaches it: mark whatever it opened. */
static CURLM *multi_init_cloexec(void)
{
  int *before = NULL, *after = NULL;
  size_t nb = 0, na = 0, i, j;
  bool known;
  CURLM *m;

  known = inheritable_fds(&before, &nb) == 0;
  m = curl_multi_init();
  if (m != NULL && known && inheritable_fds(&after, &na) == 0) {
    for (i = 0; i < na; i++) {
      for (j = 0; j < nb && before[j] != after[i]; j++)
        ;
      if (j == nb && ccci_set_cloexec(after[i]) < 0)
        ccci_warn("http", "cannot make curl's descriptor %d close-on-exec",
                  after[i]);
    }
  }
  free(before);
  free(after);
  return m;
}

/* ---- the loop glue: curl's sockets on uv_poll, its timer on uv_timer ---- */

static void check_multi_info(struct ccci_httpc *h);

static void maybe_done(struct ccci_httpc *h)
{
  void (*done)(void *arg);
  void *arg;

  if (!h->closing || h->handles > 0)
    return;
  done = h->done;
  arg = h->done_arg;
  free(h->user_agent);
  free(h->ok_origin);
  free(h);
  if (done != NULL)
    done(arg);
}

static void drive(struct ccci_httpc *h, curl_socket_t s, int flags)
{
  int running;
  CURLMcode mc = curl_multi_socket_action(h->multi, s, flags, &running);

  if (mc != CURLM_OK)
    ccci_warn("http", "curl_multi_socket_action: %s", curl_multi_strerror(mc));
  check_multi_info(h);
}

/* Start, change or stop a socket's poll; nothing when it already is so
 * (uv_poll_start always takes the descriptor out of epoll and puts it back). */
static void sock_watch(struct sock *k, int events);

static void on_poll(uv_poll_t *p, int status, int events)
{
  struct sock *k = ccci_container_of(p, struct sock, poll);
  int flags = 0;

  if (!k->wanted) {
    /* An idle kept-alive connection woke up: the server closed it or sent
     * something unasked. Curl checks it before reusing it; until then it
     * must not wake the loop again. */
    sock_watch(k, 0);
    return;
  }
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  /* k may be closing by the time this returns (curl may close the socket);
   * it is freed only in its close callback, and its client not at all. */
  drive(k->h, k->fd, flags);
}

static void sock_watch(struct sock *k, int events)
{
  int r;

  if (k->closing || events == k->events)
    return;
  k->h->stats.watch_changes++;
  if (events == 0) {
    uv_poll_stop(&k->poll);
    k->events = 0;
    return;
  }
  r = uv_poll_start(&k->poll, events, on_poll);
  if (r < 0) {
    ccci_error("http", "cannot poll curl's socket %d: %s", (int)k->fd,
               uv_strerror(r));
    k->events = 0;
    return;
  }
  k->events = events;
}

static void on_sock_close(uv_handle_t *hd)
{
  struct sock *k = ccci_container_of(hd, struct sock, poll);
  struct ccci_httpc *h = k->h;

  ccci_list_remove(&k->node);
  free(k);
  h->handles--;
  maybe_done(h);
}

/* Stop watching at once, while the descriptor is still open: the poll is
 * taken out of epoll before the number is closed (and maybe reused). */
static void sock_close(struct sock *k)
{
  if (k->closing)
    return;
  if (k->events != 0)
    k->h->stats.watch_changes++;
  k->closing = true;
  k->h->stats.sockets--;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, on_sock_close);
}

static struct sock *sock_new(struct ccci_httpc *h, curl_socket_t s, bool conn)
{
  struct sock *k = ccci_xcalloc(1, sizeof(*k));
  int r;

  r = uv_poll_init_socket(h->loop, &k->poll, s);
  if (r < 0) {
    ccci_error("http", "cannot watch curl's socket %d: %s", (int)s,
               uv_strerror(r));
    free(k);
    return NULL;
  }
  /* Connection sockets are SOCK_CLOEXEC already; curl's resolver
   * socketpair is not, and this is the first time we see it. */
  if (!conn && ccci_set_cloexec(s) < 0)
    ccci_warn("http", "cannot make curl's socket %d close-on-exec", (int)s);
  k->fd = s;
  k->h = h;
  k->conn = conn;
  ccci_list_add_head(&h->socks, &k->node);
  h->handles++;
  h->stats.sockets++;
  return k;
}

/* The live connection socket numbered @p s, if any. */
static struct sock *conn_sock(struct ccci_httpc *h, curl_socket_t s)
{
  struct ccci_list *it, *nx;

  ccci_list_foreach_safe(it, nx, &h->socks)
  {
    struct sock *k = ccci_container_of(it, struct sock, node);
    if (k->conn && !k->closing && k->fd == s)
      return k;
  }
  return NULL;
}

/* Never returns -1: that marks the whole multi handle dead for good. A
 * socket we cannot watch leaves only its transfer stuck until its total
 * timeout (curl's timer still runs). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
  struct ccci_httpc *h = userp;
  struct sock *k = socketp;
  int events = 0;

  (void)easy;
  if (k == NULL)
    k = conn_sock(h, s);
  if (what == CURL_POLL_REMOVE) {
    if (k == NULL)
      return 0;
    if (!k->conn) {
      sock_close(k);
      return 0;
    }
    /* Idle in curl's cache: stay armed for reading only (see struct sock). */
    k->wanted = false;
    if (k->events != UV_READABLE)
      sock_watch(k, 0);
    return 0;
  }
  if (k == NULL) {
    if (h->closing)
      return 0;
    k = sock_new(h, s, false);
    if (k == NULL)
      return 0;
  }
  if (socketp == NULL)
    curl_multi_assign(h->multi, s, k);
  k->wanted = true;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  sock_watch(k, events);
  return 0;
}

static void on_timer(uv_timer_t *t)
{
  struct ccci_httpc *h = ccci_container_of(t, struct ccci_httpc, timer);
  drive(h, CURL_SOCKET_TIMEOUT, 0);
}

/* A 0 ms timeout is a 0 ms timer too: curl asks for it from inside
 * curl_multi_add_handle(), where curl refuses a nested
 * curl_multi_socket_action(), and acting inline would run callbacks inside
 * ccci_httpc_send(). Like on_socket, never returns -1. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  struct ccci_httpc *h = userp;

  (void)multi;
  if (h->closing)
    return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&h->timer);
    return 0;
  }
  uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

static void on_timer_close(uv_handle_t *hd)
{
  struct ccci_httpc *h = ccci_container_of(hd, struct ccci_httpc, timer);
  h->handles--;
  maybe_done(h);
}

/* ---- transfers ---- */

/* An easy handle with curl's defaults: a spare one, or a new one. */
static CURL *easy_get(struct ccci_httpc *h)
{
  if (h->nspare > 0)
    return h->spare[--h->nspare];
  return curl_easy_init();
}

/* Done with @p e (out of the multi handle). curl_easy_reset() drops every
 * option (our header list and request body with them) and keeps only the
 * buffers. */
static void easy_release(struct ccci_httpc *h, CURL *e)
{
  if (h->closing || h->nspare == EASY_SPARE) {
    curl_easy_cleanup(e);
    return;
  }
  curl_easy_reset(e);
  h->spare[h->nspare++] = e;
}

static void xfer_free(struct ccci_httpc_xfer *x)
{
  struct curl_slist *l;

  if (x->easy != NULL)
    easy_release(x->h, x->easy);
  for (l = x->headers; l != NULL; l = l->next)
    explicit_bzero(l->data, strlen(l->data));
  curl_slist_free_all(x->headers);
  ccci_wipe_free(x->req_body, x->req_body_len);
  ccci_buf_close(&x->body);
  ccci_buf_close(&x->link);
  explicit_bzero(x->errbuf, sizeof(x->errbuf));
  free(x);
}

static long long_ms(uint64_t ms)
{
  return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

static int64_t os_errno(struct ccci_httpc_xfer *x)
{
  long e = 0;
  curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &e);
  return e;
}

static int map_error(struct ccci_httpc_xfer *x, CURLcode rc)
{
  int64_t e;

  switch (rc) {
  case CURLE_OK:
    return 0;
  case CURLE_OPERATION_TIMEDOUT:
    return -ETIMEDOUT;
  case CURLE_COULDNT_CONNECT:
    e = os_errno(x);
    return e > 0 && e < 4096 ? -(int)e : -ECONNREFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return -EHOSTUNREACH;
  case CURLE_WRITE_ERROR:
    return x->too_large ? -EFBIG : -EIO;
  case CURLE_FILESIZE_EXCEEDED:
    return -EFBIG;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return -ECONNRESET;
  case CURLE_OUT_OF_MEMORY:
    return -ENOMEM;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_UNSUPPORTED_PROTOCOL:
    return -EPROTO;
  default:
    return -EIO;
  }
}

/* curl's message, unless it quotes one of our header values: then only the
 * generic text for the code. curl does not quote request headers today;
 * this keeps it so. */
static const char *error_text(struct ccci_httpc_xfer *x, CURLcode rc, int err)
{
  const char *t = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc);
  struct curl_slist *l;

  if (err == 0)
    return "";
  if (err == -EFBIG)
    return "response body larger than max_response_bytes";
  for (l = x->headers; l != NULL; l = l->next) {
    const char *v = strpbrk(l->data, ":;");
    if (v == NULL)
      continue;
    for (v++; *v == ' ' || *v == '\t'; v++)
      ;
    if (*v != '\0' && strstr(t, v) != NULL)
      return curl_easy_strerror(rc);
  }
  return t;
}

static void finish(struct ccci_httpc_xfer *x, CURLcode rc)
{
  struct ccci_httpc *h = x->h;
  struct ccci_httpc_response resp;
  long status = 0, connects = 0;

  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
  memset(&resp, 0, sizeof(resp));
  resp.status = status;
  resp.error = map_error(x, rc);
  resp.error_text = error_text(x, rc, resp.error);
  resp.body = x->body.data != NULL ? x->body.data : "";
  resp.body_len = x->body.len;
  resp.date = x->date;
  resp.retry_after_s = -1;
  if (x->retry_delta >= 0) {
    resp.retry_after_s = x->retry_delta;
  } else if (x->retry_at >= 0) {
    int64_t base = x->date >= 0 ? x->date : (int64_t)time(NULL);
    resp.retry_after_s = x->retry_at > base ? x->retry_at - base : 0;
  }
  resp.link = x->link.data;
  resp.total_count = x->total_count;
  resp.elapsed_ms = ccci_now_ms() - x->started_ms;

  curl_multi_remove_handle(h->multi, x->easy);
  ccci_list_remove(&x->node);
  h->stats.in_flight--;
  h->stats.completed++;
  h->stats.connects += connects > 0 ? (uint64_t)connects : 0;
  if (resp.error != 0)
    h->stats.errors++;
  if (resp.error == -EFBIG)
    h->stats.too_large++;
  x->in_cb = true;
  x->cb(x->arg, &resp);
  xfer_free(x);
}

/* Deliver every finished transfer. Runs after each socket and timer
 * action; a callback that closes the client ends the walk. */
static void check_multi_info(struct ccci_httpc *h)
{
  CURLMsg *m;
  int left;

  while (!h->closing && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
    struct ccci_httpc_xfer *x = NULL;
    CURLcode rc;
    if (m->msg != CURLMSG_DONE)
      continue;
    rc = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    finish(x, rc);
  }
}

/* ---- curl's per-transfer callbacks ---- */

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
  struct ccci_httpc_xfer *x = userp;
  size_t len = size * n;

  if (ccci_buf_append(&x->body, p, len) < 0) {
    /* A short count aborts the transfer with CURLE_WRITE_ERROR. */
    x->too_large = true;
    return 0;
  }
  return len;
}

/* A copy of a header value for parsers that want a C string. */
static bool value_copy(const char *v, size_t n, char *out, size_t max)
{
  if (n >= max)
    return false;
  memcpy(out, v, n);
  out[n] = '\0';
  return true;
}

static int64_t parse_count(const char *v, size_t n)
{
  char tmp[32];
  uint64_t u;

  if (!value_copy(v, n, tmp, sizeof(tmp)) || ccci_parse_u64(tmp, &u) < 0 ||
      u > INT64_MAX)
    return -1;
  return (int64_t)u;
}

static int two_digits(const char *p)
{
  if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
    return -1;
  return (p[0] - '0') * 10 + (p[1] - '0');
}

/* RFC 9110's preferred format, "Sun, 06 Nov 1994 08:49:37 GMT", the one
 * servers send: parsed here in a few hundred instructions (curl_getdate
 * takes some ten thousand, and every response has a Date). -1 for anything
 * else. */
static int64_t imf_fixdate(const char *v, size_t n)
{
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  static const char wdays[] = "MonTueWedThuFriSatSun";
  int d, y1, y2, hh, mm, ss, m, w;
  int64_t y, days;

  if (n != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' ||
      v[16] != ' ' || v[19] != ':' || v[22] != ':' ||
      memcmp(v + 25, " GMT", 4) != 0)
    return -1;
  for (w = 0; w < 7 && memcmp(v, wdays + 3 * w, 3) != 0; w++)
    ;
  for (m = 0; m < 12 && memcmp(v + 8, months + 3 * m, 3) != 0; m++)
    ;
  d = two_digits(v + 5);
  y1 = two_digits(v + 12);
  y2 = two_digits(v + 14);
  hh = two_digits(v + 17);
  mm = two_digits(v + 20);
  ss = two_digits(v + 23);
  if (w == 7 || m == 12 || d < 1 || d > 31 || y1 < 0 || y2 < 0 || hh < 0 ||
      hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
    return -1;
  /* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
   * days_from_civil), March-based years. */
  y = y1 * 100 + y2 - (m < 2);
  {
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 10) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;
  }
  if (days < 0)
    return -1;
  return days * 86400 + hh * 3600 + mm * 60 + ss;
}

int64_t ccci_httpc_parse_date(const char *v, size_t n)
{
  char tmp[64];
  int64_t fast = imf_fixdate(v, n);
  time_t t;

  if (fast >= 0)
    return fast;
  if (!value_copy(v, n, tmp, sizeof(tmp)))
    return -1;
  t = curl_getdate(tmp, NULL);
  return t < 0 ? -1 : (int64_t)t;
}

static bool name_is(const char *line, size_t name_len, const char *name)
{
  return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

static void header_line(struct ccci_httpc_xfer *x, const char *line, size_t len)
{
  const char *colon, *v, *end;
  size_t nlen;

  /* Each response (an interim 1xx, a proxy's CONNECT answer, the final one)
   * starts with its status line: only the last one's headers count. */
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    x->date = x->retry_delta = x->retry_at = -1;
    x->total_count = -1;
    ccci_buf_close(&x->link);
    ccci_buf_init(&x->link, CCCI_HTTPC_MAX_HEADER_LINE);
    return;
  }
  colon = memchr(line, ':', len);
  if (colon == NULL)
    return;
  nlen = (size_t)(colon - line);
  end = line + len;
  for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
    ;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                     end[-1] == '\t'))
    end--;
  if (name_is(line, nlen, "date")) {
    x->date = ccci_httpc_parse_date(v, (size_t)(end - v));
  } else if (name_is(line, nlen, "retry-after")) {
    x->retry_delta = parse_count(v, (size_t)(end - v));
    x->retry_at =
        x->retry_delta >= 0 ? -1 : ccci_httpc_parse_date(v, (size_t)(end - v));
  } else if (name_is(line, nlen, "x-total-count")) {
    x->total_count = parse_count(v, (size_t)(end - v));
  } else if (name_is(line, nlen, "link")) {
    /* Repeated Link headers form one list. */
    if (x->link.len > 0 && ccci_buf_append(&x->link, ", ", 2) < 0)
      return;
    if (ccci_buf_append(&x->link, v, (size_t)(end - v)) < 0)
      return;
  }
}

static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
  struct ccci_httpc_xfer *x = userp;
  size_t len = size * n;

  if (len <= CCCI_HTTPC_MAX_HEADER_LINE)
    header_line(x, p, len);
  return len;
}

/* Every connection socket is made here, close-on-exec, and gets its poll
 * handle for as long as it is open. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose,
                                 struct curl_sockaddr *a)
{
  struct ccci_httpc *h = clientp;
  curl_socket_t s;
  struct sock *k;

  (void)purpose;
  if (h->closing)
    return CURL_SOCKET_BAD;
  s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (s < 0)
    return CURL_SOCKET_BAD;
  /* Curl closes every connection socket through close_socket(), so a live
   * one with this number cannot exist; if it did, it must not stay. */
  k = conn_sock(h, s);
  if (k != NULL)
    sock_close(k);
  if (sock_new(h, s, true) == NULL) {
    close(s);
    return CURL_SOCKET_BAD;
  }
  return s;
}

/* Curl is done with a connection socket: stop its poll while the number is
 * still ours, then close it. */
static int close_socket(void *clientp, curl_socket_t s)
{
  struct ccci_httpc *h = clientp;
  struct sock *k = conn_sock(h, s);

  if (k != NULL)
    sock_close(k);
  return close(s) < 0 ? 1 : 0;
}

/* ---- request validation ---- */

static bool method_ok(const char *m)
{
  size_t i;

  if (m == NULL || m[0] == '\0')
    return false;
  for (i = 0; m[i] != '\0'; i++)
    if (i >= 16 || m[i] < 'A' || m[i] > 'Z')
      return false;
  return true;
}

/* The length of @p url's "scheme://authority" part, or 0 when it has none. */
static size_t origin_len(const char *url)
{
  const char *p = strstr(url, "://");

  if (p == NULL)
    return 0;
  return (size_t)(p - url) + 3 + strcspn(p + 3, "/?#");
}

/* An absolute http or https URL without spaces or control characters.
 * Whether curl's parser takes it depends on its scheme and authority only
 * (the rest is passed on as it is): the last origin it took is remembered,
 * so a client sending to one server parses it once. */
static int url_check(struct ccci_httpc *h, const char *url)
{
  CURLU *u;
  char *scheme = NULL;
  const char *p;
  size_t olen;
  int r = -EINVAL;

  if (url == NULL)
    return -EINVAL;
  for (p = url; *p != '\0'; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return -EINVAL;
  olen = origin_len(url);
  if (olen > 0 && h->ok_origin != NULL && strlen(h->ok_origin) == olen &&
      memcmp(h->ok_origin, url, olen) == 0)
    return 0;
  u = curl_url();
  if (u == NULL)
    return -ENOMEM;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0))
    r = 0;
  if (r == 0 && olen > 0) {
    free(h->ok_origin);
    h->ok_origin = ccci_xstrndup(url, olen);
  }
  curl_free(scheme);
  curl_url_cleanup(u);
  return r;
}

static bool tchar(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* "Name: value" (or curl's "Name;" for an empty value): a token, then ':'
 * and no CR or LF anywhere. Returns the name's length, or 0 when bad. */
static size_t header_name_len(const char *s)
{
  size_t n;

  for (n = 0; tchar(s[n]); n++)
    ;
  if (n == 0 || (s[n] != ':' && s[n] != ';'))
    return 0;
  if (s[n] == ';' && s[n + 1] != '\0')
    return 0;
  if (strpbrk(s, "\r\n") != NULL)
    return 0;
  return n;
}

/* Copy the caller's header lines into a list the transfer owns; add
 * "Expect:" (no 100-continue round trip) and, for a body, "Content-Type:"
 * (not curl's form type) unless the caller set them. */
static int build_headers(struct ccci_httpc_xfer *x, const char *const *in,
                         bool has_body)
{
  bool expect = false, ctype = false;
  struct curl_slist *l;
  size_t i, n;

  for (i = 0; in != NULL && in[i] != NULL; i++) {
    n = header_name_len(in[i]);
    if (n == 0)
      return -EINVAL;
    expect = expect || name_is(in[i], n, "expect");
    ctype = ctype || name_is(in[i], n, "content-type");
    l = curl_slist_append(x->headers, in[i]);
    if (l == NULL)
      return -ENOMEM;
    x->headers = l;
  }
  if (!expect) {
    l = curl_slist_append(x->headers, "Expect:");
    if (l == NULL)
      return -ENOMEM;
    x->headers = l;
  }
  if (has_body && !ctype) {
    l = curl_slist_append(x->headers, "Content-Type:");
    if (l == NULL)
      return -ENOMEM;
    x->headers = l;
  }
  return 0;
}

#define SET(opt, val)                                                          \
  do {                                                                         \
    if (rc == CURLE_OK)                                                        \
      rc = curl_easy_setopt(e, opt, val);                                      \
  } while (0)

static CURLcode easy_setup(struct ccci_httpc_xfer *x,
                           const struct ccci_httpc_request *r, bool has_body)
{
  const struct ccci_httpc_opts *o = &x->h->opts;
  CURL *e = x->easy;
  CURLcode rc = CURLE_OK;

  SET(CURLOPT_PRIVATE, (void *)x);
  SET(CURLOPT_URL, r->url);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_FRESH_CONNECT, r->fresh_connection ? 1L : 0L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
  SET(CURLOPT_OPENSOCKETDATA, (void *)x->h);
  SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
  SET(CURLOPT_CLOSESOCKETDATA, (void *)x->h);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)x);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_CONNECTTIMEOUT_MS, long_ms(o->connect_timeout_ms));
  SET(CURLOPT_TIMEOUT_MS, long_ms(o->total_timeout_ms));
  /* Refuse early when Content-Length already says too much; on_body
   * enforces the cap for bodies without one. */
  SET(CURLOPT_MAXFILESIZE_LARGE, o->max_response_bytes > (uint64_t)INT64_MAX
                                     ? (curl_off_t)INT64_MAX
                                     : (curl_off_t)o->max_response_bytes);
  SET(CURLOPT_USERAGENT, o->user_agent);
  SET(CURLOPT_HTTPHEADER, x->headers);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  if (strcmp(r->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req_body_len);
    SET(CURLOPT_POSTFIELDS, x->req_body != NULL ? x->req_body : "");
    if (strcmp(r->method, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, r->method);
  } else if (strcmp(r->method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, r->method);
  }
  return rc;
}

#undef SET

int ccci_httpc_send(struct ccci_httpc *h, const struct ccci_httpc_request *r,
                    ccci_httpc_cb cb, void *arg,
                    struct ccci_httpc_xfer **xfer_out)
{
  struct ccci_httpc_xfer *x = NULL;
  bool has_body;
  CURLcode rc;
  CURLMcode mc;
  int ret;

  if (h == NULL || r == NULL || cb == NULL)
    return -EINVAL;
  if (h->closing)
    return -ESHUTDOWN;
  if (!method_ok(r->method) || (r->body == NULL && r->body_len > 0))
    return -EINVAL;
  ret = url_check(h, r->url);
  if (ret < 0)
    return ret;
  has_body = r->body_len > 0 || strcmp(r->method, "POST") == 0 ||
             strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0;
  if (strcmp(r->method, "HEAD") == 0)
    has_body = false;

  x = ccci_xcalloc(1, sizeof(*x));
  x->h = h;
  x->cb = cb;
  x->arg = arg;
  x->date = x->retry_delta = x->retry_at = -1;
  x->total_count = -1;
  ccci_buf_init(&x->body, h->opts.max_response_bytes);
  ccci_buf_init(&x->link, CCCI_HTTPC_MAX_HEADER_LINE);
  ret = build_headers(x, r->headers, has_body);
  if (ret < 0)
    goto out;
  if (r->body_len > 0) {
    x->req_body = malloc(r->body_len);
    if (x->req_body == NULL) {
      ret = -ENOMEM;
      goto out;
    }
    memcpy(x->req_body, r->body, r->body_len);
    x->req_body_len = r->body_len;
  }
  x->easy = easy_get(h);
  if (x->easy == NULL) {
    ret = -ENOMEM;
    goto out;
  }
  rc = easy_setup(x, r, has_body);
  if (rc != CURLE_OK) {
    ret = rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    goto out;
  }
  x->started_ms = ccci_now_ms();
  /* This only queues the transfer: curl answers with a 0 ms timer. */
  mc = curl_multi_add_handle(h->multi, x->easy);
  if (mc != CURLM_OK) {
    ret = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    goto out;
  }
  ccci_list_add_head(&h->xfers, &x->node);
  h->stats.requests++;
  h->stats.in_flight++;
  if (xfer_out != NULL)
    *xfer_out = x;
  ret = 0;
out:
  if (ret < 0)
    xfer_free(x);
  return ret;
}

/* Take a transfer out of the multi handle and free it, no callback. */
static void xfer_drop(struct ccci_httpc_xfer *x)
{
  struct ccci_httpc *h = x->h;
  long connects = 0;

  curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
  h->stats.connects += connects > 0 ? (uint64_t)connects : 0;
  curl_multi_remove_handle(h->multi, x->easy);
  ccci_list_remove(&x->node);
  h->stats.in_flight--;
  h->stats.cancelled++;
  xfer_free(x);
}

void ccci_httpc_cancel(struct ccci_httpc_xfer *x)
{
  if (x == NULL || x->in_cb)
    return;
  xfer_drop(x);
}

/* ---- the client ---- */

int ccci_httpc_new(uv_loop_t *loop, const struct ccci_httpc_opts *o,
                   struct ccci_httpc **out)
{
  struct ccci_httpc *h = NULL;
  CURLMcode mc = CURLM_OK;
  int r;

  if (!global_ready || loop == NULL || o == NULL || out == NULL ||
      o->max_connections == 0 || o->max_connections > INT_MAX ||
      o->max_response_bytes == 0)
    return -EINVAL;
  h = ccci_xcalloc(1, sizeof(*h));
  ccci_list_init(&h->xfers);
  ccci_list_init(&h->socks);
  h->loop = loop;
  h->opts = *o;
  h->user_agent = ccci_xstrdup(o->user_agent != NULL ? o->user_agent
                                                     : "ccci/" CCCI_VERSION);
  h->opts.user_agent = h->user_agent;
  h->multi = multi_init_cloexec();
  if (h->multi == NULL) {
    r = -ENOMEM;
    goto out;
  }
#define MSET(opt, val)                                                         \
  do {                                                                         \
    if (mc == CURLM_OK)                                                        \
      mc = curl_multi_setopt(h->multi, opt, val);                              \
  } while (0)
  MSET(CURLMOPT_SOCKETFUNCTION, on_socket);
  MSET(CURLMOPT_SOCKETDATA, (void *)h);
  MSET(CURLMOPT_TIMERFUNCTION, on_curl_timer);
  MSET(CURLMOPT_TIMERDATA, (void *)h);
  /* Transfers beyond the limit wait in curl's queue for a connection. */
  MSET(CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->max_connections);
  MSET(CURLMOPT_MAXCONNECTS, (long)o->max_connections);
#undef MSET
  if (mc != CURLM_OK) {
    r = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    goto out;
  }
  r = uv_timer_init(loop, &h->timer);
  if (r < 0)
    goto out;
  h->handles = 1;
  *out = h;
  r = 0;
out:
  if (r < 0) {
    if (h->multi != NULL)
      curl_multi_cleanup(h->multi);
    free(h->user_agent);
    free(h);
  }
  return r;
}

void ccci_httpc_close(struct ccci_httpc *h, void (*done)(void *arg), void *arg)
{
  struct ccci_list *it, *nx;

  if (h == NULL || h->closing)
    return;
  h->closing = true;
  h->done = done;
  h->done_arg = arg;
  while (!ccci_list_empty(&h->xfers))
    xfer_drop(ccci_container_of(ccci_list_first(&h->xfers),
                                struct ccci_httpc_xfer, node));
  /* Stop every poll before curl closes the sockets behind them (through
   * close_socket(), which then finds no live one). */
  ccci_list_foreach_safe(it, nx, &h->socks)
  {
    sock_close(ccci_container_of(it, struct sock, node));
  }
  while (h->nspare > 0)
    curl_easy_cleanup(h->spare[--h->nspare]);
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  uv_close((uv_handle_t *)&h->timer, on_timer_close);
}

void ccci_httpc_stats(const struct ccci_httpc *h, struct ccci_httpc_stats *s)
{
  *s = h->stats;
}
