/* The reference log-line encoder: the test and the fuzzer only. */
#ifndef CCCI_TEST_LOGLINE_REF_H
#define CCCI_TEST_LOGLINE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "ccci/core/util.h"

/**
 * ccci_logline_encode() as it was before it was made fast (a byte loop with
 * an 8-byte SWAR skip, and an exact measuring pass near the cap): the same
 * contract, and every output and return value must stay byte-identical.
 */
int ref_logline_encode(struct ccci_buf *b, uint64_t pos, const char *text,
                       size_t len, uint64_t time_s) CCCI_WUR;

#endif
