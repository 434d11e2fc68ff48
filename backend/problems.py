"""Exception handlers: every error leaves the server as the contract's Problem document."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from backend.contract import load_contract
from backend.db import DATABASE_ERRORS, is_database_unavailable, is_rejected_value
from backend.errors import (
    BadRequest,
    DomainError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    http_problem,
    problem_response,
)
from backend.metrics import DB_UNAVAILABLE
from backend.responses import NotModified

logger = logging.getLogger("todo_api.errors")
LOCATIONS = frozenset({"body", "query", "path", "header"})


def _render(request: Request, error: DomainError) -> Response:
    return problem_response(error, request.scope)


def validation_issues(errors: Any) -> list[dict[str, str]]:
    """FastAPI/pydantic errors -> the contract's ValidationIssue list (never echoing input)."""
    issues = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc and loc[0] in LOCATIONS else "body"
        field = ".".join(loc[1:]) if loc and loc[0] in LOCATIONS else ".".join(loc)
        issues.append(
            {
                "location": location,
                "field": field,
                "message": str(error.get("msg", "invalid value")),
                "type": str(error.get("type", "value_error")),
            }
        )
    return issues


def _summary(issues: list[dict[str, str]]) -> str:
    first = issues[0]
    where = ".".join(part for part in (first["location"], first["field"]) if part)
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{where}: {first['message']}{more}"


async def on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return _render(request, BadRequest("the request body is not valid JSON"))
    issues = validation_issues(errors) or [
        {"location": "body", "field": "", "message": "invalid request", "type": "value_error"}
    ]
    return _render(request, ValidationFailed(_summary(issues), errors=issues))


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return _render(request, exc)


async def on_not_modified(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return Response(status_code=304, headers={"ETag": exc.etag})


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    error: DomainError
    if exc.status_code == 404:
        error = NotFound(
            f"no resource at {request.scope['path']}"
        )  # request.url: 500 on non-UTF-8 queries
    elif exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        error = MethodNotAllowed(f"{request.method} is not supported here", headers=headers)
    elif exc.status_code == 400:
        error = BadRequest("the request body could not be read as UTF-8 JSON")
    else:
        error = http_problem(exc.status_code, str(exc.detail), headers)
    return _render(request, error)


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method the contract declares for this path (RFC 9110 `Allow`).

    Starlette's 405 names only the methods of the first route whose path matched, but the
    generated router declares one route per operation, so `/tasks` would advertise GET alone.
    Paths outside the contract (`/openapi.json`, `/docs`) keep Starlette's answer.
    """
    methods = load_contract().methods_for(request.scope["path"])
    return ", ".join(methods) if methods else fallback


async def on_database_error(request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        DB_UNAVAILABLE.inc()
        return _render(request, ServiceUnavailable("the database is unavailable"))
    if is_rejected_value(exc):
        return _render(request, ValidationFailed("a value was rejected by the database"))
    logger.exception("database error")
    return _render(request, InternalError("an unexpected database error occurred"))


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(NotModified, on_not_modified)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, on_database_error)
    # Anything else is rendered by backend.middleware.ErrorBoundaryMiddleware.
