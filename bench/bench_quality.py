"""Model quality, honestly measured: every model over 5 repeated splits on both bundled datasets.

    python bench/bench_quality.py [--repeats 5] [--trials 12] [--timeout 150] [--home DIR]

Steps (one process, a fresh loanrisk home unless --home is given):
  1. `loanrisk tune` for gbdt and for the mlp (tabular design) on each dataset, the SAME budget
     (--trials / --timeout) for both, validation split only; learn then uses the tuned params.
  2. `loanrisk evaluate`: majority, linear (logistic regression), mlp, gbdt, ensemble over
     --repeats splits (mean ± std of the ONNX graphs on each evaluation split).
  3. the reference mlp design (the article's network, untuned) over the same splits.
  4. grades with --allow-leaky: the tabular mlp alone.
  5. logistic regression tuned with the same budget (`--step linear` runs this step alone).
  6. one plain `learn` per dataset (one split, registered in MLflow and promoted), timed
     (`--step time` runs this step alone).
Writes bench/quality.json and the section between the quality markers of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from _results import cpu_name, write_section

HERE = Path(__file__).parent
DATASETS = ("lending-club-grades", "lending-club-default")


def run(args: argparse.Namespace) -> dict:
    """All measurements as one JSON-able dict."""
    os.environ["LOANRISK_HOME"] = args.home or tempfile.mkdtemp(prefix="loanrisk-bench-")
    from loanrisk.config import get_settings
    from loanrisk.learn.pipeline import LearnOptions, learn
    from loanrisk.learn.tune import TuneOptions, tune

    get_settings.cache_clear()
    out: dict = {"date": date.today().isoformat(), "cores": os.cpu_count(),
                 "cpu": cpu_name(isa=True), "repeats": args.repeats,
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
    return tuned_linear(args, out)


def tuned_linear(args: argparse.Namespace, out: dict) -> dict:
    """Step 5: tune the logistic regression (same budget), then its mean ± std over repeats."""
    from loanrisk.learn.pipeline import LearnOptions, learn
    from loanrisk.learn.tune import TuneOptions, tune

    out["linear_tuned"] = {}
    for ds in DATASETS:
        res = tune(TuneOptions(model="linear", dataset=ds, trials=args.trials,
                               timeout=args.timeout, progress=False))
        out["tune"][f"{ds}/linear"] = {"seconds": res.seconds, "trials": res.n_trials,
                                       "pruned": res.n_pruned, "val": res.best_value,
                                       "params": res.best_params}
        r = learn(LearnOptions(dataset=ds, repeats=args.repeats, register=False,
                               progress=False, models=("linear",)))
        out["linear_tuned"][ds] = r.summary["models"]["linear"]
        _save(args, out)
    return time_learn(args, out)


def time_learn(args: argparse.Namespace, out: dict) -> dict:
    """Step 6: wall time of one `learn` (all five families, registered and promoted)."""
    from loanrisk.learn.pipeline import LearnOptions, learn

    out["learn_seconds"] = {}
    for ds in DATASETS:
        t0 = time.perf_counter()
        r = learn(LearnOptions(dataset=ds, progress=False))
        out["learn_seconds"][ds] = {"seconds": time.perf_counter() - t0,
                                    "fit": {t.name: round(t.seconds, 1) for t in r.trained}}
        _save(args, out)
    return out


def _save(args: argparse.Namespace, out: dict) -> None:
    (HERE / "quality.json").write_text(json.dumps(out, indent=1, default=str))


def _ms(m: dict, k: str) -> str:
    return "n/a" if m.get(k) is None else f"{m[k]:.4f} ± {m.get(k + '_std') or 0:.4f}"


def markdown(q: dict) -> str:
    """The RESULTS.md section."""
    b = q["budget"]
    lines = ["## Model quality (`bench/bench_quality.py`)", "",
             f"- Date {q['date']}; machine: {q['cores']} cores (shared with other jobs) of "
             f"{q['cpu']}, no GPU. The networks' figures depend on the CPU's instruction set "
             "(torch's kernels round differently), so another machine gives other mlp figures.",
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
        if ds in q.get("linear_tuned", {}):
            rows["linear (tuned, same budget)"] = q["linear_tuned"][ds]
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
    for ds, t in q.get("learn_seconds", {}).items():
        fits = ", ".join(f"{k} {v:.1f}" for k, v in t["fit"].items())
        lines.append(f"- one `loanrisk learn --dataset {ds}` (one split, tuned params, registered "
                     f"and promoted): {t['seconds']:.0f} s; per model (fit + export + "
                     f"evaluation, s): {fits}")
    lines += ["", *targets(q)]
    lines += ["### Tuning runs", "", "| study | trials (pruned) | seconds | best validation |",
              "|---|---:|---:|---:|"]
    for k, t in q["tune"].items():
        lines.append(f"| {k} | {t['trials']} ({t['pruned']}) | {t['seconds']:.0f} | "
                     f"{t['val']:.4f} |")
    return "\n".join(lines)


def targets(q: dict) -> list[str]:
    """The issue's Done-when lines, each met or not and by how much."""
    out = ["### Targets (issue 4, means over the repeats)", ""]

    def line(ok: bool, text: str) -> None:
        out.append(f"- {'MET' if ok else 'NOT MET'}: {text}")

    g = q["evaluate"].get("lending-club-grades")
    if g:
        m = g["models"]
        champ, gb = m[g["best"]]["roc_auc"], m["gbdt"]["roc_auc"]
        line(champ >= gb + 0.005, f"grades champion ({g['best']}) ROC-AUC {champ:.4f} ≥ tuned "
             f"LightGBM {gb:.4f} + 0.005 = {gb + 0.005:.4f} (difference {champ - gb - 0.005:+.4f})")
        mlp = max(m["mlp"]["roc_auc"], q["reference"].get("lending-club-grades", {}).get(
            "roc_auc", 0.0))
        line(mlp >= gb, f"grades best mlp alone {mlp:.4f} ≥ tuned LightGBM {gb:.4f} "
             f"(difference {mlp - gb:+.4f})")
    d = q["evaluate"].get("lending-club-default")
    if d:
        m = d["models"]
        champ = m[d["best"]]["roc_auc"]
        lin = q.get("linear_tuned", {}).get("lending-club-default", m["linear"])
        peer = max(m["gbdt"]["roc_auc"], m["linear"]["roc_auc"], lin["roc_auc"])
        line(champ >= peer, f"good/bad champion ({d['best']}) ROC-AUC {champ:.4f} ≥ max(tuned "
             f"LightGBM, logistic regression) {peer:.4f}")
        line(m["mlp"]["roc_auc"] >= champ - 0.005, f"good/bad mlp alone {m['mlp']['roc_auc']:.4f}"
             f" within 0.005 of the champion {champ:.4f} (gap {champ - m['mlp']['roc_auc']:.4f})")
        ece = m[d["best"]]["ece"]
        line(ece <= 0.02, f"good/bad champion ECE {ece:.4f} ≤ 0.02")
    if q.get("leaky"):
        f1 = q["leaky"]["mlp"]["f1_weighted"]
        line(f1 >= 0.99, f"grades --allow-leaky mlp weighted F1 {f1:.4f} ≥ 0.99 (warning shown)")
    out += ["", "Read with care:",
            "- The split-to-split std (±0.006 to ±0.02) is as large as most gaps: on good/bad "
            "gbdt, the ensemble and the mlp are within the noise of the splits (the champion "
            f"line above gives the paired difference and its standard error). "
            f"{_grades_margins(q)}",
            "- Tuning scores come from the validation rows of the seed-42 split (about 1,050 "
            "rows), so the best validation value is optimistic; the tables are evaluation splits.",
            "- Monotone constraints are enforced by gbdt only: on good/bad it has no violation, "
            "the mlp and the ensemble break the declared direction on about 60% of the pairs; "
            "on grades even gbdt breaks it on 13% because LightGBM "
            "constrains each class's raw score, not the expected grade.",
            "- The bin method of the mlp's numeric encoding is fixed (tree bins), not searched: "
            "on 2026-11-27 (this machine) a search over tree and quantile bins picked quantile "
            "bins on the validation split (0.8278) and the tuned mlp scored 0.7780 ± 0.0078 on "
            "evaluation, below LightGBM; the same parameters with tree bins scored "
            "0.7844 ± 0.0069.",
            "- Label smoothing (0.1) cost the mlp 0.06 ROC-AUC on grades, so it is off and not "
            "searched; without the raw features beside the PLE columns the mlp lost 0.06.",
            "- The --allow-leaky figure is the untuned tabular mlp (tree bins, 5 members).",
            "- Times are wall-clock on 2 cores shared with other engineers' jobs."]
    return [*out, ""]


def _grades_margins(q: dict) -> str:
    """How the grade mlp's gap to tuned LightGBM compares with the split-to-split spread."""
    g = q["evaluate"].get("lending-club-grades")
    if not g:
        return ""
    mlp, gb = g["models"]["mlp"], g["models"]["gbdt"]
    gap = mlp["roc_auc"] - gb["roc_auc"]
    spread = max(mlp.get("roc_auc_std") or 0.0, gb.get("roc_auc_std") or 0.0)
    return (f"On grades the mlp's {gap:+.4f} over tuned LightGBM is {abs(gap) / spread:.1f}× "
            "the split-to-split std: the mlp alone and LightGBM are close, the ensemble's "
            "margin over both is what its line above weighs." if spread else "")


def main() -> None:
    """Parse the options, measure, write the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--timeout", type=float, default=150)
    p.add_argument("--home", default=None)
    p.add_argument("--markdown-only", action="store_true", help="rewrite from quality.json")
    p.add_argument("--step", choices=["all", "linear", "time"], default="all",
                   help="linear / time: only step 5 / 6, added to the existing quality.json")
    args = p.parse_args()
    if args.markdown_only:
        q = json.loads((HERE / "quality.json").read_text())
    elif args.step in ("linear", "time"):
        os.environ["LOANRISK_HOME"] = args.home or tempfile.mkdtemp(prefix="loanrisk-bench-")
        q = json.loads((HERE / "quality.json").read_text())
        q = tuned_linear(args, q) if args.step == "linear" else time_learn(args, q)
    else:
        q = run(args)
    write_section("quality", markdown(q))


if __name__ == "__main__":
    main()
