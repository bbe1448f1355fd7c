/* Unit tests of abratext.c: template expansion, the release tag choice, the
 * secret table of `abra app secret generate`, service readiness and the
 * version labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "ccci/harness/abratext.h"

static void strlist_free(struct ccci_strlist *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
}

static void test_expand(void **state)
{
  char *t[] = {"abra",     "app",      "new",       "{recipe}",
               "--domain", "{domain}", "x{stack}y", "{{.Name}} {{.Replicas}}",
               "{nope}",   "{args}",   "--",        NULL};
  char *a[] = {"sh", "-c", "echo {domain}", NULL};
  struct ccci_strlist tl = {t, 11}, al = {a, 3};
  struct ccci_abratext_vars v = {"d.example", "default", "pages",
                                 "d_example", NULL,      NULL,
                                 NULL,        NULL,      &al};
  char **argv = NULL;
  (void)state;
  assert_int_equal(ccci_abratext_expand(&tl, &v, &argv), 0);
  assert_string_equal(argv[3], "pages");
  assert_string_equal(argv[5], "d.example");
  assert_string_equal(argv[6], "xd_exampley");
  /* docker's Go templates and unknown placeholders stay literal. */
  assert_string_equal(argv[7], "{{.Name}} {{.Replicas}}");
  assert_string_equal(argv[8], "{nope}");
  /* {args} becomes its elements, which are not expanded again. */
  assert_string_equal(argv[9], "sh");
  assert_string_equal(argv[10], "-c");
  assert_string_equal(argv[11], "echo {domain}");
  assert_string_equal(argv[12], "--");
  assert_null(argv[13]);
  ccci_abratext_argv_free(argv);

  /* No args: {args} vanishes. */
  v.args = NULL;
  assert_int_equal(ccci_abratext_expand(&tl, &v, &argv), 0);
  assert_string_equal(argv[9], "--");
  assert_null(argv[10]);
  ccci_abratext_argv_free(argv);

  tl.n = 0;
  assert_int_equal(ccci_abratext_expand(&tl, &v, &argv), -EINVAL);
  assert_null(argv);
}

static void test_stack(void **state)
{
  char *s;
  (void)state;
  s = ccci_abratext_stack("pages-pr3.ci.example.org");
  assert_string_equal(s, "pages-pr3_ci_example_org");
  free(s);
  s = ccci_abratext_stack("a-very-long-recipe-name-pr12345.ci.example.org.x");
  assert_int_equal(strlen(s), CCCI_ABRATEXT_STACK_MAX);
  free(s);
}

static void test_release_tags(void **state)
{
  const char *tags[] = {"1.0.0+1.27.1", "0.9.0+1.27.0", "latest",
                        "1.10.0+1.2",   "1.9.9+9.9",    "v2",
                        "1.10.0+1.10",  "1.10.0"};
  (void)state;
  assert_true(ccci_abratext_is_release("1.7.1+1.27.2"));
  assert_true(ccci_abratext_is_release("v1.2.3"));
  assert_true(ccci_abratext_is_release("1.2.3"));
  assert_false(ccci_abratext_is_release("1.2"));
  assert_false(ccci_abratext_is_release("1.2.3+"));
  assert_false(ccci_abratext_is_release("1.2.3-rc1"));
  assert_false(ccci_abratext_is_release("latest"));
  /* Numeric, not text, order, in both parts. */
  assert_true(ccci_abratext_tag_cmp("1.10.0+1.0", "1.9.0+1.0") > 0);
  assert_true(ccci_abratext_tag_cmp("1.0.0+1.10", "1.0.0+1.9") > 0);
  assert_true(ccci_abratext_tag_cmp("1.0.0", "1.0.0+1.0") < 0);
  assert_int_equal(ccci_abratext_tag_cmp("1.0.0+1.0", "1.0.0+1.0"), 0);
  assert_string_equal(
      ccci_abratext_newest_release(tags, sizeof(tags) / sizeof(tags[0])),
      "1.10.0+1.10");
  assert_null(ccci_abratext_newest_release(tags + 2, 1));
}

static void test_secret_values(void **state)
{
  static const char plain[] = "NAME         VERSION  VALUE\n"
                              "admin_token  v1       s3cr3tvalue-one\n"
                              "db_password  v2       another-s3cr3t\n";
  static const char boxed[] =
      "\xe2\x94\x8c\xe2\x94\x80\xe2\x94\x80\xe2\x94\x90\n"
      "\xe2\x94\x82 NAME \xe2\x94\x82 VALUE \xe2\x94\x82\n"
      "\xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80\xe2\x94\xa4\n"
      "\xe2\x94\x82 admin_token \xe2\x94\x82 b0xedvalue \xe2\x94\x82\n"
      "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80\xe2\x94\x98\n";
  struct ccci_strlist v = {NULL, 0};
  (void)state;
  assert_int_equal(ccci_abratext_secret_values(plain, strlen(plain), &v), 2);
  assert_string_equal(v.v[0], "s3cr3tvalue-one");
  assert_string_equal(v.v[1], "another-s3cr3t");
  strlist_free(&v);
  memset(&v, 0, sizeof(v));
  assert_int_equal(ccci_abratext_secret_values(boxed, strlen(boxed), &v), 1);
  assert_string_equal(v.v[0], "b0xedvalue");
  strlist_free(&v);
  memset(&v, 0, sizeof(v));
  assert_int_equal(ccci_abratext_secret_values("INFO nothing\n", 13, &v), 0);
  assert_int_equal(v.n, 0);
  /* NUL bytes in a value: each NUL-free piece is a value (found by the
   * fuzzer: an empty value came out). */
  {
    static const char nul[] = "NAME VALUE\napp \0ab\0\0cd\0\n";
    assert_int_equal(ccci_abratext_secret_values(nul, sizeof(nul) - 1, &v), 2);
    assert_string_equal(v.v[0], "ab");
    assert_string_equal(v.v[1], "cd");
    strlist_free(&v);
  }
}

static void test_services_ready(void **state)
{
  char *t[] = {"app", NULL};
  struct ccci_strlist want = {t, 1}, none = {NULL, 0};
  char *why = NULL;
  (void)state;
  assert_int_equal(
      ccci_abratext_services_ready("s_app 1/1\ns_db 2/2\n", "s", &none, &why),
      1);
  assert_null(why);
  assert_int_equal(
      ccci_abratext_services_ready("s_app 1/1\ns_db 0/1\n", "s", &none, &why),
      0);
  assert_non_null(strstr(why, "s_db is 0/1"));
  free(why);
  /* A filter: only the services named count, all must be there. */
  assert_int_equal(
      ccci_abratext_services_ready("s_app 1/1\ns_db 0/1\n", "s", &want, &why),
      1);
  assert_int_equal(ccci_abratext_services_ready("s_db 1/1\n", "s", &want, &why),
                   0);
  assert_non_null(strstr(why, "s_app is not running"));
  free(why);
  /* Another stack's services do not count. */
  assert_int_equal(
      ccci_abratext_services_ready("other_app 1/1\n", "s", &none, &why), 0);
  free(why);
  assert_int_equal(ccci_abratext_services_ready("", "s", &none, &why), 0);
  free(why);
}

static void test_labels(void **state)
{
  static const char ok[] = "{\"coop-cloud.s.version\":\"4e895657\","
                           "\"coop-cloud.s.chaos-version\":\"4e895657\"}";
  static const char dirty[] = "{\"coop-cloud.s.version\":\"1.0.0+1\","
                              "\"coop-cloud.s.chaos-version\":\"4e895657+U\"}";
  static const char other[] = "{\"coop-cloud.s.version\":\"1.0.0+1\","
                              "\"coop-cloud.s.chaos-version\":\"adc719d7\"}";
  static const char tagged[] = "{\"coop-cloud.s.version\":\"1.1.0+1\","
                               "\"coop-cloud.s.chaos-version\":\"4e895657\"}";
  const char *sha = "4e89565728e34593e96b390f9ab64eaa2ae0f4b8";
  char *why = NULL;
  (void)state;
  assert_int_equal(ccci_abratext_labels_check(ok, "s", sha, NULL, &why), 1);
  assert_null(why);
  assert_int_equal(ccci_abratext_labels_check(dirty, "s", sha, NULL, &why), 0);
  assert_non_null(strstr(why, "dirty"));
  free(why);
  assert_int_equal(ccci_abratext_labels_check(other, "s", sha, NULL, &why), 0);
  assert_non_null(strstr(why, "not the PR head"));
  free(why);
  assert_int_equal(
      ccci_abratext_labels_check(tagged, "s", sha, "1.1.0+1", &why), 1);
  assert_int_equal(
      ccci_abratext_labels_check(tagged, "s", sha, "1.2.0+1", &why), 0);
  free(why);
  assert_int_equal(ccci_abratext_labels_check("[", "s", sha, NULL, &why),
                   -EINVAL);
  free(why);
}

static void test_backup_label(void **state)
{
  (void)state;
  assert_true(ccci_abratext_has_backup_label(
      "      labels:\n        - \"backupbot.backup=true\"\n"));
  assert_true(
      ccci_abratext_has_backup_label("        backupbot.backup: \"true\"\n"));
  assert_false(ccci_abratext_has_backup_label(
      "        - \"backupbot.backup.path=/x\"\n"));
  assert_false(
      ccci_abratext_has_backup_label("        - backupbot.backup=false\n"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expand),
      cmocka_unit_test(test_stack),
      cmocka_unit_test(test_release_tags),
      cmocka_unit_test(test_secret_values),
      cmocka_unit_test(test_services_ready),
      cmocka_unit_test(test_labels),
      cmocka_unit_test(test_backup_label),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
