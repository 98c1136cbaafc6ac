"""Reading stored applications (and their outcomes) for monitoring, replay and retraining.

Reads the store's tables with plain SQL through SQLAlchemy (SQLite or PostgreSQL). JSON columns
are fetched as text and parsed in one vectorised call (``pd.read_json(lines=True)``), which is
what keeps `loanrisk monitor` fast on millions of rows. Large windows are sampled in SQL
(Bernoulli on ``random()``, capped with LIMIT) so only about ``max_rows`` rows leave the database.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from loanrisk.errors import LoanriskError
from loanrisk.store.crypto import keyring, open_json, open_value
from loanrisk.store.outcomes import normalise, outcome_lookup

_SINCE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(since: str | None, *, now: datetime | None = None) -> datetime | None:
    """``7d`` / ``12h`` / ``30m`` / ``2w`` (ago) or an ISO date/time -> an aware UTC datetime.

    None stays None (no lower bound). LoanriskError on anything else.
    """
    if since is None or since == "":
        return None
    now = now or datetime.now(UTC)
    m = _SINCE.match(since)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        t = datetime.fromisoformat(since)
    except ValueError:
        raise LoanriskError(f"--since {since!r}: use a duration such as 7d, 12h, 2w or an ISO "
                            "date such as 2026-03-01") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _ts(t: datetime, engine: Engine) -> Any:
    """A bound timestamp the way the store wrote it (SQLite keeps naive UTC text)."""
    if engine.dialect.name == "sqlite":
        return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return t


def parse_json_column(texts: list[str | None] | pd.Series) -> pd.DataFrame:
    """JSON objects (one per row, as text) -> a frame, in one C-speed call; null rows -> NaN."""
    lines = ["{}" if t is None else str(t) for t in texts]
    if not lines:
        return pd.DataFrame()
    df = pd.read_json(io.StringIO("\n".join(lines)), lines=True, dtype=False,
                      convert_dates=False)
    df.index = range(len(lines))
    return df


def store_engine(url: str) -> Engine:
    """An engine on the store; LoanriskError when it holds no applications table yet."""
    from sqlalchemy import inspect

    from loanrisk.store import make_engine

    engine = make_engine(url)
    try:
        ready = inspect(engine).has_table("applications")
    except Exception as exc:
        engine.dispose()
        raise LoanriskError(f"cannot open the store at {url.split('@')[-1]}: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    if not ready:
        engine.dispose()
        raise LoanriskError(f"the store at {url.split('@')[-1]} has no applications yet: start "
                            "the service (`loanrisk serve`) or pass --database")
    return engine


@dataclass
class Window:
    """Rows read from the store for one question."""

    frame: pd.DataFrame  # id, created_at, model_version, attributes (parsed) + probabilities
    total: int  # rows in the window before sampling
    sampled: bool


def _where(*, since: datetime | None, until: datetime | None, model: str | None,
           engine: Engine, params: dict[str, Any], prefix: str = "a.") -> str:
    clauses = ["1=1"]
    if since is not None:
        clauses.append(f"{prefix}created_at >= :since")
        params["since"] = _ts(since, engine)
    if until is not None:
        clauses.append(f"{prefix}created_at < :until")
        params["until"] = _ts(until, engine)
    if model is not None:
        clauses.append(f"{prefix}model_name = :model")
        params["model"] = model
    return " AND ".join(clauses)


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_ .-]+$")
META = ("id", "created_at", "model_version", "applicant_id", "decision", "risk_score",
        "model_sha256")


def _json_field(column: str, key: str, dialect: str) -> str:
    """SQL extracting one key of a JSON column, in the database (no Python JSON parsing)."""
    if dialect == "sqlite":
        return f"json_extract(a.{column}, '$.\"{key}\"')"
    return f"(a.{column} ->> '{key}')"


def _fast_frame(conn: Any, sql: str, params: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """Run ``sql`` on the raw DB-API cursor and build the frame column by column (several
    times faster than SQLAlchemy Row objects on hundreds of thousands of rows)."""
    if conn.dialect.name != "sqlite":  # psycopg's named placeholders
        sql = re.sub(r":(\w+)", r"%(\1)s", sql)
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql, params)
        rows = cur.fetchall()
    finally:
        cur.close()
    arr = np.empty((len(rows), len(names)), dtype=object)
    if rows:
        arr[:] = rows
    return pd.DataFrame({n: arr[:, j] for j, n in enumerate(names)})


def read_applications(engine: Engine, *, model: str | None, since: datetime | None = None,
                      until: datetime | None = None, max_rows: int | None = None,
                      columns: tuple[str, ...] = ("attributes", "probabilities"),
                      fields: dict[str, list[str]] | None = None) -> Window:
    """Stored applications in a window, sampled to about ``max_rows`` when larger.

    Returns a Window whose frame has id, created_at, model_version, applicant_id, decision,
    risk_score, model_sha256, the ``attributes`` values (columns ``a:<name>``), the
    ``probabilities`` (``p:<class>``) and, when asked for, ``reasons`` (lists). With ``fields``
    ({"attributes": [names], "probabilities": [classes]}) only those keys are read, extracted
    by the database; else ``columns`` are read whole and parsed.
    """
    params: dict[str, Any] = {}
    where = _where(since=since, until=until, model=model, engine=engine, params=params)
    dialect = engine.dialect.name
    if fields and (keyring() is not None
                   or not all(_SAFE_KEY.match(k) for ks in fields.values() for k in ks)):
        # sealed attributes (loanrisk.store.crypto), or unusual names: parse them in Python
        columns, fields = tuple(fields), None
    with engine.connect() as conn:
        total = int(conn.execute(text(f"SELECT count(*) FROM applications a WHERE {where}"),
                                 params).scalar() or 0)
        sampled = max_rows is not None and total > max_rows
        if sampled:
            assert max_rows is not None
            # Bernoulli sample a little above the target, then LIMIT: no sort of the window.
            share = min(1.0, 1.05 * max_rows / total)
            if dialect == "sqlite":
                where += f" AND (abs(random()) % 1000000) < {int(share * 1_000_000)}"
            else:
                where += f" AND random() < {share:.8f}"
        if fields:
            extra = [(f"{'a' if c == 'attributes' else 'p'}:{k}", _json_field(c, k, dialect))
                     for c, keys in fields.items() for k in keys]
        else:
            extra = [(c, f"CAST(a.{c} AS TEXT)") for c in columns]
        select = ", ".join([*(f"a.{m}" for m in META), *(sql for _, sql in extra)])
        sql = f"SELECT {select} FROM applications a WHERE {where}"
        if sampled:
            sql += f" LIMIT {int(max_rows or 0)}"
        raw = _fast_frame(conn, sql, params, [*META, *(n for n, _ in extra)])
    if fields:
        return Window(frame=raw, total=total, sampled=bool(sampled))
    frame = raw.drop(columns=list(columns))
    frame["id"] = canonical_ids(frame["id"])
    frame["applicant_id"] = [open_value(v, "applicant_id") for v in frame["applicant_id"]]
    for col in columns:
        if col == "reasons":
            frame["reasons"] = [_json_list(t) for t in raw[col]]
            continue
        parsed = parse_json_column(_opened(raw[col].tolist(), col))
        prefix = "a:" if col == "attributes" else "p:"
        parsed.columns = [prefix + str(c) for c in parsed.columns]
        frame = pd.concat([frame, parsed], axis=1)
    return Window(frame=frame, total=total, sampled=bool(sampled))


def _opened(texts: list[Any], column: str) -> list[Any]:
    """JSON texts with sealed values opened (the one decryption: loanrisk.store.crypto)."""
    if column != "attributes":
        return texts
    return [json.dumps(open_json(t)) if isinstance(t, str) and t.startswith('{"enc"') else t
            for t in texts]


def _json_list(t: Any) -> list[str]:
    import json

    if t is None:
        return []
    v = json.loads(t) if isinstance(t, str) else t
    return [str(x) for x in v]


def read_labelled(engine: Engine, *, model: str | None, since: datetime | None = None,
                  until: datetime | None = None) -> pd.DataFrame:
    """Applications joined with their latest outcome: the Window frame plus ``outcome``."""
    params: dict[str, Any] = {}
    where = _where(since=since, until=until, model=model, engine=engine, params=params)
    sql = (
        "SELECT a.id, a.created_at, a.model_version, a.decision, "
        "CAST(a.attributes AS TEXT) AS attributes, "
        "CAST(a.probabilities AS TEXT) AS probabilities, o.outcome "
        "FROM applications a JOIN outcomes o ON o.application_id = a.id "
        "WHERE o.id = (SELECT max(o2.id) FROM outcomes o2 WHERE o2.application_id = a.id) "
        f"AND {where}"
    )
    with engine.connect() as conn:
        raw = pd.DataFrame(conn.execute(text(sql), params).all(),
                           columns=["id", "created_at", "model_version", "decision",
                                    "attributes", "probabilities", "outcome"])
    attrs = parse_json_column(_opened(raw["attributes"].tolist(), "attributes"))
    attrs.columns = ["a:" + str(c) for c in attrs.columns]
    proba = parse_json_column(raw["probabilities"].tolist())
    proba.columns = ["p:" + str(c) for c in proba.columns]
    raw["id"] = canonical_ids(raw["id"])
    return pd.concat([raw.drop(columns=["attributes", "probabilities"]), attrs, proba], axis=1)


def canonical_ids(ids: pd.Series) -> list[str]:
    """Application ids as dashed UUID strings (SQLite returns 32 hex digits, PostgreSQL UUIDs)."""
    return [str(uuid.UUID(str(i))) for i in ids]


def outcome_index(outcomes: pd.Series, classes: list[str]) -> np.ndarray:
    """Outcome words -> class indices (best..worst); -1 where the outcome is not understood.

    A class label maps to itself; for a binary target, words such as repaid / paid map to the
    good class and defaulted / charged_off to the adverse class.
    """
    lookup = outcome_lookup(classes)
    return np.array([lookup.get(normalise(o), -1) for o in outcomes], dtype=np.int64)


def attribute_frame(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The ``a:`` columns of a read frame under their own names (absent ones as missing)."""
    out = pd.DataFrame(index=frame.index)
    for n in names:
        out[n] = frame["a:" + n] if "a:" + n in frame.columns else np.nan
    return out


def week_start(ts: pd.Series) -> pd.Series:
    """The Monday (UTC date) of each timestamp's ISO week, as ``YYYY-MM-DD`` strings."""
    t = pd.to_datetime(ts, utc=True, format="mixed")
    monday = (t - pd.to_timedelta(t.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    return monday
