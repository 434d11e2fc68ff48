"""schemathesis over the ASGI app, configured exactly as `python -m tools.fuzz` configures it.

Same config file (tools/schemathesis.toml, placeholders filled in here instead of from the
environment), same hooks (tools/fuzz_hooks.py), same checks; the app runs in-process on the
`database_url` of tests/conftest.py (SQLite, and PostgreSQL when TEST_DATABASE_URL is set).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from schemathesis.python.asgi import shutdown_lifespans

from backend.app import create_app
from backend.settings import Settings


@pytest.fixture
def contract_app(settings: Settings) -> Iterator[FastAPI]:
    """A fresh app on this test's database, for schemathesis's in-process ASGI transport.

    schemathesis runs the app's lifespan on its own event loop (not pytest-asyncio's), starting
    it with the first request and keeping it until `shutdown_lifespans`.
    """
    try:
        yield create_app(settings)
    finally:
        shutdown_lifespans()
