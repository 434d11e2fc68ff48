"""The app factory: generated routers + hand-written handlers, the unit of work, auth and errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, params
from starlette.middleware.cors import CORSMiddleware

from backend.auth import TokenVerifier, resolve_hs_secret
from backend.contract import install_contract_routes, load_contract
from backend.db import close_database, open_database
from backend.handlers.auth import AuthHandlers, auth_handlers
from backend.handlers.health import HealthHandlers, health_handlers
from backend.handlers.tasks import TaskHandlers, task_handlers
from backend.metrics import sample_pool_forever
from backend.middleware import (
    BodyGuardMiddleware,
    ErrorBoundaryMiddleware,
    RequestContextMiddleware,
)
from backend.problems import install_exception_handlers
from backend.ratelimit import create_rate_limiter
from backend.repository import delete_expired_keys
from backend.settings import Settings
from generated.handlers import HANDLER_INTERFACES, OPERATIONS
from generated.routes import create_router

logger = logging.getLogger("todo_api")

# tag -> the class implementing its generated interface (checked at start-up, see below)
IMPLEMENTATIONS: dict[str, type] = {
    "auth": AuthHandlers,
    "health": HealthHandlers,
    "tasks": TaskHandlers,
}
KEY_CLEANUP_INTERVAL_SECONDS = 3600.0
CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Link",
    "X-Total-Count",
    "API-Version",
    "X-Request-ID",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "WWW-Authenticate",  # so the front end can tell an expired token from other 401s
]


class MissingHandlerError(RuntimeError):
    """The contract declares an operation that backend/ does not implement (correctly)."""


def _keyword_names(function: Callable[..., Any]) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.name != "self"]


def check_implementations(
    implementations: dict[str, type] = IMPLEMENTATIONS,
    *,
    interfaces: dict[str, type] = HANDLER_INTERFACES,
    operations: dict[str, tuple[str, str]] = OPERATIONS,
) -> None:
    """Fail at start-up naming each operationId whose handler is missing or mis-typed.

    mypy catches the same at `create_router(...)` (each dependency must yield an implementation
    of its tag's Protocol); this check also covers a tree that was never type-checked.
    """
    problems = [
        f"tag '{tag}': no handler class registered in backend.app.IMPLEMENTATIONS "
        f"(implement generated.handlers.{interface.__name__})"
        for tag, interface in interfaces.items()
        if tag not in implementations
    ]
    for operation_id, (tag, method) in operations.items():
        if tag not in implementations:
            continue
        implementation = implementations[tag]
        expected = getattr(interfaces[tag], method)
        where = f"{implementation.__module__}.{implementation.__qualname__}"
        actual = getattr(implementation, method, None)
        # `actual is expected`: inherited from the Protocol itself, i.e. not implemented.
        if actual is None or actual is expected or not inspect.iscoroutinefunction(actual):
            problems.append(
                f"operationId '{operation_id}': {where} has no async method '{method}' "
                f"(expected: async def {method}{inspect.signature(expected)})"
            )
        elif sorted(_keyword_names(actual)) != sorted(_keyword_names(expected)):
            problems.append(
                f"operationId '{operation_id}': {where}.{method} takes {_keyword_names(actual)}, "
                f"the contract gives {_keyword_names(expected)}"
            )
    if problems:
        raise MissingHandlerError(
            "the contract is not fully implemented:\n  " + "\n  ".join(problems)
        )


async def _clean_expired_keys(app: FastAPI) -> None:
    while True:
        await asyncio.sleep(KEY_CLEANUP_INTERVAL_SECONDS)
        try:
            async with app.state.engine.begin() as connection:
                removed = await delete_expired_keys(connection)
            if removed:
                logger.info("expired idempotency keys removed", extra={"count": removed})
        except Exception:  # a failed sweep is retried next interval; never kill the loop
            logger.warning("idempotency key cleanup failed", exc_info=True)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    await open_database(settings, app.state)
    secret, _ = resolve_hs_secret(settings)
    verifier = TokenVerifier(settings, secret)
    app.state.token_verifier = verifier
    await verifier.prefetch_keys()  # warm the JWKS cache; a failure here is retried per request
    cleanup = asyncio.create_task(_clean_expired_keys(app))
    limiter = app.state.rate_limiter = create_rate_limiter(settings)
    sampler = None
    if settings.metrics_enabled:
        sampler = asyncio.create_task(sample_pool_forever(app.state.pool))
    # Move everything built at start-up (modules, routes, schemas, the engine) out of the
    # collector's reach: a full collection then scans only per-request garbage. Without it,
    # list requests spent about a fifth of their CPU time, and their p99, in gen-2 collections.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        for task in (cleanup, sampler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if limiter is not None:
            await limiter.aclose()
        await verifier.aclose()
        await close_database(app.state)


def create_app(
    settings: Settings | None = None,
    *,
    dependencies: Sequence[params.Depends] | None = None,
    router_dependencies: Sequence[params.Depends] | None = None,
    operation_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> FastAPI:
    """Build the ASGI app; `todo-api serve` calls this once per worker process.

    `dependencies` are app-level FastAPI dependencies, `router_dependencies` the contract
    router's, and `operation_options` more arguments of single routes by operationId (e.g.
    route-level `dependencies=`). Every tag's handler dependency is passed by name, so mypy
    names a tag the contract gained and this call lacks.
    """
    settings = settings or Settings()
    check_implementations()
    contract = load_contract()
    app = FastAPI(
        title=contract.title,
        version=contract.version,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=dependencies,
        # The contract has no trailing-slash paths: `/api/x/tasks/` is a 404, never a redirect
        # whose Location Starlette would build from the request's Host header.
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry hooks: we ship no tracer, meter or logger provider, and
        # checking for one cost ~3% of every request. Enable here together with a provider.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.rate_limiter = None  # set up by the lifespan when RATE_LIMIT_PER_MINUTE is set
    # The contract's operations go on the app's own router (no included-router wrapper to
    # match through) unless router-level dependencies ask for a router of their own.
    router = APIRouter(dependencies=list(router_dependencies)) if router_dependencies else None
    create_router(
        auth=auth_handlers,
        health=health_handlers,
        tasks=task_handlers,
        operation_options=operation_options,
        router=router or app.router,
    )
    if router is not None:
        app.include_router(router)
    install_exception_handlers(app)
    install_contract_routes(app, contract)
    # Added innermost first: ErrorBoundary < BodyGuard < CORS < RequestContext.
    app.add_middleware(ErrorBoundaryMiddleware)
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware, api_version=contract.version, metrics=settings.metrics_enabled
    )
    return app
