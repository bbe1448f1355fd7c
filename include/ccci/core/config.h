/* The service configuration: one YAML file read into an immutable struct. */
#ifndef CCCI_CONFIG_H
#define CCCI_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/keytab.h"
#include "ccci/core/util.h"

/** Largest configuration file accepted. */
#define CCCI_CONFIG_MAX_BYTES (1024 * 1024)
/** At most this many errors are reported for one file. */
#define CCCI_CONFIG_MAX_ERRORS CCCI_KEYTAB_MAX_ERRORS

/** When a changed key takes effect after SIGHUP. */
enum ccci_reload {
  CCCI_RELOAD_LIVE,     /**< at once */
  CCCI_RELOAD_NEXT_RUN, /**< for runs that start after the reload */
  CCCI_RELOAD_RESTART,  /**< only after the daemon restarts */
};

/** One swarm server of the pool (`servers:`, SPEC section 12). */
struct ccci_server_conf {
  char *name;          /**< the abra server (`abra app new --server`) */
  uint64_t capacity;   /**< runs at once on it */
  char *domain_suffix; /**< app domains on it: `<label>.<domain_suffix>` */
  char *gateway; /**< its Traefik, host:port or http://host:port; NULL: DNS */
  bool gateway_insecure;
  struct ccci_strlist labels; /**< matched by SERVER_LABELS */
};

/**
 * The effective configuration. Immutable once loaded and shared by reference
 * count: a reload builds a new one and swaps the pointer, so whoever holds
 * the old one keeps a consistent view. Durations are milliseconds.
 */
struct ccci_config {
  unsigned refs;
  char *source;   /**< the file it came from, or "<embedded>" */
  char *base_dir; /**< relative paths were resolved against this */

  char *state_dir;
  char *socket;
  char *secrets_dir;
  struct ccci_strlist secret_files;
  uint64_t min_secret_len;
  uint64_t capacity;
  uint64_t deadline_ms;
  uint64_t kill_grace_ms;
  uint64_t teardown_grace_ms;
  uint64_t drain_timeout_ms;
  uint64_t shutdown_grace_ms;
  uint64_t log_max_bytes;
  uint64_t min_free_bytes;
  struct {
    uint64_t max_age_ms;
    uint64_t max_bytes;
  } retention;
  struct {
    struct ccci_strlist command;
    struct ccci_strlist teardown_command;
    struct ccci_strlist probe_command; /**< argv of a server's probe */
    char *domain_suffix;
    char *user;
    struct ccci_strmap env;
    char *server;       /**< abra's server name, passed as CCCI_SERVER */
    char *abra_dir;     /**< the operator's abra state (resolved) */
    char *overlays_dir; /**< per-recipe recipe_meta.yml and hooks, or NULL */
    char *gateway;      /**< host:port or http://host:port; NULL: DNS */
    bool gateway_insecure;
    char *chromium;       /**< the browser for SCREENSHOT (command or path) */
    char *git_token_file; /**< for private recipe mirrors, or NULL */
    /** Command templates of each abra (and docker) call, argv lists with
     * `{domain}`-like placeholders the harness expands. */
    struct {
      struct ccci_strlist new;
      struct ccci_strlist secret_generate;
      struct ccci_strlist secret_insert;
      struct ccci_strlist deploy;
      struct ccci_strlist undeploy;
      struct ccci_strlist volume_remove;
      struct ccci_strlist secret_remove;
      struct ccci_strlist remove;
      struct ccci_strlist backup;
      struct ccci_strlist snapshots;
      struct ccci_strlist restore;
      struct ccci_strlist run;
      struct ccci_strlist services;
      struct ccci_strlist labels;
      struct ccci_strlist volumes;
      struct ccci_strlist secrets;
      struct ccci_strlist probe;
    } abra;
    /** Text in an abra or docker call's output that means the server could
     * not be reached (matched case-insensitively). */
    struct ccci_strlist connection_errors;
  } harness;
  struct {
    uint64_t interval_ms;
  } janitor;
  struct {
    char *url;
    char *token_file;
    struct ccci_strlist repos;
    uint64_t poll_interval_ms;
    uint64_t max_connections;
    struct ccci_strlist allowlist;
    uint64_t auth_cache_ms;
    char *status_context;
    char *webhook_secret_file;
  } forge;
  struct {
    char *listen;
    char *public_url;
  } http;
  /** `servers:` as written (n == 0: none, the implicit server). */
  struct {
    struct ccci_server_conf *v;
    size_t n;
  } servers;
  struct {
    uint64_t unhealthy_after; /**< connection errors in a row */
    uint64_t probe_min_ms, probe_max_ms, probe_timeout_ms;
  } pool;
  /** Without `servers:`, the one server of today: harness.server with
   * `capacity`, harness.domain_suffix, harness.gateway(_insecure), no
   * labels (copies, filled after the parse). */
  struct ccci_server_conf implicit_server;
};

/**
 * The servers runs are scheduled on: `servers:` when it is set, else the
 * one implicit server. Their count is returned, the array in @p out (owned
 * by @p cfg).
 */
size_t ccci_config_servers(const struct ccci_config *cfg,
                           const struct ccci_server_conf **out);

/** The server named @p name in ccci_config_servers, or NULL. */
const struct ccci_server_conf *ccci_config_server(const struct ccci_config *cfg,
                                                  const char *name);

/** Is @p s an abra server name (a DNS-like name, or `default`)? */
bool ccci_valid_server_name(const char *s);

/** Is @p s a server label (`[a-z0-9][a-z0-9._-]*`, at most 63 bytes)? */
bool ccci_valid_server_label(const char *s);

/**
 * Parse YAML @p text (of @p len bytes) named @p name in messages; relative
 * paths resolve against @p base_dir (NULL: the working directory). On success
 * returns 0 and a config with one reference in @p out. On failure returns
 * -EINVAL and, in @p errors, an allocated text of one error per line, each
 * `name:line:column: message` (1-based, at the offending key's first byte).
 * Keys not in the file take their defaults; nothing is required.
 */
int ccci_config_parse(const char *name, const char *base_dir, const char *text,
                      size_t len, struct ccci_config **out,
                      char **errors) CCCI_WUR;

/**
 * Read and parse the file @p path (see ccci_config_parse). A file that cannot
 * be read, or is over CCCI_CONFIG_MAX_BYTES, is an error naming the file.
 */
int ccci_config_load_file(const char *path, struct ccci_config **out,
                          char **errors) CCCI_WUR;

/**
 * The embedded default configuration: every key at its default. This is what
 * `ccci serve` runs on when no file is given and none is at the default place.
 */
struct ccci_config *ccci_config_default(void);

/**
 * The file a command uses when none is given: `$CCCI_CONFIG`, else
 * `$XDG_CONFIG_HOME/ccci/ccci.yml` (else `~/.config/ccci/ccci.yml`) when that
 * exists; NULL means the embedded default. The caller frees the result.
 */
char *ccci_config_default_path(void);

/** Take another reference. */
struct ccci_config *ccci_config_ref(struct ccci_config *cfg);
/** Drop a reference; the last one frees. NULL is allowed. */
void ccci_config_unref(struct ccci_config *cfg);

/**
 * The effective configuration as YAML that parses back to the same values.
 * Secret files appear as their paths, never their contents.
 */
char *ccci_config_dump(const struct ccci_config *cfg);
/** The effective configuration as a JSON object (new reference). */
json_t *ccci_config_to_json(const struct ccci_config *cfg);

/**
 * Call @p cb for every key whose value differs between @p a and @p b, with
 * the key's dotted name, its reload behaviour and whether this version acts
 * on it yet. Returns how many differ.
 */
size_t ccci_config_diff(const struct ccci_config *a,
                        const struct ccci_config *b,
                        void (*cb)(const char *key, enum ccci_reload reload,
                                   bool active, void *arg),
                        void *arg);

/** docs/config.md, generated from the key table. The caller frees it. */
char *ccci_config_docs(void);

#endif
