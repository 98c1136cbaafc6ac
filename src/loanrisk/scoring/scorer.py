"""Score applications with a model version's ONNX graph: decision, risk tier and reasons.

Serving path: imports numpy and onnxruntime only (no pandas, torch, LightGBM, scikit-learn or
MLflow). A model version directory holds ``model.onnx``, ``schema.json`` and ``manifest.json``
(see docs/architecture.md, "Model version artifact").

Rules, stated once:

* **Decision.** Binary: ``decline`` when P(adverse class) >= the decline threshold, else
  ``approve``. Multiclass: the most probable grade (classes are ordered best to worst).
* **Thresholds** (decline, tier medium, tier high): the version's own ``manifest["decision"]``,
  set by ``learn`` on calibrated probabilities by a stated rule (see scoring.decision); a value
  set explicitly in the configuration (``LOANRISK_DECLINE_THRESHOLD``, ``LOANRISK_TIER_MEDIUM``,
  ``LOANRISK_TIER_HIGH``) overrides it; the configuration's defaults apply to a version without
  one. :attr:`Scorer.thresholds` says which values are used and where they came from.
* **Risk score** (drives the tier). Binary: P(adverse class). Multiclass: the probability mass on
  the worse half of the grades, i.e. the classes with index >= ceil(C / 2) (A..G: E, F, G).
  Tier: ``high`` if score >= tier high, ``medium`` if >= tier medium, else ``low``.
* **Reasons.** Each feature of a record is replaced by its reference value (the training median
  or mode) and the whole set of variants (records x features, plus the records themselves) is
  scored in ONE onnxruntime call. An attribute's contribution is how much the record's badness
  drops when it is replaced: P(adverse) for binary, the expected grade index for multiclass. The
  top ``max_reasons`` positive contributions, in the schema's plain ``reason`` words, are the
  reasons. An adverse decision (decline; a grade below the best) always gets at least one.
  Words fit the value: a phrase that names a side ("Income is low") turns to the other side
  ("Income is high") when the applicant's value lies above the typical one (the reference, or
  the median where the reference is "missing": an attribute most rows lack); a category is named
  ("Income verification: Verified"); a missing value reads "<topic> (not provided)".
* **A scorecard's reasons** (a graph with a "points" output, see scoring.reasons) are exact and
  cost no extra rows: an attribute's contribution is its points below its maximum, read off the
  same run, ranked and worded as above (a side is taken against the best-scoring bins).
  :attr:`Scorer.reasons_by` says which rule a version's reasons follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from loanrisk.config import Settings, get_settings
from loanrisk.errors import ModelLoadError
from loanrisk.integrity import ArtifactRecord, sha256_bytes
from loanrisk.scoring.decision import decision_thresholds
from loanrisk.scoring.reasons import (
    POINTS,
    REASONS_BY_POINTS,
    REASONS_BY_SUBSTITUTION,
    PointsReasons,
    top_reasons,
    variants,
)
from loanrisk.scoring.session import parse_json, read_bytes, serving_session
from loanrisk.scoring.words import NOT_PROVIDED, phrase_sides, typical_side, without_side

GOLDEN_TOLERANCE = 1e-5
# What counts as a push toward the worse outcome. The graph computes in float32: the same record
# can come out a few units of 6e-8 apart when it is scored in a batch of another size (other
# kernels), so changes below this are noise, never reasons; and contributions are compared at
# REASON_RESOLUTION, so such noise cannot reorder two reasons either.
REASON_MIN = 1e-5
REASON_RESOLUTION = 6
def _float_or_nan(value: Any) -> float:
    """``float(value)``, NaN for None."""
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Decision:
    """One scored application."""

    decision: str
    probabilities: dict[str, float]
    risk_score: float
    risk_tier: str
    reasons: list[str] = field(default_factory=list)


class Scorer:
    """A loaded, verified and warmed model version. Thread-safe (onnxruntime sessions are)."""

    def __init__(self, *, model_dir: Path, manifest: dict[str, Any], schema: dict[str, Any],
                 session: ort.InferenceSession, settings: Settings) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.schema = schema
        self.session = session
        self.settings = settings
        self.name: str = str(manifest.get("name") or schema.get("name") or model_dir.name)
        version = manifest.get("version")
        self.version: int | None = int(version) if version is not None else None
        # how messages name this version: "name v3" when registered, else its directory
        self.label = f"{self.name} v{self.version}" if self.version is not None else str(model_dir)
        self.sha256: str = str(manifest["sha256"])
        self.model_kind: str = str(manifest.get("model", "?"))
        self.classes: list[str] = [str(c) for c in manifest["classes"]]
        self.task: str = str(manifest.get("task") or
                             ("binary" if len(self.classes) == 2 else "multiclass"))
        self.features: list[str] = list(manifest["features"])
        self.inputs: dict[str, str] = dict(manifest["inputs"])
        missing = [f for f in self.features if f not in self.inputs]
        if missing:
            raise ModelLoadError(f"{model_dir}/manifest.json: features {missing} have no 'inputs' "
                                 "entry (float or string)")
        attrs = {a["name"]: a for a in schema.get("attributes", [])}
        self.reason_words: list[str] = [
            str(attrs.get(f, {}).get("reason") or attrs.get(f, {}).get("description") or f)
            for f in self.features
        ]
        self._sides = [phrase_sides(w) for w in self.reason_words]
        # plain words for category codes (schema "labels"), e.g. "term_60" -> "60 months"
        self._labels: list[dict[str, str]] = [dict(attrs.get(f, {}).get("labels") or {})
                                              for f in self.features]
        ref = manifest.get("reference", {})
        self._reference: list[Any] = [self._cell(f, ref.get(f)) for f in self.features]
        self._float_names = [f for f in self.features if self.inputs[f] != "string"]
        self._string_names = [f for f in self.features if self.inputs[f] == "string"]
        pos = {f: k for k, f in enumerate(self.features)}
        self._float_pos = np.array([pos[f] for f in self._float_names], dtype=np.int64)
        self._float_col = {pos[f]: j for j, f in enumerate(self._float_names)}
        self._string_col = {pos[f]: j for j, f in enumerate(self._string_names)}
        self._string_pos = np.array([pos[f] for f in self._string_names], dtype=np.int64)
        self._ref_float = np.array([self._reference[k] for k in self._float_pos],
                                   dtype=np.float32)
        # what "high" and "low" are measured against: the reference, or where the reference is
        # "missing" (an attribute most rows lack) the median of the values that are present
        typical = manifest.get("typical") or {}
        self._typical = [float(self._ref_float[j]) if not math.isnan(self._ref_float[j])
                         else _float_or_nan(typical.get(f))
                         for j, f in enumerate(self._float_names)]
        self._ref_string = np.array([self._reference[k] for k in self._string_pos], dtype=object)
        n_classes = len(self.classes)
        self._grade_index = np.arange(n_classes, dtype=np.float64)
        self._worse_from = math.ceil(n_classes / 2)
        self._output = "probabilities"
        self.thresholds: dict[str, Any] = decision_thresholds(manifest, settings)
        self.decline_threshold = float(self.thresholds["decline_threshold"])
        self.tier_medium = float(self.thresholds["tier_medium"])
        self.tier_high = float(self.thresholds["tier_high"])
        self._input_names = {i.name for i in session.get_inputs()}
        absent = [f for f in self.features if f not in self._input_names]
        if absent:
            raise ModelLoadError(f"{model_dir}/model.onnx has no inputs named {absent}")
        unfed = sorted(self._input_names - set(self.features))
        if unfed:
            raise ModelLoadError(f"{model_dir}/model.onnx needs inputs {unfed} that are not among "
                                 "the manifest's features")
        # a scorecard's reasons: points below maximum, read off the same run (scoring.reasons)
        self.points = PointsReasons.from_graph(session, self.features, label=self.label)
        self.reasons_by = REASONS_BY_POINTS if self.points is not None else REASONS_BY_SUBSTITUTION
        # onnxruntime's public run() re-checks every input name on each call, about 1.5 µs an
        # input (60 µs for 41 attributes, more than the graph itself takes). The feeds built here
        # hold exactly the graph's inputs (checked just above), so call its binding directly.
        self._run_raw: Any = getattr(session, "_sess", None)

    # -- loading -----
    @classmethod
    def load(cls, model_dir: Path, *, settings: Settings | None = None,
             expected_sha256: str | None = None, version: int | None = None,
             record: ArtifactRecord | None = None, warm: bool = True) -> Scorer:
        """Read, verify (SHA-256 and golden inputs) and warm up a model version directory.

        The graph, manifest and schema are read once; the bytes parsed are the bytes checked:
        against ``record`` (the registry's record of the version's files, see
        loanrisk.integrity), the graph also against the manifest's and ``expected_sha256``.
        Raises ModelLoadError when a file is missing or differs, or the golden inputs score
        differently. ``version`` (the registry's) overrides the manifest's, which is empty
        before registering.
        """
        model_dir = Path(model_dir)
        data = {name: read_bytes(model_dir / name)
                for name in ("manifest.json", "schema.json", "model.onnx")}
        if record is not None:
            for name, content in data.items():
                record.check_bytes(name, content, label=str(model_dir))
        manifest = parse_json(model_dir / "manifest.json", data["manifest.json"])
        schema = parse_json(model_dir / "schema.json", data["schema.json"])
        onnx_path = model_dir / "model.onnx"
        digest = sha256_bytes(data["model.onnx"])
        for source, want in (("manifest.json", manifest.get("sha256")),
                             ("the registry", expected_sha256)):
            if want and digest != want:
                raise ModelLoadError(
                    f"{onnx_path}: SHA-256 {digest[:12]}… differs from {source} "
                    f"({str(want)[:12]}…); refusing to serve a modified artifact")
        manifest["sha256"] = digest
        if version is not None:
            manifest["version"] = int(version)
        session = serving_session(data["model.onnx"])
        try:
            scorer = cls(model_dir=model_dir, manifest=manifest, schema=schema, session=session,
                         settings=settings or get_settings())
        except (KeyError, TypeError, ValueError) as exc:  # a manifest missing what scoring needs
            raise ModelLoadError(f"{model_dir / 'manifest.json'}: not a loanrisk manifest "
                                 f"({type(exc).__name__}: {exc})") from exc
        scorer.check_golden()
        if warm:
            scorer.warm_up()
        return scorer

    def check_golden(self) -> float:
        """Score the manifest's golden inputs; ModelLoadError if any probability is off by >1e-5."""
        golden = self.manifest.get("golden") or {}
        records, expected = golden.get("inputs") or [], golden.get("probabilities") or []
        if not records:
            return 0.0
        got = self.predict_proba(records)
        want = np.asarray(expected, dtype=np.float64)
        if got.shape != want.shape:
            raise ModelLoadError(f"{self.label}: golden check expects shape {want.shape}, the "
                                 f"graph gives {got.shape}")
        diff = float(np.max(np.abs(got - want)))
        if not diff <= GOLDEN_TOLERANCE:
            raise ModelLoadError(f"{self.label}: golden-input check failed (max difference "
                                 f"{diff:.2e} > {GOLDEN_TOLERANCE:.0e}); refusing this model")
        return diff

    def warm_up(self, rounds: int = 20) -> None:
        """Run a few single and batched calls so the first real request is not slow."""
        golden = (self.manifest.get("golden") or {}).get("inputs") or []
        record = golden[0] if golden else dict(zip(self.features, self._reference, strict=True))
        for _ in range(rounds):
            self.score([record])
        self.score([record] * 8)

    # -- feeds -----
    def _cell(self, name: str, value: Any) -> Any:
        """One attribute value as the graph wants it: float (NaN if missing) or str ("" if so)."""
        if self.inputs[name] == "string":
            return "" if value is None else str(value)
        if value is None or value == "":
            return math.nan
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    def _matrices(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Records as a float32 matrix (float inputs) and an object matrix (string inputs)."""
        n, floats, strings = len(records), self._float_names, self._string_names
        try:  # validated records: numbers (or None) only, converted in one numpy call
            fl = np.array([[math.nan if (v := r.get(f)) is None or v == "" else v
                            for f in floats] for r in records], dtype=np.float32)
        except (TypeError, ValueError):  # anything else: value by value, NaN where no number
            fl = np.array([[self._cell(f, r.get(f)) for f in floats] for r in records],
                          dtype=np.float32)
        st = np.array([["" if (v := r.get(f)) is None else str(v) for f in strings]
                       for r in records], dtype=object)
        return fl.reshape(n, len(floats)), st.reshape(n, len(strings))

    def _feed_from(self, fl: np.ndarray, st: np.ndarray) -> dict[str, np.ndarray]:
        # One transposed copy per matrix; iterating its [columns, N, 1] view hands out each
        # contiguous [N,1] input without a Python-level slice per attribute.
        n = len(fl)
        feed = dict(zip(self._float_names,
                        np.ascontiguousarray(fl.T).reshape(len(self._float_names), n, 1),
                        strict=True))
        feed.update(zip(self._string_names,
                        np.ascontiguousarray(st.T).reshape(len(self._string_names), n, 1),
                        strict=True))
        return feed

    def _variants(self, fl: np.ndarray, st: np.ndarray
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """The feed and (record, feature) of :func:`loanrisk.scoring.reasons.variants`."""
        big_f, big_s, records, features = variants(
            fl, st, ref_float=self._ref_float, ref_string=self._ref_string,
            float_pos=self._float_pos, string_pos=self._string_pos)
        return self._feed_from(big_f, big_s), records, features

    def _run(self, feed: dict[str, np.ndarray], *, points: bool = False) -> Any:
        """Probabilities (n, C) in float64; with ``points``, (probabilities, a scorecard's
        points), from the same run."""
        names = [self._output, POINTS] if points else [self._output]
        if self._run_raw is not None:
            try:
                out = self._run_raw.run(names, feed, None)
            except (AttributeError, TypeError):  # an onnxruntime whose binding differs
                self._run_raw = None
        if self._run_raw is None:
            out = self.session.run(names, feed)
        proba = np.asarray(out[0], dtype=np.float64)
        return (proba, np.asarray(out[1])) if points else proba

    def predict_proba(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Class probabilities (n, C), classes best to worst, without reasons."""
        return self._run(self._feed_from(*self._matrices(records)))

    def points_of(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray] | None:
        """A scorecard's points of each record per attribute ({attribute: (n,) points}), None
        for any other model."""
        if self.points is None:
            return None
        _, pts = self._run(self._feed_from(*self._matrices(records)), points=True)
        return {self.features[k]: pts[:, j] for j, k in enumerate(self.points.columns.tolist())}

    # -- decisions -----
    def _badness(self, proba: np.ndarray) -> np.ndarray:
        """What reasons measure: P(adverse) for binary, the expected grade index for multiclass."""
        return proba[..., -1] if self.task == "binary" else proba @ self._grade_index

    def risk_score(self, proba: np.ndarray) -> np.ndarray:
        """What tiers use: P(adverse) for binary, mass on the worse half of the grades otherwise."""
        return (proba[..., -1] if self.task == "binary"
                else proba[..., self._worse_from:].sum(axis=-1))

    def _tier(self, score: float) -> str:
        return ("high" if score >= self.tier_high else
                "medium" if score >= self.tier_medium else "low")

    def _decide_row(self, p: list[float]) -> tuple[str, bool]:
        """(decision, adverse) for one row of class probabilities."""
        if self.task == "binary":
            declined = p[-1] >= self.decline_threshold
            return ("decline" if declined else "approve"), declined
        k = max(range(len(p)), key=p.__getitem__)  # the first of equal maxima, as argmax
        return self.classes[k], k > 0

    def _explain(self, records: list[dict[str, Any]], *, by_points: bool | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(floats, strings, probabilities (n, C), contributions (n, features)): each
        feature's push toward the worse outcome, as points below maximum (a scorecard: the n
        rows' own run) or by substitution (``by_points`` False forces it; one run)."""
        n = len(records)
        fl, st = self._matrices(records)
        if self.points is not None and by_points is not False:
            proba, points = self._run(self._feed_from(fl, st), points=True)
            return fl, st, proba, self.points.shortfall(points, len(self.features))
        feed, rec_idx, feat_idx = self._variants(fl, st)
        proba = self._run(feed)
        bad = self._badness(proba)
        contrib = np.zeros((n, len(self.features)))
        # how much worse each actual value made it, against the reference value
        contrib[rec_idx, feat_idx] = np.round(bad[rec_idx] - bad[n:], REASON_RESOLUTION)
        return fl, st, proba[:n], contrib

    def _top(self, base: np.ndarray, contrib: np.ndarray) -> list[list[int]]:
        adverse = [self._decide_row(row)[1] for row in base.tolist()]
        return top_reasons(contrib, adverse, limit=self.settings.max_reasons,
                           minimum=REASON_MIN, resolution=REASON_RESOLUTION)

    def reason_features(self, records: list[dict[str, Any]], *, by_points: bool | None = None
                        ) -> list[list[str]]:
        """The attributes behind each record's reasons, strongest first (``by_points`` False:
        by substitution even for a scorecard)."""
        if not records:
            return []
        _, _, base, contrib = self._explain(records, by_points=by_points)
        return [[self.features[k] for k in top] for top in self._top(base, contrib)]

    def score(self, records: list[dict[str, Any]]) -> list[Decision]:
        """Decisions with reasons for validated records, in one batched onnxruntime call."""
        if not records:
            return []
        fl, st, base, contrib = self._explain(records)
        tops = self._top(base, contrib)
        scores, rows = self.risk_score(base).tolist(), base.tolist()
        classes = self.classes
        out: list[Decision] = []
        for i, top in enumerate(tops):
            decision, _ = self._decide_row(rows[i])
            out.append(Decision(
                decision=decision,
                probabilities=dict(zip(classes, rows[i], strict=True)),
                risk_score=scores[i],
                risk_tier=self._tier(scores[i]),
                reasons=[self._worded(k, fl[i], st[i]) for k in top],
            ))
        return out

    def _worded(self, k: int, fl_row: np.ndarray, st_row: np.ndarray) -> str:
        """The reason for feature ``k`` in the words that fit the applicant's value: the other
        side of a sided phrase when the value lies there, "(not provided)" for a missing one."""
        phrase = self.reason_words[k]
        if self.inputs[self.features[k]] == "string":  # a category: name it, assert nothing
            value = st_row[self._string_col[k]]
            topic = without_side(phrase).rstrip(". ")
            if value == "":
                return topic + NOT_PROVIDED
            return f"{topic}: {self._labels[k].get(value, value)}"
        value = float(fl_row[self._float_col[k]])
        if math.isnan(value):  # no side to speak of
            return without_side(phrase) + NOT_PROVIDED
        # where the value lies: against a scorecard's best bins, else against the typical value
        high = (self.points.high_side(k, value) if self.points is not None
                else typical_side(value, self._typical[self._float_col[k]]))
        side, other = self._sides[k]
        if side is None or high is None:
            return phrase
        return phrase if high == (side == "high") else other

    def describe(self) -> dict[str, Any]:
        """Name, version, hash, kind, task and classes of this model (for /ready and metrics)."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256,
                "model": self.model_kind, "task": self.task, "classes": self.classes,
                "thresholds": self.thresholds}
