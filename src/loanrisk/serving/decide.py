"""The decision of validated applications as the service makes it, in one place: the champion's
scorer, or, with a shadow or canary challenger, the router's choice of what each client gets and
the challenger's results to store beside it. The HTTP routes and batch scoring call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loanrisk.serving.challenger import Routed

if TYPE_CHECKING:
    from loanrisk.serving.challenger import ChallengerRouter
    from loanrisk.serving.holder import Served


def decide(served: Served, records: list[dict[str, Any]], *,
           router: ChallengerRouter | None = None, keys: list[str] | None = None
           ) -> list[Routed]:
    """One :class:`~loanrisk.serving.challenger.Routed` per record (validated attribute dicts,
    scored in one onnxruntime call): the decision the client gets, which role made it, that
    version's number and SHA-256, and the challenger's results (none without a router).

    ``keys``: with a router, one ``challenger.assignment_key`` per record (a canary share is
    sticky per applicant)."""
    if router is None:
        s = served.scorer
        return [Routed(d, served.role, s.version, s.sha256) for d in s.score(records)]
    return router.route(records, keys=keys if keys is not None else [""] * len(records))
