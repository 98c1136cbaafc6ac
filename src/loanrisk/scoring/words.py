"""The plain words of a reason: a phrase that names a side ("Income is low") and its other side
("Income is high"), used when the applicant's value lies there."""

from __future__ import annotations

import math

# A reason phrase may name a side ("Income is low"); the words for the other side, used when the
# applicant's value lies there (a high income that still pushed toward a worse grade).
_ENDINGS = ((" is high", " is low"), (" are high", " are low"), (" is long", " is short"),
            (" is recent", " is old"))
_OPENINGS = (("Many ", "Few "),)
NOT_PROVIDED = " (not provided)"


def without_side(phrase: str) -> str:
    """"Debt-to-income ratio is high" -> "Debt-to-income ratio"; others unchanged."""
    for pair in _ENDINGS:
        for end in pair:
            if phrase.endswith(end):
                return phrase[: -len(end)]
    for pair in _OPENINGS:
        for lead in pair:
            if phrase.startswith(lead):
                rest = phrase[len(lead):]
                return rest[:1].upper() + rest[1:]
    return phrase


def phrase_sides(phrase: str) -> tuple[str | None, str]:
    """("high" | "low" | None, the phrase for the other side) of a reason phrase."""
    for high, low in _ENDINGS:
        if phrase.endswith(high):
            return "high", phrase[: -len(high)] + low
        if phrase.endswith(low):
            return "low", phrase[: -len(low)] + high
    for high, low in _OPENINGS:
        if phrase.startswith(high):
            return "high", low + phrase[len(high):]
        if phrase.startswith(low):
            return "low", high + phrase[len(low):]
    return None, phrase


def typical_side(value: float, typical: float) -> bool | None:
    """Whether ``value`` lies above (True) or below (False) the typical value; None when they
    are equal or there is no typical value."""
    if math.isnan(typical) or value == typical:
        return None
    return value > typical
