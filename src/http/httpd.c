/* The HTTP/1.1 server engine: a libuv listener, and per connection an
 * http-parser request parser behind a small adapter, with our own limits,
 * deadlines, pipelining, responses and backpressure (docs/http.md, "The
 * server").
 *
 * A connection parses one request at a time. When a request is complete
 * the parser is paused and the request handed to the owner; bytes that
 * arrive meanwhile are kept (under a cap) and parsed once the response is
 * queued, so pipelined requests are answered in order. Output goes out
 * with one uv_try_write first; what the socket does not take at once is
 * queued with uv_write. One timer per connection carries its deadline. The
 * socket side sits behind a few io_* functions so that the fuzzer can drive
 * the same byte processing without a socket (httpd_int.h). */
#include "ccci/http/httpd.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ccci/core/list.h"
#include "ccci/core/util.h"
#include "httpd_int.h"

/* Header fields per request; one more gets 431. */
#define MAX_HEADERS 100
/* After the last response is written: how long the connection still reads
 * (and drops) what the client sends, so that closing does not reset a
 * response the client has not read yet. */
#define LINGER_MS 2000
/* Read room beyond the head cap. */
#define READ_ROOM (16u * 1024u)

enum cstate {
  C_IDLE,   /* between requests */
  C_HEAD,   /* a request's head is arriving */
  C_BODY,   /* its body is arriving */
  C_REQ,    /* the request is in the handler's hands */
  C_STREAM, /* a stream response is open */
  C_DONE,   /* the last response is queued; shutting down after it */
  C_LINGER, /* shut down; reading and dropping until EOF or LINGER_MS */
};

/* The element of the head the parser gave last. */
enum elem { E_NONE, E_URL, E_FIELD, E_VALUE };

struct hdr {
  uint32_t name, value; /* offsets into the head buffer */
};

struct qparam {
  struct qparam *next;
  char s[];
};

struct ccci_http_req {
  struct ccci_hconn *c;
  enum ccci_http_method method;
  const char *method_name;
  const char *path;
  const char *query;
  bool keep;       /* keep-alive after this response */
  bool head_only;  /* HEAD: no body goes out */
  bool out;        /* in the handler's hands (until its response call) */
  bool gone;       /* the client has gone */
  bool streaming;  /* stream_begin was called */
  bool stream_cnt; /* counted in streams */
  bool was_full;   /* went past the high-water mark: drained is due */
  char *body;
  size_t body_len, body_cap, body_max;
  struct qparam *qp;
  void (*gone_cb)(void *arg);
  void (*drained_cb)(void *arg);
  void *watch_arg;
};

struct wreq {
  uv_write_t req;
  struct ccci_hconn *c;
  struct wreq *next; /* the fake socket's queue */
  uv_buf_t bufs[2];
  unsigned nbufs;
  size_t len;
  void (*release)(void *arg);
  void *rarg;
  char data[];
};

struct ccci_hconn {
  struct ccci_httpd *h;
  struct ccci_list link;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shut;
  http_parser parser;
  enum cstate state;
  int handles;      /* uv handles not yet closed */
  bool closing;     /* the socket is closing */
  bool busy;        /* refused past max_conns */
  bool eof;         /* the client closed its side */
  bool reading;     /* reads are on */
  bool in_dispatch; /* inside the handler call */
  bool armed;       /* the timer runs, for armed_at */
  uint64_t armed_at;
  uint64_t since; /* the current state's start */
  uint64_t last_progress;
  size_t queued; /* bytes in queued writes */
  /* unparsed input: in[off, len) */
  char *in;
  size_t in_off, in_len, in_cap;
  size_t head_raw; /* bytes of the current head parsed */
  /* the head: url, then name NUL value NUL ...; then path and query */
  char *head;
  size_t head_len, head_cap;
  enum elem last;
  unsigned nh;
  struct hdr hdrs[MAX_HEADERS];
  int err;                /* the status a callback failed the request with */
  const char *exec_start; /* the bytes of the current parse call */
  /* the response head being built */
  char *out;
  size_t out_cap;
  struct ccci_http_req req;
  char peer[64];
  /* the fake socket */
  struct wreq *fq, **fq_tail;
  bool fake_shut, fake_close;
};

struct ccci_httpd {
  struct ccci_httpd_env env;
  struct ccci_httpd_limits lim;
  uv_tcp_t listener;
  bool listening; /* the listener handle is open */
  bool stopping;
  void (*done)(void *arg);
  void *done_arg;
  struct ccci_list conns;
  struct ccci_list dead; /* the fake server's freed connections */
  struct ccci_httpd_counters c;
  char address[80];
  time_t date_sec;
  char date[128];
  /* the fake server */
  bool fake;
  struct ccci_httpd_sink sink;
  uint64_t fake_now;
};

static const int codes[] = {
#define X(c) c,
    CCCI_HTTPD_CODES
#undef X
};

/* Bytes dropped (after a stream began, or while lingering) land here. */
static char discard[16384];

static void process(struct ccci_hconn *c);
static void settle(struct ccci_httpd *h);
static void conn_close(struct ccci_hconn *c);
static void arm(struct ccci_hconn *c);

/* ---- limits, codes, reasons ---- */

struct ccci_httpd_limits ccci_httpd_limits_default(void)
{
  struct ccci_httpd_limits l;
  l.max_head = 16u * 1024u;
  l.max_body = 1024u * 1024u;
  l.max_conns = 1024;
  l.head_timeout_ms = 10000;
  l.body_timeout_ms = 10000;
  l.idle_timeout_ms = 60000;
  l.write_timeout_ms = 30000;
  l.high_water = 64u * 1024u;
  return l;
}

int ccci_httpd_code_at(unsigned i)
{
  return i < CCCI_ARRAY_LEN(codes) ? codes[i] : 0;
}

const char *ccci_http_reason(int status)
{
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 416:
    return "Range Not Satisfiable";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "";
  }
}

static void count_status(struct ccci_httpd *h, int status)
{
  unsigned i;
  h->c.requests++;
  for (i = 0; i < CCCI_ARRAY_LEN(codes); i++) {
    if (codes[i] == status) {
      h->c.by_code[i]++;
      return;
    }
  }
  if (status >= 100 && status < 600)
    h->c.other_by_class[status / 100]++;
  else
    h->c.other_by_class[0]++;
}

/* ---- time ---- */

static uint64_t now_ms(const struct ccci_httpd *h)
{
  return h->fake ? h->fake_now : uv_now(h->env.loop);
}

/* The Date header's value, formatted once a second. */
static const char *date_now(struct ccci_httpd *h)
{
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                  "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = time(NULL);
  struct tm tm;
  if (t == h->date_sec && h->date[0] != '\0')
    return h->date;
  h->date_sec = t;
  if (gmtime_r(&t, &tm) == NULL)
    memset(&tm, 0, sizeof(tm));
  snprintf(h->date, sizeof(h->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
           days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return h->date;
}

/* ---- the socket side (real or fake) ---- */

static void on_write(uv_write_t *req, int status);
static void on_shutdown(uv_shutdown_t *req, int status);
static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void on_closed(uv_handle_t *hd);

static int io_try_write(struct ccci_hconn *c, const uv_buf_t *b, unsigned n)
{
  size_t done = 0, k;
  unsigned i;
  if (!c->h->fake)
    return uv_try_write((uv_stream_t *)&c->tcp, b, n);
  for (i = 0; i < n; i++) {
    k = c->h->sink.take(c->h->sink.arg, b[i].base, b[i].len);
    done += k;
    if (k < b[i].len)
      break;
  }
  return done == 0 ? UV_EAGAIN : (int)done;
}

static int io_write(struct ccci_hconn *c, struct wreq *w)
{
  if (!c->h->fake)
    return uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, w->nbufs,
                    on_write);
  w->next = NULL;
  *c->fq_tail = w;
  c->fq_tail = &w->next;
  return 0;
}

static int io_shutdown(struct ccci_hconn *c)
{
  if (!c->h->fake)
    return uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown);
  c->fake_shut = true;
  return 0;
}

static void io_read(struct ccci_hconn *c, bool on)
{
  if (c->reading == on || c->closing)
    return;
  if (!c->h->fake) {
    int r = on ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)
               : uv_read_stop((uv_stream_t *)&c->tcp);
    if (r < 0) {
      conn_close(c);
      return;
    }
  }
  c->reading = on;
}

static void io_timer(struct ccci_hconn *c, uint64_t in_ms)
{
  if (!c->h->fake)
    uv_timer_start(&c->timer, on_timer, in_ms, 0);
}

static void io_close(struct ccci_hconn *c)
{
  if (c->h->fake) {
    c->fake_close = true;
    return;
  }
  uv_close((uv_handle_t *)&c->tcp, on_closed);
  uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* ---- connections: life and death ---- */

static void check_done(struct ccci_httpd *h)
{
  struct ccci_list *it, *nx;
  void (*done)(void *);
  void *arg;
  if (!h->stopping || h->listening || !ccci_list_empty(&h->conns))
    return;
  done = h->done;
  arg = h->done_arg;
  h->done = NULL;
  if (done != NULL)
    done(arg);
  ccci_list_foreach_safe(it, nx, &h->dead)
  {
    free(ccci_container_of(it, struct ccci_hconn, link));
  }
  free(h);
}

static void req_reset(struct ccci_http_req *r)
{
  struct qparam *q, *n;
  for (q = r->qp; q != NULL; q = n) {
    n = q->next;
    free(q);
  }
  free(r->body);
  r->qp = NULL;
  r->body = NULL;
  r->body_len = r->body_cap = r->body_max = 0;
  r->out = r->gone = r->streaming = r->stream_cnt = r->was_full = false;
  r->gone_cb = r->drained_cb = NULL;
  r->watch_arg = NULL;
}

/* Free the connection once its handles are closed and its request is no
 * longer in a handler's hands. */
static void maybe_free(struct ccci_hconn *c)
{
  struct ccci_httpd *h = c->h;
  if (c->handles > 0 || c->req.out)
    return;
  ccci_list_remove(&c->link);
  if (!c->busy)
    h->c.connections--;
  req_reset(&c->req);
  free(c->in);
  free(c->head);
  free(c->out);
  if (h->fake) {
    c->in = c->head = c->out = NULL;
    ccci_list_add_tail(&h->dead, &c->link);
  } else {
    free(c);
    check_done(h);
  }
}

static void on_closed(uv_handle_t *hd)
{
  struct ccci_hconn *c = hd->data;
  c->handles--;
  maybe_free(c);
}

/* The request's client is gone: tell its watcher once. */
static void req_gone(struct ccci_hconn *c)
{
  struct ccci_http_req *r = &c->req;
  if (!r->out || r->gone)
    return;
  r->gone = true;
  if (r->gone_cb != NULL)
    r->gone_cb(r->watch_arg);
}

static void conn_close(struct ccci_hconn *c)
{
  if (c->closing)
    return;
  c->closing = true;
  c->reading = false;
  io_close(c);
  req_gone(c);
}

/* The last response is queued: shut the write side down once it is
 * written, then linger. */
static void finish_conn(struct ccci_hconn *c)
{
  if (c->closing || c->state == C_DONE || c->state == C_LINGER)
    return;
  c->state = C_DONE;
  c->since = now_ms(c->h);
  if (io_shutdown(c) < 0) {
    conn_close(c);
    return;
  }
  io_read(c, !c->eof);
  arm(c);
}

static void shutdown_done(struct ccci_hconn *c, int status)
{
  if (c->closing)
    return;
  if (status < 0 || c->eof) {
    conn_close(c);
    return;
  }
  c->state = C_LINGER;
  c->since = now_ms(c->h);
  io_read(c, true);
  arm(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
  shutdown_done(ccci_container_of(req, struct ccci_hconn, shut), status);
}

/* ---- deadlines ---- */

static uint64_t deadline(const struct ccci_hconn *c)
{
  const struct ccci_httpd_limits *l = &c->h->lim;
  uint64_t d = 0, w;
  switch (c->state) {
  case C_IDLE:
    d = c->since + l->idle_timeout_ms;
    break;
  case C_HEAD:
    d = c->since + l->head_timeout_ms;
    break;
  case C_BODY:
    d = c->since + l->body_timeout_ms;
    break;
  case C_LINGER:
    d = c->since + LINGER_MS;
    break;
  case C_REQ:
  case C_STREAM:
  case C_DONE:
    break;
  }
  if (c->queued > 0) {
    w = c->last_progress + l->write_timeout_ms;
    if (d == 0 || w < d)
      d = w;
  }
  return d;
}

/* Start the timer when the deadline is earlier than the one it runs for;
 * a later one is found when it fires. */
static void arm(struct ccci_hconn *c)
{
  uint64_t d, now;
  if (c->closing)
    return;
  d = deadline(c);
  if (d == 0 || (c->armed && c->armed_at <= d))
    return;
  now = now_ms(c->h);
  c->armed = true;
  c->armed_at = d;
  io_timer(c, d > now ? d - now : 0);
}

static void send_error(struct ccci_hconn *c, int status);

static void expire(struct ccci_hconn *c)
{
  uint64_t now = now_ms(c->h);
  const struct ccci_httpd_limits *l = &c->h->lim;
  c->armed = false;
  if (c->closing)
    return;
  if (c->queued > 0 && now >= c->last_progress + l->write_timeout_ms) {
    c->h->c.timeouts++;
    conn_close(c);
    return;
  }
  if (c->state == C_IDLE && now >= c->since + l->idle_timeout_ms) {
    c->h->c.timeouts++;
    conn_close(c);
    return;
  }
  if ((c->state == C_HEAD && now >= c->since + l->head_timeout_ms) ||
      (c->state == C_BODY && now >= c->since + l->body_timeout_ms)) {
    c->h->c.timeouts++;
    send_error(c, 408);
    return;
  }
  if (c->state == C_LINGER && now >= c->since + LINGER_MS) {
    conn_close(c);
    return;
  }
  arm(c);
}

static void on_timer(uv_timer_t *t)
{
  expire(t->data);
}

/* ---- output ---- */

static void write_done(struct wreq *w, int status)
{
  struct ccci_hconn *c = w->c;
  struct ccci_http_req *r = &c->req;
  c->queued -= w->len;
  if (status == 0) {
    c->h->c.bytes_out += w->len;
    c->last_progress = now_ms(c->h);
  }
  if (w->release != NULL)
    w->release(w->rarg);
  free(w);
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (r->out && r->was_full && c->queued <= c->h->lim.high_water / 2) {
    r->was_full = false;
    if (r->drained_cb != NULL)
      r->drained_cb(r->watch_arg);
    if (c->closing)
      return;
  }
  if (c->state == C_IDLE && c->in_off < c->in_len)
    process(c);
  else
    arm(c);
}

static void on_write(uv_write_t *req, int status)
{
  write_done(ccci_container_of(req, struct wreq, req), status);
}

/*
 * Send @p hd (copied if not written at once) and @p bd (copied when @p copy,
 * else kept until written, then @p release). Errors close the connection.
 */
static void send_bytes(struct ccci_hconn *c, const char *hd, size_t hl,
                       const char *bd, size_t bl, bool copy,
                       void (*release)(void *), void *rarg)
{
  uv_buf_t b[2];
  unsigned n = 0;
  size_t done = 0, own;
  struct wreq *w;
  int r;

  if (c->closing)
    goto release;
  if (hl > 0)
    b[n++] = uv_buf_init((char *)hd, (unsigned)hl);
  if (bl > 0)
    b[n++] = uv_buf_init((char *)bd, (unsigned)bl);
  if (n == 0)
    goto release;
  if (c->queued == 0) {
    r = io_try_write(c, b, n);
    if (r < 0 && r != UV_EAGAIN) {
      conn_close(c);
      goto release;
    }
    if (r > 0) {
      done = (size_t)r;
      c->h->c.bytes_out += done;
    }
  }
  if (done >= hl + bl)
    goto release;
  /* What is left: the head's tail is copied, the body's too or kept. */
  if (done >= hl) {
    bd += done - hl;
    bl -= done - hl;
    hl = 0;
  } else {
    hd += done;
    hl -= done;
  }
  own = hl + (copy ? bl : 0);
  w = ccci_xmalloc(sizeof(*w) + own);
  w->c = c;
  w->nbufs = 0;
  w->len = hl + bl;
  memcpy(w->data, hd, hl);
  if (hl > 0)
    w->bufs[w->nbufs++] = uv_buf_init(w->data, (unsigned)hl);
  if (bl > 0 && copy) {
    memcpy(w->data + hl, bd, bl);
    w->bufs[w->nbufs++] = uv_buf_init(w->data + hl, (unsigned)bl);
  } else if (bl > 0)
    w->bufs[w->nbufs++] = uv_buf_init((char *)bd, (unsigned)bl);
  w->release = copy ? NULL : release;
  w->rarg = rarg;
  if (c->queued == 0)
    c->last_progress = now_ms(c->h);
  c->queued += w->len;
  if (io_write(c, w) < 0) {
    c->queued -= w->len;
    free(w);
    conn_close(c);
    goto release;
  }
  arm(c);
  if (copy && release != NULL)
    release(rarg);
  return;
release:
  if (release != NULL)
    release(rarg);
}

static char *put(char *p, const char *s, size_t n)
{
  memcpy(p, s, n);
  return p + n;
}

static char *put_s(char *p, const char *s)
{
  return put(p, s, strlen(s));
}

static char *put_u(char *p, uint64_t v)
{
  char tmp[24];
  size_t i = sizeof(tmp);
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  return put(p, tmp + i, sizeof(tmp) - i);
}

/* Build a response head in c->out; returns its length. @p len < 0: no
 * Content-Length (a stream, or a status without a body). */
static size_t build_head(struct ccci_hconn *c, int status, const char *ctype,
                         const char *extra, int64_t len, bool close)
{
  size_t need = 256 + (ctype != NULL ? strlen(ctype) : 0) +
                (extra != NULL ? strlen(extra) : 0);
  char *p;
  if (status < 100 || status > 999)
    status = 500;
  if (need > c->out_cap) {
    free(c->out);
    c->out_cap = need < 1024 ? 1024 : need;
    c->out = ccci_xmalloc(c->out_cap);
  }
  p = put(c->out, "HTTP/1.1 ", 9);
  p = put_u(p, (uint64_t)status);
  *p++ = ' ';
  p = put_s(p, ccci_http_reason(status));
  p = put(p, "\r\n", 2);
  if (ctype != NULL) {
    p = put(p, "Content-Type: ", 14);
    p = put_s(p, ctype);
    p = put(p, "\r\n", 2);
  }
  if (extra != NULL)
    p = put_s(p, extra);
  if (len >= 0) {
    p = put(p, "Content-Length: ", 16);
    p = put_u(p, (uint64_t)len);
    p = put(p, "\r\n", 2);
  }
  p = put(p, "Date: ", 6);
  p = put_s(p, date_now(c->h));
  p = put(p, "\r\n", 2);
  p = close ? put_s(p, "Connection: close\r\n")
            : put_s(p, "Connection: keep-alive\r\n");
  p = put_s(p, "X-Content-Type-Options: nosniff\r\n\r\n");
  return (size_t)(p - c->out);
}

/* An answer of the engine's own (a malformed request, a deadline, the
 * connection cap): a short text, then the connection closes. */
static void send_error(struct ccci_hconn *c, int status)
{
  char body[64];
  size_t bl, hl;
  if (c->closing || c->state == C_DONE || c->state == C_LINGER)
    return;
  bl = (size_t)snprintf(body, sizeof(body), "%d %s\n", status,
                        ccci_http_reason(status));
  count_status(c->h, status);
  hl = build_head(c, status, "text/plain; charset=utf-8", NULL, (int64_t)bl,
                  true);
  send_bytes(c, c->out, hl, body, bl, true, NULL, NULL);
  c->in_off = c->in_len = 0;
  finish_conn(c);
}

/* ---- the parser adapter ---- */

static int head_put(struct ccci_hconn *c, const char *p, size_t n)
{
  if (c->head_len + n + 1 > c->h->lim.max_head) {
    c->err = 431;
    return -1;
  }
  memcpy(c->head + c->head_len, p, n);
  c->head_len += n;
  return 0;
}

static int head_end(struct ccci_hconn *c)
{
  if (c->last == E_NONE)
    return 0;
  c->head[c->head_len++] = '\0';
  return 0;
}

static int on_message_begin(http_parser *p)
{
  struct ccci_hconn *c = p->data;
  c->head_len = 0;
  c->nh = 0;
  c->last = E_NONE;
  c->err = 0;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
  struct ccci_hconn *c = p->data;
  c->last = E_URL;
  return head_put(c, at, n);
}

static int on_field(http_parser *p, const char *at, size_t n)
{
  struct ccci_hconn *c = p->data;
  if (c->last != E_FIELD) {
    head_end(c);
    if (c->nh == MAX_HEADERS) {
      c->err = 431;
      return -1;
    }
    c->hdrs[c->nh].name = (uint32_t)c->head_len;
    c->hdrs[c->nh].value = UINT32_MAX;
    c->nh++;
    c->last = E_FIELD;
  }
  return head_put(c, at, n);
}

static int on_value(http_parser *p, const char *at, size_t n)
{
  struct ccci_hconn *c = p->data;
  if (c->last != E_VALUE) {
    head_end(c);
    c->hdrs[c->nh - 1].value = (uint32_t)c->head_len;
    c->last = E_VALUE;
  } else if (at != c->exec_start) {
    /* The same value again within one parse call: the parser joined a
     * folded line (obs-fold), which a server must refuse or replace. */
    c->err = 400;
    return -1;
  }
  return head_put(c, at, n);
}

static int hexval(char ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decode @p n bytes of @p s into @p out (NUL-terminated; '+' is a
 * space when @p plus). -1 on a bad escape or a NUL. */
static int pct_decode(const char *s, size_t n, char *out, bool plus)
{
  size_t i;
  int hi, lo;
  for (i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '%') {
      if (i + 2 >= n)
        return -1;
      hi = hexval(s[i + 1]);
      lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      ch = (char)(hi * 16 + lo);
      i += 2;
      if (ch == '\0')
        return -1;
    } else if (ch == '+' && plus)
      ch = ' ';
    *out++ = ch;
  }
  *out = '\0';
  return 0;
}

/* The target must be origin-form: path, then an optional query (a
 * fragment is dropped). The decoded path and the raw query follow the
 * head's elements in the head buffer. */
static int parse_target(struct ccci_hconn *c)
{
  struct ccci_http_req *r = &c->req;
  const char *url = c->head, *q, *f, *end;
  size_t plen;
  if (c->nh > 0 ? c->hdrs[0].name == 0 : c->head_len == 0)
    return -1;
  if (url[0] != '/')
    return -1;
  end = url + strlen(url);
  f = memchr(url, '#', (size_t)(end - url));
  if (f != NULL)
    end = f;
  q = memchr(url, '?', (size_t)(end - url));
  plen = (size_t)((q != NULL ? q : end) - url);
  r->path = c->head + c->head_len;
  if (pct_decode(url, plen, c->head + c->head_len, false) < 0)
    return -1;
  c->head_len += strlen(r->path) + 1;
  r->query = c->head + c->head_len;
  if (q != NULL) {
    memcpy(c->head + c->head_len, q + 1, (size_t)(end - q - 1));
    c->head_len += (size_t)(end - q - 1);
  }
  c->head[c->head_len++] = '\0';
  return 0;
}

/* Trim the values' trailing blanks (http-parser drops the leading ones). */
static void trim_values(struct ccci_hconn *c)
{
  unsigned i;
  for (i = 0; i < c->nh; i++) {
    char *v;
    size_t n;
    if (c->hdrs[i].value == UINT32_MAX) {
      /* A name with no value: point at its own NUL. */
      c->hdrs[i].value =
          c->hdrs[i].name + (uint32_t)strlen(c->head + c->hdrs[i].name);
      continue;
    }
    v = c->head + c->hdrs[i].value;
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
      v[--n] = '\0';
  }
}

static bool has_ctl(const char *s)
{
  for (; *s != '\0'; s++) {
    if (*s == '\r' || *s == '\n')
      return true;
  }
  return false;
}

static int on_headers_complete(http_parser *p)
{
  struct ccci_hconn *c = p->data;
  struct ccci_http_req *r = &c->req;
  const char *expect;
  unsigned i;
  size_t limit;

  head_end(c);
  c->last = E_NONE;
  switch (p->method) {
  case HTTP_GET:
    r->method = CCCI_HTTP_GET;
    break;
  case HTTP_HEAD:
    r->method = CCCI_HTTP_HEAD;
    break;
  case HTTP_POST:
    r->method = CCCI_HTTP_POST;
    break;
  default:
    r->method = CCCI_HTTP_OTHER;
    break;
  }
  r->method_name = http_method_str((enum http_method)p->method);
  r->head_only = r->method == CCCI_HTTP_HEAD;
  if (p->http_major != 1) {
    c->err = 505;
    return -1;
  }
  /* Request smuggling: a length and a transfer coding both. */
  if ((p->flags & F_CONTENTLENGTH) &&
      ((p->flags & F_CHUNKED) || p->uses_transfer_encoding)) {
    c->err = 400;
    return -1;
  }
  trim_values(c);
  /* A value never carries a line break (the parser should not pass one). */
  for (i = 0; i < c->nh; i++) {
    if (has_ctl(c->head + c->hdrs[i].value)) {
      c->err = 400;
      return -1;
    }
  }
  if (parse_target(c) < 0) {
    c->err = 400;
    return -1;
  }
  r->keep = http_should_keep_alive(p) && !p->upgrade;
  c->state = C_BODY;
  c->since = now_ms(c->h);
  limit =
      c->h->env.body_limit != NULL ? c->h->env.body_limit(c->h->env.arg, r) : 0;
  if (limit > c->h->lim.max_body)
    limit = c->h->lim.max_body;
  r->body_max = limit;
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > limit) {
    c->err = 413;
    return -1;
  }
  expect = ccci_http_header(r, "Expect");
  if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
      p->http_minor >= 1 && ((p->flags & F_CHUNKED) || p->content_length > 0))
    send_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0, false, NULL,
               NULL);
  arm(c);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
  struct ccci_hconn *c = p->data;
  struct ccci_http_req *r = &c->req;
  size_t cap;
  if (n > r->body_max - r->body_len) {
    c->err = 413;
    return -1;
  }
  if (r->body_len + n + 1 > r->body_cap) {
    cap = (p->flags & F_CONTENTLENGTH) ? r->body_len + n + p->content_length
                                       : 2 * (r->body_len + n);
    if (cap < 256)
      cap = 256;
    if (cap > r->body_max + 1)
      cap = r->body_max + 1;
    r->body = ccci_xrealloc(r->body, cap);
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, at, n);
  r->body_len += n;
  return 0;
}

static int on_message_complete(http_parser *p)
{
  struct ccci_hconn *c = p->data;
  struct ccci_http_req *r = &c->req;
  if (r->body != NULL)
    r->body[r->body_len] = '\0';
  c->state = C_REQ;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the connection's byte processing ---- */

static void dispatch(struct ccci_hconn *c)
{
  struct ccci_http_req *r = &c->req;
  c->head_raw = 0;
  r->out = true;
  c->in_dispatch = true;
  c->h->env.handle(c->h->env.arg, r);
  c->in_dispatch = false;
}

/* Start or stop reading: the unparsed bytes are capped. */
static void update_reading(struct ccci_hconn *c)
{
  bool want;
  if (c->closing)
    return;
  if (c->in_off > 0) {
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  want = !c->eof && (c->state >= C_STREAM || c->in_len < c->in_cap);
  io_read(c, want);
}

/* Parse what is buffered, one request at a time. */
static void process(struct ccci_hconn *c)
{
  const struct ccci_httpd_limits *l = &c->h->lim;
  size_t n, k;
  enum http_errno e;

  while (!c->closing && c->state <= C_BODY && c->in_off < c->in_len) {
    /* Pipelined requests wait while their responses pile up. */
    if (c->queued > l->high_water)
      break;
    if (c->state == C_IDLE) {
      c->state = C_HEAD;
      c->since = now_ms(c->h);
      c->head_raw = 0;
    }
    n = c->in_len - c->in_off;
    if (c->state == C_HEAD && n > l->max_head - c->head_raw)
      n = l->max_head - c->head_raw;
    if (n == 0) {
      send_error(c, 431);
      break;
    }
    c->exec_start = c->in + c->in_off;
    k = http_parser_execute(&c->parser, &settings, c->exec_start, n);
    c->in_off += k;
    if (c->state == C_HEAD)
      c->head_raw += k;
    e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      dispatch(c);
      continue;
    }
    if (e != HPE_OK) {
      send_error(c, c->err != 0                ? c->err
                    : e == HPE_HEADER_OVERFLOW ? 431
                                               : 400);
      break;
    }
    if (k < n) { /* an upgrade: nothing after it is HTTP */
      send_error(c, 400);
      break;
    }
    if (c->state == C_HEAD && c->head_raw >= l->max_head) {
      send_error(c, 431);
      break;
    }
  }
  if (c->closing)
    return;
  if (c->eof && c->state == C_IDLE && c->in_off == c->in_len)
    finish_conn(c);
  else if (c->eof && (c->state == C_HEAD || c->state == C_BODY) &&
           c->in_off == c->in_len) {
    conn_close(c); /* a request cut short */
    return;
  }
  update_reading(c);
  arm(c);
}

/* @p n bytes were read into in + in_len (or into the discard buffer). */
static void got_bytes(struct ccci_hconn *c, size_t n, bool dropped)
{
  if (c->closing || dropped)
    return;
  c->in_len += n;
  if (c->state <= C_BODY)
    process(c);
  else
    update_reading(c);
}

static void got_eof(struct ccci_hconn *c, bool reset)
{
  if (c->closing)
    return;
  c->eof = true;
  if (reset || c->state == C_STREAM || c->state == C_LINGER) {
    conn_close(c);
    return;
  }
  io_read(c, false);
  if (c->state <= C_BODY)
    process(c);
}

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
  struct ccci_hconn *c = hd->data;
  (void)hint;
  if (c->state >= C_STREAM) {
    *buf = uv_buf_init(discard, sizeof(discard));
    return;
  }
  if (c->in == NULL) {
    c->in_cap = c->h->lim.max_head + READ_ROOM;
    c->in = ccci_xmalloc(c->in_cap);
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  struct ccci_hconn *c = s->data;
  if (nread > 0)
    got_bytes(c, (size_t)nread, buf->base == discard);
  else if (nread == UV_EOF)
    got_eof(c, false);
  else if (nread == UV_ENOBUFS)
    io_read(c, false);
  else if (nread < 0)
    got_eof(c, true);
}

static struct ccci_hconn *conn_new(struct ccci_httpd *h)
{
  struct ccci_hconn *c = ccci_xcalloc(1, sizeof(*c));
  c->h = h;
  c->fq_tail = &c->fq;
  c->req.c = c;
  c->req.path = c->req.query = "";
  c->tcp.data = c;
  c->timer.data = c;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->head_cap = 2 * h->lim.max_head + 16;
  ccci_list_add_tail(&h->conns, &c->link);
  return c;
}

/* An accepted connection starts: served, or refused past the cap. */
static void conn_start(struct ccci_hconn *c)
{
  struct ccci_httpd *h = c->h;
  c->state = C_IDLE;
  c->since = now_ms(h);
  if (h->c.connections >= h->lim.max_conns) {
    c->busy = true;
    h->c.refused_busy++;
    send_error(c, 503);
    return;
  }
  h->c.connections++;
  h->c.connections_total++;
  c->head = ccci_xmalloc(c->head_cap);
  if (h->fake) {
    c->in_cap = h->lim.max_head + READ_ROOM;
    c->in = ccci_xmalloc(c->in_cap);
  }
  io_read(c, true);
  arm(c);
}

static void on_connection(uv_stream_t *server, int status)
{
  struct ccci_httpd *h =
      ccci_container_of((uv_tcp_t *)server, struct ccci_httpd, listener);
  struct ccci_hconn *c;
  if (status < 0 || h->stopping)
    return;
  c = conn_new(h);
  uv_tcp_init(h->env.loop, &c->tcp);
  uv_timer_init(h->env.loop, &c->timer);
  c->handles = 2;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    c->closing = true;
    c->busy = true; /* never counted */
    io_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  conn_start(c);
}

/* ---- the server ---- */

static int parse_listen(const char *listen, struct sockaddr_storage *ss)
{
  const char *colon, *hs, *he;
  char host[64];
  uint64_t port;
  int r;
  if (listen == NULL)
    return UV_EINVAL;
  colon = strrchr(listen, ':');
  if (colon == NULL || colon[1] == '\0')
    return UV_EINVAL;
  if (ccci_parse_u64(colon + 1, &port) < 0 || port > 65535)
    return UV_EINVAL;
  hs = listen;
  he = colon;
  if (listen[0] == '[') {
    if (he == listen || he[-1] != ']')
      return UV_EINVAL;
    hs++;
    he--;
  }
  if ((size_t)(he - hs) >= sizeof(host) || he == hs)
    return UV_EINVAL;
  memcpy(host, hs, (size_t)(he - hs));
  host[he - hs] = '\0';
  if (listen[0] == '[')
    r = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
  else
    r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
  return r;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t n)
{
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(s6, ip, sizeof(ip));
    port = ntohs(s6->sin6_port);
    snprintf(out, n, "[%s]:%d", ip, port);
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    uv_ip4_name(s4, ip, sizeof(ip));
    port = ntohs(s4->sin_port);
    snprintf(out, n, "%s:%d", ip, port);
  }
}

static struct ccci_httpd *server_new(const struct ccci_httpd_env *env)
{
  struct ccci_httpd *h = ccci_xcalloc(1, sizeof(*h));
  h->env = *env;
  h->lim = env->limits;
  if (h->lim.max_head < 64)
    h->lim.max_head = 64;
  if (h->lim.high_water == 0)
    h->lim.high_water = 1;
  ccci_list_init(&h->conns);
  ccci_list_init(&h->dead);
  return h;
}

static void on_listener_closed(uv_handle_t *hd)
{
  struct ccci_httpd *h =
      ccci_container_of((uv_tcp_t *)hd, struct ccci_httpd, listener);
  h->listening = false;
  if (h->stopping)
    check_done(h);
  else
    free(h); /* ccci_httpd_new failed */
}

int ccci_httpd_new(const struct ccci_httpd_env *env, const char *listen,
                   struct ccci_httpd **out, char **err)
{
  struct ccci_httpd *h;
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  int r;

  *out = NULL;
  memset(&ss, 0, sizeof(ss));
  r = parse_listen(listen, &ss);
  if (r < 0) {
    *err = ccci_xasprintf("http.listen '%s': not an address "
                          "(\"host:port\" or \"[ipv6]:port\")",
                          listen != NULL ? listen : "");
    return -EINVAL;
  }
  h = server_new(env);
  uv_tcp_init(env->loop, &h->listener);
  h->listening = true;
  r = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&h->listener, 511, on_connection);
  if (r == 0)
    r = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
  if (r < 0) {
    *err = ccci_xasprintf("cannot listen on %s: %s", listen, uv_strerror(r));
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    return r;
  }
  format_addr(&ss, h->address, sizeof(h->address));
  *out = h;
  return 0;
}

const char *ccci_httpd_address(const struct ccci_httpd *h)
{
  return h->address;
}

void ccci_httpd_counters(const struct ccci_httpd *h,
                         struct ccci_httpd_counters *out)
{
  *out = h->c;
}

void ccci_httpd_free(struct ccci_httpd *h, void (*done)(void *arg), void *arg)
{
  struct ccci_list *it, *nx;
  h->stopping = true;
  h->done = done;
  h->done_arg = arg;
  if (h->listening && !h->fake)
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
  ccci_list_foreach_safe(it, nx, &h->conns)
  {
    conn_close(ccci_container_of(it, struct ccci_hconn, link));
  }
  if (h->fake) {
    h->listening = false;
    settle(h);
  }
  check_done(h);
}

/* ---- the request ---- */

enum ccci_http_method ccci_http_method(const struct ccci_http_req *r)
{
  return r->method;
}

const char *ccci_http_method_name(const struct ccci_http_req *r)
{
  return r->method_name;
}

const char *ccci_http_path(const struct ccci_http_req *r)
{
  return r->path;
}

const char *ccci_http_query(const struct ccci_http_req *r)
{
  return r->query;
}

const char *ccci_http_query_param(struct ccci_http_req *r, const char *name)
{
  const char *p = r->query, *amp, *eq;
  size_t nl = strlen(name);
  struct qparam *q;
  char key[128];
  while (*p != '\0') {
    amp = strchr(p, '&');
    if (amp == NULL)
      amp = p + strlen(p);
    eq = memchr(p, '=', (size_t)(amp - p));
    if (eq == NULL)
      eq = amp;
    if ((size_t)(eq - p) < sizeof(key) &&
        pct_decode(p, (size_t)(eq - p), key, true) == 0 && strlen(key) == nl &&
        memcmp(key, name, nl) == 0) {
      size_t vl = eq < amp ? (size_t)(amp - eq - 1) : 0;
      q = ccci_xmalloc(sizeof(*q) + vl + 1);
      if (pct_decode(eq < amp ? eq + 1 : eq, vl, q->s, true) < 0) {
        free(q);
        return NULL;
      }
      q->next = r->qp;
      r->qp = q;
      return q->s;
    }
    p = *amp == '&' ? amp + 1 : amp;
  }
  return NULL;
}

const char *ccci_http_header(const struct ccci_http_req *r, const char *name)
{
  const struct ccci_hconn *c = r->c;
  unsigned i;
  for (i = 0; i < c->nh; i++) {
    if (strcasecmp(c->head + c->hdrs[i].name, name) == 0)
      return c->head + c->hdrs[i].value;
  }
  return NULL;
}

const char *ccci_http_body(const struct ccci_http_req *r, size_t *len)
{
  *len = r->body_len;
  return r->body != NULL ? r->body : "";
}

const char *ccci_http_peer(const struct ccci_http_req *r)
{
  struct ccci_hconn *c = r->c;
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (c->peer[0] != '\0')
    return c->peer;
  if (c->h->fake || c->closing ||
      uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0)
    snprintf(c->peer, sizeof(c->peer), "?");
  else
    format_addr(&ss, c->peer, sizeof(c->peer));
  return c->peer;
}

void ccci_http_watch(struct ccci_http_req *r, void (*gone)(void *arg),
                     void (*drained)(void *arg), void *arg)
{
  r->gone_cb = gone;
  r->drained_cb = drained;
  r->watch_arg = arg;
}

bool ccci_http_gone(const struct ccci_http_req *r)
{
  return r->gone;
}

/* ---- responses ---- */

/* The request has had its response call: the connection goes on with the
 * next one, or closes. */
static void req_done(struct ccci_hconn *c, bool close)
{
  req_reset(&c->req);
  if (c->closing) {
    maybe_free(c);
    return;
  }
  if (close) {
    finish_conn(c);
    return;
  }
  c->state = C_IDLE;
  c->since = now_ms(c->h);
  http_parser_pause(&c->parser, 0);
  if (!c->in_dispatch)
    process(c);
  else
    arm(c);
}

static void respond(struct ccci_http_req *r, int status, const char *ctype,
                    const char *extra, const void *body, size_t len, bool copy,
                    void (*release)(void *), void *arg)
{
  struct ccci_hconn *c = r->c;
  bool close, nobody;
  size_t hl;
  if (r->gone || c->closing) {
    if (release != NULL)
      release(arg);
    req_done(c, true);
    return;
  }
  close = !r->keep || c->eof;
  nobody = status < 200 || status == 204 || status == 304;
  count_status(c->h, status);
  hl = build_head(c, status, ctype, extra, nobody ? -1 : (int64_t)len, close);
  if (r->head_only || nobody)
    send_bytes(c, c->out, hl, NULL, 0, copy, release, arg);
  else
    send_bytes(c, c->out, hl, body, len, copy, release, arg);
  req_done(c, close);
}

void ccci_http_respond(struct ccci_http_req *r, int status, const char *ctype,
                       const char *extra, const void *body, size_t len)
{
  respond(r, status, ctype, extra, body, len, true, NULL, NULL);
}

void ccci_http_respond_ref(struct ccci_http_req *r, int status,
                           const char *ctype, const char *extra,
                           const void *body, size_t len,
                           void (*release)(void *arg), void *arg)
{
  respond(r, status, ctype, extra, body, len, false, release, arg);
}

void ccci_http_stream_begin(struct ccci_http_req *r, int status,
                            const char *ctype, const char *extra)
{
  struct ccci_hconn *c = r->c;
  size_t hl;
  r->streaming = true;
  if (r->gone || c->closing)
    return;
  count_status(c->h, status);
  hl = build_head(c, status, ctype, extra, -1, true);
  c->state = C_STREAM;
  c->in_off = c->in_len = 0;
  c->h->c.streams++;
  r->stream_cnt = true;
  send_bytes(c, c->out, hl, NULL, 0, true, NULL, NULL);
  if (c->closing)
    return;
  if (r->head_only) {
    finish_conn(c);
    return;
  }
  if (c->eof) {
    conn_close(c);
    return;
  }
  io_read(c, true);
  arm(c);
}

int ccci_http_stream_write(struct ccci_http_req *r, const void *p, size_t len)
{
  struct ccci_hconn *c = r->c;
  if (r->gone || c->closing || r->head_only || c->state != C_STREAM)
    return -EPIPE;
  send_bytes(c, NULL, 0, p, len, true, NULL, NULL);
  if (r->gone || c->closing)
    return -EPIPE;
  if (c->queued > c->h->lim.high_water)
    r->was_full = true;
  return 0;
}

bool ccci_http_stream_full(const struct ccci_http_req *r)
{
  return !r->gone && r->c->queued > r->c->h->lim.high_water;
}

void ccci_http_stream_end(struct ccci_http_req *r)
{
  struct ccci_hconn *c = r->c;
  if (r->stream_cnt)
    c->h->c.streams--;
  req_done(c, true);
}

/* ---- the fake server (httpd_int.h) ---- */

/* What the loop would do next: cancelled writes and closes complete, a
 * shutdown completes once the queue is written. */
static void settle(struct ccci_httpd *h)
{
  struct ccci_list *it, *nx;
  bool again = true;
  while (again) {
    again = false;
    ccci_list_foreach_safe(it, nx, &h->conns)
    {
      struct ccci_hconn *c = ccci_container_of(it, struct ccci_hconn, link);
      if (c->fake_close) {
        struct wreq *w;
        c->fake_close = false;
        while ((w = c->fq) != NULL) {
          c->fq = w->next;
          if (c->fq == NULL)
            c->fq_tail = &c->fq;
          write_done(w, UV_ECANCELED);
        }
        c->handles = 0;
        maybe_free(c);
        again = true;
        break;
      }
      if (c->fake_shut && c->fq == NULL) {
        c->fake_shut = false;
        shutdown_done(c, 0);
        again = true;
        break;
      }
    }
  }
}

struct ccci_httpd *ccci_httpd_new_fake(const struct ccci_httpd_env *env,
                                       const struct ccci_httpd_sink *sink)
{
  struct ccci_httpd *h = server_new(env);
  h->fake = true;
  h->sink = *sink;
  snprintf(h->address, sizeof(h->address), "fake:0");
  return h;
}

struct ccci_hconn *ccci_hconn_open(struct ccci_httpd *h)
{
  struct ccci_hconn *c = conn_new(h);
  c->handles = 1;
  conn_start(c);
  settle(h);
  return c;
}

void ccci_hconn_feed(struct ccci_hconn *c, const void *p, size_t n)
{
  struct ccci_httpd *h = c->h;
  if (c->closing || !c->reading || c->in == NULL)
    return;
  if (c->state >= C_STREAM) {
    got_bytes(c, n, true);
  } else {
    if (n > c->in_cap - c->in_len)
      n = c->in_cap - c->in_len;
    if (n > 0) {
      memcpy(c->in + c->in_len, p, n);
      got_bytes(c, n, false);
    }
  }
  settle(h);
}

void ccci_hconn_eof(struct ccci_hconn *c, bool reset)
{
  struct ccci_httpd *h = c->h;
  if (!c->closing && (c->reading || reset))
    got_eof(c, reset);
  settle(h);
}

void ccci_hconn_flush(struct ccci_hconn *c)
{
  struct ccci_httpd *h = c->h;
  struct wreq *w;
  unsigned i;
  while (!c->closing && (w = c->fq) != NULL) {
    c->fq = w->next;
    if (c->fq == NULL)
      c->fq_tail = &c->fq;
    for (i = 0; i < w->nbufs; i++)
      (void)h->sink.take(h->sink.arg, w->bufs[i].base, w->bufs[i].len);
    write_done(w, 0);
  }
  settle(h);
}

void ccci_hconn_advance(struct ccci_httpd *h, uint64_t ms)
{
  struct ccci_list *it, *nx;
  h->fake_now += ms;
  ccci_list_foreach_safe(it, nx, &h->conns)
  {
    struct ccci_hconn *c = ccci_container_of(it, struct ccci_hconn, link);
    if (!c->closing)
      expire(c);
  }
  settle(h);
}

bool ccci_hconn_closed(const struct ccci_hconn *c)
{
  return c->closing;
}
