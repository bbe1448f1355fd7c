/* `ccci meta`: recipe_meta.yml commands that need no daemon. */
#ifndef CCCI_METACLI_H
#define CCCI_METACLI_H

#include "ccci/ctl/cli.h"

/**
 * `ccci meta check DIR [--overlays DIR] [--abra-dir DIR]`: check a recipe
 * checkout's recipe_meta.yml and hook files (ccci_metacheck_run) and print
 * every error, warning and the effective customisation (`--json`: one
 * object); exit 0 valid, 1 invalid, 64 usage (DIR not a directory).
 * `--overlays` and `--abra-dir` default to the config's
 * harness.overlays_dir and harness.abra_dir (the config of -c, else
 * $CCCI_CONFIG, else the embedded default, as `ccci harness`).
 * `ccci meta docs`: print docs/recipe-meta.md, generated from the key table.
 * `ccci meta hooks`: print docs/hooks.md, generated from the hook table.
 * Returns the exit code.
 */
int ccci_cmd_meta(const struct ccci_cli *cli, int argc, char **argv);

#endif
