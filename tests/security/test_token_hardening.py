"""Validly signed tokens that must still be refused: audience, claim numbers, JOSE text encoding.

Each attack is signed with the server's real trust anchor (the shared secret, or the Ed25519
key of a JWKS served over HTTP on 127.0.0.1), so only the rule under test can refuse it. Every
refusal is a 401 problem+json, never a 5xx; a control token of the same shape is accepted.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.security.helpers import jwks_settings
from tests.support import (
    ISSUER,
    SECRET,
    JwksServer,
    SigningKey,
    app_client,
    assert_unauthorized,
    b64url,
    claims,
    make_settings,
)

VICTIM = "alice"
YEAR_3000 = 32503680000  # 3000-01-01T00:00:00Z


def _encode(obj: Any) -> str:
    """A JOSE segment: the JSON text of `obj` in UTF-8."""
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@asynccontextmanager
async def _server(
    config: str, database_url: str, jwks: JwksServer, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    if config == "hs":
        settings = make_settings(database_url, **overrides)
    else:
        settings = jwks_settings(database_url, jwks.url, **overrides)
    async with app_client(settings) as client:
        yield client


def _signer(config: str, ed_key: SigningKey) -> Callable[[str, str], str]:
    """Sign `header_segment.payload_segment` (already encoded) with the server's real key."""

    def sign(header: str, payload: str) -> str:
        signing_input = f"{header}.{payload}".encode()
        if config == "hs":
            signature = hmac.new(SECRET, signing_input, hashlib.sha256).digest()
        else:
            signature = ed_key.private.sign(signing_input)
        return f"{header}.{payload}.{b64url(signature)}"

    return sign


def _header(config: str, ed_key: SigningKey) -> dict[str, Any]:
    return {"alg": "HS256", "typ": "JWT"} if config == "hs" else {"alg": "EdDSA", "kid": ed_key.kid}


def _claims(config: str, **changes: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {} if config == "hs" else {"iss": ISSUER, "aud": ISSUER}
    return claims(VICTIM, **{**extra, **changes})


async def _get(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"/api/{VICTIM}/tasks", headers={"Authorization": f"Bearer {token}"})


# -- audience ----------------------------------------------------------------------------------


async def test_token_with_audience_is_refused_when_none_is_configured(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """Threat: a token minted for another service (its `aud`) is replayed here. With no audience
    configured we cannot know it is ours (RFC 7519 4.1.3): 401, and the detail names the setting.
    """
    sign = _signer("hs", ed_key)
    head = _encode(_header("hs", ed_key))
    async with _server("hs", database_url, jwks_server) as client:
        for aud in ("https://other-app.example.test", ["https://a.test", "https://b.test"]):
            response = await _get(client, sign(head, _encode(_claims("hs", aud=aud))))
            body = assert_unauthorized(response)
            assert "JWT_AUDIENCE" in body["detail"] and "BETTER_AUTH_URL" in body["detail"]
            assert "audience (aud)" in body["detail"]
        control = await _get(client, sign(head, _encode(_claims("hs"))))
        assert control.status_code == 200, control.text


async def test_jwks_without_better_auth_url_refuses_tokens_with_audience(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """Same rule with an explicit JWT_JWKS_URL and no BETTER_AUTH_URL (so no default audience)."""
    sign = _signer("jwks", ed_key)
    head = _encode(_header("jwks", ed_key))
    async with _server("jwks", database_url, jwks_server, better_auth_url=None) as client:
        body = assert_unauthorized(await _get(client, sign(head, _encode(_claims("jwks")))))
        assert "set JWT_AUDIENCE or BETTER_AUTH_URL" in body["detail"]
        no_aud = _claims("jwks", aud=None, iss=None)
        assert (await _get(client, sign(head, _encode(no_aud)))).status_code == 200


async def test_configured_issuer_and_audience_are_required(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """With JWT_ISSUER / JWT_AUDIENCE set, a token must carry and name both."""
    sign = _signer("hs", ed_key)
    head = _encode(_header("hs", ed_key))
    configured = {"jwt_issuer": "https://auth.me", "jwt_audience": "https://api.me"}
    good = {"iss": "https://auth.me", "aud": "https://api.me"}
    async with _server("hs", database_url, jwks_server, **configured) as client:
        assert (await _get(client, sign(head, _encode(_claims("hs", **good))))).status_code == 200
        for changes, word in (
            ({"iss": None}, "'iss'"),
            ({"iss": "https://evil.example"}, "issuer"),
            ({"aud": None}, "'aud'"),
            ({"aud": "https://other.example"}, "audience"),
        ):
            token = sign(head, _encode(_claims("hs", **{**good, **changes})))
            assert word in assert_unauthorized(await _get(client, token))["detail"]


async def test_real_better_auth_token_needs_only_better_auth_url(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """Better Auth's own shape keeps working: EdDSA, header without typ, iss = aud = base URL."""
    base = jwks_server.url.removesuffix("/api/auth/jwks")
    settings = make_settings(database_url, better_auth_secret=None, better_auth_url=base)
    sign = _signer("jwks", ed_key)
    profile: dict[str, Any] = {
        "id": VICTIM,
        "email": "a@example.test",
        "name": "A",
        "emailVerified": True,
    }
    payload = claims(VICTIM, iss=base, aud=base, **profile)
    token = sign(_encode({"alg": "EdDSA", "kid": ed_key.kid}), _encode(payload))
    async with app_client(settings) as client:
        response = await _get(client, token)
        assert response.status_code == 200, response.text


# -- numbers in claims -------------------------------------------------------------------------

NOW = int(time.time())
BAD_NUMBERS: list[tuple[str, Any]] = [
    ("exp", 10**400),  # 401 digits
    ("exp", -(10**400)),
    ("exp", 1e300),
    ("exp", YEAR_3000),
    ("exp", float(YEAR_3000) + 0.5),
    ("exp", str(NOW + 900)),
    ("exp", True),
    ("nbf", 10**400),
    ("nbf", -(10**400)),
    ("nbf", "0"),
    ("nbf", False),
    ("iat", 10**400),
    ("iat", -(10**400)),
    ("iat", str(NOW)),
    ("iat", True),
]


@pytest.mark.parametrize("config", ["hs", "jwks"])
async def test_claim_numbers_out_of_range_are_401(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey, config: str
) -> None:
    """Threat: a huge or non-numeric `exp`/`nbf`/`iat` in a genuine token crashes the server
    (500) or is read as 'never expires'. Each must be a finite number before year 3000."""
    sign = _signer(config, ed_key)
    head = _encode(_header(config, ed_key))
    async with _server(config, database_url, jwks_server) as client:
        for name, value in BAD_NUMBERS:
            token = sign(head, _encode(_claims(config, **{name: value})))
            for _ in range(2):  # the second use goes through the verified-token cache
                response = await _get(client, token)
                assert response.status_code == 401, (name, value, response.text)
                assert_unauthorized(response)
        # Control: the same claims with sane numbers, a float exp included, are accepted.
        for changes in ({}, {"exp": NOW + 900.5, "iat": NOW + 0.25, "nbf": NOW - 1}):
            token = sign(head, _encode(_claims(config, **changes)))
            assert (await _get(client, token)).status_code == 200


# -- UTF-8 only --------------------------------------------------------------------------------

# How the JSON text of a JOSE header or claims set can be encoded besides plain UTF-8.
NOT_UTF8: dict[str, Callable[[str], bytes]] = {
    "utf-16": lambda text: text.encode("utf-16"),  # with a BOM
    "utf-16-le": lambda text: text.encode("utf-16-le"),
    "utf-16-be": lambda text: text.encode("utf-16-be"),
    "utf-32": lambda text: text.encode("utf-32"),
    "utf-32-le": lambda text: text.encode("utf-32-le"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode(),
    "utf-8-surrogate": lambda text: (
        text.replace('"A"', '"\\u0041"').encode().replace(b"\\u0041", b"\xed\xa0\x80")
    ),  # a lone surrogate: WTF-8, not UTF-8
    "latin-1": lambda text: text.replace('"A"', '"\u00e9"').encode("latin-1"),
}


@pytest.mark.parametrize("config", ["hs", "jwks"])
@pytest.mark.parametrize("segment", ["header", "payload"])
@pytest.mark.parametrize("encoding", sorted(NOT_UTF8))
async def test_jose_segments_must_be_utf8(
    database_url: str,
    jwks_server: JwksServer,
    ed_key: SigningKey,
    config: str,
    segment: str,
    encoding: str,
) -> None:
    """Threat: a parser that guesses the encoding reads a different claim set than a strict one
    (RFC 7515 5.2, RFC 7519 7.2 require UTF-8). Correctly signed, such a token is still 401."""
    sign = _signer(config, ed_key)
    header_text = json.dumps(_header(config, ed_key), separators=(",", ":"))
    payload_text = json.dumps(_claims(config, name="A"), separators=(",", ":"))
    header, payload = b64url(header_text.encode()), b64url(payload_text.encode())
    async with _server(config, database_url, jwks_server) as client:
        assert (await _get(client, sign(header, payload))).status_code == 200
        if segment == "header":
            header = b64url(NOT_UTF8[encoding](header_text.replace('"JWT"', '"A"')))
            if config == "jwks":
                header = b64url(NOT_UTF8[encoding](header_text[:-1] + ',"x5t":"A"}'))
        else:
            payload = b64url(NOT_UTF8[encoding](payload_text))
        response = await _get(client, sign(header, payload))
        assert response.status_code == 401, response.text
        assert_unauthorized(response)
