"""Applications: what the decision service stored (decisions, tiers) and drift of recent traffic."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loanrisk.ui import common, data

TIERS = ["low", "medium", "high"]
HIDDEN = ["attributes", "probabilities"]


def _counts(apps: pd.DataFrame) -> None:
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Decisions**")
        counts = apps["decision"].value_counts().rename_axis("decision").reset_index()
        st.bar_chart(counts, x="decision", y="count", height=240)
    with c2:
        st.markdown("**Risk tiers**")
        tiers = apps["risk_tier"].value_counts().reindex(TIERS, fill_value=0)
        frame = tiers.rename_axis("tier").reset_index()
        st.bar_chart(frame, x="tier", y="count", sort=False, height=240)


def _table(apps: pd.DataFrame) -> None:
    show_raw = st.toggle("Show applicant attribute values", value=False,
                         help="Off by default: raw attributes are personal data.")
    frame = apps if show_raw else apps.drop(columns=HIDDEN)
    st.dataframe(frame, hide_index=True, width="stretch")


def _drift(apps: pd.DataFrame, p: common.Picked | None) -> None:
    st.subheader("Drift")
    if p is None:
        st.caption("Drift compares recent applications with a model's training data: learn a "
                   "model first.")
        return
    mine = apps[apps["model_name"] == p.name]
    if mine.empty:
        st.caption(f"No stored applications were scored by {p.name}.")
        return
    try:
        table = data.drift_table(mine, common.manifest_of(p.version), common.settings())
    except Exception as exc:  # the monitor is optional and young: never take the page down
        st.warning(f"Drift could not be computed: {exc}")
        return
    if table is None:
        st.info("Drift monitoring is not part of this build (`loanrisk.monitor` is not "
                "installed); decisions and tiers above are still current.")
        return
    st.caption(f"Population stability (PSI) of the {len(mine)} most recent applications scored "
               f"by {p.name} against v{p.version.version}'s training data · watch ≥ 0.1, "
               "alert ≥ 0.25")
    st.bar_chart(table.head(15), x="attribute", y="psi", sort="-psi", height=280)
    st.dataframe(table, hide_index=True, width="stretch")


def render() -> None:
    """The Applications page."""
    st.title("Applications")
    settings = common.settings()
    limit = st.select_slider("Most recent", options=[100, 500, 1000, 5000], value=500)
    try:
        apps = data.recent_applications(settings, limit=limit)
    except Exception as exc:  # a store that cannot be read should not take the app down
        st.error(f"Cannot read the application store: {exc}")
        return
    if apps.empty:
        st.info("No applications stored yet. Start the decision service (`loanrisk serve`) and "
                "send applications to `POST /v1/applications`.", icon=":material/info:")
        return
    st.caption(f"{len(apps)} most recent applications · newest {apps['created_at'].max()}")
    _counts(apps)
    _table(apps)
    _drift(apps, common.picked())


if __name__ == "__main__":
    render()
