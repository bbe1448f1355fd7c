/* `ccci meta check`: a recipe checkout's recipe_meta.yml and hook files
 * checked the way the harness would use them. Reads files, runs nothing. */
#include "ccci/harness/metacheck.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The largest SECRETS value_file the harness reads. */
#define VALUE_FILE_MAX (64 * 1024)
#define META_FILE "recipe_meta.yml"

/* One file of the check: where it is and how it is shown. */
struct file {
  const char *path;  /* to open */
  const char *shown; /* in messages */
  enum ccci_meta_source source;
  char *text; /* its text once read */
  size_t len;
};

/* Append a message formatted from @p fmt and @p ap to @p v. */
static void add_msg(struct ccci_metacheck_msg **v, size_t *n, const char *file,
                    size_t line, size_t col, const char *fmt, va_list ap)
{
  struct ccci_metacheck_msg *m;
  *v = ccci_xrealloc(*v, (*n + 1) * sizeof(**v));
  m = &(*v)[(*n)++];
  m->file = ccci_xstrdup(file);
  m->line = line;
  m->column = line != 0 ? col : 0;
  m->message = ccci_xvasprintf(fmt, ap);
}

static void error_at(struct ccci_metacheck *c, const char *file, size_t line,
                     size_t col, const char *fmt, ...) CCCI_PRINTF(5, 6);
static void error_at(struct ccci_metacheck *c, const char *file, size_t line,
                     size_t col, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  add_msg(&c->errors, &c->nerrors, file, line, col, fmt, ap);
  va_end(ap);
}

static void warning_at(struct ccci_metacheck *c, const char *file, size_t line,
                       size_t col, const char *fmt, ...) CCCI_PRINTF(5, 6);

static const char *nz_file(const char *f)
{
  return f != NULL ? f : META_FILE;
}
static void warning_at(struct ccci_metacheck *c, const char *file, size_t line,
                       size_t col, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  add_msg(&c->warnings, &c->nwarnings, file, line, col, fmt, ap);
  va_end(ap);
}

/* Read a 1-based number at *@p s followed by @p end. */
static bool take_number(const char **s, char end, size_t *out)
{
  size_t v = 0;
  const char *p = *s;
  if (!isdigit((unsigned char)*p))
    return false;
  for (; isdigit((unsigned char)*p); p++) {
    if (v > SIZE_MAX / 10 - 10)
      return false;
    v = v * 10 + (size_t)(*p - '0');
  }
  if (*p != end)
    return false;
  *s = p + 1;
  *out = v;
  return true;
}

/* The key of c->meta that error @p message of file @p source is about
 * (`SKIP_TIERS[0]: ...`, `unknown key 'DEPS[1].verison'; ...`) is marked
 * failed when that file set it. */
static void mark_failed(struct ccci_metacheck *c, enum ccci_meta_source source,
                        const char *message)
{
  static const char *const prefixes[] = {"unknown key '", "duplicate key '"};
  size_t i, l;
  int k;
  for (i = 0; i < CCCI_ARRAY_LEN(prefixes); i++) {
    l = strlen(prefixes[i]);
    if (strncmp(message, prefixes[i], l) == 0) {
      message += l;
      break;
    }
  }
  for (k = 0; k < CCCI_META_NKEYS; k++) {
    const char *name = ccci_meta_key_name((enum ccci_meta_key)k);
    l = strlen(name);
    if (strncmp(message, name, l) == 0 && strchr(":[.'", message[l]) != NULL &&
        message[l] != '\0' && c->meta.origin[k].source == source)
      c->failed[k] = true;
  }
}

/* The error text of the loader (`<shown>:L:C: message` lines) as errors. */
static void add_parse_errors(struct ccci_metacheck *c, const char *shown,
                             enum ccci_meta_source source, const char *errors)
{
  size_t sl = strlen(shown);
  char *copy = ccci_xstrdup(errors), *line, *save = NULL;
  for (line = strtok_r(copy, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    const char *p = line;
    size_t l = 0, col = 0;
    if (strncmp(line, shown, sl) == 0 && line[sl] == ':') {
      p = line + sl + 1;
      if (take_number(&p, ':', &l) && take_number(&p, ':', &col)) {
        /* file:line:column: */
      } else {
        p = line + sl + 1;
        l = col = 0;
      }
      while (*p == ' ')
        p++;
    }
    if (source != CCCI_META_FROM_DEFAULT)
      mark_failed(c, source, p);
    error_at(c, shown, l, col, "%s", p);
  }
  free(copy);
}

/* The 1-based column of top-level key @p name on line @p line of @p f's
 * text; 0 when it is not found there (a flow mapping, say). */
static size_t key_column(const struct file *f, size_t line, const char *name)
{
  size_t i = 0, l = 1, nl = strlen(name);
  const char *s, *end, *p;
  if (f->text == NULL || line == 0)
    return 0;
  for (; i < f->len && l < line; i++)
    if (f->text[i] == '\n')
      l++;
  if (l != line)
    return 0;
  s = f->text + i;
  end = memchr(s, '\n', f->len - i);
  if (end == NULL)
    end = f->text + f->len;
  for (p = s; p + nl <= end; p++) {
    const char *q = p + nl;
    if (memcmp(p, name, nl) != 0 ||
        (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
      continue;
    while (q < end && *q == ' ')
      q++;
    if (q < end && *q == ':')
      return (size_t)(p - s) + 1;
  }
  return 0;
}

/* The directory of @p path, absolute when it resolves. */
static char *base_dir_of(const char *path)
{
  char *dir = ccci_dirname(path), *abs = realpath(dir, NULL);
  if (abs != NULL) {
    free(dir);
    return abs;
  }
  return dir;
}

/* Parse @p f over c->meta when it exists. Returns true when it was read and
 * parsed without an error (its values may then be checked). */
static bool parse_file(struct ccci_metacheck *c, struct file *f)
{
  struct stat st;
  char *base, *errors = NULL;
  int r;

  if (stat(f->path, &st) < 0 && errno == ENOENT)
    return false; /* missing (or a dangling link): sets nothing, as the
                     loader */
  r = ccci_read_file(f->path, CCCI_META_MAX_BYTES, &f->text, &f->len);
  if (r == -EFBIG) {
    error_at(c, f->shown, 0, 0, "file is larger than %d bytes",
             CCCI_META_MAX_BYTES);
    return false;
  }
  if (r < 0) {
    error_at(c, f->shown, 0, 0, "cannot read: %s", strerror(-r));
    return false;
  }
  base = base_dir_of(f->path);
  r = ccci_meta_parse(f->shown, base, f->text, f->len, f->source, &c->meta,
                      &errors);
  free(base);
  if (r < 0 && errors != NULL)
    add_parse_errors(c, f->shown, f->source, errors);
  else if (r < 0)
    error_at(c, f->shown, 0, 0, "does not load");
  free(errors);
  return r == 0;
}

/* Was key @p k set by file @p f? */
static bool set_by(const struct ccci_metacheck *c, const struct file *f,
                   enum ccci_meta_key k)
{
  return c->meta.origin[k].source == f->source && c->meta.origin[k].line != 0;
}

static void key_pos(const struct ccci_metacheck *c, const struct file *f,
                    enum ccci_meta_key k, size_t *line, size_t *col)
{
  *line = c->meta.origin[k].line;
  *col = key_column(f, *line, ccci_meta_key_name(k));
}

/* The values of @p f that only the file system can check. */
static void check_values(struct ccci_metacheck *c, const struct file *f,
                         const char *dir)
{
  size_t i, line, col;

  if (set_by(c, f, CCCI_META_COMPOSE_FILES)) {
    key_pos(c, f, CCCI_META_COMPOSE_FILES, &line, &col);
    for (i = 0; i < c->meta.compose_files.n; i++) {
      const char *v = c->meta.compose_files.v[i];
      char *p = ccci_path_join(dir, v);
      struct stat st;
      if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
        error_at(c, f->shown, line, col,
                 "COMPOSE_FILES[%zu]: %s is not a file of the recipe", i, v);
      free(p);
    }
  }
  if (set_by(c, f, CCCI_META_CUSTOM_TESTS)) {
    key_pos(c, f, CCCI_META_CUSTOM_TESTS, &line, &col);
    for (i = 0; i < c->meta.custom_tests.n; i++) {
      const char *v = c->meta.custom_tests.v[i];
      /* What the harness will run: files under tests/, no hook files. */
      if (ccci_hook_match_tests(dir, v, NULL, NULL) == 0)
        error_at(c, f->shown, line, col,
                 "CUSTOM_TESTS[%zu]: '%s' matches no file of the recipe", i, v);
    }
  }
  if (set_by(c, f, CCCI_META_SECRETS)) {
    key_pos(c, f, CCCI_META_SECRETS, &line, &col);
    for (i = 0; i < c->meta.nsecrets; i++) {
      const struct ccci_meta_secret *s = &c->meta.secrets[i];
      char *val = NULL;
      size_t vl = 0;
      int r;
      if (s->value_file == NULL)
        continue;
      if (f->source != CCCI_META_FROM_OPERATOR) {
        error_at(c, f->shown, line, col,
                 "SECRETS.%s.value_file: only the operator's overlay "
                 "(<harness.overlays_dir>/%s/recipe_meta.yml) may name a "
                 "value file; the recipe's tests/recipe_meta.yml is PR code",
                 s->name, c->recipe);
        continue;
      }
      r = ccci_read_file(s->value_file, VALUE_FILE_MAX, &val, &vl);
      if (r < 0)
        error_at(c, f->shown, line, col, "SECRETS.%s.value_file %s: %s",
                 s->name, s->value_file,
                 r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
      ccci_wipe_free(val, vl);
    }
  }
}

/* The DEPS recipes in the operator's abra dir, and their own files. */
static void check_deps(struct ccci_metacheck *c, const struct file *files,
                       const char *abra_dir)
{
  const struct file *f = NULL;
  size_t i, line = 0, col = 0;
  enum ccci_meta_source src = c->meta.origin[CCCI_META_DEPS].source;
  const char *shown;

  if (src == CCCI_META_FROM_DEFAULT)
    return;
  f = &files[src == CCCI_META_FROM_OPERATOR ? 1 : 0];
  shown = f->shown;
  key_pos(c, f, CCCI_META_DEPS, &line, &col);
  for (i = 0; i < c->meta.ndeps; i++) {
    const char *name = c->meta.deps[i].recipe;
    char *rdir, *mf;
    struct stat st;
    if (strcmp(name, c->recipe) == 0) {
      error_at(c, shown, line, col,
               "DEPS[%zu]: a recipe cannot depend on itself (%s)", i, name);
      continue;
    }
    if (abra_dir == NULL)
      continue;
    rdir = ccci_xasprintf("%s/recipes/%s", abra_dir, name);
    if (stat(rdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
      warning_at(c, shown, line, col,
                 "DEPS[%zu]: the recipe %s is not in %s/recipes (the harness "
                 "clones DEPS recipes from the operator's abra dir)",
                 i, name, abra_dir);
      free(rdir);
      continue;
    }
    mf = ccci_xasprintf("%s/tests/" META_FILE, rdir);
    if (stat(mf, &st) == 0) {
      struct ccci_meta dm;
      char *text = NULL, *errors = NULL, *base;
      size_t len = 0;
      int r = ccci_read_file(mf, CCCI_META_MAX_BYTES, &text, &len);
      ccci_meta_defaults(&dm);
      if (r < 0) {
        error_at(c, mf, 0, 0, "cannot read (DEPS[%zu] %s): %s", i, name,
                 r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
      } else {
        base = base_dir_of(mf);
        r = ccci_meta_parse(mf, base, text, len, CCCI_META_FROM_RECIPE, &dm,
                            &errors);
        free(base);
        if (r < 0 && errors != NULL)
          add_parse_errors(c, mf, CCCI_META_FROM_DEFAULT, errors);
      }
      free(errors);
      free(text);
      ccci_meta_free(&dm);
    }
    free(mf);
    free(rdir);
  }
}

/* @p path shown as @p shown: a hook copy that cannot work is an error. */
static void check_hook_copy(struct ccci_metacheck *c, const char *path,
                            const char *shown, const struct ccci_hook_info *h)
{
  struct stat st;
  if (lstat(path, &st) < 0)
    return;
  if (stat(path, &st) < 0) {
    error_at(c, shown, 0, 0, "a dangling symbolic link (%s fails when used)",
             h->file);
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    error_at(c, shown, 0, 0, "not a regular file (the harness %s)",
             S_ISDIR(st.st_mode) ? "ignores a directory of a hook's name"
                                 : "needs a file");
    return;
  }
  if (h->executable && (st.st_mode & S_IXUSR) == 0)
    error_at(c, shown, 0, 0,
             "not executable (the harness runs it directly: chmod +x %s, "
             "and commit the mode)",
             shown);
}

/* The names in @p dir (shown as @p shown) that look like a hook file or
 * recipe_meta.yml but are none. */
static void check_names(struct ccci_metacheck *c, const char *dir,
                        const char *shown)
{
  struct dirent **names = NULL;
  int n, i;

  if (dir == NULL)
    return;
  n = scandir(dir, &names, NULL, alphasort);
  for (i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    char *p = ccci_path_join(dir, name), *fshown, *why;
    struct stat st;
    bool isdir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (name[0] == '.' || isdir) {
      free(names[i]);
      continue;
    }
    fshown = ccci_xasprintf("%s/%s", shown, name);
    why = ccci_hook_misnamed(name);
    if (why != NULL) {
      size_t l = strlen(name);
      const char *m = why;
      if (strncmp(why, name, l) == 0 && strncmp(why + l, ": ", 2) == 0)
        m = why + l + 2;
      error_at(c, fshown, 0, 0, "%s", m);
      free(why);
    } else if (strcmp(name, META_FILE) != 0 &&
               ccci_edit_distance(name, META_FILE) <= 2) {
      error_at(c, fshown, 0, 0,
               "not read; did you mean " META_FILE
               "? (as it is named, the harness does not read it)");
    }
    free(fshown);
    free(names[i]);
  }
  free(names);
}

/* The hook files: where a run finds each, and every copy checked. */
static void check_hooks(struct ccci_metacheck *c, const char *dir,
                        const char *overlay_dir)
{
  char *tests = ccci_path_join(dir, "tests");
  int k;

  for (k = 0; k < CCCI_HOOK_COUNT; k++) {
    const struct ccci_hook_info *h = ccci_hook_info((enum ccci_hook)k);
    char *path = NULL, *p, *shown;
    enum ccci_meta_source src =
        ccci_hook_find(overlay_dir, tests, (enum ccci_hook)k, &path);
    struct stat st;

    c->hooks[k].source = src;
    if (src == CCCI_META_FROM_RECIPE)
      c->hooks[k].path = ccci_xasprintf("tests/%s", h->file);
    else if (src == CCCI_META_FROM_OPERATOR)
      c->hooks[k].path = ccci_xstrdup(path);
    free(path);
    if (overlay_dir != NULL) {
      p = ccci_path_join(overlay_dir, h->file);
      check_hook_copy(c, p, p, h);
      free(p);
    }
    p = ccci_path_join(tests, h->file);
    shown = ccci_xasprintf("tests/%s", h->file);
    check_hook_copy(c, p, shown, h);
    free(shown);
    free(p);
    p = ccci_path_join(dir, h->file);
    if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
      warning_at(c, h->file, 0, 0,
                 "in the top directory it is not used; move it to tests/");
    free(p);
  }
  {
    char *p = ccci_path_join(dir, META_FILE);
    struct stat st;
    if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
      warning_at(c, META_FILE, 0, 0,
                 "in the top directory it is not read; move it to tests/");
    free(p);
  }
  check_names(c, tests, "tests");
  check_names(c, overlay_dir, overlay_dir);
  free(tests);
}

static char *base_name_of(const char *path)
{
  const char *s = strrchr(path, '/');
  return ccci_xstrdup(s != NULL && s[1] != '\0' ? s + 1 : path);
}

int ccci_metacheck_run(const char *dir, const char *overlays_dir,
                       const char *abra_dir, struct ccci_metacheck *out,
                       char **cause)
{
  struct file files[2];
  char *real = NULL, *rpath = NULL, *overlay_dir = NULL;
  struct stat st;
  bool ok;
  int i;

  memset(out, 0, sizeof(*out));
  memset(files, 0, sizeof(files));
  *cause = NULL;
  ccci_meta_defaults(&out->meta);
  if (stat(dir, &st) < 0) {
    int e = errno;
    *cause = ccci_xasprintf("%s: %s", dir, strerror(e));
    return e == ENOTDIR ? -ENOTDIR : -ENOENT;
  }
  if (!S_ISDIR(st.st_mode)) {
    *cause = ccci_xasprintf("%s: not a directory (a recipe checkout)", dir);
    return -ENOTDIR;
  }
  real = realpath(dir, NULL);
  if (real == NULL) {
    *cause = ccci_xasprintf("%s: %s", dir, strerror(errno));
    return -ENOENT;
  }
  out->recipe = base_name_of(real);
  out->recipe_file = ccci_xstrdup("tests/" META_FILE);
  rpath = ccci_path_join(real, out->recipe_file);
  files[0] =
      (struct file){rpath, out->recipe_file, CCCI_META_FROM_RECIPE, NULL, 0};
  if (overlays_dir != NULL) {
    overlay_dir = ccci_path_join(overlays_dir, out->recipe);
    out->operator_file = ccci_path_join(overlay_dir, META_FILE);
  }
  files[1] = (struct file){out->operator_file, out->operator_file,
                           CCCI_META_FROM_OPERATOR, NULL, 0};

  /* As ccci_meta_load: defaults, the recipe's file, the operator's over
   * it; each file's own values are checked right after it parsed, so a
   * value the operator replaces is still the recipe's to fix. */
  for (i = 0; i < 2; i++) {
    if (files[i].path == NULL)
      continue;
    ok = parse_file(out, &files[i]);
    if (ok)
      check_values(out, &files[i], real);
  }
  check_deps(out, files, abra_dir);
  check_hooks(out, real, overlay_dir);

  for (i = 0; i < 2; i++)
    free(files[i].text);
  free(rpath);
  free(overlay_dir);
  free(real);
  return 0;
}

/* The file that set key @p k, as shown; NULL for a default. */
static const char *origin_file(const struct ccci_metacheck *c,
                               enum ccci_meta_key k);

static bool has_all_labels(const struct ccci_server_conf *s,
                           const struct ccci_strlist *want)
{
  size_t i, j;
  for (i = 0; i < want->n; i++) {
    for (j = 0; j < s->labels.n; j++)
      if (strcmp(want->v[i], s->labels.v[j]) == 0)
        break;
    if (j == s->labels.n)
      return false;
  }
  return true;
}

void ccci_metacheck_pool(struct ccci_metacheck *c,
                         const struct ccci_config *cfg)
{
  const struct ccci_strlist *sv = &c->meta.servers,
                            *lb = &c->meta.server_labels;
  const char *sf = origin_file(c, CCCI_META_SERVERS);
  const char *lf = origin_file(c, CCCI_META_SERVER_LABELS);
  size_t i, matching = 0;

  if (cfg->servers.n == 0 || (sv->n == 0 && lb->n == 0) ||
      c->failed[CCCI_META_SERVERS] || c->failed[CCCI_META_SERVER_LABELS])
    return;
  for (i = 0; i < sv->n; i++)
    if (ccci_config_server(cfg, sv->v[i]) == NULL)
      warning_at(c, nz_file(sf), c->meta.origin[CCCI_META_SERVERS].line, 1,
                 "SERVERS[%zu]: '%s' is not a server of the pool (servers: "
                 "of %s)",
                 i, sv->v[i], cfg->source);
  for (i = 0; i < cfg->servers.n; i++) {
    const struct ccci_server_conf *s = &cfg->servers.v[i];
    size_t j;
    bool listed = sv->n == 0;
    for (j = 0; j < sv->n && !listed; j++)
      listed = strcmp(sv->v[j], s->name) == 0;
    if (listed && has_all_labels(s, lb))
      matching++;
  }
  if (matching == 0) {
    bool by_labels = lb->n > 0;
    warning_at(
        c, nz_file(by_labels ? lf : sf),
        c->meta.origin[by_labels ? CCCI_META_SERVER_LABELS : CCCI_META_SERVERS]
            .line,
        1,
        "no server of the pool (servers: of %s) is %s: a run would "
        "wait queued",
        cfg->source,
        sv->n > 0 && by_labels ? "in SERVERS with every SERVER_LABELS"
        : by_labels            ? "labelled with every SERVER_LABELS"
                               : "in SERVERS");
  }
}

static void free_msgs(struct ccci_metacheck_msg *v, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) {
    free(v[i].file);
    free(v[i].message);
  }
  free(v);
}

void ccci_metacheck_free(struct ccci_metacheck *c)
{
  int k;
  if (c == NULL)
    return;
  free(c->recipe);
  free(c->recipe_file);
  free(c->operator_file);
  ccci_meta_free(&c->meta);
  free_msgs(c->errors, c->nerrors);
  free_msgs(c->warnings, c->nwarnings);
  for (k = 0; k < CCCI_HOOK_COUNT; k++)
    free(c->hooks[k].path);
  memset(c, 0, sizeof(*c));
}

/* The file that set key @p k, as shown; NULL for a default. */
static const char *origin_file(const struct ccci_metacheck *c,
                               enum ccci_meta_key k)
{
  switch (c->meta.origin[k].source) {
  case CCCI_META_FROM_RECIPE:
    return c->recipe_file;
  case CCCI_META_FROM_OPERATOR:
    return c->operator_file;
  case CCCI_META_FROM_DEFAULT:
    break;
  }
  return NULL;
}

char *ccci_metacheck_origin(const struct ccci_metacheck *c,
                            enum ccci_meta_key k)
{
  const char *f = origin_file(c, k);
  if (f == NULL)
    return ccci_xstrdup("default");
  return ccci_xasprintf(
      "%s %s:%zu%s", ccci_meta_source_name(c->meta.origin[k].source), f,
      c->meta.origin[k].line, c->failed[k] ? ", does not load" : "");
}

static json_t *msgs_json(const struct ccci_metacheck_msg *v, size_t n)
{
  json_t *a = json_array();
  size_t i;
  for (i = 0; i < n; i++)
    json_array_append_new(
        a, json_pack("{s:s,s:o,s:o,s:s}", "file", v[i].file, "line",
                     v[i].line != 0 ? json_integer((json_int_t)v[i].line)
                                    : json_null(),
                     "column",
                     v[i].column != 0 ? json_integer((json_int_t)v[i].column)
                                      : json_null(),
                     "message", v[i].message));
  return a;
}

json_t *ccci_metacheck_to_json(const struct ccci_metacheck *c)
{
  json_t *root = json_object(), *keys = json_object(), *hooks = json_object();
  json_t *values = ccci_meta_to_json(&c->meta);
  int k;

  json_object_set_new(root, "recipe", json_string(c->recipe));
  json_object_set_new(root, "valid", json_boolean(c->nerrors == 0));
  json_object_set_new(root, "errors", msgs_json(c->errors, c->nerrors));
  json_object_set_new(root, "warnings", msgs_json(c->warnings, c->nwarnings));
  for (k = 0; k < CCCI_META_NKEYS; k++) {
    const char *name = ccci_meta_key_name((enum ccci_meta_key)k);
    const char *f = origin_file(c, (enum ccci_meta_key)k);
    json_t *v = json_object_get(values, name);
    json_object_set_new(
        keys, name,
        json_pack("{s:O,s:s,s:o,s:o,s:b}", "value", v != NULL ? v : json_null(),
                  "source", ccci_meta_source_name(c->meta.origin[k].source),
                  "file", f != NULL ? json_string(f) : json_null(), "line",
                  f != NULL ? json_integer((json_int_t)c->meta.origin[k].line)
                            : json_null(),
                  "loaded", !c->failed[k]));
  }
  json_object_set_new(root, "keys", keys);
  for (k = 0; k < CCCI_HOOK_COUNT; k++) {
    const struct ccci_metacheck_hook *h = &c->hooks[k];
    json_object_set_new(
        hooks, ccci_hook_info((enum ccci_hook)k)->file,
        json_pack("{s:o,s:s}", "path",
                  h->path != NULL ? json_string(h->path) : json_null(),
                  "source",
                  h->source == CCCI_META_FROM_DEFAULT
                      ? "none"
                      : ccci_meta_source_name(h->source)));
  }
  json_object_set_new(root, "hooks", hooks);
  json_decref(values);
  return root;
}
