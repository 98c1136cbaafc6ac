"""One typed column of a schema (:class:`Attribute`), the attribute types, and how a cell's
value is read (missing or not, as a category label). The leaf of the schema package: the schema
file (:mod:`loanrisk.schema.types`), its checks and its inference all build on it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd

from loanrisk.errors import SchemaError

if TYPE_CHECKING:
    pass

AttributeType = Literal["numeric", "categorical", "binary", "text", "identifier"]
ATTRIBUTE_TYPES: tuple[str, ...] = get_args(AttributeType)
FEATURE_TYPES = frozenset({"numeric", "categorical", "binary"})
# The metric names of learn.evaluate (copied: the schema is on the serving path, no sklearn).
METRICS = ("accuracy", "precision", "recall", "f1_macro", "f1_weighted", "roc_auc", "log_loss",
           "brier", "ece")
FORMAT = "loanrisk-schema/1"


def is_missing(v: Any) -> bool:
    """None, NaN or pd.NA."""
    return v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)) or v is pd.NA


def label_of(value: Any) -> str:
    """A target value as a class label: ``1.0`` and ``1`` both become ``"1"``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Attribute:
    """One column of the table (never the target). Raises SchemaError when malformed."""

    name: str
    type: AttributeType
    description: str = ""
    reason: str = ""  # plain words for decision reasons, e.g. "Debt-to-income ratio is high"
    post_decision: bool = False  # known only after the decision: excluded unless allow_leaky
    monotone: int = 0  # +1: higher value never lowers risk; -1: never raises it; 0: free
    protected: bool = False  # never a feature; kept for fairness tests
    categories: tuple[str, ...] | None = None  # optional allowed values (categorical/binary)
    minimum: float | None = None
    maximum: float | None = None
    # plain words for category codes, e.g. {"term_60": "60 months"}: decision reasons and the UI
    # show them ("Loan term: 60 months", not "term_60"); kept as (code, words) pairs, JSON object
    labels: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        where = f"attribute {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(f"an attribute has no name ({self.name!r}); give each one a 'name'")
        if self.type not in ATTRIBUTE_TYPES:
            raise SchemaError(f"{where}: unknown type {self.type!r}; use one of "
                              f"{', '.join(ATTRIBUTE_TYPES)}")
        if self.monotone not in (-1, 0, 1) or isinstance(self.monotone, bool):
            raise SchemaError(f"{where}: monotone must be -1, 0 or 1, not {self.monotone!r}")
        if self.monotone and self.type not in ("numeric", "binary"):
            raise SchemaError(f"{where}: monotone applies to numeric or binary attributes, "
                              f"not {self.type}; set it to 0")
        if self.categories is not None:
            if isinstance(self.categories, str) or not all(
                    isinstance(c, str) for c in self.categories):
                raise SchemaError(f"{where}: categories must be a list of strings")
            object.__setattr__(self, "categories", tuple(self.categories))
            if len(set(self.categories)) != len(self.categories):
                raise SchemaError(f"{where}: categories repeat a value")
        if self.labels is not None:
            self._check_labels(where)
        for bound in ("minimum", "maximum"):
            v = getattr(self, bound)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise SchemaError(f"{where}: {bound} must be a number, not {v!r}")
        if (self.minimum is not None and self.maximum is not None
                and self.minimum > self.maximum):
            raise SchemaError(f"{where}: minimum {self.minimum} is above maximum {self.maximum}")

    def _check_labels(self, where: str) -> None:
        """labels: {code: words} of strings, on a categorical attribute, each code one of its
        categories when those are listed."""
        pairs = self.labels.items() if isinstance(self.labels, dict) else self.labels
        try:
            pairs = tuple((c, w) for c, w in pairs)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise SchemaError(f"{where}: labels must be an object of category -> plain words, "
                              'e.g. {"term_60": "60 months"}') from None
        if self.type != "categorical":
            raise SchemaError(f"{where}: labels name the values of a categorical attribute; "
                              f"this one is {self.type} (remove 'labels')")
        bad = [c for c, w in pairs if not isinstance(c, str) or not isinstance(w, str) or not w]
        if bad:
            raise SchemaError(f"{where}: labels must map each category to non-empty words "
                              f"(strings); check {bad}")
        if self.categories is not None:
            unknown = [c for c, _ in pairs if c not in self.categories]
            if unknown:
                raise SchemaError(f"{where}: labels for {unknown}, which are not among its "
                                  f"categories {list(self.categories)}")
        object.__setattr__(self, "labels", pairs)

    def label(self, value: str) -> str:
        """The plain words for a category value (the value itself when it has none)."""
        return dict(self.labels or ()).get(value, value)

    @property
    def is_feature_type(self) -> bool:
        """Whether this type can ever be a model input (numeric, categorical, binary)."""
        return self.type in FEATURE_TYPES

    def to_dict(self) -> dict[str, Any]:
        """JSON form; categories/minimum/maximum only when set."""
        d: dict[str, Any] = {
            "name": self.name, "type": self.type, "description": self.description,
            "reason": self.reason, "post_decision": self.post_decision,
            "monotone": self.monotone, "protected": self.protected,
        }
        if self.categories is not None:
            d["categories"] = list(self.categories)
        for bound in ("minimum", "maximum"):
            if getattr(self, bound) is not None:
                d[bound] = getattr(self, bound)
        if self.labels is not None:
            d["labels"] = dict(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Attribute:
        """Build from JSON; SchemaError names the attribute and the offending key."""
        if not isinstance(d, dict):
            raise SchemaError(f"each attribute must be an object, not {d!r}")
        name = d.get("name")
        unknown = sorted(set(d) - ATTRIBUTE_KEYS)
        if unknown:
            raise SchemaError(f"attribute {name!r}: unknown key(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(sorted(ATTRIBUTE_KEYS))}")
        if "type" not in d:
            raise SchemaError(f"attribute {name!r}: no 'type'; use one of "
                              f"{', '.join(ATTRIBUTE_TYPES)}")
        for flag in ("post_decision", "protected"):
            if not isinstance(d.get(flag, False), bool):
                raise SchemaError(f"attribute {name!r}: {flag} must be true or false")
        if "labels" in d and not isinstance(d["labels"], dict):
            raise SchemaError(f"attribute {name!r}: labels must be an object of category -> "
                              'plain words, e.g. {"term_60": "60 months"}')
        cats = d.get("categories")
        return cls(**{**d, "categories": tuple(cats) if isinstance(cats, list) else cats})


ATTRIBUTE_KEYS = frozenset(f.name for f in dataclasses.fields(Attribute))
