"""The scorecard beside its peer: a tuned logistic regression (C by 5-fold CV on log loss) on the
same one-hot/standardised features, on the same seeded splits `evaluate --repeats` uses.

    .venv/bin/python bench/bench_scorecard.py lending-club-default 5

Each split is the one `evaluate --repeats N` fits on (``split`` with seeds 42..42+N-1, the same
``prepare`` and ``Preprocessor`` fitted on the training part); both models learn from the training
part only (the scorecard tunes its penalty by CV inside it, the peer by ``LogisticRegressionCV``)
and are scored on the evaluation part, which neither sees. Prints per split: ROC-AUC of both (the
scorecard's ONNX graph, sklearn for the peer), the scorecard's chosen C and its monotone violation
rate; then mean ± sd (ddof 1, as `evaluate` reports) and a markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main(dataset: str, repeats: int, seed: int = 42) -> None:
    from sklearn.linear_model import LogisticRegressionCV

    from loanrisk.datasets import load_bundled
    from loanrisk.features import Preprocessor
    from loanrisk.learn.evaluate import evaluate
    from loanrisk.learn.export import OnnxModel, build_graph
    from loanrisk.learn.monotone import violations
    from loanrisk.learn.stages import monotone_vector, prepare, scorecard_columns
    from loanrisk.models import make_model
    from loanrisk.split import split

    df, schema = load_bundled(dataset)
    df = prepare(df, schema, sample=None, seed=seed)
    y = schema.encode_target(df[schema.target])
    attrs = schema.feature_attributes(allow_leaky=False)
    rows: dict[str, list[float]] = {"scorecard": [], "logreg_cv": [], "violations": []}
    for s in range(seed, seed + repeats):
        parts = split(y, seed=s, names=schema.classes)
        tr, ev = df.iloc[parts.train], df.iloc[parts.eval]
        pre = Preprocessor(attrs).fit(tr)
        X, Xe = pre.transform(tr), pre.transform(ev)
        t0 = time.perf_counter()
        sc = make_model("scorecard", seed=s, task=schema.task, columns=scorecard_columns(pre),
                        monotone=monotone_vector(pre, attrs))
        sc.fit(X, y[parts.train], X_val=None, y_val=None, n_classes=len(schema.classes))
        graph = build_graph(pre, sc, classes=schema.classes).SerializeToString()
        p = OnnxModel(graph).predict_proba(ev)
        t1 = time.perf_counter()
        lr = LogisticRegressionCV(Cs=8, cv=5, max_iter=3000, scoring="neg_log_loss")
        lr.fit(X, y[parts.train])
        q = lr.predict_proba(Xe)
        t2 = time.perf_counter()
        auc_sc = evaluate("scorecard", y[parts.eval], p, classes=schema.classes).metrics["roc_auc"]
        auc_lr = evaluate("lr", y[parts.eval], q, classes=schema.classes).metrics["roc_auc"]
        vr = violations(graph, train=tr, ev=ev, attrs=attrs, task=schema.task)["violation_rate"]
        rows["scorecard"].append(auc_sc)
        rows["logreg_cv"].append(auc_lr)
        rows["violations"].append(vr)
        print(f"seed {s}: scorecard {auc_sc:.4f} (C={getattr(sc, 'C_', sc.C)}, {t1 - t0:.1f}s, "
              f"violations {vr}) | logreg_cv {auc_lr:.4f} (C={float(np.ravel(lr.C_)[0]):.3g}, "
              f"{t2 - t1:.1f}s)", flush=True)
    stats = {}
    for k in ("scorecard", "logreg_cv"):
        v = np.array(rows[k])
        stats[k] = f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"
        print(f"{dataset} {k}: ROC-AUC {stats[k]} (per split "
              f"{' / '.join(f'{x:.4f}' for x in v)})")
    print(f"{dataset} scorecard max violation rate: {max(rows['violations'])}")
    print(f"| {dataset} | {stats['scorecard']} | {stats['logreg_cv']} | "
          f"{max(rows['violations'])} |")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5)
