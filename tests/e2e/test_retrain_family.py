"""The weekly loop retrains the champion's own family (issue 17): an ensemble champion is
retrained as an ensemble of the same design and parameters, so the gate compares like with like;
the lender's own table joins the stored outcomes with --with-data, and one that does not fit the
champion's schema is refused before anything is trained."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from watch_helpers import add_outcomes, fill_store, records  # noqa: E402

from loanrisk.config import get_settings  # noqa: E402
from loanrisk.datasets import load_bundled  # noqa: E402
from loanrisk.errors import LoanriskError  # noqa: E402
from loanrisk.learn.pipeline import LearnOptions, learn  # noqa: E402
from loanrisk.registry import Registry  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.watch.retrain import RetrainOptions, champion_family, learn_from_store  # noqa: E402

NAME = "grades-family"
QUICK = {"mlp_config": "reference", "mlp": {"max_epochs": 3}, "gbdt": {"n_jobs": 1}}


def test_champion_family_reads_the_manifest() -> None:
    models, fields = champion_family({"model": "ensemble", "training": {
        "family": "ensemble", "mlp_config": "reference", "calibrate": True,
        "overrides": {"mlp": {"max_epochs": 3}, "gbdt": {"num_leaves": 15}, "linear": {}}}})
    assert models == ("majority", "linear", "mlp", "gbdt", "ensemble")
    assert fields == {"family": "ensemble", "mlp_config": "reference", "calibrate": True,
                      "mlp": {"max_epochs": 3}, "gbdt": {"num_leaves": 15}, "linear": {}}
    # a version registered before the manifest said how it was trained: its model kind
    assert champion_family({"model": "gbdt"}) == (("majority", "linear", "gbdt"),
                                                  {"family": "gbdt"})


@pytest.mark.slow
def test_an_ensemble_champion_is_retrained_as_an_ensemble(fresh_home: Path,
                                                          tmp_path: Path) -> None:
    first = learn(LearnOptions(dataset="lending-club-grades", name=NAME, sample=1500,
                               models=("majority", "mlp", "gbdt", "ensemble"), progress=False,
                               mlp_config=QUICK["mlp_config"], mlp=QUICK["mlp"],
                               gbdt=QUICK["gbdt"], family="ensemble"))
    assert first.version is not None and first.best == "ensemble"  # the lender chose it
    v1 = first.version.version
    reg = Registry()
    if reg.champion(NAME) is None or reg.champion(NAME).version != v1:
        assert reg.promote(NAME, v1, force=True).promoted
    scorer = reg.load_scorer(NAME, v1)
    df, _ = load_bundled("lending-club-grades")
    df = df[df["grade"] != "G"]  # G is 0.1% of rows: too few in these samples to split
    stored = df.sample(700, random_state=3).reset_index(drop=True)
    recs = records(stored, scorer.features)
    store = Store(get_settings().resolved_database_url)
    ids = fill_store(store, recs, scorer.score(recs), model=NAME, version=v1,
                     sha256=scorer.sha256)
    add_outcomes(store, ids, stored["grade"].tolist())
    store.close()

    # the lender's own table (not bundled) that does not fit the schema: refused, nothing trained
    bad = df.sample(300, random_state=4)
    bad["annual_income"] = "plenty"  # words where the schema says a number
    bad.to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(LoanriskError, match="annual_income"):
        learn_from_store(RetrainOptions(model=NAME, with_data=tmp_path / "broken.csv",
                                        gbdt={"n_jobs": 1}))
    assert [v.version for v in reg.list_versions(NAME)] == [v1]

    # the lender's own history joins the store's rows; the champion's family is retrained
    own = df.sample(900, random_state=5)
    own.to_csv(tmp_path / "our_book.csv", index=False)
    res = learn_from_store(RetrainOptions(model=NAME, with_data=tmp_path / "our_book.csv",
                                          gbdt={"n_jobs": 1}))
    assert res.family == "ensemble" and res.rows_from_store == 700 and res.rows_from_data == 900
    new = reg.info(NAME, res.version)
    assert new.model == "ensemble"  # like with like: the gate compared ensemble with ensemble
    assert res.reason and f"champion v{v1}" in res.reason
    manifest = json.loads((reg.download(NAME, res.version) / "manifest.json").read_text())
    assert manifest["training"]["mlp_config"] == "reference"
    assert manifest["training"]["overrides"]["mlp"] == {"max_epochs": 3}
    reports = sorted((get_settings().reports_dir / NAME).glob("*/report.md"))
    assert "rows learnt from: 700 from the store (44%), 900 from our_book.csv (56%)" in \
        reports[-1].read_text()

    # --models still chooses
    chosen = learn_from_store(RetrainOptions(model=NAME, models=("majority", "gbdt"),
                                             gbdt={"n_jobs": 1}, promote=False))
    assert chosen.family is None and reg.info(NAME, chosen.version).model == "gbdt"
