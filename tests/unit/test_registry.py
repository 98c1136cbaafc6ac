"""The registry: immutable versions, the promotion gate, rollback, hash verification."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from model_factory import registry_copy

from loanrisk.errors import ModelLoadError, RegistryError
from loanrisk.learn.pipeline import LearnOptions, learn
from loanrisk.registry import Registry

NAME = "grades-test"


def _learn(models: tuple[str, ...], *, promote: bool = True) -> int:
    res = learn(LearnOptions(dataset="lending-club-grades", name=NAME, models=models,
                             sample=1500, progress=False, promote=promote))
    assert res.version is not None
    return res.version.version


@pytest.mark.slow
def test_gate_promote_refuse_force_rollback(fresh_home: Path) -> None:
    reg = Registry()
    v1 = _learn(("majority", "gbdt"))
    assert reg.champion(NAME).version == v1  # first version becomes champion

    v2 = _learn(("majority",))  # no skill: must not replace the champion
    res = reg.promote(NAME, v2)
    assert not res.promoted and "does not beat" in res.reason
    assert res.candidate_score < res.champion_score
    assert reg.champion(NAME).version == v1

    forced = reg.promote(NAME, v2, force=True)
    assert forced.promoted and reg.champion(NAME).version == v2

    back = reg.rollback(NAME)
    assert back.version == v1 and reg.champion(NAME).version == v1

    versions = reg.list_versions(NAME)
    assert [v.version for v in versions] == [v1, v2]
    assert versions[0].sha256 and versions[0].metrics["roc_auc"] > 0.6
    assert "champion" in versions[0].aliases

    # a tampered cache copy is repaired from the registry's copy, file by file
    d = reg.download(NAME, v1)
    good = {p.name: p.read_bytes() for p in d.iterdir()}
    (d / "model.onnx").write_bytes(b"tampered")
    (d / "manifest.json").write_text("{}")
    (d / "extra.txt").write_text("planted")
    assert {p.name: p.read_bytes() for p in reg.download(NAME, v1).iterdir()} == good
    # the registry's own copy tampered: refused, and nothing unverified is left in the cache
    (registry_copy(reg, NAME, v1) / "schema.json").write_text("{}")
    shutil.rmtree(d)
    with pytest.raises(ModelLoadError, match="schema.json differs from the registered SHA-256"):
        reg.download(NAME, v1)
    assert not d.exists()


def test_unknown_model_and_version_are_clear_errors(fresh_home: Path) -> None:
    reg = Registry()
    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        reg.list_versions("nope")
    with pytest.raises(RegistryError):
        reg.rollback("nope")


@pytest.mark.slow
def test_leaky_version_is_never_promoted_without_force(fresh_home: Path) -> None:
    reg = Registry()
    res = learn(LearnOptions(dataset="lending-club-grades", name=NAME, models=("majority", "gbdt"),
                             sample=1500, progress=False))
    v1 = res.version.version
    leaky = learn(LearnOptions(dataset="lending-club-grades", name=NAME, allow_leaky=True,
                               models=("majority", "linear"), sample=1500, progress=False))
    assert leaky.promotion is not None and not leaky.promotion.promoted
    assert "leaky" in leaky.promotion.reason and "interest_rate" in leaky.promotion.reason
    assert reg.champion(NAME).version == v1


def test_service_names_the_known_models_when_asked_for_an_unknown_one(fresh_home: Path) -> None:
    from loanrisk.config import get_settings
    from loanrisk.serving import ModelHolder

    holder = ModelHolder(get_settings(), model_name="lending-club-defualt")  # a typo
    assert holder.check_registry() is False and holder.current is None
    assert holder.last_error is not None
    assert "no model named 'lending-club-defualt' (known: none)" in holder.last_error
    assert "`loanrisk learn`" in holder.last_error
