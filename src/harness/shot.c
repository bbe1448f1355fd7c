/* SCREENSHOT: Debian's headless chromium photographs a page of the app,
 * reaching it through harness.gateway like the harness's own checks. */
#include "ccci/harness/shot.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccci/core/util.h"
#include "ccci/harness/hcall.h"

/* How many lines of chromium's log a failure prints. */
#define SHOT_LOG_LINES 20
/* Room for chromium's argv (its words and the NULL). */
#define SHOT_ARGV_MAX 24
/* What chromium draws into: the width is what a test checks. */
#define SHOT_WINDOW "--window-size=1280,800"

static const unsigned char png_sig[8] = {0x89, 'P',  'N',  'G',
                                         '\r', '\n', 0x1a, '\n'};

/* Whether @p path is an executable regular file. */
static bool is_exe(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Whether @p cmd runs: a path (with a `/`) that is executable, or a name
 * found on PATH as execvp would look for it. */
static bool findable(const char *cmd)
{
  const char *path = getenv("PATH"), *p;
  if (strchr(cmd, '/') != NULL)
    return is_exe(cmd);
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  p = path;
  for (;;) {
    const char *end = strchr(p, ':');
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    char *full = n == 0 ? ccci_xasprintf("./%s", cmd)
                        : ccci_xasprintf("%.*s/%s", (int)n, p, cmd);
    bool ok = is_exe(full);
    free(full);
    if (ok)
      return true;
    if (end == NULL)
      return false;
    p = end + 1;
  }
}

static char *missing_why(const char *cmd)
{
  if (strcmp(cmd, "chromium") == 0)
    return ccci_xstrdup(
        "chromium not found (install Debian's chromium package)");
  return ccci_xasprintf("%s not found (harness.chromium; install Debian's "
                        "chromium package)",
                        cmd);
}

/* Whether @p path starts with the PNG signature. */
static bool is_png(const char *path)
{
  unsigned char head[sizeof(png_sig)];
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  do {
    n = read(fd, head, sizeof(head));
  } while (n < 0 && errno == EINTR);
  close(fd);
  return n == (ssize_t)sizeof(head) && memcmp(head, png_sig, sizeof(head)) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* The browser's profile: a fresh directory, so no state leaks between runs
 * and nothing is written under the harness user's home. */
static char *make_profile(void)
{
  const char *tmp = getenv("TMPDIR");
  char *dir;
  if (tmp == NULL || tmp[0] == '\0')
    tmp = "/tmp";
  dir = ccci_xasprintf("%s/ccci-chromium-XXXXXX", tmp);
  if (mkdtemp(dir) == NULL) {
    free(dir);
    return NULL;
  }
  return dir;
}

/* `MAP <domain> <host>:<port>` for --host-resolver-rules: chromium then
 * connects to the gateway for the app's name, keeping the name for SNI,
 * the certificate check and the Host header. NULL without a gateway. */
static char *resolver_rule(const struct ccci_shot *s)
{
  const char *hp = s->gateway;
  size_t n;
  if (hp == NULL || hp[0] == '\0')
    return NULL;
  if (strncmp(hp, "http://", 7) == 0)
    hp += 7;
  n = strlen(hp);
  if (n > 0 && hp[n - 1] == '/')
    n--;
  return ccci_xasprintf("--host-resolver-rules=MAP %s %.*s", s->domain, (int)n,
                        hp);
}

/* The reason chromium's log gives for a page it could not load
 * (`... Page load failed: net::ERR_CERT_AUTHORITY_INVALID`), as a new
 * string, or NULL. */
static char *page_error(const char *log)
{
  static const char key[] = "Page load failed: ";
  const char *p = log != NULL ? strstr(log, key) : NULL;
  size_t n;
  if (p == NULL)
    return NULL;
  p += sizeof(key) - 1;
  n = strcspn(p, "\r\n");
  return n > 0 ? ccci_xstrndup(p, n < 200 ? n : 200) : NULL;
}

/* Print the last lines of chromium's log that say something: headless
 * chromium without a D-Bus logs a dozen `dbus/` errors that mean nothing. */
static void print_log(const char *log)
{
  const char *lines[SHOT_LOG_LINES], *p;
  size_t lens[SHOT_LOG_LINES], n = 0, i;
  if (log == NULL)
    return;
  for (p = log; *p != '\0';) {
    size_t len = strcspn(p, "\n");
    if (len > 0 && memmem(p, len, "dbus/", 5) == NULL &&
        memmem(p, len, "D-Bus", 5) == NULL) {
      lines[n % SHOT_LOG_LINES] = p;
      lens[n % SHOT_LOG_LINES] = len;
      n++;
    }
    p += len;
    if (*p == '\n')
      p++;
  }
  for (i = n > SHOT_LOG_LINES ? n - SHOT_LOG_LINES : 0; i < n; i++)
    ccci_hcall_printf("chromium: %.*s\n", (int)lens[i % SHOT_LOG_LINES],
                      lines[i % SHOT_LOG_LINES]);
}

/* The allocated words of one shot (the env NULL-terminated). */
struct words {
  char *profile_arg, *png_arg, *rule_arg, *log_arg, *log, *env[3];
};

/* chromium's argv for @p s (at most SHOT_ARGV_MAX - 1 words). */
static void build_argv(const struct ccci_shot *s, const struct words *w,
                       char **argv)
{
  size_t n = 0;
  argv[n++] = (char *)s->chromium;
  argv[n++] = "--headless=new";
  argv[n++] = "--disable-gpu";
  argv[n++] = "--hide-scrollbars";
  argv[n++] = SHOT_WINDOW;
  argv[n++] = "--no-first-run";
  argv[n++] = "--no-default-browser-check";
  /* Its log goes to a file, read when no PNG came (stderr is withheld:
   * mostly D-Bus noise). */
  argv[n++] = "--enable-logging";
  argv[n++] = w->log_arg;
  argv[n++] = w->profile_arg;
  argv[n++] = w->png_arg;
  /* Chromium's sandbox refuses to start as root (a CI container, a root
   * harness); as any other user it stays on. */
  if (geteuid() == 0)
    argv[n++] = "--no-sandbox";
  if (s->insecure)
    argv[n++] = "--ignore-certificate-errors";
  if (w->rule_arg != NULL)
    argv[n++] = w->rule_arg;
  argv[n++] = (char *)s->url;
  argv[n] = NULL;
}

/* Why a run of chromium that ended as @p res made no screenshot: the page
 * load error of its log @p log when there is one. A new string. */
static char *failure_why(const struct ccci_shot *s,
                         const struct ccci_hcall_result *res, const char *log)
{
  char *perr = page_error(log), *why;
  if (perr != NULL) {
    why = ccci_xasprintf(
        "%s could not load %s: %s%s", s->chromium, s->url, perr,
        !s->insecure && strstr(perr, "ERR_CERT_") != NULL
            ? " (harness.gateway_insecure skips the certificate check)"
            : "");
    free(perr);
    return why;
  }
  if (!ccci_hcall_ok(res))
    return ccci_hcall_why(res, s->chromium);
  if (access(s->png, F_OK) == 0)
    return ccci_xasprintf("%s wrote %s, but it is not a PNG", s->chromium,
                          s->png);
  return ccci_xasprintf("%s exited without writing %s", s->chromium, s->png);
}

enum ccci_shot_end ccci_shot_take(const struct ccci_shot *s, char **why)
{
  enum ccci_shot_end end = CCCI_SHOT_FAILED;
  struct ccci_hcall_result res;
  struct ccci_hcall c;
  struct words w;
  char *profile = NULL, *argv[SHOT_ARGV_MAX], *log = NULL;
  int r;

  *why = NULL;
  memset(&res, 0, sizeof(res));
  memset(&w, 0, sizeof(w));
  if (!findable(s->chromium)) {
    *why = missing_why(s->chromium);
    return CCCI_SHOT_MISSING;
  }
  profile = make_profile();
  if (profile == NULL) {
    *why = ccci_xasprintf("cannot make chromium's profile directory: %s",
                          strerror(errno));
    return CCCI_SHOT_FAILED;
  }
  /* An old file must not pass for this screenshot. */
  if (unlink(s->png) < 0 && errno != ENOENT) {
    *why = ccci_xasprintf("cannot replace %s: %s", s->png, strerror(errno));
    goto out;
  }
  w.profile_arg = ccci_xasprintf("--user-data-dir=%s", profile);
  w.png_arg = ccci_xasprintf("--screenshot=%s", s->png);
  w.rule_arg = resolver_rule(s);
  w.log = ccci_xasprintf("%s/chromium.log", profile);
  w.log_arg = ccci_xasprintf("--log-file=%s", w.log);
  /* Its cache and config would go to $XDG_*_HOME (the user's home) even
   * with --user-data-dir: keep them in the profile. */
  w.env[0] = ccci_xasprintf("XDG_CONFIG_HOME=%s/config", profile);
  w.env[1] = ccci_xasprintf("XDG_CACHE_HOME=%s/cache", profile);
  build_argv(s, &w, argv);

  memset(&c, 0, sizeof(c));
  c.argv = argv;
  c.env = w.env;
  c.timeout_ms = s->timeout_ms;
  c.withhold = true;
  r = ccci_hcall_run(&c, &res);
  if (r < 0) {
    *why = ccci_xasprintf("cannot start chromium: %s", strerror(-r));
    goto out;
  }
  if (res.end == CCCI_HCALL_NOEXEC) {
    end = res.status == ENOENT ? CCCI_SHOT_MISSING : CCCI_SHOT_FAILED;
    *why = res.status == ENOENT ? missing_why(s->chromium)
                                : ccci_hcall_why(&res, s->chromium);
    goto out;
  }
  /* A PNG is a screenshot even when chromium then exits non-zero (it may
   * crash on its way out); one killed on its timeout or a stop is not. */
  if (res.end == CCCI_HCALL_EXITED && is_png(s->png)) {
    if (res.status != 0)
      ccci_hcall_printf("screenshot: %s exited with status %d after writing "
                        "%s\n",
                        s->chromium, res.status, s->png);
    end = CCCI_SHOT_TAKEN;
    goto out;
  }
  if (ccci_read_file(w.log, 1024 * 1024, &log, NULL) < 0)
    log = NULL;
  print_log(log);
  *why = failure_why(s, &res, log);
  /* Half a file is not a screenshot. */
  unlink(s->png);
out:
  ccci_hcall_result_free(&res);
  free(log);
  nftw(profile, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(profile);
  free(w.profile_arg);
  free(w.png_arg);
  free(w.rule_arg);
  free(w.log_arg);
  free(w.log);
  free(w.env[0]);
  free(w.env[1]);
  return end;
}
