"""Authorization header formats through the real app (RFC 6750 section 2.1, RFC 9110 11.6.2).

Accepted forms must work (or real clients break); every other form is 401 with a Bearer
challenge and nothing is written. Runs on SQLite and PostgreSQL (the `client` fixture).
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.support import User, assert_unauthorized, snapshot, token_for

ALICE_TOKEN = token_for("alice")
BOB_TOKEN = token_for("bob")
HeaderList = list[tuple[str, str | bytes]]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"Bearer {ALICE_TOKEN}", id="canonical"),
        pytest.param(f"bearer {ALICE_TOKEN}", id="lowercase-scheme"),
        pytest.param(f"BEARER {ALICE_TOKEN}", id="uppercase-scheme"),
        pytest.param(f"Bearer     {ALICE_TOKEN}", id="several-spaces"),
        pytest.param(f"  Bearer {ALICE_TOKEN}  ", id="surrounding-spaces"),
        pytest.param(f"\tBearer {ALICE_TOKEN}\t", id="surrounding-tabs"),
    ],
)
async def test_valid_forms_are_accepted(client: httpx.AsyncClient, alice: User, value: str) -> None:
    """Threat (availability): a parser stricter than the RFCs locks out real clients.

    The scheme is case-insensitive, 1*SP may follow it, and surrounding OWS is not part of
    the field value.
    """
    headers = {"Authorization": value}
    created = await client.post(alice.tasks, json={"title": "ok"}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == "alice"
    listed = await client.get(alice.tasks, headers=headers)
    assert listed.status_code == 200 and listed.json() == [created.json()]


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


REJECTED: dict[str, tuple[str, HeaderList]] = {
    "missing": ("no credentials at all", []),
    "empty": ("an empty header treated as 'no check needed'", [("Authorization", "")]),
    "scheme-only": ("`Bearer` with no token", [("Authorization", "Bearer")]),
    "scheme-and-spaces": ("`Bearer` followed by blanks only", [("Authorization", "Bearer   ")]),
    "other-scheme": ("another scheme carrying a JWT", [("Authorization", f"Token {ALICE_TOKEN}")]),
    "bare-token": ("a JWT without any scheme", [("Authorization", ALICE_TOKEN)]),
    "no-space": ("scheme glued to the token", [("Authorization", f"Bearer{ALICE_TOKEN}")]),
    "tab-separator": (
        "HTAB where RFC 9110 requires SP",
        [("Authorization", f"Bearer\t{ALICE_TOKEN}")],
    ),
    "basic-password": ("HTTP Basic credentials", [("Authorization", _basic("alice:password"))]),
    "basic-with-jwt": ("a JWT smuggled in Basic", [("Authorization", f"Basic {ALICE_TOKEN}")]),
    "quoted-token": ("a quoted token", [("Authorization", f'Bearer "{ALICE_TOKEN}"')]),
    "space-inside-token": (
        "a token split by a space (two values, which one is checked?)",
        [("Authorization", f"Bearer {ALICE_TOKEN[:30]} {ALICE_TOKEN[30:]}")],
    ),
    "trailing-word": ("extra text after the token", [("Authorization", f"Bearer {ALICE_TOKEN} x")]),
    "comma-two-tokens": (
        "two credentials in one header (comma-joined)",
        [("Authorization", f"Bearer {BOB_TOKEN},{ALICE_TOKEN}")],
    ),
    "comma-other-scheme": (
        "a second challenge-like list element after the token",
        [("Authorization", f"Bearer {ALICE_TOKEN}, Basic YWxpY2U6cHc=")],
    ),
    "two-headers-same": (
        "duplicate Authorization headers (proxies may join or pick either)",
        [("Authorization", f"Bearer {ALICE_TOKEN}"), ("Authorization", f"Bearer {ALICE_TOKEN}")],
    ),
    "two-headers-different": (
        "duplicate Authorization headers naming two users",
        [("Authorization", f"Bearer {BOB_TOKEN}"), ("Authorization", f"Bearer {ALICE_TOKEN}")],
    ),
    "two-headers-garbage-first": (
        "a garbage first header hoping the second is the one checked",
        [("Authorization", "Bearer x.y.z"), ("Authorization", f"Bearer {ALICE_TOKEN}")],
    ),
    "non-ascii": ("non-ASCII bytes in the token", [("Authorization", b"Bearer \xff\xfe.abc.def")]),
    "proxy-authorization": (
        "credentials in Proxy-Authorization instead of Authorization",
        [("Proxy-Authorization", f"Bearer {ALICE_TOKEN}")],
    ),
    "identity-headers": (
        "identity headers a gateway might set (trusted without a token)",
        [("X-User-Id", "alice"), ("X-Forwarded-User", "alice"), ("X-Auth-Request-User", "alice")],
    ),
    "cookie-token": (
        "a session cookie in place of the bearer token (CSRF-able ambient credential)",
        [("Cookie", f"better-auth.session_token={ALICE_TOKEN}; token={ALICE_TOKEN}")],
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
async def test_other_forms_are_401(client: httpx.AsyncClient, alice: User, case: str) -> None:
    """Threat: see REJECTED[case][0]. A lenient parser lets an ambiguous or foreign credential
    through; each form gets 401 + Bearer challenge, and no task is created."""
    headers = [(name.encode(), _raw(value)) for name, value in REJECTED[case][1]]
    write = await client.post(alice.tasks, json={"title": "planted"}, headers=headers)
    read = await client.get(alice.tasks, headers=headers)
    for response in (write, read):
        assert_unauthorized(response)
        assert ALICE_TOKEN not in response.text
    assert await snapshot(client, alice) == []


@pytest.mark.parametrize("name", ["token", "access_token", "jwt"])
async def test_token_in_query_string_is_ignored(
    client: httpx.AsyncClient, alice: User, name: str
) -> None:
    """Threat: tokens in URLs end up in logs, history and Referer; they never authenticate."""
    response = await client.get(alice.tasks, params={name: ALICE_TOKEN})
    assert_unauthorized(response)
