/* ccci_testlib: the Python helper module ccci ships to a recipe's tests
 * (docs/hooks.md), embedded in the binary and written into each run. */
#ifndef CCCI_TESTLIB_H
#define CCCI_TESTLIB_H

/** The module's source text (python/ccci_testlib.py at build time). */
const char *ccci_testlib_source(void);

/**
 * Write the module as `<dir>/ccci_testlib.py` (creating @p dir). Returns 0,
 * or a negative errno with @p why (allocated).
 */
int ccci_testlib_write(const char *dir, char **why);

#endif
