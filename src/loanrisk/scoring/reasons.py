"""Reasons read off a scorecard's points: the attributes whose points fall furthest below their
maximum, from the same onnxruntime run that gives the probabilities (no extra rows).

A scorecard graph (loanrisk.models.scorecard_export) has a second output, "points" [N, A] in
double: each attribute's points for each row. Its metadata names the attribute of every column
("points_attributes"), the most points each attribute can give ("points_max") and the raw values
of each numeric attribute's best-scoring bins ("points_best", [low, high], None where open). An
attribute's shortfall (its maximum minus the applicant's points) is exact: it is the number of
points the applicant would gain with that attribute's best bin, everything else kept, the
industry's "points below maximum" adverse-action rule. The scorer ranks shortfalls as it ranks
substitution contributions (loanrisk.scoring.scorer), and words them the same way; a sided
phrase takes the side of the applicant's value relative to the best bins (an interest rate above
them is "high").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from loanrisk.errors import ModelLoadError

POINTS = "points"
REASONS_BY_POINTS = "points below maximum"
REASONS_BY_SUBSTITUTION = "substitution"


@dataclass(frozen=True)
class PointsReasons:
    """How to turn a graph's "points" output into reason contributions per feature."""

    columns: np.ndarray  # feature index of each points column
    maximum: np.ndarray  # (A,) the most points each column's attribute can give
    best: dict[int, tuple[float, float]]  # feature index -> raw (low, high) of its best bins
    scaling: dict[str, Any]  # pdo, base_points, base_odds

    @classmethod
    def from_graph(cls, session: Any, features: list[str], *, label: str
                   ) -> PointsReasons | None:
        """The graph's points metadata, or None when it has no "points" output.

        Raises ModelLoadError when the output and its metadata disagree, or name an attribute
        that is not among the manifest's features.
        """
        if POINTS not in {o.name for o in session.get_outputs()}:
            return None
        meta = session.get_modelmeta().custom_metadata_map
        try:
            names = [str(n) for n in json.loads(meta["points_attributes"])]
            maximum = np.asarray(json.loads(meta["points_max"]), dtype=np.float64)
            best = json.loads(meta.get("points_best") or "null") or [None] * len(names)
            scaling = dict(json.loads(meta.get("points_scaling") or "{}"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{label}: the graph outputs points but its metadata does not "
                                 f"describe them ({type(exc).__name__}: {exc})") from exc
        unknown = [n for n in names if n not in features]
        if unknown or maximum.shape != (len(names),) or len(best) != len(names):
            raise ModelLoadError(f"{label}: the graph's points columns ({names}) do not match "
                                 "its features or their maxima")
        pos = {f: k for k, f in enumerate(features)}
        columns = np.array([pos[n] for n in names], dtype=np.int64)
        ranges = {int(k): (_bound(b[0], -math.inf), _bound(b[1], math.inf))
                  for k, b in zip(columns, best, strict=True) if b is not None}
        return cls(columns=columns, maximum=maximum, best=ranges, scaling=scaling)

    def shortfall(self, points: np.ndarray, n_features: int) -> np.ndarray:
        """(n, n_features): each attribute's points below its maximum (0 for features the
        scorecard does not use)."""
        out = np.zeros((len(points), n_features))
        out[:, self.columns] = self.maximum - np.asarray(points, dtype=np.float64)
        return out

    def high_side(self, k: int, value: float) -> bool | None:
        """Whether a numeric value lies above (True) or below (False) the best bins of feature
        ``k``; None when it lies among them or ``k`` has no best range."""
        rng = self.best.get(k)
        if rng is None:
            return None
        low, high = rng
        if value > high:
            return True
        if value <= low:
            return False
        return None


def _bound(value: Any, default: float) -> float:
    return default if value is None else float(value)


def top_reasons(contrib: np.ndarray, adverse: list[bool], *, limit: int, minimum: float,
                resolution: int) -> list[list[int]]:
    """Per row, the features of the ``limit`` largest contributions above ``minimum`` (compared
    at ``resolution`` decimals, ties in feature order); an adverse row gets at least one."""
    n = len(contrib)
    contrib = np.round(contrib, resolution)
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :max(limit, 1)]
    # plain Python values from here: numpy scalars are slow to touch one by one
    top_k, top_c = order.tolist(), contrib[np.arange(n)[:, None], order].tolist()
    out: list[list[int]] = []
    for i in range(n):
        top = [k for k, c in zip(top_k[i][:limit], top_c[i][:limit], strict=True) if c > minimum]
        if adverse[i] and not top and top_k[i]:
            top = [top_k[i][0]]
        out.append(top)
    return out


def variants(fl: np.ndarray, st: np.ndarray, *, ref_float: np.ndarray, ref_string: np.ndarray,
             float_pos: np.ndarray, string_pos: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Substitution reasons' rows: the records (float and string matrices) followed by their
    reference variants, and each variant's (record, feature index).

    A variant is made only where a value differs from the reference (else it changes nothing),
    which keeps the batch small. Rows: the n records first, then the variants.
    """
    n = len(fl)
    same_f = (fl == ref_float) | (np.isnan(fl) & np.isnan(ref_float))
    rec_f, col_f = np.nonzero(~same_f)
    rec_s, col_s = np.nonzero(st != ref_string)
    vf, vs = len(rec_f), len(rec_s)
    rows = np.concatenate([np.arange(n), rec_f, rec_s])
    big_f, big_s = fl[rows], st[rows]
    big_f[n + np.arange(vf), col_f] = ref_float[col_f]
    big_s[n + vf + np.arange(vs), col_s] = ref_string[col_s]
    records = np.concatenate([rec_f, rec_s])
    features = np.concatenate([float_pos[col_f], string_pos[col_s]])
    return big_f, big_s, records, features
