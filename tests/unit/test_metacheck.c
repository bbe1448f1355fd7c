/* Unit tests of harness/metacheck's pool warnings: SERVERS and
 * SERVER_LABELS against the servers: of a config (the rest of `ccci meta
 * check` is driven through the CLI by tests/integration/test_meta_check.py). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ccci/core/config.h"
#include "ccci/harness/metacheck.h"
#include "tmpdir.h"

static const char pool[] = "servers:\n"
                           "  - {name: a, labels: [heavy]}\n"
                           "  - {name: b, labels: [heavy, arm64]}\n"
                           "  - {name: c}\n";

static struct ccci_config *config(const char *text)
{
  struct ccci_config *cfg = NULL;
  char *errors = NULL;
  if (ccci_config_parse("pool.yml", "/", text, strlen(text), &cfg, &errors) < 0)
    fail_msg("%s", errors);
  return cfg;
}

/* Check a recipe whose tests/recipe_meta.yml is @p meta against @p cfg;
 * the warnings joined as `file:line:col: message` lines. */
static char *check(const char *meta, const struct ccci_config *cfg)
{
  char *dir = tmpdir_make("metacheck"), *tests, *file, *cause = NULL;
  struct ccci_metacheck c;
  struct ccci_buf b;
  FILE *f;
  size_t i;

  assert_non_null(dir);
  tests = ccci_xasprintf("%s/tests", dir);
  assert_int_equal(mkdir(tests, 0700), 0);
  file = ccci_xasprintf("%s/recipe_meta.yml", tests);
  f = fopen(file, "w");
  assert_non_null(f);
  assert_true(fputs(meta, f) >= 0);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(ccci_metacheck_run(dir, NULL, NULL, &c, &cause), 0);
  ccci_metacheck_pool(&c, cfg);
  ccci_buf_init(&b, 1024 * 1024);
  for (i = 0; i < c.nwarnings; i++)
    assert_int_equal(ccci_buf_printf(&b, "%s:%zu:%zu: %s\n", c.warnings[i].file,
                                     c.warnings[i].line, c.warnings[i].column,
                                     c.warnings[i].message),
                     0);
  ccci_metacheck_free(&c);
  assert_int_equal(tmpdir_remove(dir), 0);
  free(file);
  free(tests);
  free(dir);
  return b.data != NULL ? ccci_buf_detach(&b) : ccci_xstrdup("");
}

static void test_servers_not_in_the_pool(void **state)
{
  struct ccci_config *cfg = config(pool);
  char *w;
  (void)state;
  w = check("HEALTH_PATH: /\nSERVERS: [a, x, c]\n", cfg);
  assert_string_equal(w, "tests/recipe_meta.yml:2:1: SERVERS[1]: 'x' is not "
                         "a server of the pool (servers: of pool.yml)\n");
  free(w);
  w = check("SERVERS: [x]\n", cfg);
  assert_string_equal(w, "tests/recipe_meta.yml:1:1: SERVERS[0]: 'x' is not "
                         "a server of the pool (servers: of pool.yml)\n"
                         "tests/recipe_meta.yml:1:1: no server of the pool "
                         "(servers: of pool.yml) is in SERVERS: a run would "
                         "wait queued\n");
  free(w);
  ccci_config_unref(cfg);
}

static void test_labels_no_server_has(void **state)
{
  struct ccci_config *cfg = config(pool);
  char *w;
  (void)state;
  /* b has both labels: fine; nobody has gpu. */
  w = check("SERVER_LABELS: [heavy, arm64]\n", cfg);
  assert_string_equal(w, "");
  free(w);
  w = check("SERVER_LABELS: [gpu]\n", cfg);
  assert_string_equal(w, "tests/recipe_meta.yml:1:1: no server of the pool "
                         "(servers: of pool.yml) is labelled with every "
                         "SERVER_LABELS: a run would wait queued\n");
  free(w);
  /* a and c exist, but neither has arm64. */
  w = check("SERVERS: [a, c]\nSERVER_LABELS: [arm64]\n", cfg);
  assert_string_equal(w, "tests/recipe_meta.yml:2:1: no server of the pool "
                         "(servers: of pool.yml) is in SERVERS with every "
                         "SERVER_LABELS: a run would wait queued\n");
  free(w);
  ccci_config_unref(cfg);
}

/* Without servers: placement is ignored, so nothing is said. */
static void test_no_pool_no_warning(void **state)
{
  struct ccci_config *cfg = config("capacity: 2\n");
  char *w;
  (void)state;
  w = check("SERVERS: [x]\nSERVER_LABELS: [gpu]\n", cfg);
  assert_string_equal(w, "");
  free(w);
  ccci_config_unref(cfg);
  cfg = ccci_config_default();
  w = check("SERVERS: [x]\n", cfg);
  assert_string_equal(w, "");
  free(w);
  ccci_config_unref(cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_servers_not_in_the_pool),
      cmocka_unit_test(test_labels_no_server_has),
      cmocka_unit_test(test_no_pool_no_warning),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
