"""How often a scorecard's reasons (points below maximum) agree with the substitution reasons the
service gives every other model, on the evaluation rows: shown in the learn report.

Both rules run through the service's own :class:`~loanrisk.scoring.scorer.Scorer` on the
scorecard's graph: its points reasons as served, and the substitution reasons (each attribute set
to its training reference value) forced with ``by_points=False``. Rows where either rule gives
no reason are counted but not compared (substitution gives none to an applicant better than the
reference on every attribute; points give none to one at every attribute's maximum).

* **top-1**: the share of compared rows whose first reason names the same attribute.
* **top-3 overlap**: per compared row, the attributes the two top-3 lists share, over the
  shorter list's length (at most 3); the mean over the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loanrisk.config import Settings
    from loanrisk.scoring.latency import ServingContext

AGREEMENT_ROWS = 2000  # evaluation rows compared (the first ones of the split)


def agreement(points: list[list[str]], substitution: list[list[str]],
              adverse: list[bool] | None = None) -> dict[str, Any]:
    """Top-1 and top-3 agreement of two lists of reason attributes (one list per row)."""
    pairs = [(p, s) for p, s in zip(points, substitution, strict=True) if p and s]
    out: dict[str, Any] = {"rows": len(points), "compared": len(pairs),
                           "no_points_reason": sum(not p for p in points),
                           "no_substitution_reason": sum(not s for s in substitution)}
    if pairs:
        out["top1"] = round(sum(p[0] == s[0] for p, s in pairs) / len(pairs), 4)
        out["top3_overlap"] = round(sum(len(set(p[:3]) & set(s[:3])) / min(3, len(p), len(s))
                                        for p, s in pairs) / len(pairs), 4)
    if adverse is not None:
        picked = [i for i, a in enumerate(adverse) if a]
        out["adverse"] = agreement([points[i] for i in picked],
                                   [substitution[i] for i in picked])
    return out


def reasons_agreement(graph: bytes, ctx: ServingContext, records: list[dict[str, Any]], *,
                      settings: Settings, decision: dict[str, Any] | None = None
                      ) -> dict[str, Any] | None:
    """The agreement of ``graph``'s points reasons with its substitution reasons on
    ``records``, also on the adverse decisions alone (by the version's decision rule
    ``decision`` when given); None when the graph has no points (not a scorecard) or there are
    no rows."""
    from loanrisk.scoring.latency import context_scorer

    scorer = context_scorer("scorecard", graph, ctx, settings=settings, decision=decision)
    if scorer.points is None or not records:
        return None
    by_points = scorer.reason_features(records)
    by_substitution = scorer.reason_features(records, by_points=False)
    # adverse: a decline, or any grade but the best
    adverse = [d.decision == "decline" if scorer.task == "binary"
               else d.decision != scorer.classes[0] for d in scorer.score(records)]
    return {**agreement(by_points, by_substitution, adverse), "max_reasons": settings.max_reasons}
