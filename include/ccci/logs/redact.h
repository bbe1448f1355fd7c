/* Streaming secret redaction: a pattern set built from secret values, and
 * per-stream filters that mask every form of every value, whatever the
 * split of the input into writes. No I/O. See docs/redaction.md. */
#ifndef CCCI_REDACT_H
#define CCCI_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/util.h"

/** The mask token written for each maximal masked run by default. */
#define CCCI_REDACT_MASK "********"
/** The default min_secret_len. */
#define CCCI_REDACT_MIN_LEN 8

/** One secret value (not NUL-terminated; may hold any bytes). */
struct ccci_redact_value {
  const void *data;
  size_t len;
};

/**
 * Call @p cb once for each distinct form of @p value that is at least
 * @p min_len bytes long, in an unspecified order: the value with its
 * trailing CR/LF bytes removed (raw), JSON-string-escaped (with lower- and
 * upper-case `\u00xx`), URL-percent-encoded, standard base64 and base64url
 * at the three byte alignments (only the characters the value determines);
 * for a multi-line value the same forms of the whole value with all-LF and
 * with all-CRLF line ends, and of each line of at least @p min_len bytes
 * that is not a PEM armour line. Nothing is called when the stripped value
 * is shorter than @p min_len. The form buffers are wiped after each call.
 */
void ccci_redact_forms(const void *value, size_t len, size_t min_len,
                       void (*cb)(const unsigned char *form, size_t len,
                                  void *arg),
                       void *arg);

/**
 * An immutable, reference-counted set of patterns. Shared by any number of
 * streams on one thread (the transition memo inside it is not locked).
 */
struct ccci_redact_set;

/**
 * Build a set from @p n values (copied; trailing CR/LF removed). Values
 * shorter than @p min_len (at least 1) are left out: the caller reports
 * them. Returns 0 and the set (one reference) in @p out, or -EINVAL for a
 * zero @p min_len, or -E2BIG when the patterns exceed the internal limits.
 */
int ccci_redact_set_new(const struct ccci_redact_value *values, size_t n,
                        size_t min_len, struct ccci_redact_set **out) CCCI_WUR;
/**
 * Would ccci_redact_set_new(@p values, @p n, @p min_len) build a set with
 * exactly the values of @p set? Lets a caller that re-reads the secrets
 * keep the set it has instead of building it again.
 */
bool ccci_redact_set_same(const struct ccci_redact_set *set,
                          const struct ccci_redact_value *values, size_t n,
                          size_t min_len);
/** Take a reference. */
struct ccci_redact_set *ccci_redact_set_ref(struct ccci_redact_set *set);
/** Drop a reference; the last one wipes every secret byte and frees. */
void ccci_redact_set_unref(struct ccci_redact_set *set);
/** How many distinct values (at least min_len long) the set masks. */
size_t ccci_redact_set_values(const struct ccci_redact_set *set);
/** How many distinct patterns (forms) the set searches for. */
size_t ccci_redact_set_patterns(const struct ccci_redact_set *set);
/** Bytes of memory the set holds. */
size_t ccci_redact_set_memory(const struct ccci_redact_set *set);
/**
 * A set holding the values of @p a and of @p b (the larger min_len of the
 * two does not matter: both keep their own; the union uses the smaller).
 * Returns 0 and the union in @p out, or a negative errno.
 */
int ccci_redact_set_union(const struct ccci_redact_set *a,
                          const struct ccci_redact_set *b,
                          struct ccci_redact_set **out) CCCI_WUR;

/** One stream's filter. */
struct ccci_redact;

/**
 * A filter for one stream masking the values of @p set (referenced) with
 * @p mask (copied, non-empty; NULL: CCCI_REDACT_MASK).
 */
struct ccci_redact *ccci_redact_new(struct ccci_redact_set *set,
                                    const char *mask);

/**
 * Feed the next @p len bytes of the stream. On return @p out and @p out_len
 * hold the bytes that may be released now: exactly the longest common prefix
 * of the masked results over every possible continuation of the input so
 * far, less what earlier calls released. @p out stays valid until the next
 * call on this stream. Returns 0.
 */
int ccci_redact_feed(struct ccci_redact *r, const void *data, size_t len,
                     const char **out, size_t *out_len) CCCI_WUR;

/**
 * End of stream: release the rest. After it the stream only accepts
 * ccci_redact_free. Returns 0.
 */
int ccci_redact_finish(struct ccci_redact *r, const char **out,
                       size_t *out_len) CCCI_WUR;

/**
 * Switch the stream to the union of its current set and @p set, from the
 * next unreleased byte on (see docs/redaction.md). When @p set already holds
 * every value of the current one it is used as is, so a caller that passes
 * the same union to many streams builds it once. Values are never removed
 * from a live stream. Returns 0 or a negative errno (the stream then keeps
 * its current set).
 */
int ccci_redact_swap(struct ccci_redact *r,
                     struct ccci_redact_set *set) CCCI_WUR;

/** Masked runs written so far (each maximal run of secret bytes is one). */
uint64_t ccci_redact_masked(const struct ccci_redact *r);

/** Bytes held back so far (fed but not yet decided). */
size_t ccci_redact_pending(const struct ccci_redact *r);

/** Free the stream, wiping what it holds. NULL is allowed. */
void ccci_redact_free(struct ccci_redact *r);

#endif
