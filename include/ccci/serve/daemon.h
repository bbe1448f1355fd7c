/* `ccci serve`: the daemon on one libuv loop. */
#ifndef CCCI_DAEMON_H
#define CCCI_DAEMON_H

#include "ccci/ctl/cli.h"

/**
 * Run the daemon until SIGINT or SIGTERM. @p config_path is the file given
 * with -c, or NULL for the default place (see ccci_config_default_path) and
 * else the embedded default. On SIGHUP the same file is read again by name.
 * Returns the process exit code: 0 after a clean stop, 1 when it cannot
 * start (bad config, another daemon, unusable socket path), each with a
 * message on stderr.
 */
int ccci_daemon_serve(const char *config_path);

/** `ccci serve [-c FILE]`: the command around ccci_daemon_serve. */
int ccci_cmd_serve(const struct ccci_cli *cli, int argc, char **argv);

#endif
