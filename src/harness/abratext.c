/* abra command templates and abra/docker output parsing (no I/O). */
#include "ccci/harness/abratext.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *var_value(const struct ccci_abratext_vars *v,
                             const char *name, size_t len, bool *known)
{
  static const struct {
    const char *name;
    size_t off;
  } names[] = {
      {"domain", offsetof(struct ccci_abratext_vars, domain)},
      {"server", offsetof(struct ccci_abratext_vars, server)},
      {"recipe", offsetof(struct ccci_abratext_vars, recipe)},
      {"stack", offsetof(struct ccci_abratext_vars, stack)},
      {"service", offsetof(struct ccci_abratext_vars, service)},
      {"secret", offsetof(struct ccci_abratext_vars, secret)},
      {"version", offsetof(struct ccci_abratext_vars, version)},
      {"file", offsetof(struct ccci_abratext_vars, file)},
  };
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(names); i++) {
    if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) {
      const char *s =
          *(const char *const *)(const void *)((const char *)v + names[i].off);
      *known = true;
      return s != NULL ? s : "";
    }
  }
  *known = false;
  return NULL;
}

static char *expand_one(const char *t, const struct ccci_abratext_vars *v)
{
  struct ccci_buf b;
  const char *p = t;
  ccci_buf_init(&b, SIZE_MAX / 2);
  while (*p != '\0') {
    const char *close;
    bool known = false;
    const char *val = NULL;
    if (*p == '{' && p[1] != '{' && (close = strchr(p + 1, '}')) != NULL)
      val = var_value(v, p + 1, (size_t)(close - p - 1), &known);
    if (known) {
      if (ccci_buf_append(&b, val, strlen(val)) < 0)
        abort();
      p = close + 1;
      continue;
    }
    if (*p == '{' && p[1] == '{') {
      /* Keep a docker `{{...}}` group whole, so `{{.Name}}` is literal. */
      const char *end = strstr(p, "}}");
      size_t n = end != NULL ? (size_t)(end + 2 - p) : strlen(p);
      if (ccci_buf_append(&b, p, n) < 0)
        abort();
      p += n;
      continue;
    }
    if (ccci_buf_append(&b, p, 1) < 0)
      abort();
    p++;
  }
  return ccci_buf_detach(&b);
}

int ccci_abratext_expand(const struct ccci_strlist *tmpl,
                         const struct ccci_abratext_vars *vars, char ***out)
{
  size_t i, n = 0, extra = vars->args != NULL ? vars->args->n : 0;
  char **argv;

  *out = NULL;
  if (tmpl == NULL || tmpl->n == 0)
    return -EINVAL;
  argv = ccci_xcalloc(tmpl->n + extra + 1, sizeof(char *));
  for (i = 0; i < tmpl->n; i++) {
    size_t j;
    if (strcmp(tmpl->v[i], "{args}") == 0) {
      for (j = 0; j < extra; j++)
        argv[n++] = ccci_xstrdup(vars->args->v[j]);
      continue;
    }
    argv[n++] = expand_one(tmpl->v[i], vars);
  }
  argv[n] = NULL;
  *out = argv;
  return 0;
}

void ccci_abratext_argv_free(char **argv)
{
  size_t i;
  if (argv == NULL)
    return;
  for (i = 0; argv[i] != NULL; i++)
    free(argv[i]);
  free(argv);
}

char *ccci_abratext_stack(const char *domain)
{
  size_t i, n = strlen(domain);
  char *s;
  if (n > CCCI_ABRATEXT_STACK_MAX)
    n = CCCI_ABRATEXT_STACK_MAX;
  s = ccci_xstrndup(domain, n);
  for (i = 0; i < n; i++)
    if (s[i] == '.')
      s[i] = '_';
  return s;
}

/* Parse "X.Y.Z" at @p s into @p v; the rest (after it) in @p rest. */
static bool parse_xyz(const char *s, uint64_t v[3], const char **rest)
{
  int i;
  if (*s == 'v')
    s++;
  for (i = 0; i < 3; i++) {
    uint64_t x = 0;
    if (!isdigit((unsigned char)*s))
      return false;
    while (isdigit((unsigned char)*s)) {
      if (x > UINT64_MAX / 10 - 10)
        return false;
      x = x * 10 + (uint64_t)(*s - '0');
      s++;
    }
    v[i] = x;
    if (i < 2) {
      if (*s != '.')
        return false;
      s++;
    }
  }
  *rest = s;
  return true;
}

bool ccci_abratext_is_release(const char *tag)
{
  uint64_t v[3];
  const char *rest;
  if (!parse_xyz(tag, v, &rest))
    return false;
  if (*rest == '\0')
    return true;
  return *rest == '+' && rest[1] != '\0';
}

/* Compare dot-separated parts: numbers numerically, else as text. */
static int parts_cmp(const char *a, const char *b)
{
  while (*a != '\0' || *b != '\0') {
    size_t la = strcspn(a, ".-"), lb = strcspn(b, ".-");
    bool na = la > 0 && strspn(a, "0123456789") >= la;
    bool nb = lb > 0 && strspn(b, "0123456789") >= lb;
    int c;
    if (la == 0 && *a == '\0')
      return -1;
    if (lb == 0 && *b == '\0')
      return 1;
    if (na && nb) {
      /* Strip leading zeros, then the longer number is the larger. */
      while (la > 1 && *a == '0') {
        a++;
        la--;
      }
      while (lb > 1 && *b == '0') {
        b++;
        lb--;
      }
      if (la != lb)
        return la < lb ? -1 : 1;
      c = memcmp(a, b, la);
    } else if (na != nb) {
      c = na ? -1 : 1;
    } else {
      c = memcmp(a, b, la < lb ? la : lb);
      if (c == 0 && la != lb)
        c = la < lb ? -1 : 1;
    }
    if (c != 0)
      return c < 0 ? -1 : 1;
    a += la;
    b += lb;
    if (*a != '\0')
      a++;
    if (*b != '\0')
      b++;
  }
  return 0;
}

int ccci_abratext_tag_cmp(const char *a, const char *b)
{
  uint64_t va[3], vb[3];
  const char *ra, *rb;
  int i;
  if (!parse_xyz(a, va, &ra) || !parse_xyz(b, vb, &rb))
    return strcmp(a, b);
  for (i = 0; i < 3; i++)
    if (va[i] != vb[i])
      return va[i] < vb[i] ? -1 : 1;
  if (*ra == '\0' || *rb == '\0')
    return (*ra != '\0') - (*rb != '\0');
  return parts_cmp(ra + 1, rb + 1);
}

const char *ccci_abratext_newest_release(const char *const *tags, size_t n)
{
  const char *best = NULL;
  size_t i;
  for (i = 0; i < n; i++) {
    if (!ccci_abratext_is_release(tags[i]))
      continue;
    if (best == NULL || ccci_abratext_tag_cmp(tags[i], best) > 0)
      best = tags[i];
  }
  return best;
}

/* Split @p line (of @p len bytes) into cells: runs of bytes that are not
 * blanks or table rules (`|` and the box-drawing characters U+2500..257F,
 * UTF-8 E2 94..95 xx). Returns the number of cells (at most @p max). */
static size_t cells(const char *line, size_t len, const char **cell,
                    size_t *clen, size_t max)
{
  size_t i = 0, n = 0;
  while (i < len) {
    size_t start;
    unsigned char c = (unsigned char)line[i];
    if (c == ' ' || c == '\t' || c == '|' || c == '\r') {
      i++;
      continue;
    }
    if (c == 0xE2 && i + 2 < len &&
        ((unsigned char)line[i + 1] == 0x94 ||
         (unsigned char)line[i + 1] == 0x95)) {
      i += 3;
      continue;
    }
    start = i;
    while (i < len) {
      c = (unsigned char)line[i];
      if (c == ' ' || c == '\t' || c == '|' || c == '\r')
        break;
      if (c == 0xE2 && i + 2 < len &&
          ((unsigned char)line[i + 1] == 0x94 ||
           (unsigned char)line[i + 1] == 0x95))
        break;
      i++;
    }
    if (n < max) {
      cell[n] = line + start;
      clen[n] = i - start;
    }
    n++;
  }
  return n < max ? n : max;
}

static bool cell_is(const char *c, size_t n, const char *word)
{
  size_t i;
  if (n != strlen(word))
    return false;
  for (i = 0; i < n; i++)
    if (toupper((unsigned char)c[i]) != word[i])
      return false;
  return true;
}

int ccci_abratext_secret_values(const char *text, size_t len,
                                struct ccci_strlist *values)
{
  const char *p = text, *end = text + len;
  long vcol = -1;
  size_t ncols = 0;
  int found = 0;

  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t ll = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
    const char *cell[16];
    size_t clen[16], n = cells(p, ll, cell, clen, 16), i;
    if (vcol < 0) {
      bool has_name = false;
      for (i = 0; i < n; i++) {
        if (cell_is(cell[i], clen[i], "NAME"))
          has_name = true;
        if (cell_is(cell[i], clen[i], "VALUE"))
          vcol = (long)i;
      }
      if (!has_name)
        vcol = -1;
      ncols = n;
    } else if (n == ncols && n > (size_t)vcol) {
      /* A value with NUL bytes is kept as its NUL-free pieces, so every
       * visible byte of it is still masked. */
      const char *v = cell[vcol], *vend = cell[vcol] + clen[vcol];
      while (v < vend) {
        const char *z = memchr(v, '\0', (size_t)(vend - v));
        size_t pl = z != NULL ? (size_t)(z - v) : (size_t)(vend - v);
        if (pl > 0) {
          if (values->n >= 1024)
            return -ENOBUFS;
          values->v =
              ccci_xrealloc(values->v, (values->n + 2) * sizeof(char *));
          values->v[values->n++] = ccci_xstrndup(v, pl);
          values->v[values->n] = NULL;
          found++;
        }
        v += pl + 1;
      }
    }
    p += ll + 1;
  }
  return found;
}

static bool want_has(const struct ccci_strlist *want, const char *stack,
                     const char *name, size_t nlen)
{
  size_t i, sl = strlen(stack);
  if (want == NULL || want->n == 0)
    return true;
  if (nlen <= sl + 1 || memcmp(name, stack, sl) != 0 || name[sl] != '_')
    return false;
  for (i = 0; i < want->n; i++)
    if (strlen(want->v[i]) == nlen - sl - 1 &&
        memcmp(want->v[i], name + sl + 1, nlen - sl - 1) == 0)
      return true;
  return false;
}

int ccci_abratext_services_ready(const char *text, const char *stack,
                                 const struct ccci_strlist *want, char **why)
{
  const char *p = text;
  size_t listed = 0, i, sl = strlen(stack);
  bool seen[64] = {false};

  *why = NULL;
  while (*p != '\0') {
    size_t ll = strcspn(p, "\n");
    const char *cell[4];
    size_t clen[4], n = cells(p, ll, cell, clen, 4);
    if (n >= 2 && clen[0] > sl && memcmp(cell[0], stack, sl) == 0 &&
        cell[0][sl] == '_' && want_has(want, stack, cell[0], clen[0])) {
      uint64_t have = 0, total = 0;
      const char *slash = memchr(cell[1], '/', clen[1]);
      char num[32];
      size_t a = slash != NULL ? (size_t)(slash - cell[1]) : 0;
      size_t b = slash != NULL ? clen[1] - a - 1 : 0;
      bool ok =
          slash != NULL && a > 0 && b > 0 && a < sizeof(num) && b < sizeof(num);
      if (ok) {
        memcpy(num, cell[1], a);
        num[a] = '\0';
        ok = ccci_parse_u64(num, &have) == 0;
      }
      if (ok) {
        memcpy(num, slash + 1, b);
        num[b] = '\0';
        /* docker appends " (max N per node)" or similar after a space. */
        ok = ccci_parse_u64(num, &total) == 0;
      }
      if (!ok || total == 0 || have != total) {
        *why = ccci_xasprintf("service %.*s is %.*s", (int)clen[0], cell[0],
                              (int)clen[1], cell[1]);
        return 0;
      }
      listed++;
      if (want != NULL)
        for (i = 0; i < want->n && i < 64; i++)
          if (strlen(want->v[i]) == clen[0] - sl - 1 &&
              memcmp(want->v[i], cell[0] + sl + 1, clen[0] - sl - 1) == 0)
            seen[i] = true;
    }
    p += ll;
    if (*p == '\n')
      p++;
  }
  if (want != NULL)
    for (i = 0; i < want->n && i < 64; i++)
      if (!seen[i]) {
        *why =
            ccci_xasprintf("service %s_%s is not running", stack, want->v[i]);
        return 0;
      }
  if (listed == 0) {
    *why = ccci_xasprintf("no service of stack %s is running", stack);
    return 0;
  }
  return 1;
}

int ccci_abratext_labels_check(const char *json, const char *stack,
                               const char *sha, const char *head_tag,
                               char **why)
{
  json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
  char *kv = ccci_xasprintf("coop-cloud.%s.version", stack);
  char *kc = ccci_xasprintf("coop-cloud.%s.chaos-version", stack);
  const char *ver, *chaos;
  size_t cl;
  int r = 1;

  *why = NULL;
  if (!json_is_object(j)) {
    *why = ccci_xstrdup("the service labels are not a JSON object");
    r = -EINVAL;
    goto out;
  }
  ver = json_string_value(json_object_get(j, kv));
  chaos = json_string_value(json_object_get(j, kc));
  if (chaos == NULL) {
    *why = ccci_xasprintf("no label %s on the app service", kc);
    r = 0;
    goto out;
  }
  cl = strcspn(chaos, "+");
  if (chaos[cl] != '\0') {
    *why = ccci_xasprintf("%s is %s: a dirty tree was deployed", kc, chaos);
    r = 0;
    goto out;
  }
  if (cl < 7 || sha == NULL || strlen(sha) < cl ||
      strncasecmp(chaos, sha, cl) != 0) {
    *why = ccci_xasprintf("%s is %s, not the PR head %s", kc, chaos,
                          sha != NULL ? sha : "(unknown)");
    r = 0;
    goto out;
  }
  if (ver == NULL) {
    *why = ccci_xasprintf("no label %s on the app service", kv);
    r = 0;
  } else if (head_tag != NULL && strcmp(ver, head_tag) != 0 &&
             strncasecmp(ver, sha, strlen(ver) < 7 ? 7 : strlen(ver)) != 0) {
    *why = ccci_xasprintf("%s is %s, not the head's release %s", kv, ver,
                          head_tag);
    r = 0;
  }
out:
  json_decref(j);
  free(kv);
  free(kc);
  return r;
}

bool ccci_abratext_has_backup_label(const char *text)
{
  const char *p = text;
  while ((p = strstr(p, "backupbot.backup")) != NULL) {
    const char *q = p + strlen("backupbot.backup");
    p = q;
    if (*q != '=' && *q != ':' && *q != '"' && *q != '\'')
      continue;
    while (*q == '"' || *q == '\'' || *q == ':' || *q == '=' || *q == ' ')
      q++;
    if (strncasecmp(q, "true", 4) == 0)
      return true;
  }
  return false;
}
