"""Fixtures for the operations tests: an app built from settings the test chooses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.app import create_app
from tests.ops.helpers import AppClient
from tests.support import PG_SKIP_REASON, api_settings, truncate_postgres


def _builder(database_url: str) -> AppClient:
    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings = api_settings(database_url).model_copy(update=overrides)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield app, c

    return build


@pytest.fixture
def app_client(database_url: str) -> AppClient:
    """`async with app_client(**settings) as (app, client)`: an app on the test's database."""
    return _builder(database_url)


@pytest.fixture
def pg_app_client(migrated_postgres: str | None) -> AppClient:
    """The same on PostgreSQL only (TEST_DATABASE_URL)."""
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    return _builder(migrated_postgres)
