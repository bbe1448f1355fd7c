/* The control socket: a Unix stream listener on the loop, one JSON request
 * per line, each answered by one handler. */
#include "ccci/ctl/ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ccci/core/list.h"
#include "ccci/core/log.h"
#include "ccci/ctl/proto.h"

struct ccci_ctl_call {
  struct client *client; /* NULL once the client is gone */
  void (*watch)(void *arg, bool gone);
  void *watch_arg;
};

json_t ccci_ctl_later;

struct client {
  uv_pipe_t pipe;
  struct ccci_ctl_call *call; /* a deferred request, or NULL */
  struct ccci_ctl *ctl;
  struct ccci_list node; /* in ctl->clients */
  struct ccci_ctl_peer peer;
  struct ccci_buf in;
  char rbuf[16384];
  size_t queued;   /* reply bytes not yet written */
  unsigned writes; /* writes in flight */
  bool reading;
  bool eof;
  bool closing; /* close once the writes in flight are done */
};

struct wreq {
  uv_write_t req;
  struct client *c;
  char *data;
  size_t len;
};

struct ccci_ctl {
  uv_pipe_t listener;
  char *path;
  ccci_ctl_handler fn;
  void *arg;
  struct ccci_list clients;
  struct ccci_ctl_counters counters;
  unsigned handles; /* the listener plus open clients */
  bool stopping;
};

static void ctl_maybe_free(struct ccci_ctl *ctl)
{
  if (ctl->stopping && ctl->handles == 0) {
    free(ctl->path);
    free(ctl);
  }
}

static void client_on_close(uv_handle_t *h)
{
  struct client *c = ccci_container_of(h, struct client, pipe);
  struct ccci_ctl *ctl = c->ctl;

  if (c->call != NULL) {
    struct ccci_ctl_call *call = c->call;
    call->client = NULL; /* its reply will be dropped */
    if (call->watch != NULL)
      call->watch(call->watch_arg, true);
  }
  ccci_list_remove(&c->node);
  ccci_buf_close(&c->in);
  free(c);
  ctl->counters.clients--;
  ctl->handles--;
  ctl_maybe_free(ctl);
}

static void client_close(struct client *c)
{
  if (uv_is_closing((uv_handle_t *)&c->pipe))
    return;
  c->closing = true;
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->reading = false;
  }
  /* Let the replies in flight reach the client first, unless we stop. */
  if (c->writes > 0 && !c->ctl->stopping)
    return;
  uv_close((uv_handle_t *)&c->pipe, client_on_close);
}

static void client_read_start(struct client *c);
static void client_process(struct client *c);

/* A client at EOF is closed once every request is answered and written. */
static void close_if_idle(struct client *c)
{
  if (c->eof && c->call == NULL && c->writes == 0 && c->in.len == 0)
    client_close(c);
}

static void on_write(uv_write_t *req, int status)
{
  struct wreq *w = ccci_container_of(req, struct wreq, req);
  struct client *c = w->c;

  c->writes--;
  c->queued -= w->len;
  free(w->data);
  free(w);
  if (status < 0 || c->closing) {
    if (status < 0 && status != UV_ECANCELED)
      ccci_debug("ctl", "client write failed: %s", uv_strerror(status));
    client_close(c);
    return;
  }
  if (c->call != NULL && c->call->watch != NULL &&
      c->queued < CCCI_CTL_STREAM_HIGH_WATER / 2) {
    c->call->watch(c->call->watch_arg, false);
    return;
  }
  if (c->queued < CCCI_CTL_CLIENT_HIGH_WATER / 2) {
    client_process(c);
    if (!c->eof)
      client_read_start(c);
  }
  close_if_idle(c);
}

/* Queue @p len bytes at @p data (taken) for the client. */
static int client_send_raw(struct client *c, char *data, size_t len)
{
  struct wreq *w;
  uv_buf_t buf;
  int r;

  if (uv_is_closing((uv_handle_t *)&c->pipe)) {
    free(data);
    return -EPIPE;
  }
  w = ccci_xmalloc(sizeof(*w));
  w->c = c;
  w->data = data;
  w->len = len;
  buf = uv_buf_init(w->data, (unsigned)w->len);
  r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_write);
  if (r < 0) {
    free(w->data);
    free(w);
    client_close(c);
    return -EPIPE;
  }
  c->writes++;
  c->queued += w->len;
  return 0;
}

static void client_send(struct client *c, json_t *msg)
{
  size_t len;
  char *data = ccci_proto_encode(msg, &len);
  json_decref(msg);
  (void)client_send_raw(c, data, len);
}

static json_t *dispatch(struct client *c, const char *line, size_t len)
{
  struct ccci_ctl *ctl = c->ctl;
  const char *name;
  json_t *req, *err, *reply;

  if (ccci_proto_parse_request(line, len, &req, &name, &err) < 0)
    return err;
  c->call = ccci_xcalloc(1, sizeof(*c->call));
  c->call->client = c;
  reply = ctl->fn(c->call, &c->peer, req, ctl->arg);
  json_decref(req);
  if (reply == CCCI_CTL_LATER)
    return reply;
  free(c->call);
  c->call = NULL;
  return reply;
}

static bool is_blank(const char *s, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

static void answer(struct client *c, const char *line, size_t len)
{
  json_t *reply;
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (is_blank(line, len))
    return;
  reply = dispatch(c, line, len);
  if (reply == CCCI_CTL_LATER)
    return;
  c->ctl->counters.requests++;
  if (!json_is_true(json_object_get(reply, "ok")))
    c->ctl->counters.errors++;
  client_send(c, reply);
}

/* Answer every complete line in the input buffer, pausing past the
 * high-water mark of queued replies. */
static void client_process(struct client *c)
{
  while (!c->closing && c->call == NULL &&
         c->queued < CCCI_CTL_CLIENT_HIGH_WATER && c->in.len > 0) {
    char *nl = memchr(c->in.data, '\n', c->in.len);
    size_t len;
    if (nl == NULL)
      break;
    len = (size_t)(nl - c->in.data);
    answer(c, c->in.data, len);
    ccci_buf_consume(&c->in, len + 1);
  }
  if (c->closing || c->call != NULL)
    return;
  if (c->in.len > CCCI_PROTO_MAX_REQUEST &&
      memchr(c->in.data, '\n', c->in.len) == NULL) {
    c->ctl->counters.too_large++;
    c->ctl->counters.errors++;
    client_send(c, ccci_proto_error(CCCI_E_TOO_LARGE,
                                    "request is larger than %d bytes",
                                    CCCI_PROTO_MAX_REQUEST));
    client_close(c);
    return;
  }
  /* At EOF, what is left is the last request even without its newline; a
   * half-written one gets its error like any other. */
  if (c->eof && c->queued < CCCI_CTL_CLIENT_HIGH_WATER && c->in.len > 0 &&
      memchr(c->in.data, '\n', c->in.len) == NULL) {
    answer(c, c->in.data, c->in.len);
    ccci_buf_consume(&c->in, c->in.len);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct client *c = ccci_container_of(h, struct client, pipe);
  (void)hint;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct client *c = ccci_container_of(s, struct client, pipe);
  (void)buf;

  if (n == 0)
    return;
  if (n < 0) {
    uv_read_stop(s);
    c->reading = false;
    c->eof = true;
    if (n != UV_EOF) {
      client_close(c);
      return;
    }
    client_process(c);
    close_if_idle(c); /* else after the replies still to come */
    return;
  }
  /* The buffer holds at most one request plus one read: it cannot fill. */
  if (ccci_buf_append(&c->in, c->rbuf, (size_t)n) < 0) {
    client_close(c);
    return;
  }
  client_process(c);
  if (!c->closing && c->queued >= CCCI_CTL_CLIENT_HIGH_WATER && c->reading) {
    uv_read_stop(s);
    c->reading = false;
  }
}

static void client_read_start(struct client *c)
{
  if (c->reading)
    return;
  if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
    c->reading = true;
  else
    client_close(c);
}

static void peer_creds(struct client *c)
{
  struct ucred uc;
  socklen_t len = sizeof(uc);
  uv_os_fd_t fd;

  c->peer.uid = (uid_t)-1;
  c->peer.gid = (gid_t)-1;
  c->peer.pid = 0;
  if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
    return;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
    c->peer.uid = uc.uid;
    c->peer.gid = uc.gid;
    c->peer.pid = uc.pid;
  }
}

static void on_connection(uv_stream_t *server, int status)
{
  struct ccci_ctl *ctl = ccci_container_of(server, struct ccci_ctl, listener);
  struct client *c;

  if (status < 0) {
    ccci_warn("ctl", "accept failed: %s", uv_strerror(status));
    return;
  }
  c = ccci_xcalloc(1, sizeof(*c));
  c->ctl = ctl;
  ccci_buf_init(&c->in, CCCI_PROTO_MAX_REQUEST + sizeof(c->rbuf) + 1);
  uv_pipe_init(server->loop, &c->pipe, 0);
  ccci_list_add_head(&ctl->clients, &c->node);
  ctl->handles++;
  ctl->counters.clients++;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
    client_close(c);
    return;
  }
  ctl->counters.accepted++;
  peer_creds(c);
  if (ctl->counters.clients > CCCI_CTL_MAX_CLIENTS) {
    ctl->counters.errors++;
    client_send(c,
                ccci_proto_error(CCCI_E_BUSY, "too many clients (at most %d)",
                                 CCCI_CTL_MAX_CLIENTS));
    client_close(c);
    return;
  }
  client_read_start(c);
}

void ccci_ctl_reply(struct ccci_ctl_call *call, json_t *reply)
{
  struct client *c = call->client;
  free(call);
  if (c == NULL) {
    json_decref(reply);
    return;
  }
  c->call = NULL;
  if (reply == NULL)
    reply = ccci_proto_error(CCCI_E_INTERNAL, "the op failed");
  c->ctl->counters.requests++;
  if (!json_is_true(json_object_get(reply, "ok")))
    c->ctl->counters.errors++;
  client_send(c, reply);
  /* Requests that came meanwhile are answered now, in order. */
  client_process(c);
  close_if_idle(c);
}

int ccci_ctl_stream_send(struct ccci_ctl_call *call, char *data, size_t len)
{
  if (call->client == NULL) {
    free(data);
    return -EPIPE;
  }
  return client_send_raw(call->client, data, len);
}

int ccci_ctl_stream_json(struct ccci_ctl_call *call, json_t *msg)
{
  size_t len;
  char *data = ccci_proto_encode(msg, &len);
  json_decref(msg);
  return ccci_ctl_stream_send(call, data, len);
}

size_t ccci_ctl_stream_queued(const struct ccci_ctl_call *call)
{
  return call->client != NULL ? call->client->queued : 0;
}

void ccci_ctl_stream_watch(struct ccci_ctl_call *call,
                           void (*cb)(void *arg, bool gone), void *arg)
{
  call->watch = cb;
  call->watch_arg = arg;
}

void ccci_ctl_stream_end(struct ccci_ctl_call *call)
{
  struct client *c = call->client;
  free(call);
  if (c == NULL)
    return;
  c->call = NULL;
  c->ctl->counters.requests++;
  ccci_buf_consume(&c->in, c->in.len); /* not answered after a stream */
  client_close(c);
}

int ccci_ctl_prepare_path(const char *path, char **err)
{
  struct sockaddr_un sa;
  struct stat st;
  char *dir;
  int fd, r;

  *err = NULL;
  if (strlen(path) >= sizeof(sa.sun_path)) {
    *err = ccci_xasprintf("socket path %s is %zu bytes long; a Unix socket "
                          "path must be shorter than %zu bytes (set 'socket' "
                          "to a shorter path)",
                          path, strlen(path), sizeof(sa.sun_path));
    return -ENAMETOOLONG;
  }
  dir = ccci_dirname(path);
  r = ccci_mkdir_p(dir, 0750);
  if (r < 0) {
    *err = ccci_xasprintf("cannot create the socket directory %s: %s", dir,
                          strerror(-r));
    free(dir);
    return r;
  }
  free(dir);
  if (lstat(path, &st) < 0) {
    if (errno == ENOENT)
      return 0;
    r = -errno;
    *err = ccci_xasprintf("cannot inspect %s: %s", path, strerror(errno));
    return r;
  }
  if (!S_ISSOCK(st.st_mode)) {
    *err = ccci_xasprintf("%s exists and is not a socket; remove it or set "
                          "'socket' to another path",
                          path);
    return -EEXIST;
  }
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r = -errno;
    *err = ccci_xasprintf("socket(): %s", strerror(errno));
    return r;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  if (r == 0 || errno == EAGAIN) {
    close(fd);
    *err = ccci_xasprintf("another process is answering on %s; is another "
                          "ccci serve running with a different state dir?",
                          path);
    return -EADDRINUSE;
  }
  r = errno;
  close(fd);
  if (r != ECONNREFUSED && r != ENOENT) {
    *err = ccci_xasprintf("cannot probe the socket %s: %s", path, strerror(r));
    return -r;
  }
  /* Nobody answers, and we hold the single-instance lock: it is stale. */
  if (unlink(path) < 0 && errno != ENOENT) {
    r = -errno;
    *err = ccci_xasprintf("cannot remove the stale socket %s: %s", path,
                          strerror(errno));
    return r;
  }
  ccci_info("ctl", "removed the stale socket %s", path);
  return 0;
}

int ccci_ctl_start(uv_loop_t *loop, const char *path, ccci_ctl_handler fn,
                   void *arg, struct ccci_ctl **out, char **err)
{
  struct ccci_ctl *ctl;
  int r;

  *out = NULL;
  r = ccci_ctl_prepare_path(path, err);
  if (r < 0)
    return r;
  ctl = ccci_xcalloc(1, sizeof(*ctl));
  ccci_list_init(&ctl->clients);
  ctl->path = ccci_xstrdup(path);
  ctl->fn = fn;
  ctl->arg = arg;
  uv_pipe_init(loop, &ctl->listener, 0);
  ctl->handles = 1;
  r = uv_pipe_bind(&ctl->listener, path);
  if (r == 0 && chmod(path, 0660) < 0)
    r = uv_translate_sys_error(errno);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&ctl->listener, 128, on_connection);
  if (r < 0) {
    *err = ccci_xasprintf("cannot listen on %s: %s", path, uv_strerror(r));
    ctl->stopping = true;
    ctl->path[0] = '\0';
    ccci_ctl_stop(ctl);
    return r;
  }
  *out = ctl;
  return 0;
}

void ccci_ctl_counters(const struct ccci_ctl *ctl,
                       struct ccci_ctl_counters *out)
{
  *out = ctl->counters;
}

static void listener_on_close(uv_handle_t *h)
{
  struct ccci_ctl *ctl = ccci_container_of(h, struct ccci_ctl, listener);
  ctl->handles--;
  ctl_maybe_free(ctl);
}

void ccci_ctl_stop(struct ccci_ctl *ctl)
{
  struct ccci_list *it, *nx;

  ctl->stopping = true;
  if (ctl->path[0] != '\0')
    unlink(ctl->path);
  ccci_list_foreach_safe(it, nx, &ctl->clients)
  {
    client_close(ccci_container_of(it, struct client, node));
  }
  uv_close((uv_handle_t *)&ctl->listener, listener_on_close);
}
