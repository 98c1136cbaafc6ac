"""Body-size limit (413) and request ids for the API (rate limits: loanrisk.api.ratelimit)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from typing import Any


def _json_response(status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    body = json.dumps({"detail": detail}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()), *(headers or [])]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``limit`` bytes with 413 (by header or while streaming)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body larger than {self.limit} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                for msg in _json_response(413, detail):
                    await send(msg)
                return
        seen = 0
        started = [False]

        async def _receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def _send(message: Any) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except _TooLarge:
            if not started[0]:
                for msg in _json_response(413, detail):
                    await send(msg)


class _TooLarge(Exception):
    pass


class LastResortMiddleware:
    """Any exception no handler answered becomes a generic 500 carrying the request id.

    The log gets one line: the request id (from the record factory) and the exception's type:
    never its message or a traceback, which can hold request values (SQL parameters, a body).
    Nothing reaches the server (uvicorn would log the traceback). When the answer had already
    started, the connection is closed without one.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = [False]

        async def _send(message: Any) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception as exc:  # the last resort: logged by type only
            logging.getLogger("loanrisk.api").error(
                "unexpected %s while answering; answered 500 (request id in this line)",
                type(exc).__name__)
            if started[0]:
                return
            rid = REQUEST_ID.get()
            body = json.dumps({"detail": "internal error: the service could not answer this "
                                         f"request (request id {rid})",
                               "request_id": rid}).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("loanrisk_request_id",
                                                                 default="-")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Give every request an id: the caller's ``X-Request-ID`` when it is a plain token of at
    most 128 characters (a gateway's, a call center's), else a new one. It is returned in the
    ``X-Request-ID`` response header and set in REQUEST_ID for the request's log records."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"")
        text = given.decode("latin-1")
        rid = text if _SAFE_ID.fullmatch(text) else uuid.uuid4().hex
        token = REQUEST_ID.set(rid)
        header = (b"x-request-id", rid.encode())

        async def _send(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            REQUEST_ID.reset(token)


def install_log_request_ids() -> None:
    """Every log record gets ``request_id`` (the current request's, "-" outside one), so a
    format such as ``%(request_id)s`` ties a service log line to the answer the caller got."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_loanrisk", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    make._loanrisk = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
    install_log_guards()


class TypeOnlyExceptions(logging.Filter):
    """A record's exception is written as its type alone: no message, no traceback (both can
    hold request values). On the server's own loggers, where an unexpected error would land."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            name = record.exc_info[0].__name__
            record.msg = f"{record.getMessage()} ({name})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True


SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "starlette",
                  "fastapi", "sqlalchemy", "sqlalchemy.engine")


def install_log_guards() -> None:
    """Put TypeOnlyExceptions on the server's and the database layer's loggers (idempotent)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TypeOnlyExceptions) for f in logger.filters):
            logger.addFilter(TypeOnlyExceptions())


class RequestIdFormatter(logging.Formatter):
    """A formatter whose format may name ``%(request_id)s`` ("-" on records made without it)."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return super().format(record)


SERVICE_LOG_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, request_id, message; an
    exception is named by its type only (its message and traceback can hold request values)."""

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name,
            "request_id": getattr(record, "request_id", "-"), "message": record.getMessage()}
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception"] = record.exc_info[0].__name__
        return json.dumps(doc, ensure_ascii=False)


def log_formatter(fmt: str = "text", text: str = SERVICE_LOG_FORMAT) -> logging.Formatter:
    """The formatter of ``LOANRISK_LOG_FORMAT``: JSON lines, or ``text`` with request ids."""
    return JsonFormatter() if fmt == "json" else RequestIdFormatter(text)


def configure_service_logging(level: int = logging.WARNING, fmt: str | None = None) -> None:
    """The service's log lines name their request: the root handlers use SERVICE_LOG_FORMAT, or
    JSON lines with ``LOANRISK_LOG_FORMAT=json`` (then uvicorn's own loggers, configured with
    ``log_config=None``, reach the root handler too)."""
    if fmt is None:
        from loanrisk.config import get_settings

        fmt = get_settings().log_format
    install_log_request_ids()
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    for handler in root.handlers:
        handler.setFormatter(log_formatter(fmt))
