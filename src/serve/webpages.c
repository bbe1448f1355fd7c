/* The HTML pages (docs/http.md, "Pages"): the recent runs, a recipe's history
 * and the error page. Every byte from a run, a recipe or the forge is escaped.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccci/forge/forgeapi.h"
#include "ccci/http/html.h"
#include "ccci/runs/levels.h"
#include "ccci/runs/run.h"
#include "ccci/runs/runs.h"
#include "web_int.h"

/* The stylesheet, embedded from src/serve/web/style.css at build time. */
extern const char ccci_web_style_css[];
extern const size_t ccci_web_style_css_len;
/* The run page's script (live lines, follow, paging), from
 * src/serve/web/run.js. */
extern const char ccci_web_run_js[];
extern const size_t ccci_web_run_js_len;
/* Pages link assets with this version query, so they may be cached long. */
#define CCCI_WEB_ASSET_VERSION "2"

/* Runs on one page of `/`. */
#define PER_PAGE 50

static void put(struct ccci_buf *b, const char *s)
{
  if (ccci_buf_append(b, s, strlen(s)) < 0)
    abort();
}

static void put_esc(struct ccci_buf *b, const char *s)
{
  if (ccci_html_escape_str(b, s != NULL ? s : "") < 0)
    abort();
}

static void head(struct ccci_buf *b, const char *title)
{
  put(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, "
         "initial-scale=1\"><link rel=\"stylesheet\" "
         "href=\"/static/style.css?v=" CCCI_WEB_ASSET_VERSION "\"><title>");
  put_esc(b, title);
  put(b, " · ccci</title></head><body><header><a href=\"/\">ccci</a>"
         "</header><main>\n");
}

static void tail(struct ccci_buf *b)
{
  put(b, "</main></body></html>\n");
}

void ccci_web_page_error(struct ccci_web *w, struct ccci_http_req *r,
                         int status, const char *msg)
{
  struct ccci_buf b;
  char title[64];

  snprintf(title, sizeof(title), "%d %s", status, ccci_http_reason(status));
  ccci_buf_init(&b, SIZE_MAX);
  head(&b, title);
  put(&b, "<h1>");
  put_esc(&b, title);
  put(&b, "</h1><p>");
  put_esc(&b, msg);
  put(&b, "</p>\n");
  tail(&b);
  ccci_web_send(w, r, status, CCCI_WEB_HTML, CCCI_WEB_PAGE_HEADERS, &b, true);
}

static const char *str_of(json_t *run, const char *key)
{
  return json_string_value(json_object_get(run, key));
}

/* A query parameter that links keep: "&name=value", escaped. */
static void keep_param(struct ccci_buf *b, const char *name, const char *v)
{
  const char *p;
  if (v == NULL || v[0] == '\0')
    return;
  if (ccci_buf_printf(b, "&amp;%s=", name) < 0)
    abort();
  for (p = v; *p != '\0'; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.') {
      if (ccci_buf_append(b, p, 1) < 0)
        abort();
    } else if (ccci_buf_printf(b, "%%%02X", c) < 0)
      abort();
  }
}

/* A run's duration as "1h 02m", "3m 04s" or "12s": from its start to its
 * end, or to now while it runs; nothing before it started. */
static void duration(struct ccci_buf *b, const char *started,
                     const char *finished)
{
  int64_t t0, t1;
  long long d;
  int rc;
  if (started == NULL || ccci_forge_parse_time(started, &t0) < 0)
    return;
  if (finished == NULL || ccci_forge_parse_time(finished, &t1) < 0)
    t1 = (int64_t)time(NULL);
  d = t1 > t0 ? (long long)(t1 - t0) : 0;
  if (d >= 3600)
    rc = ccci_buf_printf(b, "%lldh %02lldm", d / 3600, d % 3600 / 60);
  else if (d >= 60)
    rc = ccci_buf_printf(b, "%lldm %02llds", d / 60, d % 60);
  else
    rc = ccci_buf_printf(b, "%llds", d);
  if (rc < 0)
    abort();
}

static void run_row(struct ccci_web *w, struct ccci_buf *b, json_t *run,
                    const char *forge_url)
{
  const char *id = str_of(run, "id"), *state = str_of(run, "state");
  const char *reason = str_of(run, "reason"), *repo = str_of(run, "repo");
  const char *kind = json_string_value(
      json_object_get(json_object_get(run, "trigger"), "kind"));
  json_int_t pr = json_integer_value(json_object_get(run, "pr"));
  int level = id != NULL ? ccci_web_level(w, id) : -1;

  put(b, "<tr><td>");
  put_esc(b, reason != NULL ? reason : state);
  put(b, "</td><td><a href=\"/recipes/");
  put_esc(b, str_of(run, "recipe"));
  put(b, "\">");
  put_esc(b, str_of(run, "recipe"));
  put(b, "</a></td><td>");
  if (pr > 0 && kind != NULL && strcmp(kind, "forge") == 0 &&
      forge_url != NULL && repo != NULL) {
    put(b, "<a href=\"");
    put_esc(b, forge_url);
    put(b, "/");
    put_esc(b, repo);
    if (ccci_buf_printf(b, "/pulls/%lld\">#%lld</a>", (long long)pr,
                        (long long)pr) < 0)
      abort();
  } else if (pr > 0 && ccci_buf_printf(b, "#%lld", (long long)pr) < 0)
    abort();
  put(b, "</td><td>");
  put(b, level == -2                      ? "…"
         : ccci_level_text(level) != NULL ? ccci_level_text(level)
                                          : "");
  put(b, "</td><td>");
  duration(b, str_of(run, "started_at"), str_of(run, "finished_at"));
  put(b, "</td><td><a href=\"/runs/");
  put_esc(b, id);
  put(b, "\">");
  put_esc(b, str_of(run, "started_at") != NULL ? str_of(run, "started_at")
                                               : str_of(run, "created_at"));
  put(b, "</a></td></tr>\n");
}

void ccci_web_page_index(struct ccci_web *w, struct ccci_http_req *r,
                         const char *const *arg)
{
  struct ccci_runs *rs = ccci_web_runs(w);
  const char *recipe = ccci_http_query_param(r, "recipe");
  const char *state = ccci_http_query_param(r, "state");
  const char *pg = ccci_http_query_param(r, "page");
  struct ccci_config *cfg;
  struct ccci_buf b;
  uint64_t page = 1;
  size_t i, n, first;
  json_t *runs;

  (void)arg;
  if (rs == NULL) {
    ccci_web_error(w, r, 503, "the runs are closed");
    return;
  }
  if (recipe != NULL && recipe[0] == '\0')
    recipe = NULL;
  if (state != NULL && state[0] == '\0')
    state = NULL;
  if (pg != NULL &&
      (ccci_parse_u64(pg, &page) < 0 || page == 0 || page > 1000000)) {
    ccci_web_error(w, r, 400, "page must be a number from 1");
    return;
  }
  runs = ccci_runs_list(rs, state, recipe);
  n = json_array_size(runs);
  first = (size_t)(page - 1) * PER_PAGE;
  cfg = ccci_web_config(w);
  ccci_buf_init(&b, SIZE_MAX);
  head(&b, "runs");
  put(&b, "<h1>Runs</h1>\n<form method=\"get\" action=\"/\">"
          "<label>recipe <input name=\"recipe\" value=\"");
  put_esc(&b, recipe);
  put(&b, "\"></label> <label>state <input name=\"state\" value=\"");
  put_esc(&b, state);
  put(&b, "\"></label> <button>filter</button></form>\n"
          "<table><thead><tr><th>result</th><th>recipe</th><th>PR</th>"
          "<th>level</th><th>duration</th><th>started</th></tr></thead>"
          "<tbody>\n");
  for (i = first; i < n && i < first + PER_PAGE; i++)
    run_row(w, &b, json_array_get(runs, i), cfg->forge.url);
  put(&b, "</tbody></table>\n<nav>");
  if (page > 1) {
    if (ccci_buf_printf(&b, "<a href=\"/?page=%llu",
                        (unsigned long long)page - 1) < 0)
      abort();
    keep_param(&b, "recipe", recipe);
    keep_param(&b, "state", state);
    put(&b, "\">newer</a> ");
  }
  if (first + PER_PAGE < n) {
    if (ccci_buf_printf(&b, "<a href=\"/?page=%llu",
                        (unsigned long long)page + 1) < 0)
      abort();
    keep_param(&b, "recipe", recipe);
    keep_param(&b, "state", state);
    put(&b, "\">older</a>");
  }
  put(&b, "</nav>\n");
  tail(&b);
  ccci_config_unref(cfg);
  json_decref(runs);
  ccci_web_send(w, r, 200, CCCI_WEB_HTML, CCCI_WEB_PAGE_HEADERS, &b, true);
}

/* Finished runs the level picture shows at most. */
#define SVG_RUNS 50

/* The level of the last finished runs (oldest left) as points joined by
 * steps: inline SVG with presentation attributes only. */
static void level_svg(struct ccci_web *w, struct ccci_buf *b, json_t *runs)
{
  int lv[SVG_RUNS];
  size_t i, n = 0, k;

  for (i = 0; i < json_array_size(runs) && n < SVG_RUNS; i++) {
    json_t *run = json_array_get(runs, i);
    const char *st = str_of(run, "state"), *id = str_of(run, "id");
    if (st == NULL || strcmp(st, "finished") != 0 || id == NULL)
      continue;
    lv[n++] = ccci_web_level(w, id);
  }
  if (ccci_buf_printf(
          b,
          "<svg class=\"levels\" xmlns=\"http://www.w3.org/2000/svg\" "
          "viewBox=\"0 0 %u 60\" role=\"img\" "
          "aria-label=\"level of the last %zu finished runs\">",
          (unsigned)(SVG_RUNS * 10 + 20), n) < 0)
    abort();
  for (k = 0; k <= CCCI_LEVEL_MAX; k++)
    if (ccci_buf_printf(b,
                        "<line x1=\"10\" x2=\"%u\" y1=\"%zu\" y2=\"%zu\" "
                        "stroke=\"#ddd\" stroke-width=\"0.5\"/>",
                        (unsigned)(SVG_RUNS * 10 + 10), 52 - k * 11,
                        52 - k * 11) < 0)
      abort();
  for (k = 0; k < n; k++) {
    /* Oldest first: the list is newest first. */
    int l = lv[n - 1 - k];
    unsigned x = 10 + (unsigned)k * 10;
    if (l < 0) {
      if (ccci_buf_printf(b,
                          "<circle cx=\"%u\" cy=\"52\" r=\"2\" fill=\"none\" "
                          "stroke=\"#999\"/>",
                          x) < 0)
        abort();
      continue;
    }
    if (ccci_buf_printf(b,
                        "<circle cx=\"%u\" cy=\"%d\" r=\"2.5\" fill=\"#2a6\"/>",
                        x, 52 - l * 11) < 0)
      abort();
  }
  put(b, "</svg>\n");
}

void ccci_web_page_recipe(struct ccci_web *w, struct ccci_http_req *r,
                          const char *const *arg)
{
  struct ccci_runs *rs = ccci_web_runs(w);
  struct ccci_config *cfg;
  struct ccci_buf b;
  json_t *runs;
  size_t i;

  if (rs == NULL) {
    ccci_web_error(w, r, 503, "the runs are closed");
    return;
  }
  runs = ccci_runs_list(rs, NULL, arg[0]);
  if (json_array_size(runs) == 0) {
    json_decref(runs);
    ccci_web_error(w, r, 404, "no run of recipe '%s'", arg[0]);
    return;
  }
  cfg = ccci_web_config(w);
  ccci_buf_init(&b, SIZE_MAX);
  head(&b, arg[0]);
  put(&b, "<h1>");
  put_esc(&b, arg[0]);
  put(&b, "</h1>\n");
  level_svg(w, &b, runs);
  put(&b, "<table><thead><tr><th>result</th><th>recipe</th><th>PR</th>"
          "<th>level</th><th>duration</th><th>started</th></tr></thead>"
          "<tbody>\n");
  for (i = 0; i < json_array_size(runs) && i < 200; i++)
    run_row(w, &b, json_array_get(runs, i), cfg->forge.url);
  put(&b, "</tbody></table>\n");
  tail(&b);
  ccci_config_unref(cfg);
  json_decref(runs);
  ccci_web_send(w, r, 200, CCCI_WEB_HTML, CCCI_WEB_PAGE_HEADERS, &b, true);
}

/* Lines of a step the run page renders itself (the first ones). */
#define PAGE_LINES 500
/* HTML of one step's lines on a page at most, and of a whole run page: past
 * them the lines are left to "more lines" (a 500-line page of 64 KiB lines
 * would otherwise be hundreds of MiB). */
#define STEP_HTML_MAX (1024u * 1024u)
#define RUN_HTML_MAX (8u * 1024u * 1024u)
/* The longest step file line read (an encoded line of CCCI_LOGLINE_MAX
 * bytes of text takes at most six bytes a byte). */
#define LINE_MAX_BYTES (6u * 64u * 1024u + 64u)

/* A run page: its head rendered on the loop, its step logs on the pool. */
struct run_page {
  uv_work_t work;
  struct ccci_web *w;
  struct ccci_http_req *r;
  struct ccci_buf b;
  json_t *run; /* meta plus steps */
};

/* Lines @p from + 1 .. @p from + @p limit of step @p n as
 * `<div id="s<n>-L<k>">` elements (k from 1); returns how many. */
static size_t render_lines(struct ccci_buf *b, const char *path, unsigned n,
                           uint64_t from, size_t limit, bool *unreadable)
{
  FILE *f = fopen(path, "re");
  char *line = NULL;
  size_t cap = 0, k = 0, done = 0, start = b->len;
  ssize_t len;

  *unreadable = f == NULL;
  if (f == NULL)
    return 0;
  while (done < limit && b->len - start < STEP_HTML_MAX &&
         (len = getline(&line, &cap, f)) > 0) {
    json_t *j;
    const char *out;
    size_t ol;
    /* A line still being written (no newline yet) is the stream's. */
    if ((size_t)len > LINE_MAX_BYTES || line[len - 1] != '\n')
      break;
    if (k++ < from)
      continue;
    j = json_loadb(line, (size_t)len, 0, NULL);
    if (j == NULL) {
      k--;
      break;
    }
    out = json_string_value(json_object_get(j, "out"));
    ol = out != NULL ? json_string_length(json_object_get(j, "out")) : 0;
    if (ol > 0 && out[ol - 1] == '\n')
      ol--;
    if (ccci_buf_printf(
            b,
            "<div class=\"l\" id=\"s%u-L%zu\"><a href=\"#s%u-L%zu\">"
            "%zu</a><span class=\"t\">",
            n, k, n, k, k) < 0 ||
        ccci_html_ansi(b, out != NULL ? out : "", ol) < 0)
      abort();
    put(b, "</span></div>");
    json_decref(j);
    done++;
  }
  free(line);
  fclose(f);
  return done;
}

/* The link that loads the lines after @p from of step @p n (run.js follows
 * it in place; without script it opens the page of lines). */
static void more_link(struct ccci_buf *b, const char *id, unsigned n,
                      uint64_t from, uint64_t lines)
{
  if (lines <= from)
    return;
  if (ccci_buf_printf(b,
                      "<p class=\"more\"><a href=\"/runs/%s/log/%u?from=%llu\">"
                      "%llu more lines</a></p>\n",
                      id, n, (unsigned long long)from,
                      (unsigned long long)(lines - from)) < 0)
    abort();
}

/* Step @p n's first PAGE_LINES lines; returns how many. */
static size_t render_step(struct ccci_buf *b, const char *id, const char *path,
                          unsigned n, uint64_t lines, bool last)
{
  bool unreadable;
  size_t k;
  put(b, "<pre class=\"log\">");
  k = render_lines(b, path, n, 0, b->len < RUN_HTML_MAX ? PAGE_LINES : 0,
                   &unreadable);
  put(b, "</pre>\n");
  if (unreadable)
    put(b, "<p>the log is not readable</p>\n");
  /* The live stream goes on after the last step's lines shown. */
  else if (!last)
    more_link(b, id, n, k, lines);
  return k;
}

static void run_page_work(uv_work_t *work)
{
  struct run_page *p = ccci_container_of(work, struct run_page, work);
  const char *dir = str_of(p->run, "dir"), *id = str_of(p->run, "id");
  json_t *steps = json_object_get(p->run, "steps"), *st;
  bool live = strcmp(str_of(p->run, "state") ? str_of(p->run, "state") : "",
                     "finished") != 0;
  size_t i, nsteps = json_array_size(steps), shown = 0;
  json_int_t last_n = -1;

  json_array_foreach(steps, i, st)
  {
    const char *name = str_of(st, "name");
    json_int_t n = json_integer_value(json_object_get(st, "n"));
    char *path;
    if (name == NULL || dir == NULL || n < 0 || n > 4096)
      continue;
    if (ccci_buf_printf(&p->b, "<section id=\"s%lld\"><h2><a href=\"#s%lld\">",
                        (long long)n, (long long)n) < 0)
      abort();
    put_esc(&p->b, name);
    put(&p->b, "</a></h2>\n");
    path = ccci_xasprintf("%s/logs/%lld-%s.jsonl", dir, (long long)n, name);
    shown =
        render_step(&p->b, id, path, (unsigned)n,
                    (uint64_t)json_integer_value(json_object_get(st, "lines")),
                    live && i + 1 == nsteps);
    last_n = n;
    free(path);
    put(&p->b, "</section>\n");
  }
  put(&p->b, "<div id=\"steps-end\"></div>\n");
  /* Where the page's stream resumes: after the last line shown (a step
   * with none shown resumes past the end of the one before). */
  if (live) {
    put(&p->b, "<div id=\"live\" data-run=\"");
    put_esc(&p->b, id);
    if (last_n >= 0 && shown > 0) {
      if (ccci_buf_printf(&p->b, "\" data-after=\"%lld:%zu", (long long)last_n,
                          shown - 1) < 0)
        abort();
    } else if (last_n > 0) {
      if (ccci_buf_printf(&p->b, "\" data-after=\"%lld:%llu",
                          (long long)last_n - 1,
                          (unsigned long long)(UINT64_MAX - 1)) < 0)
        abort();
    }
    put(&p->b,
        "\"></div>\n<script src=\"/static/run.js?v=" CCCI_WEB_ASSET_VERSION
        "\"></script>\n");
  }
  tail(&p->b);
}

/* A page built on the pool goes out (redacted), or 503 when the work was
 * cancelled; then the pool's count of the front drops. */
static void page_built(struct ccci_web *w, struct ccci_http_req *r,
                       struct ccci_buf *b, int status)
{
  if (status < 0) {
    ccci_buf_close(b);
    ccci_web_error(w, r, 503, "the front is stopping");
  } else
    ccci_web_send(w, r, 200, CCCI_WEB_HTML, CCCI_WEB_PAGE_HEADERS, b, true);
}

static void run_page_done(uv_work_t *work, int status)
{
  struct run_page *p = ccci_container_of(work, struct run_page, work);
  struct ccci_web *w = p->w;
  page_built(w, p->r, &p->b, status);
  json_decref(p->run);
  free(p);
  ccci_web_unpend(w);
}

/* The number of the first step named @p name in run @p m, or -1. */
static int step_number(json_t *m, const char *name)
{
  json_t *st;
  size_t i;
  json_array_foreach(json_object_get(m, "steps"), i, st)
  {
    const char *n = str_of(st, "name");
    if (n != NULL && strcmp(n, name) == 0)
      return (int)json_integer_value(json_object_get(st, "n"));
  }
  return -1;
}

static void kv(struct ccci_buf *b, const char *k, const char *v)
{
  if (v == NULL)
    return;
  put(b, "<dt>");
  put(b, k);
  put(b, "</dt><dd>");
  put_esc(b, v);
  put(b, "</dd>");
}

static void run_page_results(void *arg, const struct ccci_web_results *res)
{
  struct run_page *p = arg;
  struct ccci_buf *b = &p->b;
  json_t *m = p->run;
  const char *recipe = str_of(m, "recipe");
  size_t i;

  head(b, recipe != NULL ? recipe : "run");
  put(b, "<h1>");
  put_esc(b, recipe);
  put(b, " <span class=\"lvl\">");
  put(b,
      ccci_level_text(res->level) != NULL ? ccci_level_text(res->level) : "");
  put(b, "</span></h1>\n<dl>");
  kv(b, "run", str_of(m, "id"));
  kv(b, "repo", str_of(m, "repo"));
  kv(b, "sha", str_of(m, "sha"));
  put(b, "<dt>state</dt><dd id=\"state\">");
  put_esc(b, str_of(m, "state"));
  put(b, "</dd><dt>result</dt><dd id=\"result\">");
  put_esc(b, str_of(m, "reason"));
  put(b, "</dd>");
  kv(b, "commenter",
     json_string_value(
         json_object_get(json_object_get(m, "trigger"), "commenter")));
  put(b, "</dl>\n");
  if (res->res != NULL && res->res->ntiers > 0) {
    put(b, "<table class=\"tiers\"><thead><tr><th>tier</th><th>status</th>"
           "<th>duration</th><th>reason</th></tr></thead><tbody>\n");
    for (i = 0; i < res->res->ntiers; i++) {
      const struct ccci_results_tier *t = &res->res->tiers[i];
      int sn = t->step != NULL ? step_number(m, t->step) : -1;
      put(b, "<tr><td>");
      if (sn >= 0 && ccci_buf_printf(b, "<a href=\"#s%d\">", sn) < 0)
        abort();
      put_esc(b, t->name);
      put(b, sn >= 0 ? "</a></td><td>" : "</td><td>");
      put_esc(b, t->status);
      put(b, "</td><td>");
      if (t->duration_s >= 0 && ccci_buf_printf(b, "%.0f s", t->duration_s) < 0)
        abort();
      put(b, "</td><td>");
      put_esc(b, t->reason);
      put(b, "</td></tr>\n");
    }
    put(b, "</tbody></table>\n");
  }
  if (strcmp(str_of(m, "state") ? str_of(m, "state") : "", "finished") != 0)
    put(b, "<p class=\"follow\"><label><input type=\"checkbox\" "
           "id=\"follow\" checked> follow the log</label> "
           "<span id=\"live-state\">live</span></p>\n");
  ccci_web_pend(p->w);
  if (uv_queue_work(p->w->env.loop, &p->work, run_page_work, run_page_done) < 0)
    run_page_done(&p->work, UV_ECANCELED);
}

void ccci_web_page_run(struct ccci_web *w, struct ccci_http_req *r,
                       const char *const *arg)
{
  struct ccci_runs *rs = ccci_web_runs(w);
  struct run_page *p;
  json_t *run;

  if (rs == NULL) {
    ccci_web_error(w, r, 503, "the runs are closed");
    return;
  }
  run = ccci_run_id_valid(arg[0]) ? ccci_runs_show(rs, arg[0]) : NULL;
  if (run == NULL) {
    ccci_web_error(w, r, 404, "no run '%s'", arg[0]);
    return;
  }
  p = ccci_xcalloc(1, sizeof(*p));
  p->w = w;
  p->r = r;
  p->run = run;
  ccci_buf_init(&p->b, SIZE_MAX);
  ccci_web_results(w, arg[0], run_page_results, p);
}

void ccci_web_asset(struct ccci_web *w, struct ccci_http_req *r,
                    const char *const *arg)
{
  const char *ctype, *body;
  size_t len;
  if (strcmp(arg[0], "style.css") == 0) {
    ctype = "text/css; charset=utf-8";
    body = ccci_web_style_css;
    len = ccci_web_style_css_len;
  } else if (strcmp(arg[0], "run.js") == 0) {
    ctype = "text/javascript; charset=utf-8";
    body = ccci_web_run_js;
    len = ccci_web_run_js_len;
  } else {
    ccci_web_error(w, r, 404, "no such file");
    return;
  }
  ccci_http_respond_ref(r, 200, ctype,
                        "Cache-Control: public, max-age=31536000\r\n", body,
                        len, NULL, NULL);
}

/* A page of one step's lines (GET /runs/<id>/log/<n>?from=&limit=). */
struct log_page {
  uv_work_t work;
  struct ccci_web *w;
  struct ccci_http_req *r;
  struct ccci_buf b;
  char *path;
  unsigned n;
  uint64_t from, lines;
  size_t limit;
  char id[CCCI_RUN_ID_MAX + 1];
};

static void log_page_work(uv_work_t *work)
{
  struct log_page *p = ccci_container_of(work, struct log_page, work);
  bool unreadable;
  size_t k = render_lines(&p->b, p->path, p->n, p->from, p->limit, &unreadable);
  if (!unreadable)
    more_link(&p->b, p->id, p->n, p->from + k, p->lines);
}

static void log_page_done(uv_work_t *work, int status)
{
  struct log_page *p = ccci_container_of(work, struct log_page, work);
  struct ccci_web *w = p->w;
  page_built(w, p->r, &p->b, status);
  free(p->path);
  free(p);
  ccci_web_unpend(w);
}

void ccci_web_page_log(struct ccci_web *w, struct ccci_http_req *r,
                       const char *const *arg)
{
  struct ccci_runs *rs = ccci_web_runs(w);
  const char *fs = ccci_http_query_param(r, "from");
  const char *ls = ccci_http_query_param(r, "limit");
  uint64_t n, from = 0, limit = PAGE_LINES;
  json_t *run, *st, *found = NULL;
  struct log_page *p;
  size_t i;

  if (rs == NULL) {
    ccci_web_error(w, r, 503, "the runs are closed");
    return;
  }
  if (ccci_parse_u64(arg[1], &n) < 0 ||
      (fs != NULL && ccci_parse_u64(fs, &from) < 0) ||
      (ls != NULL &&
       (ccci_parse_u64(ls, &limit) < 0 || limit == 0 || limit > PAGE_LINES))) {
    ccci_web_error(w, r, 400,
                   "expected /runs/<id>/log/<step>?from=<line>&limit=<1..%d>",
                   PAGE_LINES);
    return;
  }
  run = ccci_run_id_valid(arg[0]) ? ccci_runs_show(rs, arg[0]) : NULL;
  if (run == NULL) {
    ccci_web_error(w, r, 404, "no run '%s'", arg[0]);
    return;
  }
  json_array_foreach(json_object_get(run, "steps"), i, st)
  {
    if ((uint64_t)json_integer_value(json_object_get(st, "n")) == n &&
        str_of(st, "name") != NULL)
      found = st;
  }
  if (found == NULL || str_of(run, "dir") == NULL) {
    json_decref(run);
    ccci_web_error(w, r, 404, "no step %llu in run '%s'", (unsigned long long)n,
                   arg[0]);
    return;
  }
  p = ccci_xcalloc(1, sizeof(*p));
  p->w = w;
  p->r = r;
  p->n = (unsigned)n;
  p->from = from;
  p->limit = (size_t)limit;
  p->lines = (uint64_t)json_integer_value(json_object_get(found, "lines"));
  snprintf(p->id, sizeof(p->id), "%s", arg[0]);
  p->path = ccci_xasprintf("%s/logs/%llu-%s.jsonl", str_of(run, "dir"),
                           (unsigned long long)n, str_of(found, "name"));
  json_decref(run);
  ccci_buf_init(&p->b, SIZE_MAX);
  ccci_web_pend(w);
  if (uv_queue_work(w->env.loop, &p->work, log_page_work, log_page_done) < 0)
    log_page_done(&p->work, UV_ECANCELED);
}
