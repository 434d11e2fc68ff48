"""Fixtures for the security suite: apps built from explicit settings, real keys, a real JWKS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import JwksServer, SigningKey, ed25519_key


@pytest.fixture(autouse=True)
def _clean_env(clean_settings_env: None) -> None:
    """Settings come from the test, never from the shell that runs it."""


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
