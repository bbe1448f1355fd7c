/* systemd readiness: the sd_notify datagram, without libsystemd. */
#include "ccci/core/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ccci_notify(const char *state)
{
  const char *path = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa;
  size_t len;
  socklen_t salen;
  int fd, r = 0;

  if (path == NULL || path[0] == '\0')
    return 0;
  len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
    return -EINVAL;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, len);
  if (path[0] == '@')
    sa.sun_path[0] = '\0';
  salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
             salen) < 0)
    r = -errno;
  close(fd);
  return r;
}
