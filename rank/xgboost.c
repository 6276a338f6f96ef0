/* xgboost.c - import XGBoost 1.x JSON models (Booster.save_model("m.json")).
 *
 * Schema (XGBoost 1.7): learner.learner_model_param.{base_score (string),
 * num_feature, num_class}; learner.objective.name;
 * learner.gradient_booster.{name = "gbtree", model.trees[]} with per-tree
 * arrays left_children, right_children, split_indices, split_conditions,
 * default_left (0/1 or booleans), split_type (0 = numerical). A leaf has
 * left_children == -1 and its value in split_conditions. XGBoost column j
 * becomes our column j (see xgboost.h for the feature-id convention). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xgboost.h"

/* Number from a JSON number or a numeric string ("5E-1", as 1.7 writes params). */
static int json_num(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *e;
        double d = strtod(s, &e);
        if (e == s || *e)
            return -1;
        *out = d;
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    return -1;
}

static const json_t *path_get(const json_t *root, const char *p1, const char *p2, const char *p3)
{
    const json_t *v = json_object_get(root, p1);
    if (v && p2)
        v = json_object_get(v, p2);
    if (v && p3)
        v = json_object_get(v, p3);
    return v;
}

int rank_xgboost_import(const char *json_path, rank_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(json_path, 0, &jerr);
    if (!root) {
        if (jerr.line <= 0 && strstr(jerr.text, "unable to open"))
            return fn_seterr(eb, -ENOENT, "%s: %s", json_path, jerr.text);
        return fn_seterr(eb, FN_EPARSE, "%s:%d: %s", json_path, jerr.line, jerr.text);
    }
    int rc = 0;
    rank_model_t *m = NULL;
    rank_node *nodes = NULL;
    const json_t *learner = json_object_get(root, "learner");
    if (!json_is_object(learner)) {
        rc = fn_seterr(eb, FN_EPARSE, "%s: no \"learner\" object (not an XGBoost JSON model)", json_path);
        goto done;
    }
    const char *obj = json_string_value(path_get(learner, "objective", "name", NULL));
    const char *kind;
    int logit = 0;
    if (!obj) {
        rc = fn_seterr(eb, FN_EPARSE, "%s: no learner.objective.name", json_path);
        goto done;
    }
    if (!strcmp(obj, "rank:ndcg") || !strcmp(obj, "rank:pairwise") || !strcmp(obj, "rank:map"))
        kind = "lambdarank";
    else if (!strcmp(obj, "binary:logistic") || !strcmp(obj, "reg:logistic"))
        kind = "binary", logit = 1;
    else if (!strcmp(obj, "reg:squarederror") || !strcmp(obj, "reg:linear"))
        kind = "regression";
    else {
        rc = fn_seterr(eb, FN_EINVAL, "%s: unsupported objective \"%s\"", json_path, obj);
        goto done;
    }
    const json_t *mp = json_object_get(learner, "learner_model_param");
    double base = 0.5, nfeat = -1, ncls = 0;
    if (!mp || json_num(json_object_get(mp, "base_score"), &base) ||
        json_num(json_object_get(mp, "num_feature"), &nfeat) || nfeat < 0 || nfeat > INT32_MAX) {
        rc = fn_seterr(eb, FN_EPARSE, "%s: bad learner.learner_model_param (base_score, num_feature)", json_path);
        goto done;
    }
    if (json_object_get(mp, "num_class") && (json_num(json_object_get(mp, "num_class"), &ncls) || ncls > 1)) {
        rc = fn_seterr(eb, FN_EINVAL, "%s: multi-class models are not supported", json_path);
        goto done;
    }
    double ntarget = 1;
    if (json_object_get(mp, "num_target") && (json_num(json_object_get(mp, "num_target"), &ntarget) || ntarget != 1)) {
        rc = fn_seterr(eb, FN_EINVAL, "%s: multi-target models are not supported", json_path);
        goto done;
    }
    if (logit) {
        if (!(base > 0 && base < 1)) {
            rc = fn_seterr(eb, FN_EPARSE, "%s: base_score %g outside (0,1) for %s", json_path, base, obj);
            goto done;
        }
        base = log(base / (1.0 - base));
    }
    const json_t *gb = json_object_get(learner, "gradient_booster");
    const char *gbname = json_string_value(json_object_get(gb, "name"));
    if (!gbname || strcmp(gbname, "gbtree") != 0) {
        rc = fn_seterr(eb, FN_EINVAL, "%s: unsupported booster \"%s\" (only gbtree)", json_path,
                       gbname ? gbname : "?");
        goto done;
    }
    const json_t *trees = path_get(gb, "model", "trees", NULL);
    if (!json_is_array(trees)) {
        rc = fn_seterr(eb, FN_EPARSE, "%s: no learner.gradient_booster.model.trees array", json_path);
        goto done;
    }
    size_t nf = (size_t)nfeat;
    if ((rc = rank_model_new(RANK_MODEL_TREES, kind, nf, &m)) != 0) {
        fn_seterr(eb, rc, "%s: cannot create model", json_path);
        goto done;
    }
    rank_model_set_base_score(m, base);

    const json_t *fnames = json_object_get(learner, "feature_names");
    if (json_is_array(fnames) && json_array_size(fnames) == nf && nf > 0) {
        const char **names = calloc(nf, sizeof(char *));
        if (!names) {
            rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", json_path);
            goto done;
        }
        for (size_t i = 0; i < nf; i++)
            names[i] = json_string_value(json_array_get(fnames, i));
        rc = rank_model_set_feature_names(m, names, nf);
        free(names);
        if (rc) {
            rc = fn_seterr(eb, FN_EINVAL, "%s: unusable learner.feature_names", json_path);
            goto done;
        }
    }

    for (size_t t = 0; t < json_array_size(trees); t++) {
        const json_t *tr = json_array_get(trees, t);
        const json_t *lc = json_object_get(tr, "left_children"), *rcj = json_object_get(tr, "right_children"),
                     *si = json_object_get(tr, "split_indices"), *sc = json_object_get(tr, "split_conditions"),
                     *dl = json_object_get(tr, "default_left"), *st = json_object_get(tr, "split_type");
        size_t n = json_array_size(lc);
        if (!n || json_array_size(rcj) != n || json_array_size(si) != n || json_array_size(sc) != n ||
            json_array_size(dl) != n) {
            rc = fn_seterr(eb, FN_EPARSE, "%s: trees[%zu]: node arrays missing or of different lengths", json_path, t);
            goto done;
        }
        free(nodes);
        if (!(nodes = calloc(n, sizeof(*nodes)))) {
            rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", json_path);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            double l, r, f, c, d, typ = 0;
            if (json_num(json_array_get(lc, i), &l) || json_num(json_array_get(rcj, i), &r) ||
                json_num(json_array_get(si, i), &f) || json_num(json_array_get(sc, i), &c) ||
                json_num(json_array_get(dl, i), &d) ||
                (json_array_size(st) == n && json_num(json_array_get(st, i), &typ))) {
                rc = fn_seterr(eb, FN_EPARSE, "%s: trees[%zu] node %zu: non-numeric entry", json_path, t, i);
                goto done;
            }
            if (l == -1) {
                nodes[i] = (rank_node){.feature = -1, .left = -1, .right = -1, .value = c};
                continue;
            }
            if (typ != 0) {
                rc = fn_seterr(eb, FN_EINVAL, "%s: trees[%zu] node %zu: categorical splits are not supported",
                               json_path, t, i);
                goto done;
            }
            if (f < 0 || f >= nfeat || l < 0 || r < 0 || l >= (double)n || r >= (double)n) {
                rc = fn_seterr(eb, FN_EPARSE, "%s: trees[%zu] node %zu: feature or child out of range", json_path,
                               t, i);
                goto done;
            }
            nodes[i] = (rank_node){.feature = (int32_t)f, .threshold = (float)c, .left = (int32_t)l,
                                   .right = (int32_t)r, .missing_left = d != 0};
        }
        if ((rc = rank_model_add_tree(m, nodes, n)) != 0) {
            fn_seterr(eb, rc, "%s: trees[%zu]: malformed tree structure", json_path, t);
            goto done;
        }
    }
    if ((rc = rank_model_finalize(m)) != 0) {
        fn_seterr(eb, rc, "%s: cannot compile the model", json_path);
        goto done;
    }
    *out = m;
    m = NULL;
done:
    rank_model_free(m);
    free(nodes);
    json_decref(root);
    return rc;
}
