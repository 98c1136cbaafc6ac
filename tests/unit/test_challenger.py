"""Shadow and canary: both results stored, the champion's returned; sticky share; rollback."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import build_model_dir  # noqa: E402
from watch_helpers import fill_store  # noqa: E402

from loanrisk.config import get_settings  # noqa: E402
from loanrisk.errors import LoanriskError  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402
from loanrisk.serving.challenger import (  # noqa: E402
    ChallengerPolicy,
    ChallengerRouter,
    Guardrails,
    assignment_key,
    bucket,
)
from loanrisk.store import Store  # noqa: E402
from loanrisk.store.challenger import ChallengerDecision, save_results  # noqa: E402
from loanrisk.store.tables import Application  # noqa: E402
from loanrisk.watch.compare import compare  # noqa: E402

NAME = "fixture-default"


@pytest.fixture(scope="module")
def scorers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scorer, Scorer]:
    root = tmp_path_factory.mktemp("challenger")
    champ = Scorer.load(build_model_dir(root / "v1", name=NAME, version=1), version=1)
    # the challenger weighs debt-to-income twice as much: it declines more
    chall = Scorer.load(build_model_dir(root / "v2", name=NAME, version=2, w_dti=0.3), version=2)
    return champ, chall


def _applications(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"income": float(rng.uniform(15000, 150000)), "dti": float(rng.uniform(0, 40)),
             "purpose": str(rng.choice(["car", "debt", "other"]))} for _ in range(n)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def test_shadow_stores_both_results_and_returns_the_champions(
        scorers: tuple[Scorer, Scorer], store: Store) -> None:
    champ, chall = scorers
    router = ChallengerRouter(ChallengerPolicy(mode="shadow", version=2), champion=champ,
                              challenger=chall)
    recs = _applications(300)
    ids = [str(uuid.uuid4()) for _ in recs]
    routed = router.route(recs, keys=[assignment_key(applicant_id=None, application_id=i)
                                      for i in ids])
    assert [r.served for r in routed] == champ.score(recs)  # the client gets the champion's
    assert all(r.served_by == "champion" and r.served_version == 1 for r in routed)
    assert all([e.role for e in r.extra] == ["shadow"] for r in routed)
    app_ids = fill_store(store, recs, [r.served for r in routed], model=NAME, version=1,
                         sha256=champ.sha256)
    for app_id, r in zip(app_ids, routed, strict=True):
        save_results(store, app_id, r.extra)
    with store.session() as s:
        shadow = list(s.scalars(select(ChallengerDecision)))
        served = {a.id: a for a in s.scalars(select(Application))}
    assert len(shadow) == 300 and {c.model_version for c in shadow} == {2}
    want = {a: d.decision for a, d in zip(app_ids, chall.score(recs), strict=True)}
    assert all(c.decision == want[c.application_id] for c in shadow)
    assert all(served[a].model_version == 1 for a in app_ids)
    assert any(served[c.application_id].decision != c.decision for c in shadow)

    settings = get_settings().model_copy(update={"database_url": store.url})
    [comp] = compare(model=NAME, classes=["good", "bad"], since="1d", settings=settings)
    assert comp.challenger_version == 2 and comp.applications == 300
    assert 0.5 < comp.agreement < 1.0
    assert comp.challenger_decline_rate > comp.champion_decline_rate


def test_canary_share_is_sticky_and_within_3_points(scorers: tuple[Scorer, Scorer]) -> None:
    champ, chall = scorers
    policy = ChallengerPolicy(mode="canary", share=0.2, version=2,
                              guardrails=Guardrails(max_decline_delta=1.0))
    router = ChallengerRouter(policy, champion=champ, challenger=chall)
    recs = _applications(2000, seed=1)
    keys = [assignment_key(applicant_id=f"cust-{i}", application_id=str(uuid.uuid4()))
            for i in range(2000)]
    routed = [router.route([r], keys=[k])[0] for r, k in zip(recs, keys, strict=True)]
    share = sum(r.served_by == "canary" for r in routed) / 2000
    assert abs(share - 0.2) <= 0.03, share
    canary = [r for r in routed if r.served_by == "canary"]
    assert all(r.served_version == 2 and {e.role for e in r.extra} == {"canary", "champion"}
               for r in canary)
    # sticky: the same applicant gets the same side on a new application, in a new process
    again = ChallengerRouter(ChallengerPolicy(mode="canary", share=0.2, version=2),
                             champion=champ, challenger=chall)
    for i in range(0, 2000, 50):
        key = assignment_key(applicant_id=f"cust-{i}", application_id=str(uuid.uuid4()))
        assert again.route([recs[i]], keys=[key])[0].served_by == routed[i].served_by
    assert bucket("applicant:cust-7") == bucket("applicant:cust-7")


class _Broken:
    version, sha256 = 3, "b" * 64

    def score(self, records: list[dict[str, Any]]) -> list[Any]:
        raise RuntimeError("onnxruntime exploded")


def test_canary_that_errors_or_declines_too_much_is_rolled_back(
        scorers: tuple[Scorer, Scorer]) -> None:
    champ, chall = scorers
    reasons: list[str] = []
    router = ChallengerRouter(ChallengerPolicy(mode="canary", share=1.0, version=3),
                              champion=champ, challenger=_Broken(), on_rollback=reasons.append)
    recs = _applications(120, seed=2)
    routed = [router.route([r], keys=[f"k{i}"])[0] for i, r in enumerate(recs)]
    assert all(r.served_by == "champion" for r in routed)  # errors never reach the client
    assert router.policy.mode == "off" and "error rate" in reasons[0]
    assert router.status()["rollback_reason"] == reasons[0]

    strict = ChallengerRouter(ChallengerPolicy(mode="canary", share=1.0, version=2,
                                               guardrails=Guardrails(max_decline_delta=0.02)),
                              champion=champ, challenger=chall)
    for i, r in enumerate(recs):
        strict.route([r], keys=[f"k{i}"])
    assert strict.policy.mode == "off" and "declines" in (strict.policy.rollback_reason or "")

    with pytest.raises(LoanriskError, match="share"):
        ChallengerPolicy(mode="canary", share=1.5, version=2)
