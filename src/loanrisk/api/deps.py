"""Typed dependencies: the service state, the caller's API key (rate-limited), the served model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError

from loanrisk.api.metrics import Metrics
from loanrisk.api.ratelimit import Limiter, retry_after
from loanrisk.config import Settings
from loanrisk.serving import ModelHolder, Served
from loanrisk.store import KeyInfo, Store, hash_key

KEY_CACHE_SECONDS = 5.0  # a revoked key stops working within this long
STALE_KEY_SECONDS = 600.0  # while the database is unreachable, a key verified this recently works


@dataclass
class Service:
    """Everything a request needs, built once per app."""

    settings: Settings
    store: Store
    holder: ModelHolder
    metrics: Metrics
    limiter: Limiter
    _keys: dict[str, tuple[KeyInfo | None, float]] = field(default_factory=dict)

    async def key_for(self, token: str) -> KeyInfo | None:
        """The key for a token, cached briefly so most requests skip the database. While the
        database is unreachable a key verified within ``STALE_KEY_SECONDS`` keeps working (a
        revocation needs the database anyway), so scoring goes on; an unknown one is a 503."""
        digest = hash_key(token)
        now = time.monotonic()
        hit = self._keys.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            info = await run_in_threadpool(self.store.key_for_token, token)
        except DBAPIError:  # the database is down: a key verified lately still scores
            if hit is not None and hit[0] is not None \
                    and now < hit[1] - KEY_CACHE_SECONDS + STALE_KEY_SECONDS:
                return hit[0]
            raise  # a 503 (the app's store-error handler)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[digest] = (info, now + KEY_CACHE_SECONDS)
        return info


async def get_service(request: Request) -> Service:
    """The app's :class:`Service`."""
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(get_service)]
bearer = HTTPBearer(auto_error=False, description="An API key from `loanrisk keys create`.")


async def authenticate(service: Service, creds: HTTPAuthorizationCredentials | None) -> KeyInfo:
    """The caller's active API key; 401 without one, 429 (Retry-After) over its rate."""
    if creds is None or not creds.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer API key",
                            headers={"WWW-Authenticate": "Bearer"})
    key = await service.key_for(creds.credentials)
    if key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown, revoked or expired API key",
                            headers={"WWW-Authenticate": "Bearer"})
    wait = await service.limiter.take(key.id)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "rate limit exceeded for this key",
                            headers={"Retry-After": retry_after(wait)})
    return key


async def api_key(service: ServiceDep,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                  ) -> KeyInfo:
    """The caller's active API key (see :func:`authenticate`)."""
    return await authenticate(service, creds)


KeyDep = Annotated[KeyInfo, Depends(api_key)]


async def admin_key(key: KeyDep) -> KeyInfo:
    """The caller's key if it is an admin key, else 403."""
    if not key.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs an admin API key")
    return key


AdminDep = Annotated[KeyInfo, Depends(admin_key)]


async def served_model(service: ServiceDep) -> Served:
    """The model serving now (one reference read); 503 until one is loaded."""
    served = service.holder.current
    if served is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded yet",
                            headers={"Retry-After": "1"})
    return served


ServedDep = Annotated[Served, Depends(served_model)]


@dataclass(frozen=True)
class Call:
    """One scoring request's context: the service, the caller's key and the model to use."""

    service: Service
    key: KeyInfo
    served: Served


async def call_context(request: Request,
                       creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                       ) -> Call:
    """Key (401/429) and served model (503) in one dependency: the hot paths solve few."""
    service: Service = request.app.state.service
    key = await authenticate(service, creds)
    request.state.loanrisk_key = key  # a refused submission's audit row names its key
    served = service.holder.current  # read once: this request finishes on this model
    if served is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded yet",
                            headers={"Retry-After": "1"})
    return Call(service=service, key=key, served=served)


CallDep = Annotated[Call, Depends(call_context)]


def channel_of(key: KeyInfo, items: list[dict[str, Any]], *, batch: bool) -> list[str]:
    """The channel of each validated body: the key's default when it names none; 403 naming the
    ``channel`` field (never its value) when it names one the key is not allowed.

    The key's channels are authoritative, for admin keys too: a key is created for the channels
    it submits from (``loanrisk keys create --channel web --channel mobile``) and cannot label
    its applications as coming from any other.
    """
    out: list[str] = []
    refused: list[int] = []
    for i, item in enumerate(items):
        named = item.get("channel")
        if named is None:
            out.append(key.channel)
        elif key.allows(named):
            out.append(named)
        else:
            refused.append(i)
    if refused:
        first = refused[0]
        loc = ["body", str(first), "channel"] if batch else ["body", "channel"]
        more = f" ({len(refused)} applications of the batch do)" if batch else ""
        allowed = ", ".join(dict.fromkeys((key.channel, *key.channels)))
        raise HTTPException(status.HTTP_403_FORBIDDEN, [{
            "loc": loc, "field": "channel",
            "type": "channel_not_allowed",
            "msg": f"this API key may not submit for that channel{more}; it is allowed: "
                   f"{allowed} (leave channel out for its default, {key.channel})"}])
    return out
