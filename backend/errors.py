"""Domain errors and their one rendering: RFC 9457 `application/problem+json`.

Every error the API returns goes through `problem_response`, so the body always matches the
contract's `Problem` schema (type, title, status, detail, instance, request_id, errors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response
from starlette.types import Scope

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://todo-api.dev/problems/"


class DomainError(Exception):
    """An error with a fixed HTTP meaning; subclasses set status, type and title."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequest(DomainError):
    status = 400
    slug = "bad-request"
    title = "Bad Request"


class Unauthorized(DomainError):
    """Missing or invalid credentials; always carries a Bearer challenge (RFC 6750)."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        description = detail.replace("\\", "").replace('"', "'")
        super().__init__(
            detail,
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="todo-api", error="invalid_token", '
                    f'error_description="{description}"'
                )
            },
        )


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not Found"


class MethodNotAllowed(DomainError):
    status = 405
    slug = "method-not-allowed"
    title = "Method Not Allowed"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class TaskQuotaExceeded(Conflict):
    """A create beyond MAX_TASKS_PER_USER: the caller must delete tasks first."""

    slug = "task-quota-exceeded"


class PreconditionFailed(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition Failed"


class PayloadTooLarge(DomainError):
    """The body is not read to its end: the connection closes after this answer."""

    status = 413
    slug = "payload-too-large"
    title = "Payload Too Large"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class UnsupportedMediaType(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported Media Type"


class ValidationFailed(DomainError):
    """Input that parsed but broke a rule; `errors` says which field and why."""

    status = 422
    slug = "validation-error"
    title = "Validation Error"


class IdempotencyKeyReused(DomainError):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency Key Reused"


class TooManyRequests(DomainError):
    """The caller spent its per-user request budget; `Retry-After` says when the window resets."""

    status = 429
    slug = "too-many-requests"
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(DomainError):
    """A dependency (database, JWKS endpoint) is down; the client may retry later."""

    status = 503
    slug = "service-unavailable"
    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class InternalError(DomainError):
    status = 500
    slug = "internal-error"
    title = "Internal Server Error"


# RFC 3986 `pchar` minus `%`, plus `/`: everything else in a path is percent-encoded.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def problem_instance(scope: Scope) -> str:
    """The request path as a URI reference (percent-encoded), for the problem's `instance`.

    `scope["path"]` is decoded, so a request for `/api/u/tasks/%C3%A9` would otherwise put a raw
    `é` (or a control character) into a field the contract declares `format: uri-reference`.
    """
    return quote(str(scope.get("path", "")), safe=_PATH_SAFE)


def problem_body(
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    instance: str | None = None,
    request_id: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = list(errors)
    return orjson.dumps(body)


def problem_response(error: DomainError, scope: Scope) -> Response:
    """The one rendering of every error: the contract's Problem document for this request.

    Exception handlers and middleware alike answer through this, so every error body carries
    the same fields (`instance`, `request_id`, `errors`) and the error's own headers.
    """
    state: Mapping[str, Any] = scope.get("state", {})
    return Response(
        content=problem_body(
            status=error.status,
            type_=error.type,
            title=error.title,
            detail=error.detail,
            instance=problem_instance(scope),
            request_id=state.get("request_id"),
            errors=error.errors,
        ),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def http_problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> DomainError:
    """A DomainError for an HTTP status that has no class of its own (from HTTPException)."""
    error = DomainError(detail, headers=headers)
    error.status = status
    error.title = HTTPStatus(status).phrase
    error.slug = error.title.lower().replace(" ", "-")
    return error
