/* Key tables: one YAML file read into a caller's struct, key by key. */
#ifndef CCCI_KEYTAB_H
#define CCCI_KEYTAB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/util.h"

/** Milliseconds and bytes, for the ranges and defaults of tables. */
#define CCCI_SEC(n) ((uint64_t)(n)*1000u)
#define CCCI_MIN(n) CCCI_SEC((uint64_t)(n)*60u)
#define CCCI_HOUR(n) CCCI_MIN((uint64_t)(n)*60u)
#define CCCI_DAY(n) CCCI_HOUR((uint64_t)(n)*24u)
#define CCCI_KiB(n) ((uint64_t)(n)*1024u)
#define CCCI_MiB(n) CCCI_KiB((uint64_t)(n)*1024u)
#define CCCI_GiB(n) CCCI_MiB((uint64_t)(n)*1024u)
#define CCCI_TiB(n) CCCI_GiB((uint64_t)(n)*1024u)

/** At most this many errors are reported for one file. */
#define CCCI_KEYTAB_MAX_ERRORS 50

/** A list of strings; `v` is NULL-terminated when not NULL itself. */
struct ccci_strlist {
  char **v;
  size_t n;
};

/** Free the strings of @p l and empty it. */
void ccci_strlist_clear(struct ccci_strlist *l);
/** Append a copy of @p s to @p l (kept NULL-terminated). */
void ccci_strlist_add(struct ccci_strlist *l, const char *s);
/** A copy of @p from in @p to (which is overwritten, not freed). */
void ccci_strlist_copy(struct ccci_strlist *to,
                       const struct ccci_strlist *from);
/** Is @p s one of @p l's strings? */
bool ccci_strlist_has(const struct ccci_strlist *l, const char *s);

/** A map of string to string, in file order. */
struct ccci_strmap {
  char **keys;
  char **vals;
  size_t n;
};

/** How a key's value is stored in the target struct. */
enum ccci_keytab_storage {
  CCCI_KEYTAB_STR,  /**< `char *`, NULL when unset */
  CCCI_KEYTAB_U64,  /**< `uint64_t` with a range */
  CCCI_KEYTAB_BOOL, /**< `bool` */
  CCCI_KEYTAB_LIST, /**< `struct ccci_strlist` */
  CCCI_KEYTAB_MAP,  /**< `struct ccci_strmap` */
  /** `int`: -1 when unset (no default), 0 false, 1 true */
  CCCI_KEYTAB_TRIBOOL,
  /**
   * A record: the keys of `fields`, at their offsets from the key's own
   * (`record_size` bytes there). Written as a mapping; replaced as a whole.
   */
  CCCI_KEYTAB_RECORD,
  /** `struct ccci_keytab_array` of records, written as a list of mappings */
  CCCI_KEYTAB_RECORDS,
  /**
   * `struct ccci_keytab_array` of records, written as a mapping of name to
   * record (an empty value: a record at its defaults); each record keeps its
   * name in the `char *` at `name_off`, in file order.
   */
  CCCI_KEYTAB_RECORD_MAP,
};

/**
 * The records of a RECORDS or RECORD_MAP key: @p n of the type's
 * `record_size` bytes each at @p v. A struct may hold the pointer and the
 * count as two adjacent members of the same types instead.
 */
struct ccci_keytab_array {
  void *v;
  size_t n;
};

struct ccci_keytab;

/**
 * What a key's value must look like. Every hook may be NULL, which means the
 * behaviour named at the hook. Hooks do no I/O.
 */
struct ccci_keytab_type {
  enum ccci_keytab_storage storage;
  const char *doc_name; /**< the type as docs name it: "duration" */
  const char *expect;   /**< completes "expected ..." in errors */
  /** STR and LIST items: is @p v one? NULL: any non-empty string. */
  bool (*valid)(const char *v);
  /**
   * STR and LIST items: the value to store for a valid @p v (allocated),
   * for example a path resolved against @p base_dir. NULL: a copy of @p v.
   */
  char *(*convert)(const char *v, const char *base_dir);
  /**
   * STR and LIST items: when valid says no, an allocated hint appended to
   * the error after "; " (`did you mean 'install'?`), or NULL for none.
   * NULL: no hint.
   */
  char *(*hint)(const char *v);
  /** U64: parse @p s; 0, -EINVAL or -ERANGE. NULL: a decimal integer. */
  int (*parse)(const char *s, uint64_t *out);
  /** U64: the text of @p v that parse reads back. NULL: decimal. */
  void (*format)(uint64_t v, char out[32]);
  /** LIST: an empty list is an error. */
  bool nonempty;
  /** MAP: is @p k a valid key? NULL: any string. */
  bool (*valid_key)(const char *k);
  /** MAP and RECORD_MAP: completes "expected ... as key" when valid_key
   * says no. */
  const char *key_expect;
  /** RECORD, RECORDS, RECORD_MAP: the keys of one record (no sections),
   * their offsets from the record's start. */
  const struct ccci_keytab *fields;
  /** RECORD, RECORDS, RECORD_MAP: the size of one record. */
  size_t record_size;
  /** RECORD_MAP: the offset of the record's `char *` name. */
  size_t name_off;
  /**
   * RECORD, RECORDS, RECORD_MAP: a rule on a whole record once its keys
   * parsed (a key it needs, two keys that go together): NULL when @p rec is
   * fine, else the end of "<key>: ..." (static text). NULL: any record.
   */
  const char *(*check)(const void *rec);
};

/** A plain string that must not be empty. */
extern const struct ccci_keytab_type ccci_keytab_string;
/** A decimal integer. */
extern const struct ccci_keytab_type ccci_keytab_int;
/** A duration in milliseconds (ccci_keytab_parse_duration). */
extern const struct ccci_keytab_type ccci_keytab_duration;
/** A size in bytes (ccci_keytab_parse_size). */
extern const struct ccci_keytab_type ccci_keytab_size;
/** `true` or `false` (also `True`, `TRUE`, `False`, `FALSE`). */
extern const struct ccci_keytab_type ccci_keytab_bool;
/** A list of non-empty strings. */
extern const struct ccci_keytab_type ccci_keytab_strings;

/**
 * One key. A dotted name lives in a section: `a.b` is written as `b` under
 * the mapping `a`, and sections nest the same way. A value that is absent or
 * empty (`key:`, `~`, `null`) leaves the key at what the target holds.
 */
struct ccci_keytab_key {
  const char *name;
  const struct ccci_keytab_type *type;
  size_t off;          /**< of the value in the target struct */
  const char *def;     /**< YAML text of the default; NULL: none */
  const char *def_doc; /**< the default as docs show it, when not `def` */
  uint64_t min, max;   /**< the range of a U64 value, inclusive */
  const char *doc;     /**< one sentence for the docs */
};

/**
 * A table: @p n entries of @p size bytes from @p entries, each embedding a
 * struct ccci_keytab_key at @p key_off, so an owner can keep more per key
 * (ccci_container_of gets the entry back). Order is the order of dumps; the
 * keys of a section are contiguous.
 */
struct ccci_keytab {
  const void *entries;
  size_t n;
  size_t size;
  size_t key_off;
};

/** The @p i th key of @p t. */
const struct ccci_keytab_key *ccci_keytab_at(const struct ccci_keytab *t,
                                             size_t i);

/**
 * Parse the YAML @p text (of @p len bytes, named @p name in messages) into
 * @p target: each key found replaces the target's value of it; relative
 * paths resolve against @p base_dir (NULL: the working directory) when the
 * type's convert hook does so. The root must be a mapping or empty; one
 * document only. Returns 0, or -EINVAL with, in @p errors, an allocated text
 * of every error (up to CCCI_KEYTAB_MAX_ERRORS) one per line, each
 * `name:line:column: message` (1-based, at the offending key's first byte),
 * unknown keys naming the nearest known key or section. On failure the
 * target may hold some of the file's values; it is always safe to free.
 * Text over @p max_bytes is an error.
 */
int ccci_keytab_parse(const struct ccci_keytab *t, const char *name,
                      const char *base_dir, const char *text, size_t len,
                      size_t max_bytes, void *target, char **errors) CCCI_WUR;

/**
 * ccci_keytab_parse, and in @p seen_line (t->n entries, zeroed by the
 * caller) the 1-based line where each key of @p t was set by the file
 * (0: not set; an empty value counts as not set). A key set with an error
 * still has its line.
 */
int ccci_keytab_parse_seen(const struct ccci_keytab *t, const char *name,
                           const char *base_dir, const char *text, size_t len,
                           size_t max_bytes, void *target, size_t *seen_line,
                           char **errors) CCCI_WUR;

/**
 * Read the file @p path of at most @p max_bytes for ccci_keytab_parse: its
 * text and length, and in @p base_dir the absolute directory of the file
 * (both allocated). A file that cannot be read or is too large returns
 * -EINVAL with an error line naming the file in @p errors.
 */
int ccci_keytab_read_file(const char *path, size_t max_bytes, char **text,
                          size_t *len, char **base_dir, char **errors) CCCI_WUR;

/**
 * Set every key of @p t that has a default in @p target by parsing the
 * default text like a file's value. A default that does not parse is a bug
 * in the table and aborts.
 */
void ccci_keytab_defaults(const struct ccci_keytab *t, void *target);
/** Deep-copy every key's value from @p src into the zeroed @p dst. */
void ccci_keytab_copy(const struct ccci_keytab *t, void *dst, const void *src);
/** Free every key's value in @p target (and zero it). */
void ccci_keytab_free(const struct ccci_keytab *t, void *target);
/** Does key @p k hold the same value in @p a and @p b? */
bool ccci_keytab_equal(const struct ccci_keytab_key *k, const void *a,
                       const void *b);

/**
 * Append every key of @p target as YAML that parses back to the same values,
 * sections as nested mappings, to @p b (which should be uncapped).
 */
void ccci_keytab_dump(const struct ccci_keytab *t, const void *target,
                      struct ccci_buf *b);
/**
 * Set every key of @p target in the JSON object @p obj, sections as nested
 * objects; U64 values with a format hook as their text, others as numbers.
 */
void ccci_keytab_to_json(const struct ccci_keytab *t, const void *target,
                         json_t *obj);

/** Format @p v as key @p k's values are written (U64 keys). */
void ccci_keytab_format(const struct ccci_keytab_key *k, uint64_t v,
                        char out[32]);

/** Parse a duration (`0`, `90s`, `10m`, `1h30m`, `2d`, `250ms`) to ms. */
int ccci_keytab_parse_duration(const char *s, uint64_t *ms) CCCI_WUR;
/** Parse a size (`4096`, `64KiB`, `256MiB`, `1GiB`, `10MB`) to bytes. */
int ccci_keytab_parse_size(const char *s, uint64_t *bytes) CCCI_WUR;
/** Format @p ms in the largest exact unit into @p out. */
void ccci_keytab_format_duration(uint64_t ms, char out[32]);
/** Format @p bytes in the largest exact binary unit into @p out. */
void ccci_keytab_format_size(uint64_t bytes, char out[32]);

#endif
