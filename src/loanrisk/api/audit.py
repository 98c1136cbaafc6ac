"""The service's side of the access audit (:mod:`loanrisk.store.audit`): :func:`audit` is how a
route records a read, an outcome or an admin action; :class:`RefusalAuditMiddleware` records
every refused submission (any 4xx answer to ``POST /v1/applications`` or ``POST /v1/score``)
in one place, with the NAMES of the fields at fault (from the bounded error body), never values.
"""

from __future__ import annotations

import contextvars
import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from loanrisk.api.middleware import REQUEST_ID

if TYPE_CHECKING:
    from loanrisk.store import KeyInfo, Store

log = logging.getLogger(__name__)
ENDPOINT: contextvars.ContextVar[str | None] = contextvars.ContextVar("loanrisk_endpoint",
                                                                      default=None)
SUBMISSIONS = frozenset({"/v1/applications", "/v1/score"})
KEY_STATE = "loanrisk_key"  # request.state's name for the caller's KeyInfo (set in deps)


def _who(key: KeyInfo | None) -> dict[str, Any]:
    rid = REQUEST_ID.get()
    return {"key_id": str(key.id) if key else None, "channel": key.channel if key else None,
            "request_id": None if rid == "-" else rid, "endpoint": ENDPOINT.get()}


def audit(store: Store, action: str, key: KeyInfo | None, *, status: int | None = None,
          application_id: Any = None, **details: Any) -> None:
    """Append one audit row for this request (its key, channel, request id and endpoint)."""
    store.audit(action, status=status, application_id=application_id, details=details,
                **_who(key))


def _fields(body: bytes) -> list[str]:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return []
    if not isinstance(detail, list):
        return []
    return list(dict.fromkeys(str(d.get("field")) for d in detail
                              if isinstance(d, dict) and d.get("field")))


class RefusalAuditMiddleware:
    """Set the request's endpoint for :func:`audit`; hold a 4xx answer to a submission until
    its audit row is committed (error bodies are small and bounded), then send it."""

    def __init__(self, app: Any, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "")
        token = ENDPOINT.set(f"{method} {path}"[:200])
        watched = method == "POST" and path.rstrip("/") in SUBMISSIONS
        state = scope.setdefault("state", {})
        held: list[Any] = []

        async def _send(message: Any) -> None:
            if held or (message["type"] == "http.response.start"
                        and 400 <= message["status"] < 500):
                held.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    await self._refused(state, held)
                    for m in held:
                        await send(m)
                return
            await send(message)

        try:
            await self.app(scope, receive, _send if watched else send)
        finally:
            ENDPOINT.reset(token)

    async def _refused(self, state: dict[str, Any], held: list[Any]) -> None:
        status = held[0]["status"]
        body = b"".join(m.get("body", b"") for m in held[1:])
        key = state.get(KEY_STATE)
        try:
            await run_in_threadpool(audit, self.store, "submission refused", key,
                                    status=status, fields=_fields(body))
        except Exception as exc:  # the refusal is answered even when the audit cannot be written
            log.error("audit of a refused submission failed: %s", type(exc).__name__)
