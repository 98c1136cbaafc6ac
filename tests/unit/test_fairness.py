"""Fairness: group approval rates, the adverse-impact ratio, the gate refusing an unfair one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import PURPOSE, build_model_dir, register_dir  # noqa: E402

from loanrisk.registry import Registry  # noqa: E402
from loanrisk.registry.fairness import group_fairness  # noqa: E402


def test_adverse_impact_ratio_is_min_over_max_approval_rate() -> None:
    groups = np.array(["a"] * 100 + ["b"] * 100 + ["c"] * 5 + [None] * 10, dtype=object)
    ok = np.r_[np.ones(80), np.zeros(20), np.ones(40), np.zeros(65), np.ones(10)].astype(bool)
    f = group_fairness(groups, ok, attribute="group")
    assert f.approval_rates == {"a": 0.8, "b": 0.4, "c": 0.0}
    assert f.ratio == pytest.approx(0.5) and (f.lowest, f.highest) == ("b", "a")
    assert f.ignored == ["c"]  # too few rows to judge; missing values are left out
    assert "0.50" in f.describe() and "a 80%" in f.describe()


def _eval_with_group(path: Path, n: int = 2000, seed: int = 0) -> None:
    """Group b has higher debt-to-income (a proxy); outcomes follow dti, income and purpose."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n)
    income = rng.uniform(10000, 150000, n)
    dti = np.where(group == "b", rng.uniform(15, 40, n), rng.uniform(0, 20, n))
    purpose = rng.choice(list(PURPOSE), n)
    z = -2.0 * income * 1e-5 + 0.3 * dti + np.vectorize(PURPOSE.get)(purpose) - 1.0
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    pd.DataFrame({"income": income, "dti": dti, "purpose": purpose, "group": group,
                  "__y__": y}).to_parquet(path / "eval.parquet", index=False)


def _version(root: Path, *, name: str, w_dti: float, protected: bool) -> Path:
    d = build_model_dir(root, name=name, w_dti=w_dti)
    schema = json.loads((d / "schema.json").read_text())
    schema["attributes"].append({"name": "group", "type": "categorical", "protected": protected,
                                 "description": "Synthetic protected attribute (tests)."})
    (d / "schema.json").write_text(json.dumps(schema))
    _eval_with_group(d)
    return d


@pytest.mark.parametrize("protected", [True, False])
def test_gate_refuses_a_challenger_built_to_be_unfair(fresh_home: Path, tmp_path: Path,
                                                      protected: bool) -> None:
    reg, name = Registry(), f"fair-{protected}"
    # the champion ignores debt-to-income: both groups are approved alike
    v1 = register_dir(reg, _version(tmp_path / "v1", name=name, w_dti=0.0,
                                    protected=protected), name=name)
    assert reg.promote(name, v1).promoted
    # the challenger leans on debt-to-income, a proxy for the group: more accurate, unfair
    v2 = register_dir(reg, _version(tmp_path / "v2", name=name, w_dti=0.3,
                                    protected=protected), name=name)
    res = reg.promote(name, v2)
    if not protected:  # without a declared protected attribute the gate only sees accuracy
        assert res.promoted and "beats champion" in res.reason
        return
    assert not res.promoted, res.reason
    assert "adverse-impact ratio on 'group'" in res.reason and "below 0.80" in res.reason
    assert res.candidate_score > res.champion_score  # refused for fairness, not accuracy
    assert reg.champion(name).version == v1
    assert reg.promote(name, v2, force=True).promoted  # an explicit override still works
