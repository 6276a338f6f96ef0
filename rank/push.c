/* push.c - rank_push_check_mode (stage.h): the PushModel mode checks shared
 * by the coordinator and the shard, in a file of its own so that a harness
 * of the coordinator's request checks (tests/fuzz/run_fuzz.sh searchreq) can
 * link it without the rankers. */
#include "stage.h"

int rank_push_check_mode(int mode, size_t model_len, fn_errbuf *eb)
{
    switch (mode) {
    case RANK_PUSH_REPLACE: return 0;
    case RANK_PUSH_STAGE:
        return model_len ? 0 : fn_seterr(eb, FN_EINVAL, "model: STAGE needs a model (there is no staged removal)");
    case RANK_PUSH_ACTIVATE:
    case RANK_PUSH_DISCARD:
        if (!model_len) return 0;
        return fn_seterr(eb, FN_EINVAL, "model: %s", mode == RANK_PUSH_ACTIVATE
                                                        ? "ACTIVATE takes no model (it makes the staged one live)"
                                                        : "DISCARD takes no model (it drops the staged one)");
    default:
        return fn_seterr(eb, FN_EINVAL, "mode: %d is not 0 (replace), 1 (stage), 2 (activate) or 3 (discard)", mode);
    }
}
