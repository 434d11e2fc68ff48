from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from backend.auth import TokenVerifier
from tests.support import (
    ISSUER,
    LONG_SECRET,
    FakeClock,
    JwksServer,
    SigningKey,
    cache_for,
    rsa_key,
    verifier_settings,
)


@pytest.fixture(autouse=True)
def _clean_env(clean_settings_env: None) -> None:
    """Settings come from the test, never from the shell that runs it."""


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
    settings = verifier_settings(
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
    verifier = TokenVerifier(
        verifier_settings(better_auth_secret=LONG_SECRET.decode()), LONG_SECRET
    )
    yield verifier
    await verifier.aclose()
