from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from backend.auth import TokenVerifier

from .helpers import (
    ISSUER,
    SECRET,
    FakeClock,
    JwksServer,
    SigningKey,
    cache_for,
    ec_key,
    ed25519_key,
    make_settings,
    rsa_key,
)

_ENV = (
    "TODO_ENV", "DATABASE_URL", "BETTER_AUTH_SECRET", "BETTER_AUTH_URL", "JWT_JWKS_URL",
    "JWT_ISSUER", "JWT_AUDIENCE", "JWT_LEEWAY_SECONDS", "JWKS_CACHE_TTL_SECONDS",
    "JWKS_REFETCH_COOLDOWN_SECONDS", "JWKS_TIMEOUT_SECONDS", "JWKS_MAX_STALE_SECONDS",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass settings explicitly; nothing leaks in from the shell."""
    for name in _ENV:
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
def ps_key() -> SigningKey:
    key = rsa_key("rsa-ps", "PS256")
    key.jwk["alg"] = "PS256"
    return key


@pytest.fixture
def jwks_server(
    ed_key: SigningKey, es_key: SigningKey, rs_key: SigningKey, ps_key: SigningKey
) -> Iterator[JwksServer]:
    server = JwksServer(keys=[ed_key.jwk, es_key.jwk, rs_key.jwk, ps_key.jwk])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def jwks_verifier(jwks_server: JwksServer, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    """JWKS only (like production with Better Auth): iss/aud checked, no HS secret."""
    settings = make_settings(
        better_auth_url=ISSUER,
        jwt_jwks_url=jwks_server.url,
        jwks_refetch_cooldown_seconds=30,
        jwks_cache_ttl_seconds=600,
        jwks_timeout_seconds=2,
    )
    verifier = TokenVerifier(settings, None, jwks=cache_for(settings, clock))
    yield verifier
    await verifier.aclose()


@pytest.fixture
async def hs_verifier() -> AsyncIterator[TokenVerifier]:
    """Shared secret only, no iss/aud configured (development with `todo-api token`)."""
    verifier = TokenVerifier(make_settings(better_auth_secret=SECRET.decode()), SECRET)
    yield verifier
    await verifier.aclose()
