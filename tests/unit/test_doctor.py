"""`loanrisk doctor`: every piece checked for real (store, registry, champion, Redis), each
failure with its fix, the exit code set by the required checks only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from model_factory import registry_copy
from typer.testing import CliRunner

from loanrisk.cli import app

runner = CliRunner()


def _doctor(*args: str, env: dict[str, str] | None = None,
            monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, dict[str, dict]]:
    from loanrisk.config import get_settings

    for k, v in (env or {}).items():
        assert monkeypatch is not None
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        res = runner.invoke(app, ["doctor", "--json", *args])
    finally:
        get_settings.cache_clear()
    body = json.loads(res.stdout)
    assert body["ok"] == (res.exit_code == 0)
    return res.exit_code, {c["name"]: c for c in body["checks"]}


def test_a_new_home_says_what_to_do_first(fresh_home: Path) -> None:
    code, checks = _doctor()
    assert code == 1
    assert checks["home"]["ok"] and checks["store"]["ok"] and checks["registry"]["ok"]
    assert not checks["API keys"]["ok"] and "loanrisk keys create" in checks["API keys"]["fix"]
    assert not checks["models"]["ok"] and "loanrisk learn" in checks["models"]["fix"]
    assert checks["rate limit"]["ok"] and "per service process" in checks["rate limit"]["detail"]
    assert not checks["extra [train]"]["required"]


@pytest.mark.slow
def test_ready_then_a_tampered_champion_fails(fresh_home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from loanrisk.config import get_settings
    from loanrisk.learn.pipeline import LearnOptions, learn
    from loanrisk.registry import Registry
    from loanrisk.store import Store

    res = learn(LearnOptions(dataset="lending-club-default", name="doc", sample=1500,
                             models=("majority", "gbdt"), progress=False))
    assert res.version is not None
    store = Store(get_settings().resolved_database_url)
    store.create_key(channel="web", admin=True)
    store.close()
    code, checks = _doctor()
    assert code == 0, checks
    champ = checks["champion doc"]
    assert champ["ok"] and "v1 (gbdt)" in champ["detail"] and "verified" in champ["detail"]
    assert "µs per application with reasons here" in champ["detail"]
    assert "latency doc" not in checks  # no budget set
    assert checks["API keys"]["detail"] == "1 active (1 admin)"
    code, checks = _doctor(env={"LOANRISK_MAX_LATENCY_US": "1"}, monkeypatch=monkeypatch)
    slow = checks["latency doc"]  # nothing scores in 1 µs: over the budget, a warning only
    assert code == 0 and not slow["ok"] and not slow["required"]
    assert "over LOANRISK_MAX_LATENCY_US 1" in slow["detail"]
    monkeypatch.delenv("LOANRISK_MAX_LATENCY_US")

    onnx = Registry().download("doc", 1) / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")  # the cache copy: repaired, still ready
    code, checks = _doctor("--model", "doc")
    assert code == 0 and checks["champion doc"]["ok"]
    onnx = registry_copy(Registry(), "doc", 1) / "model.onnx"  # the registry's own copy
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    shutil.rmtree(Registry().download("doc", 1))  # and no good copy left in the cache
    code, checks = _doctor("--model", "doc")
    assert code == 1
    champ = checks["champion doc"]
    assert not champ["ok"] and "SHA-256" in champ["detail"]
    assert "loanrisk rollback doc" in champ["fix"]
    code, checks = _doctor("--model", "nope")
    assert code == 1 and "known: doc" in checks["model nope"]["detail"]


def test_unreachable_store_and_registry_are_failures_with_fixes(
        fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, checks = _doctor("--database", "postgresql://127.0.0.1:1/x",
                           env={"LOANRISK_TRACKING_URI": "http://127.0.0.1:9",
                                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
                           monkeypatch=monkeypatch)
    assert code == 1
    assert not checks["store"]["ok"] and "Connection refused" in checks["store"]["detail"]
    assert "LOANRISK_DATABASE_URL" in checks["store"]["fix"]
    assert not checks["registry"]["ok"] and "unreachable" in checks["registry"]["detail"]
    assert "LOANRISK_TRACKING_URI" in checks["registry"]["fix"]


def test_shared_rate_limit_store_is_pinged_and_only_advisory(fresh_home: Path) -> None:
    _, checks = _doctor("--rate-limit-url", "redis://127.0.0.1:6379/0")
    assert checks["rate limit"]["ok"] and "shared through redis://127.0.0.1:6379/0" in \
        checks["rate limit"]["detail"]
    _, checks = _doctor("--rate-limit-url", "redis://:pw@127.0.0.1:1/0")
    rl = checks["rate limit"]
    assert not rl["ok"] and not rl["required"] and "pw" not in rl["detail"]
    _, checks = _doctor("--rate-limit-url", "http://cache:80")
    rl = checks["rate limit"]
    assert not rl["ok"] and "must be a Redis URL" in rl["detail"]


def test_keys_about_to_expire_are_a_warning(fresh_home: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from loanrisk.config import get_settings
    from loanrisk.store import Store

    store = Store(get_settings().resolved_database_url)
    store.create_key(channel="web", expires_at=datetime.now(UTC) + timedelta(days=3))
    store.create_key(channel="web", expires_at=datetime.now(UTC) - timedelta(days=1))  # expired
    store.close()
    _, checks = _doctor()
    assert checks["API keys"]["ok"] and checks["API keys"]["detail"] == "1 active (0 admin)"
    soon = checks["API key expiry"]
    assert not soon["ok"] and not soon["required"] and "1 active key(s) expire" in soon["detail"]
    assert "loanrisk keys create --expires" in soon["fix"]
