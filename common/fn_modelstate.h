/* fn_modelstate.h - a daemon's live models across restarts (--model-state DIR).
 *
 * A model pushed to a running daemon (Admin/PushModel REPLACE or ACTIVATE)
 * lives in memory; without this a restart (a crash, kill -9, a host reboot)
 * brought back the model of the command line, silently undoing a push that
 * had passed the quality gate. With a state directory every change of what is
 * live is written to DIR/STAGE.model (durably: the file and the directory are
 * fsync'd) BEFORE it takes effect, and at start that file, when there is one,
 * wins over the configured model (--stage1-model, --stage2-model,
 * --intent-model). Staged candidates are not kept: they are a gate's, and a
 * restart ends the gate (docs/rpc.md).
 *
 * File (text, fn_io.h's checksummed format):
 *   funnel-model-state 1\n
 *   name NAME\n             the push's name (newlines made spaces)
 *   bytes N\n               N = 0: no model (a push removed it)
 *   <the N model bytes, as pushed>\n
 *   checksum HEX16\n
 * A damaged or truncated file is an error, never a silent fall back to the
 * configured model. */
#ifndef FUNNEL_FN_MODELSTATE_H
#define FUNNEL_FN_MODELSTATE_H

#include <stddef.h>

#include "fn_error.h"

/* The largest model kept (and read back): gRPC's receive limit is below it. */
#define FN_MODELSTATE_MAX ((size_t)512 << 20)

typedef struct fn_modelstate {
    char path[4096];     /* DIR/STAGE.model */
    char name[256];      /* the push's name */
    const char *model;   /* the model bytes (inside buf), NUL-terminated; NULL when len is 0 */
    size_t len;          /* 0: the push removed the model */
    char *buf;           /* owned: fn_modelstate_free */
} fn_modelstate;

/* Write DIR/STAGE.model for a model now live (len 0: none). Creates DIR if
 * missing. 0, or -errno / FN_EINVAL with "DIR/STAGE.model: reason" in eb;
 * on failure the old file, if any, is intact. */
int fn_modelstate_save(const char *dir, const char *stage, const char *name, const void *model, size_t len,
                       fn_errbuf *eb);

/* Read DIR/STAGE.model into *st. 0: read and checked; 1: no such file (st
 * empty, nothing to free); FN_ECORRUPT / FN_EFORMAT / -errno with the path
 * and the reason in eb. */
int fn_modelstate_load(const char *dir, const char *stage, fn_modelstate *st, fn_errbuf *eb);

/* The daemon could not use st's model (rc, eb from its parser): eb becomes
 * "PATH: reason (the last pushed model; move the file away to start with the
 * configured one)", as the errors of fn_modelstate_load read. Returns rc. */
int fn_modelstate_blame(const fn_modelstate *st, int rc, fn_errbuf *eb);

void fn_modelstate_free(fn_modelstate *st);

/* A staged candidate's bytes as pushed (PushModel STAGE), kept so that its
 * ACTIVATE can save them: p malloc'd (NULL = none), name the push's. */
typedef struct fn_model_src {
    char *p;
    size_t len;
    char name[256];
} fn_model_src;

/* Copy len bytes at p (replacing what z held). 0 or -ENOMEM (z unchanged). */
int fn_model_src_set(fn_model_src *z, const void *p, size_t len, const char *name);
void fn_model_src_clear(fn_model_src *z);

#endif
