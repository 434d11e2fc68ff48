"""Implements generated.handlers.HealthHandlers: liveness and database readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.errors import ServiceUnavailable
from generated import handlers as generated_handlers
from generated.models import Database, Health, Readiness, Status


class HealthHandlers(generated_handlers.HealthHandlers):
    """Liveness, and readiness as "the database answers a query"."""

    def __init__(self, engine: AsyncEngine, timeout_seconds: float) -> None:
        self._engine = engine
        self._timeout = timeout_seconds

    async def get_health(self) -> Health:
        return Health(status=Status.ok)

    async def get_readiness(self) -> Readiness:
        try:
            async with asyncio.timeout(self._timeout), self._engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure to answer means "not ready", never a 500
            raise ServiceUnavailable("the database is unavailable") from exc
        return Readiness(status=Status.ok, database=Database.ok)


async def health_handlers(request: Request) -> AsyncIterator[HealthHandlers]:
    """Probes need no caller identity and open their own connection (readiness only)."""
    settings = request.app.state.settings
    yield HealthHandlers(request.app.state.engine, settings.db_pool_timeout_seconds)
