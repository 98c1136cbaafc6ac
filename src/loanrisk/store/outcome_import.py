"""Bulk outcomes: what the servicing system or the auditors know later, loaded from a file.

`loanrisk outcomes load FILE` is the file-shaped twin of ``POST /v1/applications/{id}/outcome``
and follows its rules: each row names a stored application (``application_id``, or the
``external_ref`` the channel sent when that matches exactly one application) and an outcome that
the model which decided it accepts (a class label or, for a binary target, a servicing word such
as ``repaid`` or ``charged_off``; see :mod:`loanrisk.store.outcomes`). Optional columns: ``source``
(else ``--source``) and ``recorded_at`` (else now). Other columns are ignored.

All or nothing by default: every row is checked before anything is written, each problem is
reported with its row and column, and one bad row means nothing is recorded. With
``skip_invalid`` the good rows are recorded and the others go to ``<FILE stem>.rejected.csv``
with the row, the column and why. The good rows are written in one transaction. A row already
recorded is left alone, so loading the same file twice records nothing new: with
``recorded_at``, an outcome of the application with the same outcome, source and time; without
it, the application's latest outcome being the same outcome from the same source (give
``recorded_at`` when a file holds several outcomes of one application).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Text, and_, or_, select, type_coerce

from loanrisk.errors import DataError
from loanrisk.schema import label_of
from loanrisk.store import Store
from loanrisk.store.crypto import keyring
from loanrisk.store.outcomes import normalise, outcome_error, stored_classes
from loanrisk.store.tables import Application, Outcome

ID, REF, OUTCOME, SOURCE, AT = "application_id", "external_ref", "outcome", "source", "recorded_at"
CHUNK = 500  # ids per IN (...) query
SHOWN = 20  # problems listed in the error of an all-or-nothing load


class OutcomeRowsError(DataError):
    """Rows that cannot be recorded (nothing was); ``problems``: row, column and error each."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass
class OutcomeLoad:
    """What a load did (or, with ``dry_run``, would do)."""

    rows: int
    recorded: int
    unchanged: int
    applications: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_file: str | None = None
    dry_run: bool = False


def _text(v: Any) -> str:
    """A cell as stripped text, read as a class label is (``1.0`` -> ``"1"``); "" for missing."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    return label_of(v).strip()


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _by_id(store: Store, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Stored application id -> the classes of the model that decided it."""
    found: dict[uuid.UUID, list[str]] = {}
    with store.session() as s:
        for part in _chunks(ids):
            q = (select(Application.id, Application.probabilities, Application.risk_score)
                 .where(Application.id.in_(part)))
            for app_id, probs, risk in s.execute(q):
                found[app_id] = stored_classes(probs, risk)
    return found


def _by_ref(store: Store, refs: list[str]) -> dict[str, list[uuid.UUID]]:
    """external_ref -> the ids of the stored applications that carry it."""
    found: dict[str, list[uuid.UUID]] = {}
    with store.session() as s:
        for part in _chunks(refs):
            # through the blind index when sealed; ref comes back opened
            for app_id, ref in s.execute(select(Application.id, Application.external_ref)
                                         .where(_ref_in(part))):
                found.setdefault(str(ref), []).append(app_id)
    return found


def _ref_in(refs: list[str]) -> Any:
    clear = type_coerce(Application.external_ref, Text).in_(refs)
    ring = keyring()
    if ring is None:
        return clear
    return or_(Application.external_ref_hmac.in_([ring.blind(r) for r in refs]),
               and_(Application.external_ref_hmac.is_(None), clear))


def _utc(at: datetime) -> datetime:
    """A stored or parsed time as naive UTC (SQLite gives naive UTC, PostgreSQL aware)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _recorded(store: Store, ids: list[uuid.UUID]
              ) -> dict[uuid.UUID, list[tuple[str, str | None, datetime]]]:
    """Application id -> its recorded (outcome, source, recorded_at), oldest first."""
    seen: dict[uuid.UUID, list[tuple[str, str | None, datetime]]] = {}
    with store.session() as s:
        for part in _chunks(ids):
            q = (select(Outcome.application_id, Outcome.outcome, Outcome.source,
                        Outcome.recorded_at)
                 .where(Outcome.application_id.in_(part)).order_by(Outcome.id))
            for app_id, outcome, source, at in s.execute(q):
                seen.setdefault(app_id, []).append((normalise(outcome), source, _utc(at)))
    return seen


def _new_rows(store: Store, good: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows not recorded yet: with recorded_at, no outcome of the application has the same
    outcome, source and time; without it, the application's latest outcome (earlier rows of
    the file included) is not the same outcome from the same source."""
    seen = _recorded(store, sorted({g["application_id"] for g in good}))
    new = []
    for g in good:  # in file order: a later row for the same application is its newer outcome
        past = seen.setdefault(g["application_id"], [])
        word, source, at = normalise(g["outcome"]), g["source"], g["recorded_at"]
        if at is not None:
            duplicate = (word, source, _utc(at)) in past
        else:
            duplicate = bool(past) and past[-1][:2] == (word, source)
        if not duplicate:
            new.append(g)
            past.append((word, source, _utc(at if at is not None else datetime.now(UTC))))
    return new


def _resolve_ids(store: Store, df: pd.DataFrame, problems: list[dict[str, Any]]
                 ) -> list[uuid.UUID | None]:
    """Each row's application id (None where it cannot be told), problems appended."""
    ids: list[uuid.UUID | None] = []
    refs = [_text(v) for v in df[REF]] if REF in df.columns else [""] * len(df)
    raw = [_text(v) for v in df[ID]] if ID in df.columns else [""] * len(df)
    known_refs = _by_ref(store, sorted({r for r, i in zip(refs, raw, strict=True)
                                        if r and not i}))
    for row, (text, ref) in enumerate(zip(raw, refs, strict=True)):
        if text:
            try:
                ids.append(uuid.UUID(text))
            except ValueError:
                problems.append({"row": row, "column": ID,
                                 "error": "not an application id (a UUID)"})
                ids.append(None)
        elif ref:
            matches = known_refs.get(ref, [])
            if len(matches) != 1:
                problems.append({"row": row, "column": REF, "error": (
                    "no stored application has this external_ref" if not matches else
                    f"{len(matches)} stored applications have this external_ref; give "
                    "application_id instead")})
            ids.append(matches[0] if len(matches) == 1 else None)
        else:
            problems.append({"row": row, "column": ID,
                             "error": "empty: give application_id or external_ref"})
            ids.append(None)
    return ids


def _times(df: pd.DataFrame, problems: list[dict[str, Any]]) -> list[datetime | None]:
    if AT not in df.columns:
        return [None] * len(df)
    out: list[datetime | None] = []
    for row, v in enumerate(df[AT]):
        text = _text(v)
        if not text:
            out.append(None)
            continue
        try:
            ts = pd.Timestamp(text)
            out.append((ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC"))
                       .to_pydatetime())
        except (ValueError, TypeError):
            problems.append({"row": row, "column": AT, "error": "not a date/time "
                             "(use ISO 8601, e.g. 2026-11-01 or 2026-11-01T09:30:00Z)"})
            out.append(None)
    return out


def load_outcomes(store: Store, df: pd.DataFrame, *, where: str, source: str | None = None,
                  skip_invalid: bool = False, dry_run: bool = False,
                  rejected_path: Path | None = None) -> OutcomeLoad:
    """Check every row of ``df`` and record the outcomes (see the module's rules).

    DataError naming ``where`` when a required column is absent; unless ``skip_invalid``,
    OutcomeRowsError (each row's problems) when any row is wrong: nothing is written then.
    """
    if OUTCOME not in df.columns or not ({ID, REF} & set(df.columns)):
        raise DataError(f"{where}: needs the columns outcome and application_id (or "
                        f"external_ref); it has {', '.join(map(str, df.columns)) or 'none'}")
    problems: list[dict[str, Any]] = []
    ids = _resolve_ids(store, df, problems)
    times = _times(df, problems)
    classes = _by_id(store, sorted({i for i in ids if i is not None}))
    sources = [_text(v) for v in df[SOURCE]] if SOURCE in df.columns else [""] * len(df)
    good: list[dict[str, Any]] = []
    for row, (app_id, word) in enumerate(zip(ids, (_text(v) for v in df[OUTCOME]), strict=True)):
        if app_id is None:
            continue
        if app_id not in classes:
            problems.append({"row": row, "column": ID,
                             "error": "no stored application has this id"})
        elif not word:
            problems.append({"row": row, "column": OUTCOME, "error": "empty"})
        elif (why := outcome_error(word, classes[app_id])) is not None:
            problems.append({"row": row, "column": OUTCOME, "error": why})
        else:
            good.append({"row": row, "application_id": app_id, "outcome": word,
                         "source": sources[row] or source or "import", "recorded_at": times[row]})
    bad_rows = {p["row"] for p in problems}
    good = [g for g in good if g["row"] not in bad_rows]  # e.g. a good outcome, a bad date
    problems.sort(key=lambda p: (p["row"], p["column"]))
    if problems and not skip_invalid:
        listed = "".join(f"\n  row {p['row']} ({p['column']}): {p['error']}"
                         for p in problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise OutcomeRowsError(
            f"{where}: {len(bad_rows)} of {len(df)} rows cannot be recorded, so nothing was; "
            "fix them, or use --skip-invalid to record the others (rows count from 0, the "
            f"first data row):{listed}{more}", problems)
    new = _new_rows(store, good)
    rejected_file = None
    if problems and rejected_path is not None and not dry_run:
        pd.DataFrame(problems).to_csv(rejected_path, index=False)
        rejected_file = str(rejected_path)
    if not dry_run:
        store.add_outcomes([{k: v for k, v in g.items() if k != "row"} for g in new])
    return OutcomeLoad(rows=len(df), recorded=len(new), unchanged=len(good) - len(new),
                       applications=len({g["application_id"] for g in new}), rejected=problems,
                       rejected_file=rejected_file, dry_run=dry_run)
