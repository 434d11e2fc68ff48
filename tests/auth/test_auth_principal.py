"""The principal a verified token yields: subject, expiry and Better Auth's profile claims."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request

from backend.auth import Principal, TokenVerifier, current_principal, current_user_id
from tests.support import LONG_SECRET, SigningKey, better_auth_claims, claims, verifier_settings


async def test_better_auth_token_gives_its_profile(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    payload = better_auth_claims("user_1")
    principal = await jwks_verifier.verify_principal(ed_key.sign(payload))
    assert principal == Principal(
        subject="user_1",
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        email="a@example.test",
        name="A",
        email_verified=True,
    )
    assert principal.expires_at.tzinfo is UTC
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.subject = "user_2"  # type: ignore[misc]


@pytest.mark.parametrize(
    "profile",
    [
        {},
        {"email": 5, "name": ["A"], "emailVerified": "true"},
        {"email": None, "name": None, "emailVerified": 1},
    ],
)
async def test_profile_claims_of_the_wrong_type_are_left_out(
    hs_verifier: TokenVerifier, profile: dict[str, Any]
) -> None:
    principal = await hs_verifier.verify_principal(jwt.encode(claims(**profile), LONG_SECRET))
    assert (principal.email, principal.name, principal.email_verified) == (None, None, None)


async def test_float_exp_keeps_its_fraction(hs_verifier: TokenVerifier) -> None:
    payload = claims()
    payload["exp"] += 0.5
    principal = await hs_verifier.verify_principal(jwt.encode(payload, LONG_SECRET))
    assert principal.expires_at.timestamp() == payload["exp"]


async def test_the_cache_returns_the_same_principal(hs_verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(email="x@example.test"), LONG_SECRET)
    first = await hs_verifier.verify_principal(token)
    assert await hs_verifier.verify_principal(token) is first
    assert await hs_verifier.verify(token) == first.subject


async def test_current_principal_dependency() -> None:
    """`current_principal` and `current_user_id` agree, through a real FastAPI app."""
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(verifier_settings(), LONG_SECRET)

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        principal = await current_principal(request)
        return {"sub": await current_user_id(request), "email": principal.email}

    token = jwt.encode(claims("alice", email="alice@example.test"), LONG_SECRET)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
    await app.state.token_verifier.aclose()
    assert response.json() == {"sub": "alice", "email": "alice@example.test"}
