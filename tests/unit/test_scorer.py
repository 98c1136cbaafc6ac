"""Scorer: verification on load, decisions, tiers, reasons; the serving path stays small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402

from loanrisk.config import Settings  # noqa: E402
from loanrisk.errors import ModelLoadError  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("b") / "m")


def test_binary_decisions_tiers_reasons(binary: Path) -> None:
    s = Scorer.load(binary, settings=Settings(tier_medium=0.1, tier_high=0.25,
                                              decline_threshold=0.25))
    good, bad = s.score([GOOD, BAD])
    assert good.decision == "approve" and bad.decision == "decline"
    assert bad.risk_tier == "high" and good.risk_tier in {"low", "medium"}
    assert abs(sum(bad.probabilities.values()) - 1) < 1e-6
    # worst first; "purpose" has no reason words: the description is used, with the category
    assert bad.reasons == ["Debt-to-income ratio is high", "Purpose of the loan: debt",
                           "Income is low"]
    assert "Income is low" not in good.reasons  # a high income pushed toward approval
    # batched and single calls agree
    single = s.score([BAD])[0]
    assert single.probabilities == pytest.approx(bad.probabilities, abs=1e-6)
    assert single.reasons == bad.reasons


def test_decline_always_has_a_reason(binary: Path) -> None:
    # at the reference values nothing pushes toward decline, yet a decline needs a reason
    s = Scorer.load(binary, settings=Settings(decline_threshold=0.01))
    ref = {"income": 60000.0, "dti": 15.0, "purpose": "car"}
    d = s.score([ref])[0]
    assert d.decision == "decline" and len(d.reasons) == 1


def test_max_reasons_and_missing_values(binary: Path) -> None:
    s = Scorer.load(binary, settings=Settings(max_reasons=1))
    d = s.score([{**BAD, "dti": None}])[0]
    assert len(d.reasons) == 1
    assert s.predict_proba([{"income": None, "dti": None, "purpose": None}]).shape == (1, 2)


def test_values_read_as_the_graph_wants_them(binary: Path) -> None:
    """Numbers may come as ints or numeric strings; a value that is no number, "" and None are
    all missing (NaN); categories are strings, None is "" (missing)."""
    s = Scorer.load(binary, settings=Settings())
    fl, st = s._matrices([{"income": 15000, "dti": "38.5", "purpose": None},
                          {"income": "lots", "dti": "", "purpose": 7}])
    assert fl.dtype == np.float32 and st.dtype == object
    assert fl[0].tolist() == [15000.0, 38.5] and np.isnan(fl[1]).all()
    assert st[:, 0].tolist() == ["", "7"]
    same = s.score([{**BAD, "income": "abc"}])[0]
    assert same == s.score([{**BAD, "income": None}])[0]
    feed = s._feed_from(fl, st)
    assert all(v.shape == (2, 1) and v.flags.c_contiguous for v in feed.values())


def test_multiclass_grades(tmp_path: Path) -> None:
    s = Scorer.load(build_model_dir(tmp_path / "g", task="multiclass"))
    good, bad = s.score([GOOD, BAD])
    assert good.decision == "A" and bad.decision == "C"
    assert list(bad.probabilities) == ["A", "B", "C"]
    # risk score = mass on the worse half of the grades (C of A/B/C)
    assert bad.risk_score == pytest.approx(bad.probabilities["C"])
    assert bad.reasons[0] == "Debt-to-income ratio is high"


def test_refuses_tampered_or_failing_models(tmp_path: Path) -> None:
    d = build_model_dir(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="registry"):
        Scorer.load(d, expected_sha256="0" * 64)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["golden"]["probabilities"][0][0] += 1e-3
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="golden"):
        Scorer.load(d)
    other = build_model_dir(tmp_path / "o", w_dti=0.3)
    (d / "model.onnx").write_bytes((other / "model.onnx").read_bytes())
    with pytest.raises(ModelLoadError, match="SHA-256"):
        Scorer.load(d)
    (d / "schema.json").unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        Scorer.load(d)


def test_graph_inputs_must_match_the_features_and_public_run_still_works(tmp_path: Path) -> None:
    d = build_model_dir(tmp_path / "m")
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["features"] = manifest["features"][1:]  # the graph still wants the first one
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="needs inputs"):
        Scorer.load(d)
    s = Scorer.load(build_model_dir(tmp_path / "n"))
    fast = s.score([GOOD, BAD])
    s._run_raw = None  # onnxruntime's public run(), as with a binding that differs
    assert s.score([GOOD, BAD]) == fast


def test_one_application_repeatedly_gives_the_same_decision(binary: Path) -> None:
    """Validation + scoring + reasons of one application, as the latency benchmark runs them
    (bench/bench_service.py holds the speed figure; a timed test would flake on a busy machine)."""
    from loanrisk.serving import Served

    served = Served.load(binary, settings=Settings())
    first = None
    for _ in range(50):
        obj, _ = served.validator.validate(GOOD)
        assert obj is not None
        got = served.scorer.score([obj.model_dump()])[0]
        first = first or got
        assert got == first


def test_serving_path_imports_no_training_stack() -> None:
    code = ("import sys; import loanrisk.api.app, loanrisk.scoring.scorer, loanrisk.store, "
            "loanrisk.scoring.validation, loanrisk.store.lake, loanrisk.serving, "
            "loanrisk.cli.service; "
            "bad = [m for m in ('torch', 'lightgbm', 'sklearn', 'mlflow', 'onnx', 'pandas', "
            "'matplotlib') if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_thresholds_come_from_the_version_unless_configured(tmp_path: Path) -> None:
    path = build_model_dir(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["decision"] = {"rule": "max_bad_rate", "decline_threshold": 0.999,
                            "tiers": {"medium": 0.5, "high": 0.999}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    s = Scorer.load(path, settings=Settings())
    assert s.thresholds["decline_threshold"] == 0.999 and "max_bad_rate" in \
        s.thresholds["source"]
    [bad] = s.score([BAD])
    assert bad.decision == "approve"  # P(bad) is high, but below the version's threshold
    assert bad.risk_tier == "medium"
    # an explicit setting wins over the version's rule
    strict = Scorer.load(path, settings=Settings(decline_threshold=0.01))
    assert strict.score([BAD])[0].decision == "decline"
    assert strict.thresholds["tier_medium"] == 0.5  # the rest still from the version
    assert "configuration" in strict.thresholds["source"]
    assert strict.describe()["thresholds"]["decline_threshold"] == 0.01


def test_float32_noise_never_adds_or_reorders_reasons(binary: Path) -> None:
    """A record scored alone or in a batch can differ by a few float32 units (6e-8) in the
    graph's output: seen as a third reason of 3e-8 that a replay then lacked. Such noise is
    below what counts as a reason and below the resolution reasons are ranked at."""
    import numpy as np

    s = Scorer.load(binary)
    records = [GOOD, BAD, {**BAD, "purpose": "other"}]
    _, rec_idx, feat_idx = s._variants(*s._matrices(records))
    unused = s.features.index("purpose")  # as if the model ignored purpose: no effect at all
    run = s._run

    def exact(feed: dict) -> np.ndarray:
        p = run(feed)
        for j in np.flatnonzero(feat_idx == unused):
            p[len(records) + j] = p[rec_idx[j]]
        return p

    s._run = exact
    clean = [d.reasons for d in s.score(records)]
    rng = np.random.default_rng(0)
    try:
        for _ in range(20):
            s._run = lambda feed: (lambda p: p + rng.choice([-1, 0, 1], size=p.shape) * 6e-8)(
                exact(feed))
            assert [d.reasons for d in s.score(records)] == clean
    finally:
        s._run = run


def test_reason_words_fit_the_value(binary: Path) -> None:
    from loanrisk.scoring.words import phrase_sides, without_side

    assert phrase_sides("Income is low") == ("low", "Income is high")
    assert phrase_sides("Loan term is long") == ("high", "Loan term is short")
    assert phrase_sides("Many recent credit inquiries") == ("high", "Few recent credit inquiries")
    assert phrase_sides("State of residence") == (None, "State of residence")
    s = Scorer.load(binary)
    words = dict(zip(s.features, s.reason_words, strict=True))
    k = s.features.index("income")
    fl, st = s._matrices([{**BAD, "income": 300000.0}, {**BAD, "dti": None}])
    # a sided phrase turns when the value lies on the other side of the reference (60,000)
    assert s._worded(k, fl[0], st[0]) == words["income"].replace(" is low", " is high")
    bad_fl, bad_st = s._matrices([BAD])
    assert s._worded(k, bad_fl[0], bad_st[0]) == words["income"]  # 20,000: low, as the phrase
    # missing: no side asserted ("Debt-to-income ratio is high (not provided)" would be wrong)
    assert s._worded(s.features.index("dti"), fl[1], st[1]) == \
        without_side(words["dti"]) + " (not provided)"
    assert without_side("Many recent credit inquiries") == "Recent credit inquiries"
    assert phrase_sides("First credit line is recent") == ("high", "First credit line is old")


def test_reference_is_missing_where_most_rows_lack_the_attribute() -> None:
    import pandas as pd

    from loanrisk.manifest import reference_values

    df = pd.DataFrame({"joint_income": [None] * 7 + [80000.0, 90000.0, 100000.0],
                       "joint_verified": [None] * 7 + ["yes", "no", "yes"],
                       "income": [50000.0] * 9 + [None]})
    ref = reference_values(df, {"joint_income": "float", "joint_verified": "string",
                                "income": "float"})
    assert ref == {"joint_income": None, "joint_verified": None, "income": 50000.0}


def test_category_reasons_use_the_schema_labels(binary: Path, tmp_path: Path) -> None:
    """A categorical reason names the value in the schema's plain words when it has them."""
    import shutil

    labelled = tmp_path / "labelled"
    shutil.copytree(binary, labelled)
    schema = json.loads((labelled / "schema.json").read_text())
    for attr in schema["attributes"]:
        if attr["name"] == "purpose":
            attr["labels"] = {"debt": "paying off other debts"}
    (labelled / "schema.json").write_text(json.dumps(schema))
    plain, words = Scorer.load(binary), Scorer.load(labelled)
    k = plain.features.index("purpose")
    fl, st = plain._matrices([BAD, GOOD])  # purpose "debt", then "car" (no label)
    assert plain._worded(k, fl[0], st[0]).endswith(": debt")
    assert words._worded(k, fl[0], st[0]).endswith(": paying off other debts")
    assert words._worded(k, fl[1], st[1]).endswith(": car")  # no label: the code itself

