"""Issue 16: encryption at rest is on by default (a key file made at first use under the home);
only LOANRISK_ENCRYPTION=off stores in clear, and then doctor warns."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import application_row  # noqa: E402

from loanrisk.cli.security_checks import check_encryption  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.store.crypto import keyring  # noqa: E402

CANARY = "CANARY-DEFAULT-8484"


def _raw(store: Store) -> str:
    with store.engine.connect() as c:
        return repr(c.execute(text("SELECT * FROM applications")).all())


def test_on_by_default_with_a_key_file_made_at_first_use(
        fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOANRISK_ENCRYPTION_KEYS", "LOANRISK_ENCRYPTION_KEY_FILE",
                "LOANRISK_ENCRYPTION"):
        monkeypatch.delenv(var, raising=False)
    key_file = fresh_home / "keys" / "data.keys"
    assert not key_file.exists()
    store = Store(f"sqlite:///{fresh_home / 'store.db'}")
    _, key = store.create_key(channel="web")
    row = store.insert_application(application_row(key.id, applicant_id=CANARY))
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    ring = keyring()
    assert ring is not None and ring.active == "k1"
    raw = _raw(store)
    assert CANARY not in raw and "enc:k1:" in raw
    assert store.get_application(row.id).applicant_id == CANARY
    first = key_file.read_text()
    assert keyring() is ring and key_file.read_text() == first  # made once, then read
    [check] = check_encryption()
    assert check.ok and str(key_file) in check.detail

    # explicitly off: clear rows, and doctor warns (a warning, not a failure)
    monkeypatch.setenv("LOANRISK_ENCRYPTION", "off")
    assert keyring() is None
    clear = store.insert_application(application_row(key.id, applicant_id=CANARY + "-clear"))
    assert CANARY + "-clear" in _raw(store)
    [check] = check_encryption()
    assert not check.ok and not check.required and "LOANRISK_ENCRYPTION=off" in check.detail
    monkeypatch.delenv("LOANRISK_ENCRYPTION")  # back on: both rows read, the key file kept
    assert store.get_application(clear.id).applicant_id == CANARY + "-clear"
    assert store.get_application(row.id).applicant_id == CANARY
    assert key_file.read_text() == first
    store.close()
