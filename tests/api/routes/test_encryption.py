"""Encryption at rest (issue 16): canaries are nowhere in clear in the raw store, everything
reads them back through the Store, lookups go through the blind index, rotation re-seals."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_factory import GOOD
from sqlalchemy import text

from loanrisk.store import Store
from loanrisk.store.crypto import KeyProblem, new_key

CANARIES = ("CANARY-APPLICANT-5151", "CANARY-REF-6262", "CANARY-PURPOSE-7373")


def _keys(*ids: str) -> str:
    return ",".join(f"{k}:{KEYS[k]}" for k in (*ids, "index"))


KEYS = {"k1": new_key(), "k2": new_key(), "index": new_key()}


@pytest.fixture
def sealed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", _keys("k1"))
    yield


def _raw(store: Store) -> str:
    with store.engine.connect() as c:
        rows = c.execute(text("SELECT * FROM applications")).all()
        audit = c.execute(text("SELECT * FROM audit_log")).all()
    return repr(rows) + repr(audit)


def test_canaries_sealed_and_read_back(sealed: None, db_url: str, model_dir: Path) -> None:
    from helpers import make_api

    for api in make_api(db_url, model_dir):
        c = api.client
        body = {**GOOD, "applicant_id": CANARIES[0], "external_ref": CANARIES[1]}
        r = c.post("/v1/applications", json=body, headers=api.web)
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        one = c.get(f"/v1/applications/{app_id}", headers=api.web).json()
        assert (one["applicant_id"], one["external_ref"]) == CANARIES[:2]
        assert one["attributes"]["income"] == GOOD["income"]
        listed = c.get(f"/v1/applications?applicant_id={CANARIES[0]}", headers=api.web).json()
        assert [i["id"] for i in listed["items"]] == [app_id]  # the blind index
        batch = {"outcomes": [{"external_ref": CANARIES[1], "outcome": "repaid"}]}
        assert c.post("/v1/admin/outcomes", json=batch, headers=api.admin).json()["recorded"] == 1
        raw = _raw(api.store)  # type: ignore[arg-type]
        for canary in CANARIES[:2]:
            assert canary not in raw
        assert "90000" not in raw and "enc:k1:" in raw
        if db_url.startswith("sqlite"):
            path = Path(db_url.split("///", 1)[1])
            files = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
            for canary in CANARIES[:2]:
                assert canary.encode() not in files
        # the watch stage's frames read the same values
        from loanrisk.store.frames import read_applications

        w = read_applications(api.store.engine, model=None)  # type: ignore[attr-defined]
        assert list(w.frame["applicant_id"]) == [CANARIES[0]]
        assert list(w.frame["a:income"]) == [GOOD["income"]]


def test_wrong_or_missing_key_is_a_clear_error(sealed: None, db_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import application_row

    store = Store(db_url)
    _, key = store.create_key(channel="web")
    row = store.insert_application(application_row(key.id, applicant_id=CANARIES[0]))
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", _keys("k2"))
    with pytest.raises(KeyProblem, match="'k1'.*LOANRISK_ENCRYPTION_KEYS"):
        store.get_application(row.id)
    wrong = f"k1:{base64.b64encode(os.urandom(32)).decode()},index:{KEYS['index']}"
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", wrong)
    with pytest.raises(KeyProblem, match="does not decrypt"):
        store.get_application(row.id)
    monkeypatch.delenv("LOANRISK_ENCRYPTION_KEYS")
    monkeypatch.setenv("LOANRISK_ENCRYPTION", "off")
    with pytest.raises(KeyProblem, match="no key is configured"):
        store.get_application(row.id)
    store.close()


def test_rotation_seals_clear_rows_then_moves_keys(db_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import application_row

    from loanrisk.store.rotate import remaining, rotate_data

    monkeypatch.delenv("LOANRISK_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("LOANRISK_ENCRYPTION", "off")
    store = Store(db_url)
    _, key = store.create_key(channel="web")
    ids = [store.insert_application(application_row(key.id, applicant_id=f"{CANARIES[0]}-{i}",
                                                    external_ref=f"R{i}")).id
           for i in range(25)]
    assert CANARIES[0] in _raw(store)  # a clear store, as before encryption
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", _keys("k1"))
    assert remaining(store) == 25
    assert rotate_data(store, batch=10, max_batches=1) == 10  # interrupted after one batch
    assert remaining(store) == 15
    assert store.get_application(ids[-1]).applicant_id == f"{CANARIES[0]}-24"  # clear still read
    assert rotate_data(store, batch=10) == 15 and remaining(store) == 0
    assert CANARIES[0] not in _raw(store)
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", _keys("k2", "k1"))  # k2 active, k1 to read
    assert remaining(store) == 25 and rotate_data(store, batch=7) == 25
    assert "enc:k1:" not in _raw(store)
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", _keys("k2"))  # k1 retired
    got = store.list_applications(api_key_id=None, limit=5, where={"external_ref": "R3"})
    assert [r.id for r in got] == [ids[3]] and got[0].applicant_id == f"{CANARIES[0]}-3"
    store.close()
