/* Unit tests of http.c: libcurl on the loop against a scripted HTTP/1.1
 * server on the same loop (real sockets on 127.0.0.1). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "ccci/forge/httpc.h"
#include "loopwait.h"

#define CAP 65536
#define MAX_REQS 128
#define TOKEN "token 0123456789abcdef-sekrit"

/* ---- the scripted server ---- */

struct seen {
  char method[16];
  char path[256];
  char *head; /* request line and headers */
  char *body;
  size_t body_len;
};

struct server;

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* delayed answers */
  struct server *s;
  struct conn *prev, *next;
  char *in;
  size_t in_len;
  char *delayed;
  size_t delayed_len;
  unsigned handles;
  bool endless;     /* keep writing chunks */
  bool close_after; /* close once the answer is written */
  bool closing;
};

struct server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int port;
  struct conn *conns;
  unsigned accepts, open, max_open;
  struct seen reqs[MAX_REQS];
  unsigned nreqs;
  uint64_t endless_bytes;
};

struct wreq {
  uv_write_t req;
  struct conn *c;
  char *data;
};

static void conn_on_close(uv_handle_t *hd)
{
  struct conn *c = hd->data;

  if (--c->handles > 0)
    return;
  free(c->in);
  free(c->delayed);
  free(c);
}

static void conn_close(struct conn *c, bool reset)
{
  struct server *s = c->s;

  if (c->closing)
    return;
  c->closing = true;
  c->endless = false;
  s->open--;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->timer, conn_on_close);
  if (reset)
    assert_int_equal(uv_tcp_close_reset(&c->tcp, conn_on_close), 0);
  else
    uv_close((uv_handle_t *)&c->tcp, conn_on_close);
}

static void write_chunk(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
  struct wreq *w = ccci_container_of(req, struct wreq, req);
  struct conn *c = w->c;

  free(w->data);
  free(w);
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c, false);
    return;
  }
  if (c->endless)
    write_chunk(c);
  else if (c->close_after)
    conn_close(c, false);
}

static void conn_write(struct conn *c, char *data, size_t len)
{
  struct wreq *w = ccci_xmalloc(sizeof(*w));
  uv_buf_t b = uv_buf_init(data, (unsigned)len);

  w->c = c;
  w->data = data;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
    free(data);
    free(w);
    conn_close(c, false);
  }
}

static void write_chunk(struct conn *c)
{
  size_t n = 16384;
  char *d = ccci_xmalloc(n + 16);
  int h = snprintf(d, 16, "%zx\r\n", n);

  memset(d + h, 'e', n);
  memcpy(d + h + n, "\r\n", 2);
  c->s->endless_bytes += n;
  conn_write(c, d, (size_t)h + n + 2);
}

static char *answer(int status, const char *extra, const char *body,
                    size_t body_len, size_t *len)
{
  struct ccci_buf b;
  char *out;

  ccci_buf_init(&b, SIZE_MAX);
  assert_int_equal(ccci_buf_printf(&b, "HTTP/1.1 %d Whatever\r\n", status), 0);
  if (status != 204)
    assert_int_equal(ccci_buf_printf(&b, "Content-Length: %zu\r\n", body_len),
                     0);
  assert_int_equal(ccci_buf_printf(&b, "%s\r\n", extra ? extra : ""), 0);
  if (body_len > 0)
    assert_int_equal(ccci_buf_append(&b, body, body_len), 0);
  *len = b.len;
  out = ccci_buf_detach(&b);
  return out;
}

static void respond(struct conn *c, int status, const char *extra,
                    const char *body, size_t body_len)
{
  size_t len;
  char *d = answer(status, extra, body, body_len, &len);
  conn_write(c, d, len);
}

static void on_delay(uv_timer_t *t)
{
  struct conn *c = t->data;
  char *d = c->delayed;

  c->delayed = NULL;
  conn_write(c, d, c->delayed_len);
}

static void handle(struct conn *c, struct seen *r)
{
  const char *p = r->path;

  if (strcmp(p, "/echo") == 0) {
    struct ccci_buf b;
    ccci_buf_init(&b, SIZE_MAX);
    assert_int_equal(ccci_buf_printf(&b, "%s ", r->method), 0);
    assert_int_equal(ccci_buf_append(&b, r->body, r->body_len), 0);
    respond(c, 200, "Content-Type: text/plain\r\n", b.data, b.len);
    ccci_buf_close(&b);
  } else if (strncmp(p, "/status/", 8) == 0) {
    int st = (int)strtol(p + 8, NULL, 10);
    const char *extra = st == 303 ? "Location: /echo\r\n" : "";
    respond(c, st, extra, st == 204 ? "" : "status", st == 204 ? 0 : 6);
  } else if (strcmp(p, "/date") == 0) {
    respond(c, 429,
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nRetry-After: 120\r\n"
            "Link: <http://x/?page=2>; rel=\"next\"\r\n"
            "link: <http://x/?page=9>; rel=\"last\"\r\n"
            "X-Total-Count: 42\r\n",
            "", 0);
  } else if (strcmp(p, "/retry-date") == 0) {
    respond(c, 503,
            "Retry-After: Sun, 06 Nov 1994 08:51:07 GMT\r\n"
            "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
            "", 0);
  } else if (strcmp(p, "/retry-past") == 0) {
    respond(c, 503,
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Retry-After: Sun, 06 Nov 1994 08:00:00 GMT\r\n"
            "X-Total-Count: many\r\n",
            "", 0);
  } else if (strcmp(p, "/slow") == 0) {
    c->delayed = answer(200, NULL, "slow", 4, &c->delayed_len);
    uv_timer_start(&c->timer, on_delay, 100, 0);
  } else if (strcmp(p, "/reset") == 0) {
    conn_close(c, true);
  } else if (strncmp(p, "/big/", 5) == 0) {
    size_t n = strtoul(p + 5, NULL, 10);
    char *body = ccci_xmalloc(n);
    memset(body, 'b', n);
    respond(c, 200, NULL, body, n);
    free(body);
  } else if (strcmp(p, "/endless") == 0) {
    static const char h[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    conn_write(c, ccci_xstrdup(h), sizeof(h) - 1);
    c->endless = true;
    write_chunk(c);
  } else if (strcmp(p, "/close") == 0) {
    c->close_after = true;
    respond(c, 200, "Connection: close\r\n", "bye", 3);
  } else if (strcmp(p, "/then-close") == 0) {
    /* Keep-alive as far as the client knows; closed once written. */
    c->close_after = true;
    respond(c, 200, NULL, "idle", 4);
  } else if (strcmp(p, "/hang") == 0) {
    /* never answer */
  } else {
    respond(c, 404, NULL, "", 0);
  }
}

/* Parse every complete request in the input buffer. */
static void serve(struct conn *c)
{
  struct server *s = c->s;

  while (!c->closing && c->in_len > 0) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    size_t head_len, clen = 0;
    const char *cl;
    struct seen *r;

    if (end == NULL)
      return;
    head_len = (size_t)(end - c->in) + 4;
    end[2] = '\0'; /* the head as a string, for strcasestr */
    cl = strcasestr(c->in, "\r\ncontent-length:");
    if (cl != NULL)
      clen = strtoul(cl + 17, NULL, 10);
    end[2] = '\r';
    if (c->in_len < head_len + clen)
      return;
    assert_true(s->nreqs < MAX_REQS);
    r = &s->reqs[s->nreqs++];
    r->head = ccci_xstrndup(c->in, head_len);
    r->body = ccci_xstrndup(c->in + head_len, clen);
    r->body_len = clen;
    assert_int_equal(sscanf(r->head, "%15s %255s", r->method, r->path), 2);
    memmove(c->in, c->in + head_len + clen, c->in_len - head_len - clen);
    c->in_len -= head_len + clen;
    handle(c, r);
  }
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
  (void)hd;
  buf->base = ccci_xmalloc(suggested);
  buf->len = suggested;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
  struct conn *c = st->data;

  if (n < 0) {
    free(buf->base);
    conn_close(c, false);
    return;
  }
  c->in = ccci_xrealloc(c->in, c->in_len + (size_t)n + 1);
  memcpy(c->in + c->in_len, buf->base, (size_t)n);
  c->in_len += (size_t)n;
  free(buf->base);
  serve(c);
}

static void on_connection(uv_stream_t *l, int status)
{
  struct server *s = ccci_container_of(l, struct server, listener);
  struct conn *c;

  assert_int_equal(status, 0);
  c = ccci_xcalloc(1, sizeof(*c));
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
  c->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = c;
  s->conns = c;
  s->accepts++;
  s->open++;
  if (s->open > s->max_open)
    s->max_open = s->open;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void server_start(struct server *s, uv_loop_t *loop)
{
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof(got);

  memset(s, 0, sizeof(*s));
  s->loop = loop;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
  assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64, on_connection),
                   0);
  assert_int_equal(
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len), 0);
  s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void server_stop(struct server *s)
{
  unsigned i;

  while (s->conns != NULL)
    conn_close(s->conns, false);
  uv_close((uv_handle_t *)&s->listener, NULL);
  for (i = 0; i < s->nreqs; i++) {
    free(s->reqs[i].head);
    free(s->reqs[i].body);
  }
}

/* ---- the fixture ---- */

struct fx;

struct got {
  struct fx *f;
  unsigned calls;
  long status;
  int error;
  char *error_text;
  char *body;
  size_t body_len;
  int64_t date, retry_after;
  char *link;
  long long total_count;
};

struct fx {
  uv_loop_t loop;
  uv_timer_t watchdog;
  bool fired;
  struct server srv;
  struct ccci_httpc *h;
  struct ccci_httpc_opts opts;
  unsigned ncb;
  unsigned closed; /* close's done callback ran */
  struct got got[64];
  unsigned chain_left;
  struct ccci_httpc_xfer *to_cancel;
};

/* Set while ccci_httpc_send() runs: a callback must never see it. */
static bool in_send;

static void on_watchdog(uv_timer_t *t)
{
  struct fx *f = ccci_container_of(t, struct fx, watchdog);
  f->fired = true;
}

/* Run the loop until *counter reaches want; fail after 3 s. */
static void run_until(struct fx *f, const unsigned *counter, unsigned want)
{
  LOOP_UNTIL(&f->loop, *counter >= want, 3);
  assert_true(*counter >= want);
}

/* Run the loop until the server has no connection open; fail after 3 s. */
static void run_until_server_idle(struct fx *f)
{
  LOOP_UNTIL(&f->loop, f->srv.open == 0, 3);
  assert_int_equal(f->srv.open, 0);
}

static void on_closed(void *arg)
{
  struct fx *f = arg;
  f->closed++;
}

static void client_new(struct fx *f)
{
  assert_int_equal(ccci_httpc_new(&f->loop, &f->opts, &f->h), 0);
}

static void client_close(struct fx *f)
{
  unsigned want = f->closed + 1;
  ccci_httpc_close(f->h, on_closed, f);
  f->h = NULL;
  run_until(f, &f->closed, want);
}

static int setup(void **state)
{
  struct fx *f = ccci_xcalloc(1, sizeof(*f));

  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->watchdog);
  server_start(&f->srv, &f->loop);
  f->opts.max_connections = 4;
  f->opts.connect_timeout_ms = 2000;
  f->opts.total_timeout_ms = 5000;
  f->opts.max_response_bytes = CAP;
  client_new(f);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  size_t i;

  if (f->h != NULL) {
    ccci_httpc_stats(f->h, &st);
    assert_int_equal(st.in_flight, 0);
    client_close(f);
  }
  server_stop(&f->srv);
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (i = 0; i < CCCI_ARRAY_LEN(f->got); i++) {
    free(f->got[i].body);
    free(f->got[i].error_text);
    free(f->got[i].link);
  }
  free(f);
  return 0;
}

static void on_response(void *arg, const struct ccci_httpc_response *r)
{
  struct got *g = arg;

  assert_false(in_send);
  assert_non_null(r->body);
  assert_non_null(r->error_text);
  assert_int_equal(r->body[r->body_len], '\0');
  g->calls++;
  g->status = r->status;
  g->error = r->error;
  free(g->error_text);
  free(g->body);
  free(g->link);
  g->error_text = ccci_xstrdup(r->error_text);
  g->body = ccci_xstrndup(r->body, r->body_len);
  g->body_len = r->body_len;
  g->date = r->date;
  g->retry_after = r->retry_after_s;
  g->link = ccci_xstrdup(r->link);
  g->total_count = r->total_count;
  g->f->ncb++;
}

static char *url_of(struct fx *f, const char *path)
{
  return ccci_xasprintf("http://127.0.0.1:%d%s", f->srv.port, path);
}

static int send_full(struct fx *f, const char *method, const char *url,
                     const char *const *headers, const char *body,
                     struct got *g, struct ccci_httpc_xfer **xfer)
{
  struct ccci_httpc_request r = {
      .method = method,
      .url = url,
      .headers = headers,
      .body = body,
      .body_len = body ? strlen(body) : 0,
  };
  int ret;

  g->f = f;
  in_send = true;
  ret = ccci_httpc_send(f->h, &r, on_response, g, xfer);
  in_send = false;
  return ret;
}

/* Send @p method @p path to the test server; the answer lands in @p g. */
static void send_req(struct fx *f, const char *method, const char *path,
                     const char *const *headers, const char *body,
                     struct got *g, struct ccci_httpc_xfer **xfer)
{
  char *url = url_of(f, path);
  assert_int_equal(send_full(f, method, url, headers, body, g, xfer), 0);
  free(url);
}

/* ---- tests ---- */

static void test_get_and_post(void **state)
{
  struct fx *f = *state;
  const char *const hdrs[] = {"Authorization: " TOKEN,
                              "Accept: application/json", NULL};
  const char *const post_hdrs[] = {"Authorization: " TOKEN,
                                   "Content-Type: application/json", NULL};
  struct seen *r;

  send_req(f, "GET", "/echo", hdrs, NULL, &f->got[0], NULL);
  run_until(f, &f->ncb, 1);
  send_req(f, "POST", "/echo", post_hdrs, "{\"a\":1}", &f->got[1], NULL);
  run_until(f, &f->ncb, 2);
  send_req(f, "PATCH", "/echo", NULL, "x=1", &f->got[2], NULL);
  send_req(f, "DELETE", "/echo", NULL, NULL, &f->got[3], NULL);
  send_req(f, "POST", "/echo", NULL, NULL, &f->got[4], NULL);
  run_until(f, &f->ncb, 5);

  assert_int_equal(f->got[0].status, 200);
  assert_int_equal(f->got[0].error, 0);
  assert_string_equal(f->got[0].error_text, "");
  assert_string_equal(f->got[0].body, "GET ");
  assert_string_equal(f->got[1].body, "POST {\"a\":1}");
  assert_string_equal(f->got[2].body, "PATCH x=1");
  assert_string_equal(f->got[3].body, "DELETE ");
  assert_string_equal(f->got[4].body, "POST ");

  assert_int_equal(f->srv.nreqs, 5);
  r = &f->srv.reqs[0];
  assert_string_equal(r->method, "GET");
  assert_string_equal(r->path, "/echo");
  assert_non_null(strstr(r->head, "\r\nAuthorization: " TOKEN "\r\n"));
  assert_non_null(strstr(r->head, "\r\nAccept: application/json\r\n"));
  assert_non_null(strstr(r->head, "\r\nUser-Agent: ccci/"));
  assert_null(strcasestr(r->head, "Content-Length"));
  r = &f->srv.reqs[1];
  assert_string_equal(r->method, "POST");
  assert_string_equal(r->body, "{\"a\":1}");
  assert_non_null(strstr(r->head, "\r\nContent-Type: application/json\r\n"));
  assert_non_null(strstr(r->head, "\r\nContent-Length: 7\r\n"));
  assert_null(strcasestr(r->head, "Expect:"));
  r = &f->srv.reqs[2];
  assert_string_equal(r->method, "PATCH");
  assert_string_equal(r->body, "x=1");
  /* No form type invented for a body without Content-Type. */
  assert_null(strcasestr(r->head, "Content-Type"));
  r = &f->srv.reqs[3];
  assert_string_equal(r->method, "DELETE");
  assert_null(strcasestr(r->head, "Content-Length"));
  r = &f->srv.reqs[4];
  assert_non_null(strstr(r->head, "\r\nContent-Length: 0\r\n"));
}

static void test_user_agent_option(void **state)
{
  struct fx *f = *state;

  client_close(f);
  f->opts.user_agent = "ccci-test/9";
  client_new(f);
  send_req(f, "GET", "/echo", NULL, NULL, &f->got[0], NULL);
  run_until(f, &f->ncb, 1);
  assert_non_null(
      strstr(f->srv.reqs[0].head, "\r\nUser-Agent: ccci-test/9\r\n"));
}

static void test_statuses(void **state)
{
  struct fx *f = *state;
  static const int codes[] = {204, 303, 404, 500};
  size_t i;

  for (i = 0; i < CCCI_ARRAY_LEN(codes); i++) {
    char path[32];
    snprintf(path, sizeof(path), "/status/%d", codes[i]);
    send_req(f, "GET", path, NULL, NULL, &f->got[i], NULL);
  }
  run_until(f, &f->ncb, 4);
  for (i = 0; i < CCCI_ARRAY_LEN(codes); i++) {
    assert_int_equal(f->got[i].status, codes[i]);
    assert_int_equal(f->got[i].error, 0);
  }
  assert_int_equal(f->got[0].body_len, 0);
  assert_string_equal(f->got[1].body, "status");
  /* The 303's Location was not followed. */
  assert_int_equal(f->srv.nreqs, 4);
  for (i = 0; i < f->srv.nreqs; i++)
    assert_string_not_equal(f->srv.reqs[i].path, "/echo");
}

static void test_date_and_retry_after(void **state)
{
  struct fx *f = *state;

  send_req(f, "GET", "/date", NULL, NULL, &f->got[0], NULL);
  send_req(f, "GET", "/retry-date", NULL, NULL, &f->got[1], NULL);
  send_req(f, "GET", "/retry-past", NULL, NULL, &f->got[2], NULL);
  send_req(f, "GET", "/echo", NULL, NULL, &f->got[3], NULL);
  run_until(f, &f->ncb, 4);

  assert_int_equal(f->got[0].status, 429);
  assert_int_equal(f->got[0].date, 784111777);
  assert_int_equal(f->got[0].retry_after, 120);
  assert_int_equal(f->got[0].total_count, 42);
  assert_string_equal(f->got[0].link, "<http://x/?page=2>; rel=\"next\", "
                                      "<http://x/?page=9>; rel=\"last\"");
  /* An HTTP-date counts from the server's own Date. */
  assert_int_equal(f->got[1].status, 503);
  assert_int_equal(f->got[1].date, 784111777);
  assert_int_equal(f->got[1].retry_after, 90);
  assert_null(f->got[1].link);
  assert_int_equal(f->got[1].total_count, -1);
  assert_int_equal(f->got[2].retry_after, 0);
  assert_int_equal(f->got[2].total_count, -1);
  assert_int_equal(f->got[3].retry_after, -1);
  assert_int_equal(f->got[3].date, -1);
}

static void chain_next(void *arg, const struct ccci_httpc_response *r)
{
  struct got *g = arg;
  struct fx *f = g->f;

  on_response(arg, r);
  assert_int_equal(r->status, 200);
  if (f->chain_left > 0) {
    char *url = url_of(f, "/echo");
    f->chain_left--;
    (g + 1)->f = f;
    in_send = true;
    assert_int_equal(
        ccci_httpc_send(
            f->h, &(struct ccci_httpc_request){.method = "GET", .url = url},
            chain_next, g + 1, NULL),
        0);
    in_send = false;
    free(url);
  }
}

/* The direct parse of the usual date form agrees with curl_getdate(), the
 * parser for every other form, wherever either accepts the text. */
static void test_parse_date(void **state)
{
  static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed",
                                   "Thu", "Fri", "Sat"};
  static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static const int years[] = {1970, 1999, 2000, 2024, 2038, 2100, 2400, 9999};
  static const char *const odd[] = {"Sunday, 06-Nov-94 08:49:37 GMT",
                                    "Sun Nov  6 08:49:37 1994",
                                    "Sun, 06 Nov 1994 08:49:37 UTC",
                                    "Sun, 06 Nov 1994 24:00:00 GMT",
                                    "Sun, 6 Nov 1994 08:49:37 GMT",
                                    "Xyz, 06 Nov 1994 08:49:37 GMT",
                                    "Sun, 06 Nox 1994 08:49:37 GMT",
                                    "Sun, 00 Nov 1994 08:49:37 GMT",
                                    "Wed, 31 Dec 1969 23:59:59 GMT",
                                    "Sun, 06 Nov 1994 08:49:37 GMTx",
                                    "",
                                    "120"};
  char buf[64];
  size_t i, y, m, d;

  (void)state;
  assert_int_equal(ccci_httpc_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", 29),
                   784111777);
  for (y = 0; y < CCCI_ARRAY_LEN(years); y++)
    for (m = 0; m < 12; m++)
      for (d = 1; d <= 31; d++) {
        int n =
            snprintf(buf, sizeof(buf), "%s, %02zu %s %d %02zu:%02zu:%02zu GMT",
                     wd[(d + m) % 7], d, mon[m], years[y], (d * 7) % 24,
                     (d * 13) % 60, (m * 5) % 60);
        time_t want = curl_getdate(buf, NULL);
        assert_int_equal(ccci_httpc_parse_date(buf, (size_t)n),
                         want < 0 ? -1 : (int64_t)want);
      }
  for (i = 0; i < CCCI_ARRAY_LEN(odd); i++) {
    time_t want = curl_getdate(odd[i], NULL);
    assert_int_equal(ccci_httpc_parse_date(odd[i], strlen(odd[i])),
                     want < 0 ? -1 : (int64_t)want);
  }
}

static void test_keepalive(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  char *url = url_of(f, "/echo");

  f->chain_left = 19;
  f->got[0].f = f;
  in_send = true;
  assert_int_equal(
      ccci_httpc_send(f->h,
                      &(struct ccci_httpc_request){.method = "GET", .url = url},
                      chain_next, &f->got[0], NULL),
      0);
  in_send = false;
  free(url);
  run_until(f, &f->ncb, 20);
  assert_int_equal(f->srv.nreqs, 20);
  assert_int_equal(f->srv.accepts, 1);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.requests, 20);
  assert_int_equal(st.completed, 20);
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.connects, 1);
  assert_int_equal(st.in_flight, 0);
}

/* Many transfers, one after another, on a kept-alive connection: one
 * socket, watched from its first transfer to the end, its poll not touched
 * again (each change is epoll_ctl calls). */
static void test_keepalive_one_watch(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  uint64_t changes;
  unsigned i;

  send_req(f, "GET", "/echo", NULL, NULL, &f->got[0], NULL);
  run_until(f, &f->ncb, 1);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.sockets, 1);
  changes = st.watch_changes;
  assert_true(changes >= 1);
  for (i = 1; i <= 50; i++) {
    send_req(f, "GET", "/echo", NULL, NULL, &f->got[0], NULL);
    run_until(f, &f->ncb, i + 1);
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].body, "GET ");
    ccci_httpc_stats(f->h, &st);
    assert_int_equal(st.sockets, 1);
  }
  assert_int_equal(f->srv.accepts, 1);
  assert_int_equal(f->srv.nreqs, 51);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.connects, 1);
  assert_true(st.watch_changes == changes);
}

static void count_iteration(uv_check_t *c)
{
  (*(unsigned *)c->data)++;
}

/* The server closes a connection that curl keeps idle: the poll left armed
 * on it wakes once and stops (it must not spin on the end of file), and the
 * next request gets a new connection. */
static void test_idle_closed_by_server(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  uv_check_t check;
  unsigned iterations = 0;

  send_req(f, "GET", "/then-close", NULL, NULL, &f->got[0], NULL);
  run_until(f, &f->ncb, 1);
  assert_int_equal(f->got[0].status, 200);
  assert_string_equal(f->got[0].body, "idle");
  run_until_server_idle(f);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.sockets, 1); /* curl has not looked at it yet */
  uv_check_init(&f->loop, &check);
  check.data = &iterations;
  uv_check_start(&check, count_iteration);
  f->fired = false;
  uv_timer_start(&f->watchdog, on_watchdog, 200, 0);
  while (!f->fired)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&check, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* closed before anything can fail */
  assert_true(iterations < 10);

  send_req(f, "GET", "/echo", NULL, NULL, &f->got[1], NULL);
  run_until(f, &f->ncb, 2);
  assert_int_equal(f->got[1].error, 0);
  assert_int_equal(f->got[1].status, 200);
  assert_int_equal(f->srv.accepts, 2);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.connects, 2);
  assert_int_equal(st.sockets, 1);
}

static void test_max_connections(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  unsigned i;

  client_close(f);
  f->opts.max_connections = 2;
  client_new(f);
  for (i = 0; i < 10; i++)
    send_req(f, "GET", "/slow", NULL, NULL, &f->got[i], NULL);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.in_flight, 10);
  run_until(f, &f->ncb, 10);
  for (i = 0; i < 10; i++) {
    assert_int_equal(f->got[i].error, 0);
    assert_string_equal(f->got[i].body, "slow");
  }
  assert_int_equal(f->srv.max_open, 2);
  assert_int_equal(f->srv.accepts, 2);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.connects, 2);
}

static void test_connection_close_reuses_fds(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  unsigned i;

  /* Every answer closes its connection, so each request opens a socket,
   * most likely with the number of the one just closed. */
  for (i = 0; i < 30; i++) {
    send_req(f, "GET", "/close", NULL, NULL, &f->got[0], NULL);
    run_until(f, &f->ncb, i + 1);
    assert_int_equal(f->got[0].error, 0);
    assert_string_equal(f->got[0].body, "bye");
  }
  assert_int_equal(f->srv.accepts, 30);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.connects, 30);
  assert_int_equal(st.sockets, 0);
}

static void test_refused(void **state)
{
  struct fx *f = *state;
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char *probe[2] = {NULL, NULL};
  char *url;

  /* Bound but not listening: connects are refused, and nobody else can
   * take the port meanwhile. */
  assert_true(fd >= 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  url = ccci_xasprintf("http://127.0.0.1:%d/x", ntohs(a.sin_port));
  assert_int_equal(
      send_full(f, "GET", url,
                (const char *const[]){"Authorization: " TOKEN, NULL}, NULL,
                &f->got[0], NULL),
      0);
  run_until(f, &f->ncb, 1);
  assert_int_equal(f->got[0].error, -ECONNREFUSED);
  assert_int_equal(f->got[0].status, 0);
  assert_true(strlen(f->got[0].error_text) > 0);
  assert_null(strstr(f->got[0].error_text, "sekrit"));

  /* curl's message names the address; a header carrying that same text
   * makes the message fall back to the generic one. */
  probe[0] = ccci_xasprintf("X-Probe: 127.0.0.1 port %d", ntohs(a.sin_port));
  assert_int_equal(send_full(f, "GET", url, (const char *const *)probe, NULL,
                             &f->got[1], NULL),
                   0);
  run_until(f, &f->ncb, 2);
  assert_int_equal(f->got[1].error, -ECONNREFUSED);
  assert_string_equal(f->got[1].error_text, "Couldn't connect to server");
  free(probe[0]);
  free(url);
  close(fd);
}

static void test_connect_timeout(void **state)
{
  struct fx *f = *state;
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int fill[4];
  unsigned i;
  char *url;

  /* A listener whose accept queue is full drops new SYNs: the connect
   * hangs until the connect timeout, well before the total one (5 s) and
   * run_until's bound (3 s). */
  assert_true(lfd >= 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(lfd, 0), 0);
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
  for (i = 0; i < CCCI_ARRAY_LEN(fill); i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fill[i] >= 0);
    (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a));
  }
  client_close(f);
  f->opts.connect_timeout_ms = 200;
  client_new(f);
  url = ccci_xasprintf("http://127.0.0.1:%d/x", ntohs(a.sin_port));
  assert_int_equal(send_full(f, "GET", url, NULL, NULL, &f->got[0], NULL), 0);
  run_until(f, &f->ncb, 1);
  assert_int_equal(f->got[0].error, -ETIMEDOUT);
  assert_int_equal(f->got[0].status, 0);
  free(url);
  for (i = 0; i < CCCI_ARRAY_LEN(fill); i++)
    close(fill[i]);
  close(lfd);
}

static void test_total_timeout(void **state)
{
  struct fx *f = *state;

  client_close(f);
  f->opts.total_timeout_ms = 200;
  client_new(f);
  send_req(f, "GET", "/hang", NULL, NULL, &f->got[0], NULL);
  send_req(f, "GET", "/echo", NULL, NULL, &f->got[1], NULL);
  run_until(f, &f->ncb, 2);
  assert_int_equal(f->got[0].error, -ETIMEDOUT);
  assert_int_equal(f->got[0].status, 0);
  assert_int_equal(f->got[1].error, 0);
}

static void test_cap(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  char path[32];
  unsigned i;

  snprintf(path, sizeof(path), "/big/%d", CAP);
  send_req(f, "GET", path, NULL, NULL, &f->got[0], NULL);
  snprintf(path, sizeof(path), "/big/%d", CAP + 1);
  send_req(f, "GET", path, NULL, NULL, &f->got[1], NULL);
  run_until(f, &f->ncb, 2);
  assert_int_equal(f->got[0].error, 0);
  assert_int_equal(f->got[0].body_len, CAP);
  assert_int_equal(f->got[1].error, -EFBIG);
  assert_string_equal(f->got[1].error_text,
                      "response body larger than max_response_bytes");
  assert_int_equal(f->got[1].status, 200);
  assert_true(f->got[1].body_len <= CAP);

  /* A chunked body that never ends: only the cap can stop it before the
   * 5 s timeout, and it must stop it every time. */
  for (i = 0; i < 4; i++) {
    send_req(f, "GET", "/endless", NULL, NULL, &f->got[2 + i], NULL);
    run_until(f, &f->ncb, 3 + i);
    assert_int_equal(f->got[2 + i].error, -EFBIG);
    assert_true(f->got[2 + i].body_len <= CAP);
    assert_string_equal(f->got[2 + i].error_text,
                        "response body larger than max_response_bytes");
  }
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.too_large, 5);
  assert_int_equal(st.errors, 5);
}

static void test_reset(void **state)
{
  struct fx *f = *state;

  send_req(f, "GET", "/reset", NULL, NULL, &f->got[0], NULL);
  run_until(f, &f->ncb, 1);
  assert_int_equal(f->got[0].error, -ECONNRESET);
  assert_int_equal(f->got[0].status, 0);
  /* The client recovers on a new connection. */
  send_req(f, "GET", "/echo", NULL, NULL, &f->got[1], NULL);
  run_until(f, &f->ncb, 2);
  assert_int_equal(f->got[1].error, 0);
}

static void test_cancel(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  struct ccci_httpc_xfer *x = NULL, *y = NULL;

  /* Before the loop ever ran. */
  send_req(f, "GET", "/echo", NULL, NULL, &f->got[0], &x);
  assert_non_null(x);
  ccci_httpc_cancel(x);
  /* In flight: the server has the request. */
  send_req(f, "GET", "/hang", NULL, NULL, &f->got[1], &y);
  run_until(f, &f->srv.nreqs, 1);
  assert_string_equal(f->srv.reqs[0].path, "/hang");
  ccci_httpc_cancel(y);
  /* Its connection is closed, not reused; the client still works. */
  run_until_server_idle(f);
  send_req(f, "GET", "/echo", NULL, NULL, &f->got[2], NULL);
  run_until(f, &f->ncb, 1);
  assert_int_equal(f->srv.accepts, 2);
  assert_int_equal(f->got[0].calls, 0);
  assert_int_equal(f->got[1].calls, 0);
  assert_int_equal(f->got[2].calls, 1);
  assert_int_equal(f->got[2].error, 0);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.cancelled, 2);
  assert_int_equal(st.completed, 1);
  assert_int_equal(st.in_flight, 0);
}

static void test_close_in_flight(void **state)
{
  struct fx *f = *state;
  unsigned i;

  client_close(f);
  f->opts.max_connections = 2;
  client_new(f);
  for (i = 0; i < 3; i++)
    send_req(f, "GET", "/hang", NULL, NULL, &f->got[i], NULL);
  /* Two on the wire, the third waiting for a connection. */
  run_until(f, &f->srv.nreqs, 2);
  assert_int_equal(f->srv.open, 2);
  client_close(f);
  assert_int_equal(f->closed, 2);
  assert_int_equal(f->ncb, 0);
  /* Every connection was closed: the server sees them go. */
  run_until_server_idle(f);
}

static void close_from_cb(void *arg, const struct ccci_httpc_response *r)
{
  struct got *g = arg;
  struct fx *f = g->f;
  char *url = url_of(f, "/echo");

  on_response(arg, r);
  ccci_httpc_close(f->h, on_closed, f);
  /* A send after close fails and never calls back. */
  in_send = true;
  assert_int_equal(
      ccci_httpc_send(f->h,
                      &(struct ccci_httpc_request){.method = "GET", .url = url},
                      on_response, g + 2, NULL),
      -ESHUTDOWN);
  in_send = false;
  f->h = NULL;
  free(url);
}

static void test_close_from_callback(void **state)
{
  struct fx *f = *state;
  char *url = url_of(f, "/echo");

  send_req(f, "GET", "/hang", NULL, NULL, &f->got[1], NULL);
  run_until(f, &f->srv.nreqs, 1);
  f->got[0].f = f;
  in_send = true;
  assert_int_equal(
      ccci_httpc_send(f->h,
                      &(struct ccci_httpc_request){.method = "GET", .url = url},
                      close_from_cb, &f->got[0], NULL),
      0);
  in_send = false;
  free(url);
  run_until(f, &f->closed, 1);
  assert_int_equal(f->got[0].calls, 1);
  assert_int_equal(f->got[1].calls, 0);
  assert_int_equal(f->got[2].calls, 0);
}

static void test_bad_requests(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_stats st;
  char *url = url_of(f, "/echo");
  static const char *const crlf[] = {"X-A: b\r\nX-Injected: 1", NULL};
  static const char *const nocolon[] = {"Authorization " TOKEN, NULL};
  static const char *const badname[] = {"Bad Name: x", NULL};

  assert_int_equal(send_full(f, "get", url, NULL, NULL, &f->got[0], NULL),
                   -EINVAL);
  assert_int_equal(send_full(f, "", url, NULL, NULL, &f->got[0], NULL),
                   -EINVAL);
  assert_int_equal(
      send_full(f, "GET", "file:///etc/passwd", NULL, NULL, &f->got[0], NULL),
      -EINVAL);
  assert_int_equal(
      send_full(f, "GET", "ftp://127.0.0.1/", NULL, NULL, &f->got[0], NULL),
      -EINVAL);
  assert_int_equal(
      send_full(f, "GET", "http://a b/", NULL, NULL, &f->got[0], NULL),
      -EINVAL);
  assert_int_equal(
      send_full(f, "GET", "/relative", NULL, NULL, &f->got[0], NULL), -EINVAL);
  assert_int_equal(send_full(f, "GET", url, crlf, NULL, &f->got[0], NULL),
                   -EINVAL);
  assert_int_equal(send_full(f, "GET", url, nocolon, NULL, &f->got[0], NULL),
                   -EINVAL);
  assert_int_equal(send_full(f, "GET", url, badname, NULL, &f->got[0], NULL),
                   -EINVAL);
  ccci_httpc_stats(f->h, &st);
  assert_int_equal(st.requests, 0);
  /* Nothing was called back, even after the loop ran. */
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->got[0].calls, 0);
  free(url);
}

/* After a request to one server (its origin then passes unparsed), URLs
 * that differ from it in the port or in characters are still refused. */
static void test_bad_url_after_good(void **state)
{
  struct fx *f = *state;
  char *url;

  send_req(f, "GET", "/echo", NULL, NULL, &f->got[0], NULL);
  run_until(f, &f->ncb, 1);
  assert_int_equal(f->got[0].status, 200);
  url = ccci_xasprintf("http://127.0.0.1:%d0000000/echo", f->srv.port);
  assert_int_equal(send_full(f, "GET", url, NULL, NULL, &f->got[1], NULL),
                   -EINVAL);
  free(url);
  url = ccci_xasprintf("http://127.0.0.1:%d/a b", f->srv.port);
  assert_int_equal(send_full(f, "GET", url, NULL, NULL, &f->got[1], NULL),
                   -EINVAL);
  free(url);
  url = ccci_xasprintf("ftp://127.0.0.1:%d/echo", f->srv.port);
  assert_int_equal(send_full(f, "GET", url, NULL, NULL, &f->got[1], NULL),
                   -EINVAL);
  free(url);
  /* The server knows no such path, but the request went out. */
  send_req(f, "GET", "/echo?x=1#y", NULL, NULL, &f->got[1], NULL);
  run_until(f, &f->ncb, 2);
  assert_int_equal(f->got[1].error, 0);
  assert_int_equal(f->got[1].status, 404);
}

static void test_bad_options(void **state)
{
  struct fx *f = *state;
  struct ccci_httpc_opts o = f->opts;
  struct ccci_httpc *h = NULL;

  o.max_connections = 0;
  assert_int_equal(ccci_httpc_new(&f->loop, &o, &h), -EINVAL);
  o = f->opts;
  o.max_response_bytes = 0;
  assert_int_equal(ccci_httpc_new(&f->loop, &o, &h), -EINVAL);
  assert_null(h);
}

/* The descriptors without FD_CLOEXEC right now. */
static unsigned inheritable(int *out, unsigned max)
{
  unsigned n = 0;
  int fd;

  for (fd = 0; fd < 1024; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC) && n < max)
      out[n++] = fd;
  }
  return n;
}

static void test_cloexec(void **state)
{
  struct fx *f = *state;
  int before[64], during[64];
  unsigned nb, nd;
  char *url;

  client_close(f);
  nb = inheritable(before, 64);
  client_new(f);
  /* "localhost" goes through curl's resolver too. */
  url = ccci_xasprintf("http://localhost:%d/hang", f->srv.port);
  assert_int_equal(send_full(f, "GET", url, NULL, NULL, &f->got[0], NULL), 0);
  free(url);
  run_until(f, &f->srv.nreqs, 1);
  nd = inheritable(during, 64);
  assert_int_equal(nd, nb);
  assert_memory_equal(before, during, nb * sizeof(int));
  client_close(f);
  assert_int_equal(f->got[0].calls, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
      cmocka_unit_test_setup_teardown(test_user_agent_option, setup, teardown),
      cmocka_unit_test_setup_teardown(test_statuses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_date_and_retry_after, setup,
                                      teardown),
      cmocka_unit_test(test_parse_date),
      cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keepalive_one_watch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_idle_closed_by_server, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_close_reuses_fds, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_total_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_from_callback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_url_after_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cloexec, setup, teardown),
  };
  int r;

  signal(SIGPIPE, SIG_IGN);
  /* The test server is local: no proxy from the environment. */
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("https_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
  if (ccci_httpc_global_init() != 0)
    return 1;
  r = cmocka_run_group_tests(tests, NULL, NULL);
  ccci_httpc_global_cleanup();
  return r;
}
