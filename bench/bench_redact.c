/* Benchmark: streaming secret redaction throughput against plain copies. */
/*   bench_redact [MiB]
 * Generates a deterministic CI-like log (default 256 MiB) holding one secret
 * occurrence (raw, JSON-escaped, URL-encoded or base64 at a random
 * alignment) about every 10 KiB, and feeds it through the redactor in 4 KiB
 * and 64 KiB writes for sets of 1 to 10,000 secrets. Prints set build time,
 * memory and pattern counts, GB/s, an adversarial case, a pipe and a memcpy
 * baseline, the ratios between them, and PASS/MISS against the targets. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ccci/core/util.h"
#include "ccci/logs/redact.h"

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)
#define CHUNK_SMALL (4 * KIB)
#define CHUNK_BIG (64 * KIB)
/* The secret pool; the set of n secrets is its first n. */
#define NPOOL 10000
#define SECRET_MIN 20
#define SECRET_MAX 40
/* No generated line is longer than this (the log buffer's slack). */
#define LINE_MAX_BYTES (64 * KIB)
#define ADV_BYTES (32 * MIB)
#define ADV_LEN 64
/* The targets printed with PASS or MISS. */
#define TARGET_GBS 1.0
#define TARGET_ADV_GBS 0.5
#define TARGET_MEM (16 * MIB)
/* Each timed case is run this many times; the best run counts. */
#define REPS 3

static const size_t set_sizes[] = {1, 10, 100, 1000, 10000};
#define CHECK_SET 1000

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
  fprintf(stderr, "bench_redact: %s: %s\n", what, strerror(err));
  exit(1);
}

/* ---- deterministic PRNG (splitmix64) ---- */

static uint64_t rnd(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint32_t rnd_below(uint64_t *s, uint32_t n)
{
  return (uint32_t)(((rnd(s) >> 32) * n) >> 32);
}

/* ---- secrets ---- */

struct pool {
  unsigned char v[NPOOL][SECRET_MAX];
  size_t len[NPOOL];
};

static void make_pool(struct pool *p, uint64_t seed)
{
  static const char alnum[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  static const char sym[] = "-_./+=";
  size_t i, j;

  for (i = 0; i < NPOOL; i++) {
    p->len[i] = SECRET_MIN + rnd_below(&seed, SECRET_MAX - SECRET_MIN + 1);
    for (j = 0; j < p->len[i]; j++) {
      /* About one character in twelve is a symbol. */
      if (rnd_below(&seed, 12) == 0)
        p->v[i][j] = (unsigned char)sym[rnd_below(&seed, sizeof(sym) - 1)];
      else
        p->v[i][j] = (unsigned char)alnum[rnd_below(&seed, sizeof(alnum) - 1)];
    }
  }
}

/* ---- the log generator ---- */

struct gen {
  unsigned char *p;
  size_t len, cap, size;
  uint64_t rng;
  uint64_t usec; /* simulated clock */
  unsigned step; /* docker build step */
  const struct pool *pool;
  size_t nset;
  size_t next_secret;
  size_t lines, occurrences, long_lines;
};

static void put(struct gen *g, const void *s, size_t n)
{
  if (g->len + n > g->cap) {
    fprintf(stderr, "bench_redact: generated line too long\n");
    exit(1);
  }
  memcpy(g->p + g->len, s, n);
  g->len += n;
}

static void put_s(struct gen *g, const char *s)
{
  put(g, s, strlen(s));
}

static void pick(struct gen *g, const char *const *list, size_t n)
{
  put_s(g, list[rnd_below(&g->rng, (uint32_t)n)]);
}

#define PICK(g, list) pick((g), (list), CCCI_ARRAY_LEN(list))

static void put_dec(struct gen *g, uint64_t v, unsigned width)
{
  char tmp[24];
  unsigned n = 0;
  do {
    tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < sizeof(tmp));
  while (n < width && n < sizeof(tmp))
    tmp[sizeof(tmp) - 1 - n++] = '0';
  put(g, tmp + sizeof(tmp) - n, n);
}

static void put_rand(struct gen *g, const char *alpha, size_t n)
{
  size_t alen = strlen(alpha), i;
  if (g->len + n > g->cap) {
    fprintf(stderr, "bench_redact: generated line too long\n");
    exit(1);
  }
  for (i = 0; i < n; i++)
    g->p[g->len++] = (unsigned char)alpha[rnd_below(&g->rng, (uint32_t)alen)];
}

static void put_hex(struct gen *g, size_t n)
{
  put_rand(g, "0123456789abcdef", n);
}

static void put_ts(struct gen *g)
{
  uint64_t us = g->usec, s = us / 1000000;
  g->usec += 1 + rnd_below(&g->rng, 20000);
  put_s(g, "2026-11-24T");
  put_dec(g, (s / 3600 + 8) % 24, 2);
  put_s(g, ":");
  put_dec(g, s / 60 % 60, 2);
  put_s(g, ":");
  put_dec(g, s % 60, 2);
  put_s(g, ".");
  put_dec(g, us % 1000000, 6);
  put_s(g, "Z ");
}

static const char *const apps[] = {
    "traefik",      "keycloak",  "nextcloud", "gitea",    "wordpress",
    "authentik",    "hedgedoc",  "outline",   "n8n",      "matrix-synapse",
    "lasuite-docs", "discourse", "mailu",     "peertube", "mastodon"};
static const char *const pkgs[] = {"ca-certificates",
                                   "curl",
                                   "libssl3",
                                   "openssl",
                                   "python3-yaml",
                                   "libpq5",
                                   "tzdata",
                                   "git",
                                   "gnupg",
                                   "libc6",
                                   "libcurl4",
                                   "netbase",
                                   "postgresql-client",
                                   "libxml2",
                                   "zlib1g",
                                   "procps"};
static const char *const words[] = {
    "config", "handler", "server", "client", "util",   "models",
    "views",  "auth",    "cache",  "store",  "worker", "session",
    "router", "schema",  "queue",  "export", "import", "migrate"};
static const char *const abra_msgs[] = {
    "checking that the app is not already deployed",
    "chaos mode off, checked out the latest recipe version",
    "running post-deploy commands",
    "no healthcheck configured, falling back to container state",
    "all services converged",
    "removing stale secrets",
    "generating secrets (length 32, charset alnum)",
    "reading .env from ~/.abra/servers/ci.example.org"};
static const char *const json_msgs[] = {"request completed",
                                        "migration applied",
                                        "worker started",
                                        "cache miss",
                                        "listening",
                                        "health check ok",
                                        "connection reset by peer, retrying",
                                        "scheduled job finished"};

static void line_build(struct gen *g)
{
  static const char *const steps[] = {
      "RUN apt-get update && apt-get install -y --no-install-recommends curl",
      "COPY --from=builder /src/dist /usr/share/app",
      "RUN pip install --no-cache-dir -r requirements.txt", "WORKDIR /app",
      "RUN npm ci --omit=dev"};
  uint32_t k = rnd_below(&g->rng, 6);

  put_s(g, "#");
  put_dec(g, g->step % 40, 0);
  put_s(g, " ");
  put_dec(g, rnd_below(&g->rng, 300), 0);
  put_s(g, ".");
  put_dec(g, rnd_below(&g->rng, 1000), 3);
  put_s(g, " ");
  if (k == 0) {
    g->step++;
    put_s(g, "[build ");
    put_dec(g, g->step % 9 + 1, 0);
    put_s(g, "/9] ");
    PICK(g, steps);
  } else if (k <= 2) {
    put_s(g, "Get:");
    put_dec(g, rnd_below(&g->rng, 120) + 1, 0);
    put_s(g, " http://deb.debian.org/debian bookworm/main amd64 ");
    PICK(g, pkgs);
    put_s(g, " amd64 ");
    put_dec(g, rnd_below(&g->rng, 4), 0);
    put_s(g, ".");
    put_dec(g, rnd_below(&g->rng, 30), 0);
    put_s(g, "-");
    put_dec(g, rnd_below(&g->rng, 9) + 1, 0);
    put_s(g, " [");
    put_dec(g, rnd_below(&g->rng, 4000) + 1, 0);
    put_s(g, " kB]");
  } else if (k <= 4) {
    put_s(g, k == 3 ? "Setting up " : "Unpacking ");
    PICK(g, pkgs);
    put_s(g, " (");
    put_dec(g, rnd_below(&g->rng, 4), 0);
    put_s(g, ".");
    put_dec(g, rnd_below(&g->rng, 30), 0);
    put_s(g, "+deb12u");
    put_dec(g, rnd_below(&g->rng, 9) + 1, 0);
    put_s(g, ") ...");
  } else {
    put_s(g, "writing image sha256:");
    put_hex(g, 64);
    put_s(g, " done");
  }
}

static void line_pull(struct gen *g)
{
  uint32_t k = rnd_below(&g->rng, 5), i, w;
  if (k == 0) {
    put_hex(g, 12);
    put_s(g, ": Pull complete");
  } else if (k <= 2) {
    /* Docker's progress: cursor up, erase line, bar. */
    put_s(g, "\x1b[1A\x1b[2K");
    put_hex(g, 12);
    put_s(g, ": Downloading [");
    w = rnd_below(&g->rng, 50);
    for (i = 0; i < 50; i++)
      put_s(g, i < w ? "=" : i == w ? ">" : " ");
    put_s(g, "]  ");
    put_dec(g, rnd_below(&g->rng, 45), 0);
    put_s(g, ".");
    put_dec(g, rnd_below(&g->rng, 10), 0);
    put_s(g, "MB/45.6MB\x1b[1B");
  } else if (k == 3) {
    put_s(g, "Digest: sha256:");
    put_hex(g, 64);
  } else {
    put_s(g, "Status: Downloaded newer image for git.coopcloud.tech/"
             "coop-cloud/");
    PICK(g, apps);
    put_s(g, ":");
    put_dec(g, rnd_below(&g->rng, 5), 0);
    put_s(g, ".");
    put_dec(g, rnd_below(&g->rng, 20), 0);
    put_s(g, ".");
    put_dec(g, rnd_below(&g->rng, 10), 0);
  }
}

static void line_abra(struct gen *g)
{
  uint32_t k = rnd_below(&g->rng, 5);
  put_s(g, k == 4 ? "\x1b[33mWARN\x1b[0m[" : "\x1b[36mINFO\x1b[0m[");
  put_dec(g, g->usec / 1000000 % 10000, 4);
  put_s(g, "] ");
  if (k == 0) {
    put_s(g, "deploying ");
    PICK(g, apps);
    put_s(g, " on ci-");
    put_hex(g, 6);
    put_s(g, ".ci.example.org");
  } else if (k == 1) {
    put_s(g, "waiting for ");
    PICK(g, apps);
    put_s(g, "_app to converge (");
    put_dec(g, rnd_below(&g->rng, 3), 0);
    put_s(g, "/2 replicas)");
  } else if (k == 2) {
    put_s(g, "image git.coopcloud.tech/coop-cloud/");
    PICK(g, apps);
    put_s(g, "@sha256:");
    put_hex(g, 64);
  } else {
    PICK(g, abra_msgs);
  }
}

static void line_path(struct gen *g)
{
  if (rnd_below(&g->rng, 2) == 0) {
    put_s(g, "  /var/lib/docker/overlay2/");
    put_hex(g, 64);
    put_s(g, "/diff/usr/lib/python3/dist-packages/");
    PICK(g, words);
    put_s(g, "/");
    PICK(g, words);
    put_s(g, ".py");
  } else {
    put_s(g, "/home/runner/work/");
    PICK(g, apps);
    put_s(g, "/tests/");
    PICK(g, words);
    put_s(g, "_test.go:");
    put_dec(g, rnd_below(&g->rng, 900) + 1, 0);
    put_s(g, ": expected \"");
    PICK(g, words);
    put_s(g, "\", got \"");
    PICK(g, words);
    put_s(g, "\"");
  }
}

static void line_json(struct gen *g)
{
  static const char *const levels[] = {"info", "info", "debug", "warn",
                                       "error"};
  put_s(g, "{\"time\":\"2026-11-24T");
  put_dec(g, g->usec / 3600000000u % 24, 2);
  put_s(g, ":");
  put_dec(g, g->usec / 60000000u % 60, 2);
  put_s(g, ":");
  put_dec(g, g->usec / 1000000u % 60, 2);
  put_s(g, "Z\",\"level\":\"");
  PICK(g, levels);
  put_s(g, "\",\"msg\":\"");
  PICK(g, json_msgs);
  put_s(g, "\",\"service\":\"");
  PICK(g, apps);
  put_s(g, "_app\",\"task\":\"");
  put_rand(g, "abcdefghijklmnopqrstuvwxyz0123456789", 25);
  put_s(g, "\",\"duration_ms\":");
  put_dec(g, rnd_below(&g->rng, 5000), 0);
  put_s(g, "}");
}

static void line_test(struct gen *g)
{
  uint32_t k = rnd_below(&g->rng, 4);
  if (k == 0) {
    put_s(g, "\x1b[32m\xe2\x9c\x93\x1b[0m ");
    PICK(g, words);
    put_s(g, " ");
    PICK(g, words);
    put_s(g, " \x1b[90m(");
    put_dec(g, rnd_below(&g->rng, 900), 0);
    put_s(g, "ms)\x1b[0m");
  } else if (k == 1) {
    put_s(g, "--- PASS: Test");
    PICK(g, words);
    put_s(g, " (0.");
    put_dec(g, rnd_below(&g->rng, 100), 2);
    put_s(g, "s)");
  } else if (k == 2) {
    put_s(g, "ok  \tcoopcloud.tech/abra/pkg/");
    PICK(g, words);
    put_s(g, "\t");
    put_dec(g, rnd_below(&g->rng, 10), 0);
    put_s(g, ".");
    put_dec(g, rnd_below(&g->rng, 1000), 3);
    put_s(g, "s");
  } else {
    put_s(g, "\x1b[1;31mFAIL\x1b[0m ");
    PICK(g, words);
    put_s(g, ": timeout after 30s waiting for https://ci-");
    put_hex(g, 6);
    put_s(g, ".ci.example.org/healthz");
  }
}

/* An occasional long line: a minified JSON inventory or a progress bar
 * redrawn with carriage returns. */
static void line_long(struct gen *g)
{
  size_t want = 2 * KIB + rnd_below(&g->rng, 14 * KIB), start = g->len;
  g->long_lines++;
  if (rnd_below(&g->rng, 2) == 0) {
    put_s(g, "[");
    while (g->len - start < want) {
      put_s(g, "{\"id\":\"sha256:");
      put_hex(g, 64);
      put_s(g, "\",\"size\":");
      put_dec(g, rnd_below(&g->rng, 1u << 30), 0);
      put_s(g, "},");
    }
    put_s(g, "{}]");
  } else {
    unsigned pct = 0;
    while (g->len - start < want) {
      unsigned i;
      put_s(g, "\r");
      put_dec(g, pct, 3);
      put_s(g, "% |");
      for (i = 0; i < 40; i++)
        put_s(g, i < pct * 40 / 100 ? "#" : " ");
      put_s(g, "| ");
      put_dec(g, pct * 1234, 0);
      put_s(g, "/123400");
      pct = pct < 100 ? pct + 1 : 0;
    }
  }
}

/* ---- secret forms, encoded here independently of the redactor ---- */

static void put_json(struct gen *g, const unsigned char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    char esc[6] = {'\\', 'u', '0', '0', hex[s[i] >> 4], hex[s[i] & 15]};
    if (s[i] == '"' || s[i] == '\\') {
      put(g, esc, 1);
      put(g, &s[i], 1);
    } else if (s[i] == '\n') {
      put_s(g, "\\n");
    } else if (s[i] < 0x20) {
      put(g, esc, 6);
    } else {
      put(g, &s[i], 1);
    }
  }
}

static void put_url(struct gen *g, const unsigned char *s, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      put(g, &c, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      put(g, e, 3);
    }
  }
}

/* Base64 of @p s (standard with padding, or base64url without). */
static void put_b64(struct gen *g, const unsigned char *s, size_t n, int url)
{
  const char *alpha =
      url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i;
  for (i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    char q[4];
    if (i + 1 < n)
      v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < n)
      v |= s[i + 2];
    q[0] = alpha[v >> 18];
    q[1] = alpha[(v >> 12) & 63];
    q[2] = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
    q[3] = i + 2 < n ? alpha[v & 63] : '=';
    put(g, q, url && i + 2 >= n ? (i + 1 < n ? 3 : 2) : 4);
  }
}

/* One secret of the set in a random form; counted when it ends inside the
 * log (the last line is cut at the log size). */
static void line_secret(struct gen *g)
{
  static const char *const raw_pre[] = {
      "export API_TOKEN=", "+ docker login -u ci-bot -p ",
      "  DB_PASSWORD: ", "Authorization: Bearer "};
  size_t idx = rnd_below(&g->rng, (uint32_t)g->nset);
  const unsigned char *s = g->pool->v[idx];
  size_t n = g->pool->len[idx];
  uint32_t form = rnd_below(&g->rng, 4);

  if (form == 0) {
    PICK(g, raw_pre);
    put(g, s, n);
  } else if (form == 1) {
    put_s(g, "{\"Env\":[{\"name\":\"SECRET_KEY\",\"value\":\"");
    put_json(g, s, n);
    put_s(g, "\"}]}");
  } else if (form == 2) {
    put_s(g, "+ git clone https://ci-bot:");
    put_url(g, s, n);
    put_s(g, "@git.coopcloud.tech/coop-cloud/");
    PICK(g, apps);
    put_s(g, ".git");
  } else {
    /* Random bytes before and after put the secret at any alignment. */
    unsigned char buf[8 + SECRET_MAX + 8];
    size_t pre = rnd_below(&g->rng, 6), post = rnd_below(&g->rng, 8), i;
    int url = (int)rnd_below(&g->rng, 2);
    for (i = 0; i < pre; i++)
      buf[i] = (unsigned char)rnd(&g->rng);
    if (rnd_below(&g->rng, 2) == 0) {
      memcpy(buf, "ci-bot:", 7);
      pre = 7;
      post = 0;
      url = 0;
      put_s(g, "Authorization: Basic ");
    } else {
      put_s(g, "  .dockerconfigjson: ");
    }
    memcpy(buf + pre, s, n);
    for (i = 0; i < post; i++)
      buf[pre + n + i] = (unsigned char)rnd(&g->rng);
    put_b64(g, buf, pre + n + post, url);
  }
  if (g->len <= g->size)
    g->occurrences++;
}

/* Fill g->p with exactly g->size bytes of log. */
static void generate(struct gen *g)
{
  g->len = g->lines = g->occurrences = g->long_lines = 0;
  g->usec = 0;
  g->step = 0;
  g->next_secret = 3 * KIB + rnd_below(&g->rng, 10 * KIB);
  while (g->len < g->size) {
    uint32_t k = rnd_below(&g->rng, 1000);
    put_ts(g);
    if (g->len >= g->next_secret) {
      line_secret(g);
      g->next_secret = g->len + 3 * KIB + rnd_below(&g->rng, 10 * KIB);
    } else if (k < 8) {
      line_long(g);
    } else if (k < 300) {
      line_build(g);
    } else if (k < 480) {
      line_pull(g);
    } else if (k < 650) {
      line_abra(g);
    } else if (k < 750) {
      line_path(g);
    } else if (k < 880) {
      line_json(g);
    } else {
      line_test(g);
    }
    put_s(g, rnd_below(&g->rng, 50) == 0 ? "\r\n" : "\n");
    g->lines++;
  }
  g->len = g->size;
}

/* ---- the check: raw secrets and mask runs in the output ---- */

#define IDX_BITS 22

struct key {
  uint64_t k;
  size_t i;
};

static int key_cmp(const void *a, const void *b)
{
  const struct key *x = a, *y = b;
  return x->k < y->k ? -1 : x->k > y->k;
}

static uint32_t key_hash(uint64_t k)
{
  return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> (64 - IDX_BITS));
}

/* How many times a raw secret of the first @p nset of @p pool occurs in
 * @p p: an 8-byte-prefix filter, then a sorted prefix table. */
static size_t count_raw(const unsigned char *p, size_t n,
                        const struct pool *pool, size_t nset)
{
  uint64_t *bits = ccci_xcalloc((size_t)1 << (IDX_BITS - 6), sizeof(*bits));
  struct key *keys = ccci_xcalloc(nset, sizeof(*keys));
  size_t i, pos, hits = 0;

  for (i = 0; i < nset; i++) {
    uint32_t h;
    memcpy(&keys[i].k, pool->v[i], 8);
    keys[i].i = i;
    h = key_hash(keys[i].k);
    bits[h >> 6] |= (uint64_t)1 << (h & 63);
  }
  qsort(keys, nset, sizeof(*keys), key_cmp);
  for (pos = 0; pos + SECRET_MIN <= n; pos++) {
    uint64_t k;
    uint32_t h;
    size_t lo = 0, hi = nset;
    memcpy(&k, p + pos, 8);
    h = key_hash(k);
    if (!((bits[h >> 6] >> (h & 63)) & 1))
      continue;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (keys[mid].k < k)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (; lo < nset && keys[lo].k == k; lo++) {
      size_t len = pool->len[keys[lo].i];
      if (pos + len <= n && memcmp(p + pos, pool->v[keys[lo].i], len) == 0)
        hits++;
    }
  }
  free(bits);
  free(keys);
  return hits;
}

static size_t count_byte(const unsigned char *p, size_t n, unsigned char c)
{
  size_t count = 0;
  const unsigned char *end = p + n, *q = p;
  while ((q = memchr(q, c, (size_t)(end - q))) != NULL) {
    count++;
    q++;
  }
  return count;
}

/* ---- timed runs ---- */

/* Feed @p n bytes of @p log in @p chunk writes; returns the seconds taken.
 * The output length is added to @p sink; with @p copy the output is also
 * stored there (untimed checks only). */
static double run_redact(struct ccci_redact_set *set, const unsigned char *log,
                         size_t n, size_t chunk, uint64_t *sink,
                         unsigned char *copy)
{
  struct ccci_redact *r = ccci_redact_new(set, NULL);
  const char *out;
  size_t off, out_len;
  uint64_t total = 0;
  double t0 = now_s(), t;

  for (off = 0; off < n; off += chunk) {
    size_t len = n - off < chunk ? n - off : chunk;
    if (ccci_redact_feed(r, log + off, len, &out, &out_len) < 0)
      die("feed", EINVAL);
    if (copy != NULL)
      memcpy(copy + total, out, out_len);
    total += out_len;
  }
  if (ccci_redact_finish(r, &out, &out_len) < 0)
    die("finish", EINVAL);
  if (copy != NULL)
    memcpy(copy + total, out, out_len);
  total += out_len;
  t = now_s() - t0;
  ccci_redact_free(r);
  *sink += total;
  return t;
}

static double best_redact(struct ccci_redact_set *set, const unsigned char *log,
                          size_t n, size_t chunk, uint64_t *sink)
{
  double best = 0;
  int i;
  for (i = 0; i < REPS; i++) {
    double t = run_redact(set, log, n, chunk, sink, NULL);
    if (i == 0 || t < best)
      best = t;
  }
  return best;
}

static double run_memcpy(const unsigned char *log, size_t n, uint64_t *sink)
{
  unsigned char *buf = ccci_xmalloc(CHUNK_BIG);
  size_t off;
  double t0 = now_s(), t;
  for (off = 0; off < n; off += CHUNK_BIG) {
    size_t len = n - off < CHUNK_BIG ? n - off : CHUNK_BIG;
    memcpy(buf, log + off, len);
    /* Keep the copy: the compiler must assume buf is read. */
    __asm__ volatile("" : : "r"(buf) : "memory");
    *sink += buf[len - 1];
  }
  t = now_s() - t0;
  free(buf);
  return t;
}

/* A forked child writes the log into a pipe in 64 KiB writes; this process
 * reads it back in 64 KiB reads. */
static double run_pipe(const unsigned char *log, size_t n, uint64_t *sink)
{
  unsigned char *buf = ccci_xmalloc(CHUNK_BIG);
  uint64_t total = 0;
  double t0 = now_s(), t;
  int fds[2], status;
  pid_t pid;

  if (pipe(fds) < 0)
    die("pipe", errno);
  pid = fork();
  if (pid < 0)
    die("fork", errno);
  if (pid == 0) {
    size_t off = 0;
    close(fds[0]);
    while (off < n) {
      size_t len = n - off < CHUNK_BIG ? n - off : CHUNK_BIG;
      ssize_t w = write(fds[1], log + off, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        _exit(1);
      off += (size_t)w;
    }
    _exit(0);
  }
  close(fds[1]);
  for (;;) {
    ssize_t got = read(fds[0], buf, CHUNK_BIG);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      die("read", errno);
    if (got == 0)
      break;
    total += (size_t)got;
  }
  close(fds[0]);
  if (waitpid(pid, &status, 0) < 0)
    die("waitpid", errno);
  t = now_s() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || total != n) {
    fprintf(stderr, "bench_redact: pipe writer failed\n");
    exit(1);
  }
  free(buf);
  *sink += total;
  return t;
}

static double best_of(double (*fn)(const unsigned char *, size_t, uint64_t *),
                      const unsigned char *log, size_t n, uint64_t *sink)
{
  double best = 0;
  int i;
  for (i = 0; i < 3; i++) {
    double t = fn(log, n, sink);
    if (i == 0 || t < best)
      best = t;
  }
  return best;
}

static double gbs(size_t n, double secs)
{
  return (double)n / secs / 1e9;
}

static const char *verdict(int ok)
{
  return ok ? "PASS" : "MISS";
}

/* ---- the cases ---- */

struct result {
  size_t nset, patterns, memory;
  double build_ms, gbs_small, gbs_big;
};

static struct ccci_redact_set *build_set(const struct pool *pool, size_t nset,
                                         double *ms)
{
  struct ccci_redact_value *vals = ccci_xcalloc(nset, sizeof(*vals));
  struct ccci_redact_set *set;
  double t0;
  size_t i;
  int rc;

  for (i = 0; i < nset; i++) {
    vals[i].data = pool->v[i];
    vals[i].len = pool->len[i];
  }
  t0 = now_s();
  rc = ccci_redact_set_new(vals, nset, CCCI_REDACT_MIN_LEN, &set);
  *ms = (now_s() - t0) * 1e3;
  free(vals);
  if (rc < 0)
    die("ccci_redact_set_new", -rc);
  return set;
}

struct check {
  size_t raw_in, raw_out, runs;
  int ok;
};

/* Redact the log once more, keeping the output, and count raw secrets and
 * mask runs in it: no raw secret and one run per occurrence pass. */
static void check(struct ccci_redact_set *set, const struct gen *g,
                  struct check *c)
{
  unsigned char *copy = ccci_xmalloc(g->size + KIB);
  uint64_t out_len = 0;
  size_t stars;

  run_redact(set, g->p, g->size, CHUNK_BIG, &out_len, copy);
  c->raw_in = count_raw(g->p, g->size, g->pool, g->nset);
  c->raw_out = count_raw(copy, (size_t)out_len, g->pool, g->nset);
  /* The generated log holds no '*': every one comes from a mask. */
  stars = count_byte(copy, (size_t)out_len, '*');
  c->runs = stars / 8;
  c->ok = c->raw_out == 0 && stars % 8 == 0 && c->runs == g->occurrences;
  free(copy);
}

static double adversarial(uint64_t *sink, size_t *patterns)
{
  unsigned char *in = ccci_xmalloc(ADV_BYTES);
  unsigned char value[ADV_LEN];
  struct ccci_redact_value v = {value, sizeof(value)};
  struct ccci_redact_set *set;
  uint64_t out = 0;
  double t;
  int rc;

  memset(in, 'a', ADV_BYTES);
  memset(value, 'a', sizeof(value) - 1);
  value[sizeof(value) - 1] = 'b';
  rc = ccci_redact_set_new(&v, 1, CCCI_REDACT_MIN_LEN, &set);
  if (rc < 0)
    die("ccci_redact_set_new", -rc);
  *patterns = ccci_redact_set_patterns(set);
  t = best_redact(set, in, ADV_BYTES, CHUNK_BIG, &out);
  if (out != (uint64_t)REPS * ADV_BYTES) {
    fprintf(stderr, "bench_redact: adversarial output changed length\n");
    exit(1);
  }
  *sink += out;
  ccci_redact_set_unref(set);
  free(in);
  return t;
}

static void target(const char *what, double value, const char *unit, int ok)
{
  printf("  %-44s %8.3f %-4s %s\n", what, value, unit, verdict(ok));
}

int main(int argc, char **argv)
{
  static struct pool pool;
  struct result res[CCCI_ARRAY_LEN(set_sizes)], *at = NULL;
  struct check chk = {0, 0, 0, 0};
  struct gen g, log_info;
  uint64_t mib = 256, sink = 0;
  size_t i, adv_patterns;
  double t_memcpy = 0, t_pipe = 0, t_adv, gen_s = 0, pipe, mem, adv;
  char what[80];

  if (argc > 1 &&
      (ccci_parse_u64(argv[1], &mib) < 0 || mib == 0 || mib > 16384)) {
    fprintf(stderr, "usage: bench_redact [MiB (1..16384, default 256)]\n");
    return 2;
  }
  make_pool(&pool, 0x5EC12E7);
  memset(&g, 0, sizeof(g));
  g.size = (size_t)mib * MIB;
  g.cap = g.size + LINE_MAX_BYTES;
  g.p = ccci_xmalloc(g.cap);
  g.pool = &pool;
  log_info = g;

  printf("redaction throughput, log %zu MiB, single thread, best of %d\n",
         (size_t)mib, REPS);
  printf("%8s %9s %10s %10s %12s %12s\n", "secrets", "patterns", "memory",
         "build", "4 KiB GB/s", "64 KiB GB/s");
  for (i = 0; i < CCCI_ARRAY_LEN(set_sizes); i++) {
    struct result *r = &res[i];
    struct ccci_redact_set *set;
    double t0 = now_s(), t_gen;

    /* The same seed for every set: only the secrets differ. */
    g.rng = 0xC0FFEE;
    g.nset = set_sizes[i];
    generate(&g);
    t_gen = now_s() - t0;
    set = build_set(&pool, g.nset, &r->build_ms);
    r->nset = g.nset;
    r->patterns = ccci_redact_set_patterns(set);
    r->memory = ccci_redact_set_memory(set);
    r->gbs_small =
        gbs(g.size, best_redact(set, g.p, g.size, CHUNK_SMALL, &sink));
    r->gbs_big = gbs(g.size, best_redact(set, g.p, g.size, CHUNK_BIG, &sink));
    printf("%8zu %9zu %6.2f MiB %7.1f ms %12.3f %12.3f\n", r->nset, r->patterns,
           (double)r->memory / MIB, r->build_ms, r->gbs_small, r->gbs_big);
    fflush(stdout);
    if (g.nset == CHECK_SET) {
      at = r;
      log_info = g;
      gen_s = t_gen;
      check(set, &g, &chk);
      t_memcpy = best_of(run_memcpy, g.p, g.size, &sink);
      t_pipe = best_of(run_pipe, g.p, g.size, &sink);
    }
    ccci_redact_set_unref(set);
  }
  free(g.p);
  t_adv = adversarial(&sink, &adv_patterns);
  pipe = gbs(g.size, t_pipe);
  mem = gbs(g.size, t_memcpy);
  adv = gbs(ADV_BYTES, t_adv);

  printf("log at %d secrets: %zu lines (%zu long), %zu secret occurrences, "
         "one per %.1f KiB\n",
         CHECK_SET, log_info.lines, log_info.long_lines, log_info.occurrences,
         (double)log_info.size / KIB / (double)log_info.occurrences);
  printf("check at %d secrets, 64 KiB writes: raw secrets in %zu, out %zu; "
         "%zu mask runs for %zu occurrences: %s\n",
         CHECK_SET, chk.raw_in, chk.raw_out, chk.runs, log_info.occurrences,
         chk.ok ? "OK" : "FAILED");
  printf("adversarial: 'a' x%d + 'b' (%zu patterns) over %zu MiB of 'a', "
         "64 KiB writes: %.3f GB/s\n",
         ADV_LEN - 1, adv_patterns, ADV_BYTES / MIB, adv);
  printf("baselines, 64 KiB chunks, best of 3\n");
  printf("  memcpy                  %8.3f GB/s\n", mem);
  printf("  pipe (forked writer)    %8.3f GB/s\n", pipe);
  if (at != NULL) {
    printf("ratios at %d secrets      4 KiB   64 KiB\n", CHECK_SET);
    printf("  redact/pipe           %7.3f  %7.3f\n", at->gbs_small / pipe,
           at->gbs_big / pipe);
    printf("  redact/memcpy         %7.3f  %7.3f\n", at->gbs_small / mem,
           at->gbs_big / mem);
    printf("targets\n");
    snprintf(what, sizeof(what), ">= %.1f GB/s at %d secrets, 4 KiB writes",
             TARGET_GBS, CHECK_SET);
    target(what, at->gbs_small, "GB/s", at->gbs_small >= TARGET_GBS);
    snprintf(what, sizeof(what), ">= %.1f GB/s at %d secrets, 64 KiB writes",
             TARGET_GBS, CHECK_SET);
    target(what, at->gbs_big, "GB/s", at->gbs_big >= TARGET_GBS);
    snprintf(what, sizeof(what), ">= %.1f GB/s adversarial", TARGET_ADV_GBS);
    target(what, adv, "GB/s", adv >= TARGET_ADV_GBS);
    snprintf(what, sizeof(what), "<= %zu MiB set memory at %d secrets",
             TARGET_MEM / MIB, CHECK_SET);
    target(what, (double)at->memory / MIB, "MiB", at->memory <= TARGET_MEM);
  }
  printf("log generated in %.2f s; output bytes, all runs: %llu\n", gen_s,
         (unsigned long long)sink);
  return chk.ok ? 0 : 1;
}
