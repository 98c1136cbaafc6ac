"""Profiles of attributes, their association with the target, and the leakage check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loanrisk.datasets import load_bundled
from loanrisk.profile import Leak, auc_of, cramers_v, leakage_check, profile, spearman
from loanrisk.schema import Attribute, Schema


@pytest.fixture(scope="module")
def grades() -> tuple[pd.DataFrame, Schema]:
    return load_bundled("lending-club-grades")


def test_profile_fields_on_a_small_frame() -> None:
    s = Schema(name="t", target="y", classes=["good", "bad"], attributes=[
        Attribute("x", "numeric"), Attribute("c", "categorical"), Attribute("id", "identifier")])
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan, 10.0, 20.0],
                       "c": ["a", "a", "b", "a", np.nan, "b"],
                       "id": list("uvwxyz"),
                       "y": ["good", "good", "good", "bad", "bad", "bad"]})
    p = profile(df, s)
    assert p.rows == 6 and p.task == "binary" and p.class_counts == {"good": 3, "bad": 3}
    x = p.attribute("x")
    assert (x.count, x.missing_share, x.distinct) == (5, 1 / 6, 5)
    assert x.mean == pytest.approx(7.2) and x.min == 1.0 and x.max == 20.0 and x.p50 == 3.0
    assert x.association_metric == "roc_auc" and x.association == pytest.approx(1.0)
    c = p.attribute("c")
    assert c.top[0] == {"value": "a", "count": 3, "share": 0.5} and c.mean is None
    assert c.association_metric == "cramers_v" and 0 < c.association <= 1
    assert p.attribute("id").association is None and p.attribute("id").top == []
    json.dumps(p.to_dict(), allow_nan=False)  # NaN-free, JSON-able


def test_association_helpers() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc_of(np.array([1.0, 2, 3, 4]), y == 1) == 1.0
    assert auc_of(np.array([4.0, 3, 2, 1]), y == 1) == 0.0
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([0, 1, 2, 3])) == pytest.approx(1.0)
    assert cramers_v(np.array([0, 0, 1, 1]), y, 2) == pytest.approx(1.0)
    assert cramers_v(np.array([0, 1, 0, 1]), y, 2) == pytest.approx(0.0)


def test_profile_of_the_grade_data_is_complete(grades: tuple) -> None:
    df, s = grades
    p = profile(df, s)
    assert len(p.attributes) == 54 and sum(p.class_counts.values()) == 10_000
    rate = p.attribute("interest_rate")
    assert rate.association_metric == "spearman" and rate.association > 0.9
    assert p.attribute("months_since_last_delinq").missing_share == pytest.approx(0.5658)
    assert len(p.attribute("state").top) == 10
    doc = p.to_dict()
    assert {"count", "missing_share", "distinct", "mean", "std", "min", "p01", "p05", "p25",
            "p50", "p75", "p95", "p99", "max", "top", "association"} <= set(doc["attributes"][1])
    json.dumps(doc, allow_nan=False)


def test_leakage_names_interest_rate_on_the_grade_data(grades: tuple) -> None:
    df, s = grades
    leaks = leakage_check(df, s, attributes=s.feature_attributes(allow_leaky=True),
                          threshold=0.98, seed=42)
    assert [lk.attribute for lk in leaks] == ["interest_rate"]
    assert leaks[0].score > 0.99 and leaks[0].metric == "accuracy"
    assert "interest_rate alone predicts grade with 99." in leaks[0].explanation


def test_no_leak_among_applicant_attributes(grades: tuple) -> None:
    df, s = grades
    assert leakage_check(df, s, attributes=s.feature_attributes(), threshold=0.98, seed=0) == []
    # and the excluded sub_grade, checked by name, is the target with a digit
    (lk,) = leakage_check(df, s, attributes=["sub_grade"], threshold=0.98, seed=0)
    assert lk.score == pytest.approx(1.0)


def test_leakage_binary_uses_roc_auc() -> None:
    rng = np.random.default_rng(0)
    y = np.where(rng.random(600) < 0.2, "bad", "good")
    df = pd.DataFrame({"copy": np.where(y == "bad", "B", "G"), "noise": rng.normal(size=600),
                       "y": y})
    s = Schema(name="t", target="y", classes=["good", "bad"],
               attributes=[Attribute("copy", "categorical"), Attribute("noise", "numeric")])
    leaks = leakage_check(df, s, attributes=None, threshold=0.9, seed=1)
    assert leaks == [Leak("copy", pytest.approx(1.0), "roc_auc", target="y")]  # type: ignore
    assert "ROC-AUC 1.000" in leaks[0].explanation
    scores = leakage_check(df, s, attributes=None, threshold=0.0, seed=1)
    assert [lk.attribute for lk in scores] == ["copy", "noise"]  # sorted by score
    assert scores[1].score < 0.7
