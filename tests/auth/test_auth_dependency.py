"""current_user_id: Authorization header parsing (RFC 6750) through a real FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from backend.auth import TokenVerifier, current_user_id, mint_token
from backend.errors import DomainError, problem_response
from tests.support import LONG_SECRET, verifier_settings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(verifier_settings(), LONG_SECRET)

    @app.exception_handler(DomainError)
    async def _problem(request: Request, exc: DomainError) -> Response:
        return problem_response(exc, request.scope)

    @app.get("/me")
    async def me(request: Request) -> dict[str, str]:
        return {"user_id": await current_user_id(request)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
    await app.state.token_verifier.aclose()


TOKEN = mint_token(LONG_SECRET, "alice")


@pytest.mark.parametrize(
    "value",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"Bearer   {TOKEN}",
        f"  Bearer {TOKEN}  ",
    ],
)
async def test_bearer_accepted(client: httpx.AsyncClient, value: str) -> None:
    """RFC 6750/9110: the scheme is case-insensitive and may be followed by several spaces."""
    response = await client.get("/me", headers={"Authorization": value})
    assert response.status_code == 200
    assert response.json() == {"user_id": "alice"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authorization header is missing"),
        ({"Authorization": ""}, "Authorization header is"),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "scheme must be Bearer"),
        ({"Authorization": "Bearer"}, "bearer token is missing"),
        ({"Authorization": "Bearer    "}, "bearer token is missing"),
        ({"Authorization": f"Bearer{TOKEN}"}, "scheme must be Bearer"),
        ({"Authorization": "BearerXYZ"}, "scheme must be Bearer"),
        ({"Authorization": f"Token {TOKEN}"}, "scheme must be Bearer"),
        ({"Authorization": f"Bearer {TOKEN} extra"}, "whitespace or commas"),
        ({"Authorization": f"Bearer {TOKEN},{TOKEN}"}, "whitespace or commas"),
        ({"Authorization": f"Bearer {TOKEN}\tx"}, "whitespace or commas"),
        ({"Authorization": "Bearer not-a-jwt"}, "three dot-separated segments"),
    ],
)
async def test_bad_authorization_is_401_problem(
    client: httpx.AsyncClient, headers: dict[str, str], detail: str
) -> None:
    """No/other/empty credentials are 401 (never 403) with a Bearer challenge and a clear detail."""
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="todo-api"')
    body = response.json()
    assert detail in body["detail"]
    assert TOKEN not in body["detail"] and TOKEN not in response.headers["www-authenticate"]


async def test_query_token_is_ignored(client: httpx.AsyncClient) -> None:
    """Tokens in URLs leak into logs: ?token= / ?access_token= never authenticate."""
    for name in ("token", "access_token"):
        response = await client.get("/me", params={name: TOKEN})
        assert response.status_code == 401


async def test_two_authorization_headers_rejected(client: httpx.AsyncClient) -> None:
    """Ambiguous credentials (two Authorization headers) are refused, not guessed."""
    headers = [("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer x.y.z")]
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert "exactly one" in response.json()["detail"]


async def test_forged_token_is_401(client: httpx.AsyncClient) -> None:
    """End to end: a token signed with another secret is a 401 problem."""
    forged = mint_token(b"f" * 64, "alice")
    response = await client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "token signature is invalid"
