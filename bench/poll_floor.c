/* The floor under bench/poll.py: the least CPU a poll costs on this machine
 * with libcurl, whatever surrounds it. One reused easy handle GETs a repo's
 * comment list from the fake forge over one kept-alive connection, blocking
 * (curl_easy_perform), N times, GAP_MS apart (the daemon's polls at 1000
 * repos and 30 s come 30 ms apart), then N times back to back. Prints this
 * process's CPU per request; 1000 x that is the floor for "CPU per 1000
 * polls".
 *
 *   poll_floor URL TOKEN_FILE [N] [GAP_MS]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double cpu(void)
{
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
  (void)p;
  (void)arg;
  return size * n;
}

static double run(CURL *e, long n, long gap_ms)
{
  struct timespec gap = {gap_ms / 1000, (gap_ms % 1000) * 1000000L};
  double t0 = cpu();
  long i;
  for (i = 0; i < n; i++) {
    long code = 0;
    if (curl_easy_perform(e) != CURLE_OK ||
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
        code != 200) {
      fprintf(stderr, "poll_floor: request %ld failed (HTTP %ld)\n", i, code);
      exit(1);
    }
    if (gap_ms > 0)
      nanosleep(&gap, NULL);
  }
  return (cpu() - t0) * 1e6 / (double)n;
}

int main(int argc, char **argv)
{
  char token[256] = "", url[1024], auth[300];
  long n = argc > 3 ? strtol(argv[3], NULL, 10) : 300;
  long gap = argc > 4 ? strtol(argv[4], NULL, 10) : 30;
  struct curl_slist *h = NULL;
  FILE *f;
  CURL *e;

  if (argc < 3 || n <= 0) {
    fprintf(stderr, "usage: poll_floor URL TOKEN_FILE [N] [GAP_MS]\n");
    return 64;
  }
  f = fopen(argv[2], "r");
  if (f == NULL || fgets(token, sizeof(token), f) == NULL)
    return 1;
  fclose(f);
  token[strcspn(token, "\r\n")] = '\0';
  snprintf(url, sizeof(url),
           "%s/api/v1/repos/bench/r0/issues/"
           "comments?since=2026-01-01T00:00:00Z&limit=50&page=1",
           argv[1]);
  snprintf(auth, sizeof(auth), "Authorization: token %s", token);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  h = curl_slist_append(h, auth);
  h = curl_slist_append(h, "Accept: application/json");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  run(e, 10, 0); /* connect, warm */
  printf("paced, %ld ms apart      %8.1f us CPU per request\n", gap,
         run(e, n, gap));
  printf("back to back             %8.1f us CPU per request\n", run(e, n, 0));
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  explicit_bzero(token, sizeof(token));
  explicit_bzero(auth, sizeof(auth));
  return 0;
}
