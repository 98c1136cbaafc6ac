"""Seeded stratified train / val / eval splits."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.errors import DataError
from loanrisk.split import split


def labels(n: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.choice(7, size=n, p=[0.3, 0.25, 0.2, 0.12, 0.08, 0.04, 0.01])


def test_parts_cover_every_row_once_with_the_right_sizes() -> None:
    y = labels()
    s = split(y, seed=42)
    allrows = np.concatenate([s.train, s.val, s.eval])
    assert np.array_equal(np.sort(allrows), np.arange(y.size))
    assert len(s.eval) == 300
    assert len(s.val) == pytest.approx(0.15 * 700, abs=1)
    assert s.train.dtype == np.int64 and np.all(np.diff(s.train) > 0)
    assert s.sizes() == {"train": len(s.train), "val": len(s.val), "eval": len(s.eval)}


def test_stratification_preserved() -> None:
    y = labels()
    s = split(y, seed=1)
    whole = np.bincount(y, minlength=7) / y.size
    for part in (s.train, s.val, s.eval):
        share = np.bincount(y[part], minlength=7) / part.size
        assert np.abs(share - whole).max() < 0.02
        assert set(y[part]) == set(range(7))  # even the 1% class appears everywhere


def test_same_seed_same_split_other_seed_other_split() -> None:
    y = labels()
    a, b, c = split(y, seed=7), split(y, seed=7), split(y, seed=8)
    for p in ("train", "val", "eval"):
        assert np.array_equal(getattr(a, p), getattr(b, p))
    assert not np.array_equal(a.eval, c.eval)


def test_string_labels_and_no_validation() -> None:
    y = np.array(["good"] * 90 + ["bad"] * 10)
    s = split(y, seed=0, eval_size=0.2, val_size=0)
    assert len(s.val) == 0 and len(s.eval) == 20
    assert (y[s.eval] == "bad").sum() == 2


def test_tiny_classes_fall_back_but_stay_on_both_sides() -> None:
    y = np.array([0] * 50 + [1] * 50 + [2] * 2)  # class 2 too small for a stratified val carve
    s = split(y, seed=0)
    assert np.array_equal(np.sort(np.concatenate([s.train, s.val, s.eval])), np.arange(y.size))
    assert 2 in y[s.train] and 2 in y[s.eval]


def test_a_class_with_one_row_is_a_clear_error() -> None:
    y = np.array(["A"] * 20 + ["B"] * 20 + ["G"])
    with pytest.raises(DataError, match=r"'G' \(1 row\).*fewer than 2 rows"):
        split(y, seed=0)
    with pytest.raises(DataError, match="single class"):
        split(np.zeros(10), seed=0)
    with pytest.raises(DataError, match="eval_size"):
        split(labels(), seed=0, eval_size=1.5)
