"""Implements generated.handlers.HealthHandlers: liveness and database readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request

from backend.db import ping
from backend.errors import ServiceUnavailable
from generated import handlers as generated_handlers
from generated.models import Database, Health, Readiness, Status


class HealthHandlers(generated_handlers.HealthHandlers):
    """Liveness, and readiness as "the database answers a query"."""

    def __init__(self, ping: Callable[[], Awaitable[None]], timeout_seconds: float) -> None:
        self._ping = ping
        self._timeout = timeout_seconds

    async def get_health(self) -> Health:
        return Health(status=Status.ok)

    async def get_readiness(self) -> Readiness:
        try:
            async with asyncio.timeout(self._timeout):
                await self._ping()
        except Exception as exc:  # any failure to answer means "not ready", never a 500
            raise ServiceUnavailable("the database is unavailable") from exc
        return Readiness(status=Status.ok, database=Database.ok)


async def health_handlers(request: Request) -> AsyncIterator[HealthHandlers]:
    """Probes need no caller identity; readiness pings through the request path's own pool."""
    state: Any = request.app.state

    settings = state.settings
    timeout = min(settings.db_pool_timeout_seconds, settings.db_request_deadline_seconds)

    async def ping_database() -> None:
        await ping(state, timeout)

    yield HealthHandlers(ping_database, timeout)
