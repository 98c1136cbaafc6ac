"""The model-quality sections of a `learn` report: repeats, calibration, decisions, monotonicity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loanrisk.learn.repeats import repeat_table

if TYPE_CHECKING:
    from loanrisk.learn.types import LearnResult

SHOWN = ("roc_auc", "f1_macro", "f1_weighted", "accuracy", "log_loss", "brier", "ece")


def quality_markdown(result: LearnResult, summary: dict[str, Any]) -> list[str]:
    """Markdown lines for the sections after the model table."""
    lines: list[str] = []
    primary = summary["primary_metric"]
    if summary.get("tuned_from"):
        lines += ["## Tuned parameters", ""]
        lines += [f"- {m}: using tuned params from `{p}`" for m, p in
                  summary["tuned_from"].items()]
        lines.append("")
    if result.repeats is not None:
        st = result.repeats
        lines += [f"## Repeated evaluation ({len(st.seeds)} stratified 70/30 splits, seeds "
                  f"{st.seeds[0]}..{st.seeds[-1]}; mean ± std)", "",
                  repeat_table(st, primary=primary, metrics=SHOWN), "",
                  f"**Why {st.best} won:** {st.why}", "",
                  f"The registered version is {st.best} trained on the split of seed "
                  f"{result.seed}; the table above the repeats shows that split alone.", ""]
    cal = {m: c for m, c in summary.get("calibration", {}).items() if c}
    lines += ["## Calibration (fitted on the validation rows, inside each graph)", ""]
    if cal:
        lines += ["| model | method | a | b | val ECE before | val ECE after | eval ECE |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for m, c in cal.items():
            ece = summary["models"][m].get("ece")
            lines.append(f"| {m} | {c['method']}{' (folded)' if c.get('folded') else ''} | "
                         f"{c['a']:.4f} | {c['b']:.4f} | {c['val_ece_before']:.4f} | "
                         f"{c['val_ece_after']:.4f} | {_f(ece)} |")
    else:
        lines.append("- calibration was off (`--no-calibrate`).")
    lines.append("")
    dec = summary.get("decision")
    if dec:
        rule = (f"expected adverse rate among approvals ≤ {dec['max_bad_rate']}"
                if dec["rule"] == "max_bad_rate"
                else f"approve {dec['target_approval_rate']:.0%} of applications")
        lines += ["## Decision rule (manifest `decision`)", "",
                  f"- rule `{dec['rule']}`: {rule}; score: {dec['score']}",
                  f"- decline when score ≥ **{dec['decline_threshold']:.4f}**; tiers: low < "
                  f"{dec['tiers']['medium']:.4f} ≤ medium < {dec['tiers']['high']:.4f} ≤ high",
                  f"- approval rate {dec['approval_rate']:.1%}, expected adverse rate among "
                  f"approvals {dec['expected_bad_rate_approved']:.2%}"
                  + (f", observed {dec['observed_bad_rate_approved']:.2%}"
                     if "observed_bad_rate_approved" in dec else ""), ""]
    mono = summary.get("monotone") or {}
    attrs = sorted({a for v in mono.values() for a in v.get("attributes", {})})
    if attrs:
        lines += ["## Monotone attributes: violation rates on the evaluation split", "",
                  "Each row paired with a copy one step higher in that attribute only; a "
                  "violation is risk moving against the schema's declared direction.", "",
                  "| model | overall | " + " | ".join(attrs) + " |",
                  "|---|---:|" + "---:|" * len(attrs)]
        for m, v in mono.items():
            cells = [_f(v["attributes"].get(a, {}).get("violation_rate"), 3) for a in attrs]
            lines.append(f"| {m} | {_f(v['violation_rate'], 3)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"
