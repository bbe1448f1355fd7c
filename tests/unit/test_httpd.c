/* Unit tests of the HTTP engine (httpd.c) over real loopback sockets: the
 * server runs on a uv loop in the test's thread, a client thread speaks
 * raw HTTP with blocking sockets and keeps what it read; the test checks
 * it once both are done. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccci/http/httpd.h"

#define OUT_MAX (256 * 1024)

struct srv;

/* What the client thread read (one buffer per conversation). */
struct client {
  struct srv *s;
  void (*fn)(struct client *cl);
  char out[4][OUT_MAX];
  size_t out_len[4];
};

struct later {
  uv_timer_t t;
  struct ccci_http_req *req;
  char body[64];
};

struct srv {
  uv_loop_t loop;
  struct ccci_httpd *h;
  struct ccci_httpd_limits lim;
  uv_async_t done;
  uv_thread_t thread;
  struct client cl;
  int port;
  /* the stream test */
  struct ccci_http_req *stream;
  uv_timer_t stream_t;
  bool stream_t_open;
  volatile bool stream_full;
  volatile bool stream_gone;
  volatile bool stream_drained;
  int stream_writes;
  unsigned handled;
  struct ccci_httpd_counters k; /* the server's, as it stopped */
};

/* ---- the handler ---- */

static void later_closed(uv_handle_t *hd)
{
  free(hd->data);
}

static void later_fire(uv_timer_t *t)
{
  struct later *l = t->data;
  ccci_http_respond(l->req, 200, "text/plain", NULL, l->body, strlen(l->body));
  uv_close((uv_handle_t *)t, later_closed);
}

static void stream_gone(void *arg)
{
  struct srv *s = arg;
  s->stream_gone = true;
  if (s->stream_t_open)
    uv_timer_stop(&s->stream_t);
  ccci_http_stream_end(s->stream);
  s->stream = NULL;
}

static void stream_fill(struct srv *s)
{
  static char chunk[16384];
  memset(chunk, 'x', sizeof(chunk));
  while (s->stream != NULL && !ccci_http_stream_full(s->stream)) {
    assert_int_equal(ccci_http_stream_write(s->stream, chunk, sizeof(chunk)),
                     0);
    s->stream_writes++;
  }
  if (s->stream != NULL)
    s->stream_full = true;
}

static void stream_drained(void *arg)
{
  struct srv *s = arg;
  s->stream_drained = true;
}

static void stream_tick(uv_timer_t *t)
{
  struct srv *s = t->data;
  static const char line[] = "data: tick\n\n";
  if (s->stream != NULL)
    (void)ccci_http_stream_write(s->stream, line, sizeof(line) - 1);
}

static size_t body_limit(void *arg, const struct ccci_http_req *r)
{
  (void)arg;
  return strcmp(ccci_http_path(r), "/echo") == 0 ? 100 : 0;
}

static void handle(void *arg, struct ccci_http_req *r)
{
  struct srv *s = arg;
  const char *path = ccci_http_path(r);
  char buf[512];
  s->handled++;
  if (strncmp(path, "/later/", 7) == 0) {
    struct later *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->req = r;
    snprintf(l->body, sizeof(l->body), "late %s\n", path + 7);
    uv_timer_init(&s->loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, later_fire, 50, 0);
    return;
  }
  if (strncmp(path, "/now/", 5) == 0) {
    snprintf(buf, sizeof(buf), "now %s\n", path + 5);
    ccci_http_respond(r, 200, "text/plain", NULL, buf, strlen(buf));
    return;
  }
  if (strcmp(path, "/echo") == 0) {
    size_t n;
    const char *b = ccci_http_body(r, &n);
    ccci_http_respond(r, 200, "application/octet-stream", NULL, b, n);
    return;
  }
  if (strcmp(path, "/info") == 0) {
    const char *ua = ccci_http_header(r, "user-agent");
    const char *q = ccci_http_query_param(r, "q");
    snprintf(buf, sizeof(buf), "%s|%s|%s|%s\n", ccci_http_method_name(r),
             ua != NULL ? ua : "-", q != NULL ? q : "-", ccci_http_query(r));
    ccci_http_respond_ref(r, 200, "text/plain", "X-A: b\r\n", ccci_xstrdup(buf),
                          strlen(buf), free, NULL);
    return;
  }
  if (strcmp(path, "/stream") == 0) {
    s->stream = r;
    ccci_http_watch(r, stream_gone, stream_drained, s);
    ccci_http_stream_begin(r, 200, "text/event-stream", NULL);
    if (s->stream_t_open)
      uv_timer_start(&s->stream_t, stream_tick, 10, 10);
    else
      stream_fill(s);
    return;
  }
  ccci_http_respond(r, 404, "text/plain", NULL, "no\n", 3);
}

/* ---- the client side (its own thread; blocking sockets) ---- */

static int cl_connect(struct srv *s)
{
  struct sockaddr_in a;
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)s->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void cl_send(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0)
      return;
    p += k;
    n -= (size_t)k;
  }
}

static void cl_sends(int fd, const char *p)
{
  cl_send(fd, p, strlen(p));
}

/* Read into out[i] until EOF (or the 5 s receive timeout). */
static void cl_read_all(struct client *cl, int i, int fd)
{
  for (;;) {
    ssize_t k;
    if (cl->out_len[i] >= OUT_MAX - 1)
      break;
    k = recv(fd, cl->out[i] + cl->out_len[i], OUT_MAX - 1 - cl->out_len[i], 0);
    if (k <= 0)
      break;
    cl->out_len[i] += (size_t)k;
  }
  cl->out[i][cl->out_len[i]] = '\0';
}

/* Read into out[i] until @p n whole responses are in (Content-Length
 * framed), or EOF. */
static void cl_read_n(struct client *cl, int i, int fd, int n)
{
  for (;;) {
    const char *p = cl->out[i];
    int got = 0;
    ssize_t k;
    cl->out[i][cl->out_len[i]] = '\0';
    for (;;) {
      const char *e = strstr(p, "\r\n\r\n");
      const char *cl_h;
      unsigned long len = 0;
      if (e == NULL)
        break;
      cl_h = strstr(p, "Content-Length: ");
      if (cl_h != NULL && cl_h < e)
        len = strtoul(cl_h + 16, NULL, 10);
      if (strncmp(p, "HEAD", 4) == 0)
        len = 0;
      if ((size_t)(e + 4 + len - cl->out[i]) > cl->out_len[i])
        break;
      got++;
      p = e + 4 + len;
    }
    if (got >= n)
      return;
    k = recv(fd, cl->out[i] + cl->out_len[i], OUT_MAX - 1 - cl->out_len[i], 0);
    if (k <= 0)
      return;
    cl->out_len[i] += (size_t)k;
  }
}

static void client_main(void *arg)
{
  struct client *cl = arg;
  cl->fn(cl);
  uv_async_send(&cl->s->done);
}

/* ---- the harness ---- */

static void server_freed(void *arg)
{
  (void)arg;
}

static void on_done(uv_async_t *a)
{
  struct srv *s = a->data;
  uv_close((uv_handle_t *)a, NULL);
  if (s->stream_t_open)
    uv_close((uv_handle_t *)&s->stream_t, NULL);
  if (s->stream != NULL) {
    ccci_http_stream_end(s->stream);
    s->stream = NULL;
  }
  ccci_httpd_counters(s->h, &s->k);
  ccci_httpd_free(s->h, server_freed, s);
}

static struct ccci_httpd_limits small_limits(void)
{
  struct ccci_httpd_limits l = ccci_httpd_limits_default();
  l.max_head = 1024;
  l.head_timeout_ms = 200;
  l.body_timeout_ms = 200;
  l.idle_timeout_ms = 300;
  l.write_timeout_ms = 300;
  l.high_water = 32 * 1024;
  l.max_conns = 4;
  return l;
}

static struct srv *srv_start(const struct ccci_httpd_limits *lim)
{
  struct srv *s = calloc(1, sizeof(*s));
  struct ccci_httpd_env env;
  char *err = NULL;
  const char *addr;
  assert_non_null(s);
  assert_int_equal(uv_loop_init(&s->loop), 0);
  env.loop = &s->loop;
  env.limits = lim != NULL ? *lim : small_limits();
  env.body_limit = body_limit;
  env.handle = handle;
  env.arg = s;
  assert_int_equal(ccci_httpd_new(&env, "127.0.0.1:0", &s->h, &err), 0);
  addr = ccci_httpd_address(s->h);
  assert_true(strncmp(addr, "127.0.0.1:", 10) == 0);
  s->port = (int)strtol(addr + 10, NULL, 10);
  assert_true(s->port > 0);
  uv_async_init(&s->loop, &s->done, on_done);
  s->done.data = s;
  s->cl.s = s;
  return s;
}

/* Run the client @p fn in its thread and the loop until the server is
 * freed; the loop must close with no handle left. */
static void srv_run(struct srv *s, void (*fn)(struct client *cl))
{
  s->cl.fn = fn;
  assert_int_equal(uv_thread_create(&s->thread, client_main, &s->cl), 0);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_thread_join(&s->thread), 0);
  assert_int_equal(uv_loop_close(&s->loop), 0);
}

static int count_of(const char *hay, const char *needle)
{
  int n = 0;
  const char *p = hay;
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

/* ---- GET, HEAD, keep-alive ---- */

static void c_get_head(struct client *cl)
{
  int fd = cl_connect(cl->s);
  cl_sends(fd, "GET /info?q=a%20b+c&z=1 HTTP/1.1\r\nHost: x\r\n"
               "User-Agent:   tester/1  \r\n\r\n");
  cl_read_n(cl, 0, fd, 1);
  cl_sends(fd, "HEAD /info HTTP/1.1\r\nHost: x\r\n\r\n");
  /* The HEAD's head only: read until its blank line. */
  while (strstr(cl->out[1], "\r\n\r\n") == NULL) {
    ssize_t k = recv(fd, cl->out[1] + cl->out_len[1], 100, 0);
    if (k <= 0)
      break;
    cl->out_len[1] += (size_t)k;
    cl->out[1][cl->out_len[1]] = '\0';
  }
  cl_sends(fd, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  cl_read_all(cl, 2, fd);
  close(fd);
}

static void test_get_head_keepalive(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_get_head);
  assert_non_null(strstr(s->cl.out[0], "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(s->cl.out[0], "Content-Type: text/plain\r\n"));
  assert_non_null(strstr(s->cl.out[0], "X-A: b\r\n"));
  assert_non_null(strstr(s->cl.out[0], "Connection: keep-alive\r\n"));
  assert_non_null(strstr(s->cl.out[0], "X-Content-Type-Options: nosniff"));
  assert_non_null(strstr(s->cl.out[0], "Date: "));
  assert_non_null(
      strstr(s->cl.out[0], "\r\n\r\nGET|tester/1|a b c|q=a%20b+c&z=1\n"));
  /* HEAD: the length of what a GET would get, no body (the next response
   * follows at once). */
  assert_non_null(strstr(s->cl.out[1], "Content-Length: 10\r\n"));
  assert_true(strncmp(strstr(s->cl.out[1], "\r\n\r\n"), "\r\n\r\n", 5) == 0);
  assert_true(strncmp(s->cl.out[2], "HTTP/1.1 404 Not Found\r\n", 24) == 0);
  assert_non_null(strstr(s->cl.out[2], "Connection: close\r\n"));
  assert_int_equal(s->k.requests, 3);
  assert_int_equal(s->k.by_code[CCCI_HTTPD_C200], 2);
  assert_int_equal(s->k.by_code[CCCI_HTTPD_C404], 1);
  assert_int_equal(s->k.connections_total, 1);
  assert_true(s->k.bytes_out > 0);
  free(s);
}

/* ---- pipelining ---- */

static void c_pipeline(struct client *cl)
{
  int fd = cl_connect(cl->s);
  cl_sends(fd,
           "GET /later/1 HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /now/2 HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /later/3 HTTP/1.1\r\nHost: x\r\n\r\n"
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
           "hello"
           "POST /echo HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
           "GET /now/6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  cl_read_all(cl, 0, fd);
  close(fd);
}

static void test_pipelined_in_order(void **state)
{
  struct srv *s = srv_start(NULL);
  const char *o, *a, *b, *c, *d, *e, *f;
  (void)state;
  srv_run(s, c_pipeline);
  o = s->cl.out[0];
  assert_int_equal(count_of(o, "HTTP/1.1 200 OK"), 6);
  a = strstr(o, "late 1\n");
  b = strstr(o, "now 2\n");
  c = strstr(o, "late 3\n");
  d = strstr(o, "\r\n\r\nhello");
  e = strstr(o, "\r\n\r\nabcde");
  f = strstr(o, "now 6\n");
  assert_true(a != NULL && b > a && c > b && d > c && e > d && f > e);
  assert_int_equal(s->handled, 6);
  free(s);
}

/* ---- malformed requests ---- */

struct bad {
  const char *req;
  const char *status;
};

static const struct bad bads[] = {
    {"GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
    {"GET /x HTTP/1.1 extra\r\n\r\n", "HTTP/1.1 400 "},
    {"GET http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "},
    {"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "},
    {"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 "},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "HTTP/1.1 400 "},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     "Content-Length: 3\r\n\r\n0\r\n\r\n",
     "HTTP/1.1 400 "},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     "Content-Length: 4\r\n\r\nabcd",
     "HTTP/1.1 400 "},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", "HTTP/1.1 400 "},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
     "HTTP/1.1 413 "},
    {"POST /now/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
     "HTTP/1.1 413 "},
};

static int bad_i;

static void c_bad(struct client *cl)
{
  int fd = cl_connect(cl->s);
  cl_sends(fd, bads[bad_i].req);
  cl_read_all(cl, 0, fd);
  close(fd);
}

static void test_malformed(void **state)
{
  (void)state;
  for (bad_i = 0; bad_i < (int)(sizeof(bads) / sizeof(bads[0])); bad_i++) {
    struct srv *s = srv_start(NULL);
    srv_run(s, c_bad);
    if (strncmp(s->cl.out[0], bads[bad_i].status, strlen(bads[bad_i].status)) !=
        0)
      fail_msg("request %d: got '%.40s', want '%s'", bad_i, s->cl.out[0],
               bads[bad_i].status);
    assert_non_null(strstr(s->cl.out[0], "Connection: close\r\n"));
    assert_int_equal(s->handled, 0);
    free(s);
  }
}

static void c_big_chunked(struct client *cl)
{
  int fd = cl_connect(cl->s);
  char chunk[64];
  int i;
  cl_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
  memset(chunk, 'y', sizeof(chunk));
  for (i = 0; i < 3; i++) {
    cl_sends(fd, "40\r\n");
    cl_send(fd, chunk, sizeof(chunk));
    cl_sends(fd, "\r\n");
  }
  cl_sends(fd, "0\r\n\r\n");
  cl_read_all(cl, 0, fd);
  close(fd);
}

static void test_chunked_past_limit(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_big_chunked);
  assert_true(strncmp(s->cl.out[0], "HTTP/1.1 413 ", 13) == 0);
  assert_int_equal(s->handled, 0);
  free(s);
}

static void c_huge_header(struct client *cl)
{
  int fd = cl_connect(cl->s);
  char big[3000];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  cl_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
  cl_sends(fd, big);
  cl_sends(fd, "\r\n\r\n");
  cl_read_all(cl, 0, fd);
  close(fd);
  /* Many small headers past the cap too. */
  fd = cl_connect(cl->s);
  cl_sends(fd, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 200; i++)
    cl_sends(fd, "A: b\r\n");
  cl_sends(fd, "\r\n");
  cl_read_all(cl, 1, fd);
  close(fd);
}

static void test_huge_header(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_huge_header);
  assert_true(strncmp(s->cl.out[0], "HTTP/1.1 431 ", 13) == 0);
  assert_true(strncmp(s->cl.out[1], "HTTP/1.1 431 ", 13) == 0);
  assert_int_equal(s->handled, 0);
  free(s);
}

/* ---- deadlines ---- */

static void c_slowloris(struct client *cl)
{
  int fd = cl_connect(cl->s);
  const char *req = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaa";
  size_t i;
  /* A byte every 30 ms: the head deadline (200 ms) counts from the first. */
  for (i = 0; req[i] != '\0'; i++) {
    if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
      break;
    usleep(30000);
  }
  cl_read_all(cl, 0, fd);
  close(fd);
}

static void test_slowloris_408(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_slowloris);
  assert_true(strncmp(s->cl.out[0], "HTTP/1.1 408 ", 13) == 0);
  assert_int_equal(s->k.timeouts, 1);
  assert_int_equal(s->k.by_code[CCCI_HTTPD_C408], 1);
  free(s);
}

static void c_idle(struct client *cl)
{
  int fd = cl_connect(cl->s);
  cl_sends(fd, "GET /now/1 HTTP/1.1\r\nHost: x\r\n\r\n");
  /* The response, then the idle deadline closes: EOF, no other bytes. */
  cl_read_all(cl, 0, fd);
  close(fd);
}

static void test_idle_timeout(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_idle);
  assert_int_equal(count_of(s->cl.out[0], "HTTP/1.1"), 1);
  assert_non_null(strstr(s->cl.out[0], "\r\n\r\nnow 1\n"));
  assert_int_equal((int)(strstr(s->cl.out[0], "now 1\n") + 6 - s->cl.out[0]),
                   (int)s->cl.out_len[0]);
  free(s);
}

/* ---- the connection cap ---- */

static void c_cap(struct client *cl)
{
  int fds[4], i, extra;
  for (i = 0; i < 4; i++) {
    fds[i] = cl_connect(cl->s);
    cl_sends(fds[i], "GET /now/a HTTP/1.1\r\nHost: x\r\n\r\n");
    cl_read_n(cl, 0, fds[i], i + 1);
  }
  extra = cl_connect(cl->s);
  cl_sends(extra, "GET /now/b HTTP/1.1\r\nHost: x\r\n\r\n");
  cl_read_all(cl, 1, extra);
  close(extra);
  for (i = 0; i < 4; i++)
    close(fds[i]);
}

static void test_connection_cap(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_cap);
  assert_int_equal(count_of(s->cl.out[0], "HTTP/1.1 200 OK"), 4);
  assert_true(strncmp(s->cl.out[1], "HTTP/1.1 503 ", 13) == 0);
  assert_int_equal(s->k.refused_busy, 1);
  free(s);
}

/* ---- streams ---- */

static void c_stream_stall(struct client *cl)
{
  int fd = cl_connect(cl->s);
  int small = 4096, i;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  cl_sends(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  /* Never read: the stream fills, stalls and is closed. */
  for (i = 0; i < 500 && !cl->s->stream_gone; i++)
    usleep(10000);
  close(fd);
}

static void test_stream_stall(void **state)
{
  struct srv *s = srv_start(NULL);
  (void)state;
  srv_run(s, c_stream_stall);
  assert_true(s->stream_full);
  assert_true(s->stream_gone);
  assert_true(s->stream_writes > 2);
  free(s);
}

static void c_stream_leave(struct client *cl)
{
  int fd = cl_connect(cl->s);
  int i;
  cl_sends(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  while (count_of(cl->out[0], "data: tick") < 3) {
    ssize_t k = recv(fd, cl->out[0] + cl->out_len[0], 1000, 0);
    if (k <= 0)
      break;
    cl->out_len[0] += (size_t)k;
    cl->out[0][cl->out_len[0]] = '\0';
  }
  close(fd);
  for (i = 0; i < 500 && !cl->s->stream_gone; i++)
    usleep(10000);
}

static void test_stream_client_leaves(void **state)
{
  struct srv *s;
  struct ccci_httpd_limits lim = small_limits();
  (void)state;
  lim.write_timeout_ms = 60000;
  s = srv_start(&lim);
  uv_timer_init(&s->loop, &s->stream_t);
  s->stream_t.data = s;
  s->stream_t_open = true;
  srv_run(s, c_stream_leave);
  assert_true(strncmp(s->cl.out[0], "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(s->cl.out[0], "Connection: close\r\n"));
  assert_null(strstr(s->cl.out[0], "Content-Length"));
  assert_true(s->stream_gone);
  free(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_head_keepalive),
      cmocka_unit_test(test_pipelined_in_order),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_chunked_past_limit),
      cmocka_unit_test(test_huge_header),
      cmocka_unit_test(test_slowloris_408),
      cmocka_unit_test(test_idle_timeout),
      cmocka_unit_test(test_connection_cap),
      cmocka_unit_test(test_stream_stall),
      cmocka_unit_test(test_stream_client_leaves),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
