"""CORS for the browser front end: preflights, allowed origins and the headers scripts may read.

The app is built from settings exactly as `todo-api serve` builds it; requests carry the
headers a browser sends. Runs on SQLite and PostgreSQL where responses come from stored data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from backend.settings import Settings
from tests.security.helpers import FRONTEND
from tests.support import (
    User,
    app_client,
    assert_problem,
    assert_unauthorized,
    create_task,
    make_settings,
)

EXPOSED = ["ETag", "Location", "Link", "X-Total-Count", "API-Version", "X-Request-ID"]
REQUESTED_HEADERS = "authorization, content-type, if-match, idempotency-key"
LONG_SECRET = "p" * 48


@pytest.fixture
async def cors_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with CORS_ORIGINS set to the front end's URL (as read from the environment)."""
    async with app_client(make_settings(database_url, cors_origins=FRONTEND)) as client:
        yield client


def _listed(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def _preflight(method: str, origin: str = FRONTEND) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": REQUESTED_HEADERS,
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/alice/tasks"),
        ("POST", "/api/alice/tasks"),
        ("PUT", "/api/alice/tasks/1"),
        ("PATCH", "/api/alice/tasks/1"),
        ("DELETE", "/api/alice/tasks/1"),
        ("PATCH", "/api/alice/tasks/1/complete"),
    ],
)
async def test_preflight_from_the_front_end_is_allowed(
    cors_client: httpx.AsyncClient, method: str, path: str
) -> None:
    """Threat (availability): a front end that cannot call the API at all, or one that works
    only because CORS is wide open. The preflight names exactly our origin, with credentials
    and the Authorization header allowed; it needs no token (browsers never send one)."""
    response = await cors_client.options(path, headers=_preflight(method))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert response.headers["access-control-allow-credentials"] == "true"
    assert method.lower() in _listed(response.headers["access-control-allow-methods"])
    allowed = _listed(response.headers["access-control-allow-headers"])
    assert _listed(REQUESTED_HEADERS) <= allowed
    assert "origin" in _listed(response.headers.get("vary"))


async def test_actual_responses_expose_the_contract_headers(
    cors_client: httpx.AsyncClient, alice: User
) -> None:
    """Threat (availability): the SPA cannot read ETag/Location/Link/X-Total-Count and so
    cannot do conditional writes or paging. Responses name our origin and vary on Origin,
    so a shared cache never serves one origin's CORS answer to another."""
    browser = {"Origin": FRONTEND, **alice.headers}
    created = await cors_client.post(alice.tasks, json={"title": "from the SPA"}, headers=browser)
    listed = await cors_client.get(alice.tasks, params={"limit": 1}, headers=browser)
    for response in (created, listed):
        assert response.status_code in (200, 201), response.text
        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in _listed(response.headers.get("vary"))
        exposed = _listed(response.headers["access-control-expose-headers"])
        assert {name.lower() for name in EXPOSED} <= exposed
    assert {"etag", "location"} <= set(created.headers)
    assert {"etag", "link", "x-total-count"} <= set(listed.headers)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.test",
        "http://localhost:3000.evil.example.test",  # suffix trick
        "http://localhost:30000",  # prefix trick
        "https://localhost:3000",  # other scheme
        "http://evil.localhost:3000",
        "null",  # sandboxed iframes, file:// pages
    ],
)
async def test_other_origins_get_no_allow_origin(
    cors_client: httpx.AsyncClient, alice: User, origin: str
) -> None:
    """Threat: a hostile page reads a signed-in user's tasks through the browser. Lookalike
    origins (prefix/suffix/scheme tricks, `null`) get no Access-Control-Allow-Origin on the
    preflight or the actual response, so the browser withholds the response."""
    preflight = await cors_client.options(alice.tasks, headers=_preflight("GET", origin))
    actual = await cors_client.get(alice.tasks, headers={"Origin": origin, **alice.headers})
    for response in (preflight, actual):
        assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code >= 400


async def test_without_cors_origins_nothing_is_allowed(database_url: str, alice: User) -> None:
    """Threat: CORS enabled by default. With no CORS_ORIGINS no origin, not even the front
    end's, gets an Access-Control-Allow-Origin header."""
    async with app_client(make_settings(database_url)) as client:
        preflight = await client.options(alice.tasks, headers=_preflight("POST"))
        actual = await client.get(alice.tasks, headers={"Origin": FRONTEND, **alice.headers})
    assert actual.status_code == 200
    for response in (preflight, actual):
        assert not [h for h in response.headers if h.startswith("access-control-")]
    assert_problem(preflight, 405)


async def test_error_responses_carry_cors_headers(
    cors_client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    """Threat (availability): a browser hides error responses without CORS headers, so the
    front end sees a network error instead of 401 (sign in again), 403, 404 or 422. Every
    problem response to an allowed origin is readable, including WWW-Authenticate."""
    task = await create_task(cors_client, alice, title="mine")
    origin = {"Origin": FRONTEND}
    responses = {
        401: await cors_client.get(alice.tasks, headers=origin),
        403: await cors_client.get(alice.tasks, headers={**origin, **bob.headers}),
        404: await cors_client.get(bob.task(task["id"]), headers={**origin, **bob.headers}),
        415: await cors_client.post(
            alice.tasks,
            content=b"title=x",
            headers={
                **origin,
                **alice.headers,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ),
        422: await cors_client.post(
            alice.tasks, json={"title": ""}, headers={**origin, **alice.headers}
        ),
    }
    for status, response in responses.items():
        assert_problem(response, status)
        assert response.headers.get("access-control-allow-origin") == FRONTEND, status
        assert response.headers.get("access-control-allow-credentials") == "true", status
    assert_unauthorized(responses[401])
    exposed = _listed(responses[401].headers["access-control-expose-headers"])
    assert "www-authenticate" in exposed


def test_cors_origins_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threat: a CORS_ORIGINS value that is silently misparsed (one origin with a comma in it,
    or a trailing slash that no browser Origin ever matches)."""
    monkeypatch.setenv("CORS_ORIGINS", f" {FRONTEND}/ , https://app.example.test ")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == [FRONTEND, "https://app.example.test"]


@pytest.mark.parametrize("origins", ["*", f"{FRONTEND},*", "null", f"{FRONTEND}, null"])
def test_production_refuses_wildcard_and_null_origins(
    monkeypatch: pytest.MonkeyPatch, origins: str
) -> None:
    """Threat: CORS_ORIGINS='*' (or `null`, which any sandboxed page can send) in production
    lets any site script the API for a signed-in user. Settings refuse to load."""
    monkeypatch.setenv("TODO_ENV", "production")
    monkeypatch.setenv("BETTER_AUTH_SECRET", LONG_SECRET)
    monkeypatch.setenv("CORS_ORIGINS", origins)
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings(_env_file=None)


def test_production_accepts_an_explicit_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the test above: production with the front end's exact origin loads."""
    monkeypatch.setenv("TODO_ENV", "production")
    monkeypatch.setenv("BETTER_AUTH_SECRET", LONG_SECRET)
    monkeypatch.setenv("CORS_ORIGINS", "https://todo.example.test")
    assert Settings(_env_file=None).cors_origins == ["https://todo.example.test"]
