"""Fixtures for tests that compare SQLite and PostgreSQL side by side in one test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from backend.app import create_app
from tests.support import PG_SKIP_REASON, api_settings, truncate_postgres


@pytest.fixture
async def both_clients(
    tmp_path: Path, sqlite_template: Path, migrated_postgres: str | None
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """{"sqlite": client, "postgres": client}, each over a fresh, empty, migrated database."""
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    sqlite_file = tmp_path / "both.db"
    shutil.copyfile(sqlite_template, sqlite_file)
    truncate_postgres(migrated_postgres)
    urls = {"sqlite": f"sqlite:///{sqlite_file}", "postgres": migrated_postgres}
    async with AsyncExitStack() as stack:
        clients = {}
        for name, url in urls.items():
            app = create_app(api_settings(url))
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                )
            )
        yield clients
