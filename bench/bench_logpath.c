/* The user-space half of the log path, stage by stage, on the lines
 * bench/fanin_writer prints: the redactor over 64 KiB reads, the line split,
 * the Drone encoder, and all three together as the daemon chains them. No
 * syscalls: what is left of the daemon's CPU per GiB in bench/fanin.py is
 * the kernel's (pipe reads, page-cache writes) and the per-run costs.
 *
 *   bench_logpath [MIB] [SECRETS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccci/core/util.h"
#include "ccci/logs/logline.h"
#include "ccci/logs/redact.h"
#include "fanin_lines.h"

#define READ_SIZE 65536

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The lines bench/fanin_writer.c prints. */
static char *make_input(size_t target, const char *secret, size_t *len,
                        size_t *lines)
{
  char *buf = malloc(target + 512);
  size_t used = 0;
  unsigned long i = 0;
  while (used < target) {
    used += (size_t)fanin_line(buf + used, 512, i, secret);
    i++;
  }
  *len = used;
  *lines = i;
  return buf;
}

static void random_secret(char *s, size_t n, unsigned *seed)
{
  static const char alpha[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  size_t i;
  for (i = 0; i < n; i++)
    s[i] = alpha[(unsigned)rand_r(seed) % (sizeof(alpha) - 1)];
  s[n] = '\0';
}

struct sink {
  struct ccci_buf out;
  uint64_t pos, lines, bytes;
};

static void encode_lines(struct sink *k, const char *p, size_t len)
{
  while (len > 0) {
    const char *nl = memchr(p, '\n', len);
    size_t n = nl ? (size_t)(nl - p) + 1 : len;
    if (ccci_logline_encode(&k->out, k->pos++, p, n, 0) < 0)
      abort();
    if (k->out.len >= 256 * 1024) {
      k->bytes += k->out.len;
      k->out.len = 0;
    }
    k->lines++;
    p += n;
    len -= n;
  }
}

int main(int argc, char **argv)
{
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
  size_t nsec = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
  unsigned seed = 42;
  char(*secrets)[41] = calloc(nsec ? nsec : 1, sizeof(*secrets));
  struct ccci_redact_value *vals = calloc(nsec ? nsec : 1, sizeof(*vals));
  struct ccci_redact_set *set;
  struct ccci_redact *red;
  size_t len, lines, off, i, nlines = 0;
  char *in;
  double t0, t_split, t_enc, t_red, t_all, gib;
  struct sink k;
  const char *o;
  size_t olen;

  for (i = 0; i < nsec; i++) {
    random_secret(secrets[i], 20 + (size_t)rand_r(&seed) % 21, &seed);
    vals[i].data = secrets[i];
    vals[i].len = strlen(secrets[i]);
  }
  in = make_input(mib << 20, nsec ? secrets[0] : "not-a-secret", &len, &lines);
  gib = (double)len / (1u << 30);
  if (ccci_redact_set_new(vals, nsec, 8, &set) < 0)
    return 1;

  /* 1. The line split alone. */
  t0 = now_s();
  for (off = 0; off < len;) {
    const char *nl = memchr(in + off, '\n', len - off);
    off = nl ? (size_t)(nl - in) + 1 : len;
    nlines++;
  }
  t_split = now_s() - t0;

  /* 2. The encoder over every line. */
  memset(&k, 0, sizeof(k));
  ccci_buf_init(&k.out, SIZE_MAX);
  t0 = now_s();
  encode_lines(&k, in, len);
  t_enc = now_s() - t0;

  /* 3. The redactor over 64 KiB reads. */
  red = ccci_redact_new(set, NULL);
  t0 = now_s();
  for (off = 0; off < len; off += READ_SIZE) {
    size_t n = len - off < READ_SIZE ? len - off : READ_SIZE;
    if (ccci_redact_feed(red, in + off, n, &o, &olen) < 0)
      abort();
  }
  if (ccci_redact_finish(red, &o, &olen) < 0)
    abort();
  t_red = now_s() - t0;
  ccci_redact_free(red);

  /* 4. All three, as the daemon chains them (whole lines in the redactor's
   * output are encoded straight from it; the assembler is left out). */
  red = ccci_redact_new(set, NULL);
  k.lines = k.bytes = k.pos = 0;
  k.out.len = 0;
  t0 = now_s();
  for (off = 0; off < len; off += READ_SIZE) {
    size_t n = len - off < READ_SIZE ? len - off : READ_SIZE;
    if (ccci_redact_feed(red, in + off, n, &o, &olen) < 0)
      abort();
    encode_lines(&k, o, olen);
  }
  if (ccci_redact_finish(red, &o, &olen) < 0)
    abort();
  encode_lines(&k, o, olen);
  t_all = now_s() - t0;
  k.bytes += k.out.len;

  printf("log path (user space), %.0f MiB of fanin lines (%zu lines, %.1f B "
         "each), %zu secrets (%zu patterns)\n",
         (double)len / (1 << 20), lines, (double)len / (double)lines, nsec,
         ccci_redact_set_patterns(set));
  printf("%-22s %10s %10s %10s\n", "stage", "CPU-s/GiB", "ns/line", "GB/s");
  printf("%-22s %10.3f %10.1f %10.2f\n", "line split (memchr)", t_split / gib,
         t_split * 1e9 / (double)lines, (double)len / t_split / 1e9);
  printf("%-22s %10.3f %10.1f %10.2f\n", "encode", t_enc / gib,
         t_enc * 1e9 / (double)lines, (double)len / t_enc / 1e9);
  printf("%-22s %10.3f %10.1f %10.2f\n", "redact (64 KiB feeds)", t_red / gib,
         t_red * 1e9 / (double)lines, (double)len / t_red / 1e9);
  printf("%-22s %10.3f %10.1f %10.2f\n", "redact+split+encode", t_all / gib,
         t_all * 1e9 / (double)lines, (double)len / t_all / 1e9);
  printf("encoded/raw bytes: %.3f\n", (double)k.bytes / (double)len);
  ccci_redact_free(red);
  ccci_redact_set_unref(set);
  ccci_buf_close(&k.out);
  free(in);
  free(secrets);
  free(vals);
  return 0;
}
