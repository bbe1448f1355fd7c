/* The environment contract (SPEC section 8, docs/harness-contract.md):
 * a run's domain name and the environment its harness and teardown get. */
#ifndef CCCI_ENV_H
#define CCCI_ENV_H

#include <stdint.h>

#include "ccci/core/config.h"
#include "ccci/runs/run.h"

/**
 * The domain of a run of @p recipe: `<label>-pr<N>.<suffix>` for a PR's
 * runs (they share the domain, and so wait for each other), else
 * `<label>-l<number>.<suffix>`; the label is the recipe's name lowercased,
 * other characters than [a-z0-9] made `-` (no leading, trailing or double
 * one; `r` when nothing is left), cut so the DNS label fits 63 bytes.
 * @p cfg gives harness.domain_suffix. Allocated.
 */
char *ccci_env_domain(const struct ccci_config *cfg, const char *recipe,
                      int64_t pr, uint64_t number);

/**
 * The environment of a run's harness or teardown: PATH, HOME, LANG,
 * LC_ALL, TZ, TMPDIR, USER and DOCKER_HOST from the daemon's own when
 * set, then harness.env, then the CCCI_* variables of run @p m in its run
 * dir @p dir with a deadline @p deadline_s from now, ABRA_DIR, the
 * harness's (CCCI_SERVER, CCCI_REPO and CCCI_CLONE_URL, empty for local
 * runs, CCCI_GIT_TOKEN_FILE, CCCI_ABRA_DIR_REAL, CCCI_OVERLAYS_DIR,
 * CCCI_GATEWAY, CCCI_GATEWAY_INSECURE `1`/`0`, and CCCI_CONFIG, the
 * absolute path of @p cfg's file, only when it came from one), and
 * CCCI_DAEMON_PID. CCCI_SERVER is the run's server (@p m's `server`, else
 * harness.server), its gateway that server's in @p cfg (harness.gateway
 * when it left the config); CCCI_SERVER_FILE is `<dir>/state/server`. A
 * NULL-terminated array of allocated `KEY=value` strings; free it with
 * ccci_env_free.
 */
char **ccci_env_build(const struct ccci_run_meta *m, const char *dir,
                      const struct ccci_config *cfg, uint64_t deadline_s);

/**
 * The environment of a probe of @p server: the daemon's PATH, HOME, ...
 * and harness.env as for a run, CCCI_SERVER, CCCI_CONFIG (when @p cfg came
 * from a file), CCCI_ABRA_DIR_REAL and ABRA_DIR (harness.abra_dir). Free
 * it with ccci_env_free.
 */
char **ccci_env_probe(const struct ccci_config *cfg, const char *server);

/** Free what ccci_env_build returned (NULL is fine). */
void ccci_env_free(char **env);

#endif
