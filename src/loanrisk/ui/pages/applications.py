"""Applications: what the decision service stored (decisions, tiers) and drift of recent traffic."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loanrisk.config import Settings
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


def _channels(apps: pd.DataFrame, settings: Settings) -> None:
    """Requests, refusals and decisions per channel and day (the role API-gateway logs played):
    stored decisions from the page's applications, refusals from the store's access audit."""
    st.subheader("Channels")
    since = pd.to_datetime(apps["created_at"], utc=True).min()
    try:
        refused = data.refused_submissions(settings, since=since.to_pydatetime())
    except Exception as exc:  # an older store without the audit table
        st.caption(f"Refused submissions unavailable ({type(exc).__name__})")
        refused = pd.DataFrame(columns=["at", "channel"])
    daily = data.channel_daily(apps, refused)
    totals = daily.groupby("channel")[["requests", "refusals", "decisions"]].sum().reset_index()
    st.bar_chart(totals, x="channel", y=["decisions", "refusals"], stack=True, height=240)
    st.dataframe(daily, hide_index=True, width="stretch")


def _table(apps: pd.DataFrame) -> None:
    show_raw = st.toggle("Show applicant attribute values", value=False,
                         help="Off by default: raw attributes are personal data.")
    frame = apps.drop(columns=HIDDEN).rename(columns={"created_at": "created (UTC)"})
    if show_raw:  # one column per attribute and per class probability, not dicts in a cell
        attrs = pd.json_normalize(apps["attributes"].tolist()).set_index(apps.index)
        probs = pd.json_normalize(apps["probabilities"].tolist()).set_index(apps.index)
        for col in attrs.columns:  # numbers stay numbers (sorting, alignment); the rest text
            numeric = pd.to_numeric(attrs[col], errors="coerce")
            attrs[col] = numeric if numeric.notna().sum() == attrs[col].notna().sum() \
                else attrs[col].astype("string")
        frame = pd.concat([frame, attrs, probs.add_prefix("p_")], axis=1)
    st.dataframe(frame, hide_index=True, width="stretch")


def _drift(apps: pd.DataFrame, p: common.Picked | None) -> None:
    st.subheader("Drift")
    if p is None:
        st.caption("Drift compares recent applications with a model's training data: learn a "
                   "model first.")
        return
    mine = apps
    if mine.empty:
        st.caption(f"No stored applications were scored by {p.name} yet.")
        return
    try:
        table = data.drift_table(mine, common.manifest_of(p.version), common.settings())
    except Exception as exc:  # the monitor is optional and young: never take the page down
        st.warning(f"Drift could not be computed: {exc}")
        return
    if table is None:
        st.info("Drift monitoring is not part of this build (`loanrisk.watch.monitor` is not "
                "installed); decisions and tiers above are still current.")
        return
    st.caption(f"Population stability (PSI) of the {len(mine)} most recent applications scored "
               f"by {p.name} against v{p.version.version}'s training data · watch ≥ 0.1, "
               "alert ≥ 0.25")
    table = table.assign(attribute=table["attribute"].replace(
        {"__score__": "(predicted risk score)"}))
    st.bar_chart(table.head(15), x="attribute", y="psi", sort="-psi", height=280)
    st.dataframe(table, hide_index=True, width="stretch")


def render() -> None:
    """The Applications page."""
    st.title("Applications")
    settings = common.settings()
    limit = st.select_slider("Most recent", options=[100, 500, 1000, 5000], value=500)
    p = common.picked()
    try:  # the sidebar's model only: decisions, tiers and thresholds differ between models
        apps = data.recent_applications(settings, limit=limit, model=p.name if p else None)
    except Exception as exc:  # a store that cannot be read should not take the app down
        st.error(f"Cannot read the application store: {exc}")
        return
    if apps.empty:
        st.info("No applications stored yet" + (f" for {p.name}" if p else "") + ". Start the "
                "decision service (`loanrisk serve`) and send applications to "
                "`POST /v1/applications`.", icon=":material/info:")
        return
    newest = pd.Timestamp(apps["created_at"].max())
    newest = newest.tz_localize("UTC") if newest.tzinfo is None else newest.tz_convert("UTC")
    st.caption(f"{len(apps)} most recent applications" + (f" scored by {p.name}" if p else "")
               + f" · newest {newest:%Y-%m-%d %H:%M:%S} UTC")
    _counts(apps)
    _channels(apps, settings)
    _table(apps)
    _drift(apps, p)


if __name__ == "__main__":
    render()
