/* Streaming secret redaction: a pattern set built from secret values, and
 * per-stream filters that mask every form of every value, whatever the
 * split of the input into writes. No I/O. See docs/redaction.md. */
#include "ccci/logs/redact.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
/* Patterns longer than this are refused (a 64 KiB secret escaped as JSON
 * stays well below). */
#define MAX_PATTERN (1024u * 1024u)
/* Total pattern bytes of one set. */
#define MAX_TOTAL (256u * 1024u * 1024u)
/* The AC scan drops back to the block filter only with this much input
 * left, so short writes do not bounce between the two. */
#define COLD_MIN 64

/* ---- forms ---- */

struct bytes {
  unsigned char *p;
  size_t len, cap;
};

static void bytes_put(struct bytes *b, const void *p, size_t n)
{
  if (n == 0)
    return;
  if (b->len + n > b->cap) {
    size_t ncap = b->cap ? b->cap : 64;
    unsigned char *np;
    while (ncap < b->len + n)
      ncap *= 2;
    np = ccci_io_alloc(ncap);
    if (b->p != NULL) {
      memcpy(np, b->p, b->len);
      ccci_io_free(b->p, b->cap);
    }
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void bytes_wipe(struct bytes *b)
{
  ccci_io_free(b->p, b->cap);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* The distinct forms found so far, to call back each only once. */
struct form_list {
  struct bytes *v;
  size_t n;
  size_t min_len;
};

static void form_add(struct form_list *fl, const unsigned char *p, size_t len)
{
  size_t i;
  if (len < fl->min_len)
    return;
  for (i = 0; i < fl->n; i++)
    if (fl->v[i].len == len && memcmp(fl->v[i].p, p, len) == 0)
      return;
  fl->v = ccci_xrealloc(fl->v, (fl->n + 1) * sizeof(*fl->v));
  memset(&fl->v[fl->n], 0, sizeof(fl->v[fl->n]));
  bytes_put(&fl->v[fl->n], p, len);
  fl->n++;
}

static void json_form(struct form_list *fl, const unsigned char *d, size_t len,
                      bool upper)
{
  static const char hexl[] = "0123456789abcdef", hexu[] = "0123456789ABCDEF";
  /* RFC 8259's short escapes; other control bytes become \u00xx. */
  static const char shorts[][2] = {{'"', '"'},  {'\\', '\\'}, {'\b', 'b'},
                                   {'\f', 'f'}, {'\n', 'n'},  {'\r', 'r'},
                                   {'\t', 't'}};
  const char *hex = upper ? hexu : hexl;
  struct bytes b = {NULL, 0, 0};
  size_t i, k;
  for (i = 0; i < len; i++) {
    unsigned char c = d[i];
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    for (k = 0; k < CCCI_ARRAY_LEN(shorts); k++)
      if ((unsigned char)shorts[k][0] == c)
        break;
    if (k < CCCI_ARRAY_LEN(shorts)) {
      esc[1] = shorts[k][1];
      bytes_put(&b, esc, 2);
    } else if (c < 0x20) {
      bytes_put(&b, esc, 6);
    } else {
      bytes_put(&b, &c, 1);
    }
  }
  if (b.len > 0)
    form_add(fl, b.p, b.len);
  bytes_wipe(&b);
}

static void url_form(struct form_list *fl, const unsigned char *d, size_t len)
{
  static const char hex[] = "0123456789ABCDEF";
  struct bytes b = {NULL, 0, 0};
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = d[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      bytes_put(&b, &c, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      bytes_put(&b, e, 3);
    }
  }
  if (b.len > 0)
    form_add(fl, b.p, b.len);
  bytes_wipe(&b);
}

/* Base64 of @p d as if it stood @p align bytes into an encoded stream:
 * only the characters whose six bits all come from @p d. */
static void b64_form(struct form_list *fl, const unsigned char *d, size_t len,
                     unsigned align, bool url)
{
  static const char std[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char urls[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char *alpha = url ? urls : std;
  size_t total = align + len, nbits = total * 8;
  size_t j, jstart = (8 * align + 5) / 6, jend = nbits / 6;
  struct bytes b = {NULL, 0, 0};

  for (j = jstart; j < jend; j++) {
    size_t bit = 6 * j, v = 0, k;
    /* Six bits starting at @p bit of the stream (align zero bytes + d). */
    for (k = 0; k < 6; k++) {
      size_t pos = bit + k, byte = pos / 8;
      unsigned char c = byte < align ? 0 : d[byte - align];
      v = (v << 1) | ((c >> (7 - pos % 8)) & 1);
    }
    bytes_put(&b, &alpha[v], 1);
  }
  if (b.len > 0)
    form_add(fl, b.p, b.len);
  bytes_wipe(&b);
}

static void encodings(struct form_list *fl, const unsigned char *d, size_t len)
{
  unsigned a;
  form_add(fl, d, len);
  json_form(fl, d, len, false);
  json_form(fl, d, len, true);
  url_form(fl, d, len);
  for (a = 0; a < 3; a++) {
    b64_form(fl, d, len, a, false);
    b64_form(fl, d, len, a, true);
  }
}

static bool armour_line(const unsigned char *p, size_t len)
{
  return (len >= 10 && memcmp(p, "-----BEGIN", 10) == 0) ||
         (len >= 8 && memcmp(p, "-----END", 8) == 0);
}

static void multiline(struct form_list *fl, const unsigned char *v, size_t len)
{
  struct bytes lf = {NULL, 0, 0}, crlf = {NULL, 0, 0};
  size_t i = 0;

  while (i <= len) {
    const unsigned char *nl = memchr(v + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - v) : len, l = end - i;
    const unsigned char *line = v + i;
    if (l > 0 && line[l - 1] == '\r')
      l--;
    if (i > 0) {
      bytes_put(&lf, "\n", 1);
      bytes_put(&crlf, "\r\n", 2);
    }
    bytes_put(&lf, line, l);
    bytes_put(&crlf, line, l);
    if (l >= fl->min_len && !armour_line(line, l))
      encodings(fl, line, l);
    if (nl == NULL)
      break;
    i = end + 1;
  }
  encodings(fl, lf.p, lf.len);
  encodings(fl, crlf.p, crlf.len);
  bytes_wipe(&lf);
  bytes_wipe(&crlf);
}

static size_t strip_len(const unsigned char *v, size_t len)
{
  while (len > 0 && (v[len - 1] == '\n' || v[len - 1] == '\r'))
    len--;
  return len;
}

void ccci_redact_forms(const void *value, size_t len, size_t min_len,
                       void (*cb)(const unsigned char *form, size_t len,
                                  void *arg),
                       void *arg)
{
  const unsigned char *v = value;
  struct form_list fl = {NULL, 0, min_len ? min_len : 1};
  size_t i;

  len = strip_len(v, len);
  if (len < fl.min_len)
    return;
  encodings(&fl, v, len);
  if (memchr(v, '\n', len) != NULL)
    multiline(&fl, v, len);
  for (i = 0; i < fl.n; i++) {
    cb(fl.v[i].p, fl.v[i].len, arg);
    bytes_wipe(&fl.v[i]);
  }
  free(fl.v);
}

/* ---- the pattern set: an Aho-Corasick automaton and a block filter ---- */

struct node {
  uint32_t fail;
  uint32_t first; /* index of the first child; children are consecutive */
  uint32_t out;   /* length of the longest pattern ending here (0: none) */
  uint32_t hold;  /* depth of the deepest fail-chain node with children */
  uint32_t depth;
  uint32_t memo_to; /* fail-resolved transition on memo_byte, or NONE */
  uint16_t nchild;
  uint8_t memo_byte;
};

struct value {
  unsigned char *p;
  size_t len;
};

struct ccci_redact_set {
  unsigned refs;
  size_t min_len;
  struct value *vals; /* sorted, distinct, each at least min_len */
  size_t nvals;
  size_t npatterns;
  size_t maxlen;
  struct node *nodes;
  uint8_t *labels; /* labels[v]: the byte on the edge into v */
  uint32_t nnodes;
  uint32_t root_next[256];
  /* Full transitions of the depth-1 nodes (1 .. nd1, breadth-first), where
   * text mostly is: 1 KiB each. */
  uint32_t *d1;
  uint32_t nd1;
  unsigned block; /* the filter's block size: 1, 2 or 4 bytes */
  unsigned shift;
  uint64_t *bits;
  size_t nwords;
};

static int value_cmp(const void *a, const void *b)
{
  const struct value *x = a, *y = b;
  size_t l = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->p, y->p, l);
  if (c != 0)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Sort and drop duplicates (wiping them). Returns the new count. */
static size_t sort_unique(struct value *v, size_t n)
{
  size_t i, k = 0;
  if (n == 0)
    return 0;
  qsort(v, n, sizeof(*v), value_cmp);
  for (i = 1; i < n; i++) {
    if (value_cmp(&v[k], &v[i]) == 0)
      ccci_wipe_free(v[i].p, v[i].len);
    else
      v[++k] = v[i];
  }
  return k + 1;
}

/* The block of @p block bytes at @p p as a number (fixed-size loads, so
 * the compiler emits one move, not a call). */
static inline uint32_t gram(const unsigned char *p, unsigned block)
{
  uint32_t g32;
  uint16_t g16;
  switch (block) {
  case 4:
    memcpy(&g32, p, 4);
    return g32;
  case 2:
    memcpy(&g16, p, 2);
    return g16;
  default:
    return p[0];
  }
}

/* The filter is a blocked Bloom filter: one 64-bit word per gram, two bits
 * in it, both from one multiplicative hash. */
static inline uint64_t gram_hash(uint32_t g)
{
  return ((uint64_t)g + 1) * 0x9E3779B97F4A7C15ull;
}

static inline uint64_t gram_mask(uint64_t h)
{
  return ((uint64_t)1 << (h & 63)) | ((uint64_t)1 << ((h >> 6) & 63));
}

/* Trie under construction: first-child/next-sibling lists. */
struct bnode {
  uint32_t child, sibling, depth;
  uint8_t label, terminal;
};

struct builder {
  struct bnode *v;
  uint32_t n, cap;
  uint32_t root_child[256];
};

static uint32_t bnew(struct builder *b, uint8_t label, uint32_t depth)
{
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 1024;
    b->v = ccci_xrealloc(b->v, (size_t)b->cap * sizeof(*b->v));
  }
  b->v[b->n].child = NONE;
  b->v[b->n].sibling = NONE;
  b->v[b->n].depth = depth;
  b->v[b->n].label = label;
  b->v[b->n].terminal = 0;
  return b->n++;
}

static void binsert(struct builder *b, const unsigned char *p, size_t len)
{
  uint32_t cur = 0;
  size_t i;
  for (i = 0; i < len; i++) {
    uint32_t c;
    if (cur == 0) {
      c = b->root_child[p[i]];
      if (c == NONE) {
        c = bnew(b, p[i], 1);
        b->root_child[p[i]] = c;
      }
    } else {
      uint32_t *link = &b->v[cur].child;
      c = *link;
      while (c != NONE && b->v[c].label != p[i])
        c = b->v[c].sibling;
      if (c == NONE) {
        c = bnew(b, p[i], (uint32_t)i + 1);
        b->v[c].sibling = b->v[cur].child;
        b->v[cur].child = c;
      }
    }
    cur = c;
  }
  b->v[cur].terminal = 1;
}

static int label_cmp(const void *a, const void *b, void *arg)
{
  const struct bnode *v = arg;
  return (int)v[*(const uint32_t *)a].label -
         (int)v[*(const uint32_t *)b].label;
}

static uint32_t child_of(const struct ccci_redact_set *s, uint32_t u, uint8_t c)
{
  const struct node *nd = &s->nodes[u];
  const uint8_t *l, *hit;
  if (u == 0)
    return s->root_next[c] ? s->root_next[c] : NONE;
  if (nd->nchild == 0)
    return NONE;
  l = s->labels + nd->first;
  if (nd->nchild == 1)
    return l[0] == c ? nd->first : NONE;
  hit = memchr(l, c, nd->nchild);
  return hit ? nd->first + (uint32_t)(hit - l) : NONE;
}

/* Flatten the builder trie in breadth-first order (children consecutive,
 * sorted by label), then compute fail links, outputs and holds. */
static void flatten(struct ccci_redact_set *s, struct builder *b)
{
  uint32_t *queue = ccci_xmalloc((size_t)b->n * sizeof(uint32_t));
  uint32_t *newidx = ccci_xmalloc((size_t)b->n * sizeof(uint32_t));
  uint32_t *parent = ccci_xmalloc((size_t)b->n * sizeof(uint32_t));
  uint32_t head = 0, tail = 0, i, c;
  uint32_t kids[256];

  s->nnodes = b->n;
  s->nodes = ccci_xcalloc(b->n, sizeof(*s->nodes));
  s->labels = ccci_xcalloc(b->n, 1);
  queue[tail++] = 0;
  newidx[0] = 0;
  parent[0] = 0;
  while (head < tail) {
    uint32_t old = queue[head++], nk = 0, me = newidx[old];
    if (old == 0) {
      for (c = 0; c < 256; c++)
        if (b->root_child[c] != NONE)
          kids[nk++] = b->root_child[c];
    } else {
      for (c = b->v[old].child; c != NONE; c = b->v[c].sibling)
        kids[nk++] = c;
      qsort_r(kids, nk, sizeof(uint32_t), label_cmp, b->v);
    }
    s->nodes[me].first = tail;
    s->nodes[me].nchild = (uint16_t)nk;
    s->nodes[me].depth = b->v[old].depth;
    s->nodes[me].out = b->v[old].terminal ? b->v[old].depth : 0;
    s->nodes[me].memo_to = NONE;
    for (i = 0; i < nk; i++) {
      newidx[kids[i]] = tail;
      parent[tail] = me;
      s->labels[tail] = b->v[kids[i]].label;
      queue[tail++] = kids[i];
    }
  }
  memset(s->root_next, 0, sizeof(s->root_next));
  for (i = 0; i < s->nodes[0].nchild; i++)
    s->root_next[s->labels[s->nodes[0].first + i]] = s->nodes[0].first + i;
  /* Breadth-first order: a node's fail target is always computed first. */
  s->nodes[0].hold = 0;
  for (i = 1; i < s->nnodes; i++) {
    struct node *nd = &s->nodes[i];
    uint32_t f = 0, u = parent[i];
    uint8_t lab = s->labels[i];
    if (u != 0) {
      f = s->nodes[u].fail;
      for (;;) {
        uint32_t t = child_of(s, f, lab);
        if (t != NONE) {
          f = t;
          break;
        }
        if (f == 0)
          break;
        f = s->nodes[f].fail;
      }
    }
    nd->fail = f;
    if (nd->out == 0)
      nd->out = s->nodes[f].out;
    nd->hold = nd->nchild > 0 ? nd->depth : s->nodes[f].hold;
  }
  /* The depth-1 nodes are 1 .. root's child count; their fail link is the
   * root, so a missing child goes where the root would. */
  s->nd1 = s->nodes[0].nchild;
  s->d1 = ccci_xmalloc((size_t)s->nd1 * 256 * sizeof(uint32_t) + 1);
  for (i = 0; i < s->nd1; i++) {
    for (c = 0; c < 256; c++) {
      uint32_t t = child_of(s, i + 1, (uint8_t)c);
      s->d1[(size_t)i * 256 + c] = t != NONE ? t : s->root_next[c];
    }
  }
  free(queue);
  free(newidx);
  free(parent);
}

struct collect {
  struct value *v;
  size_t n, cap, total;
};

static void collect_form(const unsigned char *p, size_t len, void *arg)
{
  struct collect *c = arg;
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    c->v = ccci_xrealloc(c->v, c->cap * sizeof(*c->v));
  }
  c->v[c->n].p = ccci_xmalloc(len);
  memcpy(c->v[c->n].p, p, len);
  c->v[c->n].len = len;
  c->n++;
  c->total += len;
}

static void build_filter(struct ccci_redact_set *s, const struct value *pats,
                         size_t n, size_t minpat)
{
  size_t grams, i, want;
  unsigned k = 10, j;

  s->block = minpat >= 7 ? 4 : minpat >= 3 ? 2 : 1;
  grams = n * s->block;
  /* 64 bits per gram, two bits set per gram: about 0.1% false hits. */
  want = grams * 64;
  while (k < 26 && ((size_t)1 << k) < want)
    k++;
  s->shift = 64 - (k - 6);
  s->nwords = ((size_t)1 << k) / 64;
  s->bits = ccci_xcalloc(s->nwords, sizeof(uint64_t));
  /* Every pattern is at least 2 * block - 1 long, so an occurrence holds a
   * whole aligned block starting at one of its first `block` offsets. */
  for (i = 0; i < n; i++) {
    for (j = 0; j < s->block; j++) {
      uint64_t h = gram_hash(gram(pats[i].p + j, s->block));
      s->bits[h >> s->shift] |= gram_mask(h);
    }
  }
}

static int build(struct ccci_redact_set *s)
{
  struct collect col = {NULL, 0, 0, 0};
  struct builder b;
  size_t i, minpat = SIZE_MAX;
  int r = 0;

  for (i = 0; i < s->nvals; i++)
    ccci_redact_forms(s->vals[i].p, s->vals[i].len, s->min_len, collect_form,
                      &col);
  col.n = sort_unique(col.v, col.n);
  memset(&b, 0, sizeof(b));
  memset(b.root_child, 0xff, sizeof(b.root_child));
  bnew(&b, 0, 0);
  for (i = 0; i < col.n && r == 0; i++) {
    if (col.v[i].len > MAX_PATTERN || col.total > MAX_TOTAL) {
      r = -E2BIG;
      break;
    }
    binsert(&b, col.v[i].p, col.v[i].len);
    if (col.v[i].len > s->maxlen)
      s->maxlen = col.v[i].len;
    if (col.v[i].len < minpat)
      minpat = col.v[i].len;
  }
  s->npatterns = col.n;
  if (r == 0) {
    flatten(s, &b);
    build_filter(s, col.v, col.n, col.n ? minpat : 1);
  }
  for (i = 0; i < col.n; i++)
    ccci_wipe_free(col.v[i].p, col.v[i].len);
  free(col.v);
  ccci_wipe_free(b.v, (size_t)b.cap * sizeof(*b.v));
  return r;
}

static void set_free(struct ccci_redact_set *s)
{
  size_t i;
  for (i = 0; i < s->nvals; i++)
    ccci_wipe_free(s->vals[i].p, s->vals[i].len);
  free(s->vals);
  ccci_wipe_free(s->nodes, (size_t)s->nnodes * sizeof(*s->nodes));
  ccci_wipe_free(s->labels, s->nnodes);
  ccci_wipe_free(s->d1, (size_t)s->nd1 * 256 * sizeof(uint32_t) + 1);
  ccci_wipe_free(s->bits, s->nwords * sizeof(uint64_t));
  ccci_wipe_free(s, sizeof(*s));
}

/* Build a set that takes ownership of @p vals (n entries). */
static int set_from(struct value *vals, size_t n, size_t min_len,
                    struct ccci_redact_set **out)
{
  struct ccci_redact_set *s = ccci_xcalloc(1, sizeof(*s));
  int r;

  s->refs = 1;
  s->min_len = min_len;
  s->vals = vals;
  s->nvals = sort_unique(vals, n);
  r = build(s);
  if (r < 0) {
    set_free(s);
    *out = NULL;
    return r;
  }
  *out = s;
  return 0;
}

/* Copies of the @p values that are at least @p min_len long once their
 * trailing line ends are stripped, in *@p out; returns how many. */
static size_t kept_values(const struct ccci_redact_value *values, size_t n,
                          size_t min_len, struct value **out)
{
  struct value *v = ccci_xcalloc(n ? n : 1, sizeof(*v));
  size_t i, k = 0;

  for (i = 0; i < n; i++) {
    size_t len = strip_len(values[i].data, values[i].len);
    if (len < min_len)
      continue;
    v[k].p = ccci_xmalloc(len);
    memcpy(v[k].p, values[i].data, len);
    v[k++].len = len;
  }
  *out = v;
  return k;
}

int ccci_redact_set_new(const struct ccci_redact_value *values, size_t n,
                        size_t min_len, struct ccci_redact_set **out)
{
  struct value *v;
  size_t k;

  *out = NULL;
  if (min_len == 0)
    return -EINVAL;
  k = kept_values(values, n, min_len, &v);
  return set_from(v, k, min_len, out);
}

int ccci_redact_set_union(const struct ccci_redact_set *a,
                          const struct ccci_redact_set *b,
                          struct ccci_redact_set **out)
{
  size_t n = a->nvals + b->nvals, i, k = 0;
  struct value *v = ccci_xcalloc(n ? n : 1, sizeof(*v));

  for (i = 0; i < a->nvals; i++, k++) {
    v[k].p = ccci_xmalloc(a->vals[i].len);
    memcpy(v[k].p, a->vals[i].p, a->vals[i].len);
    v[k].len = a->vals[i].len;
  }
  for (i = 0; i < b->nvals; i++, k++) {
    v[k].p = ccci_xmalloc(b->vals[i].len);
    memcpy(v[k].p, b->vals[i].p, b->vals[i].len);
    v[k].len = b->vals[i].len;
  }
  return set_from(v, n, a->min_len < b->min_len ? a->min_len : b->min_len, out);
}

/* Does @p big hold every value of @p small (both sorted)? */
static bool superset(const struct ccci_redact_set *big,
                     const struct ccci_redact_set *small)
{
  size_t i = 0, j = 0;
  if (big->min_len > small->min_len)
    return false;
  while (j < small->nvals) {
    int c;
    if (i == big->nvals)
      return false;
    c = value_cmp(&big->vals[i], &small->vals[j]);
    if (c == 0) {
      i++;
      j++;
    } else if (c < 0) {
      i++;
    } else {
      return false;
    }
  }
  return true;
}

bool ccci_redact_set_same(const struct ccci_redact_set *set,
                          const struct ccci_redact_value *values, size_t n,
                          size_t min_len)
{
  struct value *v;
  size_t i, k;
  bool same;

  if (set->min_len != min_len)
    return false;
  k = kept_values(values, n, min_len, &v);
  k = sort_unique(v, k);
  same = k == set->nvals;
  for (i = 0; i < k; i++) {
    if (same && value_cmp(&v[i], &set->vals[i]) != 0)
      same = false;
    ccci_wipe_free(v[i].p, v[i].len);
  }
  free(v);
  return same;
}

struct ccci_redact_set *ccci_redact_set_ref(struct ccci_redact_set *set)
{
  set->refs++;
  return set;
}

void ccci_redact_set_unref(struct ccci_redact_set *set)
{
  if (set != NULL && --set->refs == 0)
    set_free(set);
}

size_t ccci_redact_set_values(const struct ccci_redact_set *set)
{
  return set->nvals;
}

size_t ccci_redact_set_patterns(const struct ccci_redact_set *set)
{
  return set->npatterns;
}

size_t ccci_redact_set_memory(const struct ccci_redact_set *set)
{
  size_t m = sizeof(*set) + set->nvals * sizeof(*set->vals), i;
  for (i = 0; i < set->nvals; i++)
    m += set->vals[i].len;
  m += (size_t)set->nnodes * (sizeof(*set->nodes) + 1);
  m += (size_t)set->nd1 * 256 * sizeof(uint32_t);
  m += set->nwords * sizeof(uint64_t);
  return m;
}

/* The transition of the automaton: goto, else the memoised fail-resolved
 * target, else follow fail links (and memoise the answer). */
static inline uint32_t step(struct ccci_redact_set *s, uint32_t st, uint8_t c)
{
  struct node *nd;
  uint32_t t, u;

  if (st == 0)
    return s->root_next[c];
  if (st - 1 < s->nd1) /* depth 1: one table lookup */
    return s->d1[(size_t)(st - 1) * 256 + c];
  t = child_of(s, st, c);
  if (t != NONE)
    return t;
  nd = &s->nodes[st];
  if (nd->memo_to != NONE && nd->memo_byte == c)
    return nd->memo_to;
  for (u = nd->fail; u != 0; u = s->nodes[u].fail) {
    t = child_of(s, u, c);
    if (t != NONE)
      break;
  }
  if (u == 0)
    t = s->root_next[c];
  nd->memo_byte = c;
  nd->memo_to = t;
  return t;
}

/* ---- streams ---- */

struct interval {
  uint64_t s, e;
};

struct ccci_redact {
  struct ccci_redact_set *set;
  char *mask;
  size_t mask_len;
  uint64_t masked; /* masked runs emitted (ccci_redact_masked) */
  /* Input not yet dropped: stream bytes [base, n). */
  unsigned char *win;
  size_t win_cap;
  uint64_t base, n;
  /* Scanning: the next position to scan, and the exact automaton state
   * there when not cold (the block filter mode). */
  uint64_t scan;
  uint32_t state;
  bool cold;
  uint64_t ac_until; /* no return to cold mode before this position */
  /* The earliest start of a partial occurrence at n (decided below it). */
  uint64_t e;
  /* Rendering: positions below r are released; in_run says the last one
   * released was masked; spec counts characters of the rendering from r
   * released ahead (see speculate()). */
  uint64_t r;
  bool in_run;
  size_t spec;
  /* Complete occurrences not yet released: sorted, merged when they
   * overlap or touch. */
  struct interval *iv;
  size_t niv, iv_cap;
  struct bytes out;
  bool finished;
};

struct ccci_redact *ccci_redact_new(struct ccci_redact_set *set,
                                    const char *mask)
{
  struct ccci_redact *r = ccci_xcalloc(1, sizeof(*r));
  if (mask == NULL || mask[0] == '\0')
    mask = CCCI_REDACT_MASK;
  r->set = ccci_redact_set_ref(set);
  r->mask = ccci_xstrdup(mask);
  r->mask_len = strlen(mask);
  return r;
}

static void record(struct ccci_redact *r, uint64_t s, uint64_t e)
{
  size_t i = r->niv, j;
  struct interval m = {s, e};

  if (i > 0 && r->iv[i - 1].s <= s && r->iv[i - 1].e >= e)
    return;
  while (i > 0 && r->iv[i - 1].s > e)
    i--;
  j = i;
  while (j > 0 && r->iv[j - 1].e >= s)
    j--;
  if (j < i) {
    if (r->iv[j].s < m.s)
      m.s = r->iv[j].s;
    if (r->iv[i - 1].e > m.e)
      m.e = r->iv[i - 1].e;
    memmove(&r->iv[j + 1], &r->iv[i], (r->niv - i) * sizeof(*r->iv));
    r->niv -= i - j - 1;
    r->iv[j] = m;
    return;
  }
  if (r->niv == r->iv_cap) {
    r->iv_cap = r->iv_cap ? r->iv_cap * 2 : 16;
    r->iv = ccci_xrealloc(r->iv, r->iv_cap * sizeof(*r->iv));
  }
  memmove(&r->iv[i + 1], &r->iv[i], (r->niv - i) * sizeof(*r->iv));
  r->iv[i] = m;
  r->niv++;
}

static inline bool filter_hit(const struct ccci_redact_set *s,
                              const unsigned char *p)
{
  uint64_t h = gram_hash(gram(p, s->block)), m = gram_mask(h);
  return (s->bits[h >> s->shift] & m) == m;
}

/* The automaton from the root over [from, n): its state at n, recording
 * the occurrences it meets. */
static uint32_t peek(struct ccci_redact *r, uint64_t from)
{
  struct ccci_redact_set *s = r->set;
  uint32_t st = 0;
  uint64_t pos = from;
  while (pos < r->n) {
    st = step(s, st, r->win[pos++ - r->base]);
    if (s->nodes[st].out)
      record(r, pos - s->nodes[st].out, pos);
  }
  return st;
}

/* Scan to the end of the input; afterwards the automaton state at n is
 * exact. Cold mode checks one aligned block at a time against the filter;
 * a hit (or the end) re-enters the automaton 3 * block - 3 bytes earlier
 * from the root, which is exact from the block on (docs/redaction.md). */
static void scan(struct ccci_redact *r)
{
  struct ccci_redact_set *s = r->set;
  const uint64_t b = s->block;

  if (s->nnodes <= 1) { /* nothing to find */
    r->scan = r->n;
    return;
  }
  while (r->scan < r->n) {
    if (!r->cold) {
      uint32_t st = r->state;
      uint64_t pos = r->scan;
      const unsigned char *p = r->win;
      const struct node *nodes = s->nodes;
      while (pos < r->n) {
        uint8_t c = p[pos++ - r->base];
        uint32_t next = step(s, st, c);
        if (nodes[next].out) {
          record(r, pos - nodes[next].out, pos);
        } else if (next == st) {
          /* A loop on c without output: a run of c changes nothing
           * (`aaaa...` against `a...ab`), so skip it. */
          while (pos < r->n && p[pos - r->base] == c)
            pos++;
        }
        st = next;
        if (nodes[st].depth < b && (pos & (b - 1)) == 0 && pos >= r->ac_until &&
            r->n - pos >= COLD_MIN) {
          r->cold = true;
          break;
        }
      }
      r->state = st;
      r->scan = pos;
    } else {
      uint64_t pos = r->scan, back = 3 * b - 3, from;
      const unsigned char *p = r->win;
      while (pos + b <= r->n && !filter_hit(s, p + (pos - r->base)))
        pos += b;
      from = pos >= back ? pos - back : 0;
      if (from < r->base)
        from = r->base;
      if (pos + b > r->n) {
        /* The end, in the middle of a block: find the state at n for the
         * holdback, and go on in cold mode from this block next time. */
        r->scan = pos;
        r->state = peek(r, from);
        return;
      }
      /* Stay in the automaton past the block that hit. */
      r->ac_until = pos + b;
      r->scan = from;
      r->state = 0;
      r->cold = false;
    }
  }
}

/* Append rendered text, first skipping what speculate() released ahead. */
static void emit(struct ccci_redact *r, const void *p, size_t n)
{
  size_t skip = r->spec < n ? r->spec : n;
  r->spec -= skip;
  if (n > skip)
    bytes_put(&r->out, (const char *)p + skip, n - skip);
}

/* Render stream positions [from, to) with the known occurrences. */
static void render(struct ccci_redact *r, uint64_t from, uint64_t to)
{
  size_t i = 0;
  while (from < to) {
    uint64_t plain_end = to;
    while (i < r->niv && r->iv[i].e <= from)
      i++;
    if (i < r->niv && r->iv[i].s <= from) {
      if (!r->in_run) {
        emit(r, r->mask, r->mask_len);
        r->masked++;
      }
      r->in_run = true;
      from = r->iv[i].e < to ? r->iv[i].e : to;
      continue;
    }
    if (i < r->niv && r->iv[i].s < plain_end)
      plain_end = r->iv[i].s;
    emit(r, r->win + (from - r->base), (size_t)(plain_end - from));
    r->in_run = false;
    from = plain_end;
  }
}

/* The rendering of [from, to) with the known occurrences, starting outside
 * a masked run, cut at @p max characters; its length is returned and
 * @p last_masked says whether position to - 1 is masked. */
static size_t preview(const struct ccci_redact *r, uint64_t from, uint64_t to,
                      char *buf, size_t max, bool *last_masked)
{
  size_t n = 0, i = 0;
  bool in_run = false;
  while (from < to && n < max) {
    while (i < r->niv && r->iv[i].e <= from)
      i++;
    if (i < r->niv && r->iv[i].s <= from) {
      size_t k;
      for (k = 0; !in_run && k < r->mask_len && n < max; k++)
        buf[n++] = r->mask[k];
      in_run = true;
      from = r->iv[i].e < to ? r->iv[i].e : to;
      continue;
    }
    buf[n++] = (char)r->win[from - r->base];
    in_run = false;
    from++;
  }
  if (last_masked != NULL)
    *last_masked = in_run;
  return n;
}

static size_t lcp(const char *a, size_t an, const char *b, size_t bn)
{
  size_t i = 0;
  while (i < an && i < bn && a[i] == b[i])
    i++;
  return i;
}

/* Character-exact holdback: at an undecided position r (= e, outside a
 * run) the EOF continuation renders the plain bytes, and a continuation
 * completing a partial occurrence starting at s renders the mask from s.
 * Their common prefix can be non-empty when the text looks like the mask
 * ('*'); release it now. */
static void speculate(struct ccci_redact *r)
{
  char a[64], pre[64];
  size_t alen, best, max = r->mask_len < 63 ? r->mask_len : 63;
  uint32_t u;

  if (r->in_run || r->r >= r->n || r->win[r->r - r->base] != r->mask[0])
    return;
  alen = preview(r, r->r, r->n, a, max + 1, NULL);
  best = lcp(a, alen, r->mask, max);
  for (u = r->state; u != 0 && best > r->spec; u = r->set->nodes[u].fail) {
    const struct node *nd = &r->set->nodes[u];
    uint64_t s = r->n - nd->depth;
    size_t plen, cand;
    bool merged;
    if (nd->nchild == 0 || s <= r->r)
      continue;
    plen = preview(r, r->r, s, pre, best + 1, &merged);
    if (plen >= best)
      continue;
    cand = plen + (merged ? 0 : lcp(a + plen, alen - plen, r->mask, max));
    if (cand < best)
      best = cand;
  }
  if (best > r->spec) {
    bytes_put(&r->out, a + r->spec, best - r->spec);
    r->spec = best;
  }
}

/* Drop input and occurrences that can no longer matter. */
/* Bytes kept before the first undecided one, so that a swap can find new
 * values whose occurrences began shortly before it (docs/redaction.md). */
static uint64_t lookback(const struct ccci_redact_set *s)
{
  return s->maxlen > 4096 ? s->maxlen - 1 : 4096;
}

static uint64_t swap_floor(const struct ccci_redact *r)
{
  uint64_t from = r->r < r->e ? r->r : r->e, lb = lookback(r->set);
  return from > lb ? from - lb : 0;
}

/* Drop input and occurrences that can no longer matter. The window is
 * compacted only when the dead part is at least half of it, so the
 * lookback costs no copy per write. */
static void trim(struct ccci_redact *r)
{
  uint64_t keep = swap_floor(r);
  size_t i = 0;
  if (r->cold) {
    uint64_t back = 3 * (uint64_t)r->set->block - 3;
    uint64_t need = r->scan >= back ? r->scan - back : 0;
    if (need < keep)
      keep = need;
  }
  if (keep > r->base && (keep - r->base) * 2 >= r->win_cap) {
    memmove(r->win, r->win + (keep - r->base), (size_t)(r->n - keep));
    r->base = keep;
  }
  while (i < r->niv && r->iv[i].e <= r->r)
    i++;
  if (i > 0) {
    memmove(r->iv, r->iv + i, (r->niv - i) * sizeof(*r->iv));
    r->niv -= i;
  }
}

static void append(struct ccci_redact *r, const void *data, size_t len)
{
  size_t have = (size_t)(r->n - r->base);
  if (have + len > r->win_cap) {
    size_t ncap = r->win_cap ? r->win_cap : 4096;
    unsigned char *nw;
    while (ncap < have + len)
      ncap *= 2;
    nw = ccci_io_alloc(ncap);
    if (r->win != NULL) {
      memcpy(nw, r->win, have);
      ccci_io_free(r->win, r->win_cap);
    }
    r->win = nw;
    r->win_cap = ncap;
  }
  memcpy(r->win + have, data, len);
  r->n += len;
}

int ccci_redact_feed(struct ccci_redact *r, const void *data, size_t len,
                     const char **out, size_t *out_len)
{
  r->out.len = 0;
  if (len > 0 && !r->finished) {
    append(r, data, len);
    scan(r);
    r->e = r->n - r->set->nodes[r->state].hold;
    if (r->r < r->e) {
      render(r, r->r, r->e);
      r->r = r->e;
    }
    /* A known occurrence at r is masked whatever comes next: its mask can
     * go out now (a later occurrence merges into the same run). */
    if (r->niv > 0) {
      size_t i = 0;
      while (i < r->niv && r->iv[i].e <= r->r)
        i++;
      if (i < r->niv && r->iv[i].s <= r->r) {
        if (!r->in_run)
          emit(r, r->mask, r->mask_len);
        r->in_run = true;
        r->r = r->iv[i].e;
      }
    }
    speculate(r);
    trim(r);
  }
  *out = r->out.p != NULL ? (const char *)r->out.p : "";
  *out_len = r->out.len;
  return 0;
}

int ccci_redact_finish(struct ccci_redact *r, const char **out, size_t *out_len)
{
  r->out.len = 0;
  if (!r->finished) {
    render(r, r->r, r->n);
    r->r = r->e = r->n;
    r->finished = true;
    trim(r);
  }
  *out = r->out.p != NULL ? (const char *)r->out.p : "";
  *out_len = r->out.len;
  return 0;
}

int ccci_redact_swap(struct ccci_redact *r, struct ccci_redact_set *set)
{
  struct ccci_redact_set *next;
  uint64_t floor;
  int rc;

  if (set == r->set)
    return 0;
  if (superset(set, r->set)) {
    next = ccci_redact_set_ref(set);
  } else {
    rc = ccci_redact_set_union(r->set, set, &next);
    if (rc < 0)
      return rc;
  }
  floor = swap_floor(r); /* with the old set's lookback: what is kept */
  ccci_redact_set_unref(r->set);
  r->set = next;
  /* Characters released ahead by speculate() are a prefix of the mask; a
   * new value could make the plain rendering from r differ from them, so
   * the byte at r is masked: the rendering from r then starts with the mask
   * whatever the new values match (a byte that looked like the mask is
   * masked; nothing leaks). */
  if (r->spec > 0)
    record(r, r->r, r->r + 1);
  /* Rescan with the new automaton from the lookback before the first
   * undecided byte: every partial occurrence of the old values starts at or
   * after e, so starting from the root there loses none of them, and an
   * occurrence of a new value that began in the lookback is masked from
   * the first unreleased byte on. */
  r->scan = floor > r->base ? floor : r->base;
  r->state = 0;
  r->cold = false;
  if (r->scan < r->n && !r->finished) {
    scan(r);
  } else {
    r->scan = r->n;
  }
  return 0;
}

uint64_t ccci_redact_masked(const struct ccci_redact *r)
{
  return r->masked;
}

size_t ccci_redact_pending(const struct ccci_redact *r)
{
  return (size_t)(r->n - r->r);
}

void ccci_redact_free(struct ccci_redact *r)
{
  if (r == NULL)
    return;
  ccci_redact_set_unref(r->set);
  ccci_wipe_free_str(r->mask);
  ccci_io_free(r->win, r->win_cap);
  free(r->iv);
  bytes_wipe(&r->out);
  free(r);
}
