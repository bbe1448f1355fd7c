/* `ccci meta`: recipe_meta.yml commands that need no daemon. */
#include "ccci/ctl/metacli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/harness/meta.h"

int ccci_cmd_meta(const struct ccci_cli *cli, int argc, char **argv)
{
  char *doc;

  (void)cli;
  if (argc < 1)
    return ccci_cli_usage_error("'meta' needs 'docs'");
  if (strcmp(argv[0], "docs") != 0)
    return ccci_cli_usage_error("unknown 'meta' command '%s' (docs)", argv[0]);
  if (argc != 1)
    return ccci_cli_usage_error("usage: ccci meta docs");
  doc = ccci_meta_docs();
  fputs(doc, stdout);
  free(doc);
  return CCCI_EXIT_OK;
}
