/* `ccci meta`: recipe_meta.yml commands that need no daemon. */
#ifndef CCCI_METACLI_H
#define CCCI_METACLI_H

#include "ccci/ctl/cli.h"

/**
 * `ccci meta docs`: print the recipe_meta.yml reference (docs/recipe-meta.md)
 * generated from the key table. Returns the exit code.
 */
int ccci_cmd_meta(const struct ccci_cli *cli, int argc, char **argv);

#endif
