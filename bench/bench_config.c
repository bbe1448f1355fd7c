/* Benchmark: config parse time of an empty and of a full file, and the
 * ratio between them (the fixed cost of defaults vs. the per-key cost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/config.h"

static const char full[] =
    "state_dir: /var/lib/ccci\n"
    "socket: /run/ccci/ccci.sock\n"
    "secrets_dir: /run/secrets\n"
    "secret_files: [/etc/ccci/a, /etc/ccci/b]\n"
    "min_secret_len: 8\ncapacity: 4\ndeadline: 90m\nkill_grace: 30s\n"
    "teardown_grace: 10m\ndrain_timeout: 5s\nshutdown_grace: 0s\n"
    "log_max_bytes: 256MiB\nmin_free_bytes: 1GiB\n"
    "retention:\n  max_age: 30d\n  max_bytes: 20GiB\n"
    "harness:\n  command: [ccci, harness]\n"
    "  teardown_command: [ccci, harness, --teardown]\n"
    "  domain_suffix: ci.example.org\n  env: {ABRA_DEBUG: '0'}\n"
    "janitor:\n  interval: 5m\n"
    "forge:\n  url: https://git.coopcloud.tech\n"
    "  token_file: /run/secrets/forge-token\n"
    "  repos: [coop-cloud/traefik, coop-cloud/keycloak, coop-cloud/nextcloud]\n"
    "  poll_interval: 30s\n  max_connections: 16\n  allowlist: [alice]\n"
    "  auth_cache: 10m\n  status_context: ccci/testme\n"
    "http:\n  listen: 127.0.0.1:8080\n  public_url: https://ci.example.org\n";

static double bench(const char *text, int n)
{
  uint64_t t0 = ccci_now_ms();
  int i;
  for (i = 0; i < n; i++) {
    struct ccci_config *cfg;
    char *errors;
    if (ccci_config_parse("bench.yml", "/", text, strlen(text), &cfg, &errors) <
        0) {
      fprintf(stderr, "bench_config: %s", errors);
      exit(1);
    }
    ccci_config_unref(cfg);
  }
  return (double)(ccci_now_ms() - t0) * 1000.0 / n;
}

int main(int argc, char **argv)
{
  int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 20000;
  double empty, whole;

  if (n <= 0)
    n = 20000;
  bench("", 100); /* warm up: the defaults are parsed once */
  empty = bench("", n);
  whole = bench(full, n);
  printf("config parse, %d iterations\n", n);
  printf("  empty file         %8.2f us/parse\n", empty);
  printf("  full file (%zu B) %8.2f us/parse\n", sizeof(full) - 1, whole);
  printf("  ratio full/empty   %8.2f\n", whole / empty);
  return 0;
}
