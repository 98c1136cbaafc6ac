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
    lines += _monotone_rule(summary.get("monotone_rule"))
    lines += information_value_markdown(summary.get("information_value") or {})
    lines += scorecard_markdown(summary.get("scorecard"))
    return lines


def _monotone_rule(rule: dict[str, Any] | None) -> list[str]:
    if not rule:
        return []
    excluded = ", ".join(rule["excluded"]) or "none"
    return ["## Monotone champion (`--require-monotone`)", "",
            f"- excluded for violations on the evaluation split: {excluded}",
            f"- chosen: **{rule['chosen']}**; best without the constraint: "
            f"{rule['unconstrained_best']}; the constraint costs {rule['cost']:.4f} "
            f"{rule['metric']} on this split", ""]


def information_value_markdown(iv: dict[str, dict[str, Any]]) -> list[str]:
    """IV per attribute, strongest first, with its band; suspicious ones flagged for leakage."""
    if not iv:
        return []
    lines = ["## Information value (against the adverse outcome)", "",
             "Bands: useless < 0.02 ≤ weak < 0.1 ≤ medium < 0.3 ≤ strong ≤ 0.5 < suspicious.", "",
             "| attribute | IV | band |", "|---|---:|---|"]
    ranked = sorted(iv.items(), key=lambda kv: -(kv[1]["iv"] or 0.0))
    lines += [f"| {name} | {v['iv']:.4f} | {v['band']} |" for name, v in ranked]
    sus = [name for name, v in ranked if v["band"] == "suspicious"]
    if sus:
        lines += ["", f"> **Leakage check: IV above 0.5 for {', '.join(sus)}.** Such a strong "
                  "single attribute is often set from the outcome or known only after the "
                  "decision (or priced from the same risk, as a lender's own grade); confirm it "
                  "is known when the application is decided."]
    return [*lines, ""]


def scorecard_markdown(card: dict[str, Any] | None) -> list[str]:
    """The scorecard's points table (also in scorecard.json)."""
    if not card:
        return []
    lines = ["## Scorecard points (`scorecard.json`)", "",
             f"{card['base_points']:g} points at {card['base_odds']:g}:1 odds (good:bad), "
             f"{card['pdo']:g} points to double the odds; an applicant's score is the sum of "
             "one bin's points per attribute. Bins on numeric attributes are in raw units.", "",
             "| attribute | bin | WoE | points | training rows |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['attribute']} | {r['bin']} | {r['woe']:.4f} | {r['points']:.1f} | "
              f"{r['rows']} |" for r in card["bins"]]
    return [*lines, "", *agreement_markdown(card.get("reasons_agreement"))]


def agreement_markdown(agree: dict[str, Any] | None) -> list[str]:
    """How often the scorecard's reasons (points below maximum) agree with substitution."""
    if not agree:
        return []
    lines = ["### Scorecard reasons: points below maximum vs substitution", "",
             "The service gives a scorecard's decisions the attributes whose points fall "
             "furthest below their maximum (exact, from the application's own run); every other "
             "model's reasons come from substitution (each attribute set to its typical value). "
             f"On the first {agree['rows']} evaluation rows, both rules through the service's "
             f"scorer (up to {agree.get('max_reasons', '?')} reasons; rows where either gives "
             "none are not compared):", "",
             "| rows | compared | top-1 agreement | top-3 overlap | no substitution reason |",
             "|---|---:|---:|---:|---:|"]
    for label, a in (("all", agree), ("adverse decisions (its decision rule)",
                                      agree.get("adverse"))):
        if a:
            lines.append(f"| {label} | {a['compared']} | {_pct(a.get('top1'))} | "
                         f"{_pct(a.get('top3_overlap'))} | {a['no_substitution_reason']} |")
    lines += ["", "Top-1: the first reason names the same attribute. Top-3 overlap: the "
              "attributes both top-3 lists share, over the shorter list's length.", ""]
    return lines


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"
