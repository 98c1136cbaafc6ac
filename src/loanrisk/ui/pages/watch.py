"""Watch: how the served model does once outcomes arrive, its challenger, fairness and replay.

The same functions as `loanrisk performance`, `compare`, `fairness` and `replay`, for the model
picked in the sidebar. Each section says what to do when it has nothing to show yet.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from loanrisk.errors import LoanriskError
from loanrisk.ui import common, data

WINDOWS = {"7 days": "7d", "30 days": "30d", "90 days": "90d", "everything": None}


def _performance(name: str, since: str | None, settings: Any) -> None:
    from loanrisk.watch.performance import as_frame, performance

    st.subheader("Live performance")
    try:
        report = performance(model=name, since=since, settings=settings)
    except LoanriskError as exc:
        st.info(f"{exc}", icon=":material/info:")
        return
    frame = as_frame(report)
    if frame.empty:
        st.info("Outcomes are recorded, but none matches a class of the versions that decided "
                f"them ({report.unlabelled_outcomes} unmatched).", icon=":material/info:")
        return
    st.caption(f"ROC-AUC per ISO week on the applications whose outcome is known, against each "
               f"version's evaluation-time ROC-AUC; an alert when a week with enough outcomes "
               f"falls more than {report.margin:.2f} below it.")
    frame["series"] = "v" + frame["version"].astype(str)
    live = frame.pivot_table(index="week", columns="series", values="roc_auc")
    at_eval = frame.pivot_table(index="week", columns="series", values="eval_roc_auc")
    chart = live.join(at_eval.add_suffix(" at evaluation"))
    if chart.notna().any().any():
        st.line_chart(chart, height=260)
    st.dataframe(frame.drop(columns=["series"]).rename(columns={
        "labelled": "outcomes", "roc_auc": "ROC-AUC", "eval_roc_auc": "ROC-AUC at evaluation",
        "adverse_rate": "worst-class rate"}), hide_index=True, width="stretch")
    for alert in report.alerts:
        st.error(alert, icon=":material/warning:")
    if not report.alerts:
        st.success(f"No week fell more than {report.margin:.2f} below its evaluation-time "
                   "ROC-AUC.", icon=":material/check_circle:")


def _challenger(name: str, since: str | None, settings: Any, classes: list[str]) -> None:
    from loanrisk.watch.compare import compare

    st.subheader("Champion vs challenger")
    try:
        rows = compare(model=name, classes=classes, since=since, settings=settings)
    except LoanriskError as exc:
        st.info(f"{exc}", icon=":material/info:")
        return
    frame = pd.DataFrame([r.to_dict() for r in rows]).drop(columns=["roles"])
    st.caption("The same applications scored by the champion and by a shadow or canary "
               "challenger (`loanrisk serve --challenger-mode ...`).")
    st.dataframe(frame.rename(columns={
        "mean_abs_adverse_diff": "mean |Δ P(worst class)|", "labelled": "outcomes"}),
        hide_index=True, width="stretch")


def _fairness(p: common.Picked, settings: Any) -> None:
    from loanrisk.registry.fairness import version_fairness

    st.subheader("Fairness")
    model_dir = common.model_dir(p.version)
    try:
        found = version_fairness(model_dir, pd.read_parquet(model_dir / "eval.parquet"),
                                 settings=settings)
    except (OSError, LoanriskError) as exc:
        st.warning(f"Fairness could not be computed for v{p.version.version}: {exc}")
        return
    if not found:
        st.caption(f"v{p.version.version}'s schema marks no protected attribute present in its "
                   "evaluation data (give one `\"protected\": true` in the schema).")
        return
    st.caption(f"Approval rate per group on v{p.version.version}'s evaluation split, at its "
               "decline threshold; the adverse-impact ratio is the lowest rate over the "
               f"highest (the gate wants ≥ {settings.fairness_min_ratio:.2f}).")
    for f in found:
        ok = f.ratio >= settings.fairness_min_ratio
        (st.success if ok else st.error)(f.describe())
        st.dataframe(pd.DataFrame({"group": list(f.approval_rates),
                                   "approval rate": list(f.approval_rates.values()),
                                   "applications": [f.counts[g] for g in f.approval_rates]}),
                     hide_index=True)


def _replay(name: str, since: str | None, settings: Any) -> None:
    from loanrisk.watch.replay import replay

    st.subheader("Decision replay")
    st.caption("Re-score the stored applications of the window with the very version that "
               "decided them: the decisions, reasons and probabilities must come out the same.")
    if not st.button("Replay", key="replay", icon=":material/replay:"):
        return
    try:
        report = replay(model=name, since=since, settings=settings)
    except LoanriskError as exc:
        st.info(f"{exc}", icon=":material/info:")
        return
    versions = ", ".join(f"v{v}: {n:,}" for v, n in sorted(report.versions.items()))
    text = (f"{report.identical:,} of {report.checked:,} decisions replayed identically "
            f"({versions}; largest probability difference {report.max_probability_diff:.1e}; "
            f"{report.seconds:.1f} s)")
    if report.ok:
        st.success(text, icon=":material/check_circle:")
    else:
        st.error(f"{text}: {report.mismatch_count:,} differ", icon=":material/warning:")
        st.dataframe(pd.DataFrame([vars(m) for m in report.mismatches]).astype(str),
                     hide_index=True, width="stretch")


def _record_outcomes(url: str) -> None:
    """Upload a servicing or audit file; check every row, then record the good ones."""
    from loanrisk.datasets import read_upload
    from loanrisk.store import Store
    from loanrisk.store.outcome_import import load_outcomes

    st.subheader("Record outcomes")
    st.caption("A servicing or audit file (CSV or Parquet): application_id or external_ref, "
               "outcome; optional source and recorded_at. The rules of `loanrisk outcomes "
               "load`: every row is checked first, rows already recorded are skipped.")
    upload = st.file_uploader("Outcomes file", type=["csv", "gz", "parquet"],
                              key="outcomes_file")
    if upload is None:
        return
    store = Store(url)
    try:
        frame = read_upload(upload, upload.name)
        check = load_outcomes(store, frame, where=upload.name, source="ui",
                              skip_invalid=True, dry_run=True)
        bad = len({p["row"] for p in check.rejected})
        st.write(f"{check.recorded:,} new outcome(s) for {check.applications:,} application(s) "
                 f"in {check.rows:,} row(s); {check.unchanged:,} already recorded; {bad:,} "
                 "row(s) cannot be recorded.")
        if check.rejected:
            st.dataframe(pd.DataFrame(check.rejected), hide_index=True, width="stretch")
        if check.recorded and st.button(f"Record {check.recorded:,} outcome(s)",
                                        key="record_outcomes", icon=":material/save:"):
            done = load_outcomes(store, frame, where=upload.name, source="ui",
                                 skip_invalid=True)
            st.success(f"recorded {done.recorded:,} outcome(s) for {done.applications:,} "
                       "application(s)", icon=":material/check_circle:")
    except LoanriskError as exc:
        st.error(f"{exc}", icon=":material/error:")
    finally:
        store.close()


def render() -> None:
    """The Watch page."""
    st.title("Watch")
    p = common.picked()
    if p is None:
        common.empty_state()
        return
    settings = common.settings()
    label = st.segmented_control("Window", list(WINDOWS), default="30 days") or "30 days"
    since = WINDOWS[label]
    if data.store_url(settings) is None:
        st.info("No application store yet: start the decision service (`loanrisk serve`) and "
                "send applications; outcomes come later through "
                "`POST /v1/applications/{id}/outcome`.", icon=":material/info:")
        _fairness(p, settings)
        return
    _performance(p.name, since, settings)
    classes = [str(c) for c in common.manifest_of(p.version)["classes"]]
    _challenger(p.name, since, settings, classes)
    _fairness(p, settings)
    _replay(p.name, since, settings)
    _record_outcomes(str(data.store_url(settings)))


if __name__ == "__main__":
    render()
