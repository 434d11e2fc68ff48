"""Pure ASGI middleware: the request context (ids, headers, access log), body checks, errors.

Pure ASGI (not BaseHTTPMiddleware) keeps the hot path cheap and streams untouched.

The body limit is here, not FastAPI's `max_body_size`: when a request declares a Content-Length
over that limit, Starlette's limiter replaces whatever response the app starts with its own
`text/plain` 413, outside every middleware and exception handler, so the client would get
neither the contract's problem+json nor X-Request-ID. This guard is the only body limit.
"""

from __future__ import annotations

import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.db import is_database_unavailable
from backend.errors import (
    BadRequest,
    DomainError,
    InternalError,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    problem_response,
)
from backend.metrics import DB_UNAVAILABLE, observe_request
from backend.ratelimit import STATE_KEY as RATE_LIMIT_HEADERS

access_log = logging.getLogger("todo_api.access")
error_log = logging.getLogger("todo_api.errors")
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


NOSNIFF = (b"x-content-type-options", b"nosniff")
PRIVATE_NO_CACHE = (b"cache-control", b"private, no-cache")


def _is_user_scoped(path: str) -> bool:
    """True for paths under /api/{user_id}/ (the health endpoints are not a user's)."""
    if not path.startswith("/api/"):
        return False
    user, slash, _ = path[5:].partition("/")
    return bool(user and slash) and user != "health"


class RequestContextMiddleware:
    """Adds X-Request-ID, API-Version and safety headers to every response; one access-log line.

    `X-Content-Type-Options: nosniff` goes on every response. A response to a request that
    carries credentials, or under /api/{user_id}/, is one user's data: it gets
    `Cache-Control: private, no-cache` (shared caches keep no copy, a browser revalidates
    with the ETag) unless the handler chose its own Cache-Control.
    """

    def __init__(self, app: ASGIApp, *, api_version: str, metrics: bool = False) -> None:
        self.app = app
        self.api_version = api_version.encode()
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming
            if incoming is not None and _REQUEST_ID.match(incoming)
            else b"%032x" % random.getrandbits(128)  # like uuid4().hex, without a urandom call
        )
        state = scope.setdefault("state", {})
        state["request_id"] = request_id.decode()
        status = 500
        extra = [(b"api-version", self.api_version), (b"x-request-id", request_id), NOSNIFF]
        private = _header(scope, b"authorization") is not None or _is_user_scoped(scope["path"])

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *extra, *state.get(RATE_LIMIT_HEADERS, ())]
                if private and all(key != b"cache-control" for key, _ in headers):
                    headers.append(PRIVATE_NO_CACHE)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics:
                observe_request(scope.get("route"), status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                route = scope.get("route")
                access_log.info(
                    "request",
                    extra={
                        "request_id": state["request_id"],
                        "method": scope["method"],
                        "path": getattr(route, "path", None) or "<unmatched>",
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 3),
                        "user_id": state.get("user_id"),
                    },
                )


class BodyGuardMiddleware:
    """413 for bodies over the limit (before reading them in full), 415 for non-JSON bodies."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _send_problem(scope, receive, send, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_problem(scope, receive, send, self._too_large())
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
            media_type = content_type.split(";", 1)[0].strip().lower()
            if media_type != "application/json":
                shown = media_type or "no Content-Type"
                await _send_problem(
                    scope,
                    receive,
                    send,
                    UnsupportedMediaType(f"the request body must be application/json, not {shown}"),
                )
                return
            # Python's json.loads also reads UTF-16/32 and UTF-8-encoded surrogates; JSON is UTF-8.
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                await _send_problem(
                    scope, receive, send, BadRequest("the request body is not valid UTF-8")
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")


class ErrorBoundaryMiddleware:
    """Innermost: an unexpected exception becomes the contract's 500 (or 503) problem here.

    Starlette renders its catch-all 500 outside every middleware, so that response would lack
    X-Request-ID, API-Version and the CORS headers; rendered here, it gets them like any other.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise
            error: DomainError
            if is_database_unavailable(exc):
                error_log.warning("database unavailable: %s", type(exc).__name__)
                DB_UNAVAILABLE.inc()
                error = ServiceUnavailable("the database is unavailable")
            else:
                error_log.exception("unhandled error")
                error = InternalError("an unexpected error occurred")
            await _send_problem(scope, receive, send, error)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def _send_problem(scope: Scope, receive: Receive, send: Send, error: DomainError) -> None:
    await problem_response(error, scope)(scope, receive, send)
