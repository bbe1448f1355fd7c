/* `ccci serve`: the daemon on one libuv loop. */
#include "ccci/serve/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "build_info.h"
#include "ccci/core/config.h"
#include "ccci/core/log.h"
#include "ccci/core/notify.h"
#include "ccci/ctl/ctl.h"
#include "ccci/forge/forgebot.h"
#include "ccci/forge/httpc.h"
#include "ccci/harness/meta.h"
#include "ccci/runs/runs.h"
#include "ccci/serve/ctlops.h"
#include "ccci/serve/ops.h"
#include "ccci/serve/web.h"
#include "ccci/serve/tail.h"

struct daemon {
  uv_loop_t loop;
  uv_signal_t sig_int, sig_term, sig_hup;
  struct ccci_ctl *ctl;
  struct ccci_config *cfg;
  char *config_path; /* NULL: the embedded default */
  /* What this process runs on; a reload changes these only at restart. */
  char *state_dir;
  char *socket;
  int lock_fd;
  char instance[33];
  time_t started_wall;
  uint64_t started_ms;
  time_t config_loaded_at;
  uint64_t reloads;
  uint64_t reload_errors;
  bool stopping;
  /* A reload parses on the thread pool, then swaps on the loop. */
  uv_work_t reload_work;
  bool reload_busy;
  bool reload_again;
  struct ccci_config *reload_cfg;
  char *reload_errors_text;
  /* The runs, the tail engine and the forge bot, as the ops see them. */
  struct ccci_ops_env ops;
  char self_exe[4096];
};

static void make_instance_id(char out[33])
{
  unsigned char raw[16];
  size_t i;
  if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
    /* getrandom cannot fail for 16 bytes once the pool is ready; fall back
     * to something unique per process anyway. */
    uint64_t t = ccci_now_ms() ^ ((uint64_t)getpid() << 32);
    memcpy(raw, &t, sizeof(t));
    memcpy(raw + 8, &t, sizeof(t));
  }
  for (i = 0; i < sizeof(raw); i++)
    snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
    return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    ccci_warn("serve", "cannot raise RLIMIT_NOFILE: %s", strerror(errno));
}

/* Take the single-instance lock on the state dir; the file holds our pid. */
static int take_lock(struct daemon *d)
{
  char *path = ccci_xasprintf("%s/daemon.lock", d->state_dir);
  char pid[32];
  int fd, r = -1;

  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    ccci_error("serve", "cannot open the lock file %s: %s", path,
               strerror(errno));
    goto out;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    ssize_t n = errno == EWOULDBLOCK ? pread(fd, pid, sizeof(pid) - 1, 0) : -1;
    if (n > 0) {
      pid[n] = '\0';
      pid[strcspn(pid, "\n")] = '\0';
      ccci_error("serve",
                 "another ccci serve (pid %s) is running on the state dir %s",
                 pid, d->state_dir);
    } else {
      ccci_error("serve", "cannot lock %s: %s", path,
                 errno == EWOULDBLOCK ? "held by another ccci serve"
                                      : strerror(errno));
    }
    close(fd);
    goto out;
  }
  snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
    ccci_warn("serve", "cannot write the pid to %s: %s", path, strerror(errno));
  d->lock_fd = fd;
  r = 0;
out:
  free(path);
  return r;
}

/* ---- what the ops and the tail engine see ---- */

static void daemon_facts(void *arg, struct ccci_ops_daemon *out)
{
  struct daemon *d = arg;
  out->instance = d->instance;
  out->state_dir = d->state_dir;
  out->socket = d->socket;
  out->config = d->cfg->source;
  out->started_at = d->started_wall;
  out->config_loaded_at = d->config_loaded_at;
  out->uptime_s = (ccci_now_ms() - d->started_ms) / 1000;
  out->stopping = d->stopping;
  if (d->ctl != NULL)
    ccci_ctl_counters(d->ctl, &out->counters.ctl);
  out->counters.config_reloads = d->reloads;
  out->counters.config_reload_errors = d->reload_errors;
}

static int run_view(void *arg, const char *id, struct ccci_runs_view *out)
{
  struct daemon *d = arg;
  return ccci_runs_view(d->ops.runs, id, out);
}

static void on_run_change(void *arg, const char *id)
{
  struct daemon *d = arg;
  ccci_tail_run_changed(d->ops.tail, id);
}

/* ---- reload ---- */

static void log_errors(const char *text)
{
  const char *p = text;
  while (p != NULL && *p != '\0') {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    ccci_error("config", "%.*s", (int)n, p);
    p = nl ? nl + 1 : NULL;
  }
}

static void warn_restart_key(const char *key, enum ccci_reload reload,
                             bool active, void *arg)
{
  (void)active;
  (void)arg;
  if (reload == CCCI_RELOAD_RESTART)
    ccci_warn("config", "%s changed; it applies after a restart", key);
}

static void warn_inactive_key(const char *key, enum ccci_reload reload,
                              bool active, void *arg)
{
  (void)reload;
  (void)arg;
  if (!active)
    ccci_warn("config",
              "%s is set, but this version of ccci does not act on it yet",
              key);
}

static void warn_inactive(const struct ccci_config *cfg)
{
  struct ccci_config *def = ccci_config_default();
  ccci_config_diff(def, cfg, warn_inactive_key, NULL);
  ccci_config_unref(def);
}

static void reload_work(uv_work_t *w)
{
  struct daemon *d = ccci_container_of(w, struct daemon, reload_work);
  if (ccci_config_load_file(d->config_path, &d->reload_cfg,
                            &d->reload_errors_text) < 0)
    d->reload_cfg = NULL;
}

static void reload_start(struct daemon *d);

static void reload_done(uv_work_t *w, int status)
{
  struct daemon *d = ccci_container_of(w, struct daemon, reload_work);
  int r;

  d->reload_busy = false;
  if (status == UV_ECANCELED || d->stopping) {
    ccci_config_unref(d->reload_cfg);
    free(d->reload_errors_text);
  } else if (d->reload_cfg == NULL) {
    d->reload_errors++;
    log_errors(d->reload_errors_text);
    ccci_error("config",
               "reload of %s failed; keeping the previous "
               "configuration",
               d->config_path);
    free(d->reload_errors_text);
  } else {
    size_t changed =
        ccci_config_diff(d->cfg, d->reload_cfg, warn_restart_key, NULL);
    ccci_config_unref(d->cfg);
    d->cfg = d->reload_cfg;
    d->config_loaded_at = time(NULL);
    d->reloads++;
    ccci_info("config", "reloaded %s (%zu key%s changed)", d->config_path,
              changed, changed == 1 ? "" : "s");
    warn_inactive(d->cfg);
    if (d->ops.runs != NULL)
      ccci_runs_kick(d->ops.runs);
    if (d->ops.forge != NULL)
      ccci_forgebot_reload(d->ops.forge);
    if (d->ops.web != NULL)
      ccci_web_reload(d->ops.web, d->cfg);
  }
  d->reload_cfg = NULL;
  d->reload_errors_text = NULL;
  if (!d->stopping && status != UV_ECANCELED && d->ops.runs != NULL)
    ccci_runs_secrets_refresh(d->ops.runs);
  if (!d->stopping) {
    r = ccci_notify("READY=1");
    (void)r;
  }
  if (d->reload_again && !d->stopping) {
    d->reload_again = false;
    reload_start(d);
  }
}

static void reload_start(struct daemon *d)
{
  int r;
  if (d->config_path == NULL) {
    ccci_info("config", "running on the embedded default configuration; "
                        "nothing to reload");
    return;
  }
  if (d->reload_busy) {
    d->reload_again = true;
    return;
  }
  r = ccci_notify("RELOADING=1");
  (void)r;
  ccci_info("config", "reloading %s", d->config_path);
  r = uv_queue_work(&d->loop, &d->reload_work, reload_work, reload_done);
  if (r < 0) {
    ccci_error("config", "cannot start the reload: %s", uv_strerror(r));
    return;
  }
  d->reload_busy = true;
}

/* ---- signals and stop ---- */

/* Once no run is left: close the socket, the signals and the runs. */
static void stop_finish(void *arg)
{
  struct daemon *d = arg;
  uv_close((uv_handle_t *)&d->sig_int, NULL);
  uv_close((uv_handle_t *)&d->sig_term, NULL);
  uv_close((uv_handle_t *)&d->sig_hup, NULL);
  /* The front goes before the tail engine its streams read from. */
  if (d->ops.web != NULL)
    ccci_web_free(d->ops.web, NULL, NULL);
  d->ops.web = NULL;
  if (d->ops.tail != NULL) {
    ccci_runs_observe(d->ops.runs, NULL, NULL);
    ccci_tail_free(d->ops.tail);
  }
  d->ops.tail = NULL;
  if (d->ctl != NULL)
    ccci_ctl_stop(d->ctl);
  d->ctl = NULL;
  if (d->ops.runs != NULL)
    ccci_runs_close(d->ops.runs);
  d->ops.runs = NULL;
}

/* Stop admitting, give runs shutdown_grace, cancel the rest through the
 * funnel (they are queued again for the next start), then stop. */
static void stop(struct daemon *d, const char *why)
{
  int r;
  if (d->stopping) {
    ccci_info("serve", "already stopping (%s ignored)", why);
    return;
  }
  d->stopping = true;
  ccci_info("serve", "stopping (%s)", why);
  r = ccci_notify("STOPPING=1");
  (void)r;
  if (d->reload_busy)
    uv_cancel((uv_req_t *)&d->reload_work);
  /* The bot stops first: what it has not sent stays in the outbox, runs
   * finishing meanwhile are reported at the next start. */
  if (d->ops.forge != NULL)
    ccci_forgebot_free(d->ops.forge, NULL, NULL);
  d->ops.forge = NULL;
  /* Hook deliveries waiting for the bot get their 503 now, not at the end
   * of the stop. */
  if (d->ops.web != NULL)
    ccci_web_stopping(d->ops.web);
  if (d->ops.runs != NULL)
    ccci_runs_stop(d->ops.runs, d->cfg->shutdown_grace_ms, stop_finish, d);
  else
    stop_finish(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
  struct daemon *d = h->data;
  if (signum == SIGHUP) {
    /* The secrets are looked at again after the configuration (which
     * names them) is reloaded, or at once without a file to reload. */
    if (d->config_path == NULL && d->ops.runs != NULL)
      ccci_runs_secrets_refresh(d->ops.runs);
    reload_start(d);
  } else
    stop(d, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- start ---- */

static int load_config(struct daemon *d, const char *path)
{
  char *errors = NULL;
  d->config_path =
      path != NULL ? ccci_xstrdup(path) : ccci_config_default_path();
  if (d->config_path == NULL) {
    d->cfg = ccci_config_default();
    return 0;
  }
  if (ccci_config_load_file(d->config_path, &d->cfg, &errors) < 0) {
    log_errors(errors);
    free(errors);
    return -1;
  }
  return 0;
}

static struct ccci_config *current_config(void *arg)
{
  struct daemon *d = arg;
  return ccci_config_ref(d->cfg);
}

/* Where a run may go (SPEC section 12): recipe_meta.yml's SERVERS and
 * SERVER_LABELS, the operator's overlay winning key by key. On the thread
 * pool: nothing of the daemon is touched. */
static int run_placement(void *arg, const struct ccci_config *cfg,
                         const char *recipe, const char *own_path,
                         const char *own_text, size_t own_len,
                         struct ccci_strlist *servers,
                         struct ccci_strlist *labels, char **err)
{
  char *overlay = NULL;
  int r;
  (void)arg;
  /* A recipe name that could leave the overlays dir has no overlay. */
  if (cfg->harness.overlays_dir != NULL && recipe[0] != '\0' &&
      recipe[0] != '.' && strchr(recipe, '/') == NULL)
    overlay = ccci_xasprintf("%s/%s/recipe_meta.yml", cfg->harness.overlays_dir,
                             recipe);
  r = ccci_meta_placement(own_path, own_text, own_len, overlay, servers, labels,
                          err);
  free(overlay);
  return r;
}

static const char *public_url(void *arg)
{
  struct daemon *d = arg;
  return d->ops.web != NULL ? ccci_web_public_url(d->ops.web) : NULL;
}

static int start_runs(struct daemon *d)
{
  struct ccci_tail_env te;
  struct ccci_web_env we;
  struct ccci_runs_env env;
  size_t len = sizeof(d->self_exe);
  char *err = NULL;
  int r = uv_exepath(d->self_exe, &len);

  if (r < 0) {
    ccci_error("serve", "cannot find the ccci binary: %s", uv_strerror(r));
    return r;
  }
  env.loop = &d->loop;
  env.state_dir = d->state_dir;
  env.instance = d->instance;
  env.self_exe = d->self_exe;
  env.config = current_config;
  env.arg = d;
  env.placement = run_placement;
  r = ccci_runs_open(&env, &d->ops.runs, &err);
  if (r < 0) {
    ccci_error("serve", "%s", err);
    free(err);
    return r;
  }
  te.loop = &d->loop;
  te.view = run_view;
  te.arg = d;
  d->ops.tail = ccci_tail_new(&te);
  ccci_runs_observe(d->ops.runs, on_run_change, d);
  we.loop = &d->loop;
  we.ops = &d->ops;
  we.config = current_config;
  we.arg = d;
  r = ccci_web_new(&we, d->cfg, &d->ops.web, &err);
  if (r < 0) {
    ccci_error("serve", "%s", err);
    free(err);
    return r;
  }
  if (d->cfg->forge.url != NULL) {
    struct ccci_forgebot_env fe;
    fe.loop = &d->loop;
    fe.state_dir = d->state_dir;
    fe.runs = d->ops.runs;
    fe.config = current_config;
    fe.public_url = public_url;
    fe.arg = d;
    r = ccci_forgebot_new(&fe, &d->ops.forge, &err);
    if (r < 0) {
      ccci_error("serve", "%s", err);
      free(err);
      return r;
    }
  }
  return 0;
}

static int start(struct daemon *d)
{
  char *err = NULL;
  int r;

  r = ccci_mkdir_p(d->state_dir, 0750);
  if (r < 0) {
    ccci_error("serve", "cannot create the state dir %s: %s", d->state_dir,
               strerror(-r));
    return -1;
  }
  if (take_lock(d) < 0)
    return -1;
  r = uv_loop_init(&d->loop);
  if (r < 0) {
    ccci_error("serve", "cannot start the event loop: %s", uv_strerror(r));
    return -1;
  }
  uv_signal_init(&d->loop, &d->sig_int);
  uv_signal_init(&d->loop, &d->sig_term);
  uv_signal_init(&d->loop, &d->sig_hup);
  d->sig_int.data = d->sig_term.data = d->sig_hup.data = d;
  d->ops.daemon = daemon_facts;
  d->ops.arg = d;
  r = ccci_ctl_start(&d->loop, d->socket, ccci_ctlops_handle, &d->ops, &d->ctl,
                     &err);
  if (r < 0) {
    ccci_error("serve", "%s", err);
    free(err);
    d->stopping = true;
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    return -2;
  }
  uv_signal_start(&d->sig_int, on_signal, SIGINT);
  uv_signal_start(&d->sig_term, on_signal, SIGTERM);
  uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
  r = start_runs(d);
  if (r < 0) {
    /* What did open stops as on SIGTERM: the runs' work on the pool ends
     * before they are freed. */
    stop(d, "the start failed");
    return -2;
  }
  return 0;
}

int ccci_daemon_serve(const char *config_path)
{
  struct daemon d;
  int r, code = 1;

  memset(&d, 0, sizeof(d));
  d.lock_fd = -1;
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  /* Before any thread: curl's global state is not thread-safe to set up. */
  r = ccci_httpc_global_init();
  if (r < 0) {
    ccci_error("serve", "cannot initialise libcurl: %s", strerror(-r));
    return 1;
  }
  if (load_config(&d, config_path) < 0)
    goto out;
  d.state_dir = ccci_xstrdup(d.cfg->state_dir);
  d.socket = ccci_xstrdup(d.cfg->socket);
  make_instance_id(d.instance);
  /* Phases and jitter (poll timers, lock probes) differ between starts. */
  srand((unsigned)strtoul(d.instance + 24, NULL, 16));
  d.started_wall = time(NULL);
  d.config_loaded_at = d.started_wall;
  d.started_ms = ccci_now_ms();

  r = start(&d);
  if (r == -1)
    goto out;
  if (r == 0) {
    char *ready = ccci_xasprintf("READY=1\nMAINPID=%ld", (long)getpid());
    int nr;
    ccci_info("serve",
              "ccci %s serving: pid=%ld instance=%s state_dir=%s socket=%s "
              "config=%s",
              CCCI_VERSION, (long)getpid(), d.instance, d.state_dir, d.socket,
              d.cfg->source);
    warn_inactive(d.cfg);
    nr = ccci_notify(ready);
    if (nr < 0)
      ccci_warn("serve", "cannot notify $NOTIFY_SOCKET: %s", strerror(-nr));
    free(ready);
  }
  /* After a failed start the loop runs only to close what was opened. */
  uv_run(&d.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&d.loop) < 0) {
    ccci_error("serve", "the loop still had open handles at exit");
    r = -1;
  }
  if (r == 0) {
    ccci_info("serve", "stopped");
    code = 0;
  }
out:
  if (d.lock_fd >= 0)
    close(d.lock_fd);
  ccci_config_unref(d.cfg);
  free(d.config_path);
  free(d.state_dir);
  free(d.socket);
  ccci_httpc_global_cleanup();
  return code;
}

int ccci_cmd_serve(const struct ccci_cli *cli, int argc, char **argv)
{
  int r = ccci_cli_no_args("serve", argc, argv);
  if (r != 0)
    return r;
  if (cli->json)
    return ccci_cli_usage_error("'serve' has no --json output");
  if (cli->socket != NULL)
    return ccci_cli_usage_error("'serve' takes its socket from the config "
                                "(key 'socket'), not -s");
  return ccci_daemon_serve(cli->config);
}
