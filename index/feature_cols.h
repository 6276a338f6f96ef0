/* feature_cols.h - the registry's columns by name, for the code that
 * computes them (index/features.c, feature_registry.c); everyone else looks
 * features up by name (idx_feature_find). */
#ifndef FUNNEL_INDEX_FEATURE_COLS_H
#define FUNNEL_INDEX_FEATURE_COLS_H

enum {
    F_BM25F, F_SEL, F_BM25_T, F_BM25_B, F_BM25B_T, F_BM25B_B, F_LM_T, F_LM_B, F_DFR_T, F_DFR_B,
    F_TFIDF_T, F_TFIDF_B, F_TF_T, F_TF_B, F_COV_T, F_COV_B, F_COV_ANY, F_IDF_SUM, F_IDF_MAX,
    F_IDF_MIN, F_LEN_T, F_LEN_B, F_POP, F_AGE, F_URLD, F_QLEN, F_QFOUND,
    F_VEC_SIM,
    F_NCHEAP,
    F_PHRASE_T = F_NCHEAP, F_PHRASE_B, F_PROXWIN_B, F_PROXRATIO_B, F_BIGRAM_T, F_BIGRAM_B,
    F_NSHARD,
    F_W_BM25F_REL = F_NSHARD, F_W_BM25F_RANK, F_W_LM_B_GAP, F_PRF_RM3, F_PRF_RM3_REL, F_INTENT_DOC, F_INTENT_MAX,
    F_NALL
};

#endif
