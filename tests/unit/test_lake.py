"""Export to the Parquet lake (by day, idempotent) and DuckDB SQL over it."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402

from loanrisk.config import Settings  # noqa: E402
from loanrisk.errors import LoanriskError  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.store.lake import export, sql  # noqa: E402
from loanrisk.store.tables import Application  # noqa: E402


def _fill(store: Store, scorer: Scorer, n: int) -> list[uuid.UUID]:
    _token, key = store.create_key(channel="web")
    ids = []
    for i in range(n):
        rec = GOOD if i % 2 else BAD
        d = scorer.score([rec])[0]
        row = Application(id=uuid.uuid4(), channel="web", api_key_id=key.id,
                          request_hash="h", attributes=rec, decision=d.decision,
                          probabilities=d.probabilities, risk_score=d.risk_score,
                          risk_tier=d.risk_tier, reasons=d.reasons, model_name=scorer.name,
                          model_version=1, model_sha256=scorer.sha256)
        store.insert_application(row)
        ids.append(row.id)
    store.add_outcome(ids[0], outcome="bad", source="servicing", api_key_id=None)
    return ids


def test_export_and_sql(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    store = Store(settings.resolved_database_url)
    scorer = Scorer.load(build_model_dir(tmp_path / "m"), settings=settings)
    assert sql("SELECT count(*) AS n FROM applications", settings=settings)["n"][0].as_py() == 0
    ids = _fill(store, scorer, 5)
    first = export(settings, store=store)
    assert (first.applications, first.outcomes, first.days) == (5, 1, 1)
    files = sorted(p.relative_to(settings.lake_dir)
                   for p in settings.lake_dir.rglob("*.parquet*"))
    assert str(files[0]).startswith("applications/day=") and len(files) == 3  # +audit
    again = export(settings, store=store)  # idempotent: same rows, same files
    assert again.applications == 5 and sorted(settings.lake_dir.rglob("*.parquet*")) == sorted(
        settings.lake_dir / f for f in files)
    t = sql("SELECT decision, count(*) AS n FROM applications GROUP BY 1 ORDER BY 1",
            settings=settings).to_pylist()
    assert t == [{"decision": "approve", "n": 2}, {"decision": "decline", "n": 3}]
    joined = sql("SELECT a.id, o.outcome, a.day FROM applications a JOIN outcomes o "
                 "ON a.id = o.application_id", settings=settings).to_pylist()
    assert joined[0]["id"] == str(ids[0]) and joined[0]["outcome"] == "bad"
    reasons = sql("SELECT json_extract_string(reasons, '$[0]') AS r FROM applications "
                  "WHERE decision = 'decline' LIMIT 1", settings=settings)
    assert reasons["r"][0].as_py() == "Debt-to-income ratio is high"
    with pytest.raises(LoanriskError, match="SQL failed"):
        sql("SELECT nope FROM applications", settings=settings)
    store.close()
