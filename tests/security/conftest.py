"""Fixtures for the security suite: apps built from explicit settings, real keys, a real JWKS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.settings import Settings
from tests.auth.helpers import ISSUER, JwksServer, SigningKey, ec_key, ed25519_key, rsa_key
from tests.support import SECRET

# Everything Settings reads that could change what these tests see if set in the shell.
_ENV = (
    "TODO_ENV", "DATABASE_URL", "BETTER_AUTH_SECRET", "BETTER_AUTH_URL", "JWT_JWKS_URL",
    "JWT_ISSUER", "JWT_AUDIENCE", "JWT_LEEWAY_SECONDS", "JWKS_CACHE_TTL_SECONDS",
    "JWKS_REFETCH_COOLDOWN_SECONDS", "JWKS_TIMEOUT_SECONDS", "JWKS_MAX_STALE_SECONDS",
    "CORS_ORIGINS", "MAX_BODY_BYTES",
)  # fmt: skip
FRONTEND = "http://localhost:3000"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the shell that runs it."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings on `database_url`; HS secret unless overridden (pass None to drop it)."""
    values: dict[str, Any] = {
        "todo_env": "test",
        "database_url": database_url,
        "better_auth_secret": SECRET.decode(),
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan included) behind an in-process HTTP client."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def jwks_settings(database_url: str, jwks_url: str, **overrides: Any) -> Settings:
    """Like production with Better Auth: JWKS only, iss = aud = the Better Auth URL."""
    values: dict[str, Any] = {
        "better_auth_secret": None,
        "better_auth_url": ISSUER,
        "jwt_jwks_url": jwks_url,
        "jwks_refetch_cooldown_seconds": 0,
        "jwks_timeout_seconds": 2,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


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
def outsider_key() -> SigningKey:
    """An Ed25519 key that the JWKS never publishes (the attacker's own key)."""
    return ed25519_key("attacker")


@pytest.fixture
def jwks_server(ed_key: SigningKey, es_key: SigningKey, rs_key: SigningKey) -> Iterator[JwksServer]:
    """A JWKS served over real HTTP on 127.0.0.1 (like Better Auth's /api/auth/jwks)."""
    server = JwksServer(keys=[ed_key.jwk, es_key.jwk, rs_key.jwk])
    server.start()
    yield server
    server.stop()
