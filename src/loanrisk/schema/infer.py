"""Drafting schemas: from a table (`loanrisk schema infer`) or from an AWS ML data schema.

Drafts are starting points: a person reviews types, post-decision flags and reason texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loanrisk.errors import DataError, SchemaError
from loanrisk.schema.attribute import Attribute, label_of

if TYPE_CHECKING:
    from loanrisk.schema.types import Schema

AWS_TYPES = {"NUMERIC": "numeric", "CATEGORICAL": "categorical", "BINARY": "binary",
             "TEXT": "text"}
MAX_CLASSES = 50  # more distinct target values than this: a number to regress, not classes
TEXT_DISTINCT = 200  # a string column with more distinct values than this is free text
TEXT_UNIQUE_SHARE = 0.5  # ... or with more than this share of unique values (>= 20 values)


def looks_like_id(name: str) -> bool:
    """``id``, ``loan_id``, ``loan-id``, ``loanId``, ``LoanID``: a name for a row identifier."""
    low = name.lower()
    return low == "id" or bool(re.search(r"[_\-\s.]id$", low)
                               or re.search(r"[a-z0-9](Id|ID)$", name))


def reason_for(name: str) -> str:
    """A first draft of a reason text: ``debt_to_income`` -> "Debt to income is unfavourable"."""
    words = re.sub(r"[_\-.]+", " ", name).strip() or name
    return f"{words[0].upper()}{words[1:]} is unfavourable"


def _sorted_labels(labels: Iterable[str]) -> list[str]:
    """Numerically when every label is a number, else alphabetically."""
    labs = sorted(set(labels))
    try:
        return sorted(labs, key=float)
    except ValueError:
        return labs


def classes_from(series: pd.Series, *, target: str,
                 positive: str | None = None) -> tuple[list[str], str | None, str]:
    """(classes best -> worst, positive class, a note on what was guessed) from target values.

    Multiclass labels are sorted; for two classes the adverse class goes last: ``positive`` if
    given, else the minority class (a guess, which the note says). DataError when the column has
    fewer than two or more than 50 distinct values."""
    values = [label_of(v) for v in series.dropna().tolist()]
    counts = pd.Series(values, dtype=object).value_counts()
    classes = _sorted_labels(counts.index)
    if len(classes) < 2:
        raise DataError(f"target {target!r} has {len(classes)} distinct value(s) "
                        f"{classes}; a target needs at least two classes")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"target {target!r} has {len(classes)} distinct values; loanrisk learns "
                        f"classes (at most {MAX_CLASSES}), so bin the column into grades first")
    if len(classes) > 2:
        return classes, None, (f"classes of {target!r} taken in sorted order as best -> worst: "
                               f"{', '.join(classes)}; reorder 'classes' if that is wrong.")
    if positive is not None:
        positive = label_of(positive)
        if positive not in classes:
            raise SchemaError(f"positive_class {positive!r} is not among the values of target "
                              f"{target!r}: {classes}")
        note = ""
    else:
        # The smallest count; on a tie, the label that sorts last.
        positive = min(reversed(classes), key=lambda c: counts[c])
        note = (f"The adverse (positive) class of {target!r} was guessed as {positive!r}, the "
                f"minority class ({counts[positive]} of {len(values)} rows); set "
                "positive_class in the schema if that is wrong.")
    other = next(c for c in classes if c != positive)
    return [other, positive], positive, note


def from_aws_ml(cls: type[Schema], d: Any, *, source: str,
                classes: Iterable[str] | None = None) -> Schema:
    """Import an AWS Machine Learning data schema (``attributes`` with ``attributeName`` and
    ``attributeType``, ``targetAttributeName``, ``rowId``, ``excludedAttributeNames``)."""
    if not isinstance(d, dict) or not isinstance(d.get("attributes"), list):
        raise SchemaError(f"{source}: an AWS ML schema needs an 'attributes' list")
    target = d.get("targetAttributeName")
    if not target:
        raise SchemaError(f"{source}: the AWS ML schema has no 'targetAttributeName'; name the "
                          "column to predict there")
    row_id = d.get("rowId")
    attrs: list[Attribute] = []
    seen_target = False
    for i, a in enumerate(d["attributes"]):
        if not isinstance(a, dict) or "attributeName" not in a:
            raise SchemaError(f"{source}: attribute #{i + 1} has no 'attributeName'")
        name, aws_type = str(a["attributeName"]), a.get("attributeType")
        if aws_type not in AWS_TYPES:
            raise SchemaError(f"{source}: attribute {name!r}: unknown attributeType "
                              f"{aws_type!r}; use one of {', '.join(AWS_TYPES)}")
        if name == target:
            seen_target = True
            continue
        kind = "identifier" if name == row_id else AWS_TYPES[aws_type]
        attrs.append(Attribute(name=name, type=kind,  # type: ignore[arg-type]
                               reason="" if kind == "identifier" else reason_for(name)))
    if not seen_target:
        raise SchemaError(f"{source}: the target {target!r} (targetAttributeName) is missing "
                          "from the attributes list; add it with its attributeType")
    if row_id and row_id not in {a.name for a in attrs}:
        attrs.append(Attribute(name=str(row_id), type="identifier"))
    excluded = d.get("excludedAttributeNames") or []
    if not isinstance(excluded, list):
        raise SchemaError(f"{source}: 'excludedAttributeNames' must be a list of names")
    note = "" if d.get("dataFileContainsHeader", True) else (
        " The AWS schema says the data file has no header line; loanrisk reads the first line "
        "as column names, so add one.")
    try:
        return cls(name=Path(source).name.split(".")[0] or "aws-ml", target=str(target),
                   classes=[label_of(c) for c in classes or []], attributes=attrs,
                   excluded=[str(n) for n in excluded],
                   description=f"Imported from the AWS Machine Learning schema {source}.{note}")
    except SchemaError as e:
        raise SchemaError(f"{source}: {e}") from None


def infer_type(series: pd.Series, name: str) -> str:
    """The drafted type of one column (see :func:`infer`)."""
    x = series.dropna()
    if x.empty:
        return "text"  # nothing to learn from; a person decides
    if looks_like_id(str(name)) and x.is_unique and len(x) == len(series):
        return "identifier"
    if pd.api.types.is_bool_dtype(x):
        return "binary"
    if not pd.api.types.is_numeric_dtype(x):
        as_num = pd.to_numeric(x.astype(str).str.strip(), errors="coerce")
        if as_num.notna().all():
            x = as_num
    if pd.api.types.is_numeric_dtype(x):
        return "binary" if set(np.unique(x.to_numpy(dtype=float))) == {0.0, 1.0} else "numeric"
    distinct = x.nunique()
    if distinct > TEXT_DISTINCT or (len(x) >= 20 and distinct > TEXT_UNIQUE_SHARE * len(x)):
        return "text"
    return "categorical"


def infer(cls: type[Schema], df: pd.DataFrame, *, target: str, name: str) -> Schema:
    """Draft a schema from a table: numbers -> numeric (only 0/1 -> binary); strings ->
    categorical, or text when > 200 distinct or > 50% unique; unique columns named like ``id`` or
    ``*_id`` -> identifier. Classes sorted; for two, the minority class is the adverse one.
    Descriptions are left empty and reasons drafted: review both before learning."""
    if target not in df.columns:
        raise DataError(f"target {target!r} is not a column of the table; its columns are: "
                        f"{', '.join(map(str, df.columns))}")
    classes, positive, note = classes_from(df[target], target=target)
    attrs = []
    for col in df.columns:
        if col == target:
            continue
        kind = infer_type(df[col], str(col))
        reason = reason_for(str(col)) if kind in ("numeric", "categorical", "binary") else ""
        attrs.append(Attribute(name=str(col), type=kind, reason=reason))  # type: ignore[arg-type]
    desc = (f"Drafted by `loanrisk schema infer` from {len(df)} rows: review the types, mark "
            f"attributes known only after the decision as post_decision, and write the reasons. "
            f"{note}").strip()
    return cls(name=name, target=target, classes=classes, attributes=attrs,
               positive_class=positive, description=desc)
