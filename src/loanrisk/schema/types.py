"""The data schema: the contract between a lender's table and everything downstream.

A :class:`Schema` names the target and its classes (best -> worst), and types every other column
as an :class:`Attribute`. It is stored as JSON (ours, or the AWS Machine Learning data-schema
format, detected by its keys). Drafting a schema from a table and importing AWS schemas live in
:mod:`loanrisk.schema.infer`; frame validation lives in :mod:`loanrisk.schema.checks`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from loanrisk.errors import DataError, SchemaError
from loanrisk.schema.attribute import (
    FORMAT,
    METRICS,
    Attribute,
    is_missing,
    label_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)

SCHEMA_KEYS = frozenset({"format", "name", "target", "classes", "attributes", "positive_class",
                         "excluded", "description", "primary_metric"})


@dataclass
class Schema:
    """The table's contract: target, classes best -> worst, and every other column typed."""

    name: str
    target: str
    classes: list[str]  # best -> worst; empty until with_classes_from() for imported schemas
    attributes: list[Attribute]  # every column except the target
    positive_class: str | None = None  # binary: the adverse class (== classes[-1])
    excluded: list[str] = field(default_factory=list)  # never features
    description: str = ""
    primary_metric: str = "roc_auc"

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise SchemaError(f"schema {self.name!r}: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        """Everything wrong with this schema, as messages naming the attribute; binary classes
        are put in order (the positive class last) on the way."""
        out: list[str] = []
        self.classes = [label_of(c) for c in self.classes]
        names = [a.name for a in self.attributes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            out.append(f"attribute(s) {', '.join(map(repr, dup))} appear more than once")
        if not self.target:
            out.append("no target: name the column to predict in 'target'")
        elif self.target in names:
            out.append(f"the target {self.target!r} is also listed as an attribute; remove it "
                       "from 'attributes' (the target is described by 'classes')")
        if len(set(self.classes)) != len(self.classes):
            out.append(f"classes {self.classes} repeat a label")
        if len(self.classes) == 1:
            out.append(f"only one class {self.classes}; a target needs at least two")
        if self.positive_class is not None:
            self.positive_class = label_of(self.positive_class)
            if self.classes and self.positive_class not in self.classes:
                out.append(f"positive_class {self.positive_class!r} is not one of the classes "
                           f"{self.classes}")
            elif len(self.classes) == 2 and self.classes[0] == self.positive_class:
                self.classes.reverse()  # contract: the adverse class is classes[-1]
        elif len(self.classes) == 2:
            self.positive_class = self.classes[-1]
        for n in self.excluded:
            if n not in names:
                out.append(f"excluded attribute {n!r} is not among the attributes")
        if self.primary_metric not in METRICS:
            out.append(f"primary_metric {self.primary_metric!r} is unknown; use one of "
                       f"{', '.join(METRICS)}")
        return out

    # --- questions -------------------------------------------------------------------------
    @property
    def task(self) -> Literal["binary", "multiclass"]:
        """``"binary"`` for two classes, else ``"multiclass"``."""
        return "binary" if len(self.classes) == 2 else "multiclass"

    def attribute(self, name: str) -> Attribute:
        """The attribute called ``name``; SchemaError (listing the names) if there is none."""
        for a in self.attributes:
            if a.name == name:
                return a
        raise SchemaError(f"schema {self.name!r} has no attribute {name!r}; it has "
                          f"{', '.join(a.name for a in self.attributes)}")

    def feature_attributes(self, *, allow_leaky: bool = False) -> list[Attribute]:
        """Numeric/categorical/binary attributes that are not excluded nor protected, and not
        post-decision unless ``allow_leaky``. Text and identifier attributes never are features."""
        return [a for a in self.attributes
                if a.is_feature_type and a.name not in self.excluded and not a.protected
                and (allow_leaky or not a.post_decision)]

    # --- the target ------------------------------------------------------------------------
    def encode_target(self, series: pd.Series) -> np.ndarray:
        """Target labels as int64 indices into ``classes``; DataError naming rows whose label is
        missing or unknown (row numbers count data rows from 1; line = row + 1 with a header)."""
        if not self.classes:
            raise SchemaError(f"schema {self.name!r} has no classes yet; fill them with "
                              "Schema.with_classes_from(df[target]) or list them in 'classes'")
        index = {c: i for i, c in enumerate(self.classes)}
        values = series.to_numpy(dtype=object)
        codes = np.full(len(values), -1, dtype=np.int64)
        for i, v in enumerate(values):
            if not is_missing(v):
                codes[i] = index.get(label_of(v), -1)
        bad = np.flatnonzero(codes < 0)
        if bad.size:
            from loanrisk.schema.checks import describe_rows

            raise DataError(f"target {self.target!r}: {describe_rows(bad, values)} "
                            f"{'is' if bad.size == 1 else 'are'} not one of the classes "
                            f"{self.classes}; fix or drop those rows, or add the class to the "
                            "schema")
        return codes

    def with_classes_from(self, series: pd.Series) -> Schema:
        """A copy whose classes come from the target values: sorted (numerically when they are
        numbers); for two classes the minority class is guessed as the adverse (positive) one
        unless ``positive_class`` is set; the guess is logged and noted in the description."""
        from loanrisk.schema.infer import classes_from

        classes, positive, note = classes_from(series, target=self.target,
                                               positive=self.positive_class)
        if note:
            log.warning("%s: %s", self.name, note)
        desc = f"{self.description} {note}".strip() if note else self.description
        return dataclasses.replace(self, classes=classes, positive_class=positive,
                                   description=desc)

    # --- frames ----------------------------------------------------------------------------
    def validate_frame(self, df: pd.DataFrame, *, allow_leaky: bool = False,
                       require_target: bool = True) -> None:
        """Check that ``df`` fits: feature columns (and the target when ``require_target``)
        present, numeric columns numbers within bounds, categories known, target labels known.
        Raises DataError naming the attribute and the first bad rows."""
        from loanrisk.schema.checks import validate_frame

        validate_frame(self, df, allow_leaky=allow_leaky, require_target=require_target)

    # --- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Our JSON form (what :meth:`save` writes)."""
        return {
            "format": FORMAT, "name": self.name, "description": self.description,
            "target": self.target, "classes": list(self.classes),
            "positive_class": self.positive_class, "primary_metric": self.primary_metric,
            "excluded": list(self.excluded),
            "attributes": [a.to_dict() for a in self.attributes],
        }

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "schema") -> Schema:
        """Build from our JSON form (or an AWS ML schema, detected by its keys). SchemaError
        names ``source`` (the file) and the attribute."""
        if is_aws_ml(d):
            return cls.from_aws_ml(d, source=source)
        if not isinstance(d, dict):
            raise SchemaError(f"{source}: a schema must be a JSON object, not {type(d).__name__}")
        unknown = sorted(set(d) - SCHEMA_KEYS)
        if unknown:
            raise SchemaError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(sorted(SCHEMA_KEYS))}")
        for key in ("target", "attributes"):
            if key not in d:
                raise SchemaError(f"{source}: no {key!r}; a schema names its target and lists "
                                  "its attributes")
        if not isinstance(d["attributes"], list):
            raise SchemaError(f"{source}: 'attributes' must be a list of objects")
        for key in ("classes", "excluded"):
            if not isinstance(d.get(key, []), list):
                raise SchemaError(f"{source}: {key!r} must be a list of names")
        try:
            attrs = [Attribute.from_dict(a) for a in d["attributes"]]
            return cls(name=str(d.get("name") or Path(source).name.split(".")[0]),
                       target=str(d["target"]), classes=list(d.get("classes") or []),
                       attributes=attrs, positive_class=d.get("positive_class"),
                       excluded=list(d.get("excluded") or []),
                       description=str(d.get("description") or ""),
                       primary_metric=str(d.get("primary_metric") or "roc_auc"))
        except SchemaError as e:
            raise SchemaError(f"{source}: {e}") from None
        except TypeError as e:  # e.g. a mistyped value where a dataclass field expected another
            raise SchemaError(f"{source}: {e}") from None

    @classmethod
    def from_aws_ml(cls, d: dict[str, Any], *, source: str = "schema",
                    classes: Iterable[str] | None = None) -> Schema:
        """Import an AWS Machine Learning data schema; classes may be filled later with
        :meth:`with_classes_from`."""
        from loanrisk.schema.infer import from_aws_ml

        return from_aws_ml(cls, d, source=source, classes=classes)

    @classmethod
    def infer(cls, df: pd.DataFrame, *, target: str, name: str) -> Schema:
        """Draft a schema from a table (review it before use): see :mod:`loanrisk.schema.infer`."""
        from loanrisk.schema.infer import infer

        return infer(cls, df, target=target, name=name)

    def save(self, path: str | Path) -> None:
        """Write our JSON form to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema JSON file (ours or AWS ML); SchemaError naming the file on any problem."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SchemaError(f"{p}: no such schema file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SchemaError(f"{p}: cannot read the schema file ({e})") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SchemaError(f"{p}: not valid JSON at line {e.lineno}, column {e.colno}: "
                              f"{e.msg}") from None
        return cls.from_dict(d, source=str(p))


def is_aws_ml(d: Any) -> bool:
    """Whether ``d`` looks like an AWS Machine Learning data schema."""
    return isinstance(d, dict) and ("targetAttributeName" in d or "dataFileContainsHeader" in d
                                    or (isinstance(d.get("attributes"), list) and any(
                                        isinstance(a, dict) and "attributeName" in a
                                        for a in d["attributes"])))
