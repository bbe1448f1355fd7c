/* ccci's entry point: global options, then dispatch to a command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccci/core/opt.h"
#include "ccci/core/util.h"
#include "ccci/ctl/cli.h"
#include "ccci/ctl/metacli.h"
#include "ccci/serve/daemon.h"

struct command {
  const char *name;
  int (*fn)(const struct ccci_cli *cli, int argc, char **argv);
  const char *usage;
};

static const struct command commands[] = {
    {"serve", ccci_cmd_serve, "serve [-c FILE]      run the daemon"},
    {"status", ccci_cmd_status,
     "status [--json]      the daemon's state and counters"},
    {"submit", ccci_cmd_submit,
     "submit DIR [--ref REF] [--pr N] [--quick]\n"
     "                       queue a run of a local recipe; prints its id"},
    {"ps", ccci_cmd_ps,
     "ps [--state S] [--recipe R]\n"
     "                       list runs"},
    {"show", ccci_cmd_show, "show RUN             a run's record and steps"},
    {"cancel", ccci_cmd_cancel, "cancel RUN           stop a run"},
    {"tail", ccci_cmd_tail,
     "tail RUN [--step S] [--from N] [--no-follow]\n"
     "                       print a run's log live; exits with its result"},
    {"drain", ccci_cmd_drain, "drain                stop admitting runs"},
    {"server", ccci_cmd_server,
     "server ls            the pool: capacity, running, queued, health\n"
     "  server drain NAME    a server takes no new run (its runs finish)\n"
     "  server undrain NAME  it takes runs again"},
    {"janitor", ccci_cmd_janitor,
     "janitor [--dry-run]  sweep orphaned runs and lock files now"},
    {"config", ccci_cmd_config,
     "config check FILE    print the effective config or its errors\n"
     "  config docs          print the configuration reference"},
    {"meta", ccci_cmd_meta,
     "meta check DIR [--overlays DIR] [--abra-dir DIR]\n"
     "                       check a recipe's recipe_meta.yml and hook files\n"
     "  meta docs | hooks    print the recipe_meta.yml or hook files "
     "reference"},
    {"redact", ccci_cmd_redact,
     "redact [--secrets-dir DIR] [--secret-file FILE]... [--min-len N] "
     "[--mask STR]\n"
     "                       mask secrets on the way from stdin to stdout"},
    {"harness", ccci_cmd_harness,
     "harness [--recipe DIR] [--ref REF] [--domain D] [--server S] [--quick]\n"
     "          [--results FILE] [--run-dir DIR] [--keep] [--tier T]...\n"
     "                       deploy a recipe with abra and run its tiers\n"
     "  harness --teardown [--run-dir DIR]\n"
     "                       tear down what a run's state files say exists\n"
     "  harness --probe [--server S]\n"
     "                       exit 0 when the abra server S answers"},
    {"version", ccci_cmd_version, "version              print the version"},
    /* Hidden (no usage): only the daemon starts it. */
    {"supervise", ccci_cmd_supervise, NULL},
};

static void usage(FILE *f)
{
  size_t i;
  fputs("usage: ccci [-s SOCKET] [-c FILE] [--json] COMMAND [ARGS]\n\n"
        "Continuous integration for Co-op Cloud recipes.\n\ncommands:\n",
        f);
  for (i = 0; i < CCCI_ARRAY_LEN(commands); i++) {
    if (commands[i].usage != NULL)
      fprintf(f, "  %s\n", commands[i].usage);
  }
  fputs("\noptions (before or after the command):\n"
        "  -s, --socket SOCKET  the daemon's socket (else $CCCI_SOCKET, else "
        "the config's)\n"
        "  -c, --config FILE    the config file (else $CCCI_CONFIG, else "
        "~/.config/ccci/ccci.yml\n"
        "                       when it exists, else the embedded default)\n"
        "  --json               machine-readable output\n"
        "  -h, --help           this text\n",
        f);
}

/* Take the value of -s or -c: 1 taken, 0 not this option, CCCI_EXIT_USAGE
 * (printed) when the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *shrt,
                        const char *lng, const char **out)
{
  char *cause = NULL;
  int r = ccci_opt_value(argc, argv, i, shrt, lng, out, &cause);
  if (r < 0) {
    r = ccci_cli_usage_error("%s", cause);
    free(cause);
  }
  return r;
}

int main(int argc, char **argv)
{
  struct ccci_cli cli = {NULL, NULL, false};
  char **rest = ccci_xcalloc((size_t)argc + 1, sizeof(char *));
  int nrest = 0, i, r = 0;
  size_t c, best = 0, bestd = (size_t)-1;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      while (++i < argc)
        rest[nrest++] = argv[i];
      break;
    }
    r = option_value(argc, argv, &i, "-s", "--socket", &cli.socket);
    if (r == 0)
      r = option_value(argc, argv, &i, "-c", "--config", &cli.config);
    if (r < 0 || r == CCCI_EXIT_USAGE)
      goto out;
    if (r == 1) {
      r = 0;
      continue;
    }
    if (strcmp(a, "--json") == 0) {
      cli.json = true;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      goto out;
    } else {
      rest[nrest++] = argv[i];
    }
  }
  if (nrest == 0) {
    usage(stderr);
    r = CCCI_EXIT_USAGE;
    goto out;
  }
  for (c = 0; c < CCCI_ARRAY_LEN(commands); c++) {
    size_t d;
    if (strcmp(commands[c].name, rest[0]) == 0) {
      r = commands[c].fn(&cli, nrest - 1, rest + 1);
      goto out;
    }
    d = ccci_edit_distance(rest[0], commands[c].name);
    if (d < bestd && commands[c].usage != NULL) {
      bestd = d;
      best = c;
    }
  }
  if (rest[0][0] == '-')
    r = ccci_cli_usage_error("unknown option '%s'", rest[0]);
  else
    r = ccci_cli_usage_error("unknown command '%s'; did you mean '%s'?",
                             rest[0], commands[best].name);
out:
  free(rest);
  return r;
}
