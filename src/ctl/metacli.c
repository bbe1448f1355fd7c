/* `ccci meta`: recipe_meta.yml and hook-file commands that need no daemon. */
#include "ccci/ctl/metacli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ccci/core/config.h"
#include "ccci/core/opt.h"
#include "ccci/harness/hooks.h"
#include "ccci/harness/meta.h"
#include "ccci/harness/metacheck.h"

#define CHECK_USAGE                                                            \
  "usage: ccci meta check DIR [--overlays DIR] [--abra-dir DIR] [--json]"

static void print_msg(const struct ccci_metacheck_msg *m, const char *kind)
{
  if (m->line != 0 && m->column != 0)
    printf("%s:%zu:%zu: %s%s\n", m->file, m->line, m->column, kind, m->message);
  else if (m->line != 0)
    printf("%s:%zu: %s%s\n", m->file, m->line, kind, m->message);
  else
    printf("%s: %s%s\n", m->file, kind, m->message);
}

static void print_text(const struct ccci_metacheck *c)
{
  size_t i;
  int k;

  for (i = 0; i < c->nerrors; i++)
    print_msg(&c->errors[i], "");
  for (i = 0; i < c->nwarnings; i++)
    print_msg(&c->warnings[i], "warning: ");
  printf("recipe %s, the effective customisation:\n", c->recipe);
  for (k = 0; k < CCCI_META_NKEYS; k++) {
    char *line = ccci_meta_dump_key(&c->meta, (enum ccci_meta_key)k);
    char *origin = ccci_metacheck_origin(c, (enum ccci_meta_key)k);
    size_t l = strlen(line);
    if (l > 0 && line[l - 1] == '\n')
      line[--l] = '\0';
    printf("  %s  # %s\n", line, origin);
    free(origin);
    free(line);
  }
  printf("hook files:\n");
  for (k = 0; k < CCCI_HOOK_COUNT; k++) {
    const struct ccci_metacheck_hook *h = &c->hooks[k];
    const char *file = ccci_hook_info((enum ccci_hook)k)->file;
    if (h->path == NULL)
      printf("  %s: none\n", file);
    else
      printf("  %s: %s  # %s\n", file, h->path,
             ccci_meta_source_name(h->source));
  }
  if (c->nerrors == 0)
    printf("valid\n");
  else
    printf("invalid: %zu error%s\n", c->nerrors, c->nerrors == 1 ? "" : "s");
}

/* The config the harness would read: -c, else $CCCI_CONFIG, else the
 * embedded default. NULL (the error printed) when it does not load. */
static struct ccci_config *load_config(const struct ccci_cli *cli)
{
  const char *path = cli->config != NULL ? cli->config : getenv("CCCI_CONFIG");
  struct ccci_config *cfg = NULL;
  char *errors = NULL;
  if (path == NULL || *path == '\0')
    return ccci_config_default();
  if (ccci_config_load_file(path, &cfg, &errors) < 0) {
    fprintf(stderr, "ccci: cannot read the config: %s",
            errors != NULL ? errors : "error\n");
    free(errors);
    return NULL;
  }
  free(errors);
  return cfg;
}

static bool is_dir(const char *p)
{
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int meta_check(const struct ccci_cli *cli, int argc, char **argv)
{
  const char *dir = NULL, *overlays = NULL, *abra = NULL;
  struct ccci_config *cfg;
  struct ccci_metacheck c;
  char *cause = NULL;
  int i, r, code;

  for (i = 0; i < argc; i++) {
    r = ccci_opt_value(argc, argv, &i, NULL, "--overlays", &overlays, &cause);
    if (r == 0)
      r = ccci_opt_value(argc, argv, &i, NULL, "--abra-dir", &abra, &cause);
    if (r < 0) {
      code = ccci_cli_usage_error("%s", cause);
      free(cause);
      return code;
    }
    if (r == 1)
      continue;
    if (argv[i][0] == '-' && argv[i][1] != '\0')
      return ccci_cli_usage_error("'meta check' has no option '%s'; %s",
                                  argv[i], CHECK_USAGE);
    if (dir != NULL)
      return ccci_cli_usage_error("'meta check' takes one DIR; %s",
                                  CHECK_USAGE);
    dir = argv[i];
  }
  if (dir == NULL)
    return ccci_cli_usage_error("'meta check' needs a recipe checkout DIR; %s",
                                CHECK_USAGE);
  if (!is_dir(dir))
    return ccci_cli_usage_error("%s is not a directory (a recipe checkout)",
                                dir);
  if (overlays != NULL && !is_dir(overlays))
    return ccci_cli_usage_error("--overlays %s is not a directory", overlays);
  if (abra != NULL && !is_dir(abra))
    return ccci_cli_usage_error("--abra-dir %s is not a directory", abra);
  cfg = load_config(cli);
  if (cfg == NULL)
    return CCCI_EXIT_USAGE;
  if (overlays == NULL)
    overlays = cfg->harness.overlays_dir;
  if (abra == NULL)
    abra = cfg->harness.abra_dir;
  r = ccci_metacheck_run(dir, overlays, abra, &c, &cause);
  if (r < 0) {
    code = ccci_cli_usage_error("%s", cause);
  } else {
    ccci_metacheck_pool(&c, cfg);
    if (cli->json) {
      json_t *j = ccci_metacheck_to_json(&c);
      char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
      if (s != NULL)
        puts(s);
      free(s);
      json_decref(j);
    } else {
      print_text(&c);
    }
    code = c.nerrors == 0 ? CCCI_EXIT_OK : CCCI_EXIT_FAILED;
  }
  free(cause);
  ccci_metacheck_free(&c);
  ccci_config_unref(cfg);
  return code;
}

static int print_doc(const char *what, int argc, char *doc)
{
  if (argc != 1) {
    free(doc);
    return ccci_cli_usage_error("usage: ccci meta %s", what);
  }
  fputs(doc, stdout);
  free(doc);
  return CCCI_EXIT_OK;
}

int ccci_cmd_meta(const struct ccci_cli *cli, int argc, char **argv)
{
  if (argc < 1)
    return ccci_cli_usage_error("'meta' needs 'check DIR', 'docs' or 'hooks'");
  if (strcmp(argv[0], "check") == 0)
    return meta_check(cli, argc - 1, argv + 1);
  if (cli->json)
    return ccci_cli_usage_error("'meta %s' prints markdown; it has no --json "
                                "output",
                                argv[0]);
  if (strcmp(argv[0], "docs") == 0)
    return print_doc("docs", argc, ccci_meta_docs());
  if (strcmp(argv[0], "hooks") == 0)
    return print_doc("hooks", argc, ccci_hooks_docs());
  return ccci_cli_usage_error("unknown 'meta' command '%s' (check, docs, "
                              "hooks)",
                              argv[0]);
}
