"""GET /api/me: the caller's identity from the verified token alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import jwt

from tests.support import SECRET, User


def _token(**claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 900, **claims}, SECRET, algorithm="HS256")


async def test_a_better_auth_shaped_token_gives_its_profile(client: httpx.AsyncClient) -> None:
    token = _token(sub="user_2f9a", email="ada@example.com", name="Ada", emailVerified=True)
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert body == {
        "user_id": "user_2f9a",
        "email": "ada@example.com",
        "name": "Ada",
        "email_verified": True,
        "token_expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
    }
    assert response.headers["cache-control"] == "private, no-cache"


async def test_claims_the_token_lacks_or_mistypes_are_null(
    client: httpx.AsyncClient, alice: User
) -> None:
    plain = await client.get("/api/me", headers=alice.headers)
    assert plain.status_code == 200, plain.text
    assert plain.json()["user_id"] == alice.id
    assert {plain.json()[k] for k in ("email", "name", "email_verified")} == {None}
    odd = _token(sub="bob", email=5, name=["x"], emailVerified="yes")
    typed = await client.get("/api/me", headers={"Authorization": f"Bearer {odd}"})
    assert typed.status_code == 200, typed.text
    assert (typed.json()["email"], typed.json()["name"], typed.json()["email_verified"]) == (
        None,
        None,
        None,
    )


async def test_without_a_valid_token_it_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        response = await client.get("/api/me", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
