"""Model quality, honestly measured: every model over 5 repeated splits on both bundled datasets.

    python bench/bench_quality.py [--repeats 5] [--trials 12] [--timeout 150] [--home DIR]

Steps (one process, a fresh loanrisk home unless --home is given):
  1. `loanrisk tune` for gbdt and for the mlp (tabular design) on each dataset, the SAME budget
     (--trials / --timeout) for both, validation split only; learn then uses the tuned params.
  2. `loanrisk evaluate`: majority, linear (logistic regression), mlp, gbdt, ensemble over
     --repeats splits (mean ± std of the ONNX graphs on each evaluation split).
  3. the reference mlp design (the article's network, untuned) over the same splits.
  4. grades with --allow-leaky: the tabular mlp alone.
Writes bench/quality.json and the section between the quality markers of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).parent
DATASETS = ("lending-club-grades", "lending-club-default")
START, END = "<!-- quality:start -->", "<!-- quality:end -->"


def run(args: argparse.Namespace) -> dict:
    """All measurements as one JSON-able dict."""
    os.environ["LOANRISK_HOME"] = args.home or tempfile.mkdtemp(prefix="loanrisk-bench-")
    from loanrisk.config import get_settings
    from loanrisk.pipeline import LearnOptions, learn
    from loanrisk.tune import TuneOptions, tune

    get_settings.cache_clear()
    out: dict = {"date": date.today().isoformat(), "cores": os.cpu_count(),
                 "cpu": platform.processor() or platform.machine(), "repeats": args.repeats,
                 "budget": {"trials": args.trials, "timeout_s": args.timeout}, "tune": {},
                 "evaluate": {}, "reference": {}, "leaky": {}}
    for ds in DATASETS:
        for model in ("gbdt", "mlp"):
            res = tune(TuneOptions(model=model, dataset=ds, trials=args.trials,
                                   timeout=args.timeout, progress=False))
            out["tune"][f"{ds}/{model}"] = {"seconds": res.seconds, "trials": res.n_trials,
                                            "pruned": res.n_pruned, "val": res.best_value,
                                            "params": res.best_params}
            _save(args, out)
    for ds in DATASETS:
        t0 = time.perf_counter()
        r = learn(LearnOptions(dataset=ds, repeats=args.repeats, register=False,
                               progress=False))
        out["evaluate"][ds] = {"seconds": time.perf_counter() - t0, "models": r.summary["models"],
                               "why": r.summary["repeats"]["why"], "best": r.best,
                               "tuned_from": r.summary["tuned_from"],
                               "monotone": {m: v["violation_rate"]
                                            for m, v in r.summary["monotone"].items()},
                               "decision": r.summary["decision"]}
        _save(args, out)
        r = learn(LearnOptions(dataset=ds, repeats=args.repeats, register=False,
                               progress=False, models=("mlp",), mlp_config="reference",
                               use_tuned=False))
        out["reference"][ds] = r.summary["models"]["mlp"]
        _save(args, out)
    r = learn(LearnOptions(dataset=DATASETS[0], repeats=args.repeats, register=False,
                           progress=False, models=("mlp",), allow_leaky=True, use_tuned=False))
    out["leaky"] = {"mlp": r.summary["models"]["mlp"], "warning": r.summary["warning"]}
    _save(args, out)
    return out


def _save(args: argparse.Namespace, out: dict) -> None:
    (HERE / "quality.json").write_text(json.dumps(out, indent=1, default=str))


def _ms(m: dict, k: str) -> str:
    return "n/a" if m.get(k) is None else f"{m[k]:.4f} ± {m.get(k + '_std') or 0:.4f}"


def markdown(q: dict) -> str:
    """The RESULTS.md section."""
    b = q["budget"]
    lines = [START, "## Model quality (`bench/bench_quality.py`)", "",
             f"- Date {q['date']}; machine: {q['cores']} cores (shared with other jobs), CPU only.",
             f"- Every figure: mean ± std over {q['repeats']} seeded stratified 70/30 splits "
             "(seeds 42..46), the exported ONNX graph scored on each evaluation split; "
             "preprocessing and every model refitted per split; calibrated on validation rows.",
             f"- Tuning budget, the same for LightGBM and the mlp: {b['trials']} Optuna trials or "
             f"{b['timeout_s']} s, whichever ends first (TPE, median pruning), validation split of "
             "seed 42 only. `learn` then used the tuned parameters; linear is the untuned "
             "logistic regression (SGD, as AWS ML).", ""]
    for ds, ev in q["evaluate"].items():
        lines += [f"### {ds}", "", "| model | ROC-AUC | F1 weighted | F1 macro | log loss | ECE |",
                  "|---|---:|---:|---:|---:|---:|"]
        rows = dict(ev["models"])
        if ds in q["reference"]:
            rows["mlp (reference design, untuned)"] = q["reference"][ds]
        for name, m in rows.items():
            lab = f"**{name}** (champion)" if name == ev["best"] else name
            lines.append(f"| {lab} | {_ms(m, 'roc_auc')} | {_ms(m, 'f1_weighted')} | "
                         f"{_ms(m, 'f1_macro')} | {_ms(m, 'log_loss')} | {_ms(m, 'ece')} |")
        mono = ", ".join(f"{k} {v:.3f}" for k, v in ev["monotone"].items())
        lines += ["", f"- Champion: {ev['why']}",
                  f"- Monotone violation rates (seed 42 split): {mono}",
                  f"- `learn --repeats {q['repeats']}` took {ev['seconds']:.0f} s.", ""]
    if q.get("leaky"):
        m = q["leaky"]["mlp"]
        lines += ["### lending-club-grades with --allow-leaky (tabular mlp alone)", "",
                  f"weighted F1 {_ms(m, 'f1_weighted')}, ROC-AUC {_ms(m, 'roc_auc')}; "
                  f"warning shown: {bool(q['leaky']['warning'])}.", ""]
    lines += ["### Tuning runs", "", "| study | trials (pruned) | seconds | best validation |",
              "|---|---:|---:|---:|"]
    for k, t in q["tune"].items():
        lines.append(f"| {k} | {t['trials']} ({t['pruned']}) | {t['seconds']:.0f} | "
                     f"{t['val']:.4f} |")
    lines += ["", END]
    return "\n".join(lines)


def write_results(section: str) -> None:
    """Replace (or append) the quality section of RESULTS.md, leaving the others alone."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    """Parse the options, measure, write the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--timeout", type=float, default=150)
    p.add_argument("--home", default=None)
    p.add_argument("--markdown-only", action="store_true", help="rewrite from quality.json")
    args = p.parse_args()
    q = (json.loads((HERE / "quality.json").read_text()) if args.markdown_only else run(args))
    write_results(markdown(q))


if __name__ == "__main__":
    main()
