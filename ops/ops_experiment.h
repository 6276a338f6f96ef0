/* ops_experiment.h - `funnel experiment report` (ops_experiment.c): per-arm
 * CTR and successful sessions, and interleaving wins, from the impression
 * log and clicks (docs/engagement.md "Online experiments"). */
#ifndef FUNNEL_OPS_EXPERIMENT_H
#define FUNNEL_OPS_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

#define OPS_EXP_Z95 1.959963984540054   /* the normal quantile of a two-sided 95% interval */

/* One arm of one experiment (experiment "" and arm "": impressions in none). */
typedef struct ops_exp_arm {
    char *experiment, *arm;
    uint64_t impressions;
    uint64_t clicks;            /* distinct clicked hits (two clicks on one hit are one) */
    uint64_t clicked;           /* impressions with at least one click */
    uint64_t successful;        /* ... with a click of dwell >= min_dwell */
    int interleave;             /* some hit of the arm's impressions has a team */
    uint64_t wins_a, wins_b, ties;
    uint64_t neutral_clicks;    /* clicked hits of team "AB" (both rankers' next): credited to neither */
} ops_exp_arm;

typedef struct ops_exp_report {
    ops_exp_arm *arms;          /* by experiment, then arm (byte order) */
    size_t narms;
    uint64_t impressions, clicks;
} ops_exp_report;

/** Wilson score interval of k successes in n trials (n = 0: [0, 1]). */
void ops_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi);

/** Team-draft credit of one impression: +1 A wins (more clicked hits of
 *  team A than of B), -1 B wins, 0 a tie (equal, no click included).
 *  team[i]: 'A', 'B', 'N' (neutral, the log's "AB": both rankers' next
 *  pick) or 0 (no team); 'N' and 0 are not counted. clicked[i] 0/1. */
int ops_interleave_credit(const char *team, const uint8_t *clicked, size_t n);

/** "A better", "B better" or "no significant difference" at the interval
 *  of z: A's win rate over the non-tied impressions, its Wilson interval
 *  above or below 1/2. */
const char *ops_interleave_verdict(uint64_t wins_a, uint64_t wins_b, double z);

/** Read impression files then click files (formats: docs/engagement.md);
 *  a bad line is FN_EPARSE "FILE:LINE: reason". min_dwell: a successful
 *  session's click lasts at least this (a click without dwell never does,
 *  unless it is 0). */
int ops_experiment_report(const char *const *imps, size_t nimps, const char *const *clicks, size_t nclicks,
                          double min_dwell, ops_exp_report *out, fn_errbuf *eb);
void ops_exp_report_free(ops_exp_report *r);

#endif
