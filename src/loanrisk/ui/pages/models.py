"""Models: versions and their metrics, the learn reports, comparisons, and the promotion gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import streamlit as st

from loanrisk.errors import UI_WORDS, LoanriskError, reword
from loanrisk.registry import PromotionResult
from loanrisk.ui import common, data, points

GATE_MESSAGE = "gate_message"


def _versions(p: common.Picked) -> None:
    st.subheader("Versions")
    frame = data.versions_frame(p.versions)
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={"champion": st.column_config.CheckboxColumn("champion")})


def _report(p: common.Picked) -> None:
    st.subheader("Report")
    reports = data.list_reports(common.settings(), p.name)
    if not reports:
        st.info(f"No report for {p.name} in this home (reports are written by `loanrisk learn`).")
        return
    idx = st.selectbox(
        "Report", range(len(reports)), key=f"report:{p.name}",
        format_func=lambda i: f"{reports[i].stamp} · v{reports[i].version} ({reports[i].best})"
        + (" · latest" if i == 0 else ""))
    report = reports[idx]
    with st.container(border=True):
        for kind, body in data.report_blocks(report.path):
            if kind == "image":
                # figures at their own size (confusion matrices: counts must stay legible),
                # never wider than the page
                st.image(body, width=_image_width(body))
            else:
                st.markdown(body)
    st.caption(f"{report.path}")


def _image_width(path: object) -> int | Literal["stretch"]:
    """The PNG's own width in pixels ("stretch" when it cannot be read)."""
    try:
        with open(str(path), "rb") as fh:
            head = fh.read(24)
        return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" \
            else "stretch"
    except OSError:
        return "stretch"


def _compare(p: common.Picked) -> None:
    st.subheader("Compare two versions")
    if len(p.versions) < 2:
        st.caption("Only one version so far: learn again to compare.")
        return
    labels = [common.label(v) for v in p.versions]
    c1, c2 = st.columns(2)
    a = c1.selectbox("Version A", range(len(labels)), index=len(labels) - 2,
                     format_func=labels.__getitem__,
                     key=f"cmp_a:{p.name}:{common.aliases_key(p.versions)}")
    b = c2.selectbox("Version B", range(len(labels)), index=len(labels) - 1,
                     format_func=labels.__getitem__,
                     key=f"cmp_b:{p.name}:{common.aliases_key(p.versions)}")
    st.dataframe(data.compare(p.versions[a], p.versions[b]), width="stretch")
    st.caption("roc_auc, accuracy, f1: higher is better · log_loss, brier, ece: lower is better")


def _promote(name: str, version: int, force: bool) -> None:
    _run_gate(lambda: common.registry().promote(name, version, force=force))
    st.session_state[f"force:{name}"] = False  # skipping the gate is one decision, not a mode


def _rollback(name: str) -> None:
    _run_gate(lambda: common.registry().rollback(name))


def _run_gate(action: Callable[[], PromotionResult]) -> None:
    """Button callback: run the gate and keep its answer for the next rerun."""
    try:
        res = action()
        st.session_state[GATE_MESSAGE] = ("success" if res.promoted else "warning",
                                          f"v{res.version}: "
                                          f"{'champion' if res.promoted else 'refused'} — "
                                          f"{reword(res.reason, UI_WORDS)}")
    except LoanriskError as exc:
        st.session_state[GATE_MESSAGE] = ("error", reword(str(exc), UI_WORDS))



def _gate(p: common.Picked) -> None:
    st.subheader("Promote or roll back")
    st.caption("Promotion goes through the gate: the candidate must beat the champion's "
               "primary metric on the candidate's own evaluation split (both ONNX graphs).")
    labels = [common.label(v) for v in p.versions]
    c1, c2, c3 = st.columns([3, 1, 2], vertical_alignment="bottom")
    idx = c1.selectbox("Candidate", range(len(labels)), index=len(labels) - 1,
                       format_func=labels.__getitem__,
                       key=f"candidate:{p.name}:{common.aliases_key(p.versions)}")
    force = c2.checkbox("force", key=f"force:{p.name}", help="Skip the gate (recorded).")
    with c3:
        b1, b2 = st.columns(2)
        b1.button("Promote", type="primary", on_click=_promote,
                  args=(p.name, p.versions[idx].version, force), key="promote")
        b2.button("Roll back", on_click=_rollback, args=(p.name,), key="rollback")
    message = st.session_state.pop(GATE_MESSAGE, None)
    if message:
        kind, text = message
        getattr(st, kind)(text)


def render() -> None:
    """The Models page."""
    st.title("Models")
    p = common.picked()
    if p is None:
        common.empty_state()
        return
    champ = next((v for v in p.versions if "champion" in v.aliases), None)
    st.caption(f"{p.name}: {len(p.versions)} version(s) · champion: "
               + (f"v{champ.version} ({champ.model})" if champ else "none"))
    _versions(p)
    _gate(p)
    _compare(p)
    points.render(p.versions, p.name)
    _report(p)


if __name__ == "__main__":
    render()
