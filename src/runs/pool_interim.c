/* INTERIM, to be dropped when the pool (owner P, src/runs/pool.c) is merged:
 * ccci_runs_servers and ccci_runs_server_drain over the configured servers
 * with zero counts, so that the `server` commands, ops, status and metrics
 * of branch i17-f build and can be tried before the pool exists. Drain
 * state is kept in memory only (not in servers.json). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/config.h"
#include "ccci/runs/runs.h"

/* The leading members of runs.c's struct ccci_runs, in its order: only the
 * configuration callback is read. Interim only (see the file comment). */
struct runs_head {
  uv_loop_t *loop;
  char *state_dir, *runs_dir, *instance, *self_exe;
  struct ccci_config *(*config)(void *arg);
  void *arg;
};

#define DRAINED_MAX 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *drained[DRAINED_MAX];
static size_t ndrained;

static struct ccci_config *config_of(struct ccci_runs *rs)
{
  const struct runs_head *h = (const struct runs_head *)(void *)rs;
  return h->config(h->arg);
}

static bool is_drained(const char *name)
{
  size_t i;
  for (i = 0; i < ndrained; i++)
    if (strcmp(drained[i], name) == 0)
      return true;
  return false;
}

json_t *ccci_runs_servers(struct ccci_runs *rs)
{
  struct ccci_config *cfg = config_of(rs);
  const struct ccci_server_conf *v;
  size_t n = ccci_config_servers(cfg, &v), i, k;
  json_t *a = json_array();

  pthread_mutex_lock(&lock);
  for (i = 0; i < n; i++) {
    json_t *labels = json_array();
    for (k = 0; k < v[i].labels.n; k++)
      json_array_append_new(labels, json_string(v[i].labels.v[k]));
    json_array_append_new(
        a, json_pack(
               "{s:s,s:I,s:i,s:i,s:b,s:b,s:b,s:o,s:s,s:o,s:i,s:i,s:i,s:i,s:i,"
               "s:n,s:n}",
               "name", v[i].name, "capacity", (json_int_t)v[i].capacity,
               "running", 0, "queued", 0, "healthy", 1, "drained",
               is_drained(v[i].name), "removed", 0, "labels", labels,
               "domain_suffix", v[i].domain_suffix, "gateway",
               v[i].gateway != NULL ? json_string(v[i].gateway) : json_null(),
               "connection_errors", 0, "connection_errors_total", 0,
               "runs_started", 0, "probes", 0, "probe_failures", 0,
               "next_probe_in_ms", "last_error"));
  }
  pthread_mutex_unlock(&lock);
  ccci_config_unref(cfg);
  return a;
}

int ccci_runs_server_drain(struct ccci_runs *rs, const char *name, bool drain,
                           char **err)
{
  struct ccci_config *cfg = config_of(rs);
  const struct ccci_server_conf *v;
  size_t n = ccci_config_servers(cfg, &v), i;
  struct ccci_buf names;
  int r = 0;

  *err = NULL;
  if (ccci_config_server(cfg, name) == NULL) {
    ccci_buf_init(&names, SIZE_MAX);
    for (i = 0; i < n && r == 0; i++)
      r = ccci_buf_printf(&names, "%s%s", i > 0 ? ", " : "", v[i].name);
    *err = ccci_xasprintf("no server '%.64s' in the pool; the servers: %s",
                          name, names.data != NULL ? names.data : "");
    ccci_buf_close(&names);
    ccci_config_unref(cfg);
    return -ENOENT;
  }
  ccci_config_unref(cfg);
  pthread_mutex_lock(&lock);
  if (drain && !is_drained(name) && ndrained < DRAINED_MAX)
    drained[ndrained++] = ccci_xstrdup(name);
  for (i = 0; !drain && i < ndrained; i++)
    if (strcmp(drained[i], name) == 0) {
      free(drained[i]);
      drained[i] = drained[--ndrained];
      break;
    }
  pthread_mutex_unlock(&lock);
  return 0;
}
