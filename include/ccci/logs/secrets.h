/* Secret values read from files: the scan rules of SPEC section 7. */
#ifndef CCCI_SECRETS_H
#define CCCI_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#include "ccci/core/util.h"

/** Files larger than this are skipped with a warning. */
#define CCCI_SECRET_MAX_BYTES (64 * 1024)
/** At most this many files are read (a larger tree is an error). */
#define CCCI_SECRET_MAX_FILES 100000

/** One secret: where it came from and its value (trailing CR/LF removed). */
struct ccci_secret {
  char *path;
  unsigned char *value;
  size_t len;
};

/** What a scan found. */
struct ccci_secrets {
  struct ccci_secret *v;
  size_t n;
  char **warnings; /**< for people: skipped files, a missing optional dir */
  size_t nwarnings;
  char *fingerprint; /**< see ccci_secrets_fingerprint */
};

/**
 * Read every regular file under @p dir (recursively, following symlinks,
 * each directory once so loops end; NULL: none), then each of the @p nfiles
 * @p files. Files over CCCI_SECRET_MAX_BYTES are skipped with a warning. A
 * missing @p dir is only a warning when @p dir_optional. Anything that
 * cannot be read (a file, a directory, a dangling symlink) fails the whole
 * scan: returns a negative errno and, in @p err, a message naming the path
 * (fail closed). On success returns 0; free @p out with ccci_secrets_free.
 * Values never appear in messages.
 */
int ccci_secrets_load(const char *dir, bool dir_optional,
                      const char *const *files, size_t nfiles,
                      struct ccci_secrets *out, char **err) CCCI_WUR;

/**
 * Walk the same files as ccci_secrets_load without reading them: the
 * result lists each file's path, device, inode, mtime and size, so two
 * equal fingerprints mean the values need not be read again (SPEC section
 * 7: readdir plus inode, mtime, size). Errors as for ccci_secrets_load.
 */
int ccci_secrets_fingerprint(const char *dir, bool dir_optional,
                             const char *const *files, size_t nfiles,
                             char **fingerprint, char **err) CCCI_WUR;

/** Wipe and free what ccci_secrets_load returned. */
void ccci_secrets_free(struct ccci_secrets *s);

#endif
