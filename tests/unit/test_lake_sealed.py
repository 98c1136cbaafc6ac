"""Issue 16: the lake written encrypted when the store is; `loanrisk sql` reads it back with the
key and answers as on a clear lake; `--clear` still writes clear files when asked."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402

from loanrisk.config import Settings  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.store.crypto import KeyProblem, new_key  # noqa: E402
from loanrisk.store.lake import export, sql  # noqa: E402
from loanrisk.store.tables import Application  # noqa: E402

CANARIES = ("CANARY-LAKE-APPLICANT-4141", "CANARY-LAKE-REF-5252", "CANARY-LAKE-PURPOSE-6363")
K1, K2, INDEX = new_key(), new_key(), new_key()
QUERIES = (
    "SELECT decision, count(*) AS n FROM applications GROUP BY 1 ORDER BY 1",
    "SELECT a.id, a.applicant_id, a.external_ref, o.outcome, a.day FROM applications a "
    "JOIN outcomes o ON a.id = o.application_id ORDER BY a.id",
    "SELECT json_extract_string(attributes, '$.purpose') AS p, count(*) AS n, "
    "min(day) AS d FROM applications GROUP BY 1 ORDER BY 1",
    "SELECT * FROM applications ORDER BY id",
    "SELECT * FROM outcomes",
)


def _lake_bytes(settings: Settings) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(settings.lake_dir.rglob("*")) if p.is_file())


def test_encrypted_lake_answers_as_the_clear_one(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k1:{K1},index:{INDEX}")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    sealed = Settings(home=tmp_path / "sealed", database_url=url)
    clear = Settings(home=tmp_path / "clear", database_url=url)
    store = Store(url)
    scorer = Scorer.load(build_model_dir(tmp_path / "m"), settings=sealed)
    _token, key = store.create_key(channel="web")
    ids = []
    for i in range(6):
        rec = GOOD if i % 2 else BAD
        d = scorer.score([rec])[0]
        row = Application(id=uuid.uuid4(), channel="web", api_key_id=key.id, request_hash="h",
                          applicant_id=f"{CANARIES[0]}-{i}", external_ref=f"{CANARIES[1]}-{i}",
                          attributes={**rec, "purpose": f"{CANARIES[2]}-{i % 2}"},
                          decision=d.decision, probabilities=d.probabilities,
                          risk_score=d.risk_score, risk_tier=d.risk_tier, reasons=d.reasons,
                          model_name=scorer.name, model_version=1, model_sha256=scorer.sha256)
        store.insert_application(row)
        ids.append(row.id)
    store.add_outcome(ids[0], outcome="bad", source="servicing", api_key_id=None)
    store.add_outcome(ids[3], outcome="good", source="servicing", api_key_id=None)
    store.close()

    res = export(sealed)
    assert res.encrypted and (res.applications, res.outcomes) == (6, 2)
    assert not list(sealed.lake_dir.rglob("*.parquet"))
    assert len(list(sealed.lake_dir.rglob("part-0.parquet.enc"))) == 3  # with the audit
    raw = _lake_bytes(sealed)
    assert raw.startswith(b"LRSEAL1 k1\n") and b"PAR1" not in raw
    for canary in CANARIES:
        assert canary.encode() not in raw
    assert not export(clear, clear=True).encrypted  # --clear: clear files, canaries readable
    assert CANARIES[0].encode() in _lake_bytes(clear)

    for q in QUERIES:  # the same answers, the same types
        got, want = sql(q, settings=sealed), sql(q, settings=clear)
        assert got.schema == want.schema and got.to_pylist() == want.to_pylist(), q
    assert sql(QUERIES[1], settings=sealed).to_pylist()[0]["applicant_id"].startswith(
        CANARIES[0])

    # a new active key: re-exporting seals with it; the older key is not needed any more
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k2:{K2},k1:{K1},index:{INDEX}")
    export(sealed)
    assert _lake_bytes(sealed).startswith(b"LRSEAL1 k2\n")
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k2:{K2},index:{INDEX}")
    assert sql(QUERIES[0], settings=sealed) == sql(QUERIES[0], settings=clear)

    # no key, a wrong key, a file moved to another day: one clear error, never garbage
    monkeypatch.delenv("LOANRISK_ENCRYPTION_KEYS")
    monkeypatch.setenv("LOANRISK_ENCRYPTION", "off")
    with pytest.raises(KeyProblem, match="LOANRISK_ENCRYPTION_KEYS"):
        sql(QUERIES[0], settings=sealed)
    monkeypatch.delenv("LOANRISK_ENCRYPTION")
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k2:{K1},index:{INDEX}")
    with pytest.raises(KeyProblem, match="does not decrypt"):
        sql(QUERIES[0], settings=sealed)
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k2:{K2},index:{INDEX}")
    day = next(sealed.lake_dir.glob("applications/day=*"))
    moved = day.parent / "day=2001-01-01"
    shutil.copytree(day, moved)
    with pytest.raises(KeyProblem, match="moved"):
        sql(QUERIES[0], settings=sealed)
    shutil.rmtree(moved)

    # the commands: export seals by default, --clear writes clear files, sql reads either
    from loanrisk.cli import app

    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k2:{K2},k1:{K1},index:{INDEX}")
    monkeypatch.setenv("LOANRISK_HOME", str(tmp_path / "cli"))
    monkeypatch.setenv("LOANRISK_DATABASE_URL", url)
    from loanrisk.config import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    out = runner.invoke(app, ["export"])
    assert out.exit_code == 0 and "(encrypted with" in out.output, out.output
    lake = tmp_path / "cli" / "lake"
    assert list(lake.rglob("*.enc")) and not list(lake.rglob("*.parquet"))
    q = runner.invoke(app, ["sql", "--json", "SELECT count(*) AS n FROM applications"])
    assert q.exit_code == 0 and '"n": 6' in q.output, q.output
    out = runner.invoke(app, ["export", "--clear"])
    assert out.exit_code == 0 and "(encrypted with" not in out.output
    assert list(lake.rglob("*.parquet")) and not list(lake.rglob("*.enc"))
    get_settings.cache_clear()


@pytest.mark.parametrize("mode", ["sealed", "clear"])
def test_channel_daily_counts_requests_refusals_decisions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", f"k1:{K1},index:{INDEX}")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = Settings(home=tmp_path / "home", database_url=url)
    store = Store(url)
    scorer = Scorer.load(build_model_dir(tmp_path / "m"), settings=settings)
    keys = {ch: store.create_key(channel=ch)[1] for ch in ("web", "broker")}
    for ch, recs in (("web", [GOOD, GOOD, BAD]), ("broker", [BAD])):
        for rec in recs:
            d = scorer.score([rec])[0]
            store.insert_application(Application(
                id=uuid.uuid4(), channel=ch, api_key_id=keys[ch].id, request_hash="h",
                attributes=rec, decision=d.decision, probabilities=d.probabilities,
                risk_score=d.risk_score, risk_tier=d.risk_tier, reasons=d.reasons,
                model_name=scorer.name, model_version=1, model_sha256=scorer.sha256))
    for ch in ("broker", "broker", None):
        store.audit("submission refused", channel=ch, status=422,
                    endpoint="POST /v1/applications")
    store.audit("read application", channel="web", status=200)  # not a refusal
    store.close()
    export(settings, clear=mode == "clear")
    assert bool(list(settings.lake_dir.rglob("*.enc"))) == (mode == "sealed")
    rows = sql("SELECT channel, requests, refusals, decisions, approved, declined "
               "FROM channel_daily ORDER BY channel", settings=settings).to_pylist()
    assert rows == [
        {"channel": "(no key)", "requests": 1, "refusals": 1, "decisions": 0, "approved": 0,
         "declined": 0},
        {"channel": "broker", "requests": 3, "refusals": 2, "decisions": 1, "approved": 0,
         "declined": 1},
        {"channel": "web", "requests": 3, "refusals": 0, "decisions": 3, "approved": 2,
         "declined": 1},
    ]
    assert sql("SELECT count(*) AS n FROM audit", settings=settings)["n"][0].as_py() >= 4
