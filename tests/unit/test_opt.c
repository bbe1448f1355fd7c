/* Unit tests of opt.c: the forms of an option with a value, and the
 * message of a missing value the CLI and the supervisor print. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/opt.h"

struct opt_case {
  const char *words[3]; /* argv from index 0; NULL ends it */
  const char *shrt;     /* NULL: long form only */
  const char *lng;
  int want;          /* 1 taken, 0 another option, -EINVAL missing */
  const char *value; /* when taken */
  int next;          /* *i after the call */
  const char *cause; /* when missing */
};

static const struct opt_case cases[] = {
    {{"--socket", "/s", NULL}, "-s", "--socket", 1, "/s", 1, NULL},
    {{"-s", "/s", NULL}, "-s", "--socket", 1, "/s", 1, NULL},
    {{"--socket=/s", NULL, NULL}, "-s", "--socket", 1, "/s", 0, NULL},
    {{"--socket=", NULL, NULL}, "-s", "--socket", 1, "", 0, NULL},
    /* The value may look like an option: it is taken as it is. */
    {{"--socket", "--json", NULL}, "-s", "--socket", 1, "--json", 1, NULL},
    {{"--socket", NULL, NULL},
     "-s",
     "--socket",
     -EINVAL,
     NULL,
     0,
     "option --socket needs a value"},
    {{"-s", NULL, NULL},
     "-s",
     "--socket",
     -EINVAL,
     NULL,
     0,
     "option -s needs a value"},
    {{"--state", NULL, NULL},
     NULL,
     "--state",
     -EINVAL,
     NULL,
     0,
     "option --state needs a value"},
    /* Not this option: a longer name, a prefix, the short form glued on. */
    {{"--sockets", "/s", NULL}, "-s", "--socket", 0, NULL, 0, NULL},
    {{"--sock", "/s", NULL}, "-s", "--socket", 0, NULL, 0, NULL},
    {{"-s/s", NULL, NULL}, "-s", "--socket", 0, NULL, 0, NULL},
    {{"-s=/s", NULL, NULL}, "-s", "--socket", 0, NULL, 0, NULL},
    {{"-s", "/s", NULL}, NULL, "--socket", 0, NULL, 0, NULL},
    {{"--json", NULL, NULL}, "-s", "--socket", 0, NULL, 0, NULL},
};

static void test_cases(void **state)
{
  size_t k;
  (void)state;

  for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    const struct opt_case *c = &cases[k];
    char *argv[3];
    const char *out = NULL;
    char *cause = NULL;
    int argc = 0, i = 0, r;

    while (argc < 3 && c->words[argc] != NULL) {
      argv[argc] = (char *)c->words[argc];
      argc++;
    }
    r = ccci_opt_value(argc, argv, &i, c->shrt, c->lng, &out, &cause);
    assert_int_equal(r, c->want);
    assert_int_equal(i, c->next);
    if (r == 1)
      assert_string_equal(out, c->value);
    else
      assert_null(out);
    if (r < 0)
      assert_string_equal(cause, c->cause);
    else
      assert_null(cause);
    free(cause);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
