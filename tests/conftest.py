"""Fixtures: every API test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from backend.app import create_app
from backend.migrate import upgrade_to_head
from backend.settings import Settings
from tests.support import (
    PG_SKIP_REASON,
    SigningKey,
    User,
    api_settings,
    ec_key,
    ed25519_key,
    postgres_url,
    reset_postgres_schema,
    rsa_key,
    truncate_postgres,
)

# Everything Settings reads that could change what a test sees if set in the shell.
SETTINGS_ENV = (
    "TODO_ENV", "DATABASE_URL", "BETTER_AUTH_SECRET", "BETTER_AUTH_URL", "JWT_JWKS_URL",
    "JWT_ISSUER", "JWT_AUDIENCE", "JWT_LEEWAY_SECONDS", "JWKS_CACHE_TTL_SECONDS",
    "JWKS_REFETCH_COOLDOWN_SECONDS", "JWKS_TIMEOUT_SECONDS", "JWKS_MAX_STALE_SECONDS",
    "CORS_ORIGINS", "MAX_BODY_BYTES",
)  # fmt: skip


@pytest.fixture
def clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the shell that runs it."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return ed25519_key("ed-1")


@pytest.fixture(scope="session")
def es_key() -> SigningKey:
    return ec_key("ec-1")


@pytest.fixture(scope="session")
def rs_key() -> SigningKey:
    return rsa_key("rsa-1", "RS256")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> str | None:
    """TEST_DATABASE_URL emptied and migrated once per session (None when not configured)."""
    url = postgres_url()
    if url is None:
        return None
    reset_postgres_schema(url)
    upgrade_to_head(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    migrated_postgres: str | None,
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "todo.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    yield migrated_postgres


@pytest.fixture
def pg_url(migrated_postgres: str | None) -> str:
    """The migrated test database, emptied; skipped when TEST_DATABASE_URL is not set."""
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    return migrated_postgres


@pytest.fixture
def settings(database_url: str) -> Settings:
    return api_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def alice() -> User:
    return User.named("alice")


@pytest.fixture
def bob() -> User:
    return User.named("bob")
