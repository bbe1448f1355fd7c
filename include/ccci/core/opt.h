/* One option of a command line: "-x V", "--long V" or "--long=V". */
#ifndef CCCI_OPT_H
#define CCCI_OPT_H

#include "ccci/core/util.h"

/**
 * Take the value of the option at @p argv[*@p i] when it is @p shrt (NULL:
 * the option has no short form) or @p lng, given as "-x V", "--long V" or
 * "--long=V". Returns 1 with the value in @p out (borrowed from @p argv)
 * and *@p i on the option's last word; 0 when the word is another option;
 * -EINVAL when the value is missing, with an allocated message in @p cause
 * ("option -x needs a value") for the caller to print its way.
 */
int ccci_opt_value(int argc, char **argv, int *i, const char *shrt,
                   const char *lng, const char **out, char **cause) CCCI_WUR;

#endif
