"""Query parameters that more than one endpoint takes, with one rule each."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from loanrisk.api.decide import InvalidRequest

SinceQuery = Annotated[str | None, Query(
    description="Only rows at or after this time: an RFC 3339 date-time with its offset, e.g. "
                "2026-11-01T09:30:00Z.", max_length=64, json_schema_extra={"format": "date-time"})]

_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                      r"([Zz]|[+-][0-9]{2}:[0-9]{2})")


def parse_since(text: str) -> datetime:
    """An RFC 3339 date-time (with its offset) as aware UTC; InvalidRequest otherwise."""
    try:
        m = _RFC3339.fullmatch(text)
        if m is None:
            raise ValueError("not RFC 3339")
        zone = m.group(2).upper()
        at = f"{text[:10]}T{text[11:19]}{(m.group(1) or '')[:7]}"
        return aware_utc(datetime.fromisoformat(at + ("+00:00" if zone == "Z" else zone)))
    except ValueError:
        raise InvalidRequest([{"loc": ["query", "since"], "field": "since", "type": "datetime",
                               "msg": "not an RFC 3339 date-time with its offset (e.g. "
                                      "2026-11-01T09:30:00Z)"}]) from None


def aware_utc(ts: datetime) -> datetime:
    """``ts`` as aware UTC (a naive time, as SQLite gives it back, is taken as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
