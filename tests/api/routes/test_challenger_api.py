"""Shadow and canary through POST /v1/applications; drift gauges in /metrics."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import Api, make_api  # noqa: E402
from model_factory import build_model_dir  # noqa: E402

from loanrisk.store.tables import Application, ChallengerDecision  # noqa: E402


def _apps(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"income": round(float(rng.uniform(15000, 150000)), 2),
             "dti": round(float(rng.uniform(0, 40)), 2),
             "purpose": str(rng.choice(["car", "debt", "other"])),
             "applicant_id": f"cust-{seed}-{i}"} for i in range(n)]


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    root = tmp_path_factory.mktemp("versions")
    champ = build_model_dir(root / "v1", version=1)
    stricter = build_model_dir(root / "v2", version=2, w_dti=0.3)
    reckless = build_model_dir(root / "v3", version=3, bias=4.0)  # declines almost everyone
    close = build_model_dir(root / "v4", version=4, w_dti=0.16)  # a near twin: within guardrails
    return champ, stricter, reckless, close


def _api(db_url: str, champ: Path, **kw: Any) -> Iterator[Api]:
    yield from make_api(db_url, champ, **kw)


def _stored(api: Api) -> tuple[list[Application], list[ChallengerDecision]]:
    with api.store.session() as s:  # type: ignore[attr-defined]
        return (list(s.scalars(select(Application))),
                list(s.scalars(select(ChallengerDecision))))


def test_shadow_stores_both_and_returns_the_champions(db_url: str, versions: tuple[Path, ...]
                                                      ) -> None:
    champ, stricter = versions[0], versions[1]
    for api in _api(db_url, champ, challenger_mode="shadow", challenger_dir=stricter):
        ready = api.client.get("/ready").json()  # type: ignore[attr-defined]
        assert ready["challenger"]["mode"] == "shadow" and ready["challenger"]["active"]
        answers = [api.client.post("/v1/applications", json=a, headers=api.web)  # type: ignore[attr-defined]
                   for a in _apps(40)]
        assert {r.status_code for r in answers} == {201}
        assert {r.json()["served_by"] for r in answers} == {"champion"}
        assert {r.json()["model"]["version"] for r in answers} == {1}
        apps, extra = _stored(api)
        assert len(apps) == 40 and len(extra) == 40
        assert {e.role for e in extra} == {"shadow"} and {e.model_version for e in extra} == {2}
        assert {e.application_id for e in extra} == {a.id for a in apps}
        # the stricter challenger declines some the champion approved: both are kept
        by_id = {a.id: a for a in apps}
        assert any(by_id[e.application_id].decision != e.decision for e in extra)
        metrics = api.client.get("/metrics").text  # type: ignore[attr-defined]
        assert 'loanrisk_challenger_scored_total{role="shadow",status="ok"} 40.0' in metrics
        status = api.client.get("/v1/admin/challenger", headers=api.admin).json()  # type: ignore[attr-defined]
        assert status["counts"]["shadow"] == 40
        assert api.client.get("/v1/admin/challenger",  # type: ignore[attr-defined]
                              headers=api.web).status_code == 403


def test_canary_serves_a_sticky_share(tmp_path: Path, versions: tuple[Path, ...]) -> None:
    champ, close = versions[0], versions[3]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for api in _api(url, champ, challenger_mode="canary", challenger_dir=close,
                    challenger_share=0.3):
        apps = _apps(300, seed=5)
        answers = [api.client.post("/v1/applications", json=a, headers=api.web).json()  # type: ignore[attr-defined]
                   for a in apps]
        canary = [a for a in answers if a["served_by"] == "canary"]
        assert abs(len(canary) / 300 - 0.3) <= 0.08
        assert {a["model"]["version"] for a in canary} == {4}
        status = api.client.get("/v1/admin/challenger", headers=api.admin).json()  # type: ignore[attr-defined]
        assert status["mode"] == "canary" and status["rollback_reason"] is None
        _, extra = _stored(api)
        assert sorted(e.role for e in extra) == sorted(["canary", "champion"] * len(canary))
        # sticky: the same applicant lands on the same side again
        again = api.client.post("/v1/applications", json=apps[0], headers=api.web).json()  # type: ignore[attr-defined]
        assert again["served_by"] == answers[0]["served_by"]


def test_canary_breaking_a_guardrail_is_rolled_back_and_stays_off(
        tmp_path: Path, versions: tuple[Path, ...]) -> None:
    champ, reckless = versions[0], versions[2]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    kw = {"challenger_mode": "canary", "challenger_dir": reckless, "challenger_share": 1.0}
    for api in _api(url, champ, **kw):
        answers = [api.client.post("/v1/applications", json=a, headers=api.web).json()  # type: ignore[attr-defined]
                   for a in _apps(80, seed=7)]
        assert answers[0]["served_by"] == "canary"
        assert answers[-1]["served_by"] == "champion"  # rolled back after the guardrail broke
        status = api.client.get("/v1/admin/challenger", headers=api.admin).json()  # type: ignore[attr-defined]
        assert status["mode"] == "off" and "declines" in status["rollback_reason"]
        assert "loanrisk_canary_rollbacks_total 1.0" in api.client.get("/metrics").text  # type: ignore[attr-defined]
    for api in _api(url, champ, **kw):  # a restart keeps it rolled back
        ready = api.client.get("/ready").json()  # type: ignore[attr-defined]
        assert ready["challenger"]["mode"] == "off"
        assert "rolled back earlier" in ready["challenger"]["rollback_reason"]
        one = api.client.post("/v1/applications", json=_apps(1, seed=8)[0],  # type: ignore[attr-defined]
                              headers=api.web).json()
        assert one["served_by"] == "champion"


def test_drift_gauges_read_the_newest_report_and_refresh(tmp_path: Path,
                                                        versions: tuple[Path, ...]) -> None:
    from loanrisk.manifest import drift_reference

    champ = build_model_dir(tmp_path / "drifty", name="fixture-drift", version=1)
    manifest = json.loads((champ / "manifest.json").read_text())
    train = pd.DataFrame(_apps(2000, seed=11)).drop(columns="applicant_id")
    manifest["drift_reference"] = drift_reference(train, manifest["inputs"],
                                                  np.linspace(0.05, 0.6, len(train)))
    (champ / "manifest.json").write_text(json.dumps(manifest))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for api in _api(url, champ):
        metrics = api.client.get("/metrics").text  # type: ignore[attr-defined]
        assert "loanrisk_drift_psi{" not in metrics  # no report yet
        shifted = _apps(300, seed=12)
        for a in shifted:
            a["dti"] = min(40.0, a["dti"] * 1.3 + 8)
        for a in shifted:
            assert api.client.post("/v1/applications", json=a,  # type: ignore[attr-defined]
                                   headers=api.web).status_code == 201
        drift = api.client.app.state.drift  # type: ignore[attr-defined]
        report = drift.refresh()
        assert report is not None and report["attributes"]["dti"]["level"] != "ok"
        time.sleep(0.01)
        metrics = api.client.get("/metrics").text  # type: ignore[attr-defined]
        line = next(x for x in metrics.splitlines()
                    if x.startswith('loanrisk_drift_psi{attribute="dti"}'))
        assert float(line.split()[-1]) >= 0.1
        assert "loanrisk_drift_level" in metrics
