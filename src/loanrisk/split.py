"""Seeded stratified splits: train / validation / evaluation row indices.

The evaluation part (``eval_size`` of all rows, 30% by default) is held out first; the validation
part (``val_size`` of the *remaining training rows*, 15% by default) is then carved from train,
also stratified. Both steps are deterministic for a seed. Indices come back sorted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from loanrisk.errors import DataError
from loanrisk.schema import label_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Row positions (int64, sorted) of the three parts; together they cover every row once."""

    train: np.ndarray
    val: np.ndarray
    eval: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Number of rows in each part."""
        return {"train": len(self.train), "val": len(self.val), "eval": len(self.eval)}


def _per_class_split(idx: np.ndarray, y: np.ndarray, *, size: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fallback stratification: each class gives round(size * n) rows to the held-out part,
    keeping at least one row in the remaining part (a class of one stays on the keep side)."""
    keep: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for c in np.unique(y[idx]):
        members = rng.permutation(idx[y[idx] == c])
        k = min(int(round(size * members.size)), members.size - 1)
        held.append(members[:k])
        keep.append(members[k:])
    return np.concatenate(keep), np.concatenate(held)


def _two_way(idx: np.ndarray, y: np.ndarray, *, size: float, seed: int,
             what: str) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (keep, held) split of positions ``idx``; sklearn first, per-class fallback."""
    from sklearn.model_selection import train_test_split

    try:
        keep, held = train_test_split(idx, test_size=size, random_state=seed,
                                      stratify=y[idx], shuffle=True)
        return np.asarray(keep), np.asarray(held)
    except ValueError as e:  # a class too small for sklearn's stratification
        log.warning("stratified %s split not possible (%s); splitting each class by hand",
                    what, e)
        return _per_class_split(idx, y, size=size, rng=np.random.default_rng(seed))


def split(y: ArrayLike, *, seed: int, eval_size: float = 0.3, val_size: float = 0.15,
          names: Sequence[str] | None = None) -> Split:
    """Stratified train / val / eval positions for target ``y`` (labels or class indices).

    ``eval_size`` is a share of all rows; ``val_size`` a share of the rows left for training
    (``val_size=0`` gives an empty validation part). Raises DataError when a class has fewer than
    two rows (it cannot appear in both training and evaluation) or when the sizes are invalid.
    ``names``: the class labels when ``y`` holds class indices (for messages)."""
    labels = np.asarray([label_of(v) for v in np.asarray(y, dtype=object).ravel()], dtype=object)
    if not 0 < eval_size < 1:
        raise DataError(f"eval_size must be between 0 and 1, not {eval_size}")
    if not 0 <= val_size < 1:
        raise DataError(f"val_size must be at least 0 and below 1, not {val_size}")
    if labels.size == 0:
        raise DataError("cannot split an empty table: it has no rows with a target value")
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise DataError(f"the target has a single class {classes.tolist()}; a model needs at "
                        "least two classes to learn from")
    def name(c: Any) -> str:
        if names is not None and isinstance(c, (int, np.integer)) and 0 <= c < len(names):
            return repr(str(names[int(c)]))
        return repr(c)

    rare = [f"{name(c)} ({n} row)" for c, n in zip(classes, counts, strict=True) if n < 2]
    if rare:
        raise DataError(f"class(es) {', '.join(rare)} have fewer than 2 rows, so they cannot be "
                        "in both the training and the evaluation split; add rows, merge the "
                        "class into a neighbour, or drop those rows")
    codes = np.searchsorted(classes, labels)
    everything = np.arange(labels.size)
    train, ev = _two_way(everything, codes, size=eval_size, seed=seed, what="train/eval")
    if val_size > 0:
        train, val = _two_way(train, codes, size=val_size, seed=seed + 1, what="train/val")
    else:
        val = np.empty(0, dtype=np.int64)
    parts = [np.sort(p).astype(np.int64) for p in (train, val, ev)]
    return Split(train=parts[0], val=parts[1], eval=parts[2])
