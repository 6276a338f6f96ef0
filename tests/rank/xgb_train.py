#!/usr/bin/python3
"""Train reference XGBoost models for tests/rank/test_xgboost.c.

usage: xgb_train.py DATA_DIR OUT_DIR   (DATA_DIR holds rank.train, rank.test and .query files)

Feature convention (docs/ltr.md, rank/xgboost.h): the SVMlight files are
1-based; they are read with load_svmlight_file(zero_based=False), so feature
id k is XGBoost column k-1 -- the same column funnel's rank_dataset uses.

Writes to OUT_DIR:
  m.json, m.pred    XGBRanker rank:ndcg (50 trees, depth 6, lr 0.1, hist, 1 thread)
                    and its predictions on rank.test (one %.9g a line)
  m.ndcg            XGBoost's own eval ndcg@10 on rank.test after the last round
  b.json, b.pred    XGBClassifier binary:logistic on label > 0; margins on rank.test
Exit 77 if xgboost is not installed (the C test skips then).
"""
import os
import sys

try:
    import numpy as np
    import xgboost as xgb
    from sklearn.datasets import load_svmlight_file
except ImportError as e:  # the C test turns this into a skip
    print("missing python module: %s" % e, file=sys.stderr)
    sys.exit(77)


def load(path):
    X, y = load_svmlight_file(path, n_features=300, zero_based=False)
    groups = np.loadtxt(path + ".query", dtype=np.int64)
    return X, y, groups


def main():
    data, out = sys.argv[1], sys.argv[2]
    Xtr, ytr, gtr = load(os.path.join(data, "rank.train"))
    Xte, yte, gte = load(os.path.join(data, "rank.test"))

    r = xgb.XGBRanker(objective="rank:ndcg", tree_method="hist", n_estimators=50, max_depth=6,
                      learning_rate=0.1, n_jobs=1, eval_metric="ndcg@10")
    r.fit(Xtr, ytr, group=gtr, eval_set=[(Xte, yte)], eval_group=[gte], verbose=False)
    r.get_booster().save_model(os.path.join(out, "m.json"))
    pred = r.predict(Xte, output_margin=True)
    np.savetxt(os.path.join(out, "m.pred"), pred, fmt="%.9g")
    ev = r.evals_result()["validation_0"]["ndcg@10"]
    with open(os.path.join(out, "m.ndcg"), "w") as f:
        f.write("%.9g\n" % ev[-1])

    c = xgb.XGBClassifier(objective="binary:logistic", tree_method="hist", n_estimators=30, max_depth=5,
                          learning_rate=0.2, n_jobs=1)
    c.fit(Xtr, (ytr > 0).astype(np.int32))
    c.get_booster().save_model(os.path.join(out, "b.json"))
    np.savetxt(os.path.join(out, "b.pred"), c.predict(Xte, output_margin=True), fmt="%.9g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
