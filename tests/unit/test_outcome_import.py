"""`loanrisk outcomes load` on real SQLite and real PostgreSQL: every row checked, all or nothing
by default, rejected rows kept, a second load of the same file records nothing new."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import application_row  # noqa: E402

from loanrisk.errors import DataError  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.store.outcome_import import load_outcomes  # noqa: E402


def _stored(store: Store) -> list[str]:
    """Three stored applications: two binary (one with an external_ref), one graded A..C."""
    _t, key = store.create_key(channel="web")
    rows = [application_row(key.id, external_ref="LN-1"), application_row(key.id),
            application_row(key.id, decision="B", probabilities={"A": 0.2, "B": 0.5, "C": 0.3})]
    return [str(store.insert_application(r).id) for r in rows]


def _outcomes(store: Store, app_id: str) -> list[tuple[str, str | None]]:
    return [(o.outcome, o.source) for o in store.outcomes_of(uuid.UUID(app_id))]


def test_good_file_recorded_once_in_file_order(store: Store) -> None:
    a, b, c = _stored(store)
    df = pd.DataFrame({"application_id": [a, "", b, c, b],
                       "external_ref": ["", "LN-1", "", "", ""],
                       "outcome": ["repaid", "Charged_Off", "bad", "C", "good"],
                       "recorded_at": ["2026-10-01", "2026-11-01", "2026-10-02T09:30:00+02:00",
                                       "", "2026-11-02"]})
    res = load_outcomes(store, df, where="f.csv", source="servicing")
    assert (res.recorded, res.unchanged, res.applications, res.rejected) == (5, 0, 3, [])
    assert _outcomes(store, a) == [("repaid", "servicing"), ("Charged_Off", "servicing")]
    assert [o for o, _ in _outcomes(store, b)] == ["bad", "good"]  # the later row is newer
    at = store.outcomes_of(uuid.UUID(b))[0].recorded_at
    assert (at.year, at.month, at.day, at.hour) == (2026, 10, 2, 7)  # stored in UTC
    again = load_outcomes(store, df, where="f.csv", source="servicing")
    assert (again.recorded, again.unchanged) == (0, 5)  # the same file twice: nothing new
    assert [o for o, _ in _outcomes(store, c)] == ["C"]
    # without a time, the same outcome again from another source is news; from the same, not
    other = pd.DataFrame({"application_id": [c, c], "outcome": ["C", "c"],
                          "source": ["audit", "audit"]})
    assert load_outcomes(store, other, where="g.csv").recorded == 1
    assert _outcomes(store, c) == [("C", "servicing"), ("C", "audit")]


def test_one_bad_row_and_nothing_is_recorded(store: Store) -> None:
    a, b, c = _stored(store)
    df = pd.DataFrame({"application_id": [a, "nope", b, c, "00000000-0000-0000-0000-000000000001",
                                          ""],
                       "outcome": ["repaid", "good", "maybe", "A", "good", "good"],
                       "recorded_at": ["", "", "", "yesterday-ish", "", ""]})
    with pytest.raises(DataError) as err:
        load_outcomes(store, df, where="batch.csv")
    msg = str(err.value)
    assert msg.startswith("batch.csv: 5 of 6 rows cannot be recorded, so nothing was")
    for part in ("row 1 (application_id): not an application id",
                 "row 2 (outcome): unknown outcome word",
                 "row 3 (recorded_at): not a date/time",
                 "row 4 (application_id): no stored application has this id",
                 "row 5 (application_id): empty: give application_id or external_ref"):
        assert part in msg, msg
    for value in ("nope", "maybe", "yesterday", "00000000-"):  # fields named, values never
        assert value not in msg, msg
    assert _outcomes(store, a) == []


def test_skip_invalid_records_the_rest_and_keeps_the_rejected(store: Store,
                                                               tmp_path: Path) -> None:
    a, b, c = _stored(store)
    df = pd.DataFrame({"application_id": [a, b, c], "outcome": ["late", "Z", "B"],
                       "source": ["collections", "", ""]})
    rej = tmp_path / "in.rejected.csv"
    dry = load_outcomes(store, df, where="in.csv", skip_invalid=True, dry_run=True,
                        rejected_path=rej)
    assert dry.recorded == 2 and not rej.exists() and _outcomes(store, a) == []
    res = load_outcomes(store, df, where="in.csv", skip_invalid=True, rejected_path=rej)
    assert res.recorded == 2 and res.rejected_file == str(rej)
    assert _outcomes(store, a) == [("late", "collections")]
    assert _outcomes(store, c) == [("B", "import")]
    rejected = pd.read_csv(rej).to_dict("records")
    assert len(rejected) == 1 and rejected[0]["row"] == 1 and rejected[0]["column"] == "outcome"
    assert rejected[0]["error"].startswith("unknown outcome word: use a class label (good, bad)")


def test_external_ref_must_name_one_application(store: Store) -> None:
    _t, key = store.create_key(channel="web")
    for _ in range(2):
        store.insert_application(application_row(key.id, external_ref="DUP"))
    df = pd.DataFrame({"external_ref": ["DUP", "NONE"], "outcome": ["good", "good"]})
    with pytest.raises(DataError) as err:
        load_outcomes(store, df, where="r.csv")
    assert "2 stored applications have this external_ref; give application_id" in str(err.value)
    assert "no stored application has this external_ref" in str(err.value)
    assert "DUP" not in str(err.value) and "NONE" not in str(err.value)
    with pytest.raises(DataError, match="needs the columns outcome and application_id"):
        load_outcomes(store, pd.DataFrame({"id": [1], "result": ["good"]}), where="r.csv")


def test_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loanrisk.cli import app

    db = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(db)
    a, _b, _c = _stored(store)
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.csv"
    pd.DataFrame({"application_id": [a], "outcome": ["repaid"]}).to_parquet(good)
    bad.write_text(f"application_id,outcome\n{a},good\n{a},meh\n")
    runner = CliRunner()
    out = runner.invoke(app, ["outcomes", "load", str(good), "--database", db])
    assert out.exit_code == 0, out.output
    assert "recorded 1 outcome(s) for 1 application(s) from 1 row(s)" in " ".join(
        out.output.split())
    out = runner.invoke(app, ["outcomes", "load", str(bad), "--database", db])
    assert out.exit_code == 2 and "row 1 (outcome): unknown outcome word" in out.output
    assert _outcomes(store, a) == [("repaid", "import")]  # nothing from the bad file
    out = runner.invoke(app, ["outcomes", "load", str(bad), "--database", db, "--skip-invalid"])
    assert out.exit_code == 0 and (tmp_path / "bad.rejected.csv").exists(), out.output
    assert [o for o, _ in _outcomes(store, a)] == ["repaid", "good"]
    store.close()


def test_stored_classes_put_the_adverse_class_last_whatever_the_json_order() -> None:
    from loanrisk.store.outcomes import stored_classes

    assert stored_classes({"bad": 0.3, "good": 0.7}, 0.3) == ["good", "bad"]  # JSONB's order
    assert stored_classes({"good": 0.7, "bad": 0.3}, 0.3) == ["good", "bad"]
    assert stored_classes({"A": 0.5, "B": 0.3, "C": 0.2}, 0.2) == ["A", "B", "C"]
    assert stored_classes(None, None) == []
