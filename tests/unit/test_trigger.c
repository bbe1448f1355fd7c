/* Unit tests of trigger.c: the `!testme` grammar over a table of bodies
 * (every case of the integration tests' comments that must not trigger
 * among them) and the results marker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ccci/core/util.h"
#include "ccci/forge/trigger.h"

/* ---- the trigger grammar ---- */

#define N CCCI_FORGE_TRIGGER_NONE
#define T CCCI_FORGE_TRIGGER_TESTME
#define Q CCCI_FORGE_TRIGGER_TESTME_QUICK

static const struct {
  const char *body;
  enum ccci_forge_trigger want;
} grammar[] = {
    /* The two commands, trimmed. */
    {"!testme", T},
    {"!testme --quick", Q},
    {"  !testme\t ", T},
    {"\t!testme --quick  ", Q},
    {"looks good\n\n!testme\n\nthanks", T},
    {"    !testme", T}, /* indentation does not matter outside fences */
    /* Line endings: LF, CRLF, CR. */
    {"!testme\r\n", T},
    {"hi\r\n!testme --quick\r\nthanks\r\n", Q},
    {"hi\r!testme", T},
    {"hi\n\r\n!testme --quick\r", Q},
    /* Near misses never trigger. */
    {"", N},
    {"!testmexyz", N},
    {"!testme foo", N},
    {"please !testme", N},
    {"please\n!testme please", N},
    {"!testme  --quick", N},
    {"!testme --quick extra", N},
    {"!testme  --quick extra", N},
    {"!testme\t--quick", N},
    {"!testme --quick --quick", N},
    {"!testme --Quick", N},
    {"!TESTME", N},
    {"!Testme", N},
    {"testme", N},
    {"!!testme", N},
    {"!testme!", N},
    {"`!testme`", N},
    {"> !testme", N},
    {"- !testme", N},
    {"!test me", N},
    {"!testme\v", N},
    {"\xc2\xa0!testme", N}, /* no-break space is not trimmed */
    /* The first triggering line wins. */
    {"!testme --quick\n!testme", Q},
    {"!testme\n!testme --quick", T},
    {"!testme foo\n!testme --quick\n!testme", Q},
    /* Fences. */
    {"```\n!testme\n```", N},
    {"```\n!testme\n```\n!testme", T},
    {"```\n!testme\n```\n!testme --quick", Q},
    {"~~~\n!testme\n~~~", N},
    {"~~~\n!testme\n~~~\n!testme", T},
    {"```sh\n!testme\n```", N},
    {"``` sh title=\"x\"\n!testme\n```", N},
    {"~~~ x`y\n!testme\n~~~", N},             /* tildes allow backticks */
    {"``` x`y\n!testme", T},                  /* backtick in info: no fence */
    {"``\n!testme\n``", T},                   /* two backticks: no fence */
    {"```\n!testme", N},                      /* unclosed: the rest is code */
    {"~~~~\n!testme\n\n\n!testme", N},        /* unclosed, blank lines */
    {"````\n!testme\n```\n!testme\n````", N}, /* a shorter run is content */
    {"````\n```\n!testme\n````\n!testme", T},
    {"```\n!testme\n`````\n!testme", T}, /* a longer closer closes */
    {"~~~\n!testme\n```\n!testme", N},   /* another character does not */
    {"```\n!testme\n~~~\n!testme", N},
    {"```\n!testme\n``` x\n!testme", N}, /* a closer has no info string */
    {"```\n!testme\n```  \t\n!testme", T},
    {"```\n```\n!testme", T}, /* an empty block */
    {"!testme\n```\n", T},    /* before the fence */
    {"!testme --quick\n```\n!testme\n```", Q},
    {"   ```\n!testme\n   ```\n!testme", T}, /* indented up to 3 spaces */
    {"```\n!testme\n   ```\n!testme", T},
    {" ```\n!testme\n```", N},
    {"    ```\n!testme", T}, /* 4 spaces: not a fence */
    {"\t```\n!testme", T},   /* a tab: not a fence */
    {"  \t```\n!testme", T},
    {"```\n!testme\n    ```\n!testme", N}, /* 4 spaces: not a closer */
    {"```\n!testme\n\t```\n!testme", N},
    {"```\r\n!testme\r\n```\r\n!testme --quick\r\n", Q},
    {"```\r\n!testme\r\n", N},
    {"```\r!testme\r```\r!testme", T},
    {"```!testme\n```", N},           /* the fence line itself never triggers */
    {"``` !testme\n!testme\n```", N}, /* an info string, then code */
    {"text ```\n!testme", T},         /* not at the line start: no fence */
    {"```\n```\n```\n!testme", N},    /* the third fence opens again */
};

static void test_grammar(void **state)
{
  size_t i;
  enum ccci_forge_trigger got;
  (void)state;

  for (i = 0; i < CCCI_ARRAY_LEN(grammar); i++) {
    got = ccci_forge_trigger(grammar[i].body, strlen(grammar[i].body));
    if (got != grammar[i].want)
      fail_msg("case %zu \"%s\": got %d, want %d", i, grammar[i].body, got,
               grammar[i].want);
  }
}

/* Lengths, not NULs, bound the body. */
static void test_grammar_lengths(void **state)
{
  static const char nul[] = "!testme\0";
  static const char nul_line[] = "x\0y\n!testme";
  (void)state;

  assert_int_equal(ccci_forge_trigger(NULL, 0), N);
  assert_int_equal(ccci_forge_trigger("!testme --quick", 7), T);
  assert_int_equal(ccci_forge_trigger("!testme --quick", 6), N);
  assert_int_equal(ccci_forge_trigger(nul, sizeof(nul) - 1), N);
  assert_int_equal(ccci_forge_trigger(nul_line, sizeof(nul_line) - 1), T);
  assert_int_equal(ccci_forge_trigger("```\n!testme\n```", 4), N);
  assert_int_equal(ccci_forge_trigger("!testme\n```", 8), T);
}

#undef N
#undef T
#undef Q

/* ---- the marker ---- */

static void test_marker(void **state)
{
  const char *m = ccci_forge_marker();
  static const char body[] = "<!-- ccci:results -->\n### ccci: level 3\n";
  (void)state;

  assert_string_equal(m, "<!-- ccci:results -->");
  assert_true(ccci_forge_has_marker(body, sizeof(body) - 1));
  assert_true(ccci_forge_has_marker("x\n<!-- ccci:results -->", 23));
  assert_false(ccci_forge_has_marker(body, strlen(m) - 1));
  assert_false(ccci_forge_has_marker("<!-- ccci:result -->", 20));
  assert_false(ccci_forge_has_marker("", 0));
  assert_false(ccci_forge_has_marker(NULL, 0));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grammar),
      cmocka_unit_test(test_grammar_lengths),
      cmocka_unit_test(test_marker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
