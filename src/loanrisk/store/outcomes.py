"""Outcome words: what ``POST /v1/applications/{id}/outcome`` accepts and which class each means.

An outcome is one of the model's class labels (``good``/``bad``, a grade), case-insensitive, or,
for a binary target, a servicing or auditor word: ``repaid``, ``charged_off``, ``approve`` ...
Anything else is refused when it is recorded, so a typo can never replace a real label (the
latest outcome of an application is the one retraining and monitoring read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ADVERSE_WORDS = frozenset({"bad", "default", "defaulted", "charged_off", "charged off",
                           "late", "delinquent", "declined", "decline"})
GOOD_WORDS = frozenset({"good", "repaid", "paid", "fully_paid", "fully paid", "current",
                        "approved", "approve", "on_time"})


def outcome_lookup(classes: Sequence[str]) -> dict[str, int]:
    """Lower-case outcome word -> class index (classes ordered best to worst)."""
    lookup = {str(c).lower(): i for i, c in enumerate(classes)}
    if len(classes) == 2:
        lookup.update({w: 0 for w in GOOD_WORDS if w not in lookup})
        lookup.update({w: 1 for w in ADVERSE_WORDS if w not in lookup})
    return lookup


def normalise(outcome: str) -> str:
    """The form outcomes are compared in: stripped, lower case."""
    return str(outcome).strip().lower()


def outcome_error(outcome: str, classes: Sequence[str]) -> str | None:
    """Why ``outcome`` cannot be recorded for a model with these classes, or None if it can."""
    if normalise(outcome) in outcome_lookup(classes):
        return None
    labels = ", ".join(str(c) for c in classes)
    words = ""
    if len(classes) == 2:
        words = (f"; or for {classes[0]}: {', '.join(sorted(GOOD_WORDS))}; for {classes[1]}: "
                 f"{', '.join(sorted(ADVERSE_WORDS))}")
    # the word itself is not repeated: answers and files name the field, never the value
    return f"unknown outcome word: use a class label ({labels}){words}"


def stored_classes(probabilities: Mapping[str, float] | None,
                   risk_score: float | None) -> list[str]:
    """The classes of the model that decided a stored application, from its row.

    A row keeps its probabilities as a JSON object, whose key order PostgreSQL's JSONB does not
    keep; for a binary model the adverse class is the one whose probability is the row's risk
    score, so it goes last (as the words for each side assume). Several classes: as stored.
    """
    classes = [str(c) for c in (probabilities or {})]
    if len(classes) == 2 and risk_score is not None and probabilities:
        adverse = min(classes, key=lambda c: abs(float(probabilities[c]) - risk_score))
        classes.remove(adverse)
        classes.append(adverse)
    return classes
