"""schemathesis over the ASGI app, configured exactly as `python -m tools.fuzz` configures it.

Same config file (tools/schemathesis.toml, placeholders filled in here instead of from the
environment), same hooks (tools/fuzz_hooks.py), same checks; the app runs in-process on the
`database_url` of tests/conftest.py (SQLite, and PostgreSQL when TEST_DATABASE_URL is set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

import tools.fuzz_hooks  # noqa: F401  (registers the hooks, as SCHEMATHESIS_HOOKS does for the CLI)
from backend.app import create_app
from backend.settings import Settings
from tests.support import ROOT, User, token_for

CONTRACT = ROOT / "specs" / "api" / "openapi.yaml"
CONFIG = ROOT / "tools" / "schemathesis.toml"
# Fixed, so a failure here replays on the next run; tools.fuzz explores other seeds.
SEED = 20261120
# The schema (and with it the token) is built at collection time; outlive a long session.
CONTRACT_USER_ID = "contract-user"
CONTRACT_USER = User(
    id=CONTRACT_USER_ID,
    token=(token := token_for(CONTRACT_USER_ID, ttl_seconds=12 * 3600)),
    headers={"Authorization": f"Bearer {token}"},
)


def contract_config(user: User = CONTRACT_USER, config_path: Path = CONFIG) -> SchemathesisConfig:
    """tools/schemathesis.toml with the user and token in place of its placeholders."""
    text = config_path.read_text(encoding="utf-8")
    text = text.replace("${TODO_FUZZ_USER_ID}", user.id).replace("${TODO_FUZZ_TOKEN}", user.token)
    config = SchemathesisConfig.from_str(text, base_dir=str(config_path.parent))
    config.update(seed=SEED, max_failures=None)
    return config


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
