"""The report of a `learn` run: Markdown, plots, profile and the summary JSON."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from loanrisk import plots
from loanrisk.learn import report_threshold
from loanrisk.learn.evaluate import comparison_table
from loanrisk.learn.repeats import summary_block
from loanrisk.learn.report_quality import quality_markdown
from loanrisk.learn.stagelog import StageLog, stages_markdown

if TYPE_CHECKING:
    from loanrisk.learn.types import LearnResult
    from loanrisk.profile import Profile


def leak_warning(result: LearnResult, used: list[str]) -> str | None:
    """The warning every report carries when leaky attributes were used."""
    leaks = [lk for lk in result.leakage if lk.attribute in used]
    if not leaks:
        return None
    parts = ", ".join(f"{lk.attribute} (alone scores {lk.score:.4f})" for lk in leaks)
    return (
        f"WARNING: trained with --allow-leaky. {parts} predict {result.schema.target!r} almost "
        "perfectly on their own: they are set from the target or known only after the decision, "
        "so these figures are not honest estimates of how the model will do on new applications."
    )


def _clean(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 6)


def build_summary(result: LearnResult, *, used: list[str]) -> dict[str, Any]:
    """The machine-readable summary (`--summary-json`)."""
    champion: dict[str, Any] = {"model": result.best, "version": None, "promoted": False}
    if result.version is not None:
        champion["version"] = result.version.version
    if result.promotion is not None:
        champion["promoted"] = result.promotion.promoted
        champion["reason"] = result.promotion.reason
    cost: dict[str, dict[str, Any]] = {t.name: {"fit_seconds": round(t.seconds, 2)}
            | (t.latency.as_dict() if t.latency is not None else {}) for t in result.trained}
    models = {t.name: {k: _clean(v) for k, v in t.evaluation.metrics.items()} | cost[t.name]
              for t in result.trained}
    if result.repeats is not None:  # means over the repeated splits, <metric>_std beside each
        models = {name: {k: _clean(v) for k, v in result.repeats.merged(name).items()}
                  | cost[name] for name in models}
    extras = result.extras
    return {
        "dataset": result.name,
        "target": result.schema.target,
        "task": result.schema.task,
        "classes": result.schema.classes,
        "primary_metric": result.schema.primary_metric,
        "models": models,
        "repeats": summary_block(result.repeats) if result.repeats is not None else None,
        "registered_split": {"seed": result.seed,
                             "metrics": {t.name: {k: _clean(v) for k, v in
                                                  t.evaluation.metrics.items()}
                                         for t in result.trained}},
        "calibration": {t.name: getattr(t.model, "calibration_", None) for t in result.trained},
        "monotone": extras.get("monotone", {}),
        "decision": extras.get("decision"),
        "tuned_from": extras.get("tuned_from", {}),
        "latency_budget_us": extras.get("latency_budget_us"),
        "monotone_rule": extras.get("monotone_rule"),
        "sources": extras.get("sources") or {},
        "scorecard": next(({**t.model.points_table(),
                            "reasons_agreement": t.reasons_agreement}
                           for t in result.trained if hasattr(t.model, "points_table")), None),
        "leakage": [{"attribute": lk.attribute, "score": round(lk.score, 6),
                     "used": lk.attribute in used} for lk in result.leakage],
        "features": used,
        "champion": champion,
        "onnx_parity_max_abs_diff": max((t.parity for t in result.trained), default=0.0),
        "onnx_parity": {t.name: t.parity for t in result.trained},
        "warning": leak_warning(result, used),
        "report_dir": str(result.report_dir),
    }


def _sources_line(sources: dict[str, int]) -> list[str]:
    """"- rows: 2,400 from the store (57%), 1,800 from loans.csv (43%)" when learnt from several
    sources (learning from the store), else nothing."""
    total = sum(sources.values())
    if not total:
        return []
    parts = [f"{n:,} from {name} ({n / total:.0%})" for name, n in sources.items() if n]
    return [f"- rows learnt from: {', '.join(parts)}"]


def write_report(result: LearnResult, *, prof: Profile, allow_leaky: bool,
                 used: list[str], stages: StageLog | None = None) -> dict[str, Any]:
    """Write report.md, the PNG figures, profile.json and summary.json; return the summary.
    The stages timed so far (``stages``) go in both; :func:`finish_report` adds the last."""
    out = result.report_dir
    out.mkdir(parents=True, exist_ok=True)
    evals = [t.evaluation for t in result.trained]
    title = f"{result.name}: {result.schema.target} on the 30% evaluation split (ONNX graphs)"
    plots.confusion_matrices(evals, out / "confusion_matrices.png", title=title)
    for t in result.trained:
        hist = getattr(t.model, "history_", None)
        if hist:
            plots.training_curves(hist, out / f"training_curves_{t.name}.png", title=t.name,
                                  step="boosting round" if t.name == "gbdt" else "epoch")
    if result.y_eval is not None:
        curves = {t.name: plots.reliability_curve(result.y_eval, t.eval_proba)
                  for t in result.trained}
        plots.reliability(curves, out / "reliability.png", title=f"{result.name}: calibration")
    (out / "profile.json").write_text(json.dumps(prof.to_dict(), indent=1, default=str))
    summary = build_summary(result, used=used)
    summary["information_value"] = {a.name: {"iv": a.iv, "band": a.iv_band}
                                    for a in prof.attributes if a.iv is not None}
    if summary["scorecard"] is not None:  # the points table as its own artifact (MLflow too)
        (out / "scorecard.json").write_text(json.dumps(summary["scorecard"], indent=1))
    rule = (result.extras or {}).get("decision")
    if result.schema.task == "binary" and result.y_eval is not None and rule:
        table = report_threshold.at_threshold(result.trained, result.y_eval, rule)
        report_threshold.figure(result.trained, table, out,
                                title=f"{result.name}: at each model's decline threshold")
        summary["at_threshold"] = {n: {k: v for k, v in m.items() if k != "confusion"}
                                   for n, m in table.items()}
    summary["stages"] = stages.as_dicts() if stages is not None else []
    summary["checked_rows"] = (result.extras or {}).get("checked_rows")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(_markdown(result, summary, evals))
    return summary


def finish_report(result: LearnResult, stages: StageLog) -> None:
    """Once the report stage itself is timed: every stage in the summary and the report."""
    result.summary["stages"] = stages.as_dicts()
    result.summary["peak_rss_mib"] = stages.peak_rss_mib()
    out = result.report_dir
    if (out / "summary.json").exists():
        (out / "summary.json").write_text(json.dumps(result.summary, indent=1))
    if (out / "report.md").exists():  # the stage table goes last: it holds the report's own
        text = (out / "report.md").read_text().rstrip("\n")
        (out / "report.md").write_text(
            text + "\n\n" + "\n".join(stages_markdown(result.summary["stages"])))


def _markdown(result: LearnResult, summary: dict[str, Any], evals: list[Any]) -> str:
    lines = [f"# loanrisk report: {result.name}", ""]
    if summary["warning"]:
        lines += [f"> **{summary['warning']}**", ""]
    champ = summary["champion"]
    lines += [
        f"- target: `{result.schema.target}` ({result.schema.task}, classes "
        f"{', '.join(result.schema.classes)})",
        f"- features used: {len(summary['features'])}",
        f"- primary metric: {summary['primary_metric']} (every figure below comes from running "
        "the exported ONNX graph on the evaluation split)",
        f"- best model: **{champ['model']}**, registered as version {champ['version']}; "
        f"champion: {'promoted' if champ['promoted'] else 'not promoted'}"
        + (f" ({champ.get('reason')})" if champ.get("reason") else ""),
        f"- ONNX parity (max abs difference of probabilities): "
        f"{summary['onnx_parity_max_abs_diff']:.2e}",
        *_sources_line(summary["sources"]),
        "",
        "## Models (the majority baseline shows what no skill looks like)",
        "",
        comparison_table(evals, primary=summary["primary_metric"]),
        "",
    ]
    maj = summary["models"].get("majority")
    if maj:
        for name, m in summary["models"].items():
            beaten = m["accuracy"] is not None and m["accuracy"] <= maj["accuracy"]
            if name != "majority" and beaten:
                lines.append(f"- note: {name}'s accuracy {m['accuracy']:.4f} does not beat always "
                             f"answering the majority class ({maj['accuracy']:.4f}).")
    if summary.get("at_threshold"):
        lines += ["", *report_threshold.markdown(summary["at_threshold"],
                                                 result.extras["decision"])]
    lines += ["", *_cost_markdown(summary)]
    lines += ["", *quality_markdown(result, summary)]
    lines += ["", "## Leakage check", ""]
    checked = summary.get("checked_rows") or {}
    if checked.get("leakage") and checked["leakage"] < checked.get("table", 0):
        lines += [f"Checked on a seeded sample of {checked['leakage']:,} of the "
                  f"{checked['table']:,} rows, stratified by class.", ""]
    if summary["leakage"]:
        for lk in summary["leakage"]:
            used = "USED as a feature" if lk["used"] else "not used (post-decision or excluded)"
            lines.append(f"- `{lk['attribute']}` alone scores {lk['score']:.4f}: {used}")
    else:
        lines.append("- no single attribute predicts the target almost perfectly.")
    lines += ["", "## Figures", "", "![confusion matrices](confusion_matrices.png)", ""]
    for t in result.trained:
        if getattr(t.model, "history_", None):
            lines += [f"![training curves {t.name}](training_curves_{t.name}.png)", ""]
    if (result.report_dir / "reliability.png").exists():
        lines += ["![reliability](reliability.png)", ""]
    return "\n".join(lines)


def _cost_markdown(summary: dict[str, Any]) -> list[str]:
    """The serving-cost table: each graph scoring one application with reasons, as served."""
    models = {n: m for n, m in summary["models"].items() if "score_p50_us" in m}
    if not models:
        return []
    budget = summary.get("latency_budget_us")
    lines = ["## Serving cost", "",
             "Each model's graph scoring one application with its reasons (the application and "
             "one reference variant per attribute, in one onnxruntime call, one thread), as the "
             "decision service runs it, on evaluation rows; this machine, this run."
             + (f" The champion was chosen among the models within {budget:g} µs (p50)."
                if budget else ""),
             "", "| model | p50 µs | p99 µs | graph KiB |" + (" within budget |" if budget else ""),
             "|---|---:|---:|---:|" + ("---|" if budget else "")]
    for name, m in models.items():
        row = (f"| {name} | {m['score_p50_us']:.0f} | {m['score_p99_us']:.0f} | "
               f"{m['graph_kib']:.0f} |")
        if budget:
            row += " yes |" if m["score_p50_us"] <= budget else " no |"
        lines.append(row)
    return lines
