#!/usr/bin/python3
"""ltr_peer.py - the Python side of tests/bench/ltr_bench.sh (run with /usr/bin/python3).

  ltr_peer.py xgb-rank --train F --test F --out DIR [--trees 100 --depth 6 --lr 0.1 --threads 1 --reps 1]
      Trains XGBRanker(objective="rank:ndcg", tree_method="hist") on F (+ F.query
      groups), timing fit() only (median of --reps fits); writes DIR/m.json (Booster.save_model) and
      DIR/xgb.pred (one margin a line on the test file, %.9g). Prints
      "xgb_fit_seconds<TAB>S" (the median).

  ltr_peer.py logreg --train F --test F --nfeatures N --C X --ours-train P --ours-test P --ours-model M
      Fits sklearn LogisticRegression(C, l2, lbfgs, tiny tol) on the same SVMlight
      files (1-based ids, zero_based=False, n_features=N) and compares with our
      probabilities (funnel predict --proba) and our model's weights: prints
      training/test log-loss, accuracy and the L2 objective for both.

Feature fN in XGBoost is file id N+1: load_svmlight_file(zero_based=False)
maps id 1 to column 0, which is also how funnel's reader and importer count.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
from sklearn.datasets import load_svmlight_file


def load(path, nfeatures=None):
    kw = {"zero_based": False}
    if nfeatures:
        kw["n_features"] = nfeatures
    X, y = load_svmlight_file(path, **kw)
    return X, y


def groups(path):
    with open(path + ".query") as f:
        return [int(l) for l in f if l.strip()]


def xgb_rank(a):
    import xgboost as xgb
    Xtr, ytr = load(a.train)
    Xte, _ = load(a.test, Xtr.shape[1])
    if Xte.shape[1] > Xtr.shape[1]:
        Xtr, ytr = load(a.train, Xte.shape[1])
    times = []
    for _ in range(a.reps):
        m = xgb.XGBRanker(objective="rank:ndcg", tree_method="hist", n_estimators=a.trees,
                          max_depth=a.depth, learning_rate=a.lr, n_jobs=a.threads)
        t0 = time.perf_counter()
        m.fit(Xtr, ytr, group=groups(a.train))
        times.append(time.perf_counter() - t0)
    fit_s = sorted(times)[len(times) // 2]
    os.makedirs(a.out, exist_ok=True)
    m.get_booster().save_model(os.path.join(a.out, "m.json"))
    pred = m.predict(Xte, output_margin=True)
    with open(os.path.join(a.out, "xgb.pred"), "w") as f:
        for v in pred:
            f.write("%.9g\n" % v)
    print("xgb_fit_seconds\t%.3f" % fit_s)


def logloss(y, p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def read_preds(path):
    return np.loadtxt(path, dtype=np.float64, ndmin=1)


def read_linear(path, nfeatures):
    """Weights and bias of a funnel linear model file (docs/ltr.md)."""
    w = np.zeros(nfeatures)
    b = 0.0
    with open(path) as f:
        for line in f:
            t = line.split()
            if not t:
                continue
            if t[0] == "weight" and int(t[1]) < nfeatures:
                w[int(t[1])] = float(t[2])
            elif t[0] == "bias":
                b = float(t[1])
    return w, b


def objective(X, y, w, b, C):
    z = X @ w + b
    # sum of log(1 + exp(-s z)), s = +-1, computed stably
    s = np.where(y > 0, 1.0, -1.0)
    return float(C * np.sum(np.logaddexp(0.0, -s * z)) + 0.5 * w @ w)


def logreg(a):
    from sklearn.linear_model import LogisticRegression
    Xtr, ytr = load(a.train, a.nfeatures)
    Xte, yte = load(a.test, a.nfeatures)
    ytr = (ytr > 0).astype(float)
    yte = (yte > 0).astype(float)
    m = LogisticRegression(C=a.C, penalty="l2", solver="lbfgs", max_iter=100000, tol=1e-12,
                           fit_intercept=True)
    t0 = time.perf_counter()
    m.fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    sk_tr = m.predict_proba(Xtr)[:, 1]
    sk_te = m.predict_proba(Xte)[:, 1]
    our_tr = read_preds(a.ours_train)
    our_te = read_preds(a.ours_test)
    if len(our_tr) != Xtr.shape[0] or len(our_te) != Xte.shape[0]:
        sys.exit("ltr_peer.py: prediction counts differ from the data rows")
    w, b = read_linear(a.ours_model, a.nfeatures)
    rows = [
        ("train_logloss", logloss(ytr, our_tr), logloss(ytr, sk_tr)),
        ("test_logloss", logloss(yte, our_te), logloss(yte, sk_te)),
        ("train_accuracy", float(np.mean((our_tr > 0.5) == ytr)), float(np.mean((sk_tr > 0.5) == ytr))),
        ("test_accuracy", float(np.mean((our_te > 0.5) == yte)), float(np.mean((sk_te > 0.5) == yte))),
        ("objective", objective(Xtr, ytr, w, b, a.C), objective(Xtr, ytr, m.coef_[0], m.intercept_[0], a.C)),
    ]
    print("metric\tours\tsklearn\tdiff")
    for name, o, s in rows:
        print("%s\t%.6f\t%.6f\t%+.2e" % (name, o, s, o - s))
    print("sklearn_fit_seconds\t%.3f\tn_iter\t%d" % (fit_s, int(m.n_iter_[0])))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("xgb-rank")
    x.add_argument("--train", required=True)
    x.add_argument("--test", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--trees", type=int, default=100)
    x.add_argument("--depth", type=int, default=6)
    x.add_argument("--lr", type=float, default=0.1)
    x.add_argument("--threads", type=int, default=1)
    x.add_argument("--reps", type=int, default=1, help="fit this many times, report the median")
    l = sub.add_parser("logreg")
    l.add_argument("--train", required=True)
    l.add_argument("--test", required=True)
    l.add_argument("--nfeatures", type=int, required=True)
    l.add_argument("--C", type=float, default=1.0)
    l.add_argument("--ours-train", required=True)
    l.add_argument("--ours-test", required=True)
    l.add_argument("--ours-model", required=True)
    a = ap.parse_args()
    xgb_rank(a) if a.cmd == "xgb-rank" else logreg(a)


if __name__ == "__main__":
    main()
