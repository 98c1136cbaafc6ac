"""`loanrisk compare`: agreement and metrics of champion and challenger on the same stored
applications (the challenger's results: loanrisk.store.challenger).

Roles: ``shadow`` (the challenger's result on an application the champion decided), ``canary``
(the challenger's result that was served) and ``champion`` (the champion's counterfactual on a
canary application). ``applications`` always holds what the client got.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from loanrisk.config import Settings


@dataclass
class Comparison:
    """Champion vs one challenger version on the same applications."""

    challenger_version: int | None
    applications: int
    agreement: float  # share of identical decisions
    champion_decline_rate: float | None
    challenger_decline_rate: float | None
    mean_abs_adverse_diff: float  # mean |P(worst class)| difference
    errors: int
    labelled: int = 0
    champion_roc_auc: float | None = None
    challenger_roc_auc: float | None = None
    roles: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SQL = """
SELECT a.id, a.decision AS a_decision, CAST(a.probabilities AS TEXT) AS a_p,
       c.role, c.model_version AS c_version, c.decision AS c_decision,
       CAST(c.probabilities AS TEXT) AS c_p, c.error,
       (SELECT o.outcome FROM outcomes o WHERE o.application_id = a.id
        ORDER BY o.id DESC LIMIT 1) AS outcome
FROM applications a JOIN challenger_decisions c ON c.application_id = a.id
WHERE a.model_name = :model AND a.created_at >= :since
"""


def compare(*, model: str, classes: list[str], since: str | None = "30d",
            settings: Settings | None = None) -> list[Comparison]:
    """One Comparison per challenger version seen in the window (LoanriskError if none)."""
    import numpy as np
    import pandas as pd

    from loanrisk.config import get_settings
    from loanrisk.errors import LoanriskError
    from loanrisk.registry import roc_auc
    from loanrisk.store.frames import (
        _ts,
        canonical_ids,
        outcome_index,
        parse_json_column,
        parse_since,
        store_engine,
    )

    settings = settings or get_settings()
    start = parse_since(since) or datetime(1970, 1, 1)
    engine = store_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            raw = pd.DataFrame(conn.execute(text(_SQL), {"model": model,
                                                         "since": _ts(start, engine)}).all(),
                               columns=["id", "a_decision", "a_p", "role", "c_version",
                                        "c_decision", "c_p", "error", "outcome"])
    finally:
        engine.dispose()
    if raw.empty:
        raise LoanriskError(f"no challenger results for {model!r} since {since}: run a "
                            "challenger in shadow or canary mode first")
    raw["id"] = canonical_ids(raw["id"])
    probs = parse_json_column(raw["c_p"].tolist()).reindex(columns=classes)
    raw[[f"c:{c}" for c in classes]] = probs.to_numpy(dtype=np.float64)
    a_probs = parse_json_column(raw["a_p"].tolist()).reindex(columns=classes)
    raw[[f"a:{c}" for c in classes]] = a_probs.to_numpy(dtype=np.float64)
    out = []
    mine = raw[raw["role"].isin(["shadow", "canary"])]
    for version, part in mine.groupby("c_version", dropna=False, sort=True):
        champ = raw[raw["role"] == "champion"].set_index("id")
        part = part.set_index("id")
        ch_dec = part["a_decision"].copy()
        ch_p = part[[f"a:{c}" for c in classes]].to_numpy().copy()
        canary = part.index.isin(champ.index)
        if canary.any():  # the application row holds the challenger's: use the counterfactual
            ids = part.index[canary]
            ch_dec[canary] = champ.loc[ids, "c_decision"].to_numpy()
            ch_p[canary] = champ.loc[ids, [f"c:{c}" for c in classes]].to_numpy()
        ok = (part["c_decision"] != "error").to_numpy()
        c_p = part[[f"c:{c}" for c in classes]].to_numpy()
        binary = set(part["a_decision"]) <= {"approve", "decline"}
        comp = Comparison(
            challenger_version=None if pd.isna(version) else int(version),
            applications=len(part),
            agreement=float((ch_dec.to_numpy()[ok] == part["c_decision"].to_numpy()[ok]).mean())
            if ok.any() else 0.0,
            champion_decline_rate=float((ch_dec[ok] == "decline").mean()) if binary else None,
            challenger_decline_rate=float((part["c_decision"][ok] == "decline").mean())
            if binary else None,
            mean_abs_adverse_diff=float(np.nanmean(np.abs(
                c_p[ok][:, -1] - ch_p[ok][:, -1]))) if ok.any() else 0.0,
            errors=int((~ok).sum()),
            roles=part["role"].value_counts().to_dict(),
        )
        y = outcome_index(part["outcome"].fillna(""), classes)
        lab = (y >= 0) & ok
        if lab.sum() >= 2 and len(set(y[lab])) > 1:
            comp.labelled = int(lab.sum())
            comp.champion_roc_auc = roc_auc(y[lab], ch_p[lab].astype(np.float64))
            comp.challenger_roc_auc = roc_auc(y[lab], c_p[lab].astype(np.float64))
        out.append(comp)
    return out
