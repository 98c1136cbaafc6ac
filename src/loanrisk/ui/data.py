"""What the UI reads: registered versions, reports, stored applications and drift (no Streamlit)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loanrisk.config import Settings
from loanrisk.registry import Registry, VersionInfo

LEARN_HINT = "run `loanrisk learn --dataset lending-club-grades` (or `make demo`)"
METRICS = ("roc_auc", "accuracy", "f1_macro", "f1_weighted", "log_loss", "brier", "ece")
IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)\s*$")


def has_registry(settings: Settings) -> bool:
    """Whether a registry exists (a tracking server is configured, or the embedded DB is there).

    Lets the empty state show without creating an MLflow database in a fresh home.
    """
    return not settings.tracking_uri_is_default or (settings.home / "mlflow.db").exists()


def list_models(registry: Registry) -> list[str]:
    """Registered model names, or [] when the embedded registry does not exist yet."""
    if not has_registry(registry.settings):
        return []
    return registry.list_models()


def created(stamp: str) -> str:
    """A version's creation time (ISO 8601, or epoch milliseconds) as 'YYYY-MM-DD HH:MM' UTC."""
    try:
        when = (datetime.fromtimestamp(int(stamp) / 1000, tz=UTC) if str(stamp).isdigit()
                else datetime.fromisoformat(str(stamp)).astimezone(UTC))
    except (TypeError, ValueError):
        return str(stamp)
    return when.strftime("%Y-%m-%d %H:%M")


def versions_frame(versions: list[VersionInfo]) -> pd.DataFrame:
    """One row per version: model kind, metrics, champion flag, hash prefix, creation time."""
    rows = []
    for v in versions:
        row: dict[str, Any] = {"version": v.version, "model": v.model,
                               "champion": "champion" in v.aliases}
        row.update({m: v.metrics.get(m) for m in METRICS})
        row.update({"sha256": v.sha256[:12], "created (UTC)": created(v.created_at)})
        rows.append(row)
    return pd.DataFrame(rows)


def compare(a: VersionInfo, b: VersionInfo) -> pd.DataFrame:
    """Metrics of two versions side by side, with b - a (lower is better for losses)."""
    names = [m for m in METRICS if m in a.metrics or m in b.metrics]
    frame = pd.DataFrame({f"v{a.version} ({a.model})": [a.metrics.get(m) for m in names],
                          f"v{b.version} ({b.model})": [b.metrics.get(m) for m in names]},
                         index=names)
    frame[f"v{b.version} - v{a.version}"] = frame.iloc[:, 1] - frame.iloc[:, 0]
    return frame


@dataclass(frozen=True)
class Report:
    """One `learn` report directory."""

    stamp: str
    path: Path
    version: int | None
    best: str | None


def list_reports(settings: Settings, name: str) -> list[Report]:
    """Reports of a model, newest first (version and best model read from summary.json)."""
    root = settings.reports_dir / name
    if not root.is_dir():
        return []
    out = []
    for d in sorted((p for p in root.iterdir() if (p / "report.md").exists()), reverse=True):
        try:
            champ = json.loads((d / "summary.json").read_text()).get("champion", {})
        except (OSError, json.JSONDecodeError):
            champ = {}
        out.append(Report(d.name, d, champ.get("version"), champ.get("model")))
    return out


def report_blocks(report_dir: Path) -> list[tuple[str, str]]:
    """report.md as ("markdown", text) and ("image", path) blocks, in the report's order."""
    blocks: list[tuple[str, str]] = []
    text: list[str] = []
    for line in (report_dir / "report.md").read_text().splitlines():
        m = IMAGE.match(line.strip())
        if m and (report_dir / m["src"]).exists():
            if text:
                blocks.append(("markdown", "\n".join(text)))
                text = []
            blocks.append(("image", str(report_dir / m["src"])))
        else:  # the report's headings sit two levels down inside the page
            text.append("##" + line if line.startswith("#") else line)
    if text:
        blocks.append(("markdown", "\n".join(text)))
    return blocks


def store_url(settings: Settings) -> str | None:
    """The store's URL, or None when the embedded SQLite store has not been created yet."""
    if settings.database_url:
        return settings.database_url
    path = settings.home / "loanrisk.db"
    return settings.resolved_database_url if path.exists() else None


def recent_applications(settings: Settings, *, limit: int = 500,
                        model: str | None = None) -> pd.DataFrame:
    """The newest stored applications (decision columns, plus raw attributes and probabilities).

    Columns: id, created_at, channel, model_name, model_version, served_by, decision,
    risk_tier, risk_score, reasons, and (kept for drift, hidden by default) attributes,
    probabilities. Empty frame when there is no store yet.
    """
    url = store_url(settings)
    cols = ["id", "created_at", "channel", "model_name", "model_version", "served_by",
            "decision", "risk_tier", "risk_score", "reasons", "attributes", "probabilities"]
    if url is None:
        return pd.DataFrame(columns=cols)
    from sqlalchemy import select

    from loanrisk.store import Store
    from loanrisk.store.tables import Application

    store = Store(url, upgrade=False)
    try:
        query = select(Application).order_by(Application.created_at.desc()).limit(limit)
        if model:
            query = query.where(Application.model_name == model)
        with store.session() as s:
            rows = list(s.scalars(query))
    finally:
        store.close()
    return pd.DataFrame([{
        "id": str(r.id)[:8], "created_at": r.created_at, "channel": r.channel,
        "model_name": r.model_name, "model_version": r.model_version, "served_by": r.served_by,
        "decision": r.decision, "risk_tier": r.risk_tier, "risk_score": r.risk_score,
        "reasons": "; ".join(r.reasons or []), "attributes": r.attributes,
        "probabilities": r.probabilities,
    } for r in rows], columns=cols)


def refused_submissions(settings: Settings, *, since: Any) -> pd.DataFrame:
    """Refused submissions (4xx to POST /v1/applications or /v1/score) since ``since``, from
    the store's access audit: columns at, channel ("(no key)" without a valid key)."""
    url = store_url(settings)
    if url is None:
        return pd.DataFrame(columns=["at", "channel"])
    from loanrisk.store import Store
    from loanrisk.store.audit import entries

    store = Store(url, upgrade=False)
    try:
        rows = entries(store.engine, since=since, action="submission refused", limit=100_000)
    finally:
        store.close()
    return pd.DataFrame([{"at": r.at, "channel": r.channel or "(no key)"} for r in rows],
                        columns=["at", "channel"])


def channel_daily(apps: pd.DataFrame, refused: pd.DataFrame) -> pd.DataFrame:
    """Requests, refusals and decisions per channel and day (UTC), as the lake's
    ``channel_daily`` view counts them: requests = stored decisions + refused submissions."""
    cols = ["channel", "day", "requests", "refusals", "decisions", "approved", "declined"]
    if apps.empty and refused.empty:
        return pd.DataFrame(columns=cols)

    def _day(ts: pd.Series) -> pd.Series:
        t = pd.to_datetime(ts, utc=True)
        return t.dt.strftime("%Y-%m-%d")

    a = apps.assign(day=_day(apps["created_at"])) if not apps.empty else \
        pd.DataFrame(columns=["channel", "day", "decision"])
    d = a.groupby(["channel", "day"]).agg(
        decisions=("decision", "size"),
        approved=("decision", lambda s: int((s == "approve").sum())),
        declined=("decision", lambda s: int((s == "decline").sum())))
    r = (refused.assign(day=_day(refused["at"])).groupby(["channel", "day"]).size()
         .rename("refusals") if not refused.empty else pd.Series(name="refusals", dtype=int))
    out = d.join(r, how="outer").fillna(0).astype(int).reset_index()
    out["requests"] = out["decisions"] + out["refusals"]
    return out[cols].sort_values(["day", "channel"], ascending=[False, True])


def drift_table(apps: pd.DataFrame, manifest: dict[str, Any], settings: Settings
                ) -> pd.DataFrame | None:
    """PSI per attribute of these applications against the version's training data.

    None when ``loanrisk.watch.monitor`` is not installed in this build. Columns: attribute, psi,
    level; worst first. ``__score__`` is the predicted probability of the worst class.
    """
    try:
        from loanrisk.watch import monitor
    except ImportError:
        return None
    attrs = pd.DataFrame(list(apps["attributes"]))
    last = str(manifest["classes"][-1])
    scores = [float((p or {}).get(last, float("nan"))) for p in apps["probabilities"]]
    result = monitor.drift(attrs, pd.Series(scores).to_numpy(), manifest, settings=settings)
    frame = pd.DataFrame([{"attribute": k, "psi": v.psi, "level": v.level}
                          for k, v in result.items()])
    return frame.sort_values("psi", ascending=False, ignore_index=True) if len(frame) else frame
