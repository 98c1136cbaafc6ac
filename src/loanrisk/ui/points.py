"""The Models page's scorecard section: a scorecard version's points table, and one application's
points per attribute beside its maximum, with the reasons the service gives (points below
maximum)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from loanrisk.registry import VersionInfo
from loanrisk.ui import common


def points_frame(card: dict[str, Any]) -> pd.DataFrame:
    """The points table (attribute, bin, WoE, points, training rows)."""
    frame = pd.DataFrame(card.get("bins") or [],
                         columns=["attribute", "bin", "woe", "points", "rows"])
    return frame.rename(columns={"woe": "WoE", "rows": "training rows"})


def application_points(scorer: Any, record: dict[str, Any]) -> pd.DataFrame:
    """One application's points per attribute, its maximum and the points below it, largest
    shortfall first (what the reasons are read from)."""
    points = scorer.points_of([record]) or {}
    maximum = dict(zip((scorer.features[k] for k in scorer.points.columns.tolist()),
                       scorer.points.maximum.tolist(), strict=True))
    rows = [{"attribute": a, "value": record.get(a), "points": float(p[0]),
             "maximum": maximum[a], "below maximum": maximum[a] - float(p[0])}
            for a, p in points.items()]
    frame = pd.DataFrame(rows, columns=["attribute", "value", "points", "maximum",
                                        "below maximum"])
    frame["value"] = frame["value"].map(lambda v: "(not provided)" if v is None else str(v))
    return frame.sort_values("below maximum", ascending=False, kind="stable")


def render(versions: list[VersionInfo], name: str) -> None:
    """The section, shown when some version of ``name`` is a scorecard."""
    cards = [v for v in versions if v.model == "scorecard"]
    if not cards:
        return
    st.subheader("Scorecard points and reasons")
    labels = [common.label(v) for v in cards]
    idx = st.selectbox("Scorecard version", range(len(cards)), index=len(cards) - 1,
                       format_func=labels.__getitem__,
                       key=f"scorecard:{name}:{common.aliases_key(versions)}")
    info = cards[idx]
    manifest = common.manifest_of(info)
    card = manifest.get("scorecard") or {}
    if card:
        st.caption(f"{card['base_points']:g} points at {card['base_odds']:g}:1 odds (good:bad), "
                   f"{card['pdo']:g} points to double the odds. An applicant's score is the sum "
                   "of one bin's points per attribute; numeric bins are in raw units.")
        st.dataframe(points_frame(card), hide_index=True, width="stretch", height=300)
    scorer = common.scorer(info)
    if scorer.points is None:
        st.info(f"{common.label(info)}: this graph has no points output (learned before points "
                "reasons); relearn it for reasons by points.")
        return
    examples = (manifest.get("golden") or {}).get("inputs") or []
    if not examples:
        return
    i = st.selectbox("Application (evaluation rows)", range(len(examples)),
                     format_func=lambda k: f"evaluation row #{k + 1}",
                     key=f"scorecard_row:{name}:{info.version}")
    record = examples[i]
    decision = scorer.score([record])[0]
    frame = application_points(scorer, record)
    c1, c2, c3 = st.columns(3)
    c1.metric("Score (points)", f"{frame['points'].sum():.0f}")
    c2.metric("Decision", decision.decision)
    c3.metric("Risk tier", decision.risk_tier)
    st.markdown("**Reasons** (the attributes furthest below their maximum points):")
    st.markdown("\n".join(f"- {r}" for r in decision.reasons) or "- none")
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(c, format="%.1f")
        for c in ("points", "maximum", "below maximum")})
