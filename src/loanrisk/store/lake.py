"""The lake and warehouse: stored applications and outcomes as Parquet by day, DuckDB over it.

Layout (under ``settings.lake_dir``)::

    applications/day=YYYY-MM-DD/part-0.parquet   one row per application with its decision
    outcomes/day=YYYY-MM-DD/part-0.parquet       one row per recorded outcome

Export rewrites each day's file whole (written to a temporary name, then renamed), so
re-exporting is idempotent and a reader never sees half a file. ``sql`` answers DuckDB SQL over
the views ``applications``, ``outcomes``, ``audit`` (who, when, what: never the details) and
``channel_daily`` (requests, refusals and decisions per channel and day) (the Athena/Redshift
role).

When the store encrypts (a keyring is configured) the lake is written encrypted too, unless
``clear=True``: each day's Parquet file is sealed whole with the active data key (AES-256-GCM,
the key id in the file's first line, the file's place ``<view>/day=...`` as associated data, so
a file moved to another day fails to open) as ``part-0.parquet.enc``. ``sql`` opens sealed
files in memory (never written back to disk in clear) and queries them as the same views.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError
from loanrisk.store import Store
from loanrisk.store.crypto import SET_KEYS, KeyProblem, Keyring, keyring
from loanrisk.store.tables import Application, AuditEntry, Outcome

APP_SCHEMA = pa.schema([
    ("id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")), ("channel", pa.string()),
    ("api_key_id", pa.string()), ("applicant_id", pa.string()), ("external_ref", pa.string()),
    ("decision", pa.string()), ("risk_score", pa.float64()), ("risk_tier", pa.string()),
    ("probabilities", pa.string()), ("reasons", pa.string()), ("attributes", pa.string()),
    ("model_name", pa.string()), ("model_version", pa.int64()), ("model_sha256", pa.string()),
    ("served_by", pa.string()),
])
OUTCOME_SCHEMA = pa.schema([
    ("application_id", pa.string()), ("outcome", pa.string()), ("source", pa.string()),
    ("recorded_at", pa.timestamp("us", tz="UTC")),
])
AUDIT_SCHEMA = pa.schema([  # the audit's who/when/what, never its details
    ("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")), ("action", pa.string()),
    ("key_id", pa.string()), ("channel", pa.string()), ("endpoint", pa.string()),
    ("status", pa.int64()),
])
VIEWS = (("applications", APP_SCHEMA), ("outcomes", OUTCOME_SCHEMA), ("audit", AUDIT_SCHEMA))
# requests, refusals and decisions per channel and day (the API-gateway logs' role): decisions
# are stored applications, refusals the audit's refused submissions (4xx to POST
# /v1/applications or /v1/score; "(no key)" when no valid key was given), requests both
CHANNEL_DAILY = """
CREATE VIEW channel_daily AS
WITH d AS (
  SELECT channel, CAST(day AS DATE) AS day, count(*) AS decisions,
         count(*) FILTER (WHERE decision = 'approve') AS approved,
         count(*) FILTER (WHERE decision = 'decline') AS declined
  FROM applications GROUP BY 1, 2),
r AS (
  SELECT coalesce(channel, '(no key)') AS channel, CAST(day AS DATE) AS day,
         count(*) AS refusals
  FROM audit WHERE action = 'submission refused' GROUP BY 1, 2)
SELECT coalesce(d.channel, r.channel) AS channel, coalesce(d.day, r.day) AS day,
       coalesce(d.decisions, 0) + coalesce(r.refusals, 0) AS requests,
       coalesce(r.refusals, 0) AS refusals, coalesce(d.decisions, 0) AS decisions,
       coalesce(d.approved, 0) AS approved, coalesce(d.declined, 0) AS declined
FROM d FULL OUTER JOIN r ON d.channel = r.channel AND d.day = r.day
"""


@dataclass
class ExportResult:
    """What an export wrote."""

    applications: int
    outcomes: int
    days: int
    lake_dir: Path
    encrypted: bool = False


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _app_row(a: Application) -> dict[str, Any]:
    return {"id": str(a.id), "created_at": _utc(a.created_at), "channel": a.channel,
            "api_key_id": str(a.api_key_id), "applicant_id": a.applicant_id,
            "external_ref": a.external_ref, "decision": a.decision, "risk_score": a.risk_score,
            "risk_tier": a.risk_tier, "probabilities": json.dumps(a.probabilities),
            "reasons": json.dumps(a.reasons), "attributes": json.dumps(a.attributes),
            "model_name": a.model_name, "model_version": a.model_version,
            "model_sha256": a.model_sha256, "served_by": a.served_by}


CLEAR, SEALED = "part-0.parquet", "part-0.parquet.enc"


def _context(part: Path) -> str:
    """A sealed file's associated data: its view and day (``applications/day=...``)."""
    return f"loanrisk-lake:{part.parent.name}/{part.name}"


def _write_days(base: Path, rows: list[dict[str, Any]], schema: pa.Schema, ts: str,
                ring: Keyring | None) -> set[str]:
    by_day: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_day.setdefault(r[ts].strftime("%Y-%m-%d"), []).append(r)
    base.mkdir(parents=True, exist_ok=True)
    for day, day_rows in by_day.items():
        part = base / f"day={day}"
        part.mkdir(exist_ok=True)
        tmp = part / f".part-0.{os.getpid()}.tmp"
        table = pa.Table.from_pylist(day_rows, schema=schema)
        if ring is None:
            pq.write_table(table, tmp)
        else:  # sealed whole, in memory: the clear file never touches the disk
            buf = pa.BufferOutputStream()
            pq.write_table(table, buf)
            tmp.write_bytes(ring.seal_bytes(buf.getvalue().to_pybytes(), _context(part)))
        name, other = (CLEAR, SEALED) if ring is None else (SEALED, CLEAR)
        os.replace(tmp, part / name)
        (part / other).unlink(missing_ok=True)  # the day's file from an export the other way
    for stale in base.glob("day=*"):  # days with no rows any more (a store was reset)
        if stale.name.removeprefix("day=") not in by_day:
            shutil.rmtree(stale, ignore_errors=True)
    return set(by_day)


def export(settings: Settings | None = None, *, store: Store | None = None,
           clear: bool = False) -> ExportResult:
    """Export every stored application and outcome to the lake (idempotent: same rows).

    Encrypted with the store's active data key when one is configured, unless ``clear``."""
    settings = settings or get_settings()
    ring = None if clear else keyring()
    own = store is None
    store = store or Store(settings.resolved_database_url)
    try:
        with store.session() as s:
            apps = [_app_row(a) for a in s.scalars(select(Application)
                                                   .order_by(Application.created_at))]
            outs = [{"application_id": str(o.application_id), "outcome": o.outcome,
                     "source": o.source, "recorded_at": _utc(o.recorded_at)}
                    for o in s.scalars(select(Outcome).order_by(Outcome.id))]
            audit = [{"id": e.id, "at": _utc(e.at), "action": e.action, "key_id": e.key_id,
                      "channel": e.channel, "endpoint": e.endpoint, "status": e.status}
                     for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    finally:
        if own:
            store.close()
    lake = settings.lake_dir
    days = _write_days(lake / "applications", apps, APP_SCHEMA, "created_at", ring)
    _write_days(lake / "outcomes", outs, OUTCOME_SCHEMA, "recorded_at", ring)
    _write_days(lake / "audit", audit, AUDIT_SCHEMA, "at", ring)
    return ExportResult(applications=len(apps), outcomes=len(outs), days=len(days),
                        lake_dir=lake, encrypted=ring is not None)


def _opened(view_dir: Path, schema: pa.Schema) -> pa.Table:
    """Every day of a view with sealed files, opened in memory, with its ``day`` column."""
    import io

    ring = keyring()
    if ring is None:
        raise KeyProblem(f"the lake under {view_dir.parent} is encrypted but no key is "
                         "configured: " + SET_KEYS)
    parts = []
    for path in sorted(view_dir.glob("day=*/part-0.parquet*")):
        if path.name == SEALED:
            where = f"lake file {path.parent.name}/{path.name}"
            data = io.BytesIO(ring.open_bytes(path.read_bytes(), _context(path.parent), where))
            table = pq.read_table(data, schema=schema)
        elif path.name == CLEAR:
            table = pq.read_table(path, schema=schema)
        else:
            continue
        day = datetime.strptime(path.parent.name.removeprefix("day="), "%Y-%m-%d").date()
        parts.append(table.append_column("day", pa.array([day] * table.num_rows,
                                                         pa.date32())))
    return pa.concat_tables(parts)


def connect(settings: Settings | None = None) -> Any:
    """An in-memory DuckDB connection with views ``applications`` and ``outcomes``."""
    import duckdb

    settings = settings or get_settings()
    lake = settings.lake_dir
    con = duckdb.connect(":memory:")
    for view, schema in VIEWS:
        if any((lake / view).glob(f"day=*/{SEALED}")):  # opened in memory only
            con.register(f"_{view}_opened", _opened(lake / view, schema))
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}_opened")
        elif any((lake / view).glob("day=*/*.parquet")):
            glob = str(lake / view / "day=*" / "*.parquet").replace("'", "''")
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{glob}', "
                        "hive_partitioning = true, union_by_name = true)")
        else:  # an empty view with the right columns, so queries still run
            con.register(f"_{view}_empty", pa.Table.from_pylist([], schema=schema))
            con.execute(f"CREATE VIEW {view} AS SELECT *, NULL::DATE AS day "
                        f"FROM _{view}_empty")
    con.execute(CHANNEL_DAILY)
    return con


def sql(query: str, *, settings: Settings | None = None) -> pa.Table:
    """Run DuckDB SQL over the lake; LoanriskError with DuckDB's message when it fails."""
    import duckdb

    con = connect(settings)
    try:
        rel = con.sql(query)
        if rel is None:  # a statement without rows
            return pa.table({})
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb >= 1.4 / older
        return fetch()
    except duckdb.Error as exc:
        raise LoanriskError(f"SQL failed: {str(exc).splitlines()[0]} (views: applications, "
                            "outcomes, audit, channel_daily; run `loanrisk export` to refresh "
                            "them)") from exc
    finally:
        con.close()
