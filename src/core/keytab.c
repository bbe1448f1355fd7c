/* Key tables: one YAML file read into a caller's struct, key by key. */
#include "ccci/core/keytab.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const struct ccci_keytab_key *ccci_keytab_at(const struct ccci_keytab *t,
                                             size_t i)
{
  return (const struct ccci_keytab_key *)((const char *)t->entries +
                                          i * t->size + t->key_off);
}

static void *slot(void *target, const struct ccci_keytab_key *k)
{
  return (char *)target + k->off;
}

static const void *cslot(const void *target, const struct ccci_keytab_key *k)
{
  return (const char *)target + k->off;
}

/* ---- durations and sizes ---- */

struct unit {
  const char *u;
  uint64_t mult;
};

static int mul_add(uint64_t *acc, uint64_t n, uint64_t unit)
{
  if (unit != 0 && n > UINT64_MAX / unit)
    return -ERANGE;
  if (*acc > UINT64_MAX - n * unit)
    return -ERANGE;
  *acc += n * unit;
  return 0;
}

/* Read the decimal digits at *@p s (there is at least one) into @p n. */
static int digits(const char **s, uint64_t *n)
{
  *n = 0;
  while (isdigit((unsigned char)**s)) {
    uint64_t d = (uint64_t)(*(*s)++ - '0');
    if (*n > (UINT64_MAX - d) / 10)
      return -ERANGE;
    *n = *n * 10 + d;
  }
  return 0;
}

int ccci_keytab_parse_duration(const char *s, uint64_t *ms)
{
  static const struct unit units[] = {{"ms", 1},
                                      {"s", CCCI_SEC(1)},
                                      {"m", CCCI_MIN(1)},
                                      {"h", CCCI_HOUR(1)},
                                      {"d", CCCI_DAY(1)}};
  uint64_t total = 0;

  if (s == NULL || *s == '\0')
    return -EINVAL;
  if (strcmp(s, "0") == 0) {
    *ms = 0;
    return 0;
  }
  while (*s != '\0') {
    uint64_t n;
    size_t i, best = CCCI_ARRAY_LEN(units);
    if (!isdigit((unsigned char)*s))
      return -EINVAL;
    if (digits(&s, &n) < 0)
      return -ERANGE;
    /* The longest unit that matches ("ms" before "m"). */
    for (i = 0; i < CCCI_ARRAY_LEN(units); i++) {
      size_t l = strlen(units[i].u);
      if (strncmp(s, units[i].u, l) == 0 &&
          (best == CCCI_ARRAY_LEN(units) || l > strlen(units[best].u)))
        best = i;
    }
    if (best == CCCI_ARRAY_LEN(units))
      return -EINVAL;
    if (mul_add(&total, n, units[best].mult) < 0)
      return -ERANGE;
    s += strlen(units[best].u);
  }
  *ms = total;
  return 0;
}

int ccci_keytab_parse_size(const char *s, uint64_t *bytes)
{
  static const struct unit units[] = {{"", 1},
                                      {"B", 1},
                                      {"KiB", CCCI_KiB(1)},
                                      {"MiB", CCCI_MiB(1)},
                                      {"GiB", CCCI_GiB(1)},
                                      {"TiB", CCCI_TiB(1)},
                                      {"KB", 1000u},
                                      {"kB", 1000u},
                                      {"MB", 1000000u},
                                      {"GB", 1000000000u},
                                      {"TB", 1000000000000u}};
  uint64_t n, total = 0;
  size_t i;

  if (s == NULL || !isdigit((unsigned char)*s))
    return -EINVAL;
  if (digits(&s, &n) < 0)
    return -ERANGE;
  for (i = 0; i < CCCI_ARRAY_LEN(units); i++) {
    if (strcmp(s, units[i].u) == 0) {
      if (mul_add(&total, n, units[i].mult) < 0)
        return -ERANGE;
      *bytes = total;
      return 0;
    }
  }
  return -EINVAL;
}

/* Write @p v in the first of @p units (largest first) that divides it. */
static bool format_exact(uint64_t v, const struct unit *units, size_t n,
                         char out[32])
{
  size_t i;
  for (i = 0; v != 0 && i < n; i++) {
    if (v % units[i].mult == 0) {
      snprintf(out, 32, "%llu%s", (unsigned long long)(v / units[i].mult),
               units[i].u);
      return true;
    }
  }
  return false;
}

void ccci_keytab_format_duration(uint64_t ms, char out[32])
{
  static const struct unit units[] = {{"d", CCCI_DAY(1)},
                                      {"h", CCCI_HOUR(1)},
                                      {"m", CCCI_MIN(1)},
                                      {"s", CCCI_SEC(1)}};
  if (ms == 0)
    snprintf(out, 32, "0s");
  else if (!format_exact(ms, units, CCCI_ARRAY_LEN(units), out))
    snprintf(out, 32, "%llums", (unsigned long long)ms);
}

void ccci_keytab_format_size(uint64_t bytes, char out[32])
{
  static const struct unit units[] = {{"TiB", CCCI_TiB(1)},
                                      {"GiB", CCCI_GiB(1)},
                                      {"MiB", CCCI_MiB(1)},
                                      {"KiB", CCCI_KiB(1)}};
  if (!format_exact(bytes, units, CCCI_ARRAY_LEN(units), out))
    snprintf(out, 32, "%llu", (unsigned long long)bytes);
}

void ccci_keytab_format(const struct ccci_keytab_key *k, uint64_t v,
                        char out[32])
{
  if (k->type->format != NULL)
    k->type->format(v, out);
  else
    snprintf(out, 32, "%llu", (unsigned long long)v);
}

/* ---- the built-in types ---- */

const struct ccci_keytab_type ccci_keytab_string = {
    .storage = CCCI_KEYTAB_STR,
    .doc_name = "string",
    .expect = "a non-empty string",
};
const struct ccci_keytab_type ccci_keytab_int = {
    .storage = CCCI_KEYTAB_U64,
    .doc_name = "integer",
    .expect = "an integer",
};
const struct ccci_keytab_type ccci_keytab_duration = {
    .storage = CCCI_KEYTAB_U64,
    .doc_name = "duration",
    .expect = "a duration, like 500ms, 90s, 10m, 2h or 1d",
    .parse = ccci_keytab_parse_duration,
    .format = ccci_keytab_format_duration,
};
const struct ccci_keytab_type ccci_keytab_size = {
    .storage = CCCI_KEYTAB_U64,
    .doc_name = "size",
    .expect = "a size, like 4096, 64KiB, 256MiB or 1GiB",
    .parse = ccci_keytab_parse_size,
    .format = ccci_keytab_format_size,
};
const struct ccci_keytab_type ccci_keytab_bool = {
    .storage = CCCI_KEYTAB_BOOL,
    .doc_name = "boolean",
    .expect = "true or false",
};
const struct ccci_keytab_type ccci_keytab_strings = {
    .storage = CCCI_KEYTAB_LIST,
    .doc_name = "list of strings",
    .expect = "a list of non-empty strings",
};

/* ---- values: free, copy, compare ---- */

void ccci_strlist_clear(struct ccci_strlist *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* Lists stay NULL-terminated, so an argv can be used as is. */
static void strlist_push(struct ccci_strlist *l, char *s)
{
  l->v = ccci_xrealloc(l->v, (l->n + 2) * sizeof(*l->v));
  l->v[l->n++] = s;
  l->v[l->n] = NULL;
}

void ccci_strlist_add(struct ccci_strlist *l, const char *s)
{
  strlist_push(l, ccci_xstrdup(s));
}

void ccci_strlist_copy(struct ccci_strlist *to, const struct ccci_strlist *from)
{
  size_t i;
  to->v = ccci_xcalloc(from->n + 1, sizeof(*to->v));
  for (i = 0; i < from->n; i++)
    to->v[i] = ccci_xstrdup(from->v[i]);
  to->n = from->n;
}

bool ccci_strlist_has(const struct ccci_strlist *l, const char *s)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return true;
  return false;
}

static void strmap_free(struct ccci_strmap *m)
{
  size_t i;
  for (i = 0; i < m->n; i++) {
    free(m->keys[i]);
    free(m->vals[i]);
  }
  free(m->keys);
  free(m->vals);
  m->keys = NULL;
  m->vals = NULL;
  m->n = 0;
}

/* The @p i th record of the array @p a of records of @p type. */
static void *rec_at(const struct ccci_keytab_type *type,
                    const struct ccci_keytab_array *a, size_t i)
{
  return (char *)a->v + i * type->record_size;
}

static char **rec_name(const struct ccci_keytab_type *type, void *rec)
{
  return (char **)((char *)rec + type->name_off);
}

static void records_free(const struct ccci_keytab_type *type,
                         struct ccci_keytab_array *a)
{
  size_t i;
  for (i = 0; i < a->n; i++) {
    void *rec = rec_at(type, a, i);
    ccci_keytab_free(type->fields, rec);
    if (type->storage == CCCI_KEYTAB_RECORD_MAP) {
      free(*rec_name(type, rec));
      *rec_name(type, rec) = NULL;
    }
  }
  free(a->v);
  a->v = NULL;
  a->n = 0;
}

void ccci_keytab_free(const struct ccci_keytab *t, void *target)
{
  size_t i;
  for (i = 0; i < t->n; i++) {
    const struct ccci_keytab_key *k = ccci_keytab_at(t, i);
    void *p = slot(target, k);
    switch (k->type->storage) {
    case CCCI_KEYTAB_STR:
      free(*(char **)p);
      *(char **)p = NULL;
      break;
    case CCCI_KEYTAB_U64:
      *(uint64_t *)p = 0;
      break;
    case CCCI_KEYTAB_BOOL:
      *(bool *)p = false;
      break;
    case CCCI_KEYTAB_LIST:
      ccci_strlist_clear(p);
      break;
    case CCCI_KEYTAB_MAP:
      strmap_free(p);
      break;
    case CCCI_KEYTAB_TRIBOOL:
      *(int *)p = -1;
      break;
    case CCCI_KEYTAB_RECORD:
      ccci_keytab_free(k->type->fields, p);
      break;
    case CCCI_KEYTAB_RECORDS:
    case CCCI_KEYTAB_RECORD_MAP:
      records_free(k->type, p);
      break;
    }
  }
}

static void copy_value(const struct ccci_keytab_key *k, void *dst,
                       const void *src)
{
  const void *from = cslot(src, k);
  void *to = slot(dst, k);
  size_t i;

  switch (k->type->storage) {
  case CCCI_KEYTAB_STR:
    *(char **)to = ccci_xstrdup(*(char *const *)from);
    break;
  case CCCI_KEYTAB_U64:
    *(uint64_t *)to = *(const uint64_t *)from;
    break;
  case CCCI_KEYTAB_BOOL:
    *(bool *)to = *(const bool *)from;
    break;
  case CCCI_KEYTAB_LIST: {
    const struct ccci_strlist *fl = from;
    for (i = 0; i < fl->n; i++)
      strlist_push(to, ccci_xstrdup(fl->v[i]));
    break;
  }
  case CCCI_KEYTAB_MAP: {
    const struct ccci_strmap *fm = from;
    struct ccci_strmap *tm = to;
    tm->keys = ccci_xcalloc(fm->n, sizeof(char *));
    tm->vals = ccci_xcalloc(fm->n, sizeof(char *));
    for (i = 0; i < fm->n; i++) {
      tm->keys[i] = ccci_xstrdup(fm->keys[i]);
      tm->vals[i] = ccci_xstrdup(fm->vals[i]);
    }
    tm->n = fm->n;
    break;
  }
  case CCCI_KEYTAB_TRIBOOL:
    *(int *)to = *(const int *)from;
    break;
  case CCCI_KEYTAB_RECORD:
    ccci_keytab_copy(k->type->fields, to, from);
    break;
  case CCCI_KEYTAB_RECORDS:
  case CCCI_KEYTAB_RECORD_MAP: {
    const struct ccci_keytab_array *fa = from;
    struct ccci_keytab_array *ta = to;
    ta->v = ccci_xcalloc(fa->n + 1, k->type->record_size);
    for (i = 0; i < fa->n; i++) {
      void *tr = rec_at(k->type, ta, i);
      ccci_keytab_copy(k->type->fields, tr, rec_at(k->type, fa, i));
      if (k->type->storage == CCCI_KEYTAB_RECORD_MAP)
        *rec_name(k->type, tr) =
            ccci_xstrdup(*rec_name(k->type, rec_at(k->type, fa, i)));
    }
    ta->n = fa->n;
    break;
  }
  }
}

void ccci_keytab_copy(const struct ccci_keytab *t, void *dst, const void *src)
{
  size_t i;
  for (i = 0; i < t->n; i++)
    copy_value(ccci_keytab_at(t, i), dst, src);
}

static bool str_eq(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static bool records_equal(const struct ccci_keytab *fields, const void *a,
                          const void *b)
{
  size_t i;
  for (i = 0; i < fields->n; i++)
    if (!ccci_keytab_equal(ccci_keytab_at(fields, i), a, b))
      return false;
  return true;
}

bool ccci_keytab_equal(const struct ccci_keytab_key *k, const void *a,
                       const void *b)
{
  const void *pa = cslot(a, k), *pb = cslot(b, k);
  size_t i;
  switch (k->type->storage) {
  case CCCI_KEYTAB_STR:
    return str_eq(*(char *const *)pa, *(char *const *)pb);
  case CCCI_KEYTAB_U64:
    return *(const uint64_t *)pa == *(const uint64_t *)pb;
  case CCCI_KEYTAB_BOOL:
    return *(const bool *)pa == *(const bool *)pb;
  case CCCI_KEYTAB_LIST: {
    const struct ccci_strlist *la = pa, *lb = pb;
    if (la->n != lb->n)
      return false;
    for (i = 0; i < la->n; i++)
      if (strcmp(la->v[i], lb->v[i]) != 0)
        return false;
    return true;
  }
  case CCCI_KEYTAB_MAP: {
    const struct ccci_strmap *ma = pa, *mb = pb;
    if (ma->n != mb->n)
      return false;
    for (i = 0; i < ma->n; i++)
      if (strcmp(ma->keys[i], mb->keys[i]) != 0 ||
          strcmp(ma->vals[i], mb->vals[i]) != 0)
        return false;
    return true;
  }
  case CCCI_KEYTAB_TRIBOOL:
    return *(const int *)pa == *(const int *)pb;
  case CCCI_KEYTAB_RECORD:
    return records_equal(k->type->fields, pa, pb);
  case CCCI_KEYTAB_RECORDS:
  case CCCI_KEYTAB_RECORD_MAP: {
    const struct ccci_keytab_array *aa = pa, *ab = pb;
    if (aa->n != ab->n)
      return false;
    for (i = 0; i < aa->n; i++) {
      void *ra = rec_at(k->type, aa, i), *rb = rec_at(k->type, ab, i);
      if (k->type->storage == CCCI_KEYTAB_RECORD_MAP &&
          strcmp(*rec_name(k->type, ra), *rec_name(k->type, rb)) != 0)
        return false;
      if (!records_equal(k->type->fields, ra, rb))
        return false;
    }
    return true;
  }
  }
  return false;
}

/* ---- parsing ---- */

struct parse {
  const struct ccci_keytab *t;
  const char *name;
  const char *base_dir;
  yaml_document_t *doc;
  void *target;
  struct ccci_buf errors;
  unsigned nerrors;
  size_t *seen_line; /* per key, 1-based line where it was set; 0: not */
  size_t *set_line;  /* the caller's: the same for non-empty values, or NULL */
  const char *label; /* before key names in messages: "DEPS[0]." in a record */
  char lbuf[256];    /* lbl()'s */
  struct {
    char *name; /* dotted, like a key */
    size_t line;
  } * sections; /* sections of the table seen so far */
  size_t nsections;
};

static void add_error(struct parse *ps, const yaml_mark_t *mark,
                      const char *fmt, ...) CCCI_PRINTF(3, 4);

/* Key @p k's name in messages: with the record it is in, if any. */
static const char *lbl(struct parse *ps, const struct ccci_keytab_key *k)
{
  snprintf(ps->lbuf, sizeof(ps->lbuf), "%s%s", ps->label ? ps->label : "",
           k->name);
  return ps->lbuf;
}

static void add_error(struct parse *ps, const yaml_mark_t *mark,
                      const char *fmt, ...)
{
  va_list ap;
  char *msg;
  int r;

  ps->nerrors++;
  if (ps->nerrors > CCCI_KEYTAB_MAX_ERRORS)
    return;
  va_start(ap, fmt);
  msg = ccci_xvasprintf(fmt, ap);
  va_end(ap);
  if (ps->nerrors == CCCI_KEYTAB_MAX_ERRORS) {
    free(msg);
    msg = ccci_xstrdup("too many errors; stopping here");
  }
  if (mark != NULL)
    r = ccci_buf_printf(&ps->errors, "%s:%zu:%zu: %s\n", ps->name,
                        mark->line + 1, mark->column + 1, msg);
  else
    r = ccci_buf_printf(&ps->errors, "%s: %s\n", ps->name, msg);
  (void)r; /* the error buffer is uncapped (SIZE_MAX) */
  free(msg);
}

/* A short, printable rendering of @p len bytes of user text for messages:
 * control bytes, quotes and backslashes as \xNN, cut after 60 bytes. */
static char *printable_n(const char *v, size_t len)
{
  struct ccci_buf b;
  size_t i;
  int r = 0;

  ccci_buf_init(&b, SIZE_MAX);
  for (i = 0; i < len && i < 60 && r == 0; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
      r = ccci_buf_printf(&b, "\\x%02x", c);
    else
      r = ccci_buf_append(&b, &v[i], 1);
  }
  if (r == 0 && len > 60)
    r = ccci_buf_append(&b, "...", 3);
  (void)r; /* uncapped */
  return ccci_buf_detach(&b);
}

static char *show(const yaml_node_t *n)
{
  return printable_n((const char *)n->data.scalar.value, n->data.scalar.length);
}

static const char *node_kind(const yaml_node_t *n)
{
  switch (n->type) {
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "a scalar";
  }
}

static bool is_null(const yaml_node_t *n)
{
  const char *v;
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  v = (const char *)n->data.scalar.value;
  return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Does the scalar @p n hold a NUL byte (which C strings cannot carry)? */
static bool has_nul(const yaml_node_t *n)
{
  return strlen((const char *)n->data.scalar.value) != n->data.scalar.length;
}

/* Check one string item of key @p k (its value, or an item of its list),
 * named @p label in errors; on success returns the value to store. */
static char *check_string(struct parse *ps, const struct ccci_keytab_key *k,
                          const char *label, const yaml_node_t *n,
                          const yaml_mark_t *mark)
{
  const struct ccci_keytab_type *type = k->type;
  const char *v = (const char *)n->data.scalar.value;
  char *shown, *hint;

  if (has_nul(n)) {
    add_error(ps, mark, "%s: contains a NUL byte", label);
    return NULL;
  }
  if (type->valid != NULL ? type->valid(v) : *v != '\0')
    return type->convert != NULL ? type->convert(v, ps->base_dir)
                                 : ccci_xstrdup(v);
  shown = show(n);
  hint = type->hint != NULL ? type->hint(v) : NULL;
  add_error(ps, mark, "%s: expected %s, got '%s'%s%s", label, type->expect,
            shown, hint != NULL ? "; " : "", hint != NULL ? hint : "");
  free(hint);
  free(shown);
  return NULL;
}

static void parse_number(struct parse *ps, const struct ccci_keytab_key *k,
                         const yaml_node_t *n, const yaml_mark_t *mark)
{
  const char *v = (const char *)n->data.scalar.value;
  uint64_t x = 0;
  int r;
  char *shown;

  if (k->type->parse != NULL)
    r = k->type->parse(v, &x);
  else
    r = ccci_parse_u64(v, &x);
  if (r == 0 && has_nul(n))
    r = -EINVAL;
  shown = show(n);
  if (r == -EINVAL) {
    add_error(ps, mark, "%s: expected %s, got '%s'", lbl(ps, k),
              k->type->expect, shown);
  } else if (r < 0 || x < k->min || x > k->max) {
    char lo[32], hi[32];
    ccci_keytab_format(k, k->min, lo);
    ccci_keytab_format(k, k->max, hi);
    add_error(ps, mark, "%s: %s is out of range (%s to %s)", lbl(ps, k), shown,
              lo, hi);
  } else {
    *(uint64_t *)slot(ps->target, k) = x;
  }
  free(shown);
}

static void parse_bool(struct parse *ps, const struct ccci_keytab_key *k,
                       const yaml_node_t *n, const yaml_mark_t *mark)
{
  static const struct {
    const char *text;
    bool v;
  } words[] = {{"true", true},   {"True", true},   {"TRUE", true},
               {"false", false}, {"False", false}, {"FALSE", false}};
  const char *v = (const char *)n->data.scalar.value;
  char *shown;
  size_t i;

  for (i = 0; i < CCCI_ARRAY_LEN(words) && !has_nul(n); i++) {
    if (strcmp(v, words[i].text) == 0) {
      if (k->type->storage == CCCI_KEYTAB_TRIBOOL)
        *(int *)slot(ps->target, k) = words[i].v ? 1 : 0;
      else
        *(bool *)slot(ps->target, k) = words[i].v;
      return;
    }
  }
  shown = show(n);
  add_error(ps, mark, "%s: expected %s, got '%s'", lbl(ps, k), k->type->expect,
            shown);
  free(shown);
}

static void parse_list(struct parse *ps, const struct ccci_keytab_key *k,
                       const yaml_node_t *n, const yaml_mark_t *mark)
{
  struct ccci_strlist l = {NULL, 0};
  yaml_node_item_t *it;
  bool bad = false;

  for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++) {
    yaml_node_t *item = yaml_document_get_node(ps->doc, *it);
    char label[sizeof(ps->lbuf) + 32];
    char *v;
    snprintf(label, sizeof(label), "%s[%zu]", lbl(ps, k),
             (size_t)(it - n->data.sequence.items.start));
    if (item == NULL || item->type != YAML_SCALAR_NODE || is_null(item)) {
      add_error(ps, item ? &item->start_mark : mark,
                "%s: expected a string, got %s", label,
                item == NULL || is_null(item) ? "nothing" : node_kind(item));
      bad = true;
      continue;
    }
    v = check_string(ps, k, label, item, &item->start_mark);
    if (v == NULL)
      bad = true;
    else
      strlist_push(&l, v);
  }
  if (!bad && k->type->nonempty && l.n == 0) {
    add_error(ps, mark, "%s: expected %s, got an empty list", lbl(ps, k),
              k->type->expect);
    bad = true;
  }
  if (bad) {
    ccci_strlist_clear(&l);
    return;
  }
  ccci_strlist_clear(slot(ps->target, k));
  *(struct ccci_strlist *)slot(ps->target, k) = l;
}

static void parse_map(struct parse *ps, const struct ccci_keytab_key *k,
                      const yaml_node_t *n)
{
  const struct ccci_keytab_type *type = k->type;
  struct ccci_strmap m = {NULL, NULL, 0};
  yaml_node_pair_t *p;
  bool bad = false;
  size_t i;

  for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(ps->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(ps->doc, p->value);
    const char *name;
    bool dup = false;
    if (kn == NULL || vn == NULL)
      continue;
    name = (const char *)kn->data.scalar.value;
    if (kn->type != YAML_SCALAR_NODE || has_nul(kn) ||
        (type->valid_key != NULL && !type->valid_key(name))) {
      add_error(ps, &kn->start_mark, "%s: expected %s as key", lbl(ps, k),
                type->key_expect != NULL ? type->key_expect : "a string");
      bad = true;
      continue;
    }
    if (vn->type != YAML_SCALAR_NODE || has_nul(vn)) {
      add_error(ps, &kn->start_mark, "%s.%s: expected a string, got %s",
                lbl(ps, k), name,
                vn->type == YAML_SCALAR_NODE ? "a NUL byte" : node_kind(vn));
      bad = true;
      continue;
    }
    for (i = 0; i < m.n; i++)
      dup = dup || strcmp(m.keys[i], name) == 0;
    if (dup) {
      add_error(ps, &kn->start_mark, "duplicate key '%s.%s'", lbl(ps, k), name);
      bad = true;
      continue;
    }
    m.keys = ccci_xrealloc(m.keys, (m.n + 1) * sizeof(*m.keys));
    m.vals = ccci_xrealloc(m.vals, (m.n + 1) * sizeof(*m.vals));
    m.keys[m.n] = ccci_xstrdup(name);
    m.vals[m.n] =
        ccci_xstrdup(is_null(vn) ? "" : (char *)vn->data.scalar.value);
    m.n++;
  }
  if (bad) {
    strmap_free(&m);
    return;
  }
  strmap_free(slot(ps->target, k));
  *(struct ccci_strmap *)slot(ps->target, k) = m;
}

static void parse_mapping(struct parse *ps, const yaml_node_t *map,
                          const char *prefix);

/* Parse the mapping (or empty value) @p n into the record @p rec, which
 * holds its defaults, as the record @p label (`DEPS[0]`) set at @p mark.
 * Returns whether it parsed without an error. */
static bool parse_record(struct parse *ps, const struct ccci_keytab_type *type,
                         const char *label, const yaml_node_t *n, void *rec,
                         const yaml_mark_t *mark)
{
  struct parse sub;
  unsigned before = ps->nerrors;
  const char *why;

  if (is_null(n))
    goto check;
  if (n->type != YAML_MAPPING_NODE) {
    add_error(ps, &n->start_mark, "%s: expected a mapping of keys, got %s",
              label, node_kind(n));
    return false;
  }
  /* The record's keys parse like a file's, into the record, their names
   * prefixed in messages; the errors go on in the same list. */
  sub = *ps;
  sub.t = type->fields;
  sub.target = rec;
  sub.seen_line = ccci_xcalloc(type->fields->n, sizeof(*sub.seen_line));
  sub.set_line = NULL;
  sub.sections = NULL;
  sub.nsections = 0;
  sub.label = ccci_xasprintf("%s.", label);
  parse_mapping(&sub, n, "");
  ps->errors = sub.errors;
  ps->nerrors = sub.nerrors;
  free((char *)sub.label);
  free(sub.seen_line);
  free(sub.sections); /* records have no sections */
check:
  if (ps->nerrors != before)
    return false;
  why = type->check != NULL ? type->check(rec) : NULL;
  if (why != NULL) {
    add_error(ps, mark, "%s: %s", label, why);
    return false;
  }
  return true;
}

static void parse_one_record(struct parse *ps, const struct ccci_keytab_key *k,
                             const yaml_node_t *n, const yaml_mark_t *mark)
{
  const struct ccci_keytab_type *type = k->type;
  void *rec = ccci_xcalloc(1, type->record_size);
  char *label = ccci_xstrdup(lbl(ps, k));

  ccci_keytab_defaults(type->fields, rec);
  if (parse_record(ps, type, label, n, rec, mark)) {
    ccci_keytab_free(type->fields, slot(ps->target, k));
    memcpy(slot(ps->target, k), rec, type->record_size);
  } else {
    ccci_keytab_free(type->fields, rec);
  }
  free(rec);
  free(label);
}

/* Add a record at its defaults to @p a; returns it. */
static void *records_push(const struct ccci_keytab_type *type,
                          struct ccci_keytab_array *a)
{
  void *rec;
  a->v = ccci_xrealloc(a->v, (a->n + 1) * type->record_size);
  rec = rec_at(type, a, a->n++);
  memset(rec, 0, type->record_size);
  ccci_keytab_defaults(type->fields, rec);
  return rec;
}

static void records_set(struct parse *ps, const struct ccci_keytab_key *k,
                        struct ccci_keytab_array *a, bool bad)
{
  if (bad) {
    records_free(k->type, a);
    return;
  }
  records_free(k->type, slot(ps->target, k));
  *(struct ccci_keytab_array *)slot(ps->target, k) = *a;
}

static void parse_records(struct parse *ps, const struct ccci_keytab_key *k,
                          const yaml_node_t *n)
{
  struct ccci_keytab_array a = {NULL, 0};
  char *name = ccci_xstrdup(lbl(ps, k));
  yaml_node_item_t *it;
  bool bad = false;

  for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++) {
    yaml_node_t *item = yaml_document_get_node(ps->doc, *it);
    char *label = ccci_xasprintf("%s[%zu]", name,
                                 (size_t)(it - n->data.sequence.items.start));
    if (item == NULL || is_null(item)) {
      add_error(ps, item ? &item->start_mark : &n->start_mark,
                "%s: expected a mapping of keys, got nothing", label);
      bad = true;
    } else if (!parse_record(ps, k->type, label, item,
                             records_push(k->type, &a), &item->start_mark)) {
      bad = true;
    }
    free(label);
  }
  free(name);
  records_set(ps, k, &a, bad);
}

static void parse_record_map(struct parse *ps, const struct ccci_keytab_key *k,
                             const yaml_node_t *n)
{
  const struct ccci_keytab_type *type = k->type;
  struct ccci_keytab_array a = {NULL, 0};
  char *name = ccci_xstrdup(lbl(ps, k));
  yaml_node_pair_t *p;
  bool bad = false;
  size_t i;

  for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(ps->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(ps->doc, p->value);
    const char *key;
    char *label;
    bool dup = false;
    void *rec;
    if (kn == NULL || vn == NULL)
      continue;
    key = (const char *)kn->data.scalar.value;
    if (kn->type != YAML_SCALAR_NODE || has_nul(kn) ||
        (type->valid_key != NULL && !type->valid_key(key))) {
      add_error(ps, &kn->start_mark, "%s: expected %s as key", name,
                type->key_expect != NULL ? type->key_expect : "a string");
      bad = true;
      continue;
    }
    for (i = 0; i < a.n; i++)
      dup = dup || strcmp(*rec_name(type, rec_at(type, &a, i)), key) == 0;
    if (dup) {
      add_error(ps, &kn->start_mark, "duplicate key '%s.%s'", name, key);
      bad = true;
      continue;
    }
    label = ccci_xasprintf("%s.%s", name, key);
    rec = records_push(type, &a);
    *rec_name(type, rec) = ccci_xstrdup(key);
    if (!parse_record(ps, type, label, vn, rec, &kn->start_mark))
      bad = true;
    free(label);
  }
  free(name);
  records_set(ps, k, &a, bad);
}

/* The YAML node type each storage wants. */
static yaml_node_type_t node_type(enum ccci_keytab_storage st)
{
  switch (st) {
  case CCCI_KEYTAB_LIST:
  case CCCI_KEYTAB_RECORDS:
    return YAML_SEQUENCE_NODE;
  case CCCI_KEYTAB_MAP:
  case CCCI_KEYTAB_RECORD:
  case CCCI_KEYTAB_RECORD_MAP:
    return YAML_MAPPING_NODE;
  default:
    return YAML_SCALAR_NODE;
  }
}

/* Parse the value node @p n of key @p k, set at @p mark. */
static void parse_value(struct parse *ps, const struct ccci_keytab_key *k,
                        const yaml_node_t *n, const yaml_mark_t *mark)
{
  enum ccci_keytab_storage st = k->type->storage;

  if (is_null(n))
    return; /* an empty value means the default */
  if (n->type != node_type(st)) {
    add_error(ps, mark, "%s: expected %s, got %s", lbl(ps, k), k->type->expect,
              node_kind(n));
    return;
  }
  switch (st) {
  case CCCI_KEYTAB_STR: {
    char *v = check_string(ps, k, lbl(ps, k), n, mark);
    if (v != NULL) {
      free(*(char **)slot(ps->target, k));
      *(char **)slot(ps->target, k) = v;
    }
    break;
  }
  case CCCI_KEYTAB_U64:
    parse_number(ps, k, n, mark);
    break;
  case CCCI_KEYTAB_BOOL:
  case CCCI_KEYTAB_TRIBOOL:
    parse_bool(ps, k, n, mark);
    break;
  case CCCI_KEYTAB_LIST:
    parse_list(ps, k, n, mark);
    break;
  case CCCI_KEYTAB_MAP:
    parse_map(ps, k, n);
    break;
  case CCCI_KEYTAB_RECORD:
    parse_one_record(ps, k, n, mark);
    break;
  case CCCI_KEYTAB_RECORDS:
    parse_records(ps, k, n);
    break;
  case CCCI_KEYTAB_RECORD_MAP:
    parse_record_map(ps, k, n);
    break;
  }
}

/* Is @p name (without the dot) the name of a section? */
static bool is_section(const struct ccci_keytab *t, const char *name)
{
  size_t i, l = strlen(name);
  for (i = 0; i < t->n; i++) {
    const char *kname = ccci_keytab_at(t, i)->name;
    if (strncmp(kname, name, l) == 0 && kname[l] == '.')
      return true;
  }
  return false;
}

static void consider(const char *full, const char *cand, size_t len,
                     char best[128], size_t *bestd)
{
  char c[128];
  size_t d;
  snprintf(c, sizeof(c), "%.*s", (int)len, cand);
  d = ccci_edit_distance(full, c);
  if (d < *bestd) {
    *bestd = d;
    memcpy(best, c, sizeof(c));
  }
}

static size_t count_dots(const char *s)
{
  size_t n = 0;
  for (; *s != '\0'; s++)
    n += *s == '.';
  return n;
}

/* An unknown key: name the nearest known key, or section at the same
 * depth. */
static void suggest(struct parse *ps, const char *full, const yaml_mark_t *m)
{
  char best[128] = "", *shown;
  size_t bestd = SIZE_MAX, i, depth = count_dots(full);

  for (i = 0; i < ps->t->n; i++) {
    const char *kname = ccci_keytab_at(ps->t, i)->name;
    const char *dot = strchr(kname, '.');
    size_t d;
    consider(full, kname, strlen(kname), best, &bestd);
    /* The section holding the key at the depth of @p full, if any: its
     * name ends at the key's dot number depth + 1. */
    for (d = 0; dot != NULL && d < depth; d++)
      dot = strchr(dot + 1, '.');
    if (dot != NULL)
      consider(full, kname, (size_t)(dot - kname), best, &bestd);
  }
  shown = printable_n(full, strlen(full));
  add_error(ps, m, "unknown key '%s%s'; did you mean '%s%s'?",
            ps->label ? ps->label : "", shown, ps->label ? ps->label : "",
            best);
  free(shown);
}

/* A key that names a section: its value is a mapping of keys. */
static void parse_section(struct parse *ps, const yaml_node_t *kn,
                          const yaml_node_t *vn, const char *full)
{
  size_t i;
  char *sub;

  for (i = 0; i < ps->nsections; i++) {
    if (strcmp(ps->sections[i].name, full) == 0) {
      add_error(ps, &kn->start_mark,
                "duplicate key '%s' (first set at line %zu)", full,
                ps->sections[i].line);
      return;
    }
  }
  /* Only the table's sections get here, each once: bounded by the table. */
  ps->sections =
      ccci_xrealloc(ps->sections, (ps->nsections + 1) * sizeof(*ps->sections));
  ps->sections[ps->nsections].name = ccci_xstrdup(full);
  ps->sections[ps->nsections++].line = kn->start_mark.line + 1;
  if (is_null(vn))
    return;
  if (vn->type != YAML_MAPPING_NODE) {
    add_error(ps, &kn->start_mark, "%s: expected a mapping of keys, got %s",
              full, node_kind(vn));
    return;
  }
  sub = ccci_xasprintf("%s.", full);
  parse_mapping(ps, vn, sub);
  free(sub);
}

static void parse_pair(struct parse *ps, const yaml_node_t *kn,
                       const yaml_node_t *vn, const char *full)
{
  size_t i;

  for (i = 0; i < ps->t->n; i++) {
    const struct ccci_keytab_key *k = ccci_keytab_at(ps->t, i);
    if (strcmp(k->name, full) != 0)
      continue;
    if (ps->seen_line[i] != 0) {
      add_error(ps, &kn->start_mark,
                "duplicate key '%s%s' (first set at line %zu)",
                ps->label ? ps->label : "", full, ps->seen_line[i]);
      return;
    }
    ps->seen_line[i] = kn->start_mark.line + 1;
    if (ps->set_line != NULL && !is_null(vn))
      ps->set_line[i] = ps->seen_line[i];
    parse_value(ps, k, vn, &kn->start_mark);
    return;
  }
  if (is_section(ps->t, full))
    parse_section(ps, kn, vn, full);
  else
    suggest(ps, full, &kn->start_mark);
}

static void parse_mapping(struct parse *ps, const yaml_node_t *map,
                          const char *prefix)
{
  yaml_node_pair_t *p;

  for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
       p++) {
    yaml_node_t *kn = yaml_document_get_node(ps->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(ps->doc, p->value);
    char *full;

    if (kn == NULL || vn == NULL)
      continue;
    if (kn->type != YAML_SCALAR_NODE || has_nul(kn)) {
      add_error(ps, &kn->start_mark, "keys must be plain strings, got %s",
                node_kind(kn));
      continue;
    }
    full = ccci_xasprintf("%s%s", prefix, (const char *)kn->data.scalar.value);
    parse_pair(ps, kn, vn, full);
    free(full);
  }
}

static void yaml_error(struct parse *ps, const yaml_parser_t *parser)
{
  const yaml_mark_t *m = &parser->problem_mark;
  if (parser->error == YAML_MEMORY_ERROR) {
    add_error(ps, NULL, "invalid YAML: out of memory");
    return;
  }
  if (parser->context != NULL)
    add_error(ps, m, "invalid YAML: %s %s", parser->problem, parser->context);
  else
    add_error(ps, m, "invalid YAML: %s",
              parser->problem ? parser->problem : "cannot parse");
}

int ccci_keytab_parse(const struct ccci_keytab *t, const char *name,
                      const char *base_dir, const char *text, size_t len,
                      size_t max_bytes, void *target, char **errors)
{
  return ccci_keytab_parse_seen(t, name, base_dir, text, len, max_bytes, target,
                                NULL, errors);
}

int ccci_keytab_parse_seen(const struct ccci_keytab *t, const char *name,
                           const char *base_dir, const char *text, size_t len,
                           size_t max_bytes, void *target, size_t *seen_line,
                           char **errors)
{
  yaml_parser_t parser;
  yaml_document_t doc, extra;
  struct parse ps;
  yaml_node_t *root;
  bool have_doc = false;
  size_t i;

  *errors = NULL;
  memset(&ps, 0, sizeof(ps));
  ps.t = t;
  ps.name = name;
  ps.base_dir = base_dir;
  ps.doc = &doc;
  ps.target = target;
  ps.seen_line = ccci_xcalloc(t->n, sizeof(*ps.seen_line));
  ps.set_line = seen_line;
  ccci_buf_init(&ps.errors, SIZE_MAX);

  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(
      &parser, (const unsigned char *)(text != NULL ? text : ""), len);
  if (len > max_bytes) {
    add_error(&ps, NULL, "file is larger than %zu bytes", max_bytes);
    goto done;
  }
  if (!yaml_parser_load(&parser, &doc)) {
    yaml_error(&ps, &parser);
    goto done;
  }
  have_doc = true;
  root = yaml_document_get_root_node(&doc);
  /* An empty document leaves every key at its default. */
  if (root != NULL && !is_null(root) && root->type != YAML_MAPPING_NODE)
    add_error(&ps, &root->start_mark,
              "expected a mapping of keys at the top level, got %s",
              node_kind(root));
  else if (root != NULL && !is_null(root))
    parse_mapping(&ps, root, "");
  if (!yaml_parser_load(&parser, &extra)) {
    yaml_error(&ps, &parser);
  } else {
    root = yaml_document_get_root_node(&extra);
    if (root != NULL)
      add_error(&ps, &root->start_mark,
                "only one YAML document is allowed (remove '---')");
    yaml_document_delete(&extra);
  }

done:
  if (have_doc)
    yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  for (i = 0; i < ps.nsections; i++)
    free(ps.sections[i].name);
  free(ps.sections);
  free(ps.seen_line);
  if (ps.nerrors != 0) {
    *errors = ccci_buf_detach(&ps.errors);
    return -EINVAL;
  }
  ccci_buf_close(&ps.errors);
  return 0;
}

int ccci_keytab_read_file(const char *path, size_t max_bytes, char **text,
                          size_t *len, char **base_dir, char **errors)
{
  char *dir, *abs;
  int r;

  *text = NULL;
  *len = 0;
  *base_dir = NULL;
  *errors = NULL;
  r = ccci_read_file(path, max_bytes, text, len);
  if (r == -EFBIG) {
    *errors =
        ccci_xasprintf("%s: file is larger than %zu bytes\n", path, max_bytes);
    return -EINVAL;
  }
  if (r < 0) {
    *errors = ccci_xasprintf("%s: cannot read: %s\n", path, strerror(-r));
    return -EINVAL;
  }
  /* Relative paths in the file are relative to its directory, made
   * absolute so they mean the same wherever they are used. */
  dir = ccci_dirname(path);
  abs = realpath(dir, NULL);
  if (abs != NULL) {
    free(dir);
    dir = abs;
  }
  *base_dir = dir;
  return 0;
}

void ccci_keytab_defaults(const struct ccci_keytab *t, void *target)
{
  size_t i;
  for (i = 0; i < t->n; i++) {
    const struct ccci_keytab_key *k = ccci_keytab_at(t, i);
    yaml_parser_t parser;
    yaml_document_t doc;
    struct parse ps;
    yaml_node_t *root;

    if (k->type->storage == CCCI_KEYTAB_TRIBOOL)
      *(int *)slot(target, k) = -1;
    if (k->def == NULL)
      continue;
    memset(&ps, 0, sizeof(ps));
    ps.t = t;
    ps.name = "<default>";
    ps.target = target;
    ps.doc = &doc;
    ccci_buf_init(&ps.errors, SIZE_MAX);
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)k->def,
                                 strlen(k->def));
    if (!yaml_parser_load(&parser, &doc)) {
      fprintf(stderr, "fatal: the default of key %s does not parse\n", k->name);
      abort();
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL)
      parse_value(&ps, k, root, &root->start_mark);
    if (ps.nerrors != 0) {
      fprintf(stderr, "fatal: the default of key %s: %s", k->name,
              ps.errors.data);
      abort();
    }
    ccci_buf_close(&ps.errors);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
  }
}

/* ---- output ---- */

/* Characters a YAML double-quoted scalar must escape beyond ASCII: NEL,
 * LINE and PARAGRAPH SEPARATOR are line breaks there, and a BOM is dropped. */
static const struct {
  const char *utf8;
  const char *escape;
} yaml_escapes[] = {{"\xc2\x85", "\\N"},
                    {"\xe2\x80\xa8", "\\L"},
                    {"\xe2\x80\xa9", "\\P"},
                    {"\xef\xbb\xbf", "\\uFEFF"}};

static const char *yaml_escape(const char *s, size_t *len)
{
  size_t i;
  for (i = 0; i < CCCI_ARRAY_LEN(yaml_escapes); i++) {
    *len = strlen(yaml_escapes[i].utf8);
    if (strncmp(s, yaml_escapes[i].utf8, *len) == 0)
      return yaml_escapes[i].escape;
  }
  *len = 1;
  return NULL;
}

/* A YAML double-quoted scalar (its escapes are a superset of JSON's). */
static void quote(struct ccci_buf *b, const char *s)
{
  int r = ccci_buf_append(b, "\"", 1);
  while (*s != '\0' && r == 0) {
    unsigned char c = (unsigned char)*s;
    size_t step;
    const char *esc = yaml_escape(s, &step);
    if (esc != NULL)
      r = ccci_buf_printf(b, "%s", esc);
    else if (c == '"' || c == '\\')
      r = ccci_buf_printf(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      r = ccci_buf_printf(b, "\\x%02x", c);
    else
      r = ccci_buf_append(b, s, 1);
    s += step;
  }
  if (r == 0)
    r = ccci_buf_append(b, "\"", 1);
  (void)r; /* uncapped */
}

static void dump_value(struct ccci_buf *b, const void *target,
                       const struct ccci_keytab_key *k);

/* A record as a flow mapping of its keys. */
static void dump_record(struct ccci_buf *b, const struct ccci_keytab *fields,
                        const void *rec)
{
  size_t i;
  int r = ccci_buf_append(b, "{", 1);
  for (i = 0; i < fields->n; i++) {
    const struct ccci_keytab_key *f = ccci_keytab_at(fields, i);
    r = ccci_buf_printf(b, "%s%s: ", i > 0 ? ", " : "", f->name);
    dump_value(b, rec, f);
  }
  if (r == 0)
    r = ccci_buf_append(b, "}", 1);
  (void)r; /* uncapped */
}

/* Is the record @p rec of @p type what its defaults make (so unset)? */
static bool record_is_default(const struct ccci_keytab_type *type,
                              const void *rec)
{
  void *def = ccci_xcalloc(1, type->record_size);
  bool same;
  ccci_keytab_defaults(type->fields, def);
  same = records_equal(type->fields, rec, def);
  ccci_keytab_free(type->fields, def);
  free(def);
  return same;
}

static void dump_value(struct ccci_buf *b, const void *target,
                       const struct ccci_keytab_key *k)
{
  const void *p = cslot(target, k);
  char num[32];
  size_t i;
  int r = 0;

  switch (k->type->storage) {
  case CCCI_KEYTAB_STR:
    if (*(char *const *)p == NULL)
      r = ccci_buf_printf(b, "null");
    else
      quote(b, *(char *const *)p);
    break;
  case CCCI_KEYTAB_U64:
    ccci_keytab_format(k, *(const uint64_t *)p, num);
    r = ccci_buf_printf(b, "%s", num);
    break;
  case CCCI_KEYTAB_BOOL:
    r = ccci_buf_printf(b, "%s", *(const bool *)p ? "true" : "false");
    break;
  case CCCI_KEYTAB_LIST: {
    const struct ccci_strlist *l = p;
    r = ccci_buf_append(b, "[", 1);
    for (i = 0; i < l->n; i++) {
      if (i > 0)
        r = ccci_buf_append(b, ", ", 2);
      quote(b, l->v[i]);
    }
    if (r == 0)
      r = ccci_buf_append(b, "]", 1);
    break;
  }
  case CCCI_KEYTAB_MAP: {
    const struct ccci_strmap *m = p;
    r = ccci_buf_append(b, "{", 1);
    for (i = 0; i < m->n; i++) {
      if (i > 0)
        r = ccci_buf_append(b, ", ", 2);
      quote(b, m->keys[i]);
      r = ccci_buf_append(b, ": ", 2);
      quote(b, m->vals[i]);
    }
    if (r == 0)
      r = ccci_buf_append(b, "}", 1);
    break;
  }
  case CCCI_KEYTAB_TRIBOOL:
    r = ccci_buf_printf(
        b, "%s",
        *(const int *)p < 0 ? "null" : (*(const int *)p ? "true" : "false"));
    break;
  case CCCI_KEYTAB_RECORD:
    /* An unset record dumps as empty, so that it reads back unset. */
    if (record_is_default(k->type, p))
      r = ccci_buf_printf(b, "null");
    else
      dump_record(b, k->type->fields, p);
    break;
  case CCCI_KEYTAB_RECORDS:
  case CCCI_KEYTAB_RECORD_MAP: {
    const struct ccci_keytab_array *a = p;
    bool map = k->type->storage == CCCI_KEYTAB_RECORD_MAP;
    r = ccci_buf_append(b, map ? "{" : "[", 1);
    for (i = 0; i < a->n; i++) {
      void *rec = rec_at(k->type, a, i);
      if (i > 0)
        r = ccci_buf_append(b, ", ", 2);
      if (map) {
        quote(b, *rec_name(k->type, rec));
        r = ccci_buf_append(b, ": ", 2);
      }
      dump_record(b, k->type->fields, rec);
    }
    if (r == 0)
      r = ccci_buf_append(b, map ? "}" : "]", 1);
    break;
  }
  }
  (void)r; /* uncapped */
}

/* How many leading dotted segments (with their dots) @p a and @p b share. */
static size_t common_sections(const char *a, const char *b)
{
  size_t n = 0, i;
  for (i = 0; a[i] != '\0' && a[i] == b[i]; i++)
    n += a[i] == '.';
  return n;
}

void ccci_keytab_dump(const struct ccci_keytab *t, const void *target,
                      struct ccci_buf *b)
{
  const char *prev = "";
  size_t i;
  int r = 0;

  for (i = 0; i < t->n; i++) {
    const struct ccci_keytab_key *k = ccci_keytab_at(t, i);
    size_t depth = count_dots(k->name), d,
           open = common_sections(prev, k->name);
    const char *seg = k->name, *dot;

    /* Skip the sections already open, then open the rest. */
    for (d = 0; d < open; d++)
      seg = strchr(seg, '.') + 1;
    for (d = open; d < depth; d++) {
      dot = strchr(seg, '.');
      r = ccci_buf_printf(b, "%*s%.*s:\n", (int)(2 * d), "", (int)(dot - seg),
                          seg);
      seg = dot + 1;
    }
    r = ccci_buf_printf(b, "%*s%s: ", (int)(2 * depth), "", seg);
    dump_value(b, target, k);
    r = ccci_buf_append(b, "\n", 1);
    prev = k->name;
  }
  (void)r; /* uncapped */
}

static json_t *value_json(const void *target, const struct ccci_keytab_key *k);

static json_t *record_json(const struct ccci_keytab *fields, const void *rec)
{
  json_t *j = json_object();
  size_t i;
  for (i = 0; i < fields->n; i++) {
    const struct ccci_keytab_key *f = ccci_keytab_at(fields, i);
    json_object_set_new(j, f->name, value_json(rec, f));
  }
  return j;
}

static json_t *value_json(const void *target, const struct ccci_keytab_key *k)
{
  const void *p = cslot(target, k);
  char num[32];
  json_t *j;
  size_t i;

  switch (k->type->storage) {
  case CCCI_KEYTAB_STR:
    return *(char *const *)p ? json_string(*(char *const *)p) : json_null();
  case CCCI_KEYTAB_U64:
    if (k->type->format == NULL)
      return json_integer((json_int_t) * (const uint64_t *)p);
    ccci_keytab_format(k, *(const uint64_t *)p, num);
    return json_string(num);
  case CCCI_KEYTAB_BOOL:
    return json_boolean(*(const bool *)p);
  case CCCI_KEYTAB_LIST: {
    const struct ccci_strlist *l = p;
    j = json_array();
    for (i = 0; i < l->n; i++)
      json_array_append_new(j, json_string(l->v[i]));
    return j;
  }
  case CCCI_KEYTAB_MAP: {
    const struct ccci_strmap *m = p;
    j = json_object();
    for (i = 0; i < m->n; i++)
      json_object_set_new(j, m->keys[i], json_string(m->vals[i]));
    return j;
  }
  case CCCI_KEYTAB_TRIBOOL:
    return *(const int *)p < 0 ? json_null() : json_boolean(*(const int *)p);
  case CCCI_KEYTAB_RECORD:
    if (record_is_default(k->type, p))
      return json_null();
    return record_json(k->type->fields, p);
  case CCCI_KEYTAB_RECORDS:
  case CCCI_KEYTAB_RECORD_MAP: {
    const struct ccci_keytab_array *a = p;
    bool map = k->type->storage == CCCI_KEYTAB_RECORD_MAP;
    j = map ? json_object() : json_array();
    for (i = 0; i < a->n; i++) {
      void *rec = rec_at(k->type, a, i);
      if (map)
        json_object_set_new(j, *rec_name(k->type, rec),
                            record_json(k->type->fields, rec));
      else
        json_array_append_new(j, record_json(k->type->fields, rec));
    }
    return j;
  }
  }
  return json_null();
}

void ccci_keytab_to_json(const struct ccci_keytab *t, const void *target,
                         json_t *obj)
{
  size_t i;

  for (i = 0; i < t->n; i++) {
    const struct ccci_keytab_key *k = ccci_keytab_at(t, i);
    const char *seg = k->name, *dot;
    json_t *o = obj;

    /* Each section is an object in its parent, made when first seen. */
    for (dot = strchr(seg, '.'); dot != NULL; dot = strchr(seg, '.')) {
      char *sec = ccci_xasprintf("%.*s", (int)(dot - seg), seg);
      json_t *s = json_object_get(o, sec);
      if (s == NULL) {
        s = json_object();
        json_object_set_new(o, sec, s);
      }
      free(sec);
      o = s;
      seg = dot + 1;
    }
    json_object_set_new(o, seg, value_json(target, k));
  }
}
