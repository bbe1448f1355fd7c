/* libFuzzer target: the HTTP engine's connection logic (parser adapter,
 * limits, pipelining, responses, streams, deadlines) driven without a
 * socket through httpd_int.h. The input is a script: a byte below 0x80
 * feeds the next (b + 1) bytes to the current connection; a byte from 0x80
 * is an operation (flush, time passes, EOF, answer a request, open or pick
 * a connection, how much the socket takes, a stream write). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/http/httpd.h"
#include "httpd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PEND 32
#define MAX_CONNS 4

struct pend {
  struct ccci_http_req *req;
  bool stream;
};

static struct pend pend[MAX_PEND];
static unsigned npend;
static bool answer_now;
static size_t take_max;
static uint64_t taken;

static size_t take(void *arg, const void *p, size_t n)
{
  (void)arg;
  (void)p;
  if (n > take_max)
    n = take_max;
  taken += n;
  return n;
}

static size_t body_limit(void *arg, const struct ccci_http_req *r)
{
  (void)arg;
  return ccci_http_method(r) == CCCI_HTTP_POST ? 300 : 0;
}

static void gone(void *arg)
{
  (void)arg;
}

static void answer(struct ccci_http_req *r, unsigned mode)
{
  static const char body[] = "0123456789abcdef0123456789abcdef";
  size_t n;
  const char *b = ccci_http_body(r, &n);
  /* Every accessor on every request. */
  (void)ccci_http_query_param(r, "a");
  (void)ccci_http_query_param(r, "b");
  (void)ccci_http_header(r, "host");
  (void)ccci_http_peer(r);
  if (strlen(ccci_http_path(r)) == 0 || ccci_http_path(r)[0] != '/')
    abort();
  if (b[n] != '\0')
    abort();
  switch (mode % 3) {
  case 0:
    ccci_http_respond(r, 200, "text/plain", "X-A: b\r\n", b, n);
    break;
  case 1:
    ccci_http_respond_ref(r, 404, NULL, NULL, body, mode % 32, NULL, NULL);
    break;
  default:
    ccci_http_respond(r, 204, NULL, NULL, NULL, 0);
    break;
  }
}

static void handle(void *arg, struct ccci_http_req *r)
{
  (void)arg;
  ccci_http_watch(r, gone, gone, NULL);
  if (answer_now || npend == MAX_PEND) {
    answer(r, (unsigned)strlen(ccci_http_path(r)));
    return;
  }
  pend[npend].req = r;
  pend[npend].stream = false;
  npend++;
}

/* Answer, stream or end the oldest pending request. */
static void serve_pending(unsigned mode)
{
  struct pend p;
  if (npend == 0)
    return;
  p = pend[0];
  if (!p.stream && mode % 4 == 3) {
    ccci_http_stream_begin(p.req, 200, "text/event-stream", NULL);
    pend[0].stream = true;
    return;
  }
  memmove(pend, pend + 1, (npend - 1) * sizeof(pend[0]));
  npend--;
  if (p.stream)
    ccci_http_stream_end(p.req);
  else
    answer(p.req, mode);
}

static void stream_write(unsigned n)
{
  static const char line[] = "data: 0123456789012345678901234567890123\n\n";
  unsigned i;
  for (i = 0; i < npend; i++) {
    if (pend[i].stream) {
      int r = ccci_http_stream_write(pend[i].req, line, n % sizeof(line));
      if (r != 0 && r != -EPIPE)
        abort();
      (void)ccci_http_stream_full(pend[i].req);
      return;
    }
  }
}

static void freed(void *arg)
{
  *(bool *)arg = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ccci_httpd_env env;
  struct ccci_httpd_sink sink = {take, NULL};
  struct ccci_httpd *h;
  struct ccci_hconn *conns[MAX_CONNS];
  unsigned nconns = 0, cur = 0;
  bool done = false;
  size_t i = 0;

  memset(&env, 0, sizeof(env));
  env.limits = ccci_httpd_limits_default();
  env.limits.max_head = 512;
  env.limits.max_conns = 3;
  env.limits.high_water = 256;
  env.body_limit = body_limit;
  env.handle = handle;
  npend = 0;
  answer_now = true;
  take_max = 1 << 20;
  h = ccci_httpd_new_fake(&env, &sink);
  conns[nconns++] = ccci_hconn_open(h);
  while (i < size) {
    uint8_t b = data[i++];
    if (b < 0x80) {
      size_t n = (size_t)b + 1;
      if (n > size - i)
        n = size - i;
      ccci_hconn_feed(conns[cur], data + i, n);
      i += n;
      continue;
    }
    switch ((b >> 4) & 7) {
    case 0:
      ccci_hconn_flush(conns[cur]);
      break;
    case 1:
      ccci_hconn_advance(h, (uint64_t)(b & 15) * 1000);
      break;
    case 2:
      ccci_hconn_eof(conns[cur], b & 1);
      break;
    case 3:
      serve_pending(b & 15);
      break;
    case 4:
      if (nconns < MAX_CONNS) {
        conns[nconns] = ccci_hconn_open(h);
        cur = nconns++;
      }
      break;
    case 5:
      cur = (b & 3) % nconns;
      break;
    case 6:
      take_max = (size_t)(b & 15) * 16;
      break;
    default:
      if (b & 8)
        answer_now = !answer_now;
      else
        stream_write(b & 7 ? (unsigned)(b & 7) * 9 : 64);
      break;
    }
  }
  /* Answer everything still pending (answers may release pipelined ones),
   * then stop: every connection must be freed. */
  answer_now = true;
  while (npend > 0)
    serve_pending(0);
  ccci_httpd_free(h, freed, &done);
  if (!done)
    abort();
  return 0;
}
