/* The forge's API without the I/O: Gitea/Forgejo response parsers and
 * RFC 3339 times (the trigger grammar is trigger.h). */
#ifndef CCCI_FORGEAPI_H
#define CCCI_FORGEAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccci/core/util.h"

/*
 * Parsing.
 *
 * Every parser takes a response body of @p len bytes that need not be
 * NUL-terminated, reads it with jansson (duplicate keys are refused), and
 * fills a typed struct whose strings are copies owned by the struct. Shapes
 * follow the Gitea 1.26 and Forgejo 12 OpenAPI definitions (User, Comment,
 * PullRequest, PRBranchInfo, CommitStatus, Reaction); unknown extra fields
 * are ignored.
 *
 * A parser returns 0, -EINVAL when the body is not JSON or a required field
 * is missing, null, mistyped, out of range or too long, or -EFBIG when @p len
 * exceeds CCCI_FORGE_RESPONSE_MAX. On failure the struct is zeroed, nothing
 * is left allocated, and when @p err is not NULL it receives an allocated
 * message naming the JSON path of the first bad field, e.g.
 * `comments[3].user.login: expected a string`, `head.sha: missing`, or
 * `invalid JSON at line 1 column 7: ...`. On success *err is NULL.
 * Optional fields are listed per struct; absent and null mean the same.
 */

/** Largest response body any parser accepts (the HTTP layer caps lower). */
#define CCCI_FORGE_RESPONSE_MAX (32u * 1024 * 1024)
/** Longest comment body, in bytes. */
#define CCCI_FORGE_BODY_MAX (64u * 1024)
/** Longest login, in bytes (Gitea allows 40). */
#define CCCI_FORGE_LOGIN_MAX 255u
/** Longest other string (URLs, refs, status contexts, reactions). */
#define CCCI_FORGE_STR_MAX 4096u
/** Most comments in one list response (Gitea pages hold 50 by default). */
#define CCCI_FORGE_COMMENTS_MAX 1000u

/** A user (`GET /user`). Both fields are required. */
struct ccci_forge_user {
  int64_t id;  /**< any integer: Gitea's ghost user is -1 */
  char *login; /**< non-empty, at most CCCI_FORGE_LOGIN_MAX bytes */
};

/**
 * Parse a User object (`GET /user`): `id` and `login` are required.
 * See "Parsing" above for the return value, @p err and failure.
 */
int ccci_forge_parse_user(const char *body, size_t len,
                          struct ccci_forge_user *out, char **err) CCCI_WUR;
/** Free the strings of @p u and zero it. */
void ccci_forge_user_close(struct ccci_forge_user *u);

/**
 * An issue or pull request comment.
 *
 * Required: `id` (positive), `user` (an object with `login` and `id`) and
 * `body` (may be empty). In a list, `created_at` and `updated_at` are
 * required too; ccci_forge_parse_comment leaves them 0 when absent.
 * Optional: `pull_request_url` and `issue_url` (absent, null and "" are all
 * stored as ""; Gitea sets exactly one of them).
 */
struct ccci_forge_comment {
  int64_t id;
  char *user_login; /**< non-empty, at most CCCI_FORGE_LOGIN_MAX bytes */
  int64_t user_id;
  /**
   * The Markdown text, at most CCCI_FORGE_BODY_MAX bytes. NULL only in a
   * list entry whose body was longer (see body_too_long).
   */
  char *body;
  /**
   * In a list, a body past CCCI_FORGE_BODY_MAX does not fail the whole page
   * (one huge comment would otherwise stall the repo's poller for good): the
   * entry is kept with body NULL and this flag set, and cannot trigger.
   */
  bool body_too_long;
  char *pull_request_url; /**< never NULL; "" when not on a pull request */
  char *issue_url;        /**< never NULL; "" when on a pull request */
  int64_t created_at;     /**< epoch seconds (fraction dropped); 0: absent */
  int64_t updated_at;     /**< epoch seconds (fraction dropped); 0: absent */
  /**
   * The issue or PR number: the trailing `/N` of issue_url, else of
   * pull_request_url; 0 when neither ends in one.
   */
  int64_t issue_number;
  bool on_pr; /**< pull_request_url is non-empty */
};

/** Comments in the order the forge sent them. */
struct ccci_forge_comment_list {
  struct ccci_forge_comment *items; /**< NULL when n is 0 */
  size_t n;
};

/**
 * Parse a JSON array of Comment (`GET /repos/{o}/{r}/issues/comments`),
 * at most CCCI_FORGE_COMMENTS_MAX entries. Error paths start with
 * `comments` (`comments: expected an array`, `comments[3].id: missing`).
 * Returns -ENOMEM when the entries cannot be allocated.
 */
int ccci_forge_parse_comments(const char *body, size_t len,
                              struct ccci_forge_comment_list *out,
                              char **err) CCCI_WUR;
/** Free every entry of @p l and zero it. */
void ccci_forge_comment_list_close(struct ccci_forge_comment_list *l);

/**
 * Parse one Comment, as answered to creating or editing one. Same fields as
 * a list entry, except that a body past CCCI_FORGE_BODY_MAX is an error
 * (`body: longer than 65536 bytes`) and the times are optional.
 */
int ccci_forge_parse_comment(const char *body, size_t len,
                             struct ccci_forge_comment *out,
                             char **err) CCCI_WUR;
/** Free the strings of @p c and zero it. */
void ccci_forge_comment_close(struct ccci_forge_comment *c);

/** Largest webhook body the hook parser accepts. */
#define CCCI_FORGE_HOOK_MAX (1024u * 1024)

/** An `issue_comment` webhook delivery (Gitea/Forgejo IssueCommentPayload). */
struct ccci_forge_hook {
  char *action; /**< "created", "edited", "deleted", ... (non-empty) */
  char *repo;   /**< repository.full_name, `owner/name` */
  /**
   * The comment, filled as by ccci_forge_parse_comment, with `created_at`
   * and `updated_at` required; issue_number falls back to `issue.number`,
   * and a comment whose `issue.pull_request` is an object is on a PR even
   * when its pull_request_url is empty (then it is the issue's URL).
   */
  struct ccci_forge_comment comment;
};

/**
 * Parse an `issue_comment` webhook body: `action` (string), `repository`
 * (object with `full_name`), `comment` (a Comment as above) and `issue`
 * (object with a positive `number`; `pull_request` optional). At most
 * CCCI_FORGE_HOOK_MAX bytes (-EFBIG past it). See "Parsing" above.
 */
int ccci_forge_parse_hook(const char *body, size_t len,
                          struct ccci_forge_hook *out, char **err) CCCI_WUR;
/** Free the strings of @p h and zero it. */
void ccci_forge_hook_close(struct ccci_forge_hook *h);

/** A pull request's state (the forge's "open" / "closed"). */
enum ccci_forge_pr_state {
  CCCI_FORGE_PR_OPEN,
  CCCI_FORGE_PR_CLOSED,
};

/**
 * A pull request (`GET /repos/{o}/{r}/pulls/{n}`). All fields are required:
 * `number` (positive), `state` ("open" or "closed"), `merged` (boolean),
 * `head.sha` (40 or 64 lowercase hex digits), `head.ref` (may be empty),
 * `user.login` and `html_url`.
 */
struct ccci_forge_pull {
  int64_t number;
  enum ccci_forge_pr_state state;
  bool merged;
  char head_sha[65]; /**< 40 (SHA-1) or 64 (SHA-256) hex digits */
  char *head_ref;
  char *user_login;
  char *html_url;
};

/** Parse a PullRequest object. See "Parsing" above. */
int ccci_forge_parse_pull(const char *body, size_t len,
                          struct ccci_forge_pull *out, char **err) CCCI_WUR;
/** Free the strings of @p p and zero it. */
void ccci_forge_pull_close(struct ccci_forge_pull *p);

/** A commit status state (Gitea's six; Forgejo sends the same names). */
enum ccci_forge_status_state {
  CCCI_FORGE_STATUS_PENDING,
  CCCI_FORGE_STATUS_SUCCESS,
  CCCI_FORGE_STATUS_ERROR,
  CCCI_FORGE_STATUS_FAILURE,
  CCCI_FORGE_STATUS_WARNING,
  CCCI_FORGE_STATUS_SKIPPED,
};

/** The API name of @p s ("pending", ...), as sent in CreateStatusOption. */
const char *ccci_forge_status_state_name(enum ccci_forge_status_state s);

/**
 * A created commit status (`POST /repos/{o}/{r}/statuses/{sha}`). Required:
 * `id` (positive), `status` (the response's name for the state; one of the
 * six names, else `status: unknown state 'x'`) and `context` (non-empty).
 */
struct ccci_forge_status {
  int64_t id;
  enum ccci_forge_status_state state;
  char *context;
};

/** Parse a CommitStatus object. See "Parsing" above. */
int ccci_forge_parse_status(const char *body, size_t len,
                            struct ccci_forge_status *out, char **err) CCCI_WUR;
/** Free the strings of @p s and zero it. */
void ccci_forge_status_close(struct ccci_forge_status *s);

/**
 * A reaction (`POST /repos/{o}/{r}/issues/comments/{id}/reactions` answers
 * one, 201 when created and 200 when it was already there). Required:
 * `content` (non-empty, e.g. "eyes") and `user.login`.
 */
struct ccci_forge_reaction {
  char *content;
  char *user_login;
};

/** Parse a Reaction object. See "Parsing" above. */
int ccci_forge_parse_reaction(const char *body, size_t len,
                              struct ccci_forge_reaction *out,
                              char **err) CCCI_WUR;
/** Free the strings of @p r and zero it. */
void ccci_forge_reaction_close(struct ccci_forge_reaction *r);

/*
 * Times.
 */

/**
 * Parse an RFC 3339 date-time (the OpenAPI `date-time` format) such as
 * `2026-11-24T03:57:48Z`, `2026-11-24T04:57:48.123456+01:00` or
 * `...-05:30` into epoch seconds. `T`/`t` separate date and time, the zone
 * is `Z`/`z` or `+hh:mm`/`-hh:mm`, and a fraction of any length is dropped
 * (rounding toward the past, so a watermark never skips a second). Fields
 * are range-checked (day against the month, leap years; second 60 is
 * accepted as a leap second). Returns 0 or -EINVAL; @p out is untouched on
 * error. @p s is NUL-terminated.
 */
int ccci_forge_parse_time(const char *s, int64_t *out) CCCI_WUR;

/**
 * Format @p t as RFC 3339 UTC, `2026-11-24T03:57:48Z`, for the `since`
 * query parameter (no `+`, so no URL escaping is needed). Times before
 * year 0000 or after 9999 are clamped to those years' ends.
 */
void ccci_forge_format_time(int64_t t, char out[32]);

#endif
