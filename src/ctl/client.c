/* The blocking client side of the control socket, for the CLI. */
#include "ccci/ctl/client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ccci/ctl/proto.h"

int ccci_client_connect(struct ccci_client *c, const char *path, char **err)
{
  struct sockaddr_un sa;
  int r;

  c->fd = -1;
  ccci_buf_init(&c->in, CCCI_PROTO_MAX_REPLY);
  c->head = 0;
  *err = NULL;
  if (strlen(path) >= sizeof(sa.sun_path)) {
    *err = ccci_xasprintf("socket path %s is too long for a Unix socket", path);
    return -ENAMETOOLONG;
  }
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    r = -errno;
    *err = ccci_xasprintf("socket(): %s", strerror(errno));
    return r;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    r = -errno;
    *err = ccci_xasprintf("cannot reach the daemon at %s: %s (is `ccci "
                          "serve` running? choose the socket with -s or "
                          "CCCI_SOCKET)",
                          path, strerror(errno));
    close(c->fd);
    c->fd = -1;
    return r;
  }
  return 0;
}

int ccci_client_send(struct ccci_client *c, const json_t *req, char **err)
{
  size_t len, off = 0;
  char *line = ccci_proto_encode(req, &len);
  int r = 0;

  *err = NULL;
  while (off < len) {
    ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = -errno;
      *err = ccci_xasprintf("cannot send to the daemon: %s", strerror(errno));
      break;
    }
    off += (size_t)n;
  }
  free(line);
  return r;
}

int ccci_client_recv(struct ccci_client *c, json_t **msg, int timeout_ms,
                     char **err)
{
  uint64_t deadline =
      timeout_ms >= 0 ? ccci_now_ms() + (uint64_t)timeout_ms : 0;
  char chunk[65536];

  *msg = NULL;
  *err = NULL;
  for (;;) {
    char *start = c->in.len > c->head ? c->in.data + c->head : NULL;
    char *nl = start != NULL ? memchr(start, '\n', c->in.len - c->head) : NULL;
    struct pollfd pfd;
    ssize_t n;
    int wait = -1;

    if (nl != NULL) {
      json_error_t je;
      size_t len = (size_t)(nl - start);
      /* Log lines may carry U+0000 (escaped). */
      json_t *j = json_loadb(start, len, JSON_ALLOW_NUL, &je);
      /* Taken lines are dropped before the next read, not one by one. */
      c->head += len + 1;
      if (!json_is_object(j)) {
        json_decref(j);
        *err = ccci_xasprintf("the daemon sent a line that is not a JSON "
                              "object");
        return -EPROTO;
      }
      *msg = j;
      return 0;
    }
    if (timeout_ms >= 0) {
      uint64_t now = ccci_now_ms();
      if (now >= deadline) {
        *err = ccci_xasprintf("the daemon did not answer within %d ms",
                              timeout_ms);
        return -ETIMEDOUT;
      }
      wait = (int)(deadline - now);
    }
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, wait) < 0) {
      if (errno == EINTR)
        continue;
      *err = ccci_xasprintf("poll(): %s", strerror(errno));
      return -errno;
    }
    if (pfd.revents == 0)
      continue;
    ccci_buf_consume(&c->in, c->head);
    c->head = 0;
    n = recv(c->fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *err = ccci_xasprintf("the daemon closed the connection%s%s",
                            n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
      return -ECONNRESET;
    }
    if (ccci_buf_append(&c->in, chunk, (size_t)n) < 0) {
      *err = ccci_xasprintf("the daemon sent a line over %d bytes",
                            CCCI_PROTO_MAX_REPLY);
      return -EPROTO;
    }
  }
}

bool ccci_client_pending(const struct ccci_client *c)
{
  return c->in.len > c->head &&
         memchr(c->in.data + c->head, '\n', c->in.len - c->head) != NULL;
}

void ccci_client_close(struct ccci_client *c)
{
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  ccci_buf_close(&c->in);
}
