/* Unit tests of forgebot.c's acceptance path, ccci_forgebot_accept_trigger,
 * called directly against the fake forge (tests/integration/fakeforge.py,
 * org `org` with the bot and alice, mallory outside it, repo `org/r0`): a
 * member's `!testme` is accepted once, the same comment again is already
 * seen, or a duplicate once the bot restarted, and never a second run; a
 * non-member is refused with one reply; a head whose recipe_meta.yml cannot
 * be read is retried, as a PR that cannot be read. The repo is enrolled through
 * its state file and its comment listing hangs, so no poll takes part; runs are
 * drained, so nothing starts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "ccci/core/config.h"
#include "ccci/core/util.h"
#include "ccci/forge/forgeapi.h"
#include "ccci/forge/forgebot.h"
#include "ccci/forge/httpc.h"
#include "ccci/runs/runs.h"
#include "loopwait.h"
#include "tmpdir.h"

#define REPO "org/r0"

struct fx {
  char *dir, *url, *state_dir;
  pid_t fake;
  uv_loop_t loop;
  struct ccci_config *cfg;
  struct ccci_runs *runs;
  struct ccci_forgebot *bot;
  bool bot_done, runs_done;
};

/* One answer of the acceptance path. */
struct answer {
  bool got;
  enum ccci_ledger_verdict verdict;
  char run_id[CCCI_RUN_ID_MAX + 1];
};

static struct ccci_config *config_of(void *arg)
{
  struct fx *f = arg;
  return ccci_config_ref(f->cfg);
}

/* Start the fake forge and read its {"url": ...} line. */
static pid_t start_fake(const char *token_file, char **url)
{
  int fds[2];
  pid_t pid;
  char line[512];
  FILE *in;
  json_t *j;

  if (pipe(fds) < 0)
    return -1;
  pid = fork();
  if (pid == 0) {
    /* A test that fails half-way leaves no forge behind. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(CCCI_PYTHON, CCCI_PYTHON, CCCI_FAKEFORGE, "--repos", "1", "--org",
          "org", "--bot", "ccci-bot", "--member", "alice", "--user", "mallory",
          "--token-file", token_file, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  in = fdopen(fds[0], "r");
  if (in == NULL || fgets(line, sizeof(line), in) == NULL) {
    if (in != NULL)
      fclose(in);
    return -1;
  }
  fclose(in);
  j = json_loads(line, 0, NULL);
  *url = ccci_xstrdup(json_string_value(json_object_get(j, "url")));
  json_decref(j);
  return pid;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
  return ccci_buf_append(arg, p, size * n) == 0 ? size * n : 0;
}

/* POST @p body to a control endpoint of the fake; its JSON answer. */
static json_t *fake_post(struct fx *f, const char *path, json_t *body)
{
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: "
                                                 "application/json");
  char *url = ccci_xasprintf("%s%s", f->url, path);
  char *text = json_dumps(body, JSON_COMPACT);
  struct ccci_buf out;
  json_t *j;

  ccci_buf_init(&out, 1 << 20);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  j = json_loadb(out.data != NULL ? out.data : "", out.len, 0, NULL);
  ccci_buf_close(&out);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(url);
  free(text);
  json_decref(body);
  return j;
}

/* The bot's comments on PR @p pr that the fake forge holds now. */
static size_t bot_comments(struct fx *f, int64_t pr)
{
  CURL *c = curl_easy_init();
  char *url = ccci_xasprintf("%s/_fake/comments?repo=" REPO "&number=%lld",
                             f->url, (long long)pr);
  struct ccci_buf out;
  json_t *j, *e;
  size_t i, n = 0;

  ccci_buf_init(&out, 1 << 20);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  j = json_loadb(out.data != NULL ? out.data : "", out.len, 0, NULL);
  json_array_foreach(j, i, e)
  {
    const char *login =
        json_string_value(json_object_get(json_object_get(e, "user"), "login"));
    n += login != NULL && strcmp(login, "ccci-bot") == 0;
  }
  json_decref(j);
  ccci_buf_close(&out);
  curl_easy_cleanup(c);
  free(url);
  return n;
}

/* A comment on PR @p pr, as the forge lists it. */
static void comment(struct fx *f, int64_t pr, const char *user,
                    const char *body, struct ccci_forge_comment *out)
{
  json_t *j = fake_post(f, "/_fake/comment",
                        json_pack("{s:s,s:I,s:s,s:s}", "repo", REPO, "number",
                                  (json_int_t)pr, "user", user, "body", body));
  char *text = json_dumps(j, JSON_COMPACT);
  assert_int_equal(ccci_forge_parse_comment(text, strlen(text), out, NULL), 0);
  free(text);
  json_decref(j);
}

static void run_until(struct fx *f, const bool *flag)
{
  LOOP_UNTIL(&f->loop, *flag, 30);
  assert_true(*flag);
}

static bool bot_known(struct fx *f)
{
  json_t *s = ccci_forgebot_status(f->bot);
  bool yes = json_is_string(json_object_get(s, "bot"));
  json_decref(s);
  return yes;
}

/* A bot on the fixture's state dir, its self-check under way. */
static void bot_new(struct fx *f)
{
  struct ccci_forgebot_env fe;
  char *err = NULL;

  memset(&fe, 0, sizeof(fe));
  fe.loop = &f->loop;
  fe.state_dir = f->state_dir;
  fe.runs = f->runs;
  fe.config = config_of;
  fe.arg = f;
  if (ccci_forgebot_new(&fe, &f->bot, &err) < 0)
    fail_msg("%s", err);
}

/* A bot on the fixture's state dir, once it knows its login (its own
 * comments never trigger). */
static void bot_start(struct fx *f)
{
  bot_new(f);
  LOOP_UNTIL(&f->loop, bot_known(f), 30);
  assert_true(bot_known(f));
}

static void on_bot_done(void *arg)
{
  ((struct fx *)arg)->bot_done = true;
}

static void bot_stop(struct fx *f)
{
  f->bot_done = false;
  ccci_forgebot_free(f->bot, on_bot_done, f);
  run_until(f, &f->bot_done);
  f->bot = NULL;
}

static int setup(void **state)
{
  struct fx *f = ccci_xcalloc(1, sizeof(*f));
  struct ccci_runs_env re;
  char *token, *text, *err = NULL, *path;
  int64_t now = (int64_t)time(NULL) - 100;
  json_t *fault;

  f->dir = tmpdir_make("forgebot");
  assert_non_null(f->dir);
  token = ccci_xasprintf("%s/token", f->dir);
  f->fake = start_fake(token, &f->url);
  assert_true(f->fake > 0);
  /* Enrolled a while ago; no poll will read a comment. */
  path = ccci_xasprintf("%s/state/forge/org", f->dir);
  assert_int_equal(ccci_mkdir_p(path, 0750), 0);
  free(path);
  path = ccci_xasprintf("%s/state/forge/" REPO ".json", f->dir);
  text = ccci_xasprintf("{\"version\":1,\"repo\":\"" REPO "\",\"enrolled\":"
                        "true,\"watermark\":%lld,\"enrolled_at\":%lld,"
                        "\"seen\":[],\"replied\":[],\"results_comments\":{}}",
                        (long long)now, (long long)now);
  assert_int_equal(ccci_write_file_atomic(path, text, strlen(text), 0640), 0);
  free(text);
  free(path);
  fault = fake_post(f, "/_fake/fault",
                    json_pack("{s:s,s:s,s:n}", "path", "/issues/comments$",
                              "kind", "hang", "count"));
  json_decref(fault);
  text = ccci_xasprintf(
      "min_free_bytes: 0\ncapacity: 1\n"
      "harness:\n  command: [/bin/true]\n  teardown_command: [/bin/true]\n"
      "forge:\n  url: '%s'\n  token_file: %s\n  repos: [" REPO "]\n"
      "  poll_interval: 1d\n",
      f->url, token);
  if (ccci_config_parse("test", f->dir, text, strlen(text), &f->cfg, &err) < 0)
    fail_msg("%s", err);
  free(text);
  free(token);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  path = ccci_xasprintf("%s/state", f->dir);
  memset(&re, 0, sizeof(re));
  re.loop = &f->loop;
  re.state_dir = path;
  re.instance = "test-forgebot";
  re.self_exe = "/bin/false";
  re.config = config_of;
  re.arg = f;
  if (ccci_runs_open(&re, &f->runs, &err) < 0)
    fail_msg("%s", err);
  ccci_runs_drain(f->runs);
  f->state_dir = path;
  bot_start(f);
  *state = f;
  return 0;
}

static void on_runs_done(void *arg)
{
  ((struct fx *)arg)->runs_done = true;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  int st;
  bot_stop(f);
  ccci_runs_stop(f->runs, 0, on_runs_done, f);
  run_until(f, &f->runs_done);
  ccci_runs_close(f->runs);
  while (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
    ;
  assert_int_equal(uv_loop_close(&f->loop), 0);
  ccci_config_unref(f->cfg);
  kill(f->fake, SIGTERM);
  waitpid(f->fake, &st, 0);
  tmpdir_remove(f->dir);
  free(f->dir);
  free(f->state_dir);
  free(f->url);
  free(f);
  return 0;
}

static void on_answer(void *arg, const struct ccci_forgebot_verdict *v)
{
  struct answer *a = arg;
  a->got = true;
  a->verdict = v->verdict;
  if (v->run_id != NULL)
    snprintf(a->run_id, sizeof(a->run_id), "%s", v->run_id);
}

static int64_t open_pr(struct fx *f)
{
  json_t *j = fake_post(f, "/_fake/open_pr",
                        json_pack("{s:s,s:s}", "repo", REPO, "user", "alice"));
  int64_t n = json_integer_value(json_object_get(j, "number"));
  json_decref(j);
  assert_true(n > 0);
  return n;
}

static void count_run(void *arg, const struct ccci_run_meta *m, const char *dir)
{
  (void)m;
  (void)dir;
  (*(int *)arg)++;
}

static int runs_count(struct fx *f)
{
  int n = 0;
  ccci_runs_foreach(f->runs, count_run, &n);
  return n;
}

/* Accepted once; the same comment again is already seen; read again by a
 * bot that restarted before the seen id reached the state file (as after
 * kill -9), it finds its run dir: a duplicate, never a second run. */
static void test_member_accepted_once(void **state)
{
  struct fx *f = *state;
  struct ccci_forge_comment c;
  struct answer a1, a2, a3;
  struct ccci_runs_view v;

  comment(f, open_pr(f), "alice", "!testme", &c);
  memset(&a1, 0, sizeof(a1));
  memset(&a2, 0, sizeof(a2));
  memset(&a3, 0, sizeof(a3));
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a1),
      CCCI_LEDGER_NEED_PULL);
  run_until(f, &a1.got);
  assert_int_equal(a1.verdict, CCCI_LEDGER_ACCEPT);
  assert_int_equal(ccci_runs_view(f->runs, a1.run_id, &v), 0);
  assert_int_equal(v.state, CCCI_RUN_QUEUED);
  assert_int_equal(runs_count(f), 1);
  /* The id is seen now: settled at once, no run. */
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a2),
      CCCI_LEDGER_ALREADY_SEEN);
  assert_false(a2.got);
  bot_stop(f);
  bot_start(f);
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a3),
      CCCI_LEDGER_NEED_PULL);
  run_until(f, &a3.got);
  assert_int_equal(a3.verdict, CCCI_LEDGER_DUPLICATE);
  assert_string_equal(a3.run_id, a1.run_id);
  assert_int_equal(runs_count(f), 1);
  ccci_forge_comment_close(&c);
}

/* Read by poll and by hook at once: both ask the forge, one run; the
 * other finds the run dir, or the id seen when the first was done first. */
static void test_read_twice_at_once_runs_once(void **state)
{
  struct fx *f = *state;
  struct ccci_forge_comment c;
  struct answer a1, a2;
  struct answer *won, *lost;

  comment(f, open_pr(f), "alice", "!testme", &c);
  memset(&a1, 0, sizeof(a1));
  memset(&a2, 0, sizeof(a2));
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a1),
      CCCI_LEDGER_NEED_PULL);
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a2),
      CCCI_LEDGER_NEED_PULL);
  run_until(f, &a1.got);
  run_until(f, &a2.got);
  won = a1.verdict == CCCI_LEDGER_ACCEPT ? &a1 : &a2;
  lost = won == &a1 ? &a2 : &a1;
  assert_int_equal(won->verdict, CCCI_LEDGER_ACCEPT);
  if (lost->verdict == CCCI_LEDGER_DUPLICATE)
    assert_string_equal(lost->run_id, won->run_id);
  else
    assert_int_equal(lost->verdict, CCCI_LEDGER_ALREADY_SEEN);
  assert_int_equal(runs_count(f), 1);
  ccci_forge_comment_close(&c);
}

/* Requests the fake forge answered for @p template so far. */
static long long requests_of(struct fx *f, const char *template)
{
  CURL *c = curl_easy_init();
  char *url = ccci_xasprintf("%s/_fake/requests/count", f->url);
  struct ccci_buf out;
  json_t *j;
  long long n;

  ccci_buf_init(&out, 1 << 20);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  j = json_loadb(out.data != NULL ? out.data : "", out.len, 0, NULL);
  n = json_integer_value(
      json_object_get(json_object_get(j, "by_template"), template));
  json_decref(j);
  ccci_buf_close(&out);
  curl_easy_cleanup(c);
  free(url);
  return n;
}

#define RAW "GET /repos/{owner}/{repo}/raw/{filepath}"

/* The head's tests/recipe_meta.yml answers 500 (then 429): the comment is
 * to be read again (retry), nothing is recorded and no run is made; once
 * the file can be read (here: 404, the recipe has none) it is accepted,
 * one run. */
static void test_recipe_meta_failure_retried(void **state)
{
  struct fx *f = *state;
  struct ccci_forge_comment c;
  struct answer a;
  json_t *fault;
  int i, before = runs_count(f);

  comment(f, open_pr(f), "alice", "!testme", &c);
  fault = fake_post(f, "/_fake/fault",
                    json_pack("{s:s,s:s,s:i,s:i}", "path",
                              "/raw/tests/recipe_meta\\.yml$", "kind", "status",
                              "status", 500, "count", 1));
  json_decref(fault);
  fault = fake_post(f, "/_fake/fault",
                    json_pack("{s:s,s:s,s:i,s:i}", "path",
                              "/raw/tests/recipe_meta\\.yml$", "kind", "429",
                              "retry_after", 1, "count", 1));
  json_decref(fault);
  for (i = 0; i < 2; i++) {
    memset(&a, 0, sizeof(a));
    assert_int_equal(
        ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a),
        CCCI_LEDGER_NEED_PULL);
    run_until(f, &a.got);
    assert_int_equal(a.verdict, CCCI_LEDGER_RETRY);
    assert_string_equal(a.run_id, "");
    assert_int_equal(runs_count(f), before);
    assert_int_equal(requests_of(f, RAW), i + 1);
  }
  memset(&a, 0, sizeof(a));
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a),
      CCCI_LEDGER_NEED_PULL);
  run_until(f, &a.got);
  assert_int_equal(a.verdict, CCCI_LEDGER_ACCEPT);
  assert_int_equal(runs_count(f), before + 1);
  assert_int_equal(requests_of(f, RAW), 3);
  ccci_forge_comment_close(&c);
}

static void test_non_member_refused(void **state)
{
  struct fx *f = *state;
  struct ccci_forge_comment c1, c2;
  struct answer a1, a2;
  int64_t pr = open_pr(f);
  int before = runs_count(f);

  comment(f, pr, "mallory", "!testme", &c1);
  comment(f, pr, "mallory", "!testme --quick", &c2);
  memset(&a1, 0, sizeof(a1));
  memset(&a2, 0, sizeof(a2));
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c1, on_answer, &a1),
      CCCI_LEDGER_NEED_PULL);
  run_until(f, &a1.got);
  assert_int_equal(a1.verdict, CCCI_LEDGER_NOT_AUTHORISED);
  assert_string_equal(a1.run_id, "");
  /* Asked again on the same PR: no second reply. */
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c2, on_answer, &a2),
      CCCI_LEDGER_NEED_PULL);
  run_until(f, &a2.got);
  assert_int_equal(a2.verdict, CCCI_LEDGER_ALREADY_TOLD);
  assert_int_equal(runs_count(f), before);
  /* The one reply goes out through the outbox. */
  {
    time_t end = time(NULL) + 30;
    while (bot_comments(f, pr) == 0 && time(NULL) < end) {
      uv_run(&f->loop, UV_RUN_NOWAIT);
      usleep(10000);
    }
  }
  assert_int_equal(bot_comments(f, pr), 1);
  ccci_forge_comment_close(&c1);
  ccci_forge_comment_close(&c2);
}

/* Settled from the comment alone: no request, no callback. */
static void test_settled_at_once(void **state)
{
  struct fx *f = *state;
  struct ccci_forge_comment c;
  struct answer a;
  int64_t pr = open_pr(f);

  memset(&a, 0, sizeof(a));
  comment(f, pr, "alice", "please !testme", &c);
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a),
      CCCI_LEDGER_NOT_A_TRIGGER);
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, "org/elsewhere", &c, on_answer, &a),
      CCCI_LEDGER_NOT_ENROLLED);
  ccci_forge_comment_close(&c);
  comment(f, pr, "ccci-bot", "!testme", &c);
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a),
      CCCI_LEDGER_OWN_COMMENT);
  assert_false(a.got);
  ccci_forge_comment_close(&c);
}

/* Before the bot knows its own login it cannot tell its own comments
 * from others (a hook may come that early): the comment is read again
 * later, never recorded as the bot's own. */
static void test_before_the_self_check_retry(void **state)
{
  struct fx *f = *state;
  struct ccci_forge_comment c;
  struct answer a;
  int64_t pr = open_pr(f);
  json_t *fault;

  bot_stop(f);
  fault = fake_post(
      f, "/_fake/fault",
      json_pack("{s:s,s:s,s:n}", "path", "/user$", "kind", "hang", "count"));
  json_decref(fault);
  bot_new(f);
  memset(&a, 0, sizeof(a));
  comment(f, pr, "alice", "!testme", &c);
  assert_int_equal(
      ccci_forgebot_accept_trigger(f->bot, REPO, &c, on_answer, &a),
      CCCI_LEDGER_RETRY);
  assert_false(a.got);
  assert_false(bot_known(f));
  ccci_forge_comment_close(&c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_member_accepted_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_twice_at_once_runs_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_non_member_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recipe_meta_failure_retried, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_settled_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_before_the_self_check_retry, setup,
                                      teardown),
  };
  int rc;
  signal(SIGPIPE, SIG_IGN);
  /* Before any thread: the pool's and the client's. */
  if (ccci_httpc_global_init() != 0)
    return 1;
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  ccci_httpc_global_cleanup();
  return rc;
}
