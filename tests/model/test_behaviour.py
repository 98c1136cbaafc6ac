"""Behavioural tests of a model trained on the bundled data, through its served ONNX graph.

Made-With-ML's three kinds (Ribeiro et al., "Beyond Accuracy: Behavioral Testing of NLP Models
with CheckList"): minimum functionality (an obviously strong and an obviously weak applicant get
the obvious answers), directional expectations (risk never moves against an attribute's declared
``monotone`` direction) and invariance (what must not change the answer: batch company, key
order). The model is the default gbdt on a sample of lending-club-default, loaded as the service
loads it (SHA-256 and golden-input check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loanrisk.learn.pipeline import LearnOptions, learn
from loanrisk.registry import Registry
from loanrisk.scoring.scorer import Scorer

pytestmark = pytest.mark.slow
NAME = "behaviour-default"


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    res = learn(LearnOptions(dataset="lending-club-default", name=NAME, models=("majority", "gbdt"),
                             sample=4000, progress=False, use_tuned=False))
    assert res.version is not None and res.best == "gbdt"
    model_dir: Path = Registry().download(NAME, res.version.version)
    return Scorer.load(model_dir)


def _monotone(s: Scorer) -> dict[str, int]:
    """Served numeric attributes with a declared direction: +1 more is riskier, -1 safer."""
    return {a["name"]: int(a["monotone"]) for a in s.schema["attributes"]
            if a.get("monotone") and a["name"] in s.features and s.inputs[a["name"]] != "string"}


def _extremes(s: Scorer) -> tuple[dict[str, Any], dict[str, Any]]:
    """(strong, weak): the reference applicant with every monotone attribute at the safe or the
    risky end of its training range."""
    ref = dict(s.manifest["reference"])
    strong, weak = dict(ref), dict(ref)
    for name, sign in _monotone(s).items():
        lo, hi = s.manifest["ranges"][name]
        strong[name], weak[name] = (lo, hi) if sign > 0 else (hi, lo)
    return strong, weak


def test_minimum_functionality_strong_approved_weak_declined_with_reasons(scorer: Scorer) -> None:
    assert len(_monotone(scorer)) >= 5  # the bundled schema declares seven
    strong, weak = _extremes(scorer)
    good, typical, bad = scorer.score([strong, dict(scorer.manifest["reference"]), weak])
    assert good.risk_score < typical.risk_score < bad.risk_score
    assert good.decision == "approve" and good.risk_tier == "low"
    assert bad.decision == "decline" and bad.risk_tier == "high"
    # principal reasons for the adverse action, in the schema's words, from the risky attributes
    words = {scorer.reason_words[scorer.features.index(n)] for n in _monotone(scorer)}
    assert bad.reasons and set(bad.reasons) <= words, bad.reasons
    assert "Interest rate offered is high" in bad.reasons


@pytest.mark.parametrize("start", ["reference", "strong", "weak"])
def test_directional_risk_follows_each_declared_direction(scorer: Scorer, start: str) -> None:
    strong, weak = _extremes(scorer)
    base = {"reference": dict(scorer.manifest["reference"]), "strong": strong, "weak": weak}[start]
    moved = []
    for name, sign in _monotone(scorer).items():
        lo, hi = scorer.manifest["ranges"][name]
        grid = np.linspace(lo, hi, 25)
        risk = scorer.predict_proba([{**base, name: float(v)} for v in grid])[:, -1]
        steps = sign * np.diff(risk)
        assert steps.min() >= -1e-6, f"{name}: risk moves against its direction ({steps.min()})"
        if sign * (risk[-1] - risk[0]) > 1e-3:  # flat is allowed (an attribute the trees skip)
            moved.append(name)
    assert "int_rate" in moved, moved  # the strongest signal in this data does move the risk


def test_invariance_batch_company_and_key_order(scorer: Scorer) -> None:
    strong, weak = _extremes(scorer)
    typical = dict(scorer.manifest["reference"])
    alone = scorer.score([weak])[0]
    in_batch = scorer.score([strong, typical, weak, strong])[2]
    assert in_batch.reasons == alone.reasons and in_batch.decision == alone.decision
    assert abs(in_batch.risk_score - alone.risk_score) <= 1e-6
    reordered = dict(reversed(list(weak.items())))
    again = scorer.score([reordered])[0]
    assert again.reasons == alone.reasons and again.probabilities == alone.probabilities
    # a value equal to the reference never appears as a reason
    assert scorer.score([typical])[0].reasons == []
