/* The level ladder and the tier table (SPEC section 8, docs/levels.md): the
 * one place that says which tiers exist, their run order, the rung each one
 * belongs to, the tier statuses and how a run's level follows from them.
 * Pure: no I/O. docs/levels.md is generated from these tables
 * (tests/levels_doc.c) and checked by ctest `docs_levels_current`. */
#ifndef CCCI_LEVELS_H
#define CCCI_LEVELS_H

#include <stdbool.h>

/**
 * The tiers, in run order: X(id, name, rung, what it proves). The rung is the
 * level the tier belongs to (0: no rung; the deploy must pass for any level).
 * Every tier of a rung and of every rung below must pass for that level.
 */
#define CCCI_TIERS(X)                                                          \
  X(DEPLOY, "deploy", 0,                                                       \
    "the cold dependencies and the base (the previous release, or the PR "     \
    "head for a quick run or a recipe with no release) deploy and become "     \
    "ready")                                                                   \
  X(UPGRADE, "upgrade", 2,                                                     \
    "the PR head redeploys in place over the base, becomes ready, the data "   \
    "written before is still there and the deployed version is the PR head")   \
  X(INSTALL, "install", 1,                                                     \
    "the PR head answers on HEALTH_PATH and its services run")                 \
  X(BACKUP, "backup", 3, "`abra app backup` makes a non-empty backup")         \
  X(RESTORE, "restore", 3,                                                     \
    "`abra app restore` brings back the data of the backup")                   \
  X(CUSTOM, "custom", 4, "the recipe's own tests pass against the live app")

/** A tier; the values are the run order. */
enum ccci_tier {
#define CCCI_TIER_ENUM(id, name, rung, doc) CCCI_TIER_##id,
  CCCI_TIERS(CCCI_TIER_ENUM)
#undef CCCI_TIER_ENUM
  /** The number of tiers. */
  CCCI_TIER_COUNT
};

/**
 * The levels: X(n, name). A level's name is the names of its rung's tiers
 * joined by " and " (L0: "none"; tests/unit/test_levels.c checks it).
 */
#define CCCI_LEVELS(X)                                                         \
  X(0, "none")                                                                 \
  X(1, "install")                                                              \
  X(2, "upgrade")                                                              \
  X(3, "backup and restore")                                                   \
  X(4, "custom")

/** The highest level. */
#define CCCI_LEVEL_MAX 4
/** The highest level of a quick run. */
#define CCCI_LEVEL_QUICK_MAX 1

/**
 * The statuses a tier has in results.json: X(id, name, what it means,
 * whether it counts as the run failing).
 */
#define CCCI_TIER_STATUSES(X)                                                  \
  X(PASS, "pass", "the tier ran and passed", false)                            \
  X(FAIL, "fail", "the tier ran and the recipe failed it", true)               \
  X(SKIP, "skip",                                                              \
    "the tier did not run (SKIP_TIERS, no backupbot label, no "                \
    "release to upgrade from, or an earlier tier failed); its "                \
    "`reason` says which",                                                     \
    false)                                                                     \
  X(ERROR, "error",                                                            \
    "the tier could not be run (abra or docker could not be executed, a "      \
    "harness fault)",                                                          \
    true)                                                                      \
  X(CANCELLED, "cancelled", "the run was stopped during the tier", true)       \
  X(TIMEOUT, "timeout", "the tier or the run ran out of time during it", true)

/** A tier's status; NONE: the tier is not in results.json. */
enum ccci_tier_status {
  CCCI_TS_NONE,
#define CCCI_TS_ENUM(id, name, doc, failed) CCCI_TS_##id,
  CCCI_TIER_STATUSES(CCCI_TS_ENUM)
#undef CCCI_TS_ENUM
  /** The number of values, NONE included. */
  CCCI_TS_COUNT
};

/** The name of @p t ("deploy", ...); NULL when out of range. */
const char *ccci_tier_name(enum ccci_tier t);
/** The tier named @p s (exact, lowercase), or -1. */
int ccci_tier_parse(const char *s);
/** The rung of @p t (0: none); -1 when out of range. */
int ccci_tier_rung(enum ccci_tier t);
/** What @p t proves, one sentence (the docs' words); NULL when out of range. */
const char *ccci_tier_doc(enum ccci_tier t);

/** The name of @p s ("pass", ...); NULL for NONE and out of range. */
const char *ccci_tier_status_name(enum ccci_tier_status s);
/** The status named @p s (exact, lowercase), or -1 (NONE is never named). */
int ccci_tier_status_parse(const char *s);
/** What @p s means (the docs' words); NULL for NONE and out of range. */
const char *ccci_tier_status_doc(enum ccci_tier_status s);
/** Whether @p s fails the run: fail, error, cancelled or timeout. */
bool ccci_tier_status_failed(enum ccci_tier_status s);

/**
 * The level of a run whose tiers ended with @p st (indexed by enum
 * ccci_tier; CCCI_TS_NONE for a tier not in results.json): 0 unless the
 * deploy passed; else the highest rung r such that every tier of every rung
 * 1..r passed. A tier skipped, failed or absent thus caps the level below
 * its rung. @p quick caps it at CCCI_LEVEL_QUICK_MAX.
 */
int ccci_level_compute(const enum ccci_tier_status st[CCCI_TIER_COUNT],
                       bool quick);

/**
 * The tier that keeps a run at its level (the first one, in rung order then
 * run order, of the rung above the level that did not pass), or -1 when the
 * level is CCCI_LEVEL_MAX (or the quick cap, for @p quick). For level 0
 * with a deploy that did not pass, the deploy.
 */
int ccci_level_blocker(const enum ccci_tier_status st[CCCI_TIER_COUNT],
                       bool quick);

/** The first tier in run order whose status fails the run, or -1. */
int ccci_level_first_failed(const enum ccci_tier_status st[CCCI_TIER_COUNT]);

/** The longest tier reason an explanation quotes, in bytes (a longer one
 * is cut at a character boundary and ends in "…"). */
#define CCCI_LEVEL_CLAUSE_MAX 100
/** Room for any explanation ccci_level_explain writes, terminator
 * included. */
#define CCCI_LEVEL_EXPLAIN_MAX 256

/**
 * The one line that says what keeps a run at @p level, into @p out: the
 * level, then the tier ccci_level_blocker names with its status and the
 * first line of its reason, shortened to CCCI_LEVEL_CLAUSE_MAX bytes
 * ("L2: backup skipped, no backupbot label", "L1: upgrade failed: marker
 * gone", "L0: deploy failed"); "L4: every tier passed"; for a quick run at
 * its cap "L1: quick run (install only)". When the tiers give another level
 * than @p level (the daemon takes the harness's level as written), the line
 * says so instead ("L3: the harness's level (the tiers give L1)"). Control
 * characters of a reason become spaces; a trailing full stop is dropped.
 * @p reasons[t] is tier t's reason or NULL (@p reasons may be NULL). Empty
 * when @p level is not 0..CCCI_LEVEL_MAX. Pure; the reason is copied as it
 * is: a caller that posts the line masks its secrets first.
 */
void ccci_level_explain(int level,
                        const enum ccci_tier_status st[CCCI_TIER_COUNT],
                        const char *const reasons[CCCI_TIER_COUNT], bool quick,
                        char out[CCCI_LEVEL_EXPLAIN_MAX]);

/**
 * The first line of @p reason as an explanation quotes it, into @p out:
 * control characters as spaces, blanks at either end and a trailing full
 * stop dropped, cut at CCCI_LEVEL_CLAUSE_MAX bytes on a character boundary
 * with "…" appended. Empty for NULL.
 */
void ccci_level_clause(const char *reason, char out[CCCI_LEVEL_CLAUSE_MAX + 8]);

/** The name of level @p level ("none", "install", ..., "custom"); NULL when
 * not 0..CCCI_LEVEL_MAX. */
const char *ccci_level_name(int level);

/** The text of level @p level: "L0" .. "L4"; NULL when out of range. */
const char *ccci_level_text(int level);

/** The level written @p s: "L0" .. "L4" exactly, else -1. */
int ccci_level_parse(const char *s);

#endif
