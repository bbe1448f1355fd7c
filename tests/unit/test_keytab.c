/* Unit tests of keytab: a second table (tests/unit/keytab_meta.c) parsed,
 * rejected, dumped and copied by the engine the service config uses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keytab_meta.h"
#include "tmpdir.h"

#define NAME "meta.yml"
#define BASE "/recipes/app"
#define MAX_BYTES 4096

/* Every key at its default, as the dump writes it. */
#define DEFAULTS_DUMP                                                          \
  "name: null\n"                                                               \
  "port: 80\n"                                                                 \
  "flaky: false\n"                                                             \
  "tags: []\n"                                                                 \
  "script: null\n"                                                             \
  "source:\n"                                                                  \
  "  repo: null\n"                                                             \
  "  branch: \"main\"\n"                                                       \
  "  timeout: 10m\n"                                                           \
  "health:\n"                                                                  \
  "  check:\n"                                                                 \
  "    path: \"/\"\n"                                                          \
  "    tries: 3\n"                                                             \
  "env: {}\n"

static void meta_init(struct meta *m)
{
  memset(m, 0, sizeof(*m));
  ccci_keytab_defaults(&meta_table, m);
}

static char *dump(const struct meta *m)
{
  struct ccci_buf b;
  ccci_buf_init(&b, SIZE_MAX);
  ccci_keytab_dump(&meta_table, m, &b);
  return ccci_buf_detach(&b);
}

/* Parse @p yaml into a fresh struct meta; 0 or -EINVAL with @p errors. */
static int parse(const char *yaml, struct meta *m, char **errors)
{
  meta_init(m);
  return ccci_keytab_parse(&meta_table, NAME, BASE, yaml, strlen(yaml),
                           MAX_BYTES, m, errors);
}

/* ---- documents that parse: the effective values, as a dump ---- */

static const struct {
  const char *what;
  const char *yaml;
  const char *dump;
} good[] = {
    {"empty document", "", DEFAULTS_DUMP},
    {"null document", "~\n", DEFAULTS_DUMP},
    {"comments only", "# nothing here\n", DEFAULTS_DUMP},
    {"empty values keep the defaults",
     "port:\nflaky: ~\ntags: null\nsource:\nhealth:\n  check: ~\n",
     DEFAULTS_DUMP},
    {"every key",
     "name: app\n"
     "port: 8080\n"
     "flaky: true\n"
     "tags: [web, 'db']\n"
     "script: tests/run.sh\n"
     "source:\n"
     "  repo: https://git.example/app\n"
     "  branch: v2\n"
     "  timeout: 1h\n"
     "health:\n"
     "  check:\n"
     "    path: /healthz\n"
     "    tries: 100\n"
     "env: {DOMAIN: app.local, EMPTY: ~}\n",
     "name: \"app\"\n"
     "port: 8080\n"
     "flaky: true\n"
     "tags: [\"web\", \"db\"]\n"
     "script: \"/recipes/app/tests/run.sh\"\n"
     "source:\n"
     "  repo: \"https://git.example/app\"\n"
     "  branch: \"v2\"\n"
     "  timeout: 1h\n"
     "health:\n"
     "  check:\n"
     "    path: \"/healthz\"\n"
     "    tries: 100\n"
     "env: {\"DOMAIN\": \"app.local\", \"EMPTY\": \"\"}\n"},
    {"flow mappings and range ends",
     "source: {timeout: 1s}\nhealth: {check: {tries: 1}}\nport: 65535\n"
     "flaky: FALSE\nscript: /abs\n",
     "name: null\n"
     "port: 65535\n"
     "flaky: false\n"
     "tags: []\n"
     "script: \"/abs\"\n"
     "source:\n"
     "  repo: null\n"
     "  branch: \"main\"\n"
     "  timeout: 1s\n"
     "health:\n"
     "  check:\n"
     "    path: \"/\"\n"
     "    tries: 1\n"
     "env: {}\n"},
};

static void test_good_documents(void **state)
{
  size_t i;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(good); i++) {
    struct meta m, again;
    char *errors = NULL, *text, *text2;
    int r = parse(good[i].yaml, &m, &errors);
    if (r != 0)
      fail_msg("%s: %s", good[i].what, errors);
    text = dump(&m);
    if (strcmp(text, good[i].dump) != 0)
      fail_msg("%s: dumped\n%s", good[i].what, text);
    /* The dump parses back to the same values. */
    assert_int_equal(parse(text, &again, &errors), 0);
    text2 = dump(&again);
    assert_string_equal(text2, text);
    free(text2);
    free(text);
    ccci_keytab_free(&meta_table, &again);
    ccci_keytab_free(&meta_table, &m);
  }
}

/* ---- documents that fail: every error, exactly ---- */

static const struct {
  const char *what;
  const char *yaml;
  const char *errors;
} bad[] = {
    {"unknown key", "nmae: app\n",
     "meta.yml:1:1: unknown key 'nmae'; did you mean 'name'?\n"},
    {"unknown section", "sorce:\n  repo: x\n",
     "meta.yml:1:1: unknown key 'sorce'; did you mean 'source'?\n"},
    {"unknown key in a section", "source:\n  rpeo: x\n",
     "meta.yml:2:3: unknown key 'source.rpeo'; did you mean 'source.repo'?\n"},
    {"unknown section two levels deep", "health:\n  chek:\n    path: /x\n",
     "meta.yml:2:3: unknown key 'health.chek'; did you mean 'health.check'?\n"},
    {"unknown key two levels deep", "health:\n  check:\n    pth: /x\n",
     "meta.yml:3:5: unknown key 'health.check.pth'; "
     "did you mean 'health.check.path'?\n"},
    {"int below its range", "port: 0\n",
     "meta.yml:1:1: port: 0 is out of range (1 to 65535)\n"},
    {"int above its range", "port: 65536\n",
     "meta.yml:1:1: port: 65536 is out of range (1 to 65535)\n"},
    {"int that is not one", "port: 80x\n",
     "meta.yml:1:1: port: expected an integer, got '80x'\n"},
    {"duration below its range", "source:\n  timeout: 500ms\n",
     "meta.yml:2:3: source.timeout: 500ms is out of range (1s to 1h)\n"},
    {"bool that is not one", "flaky: yes\n",
     "meta.yml:1:1: flaky: expected true or false, got 'yes'\n"},
    {"bool given a list", "flaky: [true]\n",
     "meta.yml:1:1: flaky: expected true or false, got a list\n"},
    {"string given a list", "name: [a]\n",
     "meta.yml:1:1: name: expected a non-empty string, got a list\n"},
    {"string given a mapping", "name: {a: b}\n",
     "meta.yml:1:1: name: expected a non-empty string, got a mapping\n"},
    {"empty string", "name: ''\n",
     "meta.yml:1:1: name: expected a non-empty string, got ''\n"},
    {"list given a scalar", "tags: web\n",
     "meta.yml:1:1: tags: expected a list of non-empty strings, got a "
     "scalar\n"},
    {"bad list items, each at its column", "tags: [ok, [x], ~, '']\n",
     "meta.yml:1:12: tags[1]: expected a string, got a list\n"
     "meta.yml:1:17: tags[2]: expected a string, got nothing\n"
     "meta.yml:1:20: tags[3]: expected a list of non-empty strings, got ''\n"},
    {"map key the type rejects", "env:\n  DOMAIN: x\n  lower: y\n",
     "meta.yml:3:3: env: expected an upper-case name as key\n"},
    {"map value that is not a string", "env: {A: [1]}\n",
     "meta.yml:1:7: env.A: expected a string, got a list\n"},
    {"duplicate map key", "env: {A: 1, A: 2}\n",
     "meta.yml:1:13: duplicate key 'env.A'\n"},
    {"duplicate key", "name: a\nport: 1\nname: b\n",
     "meta.yml:3:1: duplicate key 'name' (first set at line 1)\n"},
    {"duplicate section",
     "source:\n  repo: a\nhealth: ~\nsource:\n  branch: b\n",
     "meta.yml:4:1: duplicate key 'source' (first set at line 1)\n"},
    {"duplicate key across section spellings",
     "source:\n  repo: a\nsource.repo: b\n",
     "meta.yml:3:1: duplicate key 'source.repo' (first set at line 2)\n"},
    {"section given a scalar", "source: 3\n",
     "meta.yml:1:1: source: expected a mapping of keys, got a scalar\n"},
    {"nested section given a list", "health:\n  check: [a]\n",
     "meta.yml:2:3: health.check: expected a mapping of keys, got a list\n"},
    {"key that is not a string", "[a]: 1\n",
     "meta.yml:1:1: keys must be plain strings, got a list\n"},
    {"line and column in a flow mapping", "source: {repo: a, timeout: 5x}\n",
     "meta.yml:1:19: source.timeout: expected a duration, like 500ms, 90s, "
     "10m, 2h or 1d, got '5x'\n"},
    {"line and column after blank lines and indentation",
     "\n\n# c\nhealth:\n    check:\n        tries: 0\n",
     "meta.yml:6:9: health.check.tries: 0 is out of range (1 to 100)\n"},
    {"root is a list", "- name\n- port\n",
     "meta.yml:1:1: expected a mapping of keys at the top level, got a list\n"},
    {"root is a scalar", "\n  app\n",
     "meta.yml:2:3: expected a mapping of keys at the top level, got a "
     "scalar\n"},
    {"two documents", "name: a\n---\nname: b\n",
     "meta.yml:3:1: only one YAML document is allowed (remove '---')\n"},
    {"invalid YAML", "name: [a\n",
     "meta.yml:2:1: invalid YAML: did not find expected ',' or ']' while "
     "parsing a flow sequence\n"},
    {"control bytes are shown escaped", "\"n\\x01'\": 1\n",
     "meta.yml:1:1: unknown key 'n\\x01\\x27'; did you mean 'name'?\n"},
    {"every error is reported, in file order",
     "nmae: a\nport: 0\nflaky: 2\nsource:\n  branch: [x]\nname: b\n",
     "meta.yml:1:1: unknown key 'nmae'; did you mean 'name'?\n"
     "meta.yml:2:1: port: 0 is out of range (1 to 65535)\n"
     "meta.yml:3:1: flaky: expected true or false, got '2'\n"
     "meta.yml:5:3: source.branch: expected a non-empty string, got a list\n"},
};

static void test_bad_documents(void **state)
{
  size_t i;
  (void)state;
  for (i = 0; i < CCCI_ARRAY_LEN(bad); i++) {
    struct meta m;
    char *errors = NULL;
    int r = parse(bad[i].yaml, &m, &errors);
    if (r != -EINVAL)
      fail_msg("%s: parsed (%d)", bad[i].what, r);
    if (strcmp(errors, bad[i].errors) != 0)
      fail_msg("%s: got\n%swant\n%s", bad[i].what, errors, bad[i].errors);
    free(errors);
    /* A failed parse leaves a target that frees cleanly. */
    ccci_keytab_free(&meta_table, &m);
  }
}

static void test_too_large(void **state)
{
  struct meta m;
  char *errors = NULL, *big = ccci_xmalloc(MAX_BYTES + 1);
  (void)state;
  memset(big, '#', MAX_BYTES + 1);
  meta_init(&m);
  assert_int_equal(ccci_keytab_parse(&meta_table, NAME, BASE, big,
                                     MAX_BYTES + 1, MAX_BYTES, &m, &errors),
                   -EINVAL);
  assert_string_equal(errors, "meta.yml: file is larger than 4096 bytes\n");
  free(errors);
  free(big);
  ccci_keytab_free(&meta_table, &m);
}

static void test_error_count_is_capped(void **state)
{
  struct ccci_buf b;
  struct meta m;
  char *errors = NULL, *yaml;
  size_t i, lines = 0;
  (void)state;
  ccci_buf_init(&b, SIZE_MAX);
  for (i = 0; i < 2 * CCCI_KEYTAB_MAX_ERRORS; i++)
    assert_int_equal(ccci_buf_printf(&b, "k%zu: 1\n", i), 0);
  yaml = ccci_buf_detach(&b);
  assert_int_equal(parse(yaml, &m, &errors), -EINVAL);
  for (i = 0; errors[i] != '\0'; i++)
    lines += errors[i] == '\n';
  assert_int_equal(lines, CCCI_KEYTAB_MAX_ERRORS);
  /* The last line says so, at the key where it stopped. */
  assert_string_equal(strstr(errors, "meta.yml:50:"),
                      "meta.yml:50:1: too many errors; stopping here\n");
  free(errors);
  free(yaml);
  ccci_keytab_free(&meta_table, &m);
}

/* ---- files: read, resolve relative paths against the file ---- */

static void test_read_file(void **state)
{
  char *dir = tmpdir_make("keytab"), *path, *text, *base, *errors;
  struct meta m;
  size_t len;
  FILE *f;
  (void)state;
  assert_non_null(dir);
  path = ccci_xasprintf("%s/meta.yml", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("script: run.sh\n", f);
  assert_int_equal(fclose(f), 0);

  assert_int_equal(
      ccci_keytab_read_file(path, MAX_BYTES, &text, &len, &base, &errors), 0);
  assert_string_equal(base, dir);
  meta_init(&m);
  assert_int_equal(ccci_keytab_parse(&meta_table, path, base, text, len,
                                     MAX_BYTES, &m, &errors),
                   0);
  free(text);
  text = ccci_xasprintf("%s/run.sh", dir);
  assert_string_equal(m.script, text);
  ccci_keytab_free(&meta_table, &m);
  free(text);
  free(base);
  free(path);

  path = ccci_xasprintf("%s/missing.yml", dir);
  assert_int_equal(
      ccci_keytab_read_file(path, MAX_BYTES, &text, &len, &base, &errors),
      -EINVAL);
  text = ccci_xasprintf("%s: cannot read: No such file or directory\n", path);
  assert_string_equal(errors, text);
  free(text);
  free(errors);
  free(path);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(dir);
}

/* ---- values: copy, compare, JSON ---- */

static void test_copy_equal_json(void **state)
{
  struct meta a, b;
  char *errors = NULL, *js;
  json_t *obj;
  size_t i;
  (void)state;
  assert_int_equal(parse("name: app\ntags: [x]\nflaky: true\n"
                         "source: {timeout: 90s}\nenv: {A: b}\n",
                         &a, &errors),
                   0);
  memset(&b, 0, sizeof(b));
  ccci_keytab_copy(&meta_table, &b, &a);
  for (i = 0; i < meta_table.n; i++)
    assert_true(ccci_keytab_equal(ccci_keytab_at(&meta_table, i), &a, &b));
  /* The copy is deep: changing it leaves the original alone. */
  b.tags.v[0][0] = 'y';
  b.flaky = false;
  assert_false(ccci_keytab_equal(ccci_keytab_at(&meta_table, 2), &a, &b));
  assert_false(ccci_keytab_equal(ccci_keytab_at(&meta_table, 3), &a, &b));
  assert_string_equal(a.tags.v[0], "x");

  obj = json_object();
  ccci_keytab_to_json(&meta_table, &a, obj);
  js = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      js, "{\"env\":{\"A\":\"b\"},\"flaky\":true,"
          "\"health\":{\"check\":{\"path\":\"/\",\"tries\":3}},"
          "\"name\":\"app\",\"port\":80,\"script\":null,"
          "\"source\":{\"branch\":\"main\",\"repo\":null,\"timeout\":\"90s\"},"
          "\"tags\":[\"x\"]}");
  free(js);
  json_decref(obj);
  ccci_keytab_free(&meta_table, &a);
  ccci_keytab_free(&meta_table, &b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_documents),
      cmocka_unit_test(test_bad_documents),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_error_count_is_capped),
      cmocka_unit_test(test_read_file),
      cmocka_unit_test(test_copy_equal_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
