"""JWKS-signed tokens through the API, with the key set served over real HTTP on 127.0.0.1.

These write tasks, so they run on SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import pytest

from tests.security.helpers import jwks_settings
from tests.support import (
    ISSUER,
    JwksServer,
    SigningKey,
    app_client,
    assert_problem,
    assert_unauthorized,
    claims,
    free_port,
)

VICTIM = "alice"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("key_name", ["ed", "es", "rs"])
async def test_jwks_signed_tokens_are_accepted(
    database_url: str,
    jwks_server: JwksServer,
    key_name: str,
    ed_key: SigningKey,
    es_key: SigningKey,
    rs_key: SigningKey,
) -> None:
    """Threat (availability): the algorithms Better Auth can be configured with (EdDSA default,
    ES256, RS256) must work end to end, with the key set fetched over HTTP from loopback."""
    key = {"ed": ed_key, "es": es_key, "rs": rs_key}[key_name]
    settings = jwks_settings(database_url, jwks_server.url)
    async with app_client(settings) as client:
        sub = f"user_{key_name}"
        token = key.sign(claims(sub, iss=ISSUER, aud=ISSUER, email="u@example.test"))
        headers = _bearer(token)
        created = await client.post(f"/api/{sub}/tasks", json={"title": key.alg}, headers=headers)
        assert created.status_code == 201, created.text
        listed = await client.get(f"/api/{sub}/tasks", headers=headers)
        assert listed.status_code == 200
        assert [(t["title"], t["user_id"]) for t in listed.json()] == [(key.alg, sub)]
        # The same genuine token is still confined to its own subject.
        assert_problem(await client.get(f"/api/{VICTIM}/tasks", headers=headers), 403)
    assert jwks_server.requests >= 1


async def test_jwks_down_with_unknown_kid_is_503(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey, outsider_key: SigningKey
) -> None:
    """Threat: the key server going down turns into 500s, or into accepting unverifiable tokens.

    A kid the cache has never seen cannot be checked: 503 problem+json with Retry-After (the
    client may retry), never 401 (the token might be fine) and never 200. Known keys keep
    working from the cache.
    """
    settings = jwks_settings(database_url, jwks_server.url)
    async with app_client(settings) as client:
        known = ed_key.sign(claims(VICTIM, iss=ISSUER, aud=ISSUER))
        headers = _bearer(known)
        assert (await client.get(f"/api/{VICTIM}/tasks", headers=headers)).status_code == 200
        jwks_server.stop()
        rotated = outsider_key.sign(claims(VICTIM, iss=ISSUER, aud=ISSUER))
        response = await client.post(
            f"/api/{VICTIM}/tasks",
            json={"title": "planted"},
            headers=_bearer(rotated),
        )
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1
        still = await client.get(f"/api/{VICTIM}/tasks", headers=headers)
        assert still.status_code == 200 and still.json() == []
        # Back up: the unknown kid is now a definite answer (401), not a retry.
        jwks_server.start()
        again = await client.get(f"/api/{VICTIM}/tasks", headers=_bearer(rotated))
        assert_unauthorized(again)


async def test_jwks_unreachable_from_start_is_503(database_url: str, ed_key: SigningKey) -> None:
    """Threat: with the key server never reachable, tokens are neither accepted unverified nor
    answered with 500: 503 problem+json with Retry-After."""
    dead_url = f"http://127.0.0.1:{free_port()}/api/auth/jwks"
    settings = jwks_settings(database_url, dead_url, jwks_refetch_cooldown_seconds=30)
    async with app_client(settings) as client:
        token = ed_key.sign(claims(VICTIM, iss=ISSUER, aud=ISSUER))
        for _ in range(2):  # the second one is inside the refetch cooldown: still 503
            response = await client.get(f"/api/{VICTIM}/tasks", headers=_bearer(token))
            assert_problem(response, 503)
            assert 1 <= int(response.headers["retry-after"]) <= 30
