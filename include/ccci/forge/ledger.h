/* The trigger ledger's decision (SPEC section 3, docs/forge.md): what becomes
 * of one comment read from the forge, by poll or by hook. Pure: the caller
 * looks the facts up (its seen set, the PR, the membership, the run dirs)
 * and carries the verdict out. */
#ifndef CCCI_FORGE_LEDGER_H
#define CCCI_FORGE_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

/**
 * What becomes of a comment. Every verdict but CCCI_LEDGER_NEED_PULL,
 * CCCI_LEDGER_NEED_AUTH and CCCI_LEDGER_RETRY is final: the comment id is
 * recorded in its repo's seen set (ccci_ledger_consumes; there is none for
 * CCCI_LEDGER_NOT_ENROLLED) and it never triggers again. A NEED_ verdict
 * asks for one more fact, and the caller decides again with it; RETRY
 * leaves the comment to be read again later.
 */
enum ccci_ledger_verdict {
  CCCI_LEDGER_ALREADY_SEEN,     /**< its id is in the seen set */
  CCCI_LEDGER_NOT_ENROLLED,     /**< its repo is not in forge.repos */
  CCCI_LEDGER_BASELINE,         /**< read by the repo's first poll */
  CCCI_LEDGER_NOT_A_TRIGGER,    /**< no `!testme` line (or no body) */
  CCCI_LEDGER_OWN_COMMENT,      /**< the bot's own (or the bot unknown) */
  CCCI_LEDGER_NOT_A_PR,         /**< on an issue, or the PR is not found */
  CCCI_LEDGER_BEFORE_ENROLMENT, /**< created before the enrolment time */
  CCCI_LEDGER_PAST_HORIZON,     /**< older than the seen ids are kept */
  CCCI_LEDGER_NEED_PULL,        /**< read the PR (open? head SHA) */
  CCCI_LEDGER_PR_CLOSED,        /**< the PR is not open */
  CCCI_LEDGER_NEED_AUTH,        /**< ask the owner org about the commenter */
  CCCI_LEDGER_RETRY,            /**< cannot tell now: read it again later */
  CCCI_LEDGER_NOT_AUTHORISED,   /**< no run; one reply, recorded first */
  CCCI_LEDGER_ALREADY_TOLD,     /**< no run; the reply was sent before */
  CCCI_LEDGER_DUPLICATE,        /**< its run exists: accepted before */
  CCCI_LEDGER_ACCEPT,           /**< accept a run */
  CCCI_LEDGER_SUPERSEDE, /**< accept a run that replaces the PR's pending */
};

/** What is known of the comment's repo. */
enum ccci_ledger_repo {
  CCCI_LEDGER_REPO_UNKNOWN,  /**< not enrolled */
  CCCI_LEDGER_REPO_BASELINE, /**< its first poll is under way */
  CCCI_LEDGER_REPO_ENROLLED, /**< enrolled_at and watermark hold */
};

/** What the PR answer said (`GET /repos/{o}/{r}/pulls/{n}`). */
enum ccci_ledger_pull {
  CCCI_LEDGER_PULL_UNKNOWN, /**< not asked yet */
  CCCI_LEDGER_PULL_FAILED,  /**< an error, a 5xx, a bad answer */
  CCCI_LEDGER_PULL_MISSING, /**< 404: not a PR after all */
  CCCI_LEDGER_PULL_CLOSED,  /**< closed or merged */
  CCCI_LEDGER_PULL_OPEN,
};

/** Whether the commenter may trigger runs. */
enum ccci_ledger_auth {
  CCCI_LEDGER_AUTH_UNKNOWN,     /**< neither allowlisted nor cached */
  CCCI_LEDGER_AUTH_CANNOT_TELL, /**< the membership check failed (303...) */
  CCCI_LEDGER_AUTH_NO,          /**< not a member (404), not allowlisted */
  CCCI_LEDGER_AUTH_YES,         /**< a member (204) or allowlisted */
};

/** What became of the run the comment's id names. */
enum ccci_ledger_run {
  CCCI_LEDGER_RUN_NONE,   /**< no such run (yet) */
  CCCI_LEDGER_RUN_EXISTS, /**< its run dir exists */
  CCCI_LEDGER_RUN_FAILED, /**< its acceptance could not be written */
};

/** The facts of one comment. */
struct ccci_ledger_case {
  /* The comment. */
  int64_t created_at; /**< forge time, epoch seconds */
  bool on_pr;         /**< pull_request_url set and an issue number */
  bool trigger;       /**< a `!testme` line (trigger.h) */
  bool own;           /**< by the bot, or the bot's login not known yet */
  /* What the repo's durable ledger holds. */
  enum ccci_ledger_repo repo;
  bool seen;           /**< its id is in the repo's seen set */
  int64_t enrolled_at; /**< the repo's enrolment time */
  int64_t watermark;   /**< the repo's watermark */
  int64_t keep_s;      /**< seen ids are kept this far behind it */
  bool replied;        /**< the (commenter, PR) reply is recorded */
  bool pr_pending;     /**< the PR has a queued run */
  enum ccci_ledger_run run;
  /* Facts learned on the way. */
  enum ccci_ledger_pull pull;
  enum ccci_ledger_auth auth;
};

/** Decide (the table of docs/forge.md, "From comment to run"). */
enum ccci_ledger_verdict ccci_ledger_decide(const struct ccci_ledger_case *c);

/** Whether @p v records the comment id as seen (a final verdict). */
bool ccci_ledger_consumes(enum ccci_ledger_verdict v);

/** Whether @p v starts a run. */
bool ccci_ledger_runs(enum ccci_ledger_verdict v);

/** The verdict's name for logs and tests ("duplicate", ...). */
const char *ccci_ledger_verdict_name(enum ccci_ledger_verdict v);

#endif
