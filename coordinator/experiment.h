/* experiment.h - online experiments in the coordinator (docs/engagement.md
 * "Online experiments"): a config file of experiments, each with arms and
 * traffic shares; a request's user (or session) id picks its arm by
 * consistent hashing, the same on every coordinator and after restarts; an
 * arm re-ranks with a stage-2 model, with none (the merge order: selection
 * or stage 1), or team-draft interleaves two such rankers.
 *
 * File format (one directive a line, '#' comments, blank lines ignored):
 *
 *   experiment NAME traffic=PCT salt=SALT [unit=any|user|session]
 *   arm NAME share=PCT model=FILE|none
 *   arm NAME share=PCT interleave=A,B          (A, B: FILE or none)
 *
 * An arm belongs to the experiment above it. Experiments take consecutive
 * ranges of the traffic (file order, their traffic= sums to at most 100); an
 * experiment's arms' shares sum to 100. Names are [A-Za-z0-9_.-]{1,64}.
 */
#ifndef FUNNEL_COORD_EXPERIMENT_H
#define FUNNEL_COORD_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "fn_error.h"
#include "funnel.pb-c.h"
#include "stage.h"
#include "stage2.h"

#define COORD_EXP_MAX_ARMS   8        /* over all experiments: each may load two models */
#define COORD_EXP_MAX_NAME   64
#define COORD_EXP_BUCKETS    10000u   /* traffic and shares resolve to 0.01% */
#define COORD_EXP_MAX_ID     128      /* = COORD_MAX_REQUEST_ID: user and session ids */

enum { COORD_EXP_UNIT_ANY, COORD_EXP_UNIT_USER, COORD_EXP_UNIT_SESSION };
/* COORD_TEAM_AB: both rankers' next pick (neutral: credited to neither) */
enum { COORD_TEAM_NONE = 0, COORD_TEAM_A = 1, COORD_TEAM_B = 2, COORD_TEAM_AB = 3 };

typedef struct coord_exp_arm {
    char name[COORD_EXP_MAX_NAME + 1];
    char model_path[2][4096];         /* "" = none (the merge order) */
    rank_ranker *model[2];            /* [0] the arm's ranker (A), [1] interleaving's B */
    int interleave;
    uint32_t lo, hi;                  /* its buckets [lo, hi) of the experiment's hash */
} coord_exp_arm;

typedef struct coord_experiment {
    char name[COORD_EXP_MAX_NAME + 1];
    char salt[COORD_EXP_MAX_NAME + 1];
    int unit;
    uint32_t lo, hi;                  /* its buckets [lo, hi) of the traffic hash */
    size_t arm0, narms;               /* arms[arm0, arm0 + narms) */
} coord_experiment;

typedef struct coord_exps {
    coord_experiment exp[COORD_EXP_MAX_ARMS];
    size_t nexp;
    coord_exp_arm arms[COORD_EXP_MAX_ARMS];
    size_t narms;
} coord_exps;

/* A request's assignment (arm NULL: in no experiment). */
typedef struct coord_exp_pick {
    const coord_experiment *exp;
    const coord_exp_arm *arm;
    uint64_t seed;                    /* interleaving's coin flips */
} coord_exp_pick;

/** Parse the config text (no models loaded). FN_EPARSE "FILE:LINE: reason". */
int coord_exps_parse(const char *text, const char *file, coord_exps *out, fn_errbuf *eb);

/** Read and parse path, then load every arm's models, bound to the feature
 *  columns names[0, ncols) (as the stage-2 model). 0, -errno, FN_EPARSE or
 *  the model's error ("experiments FILE: arm NAME: ..."). */
int coord_exps_load(const char *path, const char *const *names, size_t ncols, coord_exps **out, fn_errbuf *eb);
void coord_exps_free(coord_exps *x);

/** The unit id a request is assigned by (NULL: none for this experiment). */
const char *coord_exp_unit_id(const coord_experiment *e, const char *user, const char *session);

/** Bucket 0..COORD_EXP_BUCKETS-1 of id under salt (xxh64): the whole of
 *  consistent assignment. salt NULL = the traffic split between experiments. */
uint32_t coord_exp_bucket(const char *salt, const char *id);

/** Assign a request by its user and session ids (either may be NULL or "")
 *  and query text (the interleaving's coins depend on it too, so that one
 *  user sees one page per query). Fills pick; pick->arm NULL = no experiment. */
void coord_exp_assign(const coord_exps *x, const char *user, const char *session, const char *query,
                      coord_exp_pick *pick);

/** Team-draft interleaving (Radlinski, Kurup, Joachims, CIKM 2008) of the
 *  rankings a[0, na) and b[0, nb) (item numbers, each once per list) into
 *  out (room for na + nb) with team[i] = COORD_TEAM_A, _B or _AB per output
 *  item; coins from seed. While both lists have an item not yet taken: when
 *  both lists' best item not yet taken is the same, it is added as _AB, no
 *  coin and no pick counted (both rankers agree there, so a click on it says
 *  nothing about which is better; crediting it by a coin only adds noise);
 *  otherwise the team with fewer picks (a coin flip on equal counts) adds its
 *  best item not yet taken. Then the longer list's rest follows, credited to
 *  it. Returns the number of items written (the union). max_item: items are
 *  < max_item (a seen-bitmap of that size is allocated in a). -ENOMEM. */
long coord_team_draft(fn_arena *a, const uint32_t *ra, size_t na, const uint32_t *rb, size_t nb,
                      uint32_t max_item, uint64_t seed, uint32_t *out, uint8_t *team);

/** Stage 2 of a request in an arm: the arm's model (or none), or for an
 *  interleaving arm both rankers' orders team-drafted into out (score: the
 *  contributing ranker's, A's for an _AB item; rows: A's, else B's). *team (per final position,
 *  NULL when the arm does not interleave) is allocated in a. Arguments as
 *  coord_stage2's. */
int coord_exp_stage2(fn_arena *a, const coord_exp_pick *pick, const Funnel__V1__ShardHit *const *hits,
                     size_t got, size_t window, const double *prf, Funnel__V1__IntentScore *const *intent,
                     size_t nintent, int want_rows, coord_stage2_out *out, uint8_t **team);

/** "A", "B", "AB" or "" (a Hit's team, the impression log's "team"). */
const char *coord_team_name(int team);

#endif
