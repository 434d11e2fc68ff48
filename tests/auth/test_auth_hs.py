"""TokenVerifier with the shared secret (HS*): algorithms, claims, size and shape."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.auth import MAX_TOKEN_BYTES, TokenVerifier, mint_token
from backend.errors import Unauthorized
from tests.support import LONG_SECRET, b64json, b64url, claims, hs_forge, verifier_settings


async def rejects(verifier: TokenVerifier, token: str, detail: str | None = None) -> str:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    if detail is not None:
        assert detail in info.value.detail
    return info.value.detail


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hs_algorithms_accepted(hs_verifier: TokenVerifier, alg: str) -> None:
    """Baseline: a token signed with the shared secret verifies with every HS* size."""
    token = jwt.encode(claims("user_1"), LONG_SECRET, algorithm=alg)
    assert await hs_verifier.verify(token) == "user_1"


async def test_mint_token_round_trip(hs_verifier: TokenVerifier) -> None:
    """`todo-api token` output must be accepted by the server with the same secret."""
    token = mint_token(LONG_SECRET, "alice-01", ttl_seconds=60)
    assert await hs_verifier.verify(token) == "alice-01"
    payload = jwt.decode(token, LONG_SECRET, algorithms=["HS256"])
    assert payload["exp"] - payload["iat"] == 60


async def test_mint_token_with_issuer_and_audience() -> None:
    """Minted iss/aud must satisfy a verifier that checks them, and fail one expecting others."""
    good = verifier_settings(
        better_auth_secret=LONG_SECRET.decode(), jwt_issuer="me", jwt_audience="api"
    )
    other = verifier_settings(
        better_auth_secret=LONG_SECRET.decode(), jwt_issuer="me", jwt_audience="x"
    )
    token = mint_token(LONG_SECRET, "u1", issuer="me", audience="api", algorithm="HS512")
    ok, bad = TokenVerifier(good, LONG_SECRET), TokenVerifier(other, LONG_SECRET)
    assert await ok.verify(token) == "u1"
    await rejects(bad, token, "audience")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_id": ".hidden"}, "user id"),
        ({"user_id": "a/b"}, "user id"),
        ({"ttl_seconds": 0}, "ttl"),
        ({"algorithm": "RS256"}, "algorithm"),
    ],
)
def test_mint_token_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    """The CLI must not mint tokens the server would reject (or mint with a public-key alg)."""
    args: dict[str, Any] = {"user_id": "u1", **kwargs}
    with pytest.raises(ValueError, match=message):
        mint_token(LONG_SECRET, **args)


def test_mint_token_refuses_short_secret_for_algorithm() -> None:
    """RFC 7518 3.2: an HS512 key shorter than 64 bytes is not allowed."""
    with pytest.raises(ValueError, match="64 bytes"):
        mint_token(b"x" * 40, "u1", algorithm="HS512")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_rejected(hs_verifier: TokenVerifier, alg: str) -> None:
    """Unsigned tokens (alg none, any case) must never authenticate anyone."""
    token = f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(claims())}.{b64url(b'x')}"
    await rejects(hs_verifier, token, "token algorithm 'none' is not allowed")


async def test_alg_none_with_empty_signature_rejected(hs_verifier: TokenVerifier) -> None:
    """The canonical alg-none form has an empty signature segment."""
    token = f"{b64json({'alg': 'none'})}.{b64json(claims())}."
    await rejects(hs_verifier, token)


async def test_key_confusion_rsa_public_pem_as_hmac_secret(hs_verifier: TokenVerifier) -> None:
    """Classic RS->HS confusion: attacker HMAC-signs with the (public) RSA PEM."""
    await rejects(hs_verifier, hs_forge(claims(), _public_pem()), "token signature is invalid")


async def test_key_confusion_ed25519_public_bytes_as_hmac_secret(
    hs_verifier: TokenVerifier,
) -> None:
    """EdDSA->HS confusion with the raw 32-byte public key (what a JWKS `x` decodes to)."""
    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    await rejects(hs_verifier, hs_forge(claims(), raw), "token signature is invalid")


async def test_wrong_secret_rejected(hs_verifier: TokenVerifier) -> None:
    """A token signed with another secret is forged."""
    await rejects(hs_verifier, hs_forge(claims(), b"z" * 64), "token signature is invalid")


async def test_asymmetric_alg_without_jwks_rejected(hs_verifier: TokenVerifier) -> None:
    """With only a secret configured, RS256/EdDSA tokens have no key and must fail."""
    token = f"{b64json({'alg': 'RS256', 'kid': 'k'})}.{b64json(claims())}.{b64url(b'sig')}"
    await rejects(hs_verifier, token, "token algorithm 'RS256' is not allowed")


async def test_unknown_alg_not_echoed(hs_verifier: TokenVerifier) -> None:
    """An attacker-chosen `alg` must not be reflected into the WWW-Authenticate header."""
    header = b64json({"alg": "X\r\nSet-Cookie: a=b"})
    token = f"{header}.{b64json(claims())}.{b64url(b's')}"
    detail = await rejects(hs_verifier, token, "not supported")
    assert "Set-Cookie" not in detail


async def test_short_secret_restricts_hs_algorithms() -> None:
    """A 32-byte secret may sign HS256 only; HS384/HS512 need 48/64 bytes (RFC 7518 3.2)."""
    secret = b"s" * 32
    verifier = TokenVerifier(verifier_settings(better_auth_secret=secret.decode()), secret)
    assert verifier.hs_algorithms == ("HS256",)
    assert await verifier.verify(hs_forge(claims(), secret, "HS256")) == "user_1"
    await rejects(verifier, hs_forge(claims(), secret, "HS512"), "'HS512' is not allowed")


def _public_pem() -> bytes:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize("secret", [b"short", b"x" * 31, _public_pem()])
def test_unusable_secret_refused_at_start(secret: bytes) -> None:
    """A too-short secret, or a public key configured as secret, fails at start-up, loudly."""
    with pytest.raises(ValueError, match="HS secret"):
        TokenVerifier(verifier_settings(), secret)


async def test_expired_rejected(hs_verifier: TokenVerifier) -> None:
    """Stolen-but-expired tokens must not work."""
    now = int(time.time())
    token = jwt.encode({"sub": "u1", "iat": now - 100, "exp": now - 60}, LONG_SECRET)
    await rejects(hs_verifier, token, "token has expired")


async def test_nbf_in_future_rejected(hs_verifier: TokenVerifier) -> None:
    """A token not valid yet (nbf beyond leeway) must not work early."""
    token = jwt.encode(claims(nbf=int(time.time()) + 120), LONG_SECRET)
    await rejects(hs_verifier, token, "not valid yet")


async def test_iat_in_future_rejected(hs_verifier: TokenVerifier) -> None:
    """A token issued in the future (clock games) is refused."""
    token = jwt.encode(claims(iat=int(time.time()) + 3600, ttl=7200), LONG_SECRET)
    await rejects(hs_verifier, token, "not valid yet")


async def test_leeway_honoured() -> None:
    """Small clock skew between Better Auth and us (within leeway) must not log users out."""
    verifier = TokenVerifier(verifier_settings(jwt_leeway_seconds=30), LONG_SECRET)
    now = int(time.time())
    just_expired = jwt.encode({"sub": "u1", "iat": now - 100, "exp": now - 10}, LONG_SECRET)
    nearly_valid = jwt.encode({"sub": "u1", "nbf": now + 10, "exp": now + 100}, LONG_SECRET)
    long_expired = jwt.encode({"sub": "u1", "iat": now - 100, "exp": now - 60}, LONG_SECRET)
    assert await verifier.verify(just_expired) == "u1"
    assert await verifier.verify(nearly_valid) == "u1"
    await rejects(verifier, long_expired, "expired")


async def test_missing_exp_rejected(hs_verifier: TokenVerifier) -> None:
    """A token without exp would be valid forever once leaked."""
    await rejects(hs_verifier, jwt.encode({"sub": "u1"}, LONG_SECRET), "missing the 'exp' claim")


async def test_missing_sub_rejected(hs_verifier: TokenVerifier) -> None:
    """Without sub there is no user to scope data to."""
    token = jwt.encode({"exp": int(time.time()) + 60}, LONG_SECRET)
    await rejects(hs_verifier, token, "missing the 'sub' claim")


@pytest.mark.parametrize("exp", ["9999999999", True, [1], {"a": 1}])
async def test_exp_must_be_a_number(hs_verifier: TokenVerifier, exp: Any) -> None:
    """exp is a JSON number (RFC 7519); strings or booleans are not silently coerced."""
    token = jwt.encode({"sub": "u1", "exp": exp}, LONG_SECRET)
    await rejects(hs_verifier, token)


@pytest.mark.parametrize(
    "sub",
    [
        123,
        ["u1"],
        {"id": "u1"},
        "",
        "x" * 129,
        "a/b",
        "../etc",
        ".hidden",
        "a b",
        "a%2Fb",
        "ü",
        "a\x00b",
        "a\nb",
    ],
)
async def test_invalid_subject_rejected(hs_verifier: TokenVerifier, sub: Any) -> None:
    """sub must be a URL-safe user id (1..128 chars) so it equals the path's {user_id} 1:1."""
    await rejects(hs_verifier, jwt.encode(claims(sub), LONG_SECRET), "token subject (sub)")


@pytest.mark.parametrize("sub", ["a", "x" * 128, "user_2f9a", "A-z.0~_", "~tilde"])
async def test_valid_subjects_accepted(hs_verifier: TokenVerifier, sub: str) -> None:
    """Every id the contract's user_id pattern allows is accepted (no false 401s)."""
    assert await hs_verifier.verify(jwt.encode(claims(sub), LONG_SECRET)) == sub


async def test_issuer_and_audience_checked_when_configured() -> None:
    """Tokens from another issuer, or meant for another service, must not be accepted."""
    settings = verifier_settings(jwt_issuer="https://auth.me", jwt_audience="https://api.me")
    verifier = TokenVerifier(settings, LONG_SECRET)
    good = claims(iss="https://auth.me", aud="https://api.me")
    assert await verifier.verify(jwt.encode(good, LONG_SECRET)) == "user_1"
    listed = claims(iss="https://auth.me", aud=["https://other", "https://api.me"])
    assert await verifier.verify(jwt.encode(listed, LONG_SECRET)) == "user_1"
    await rejects(verifier, jwt.encode({**good, "iss": "https://evil"}, LONG_SECRET), "issuer")
    await rejects(verifier, jwt.encode({**good, "aud": "https://other"}, LONG_SECRET), "audience")
    no_iss = {k: v for k, v in good.items() if k != "iss"}
    await rejects(verifier, jwt.encode(no_iss, LONG_SECRET), "missing the 'iss' claim")
    no_aud = {k: v for k, v in good.items() if k != "aud"}
    await rejects(verifier, jwt.encode(no_aud, LONG_SECRET), "missing the 'aud' claim")


async def test_oversized_token_rejected(hs_verifier: TokenVerifier) -> None:
    """An 8 KiB+ token is refused before parsing (cheap DoS protection)."""
    padding = "p" * MAX_TOKEN_BYTES
    token = jwt.encode(claims(pad=padding), LONG_SECRET)
    await rejects(hs_verifier, token, f"larger than {MAX_TOKEN_BYTES} bytes")
    await rejects(hs_verifier, "a" * (MAX_TOKEN_BYTES + 1), "larger than")


async def test_token_of_exactly_max_size_is_parsed(hs_verifier: TokenVerifier) -> None:
    """The limit is inclusive: 8192 bytes is still a token we look at."""
    token = jwt.encode(claims(pad="p" * 6000), LONG_SECRET)
    assert len(token) <= MAX_TOKEN_BYTES
    assert await hs_verifier.verify(token) == "user_1"


def _good() -> list[str]:
    return jwt.encode(claims(), LONG_SECRET).split(".")


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda h, p, s: f"!!!!.{p}.{s}", "token header is not valid base64url"),
        (lambda h, p, s: f"{b64url(b'not json')}.{p}.{s}", "token header is not valid JSON"),
        (lambda h, p, s: f"{b64url(b'[1,2]')}.{p}.{s}", "token header is not a JSON object"),
        (lambda h, p, s: f"{b64url(b'{}')}.{p}.{s}", "no algorithm"),
        (lambda h, p, s: f"{b64json({'alg': 7})}.{p}.{s}", "no algorithm"),
        (lambda h, p, s: f"{h}.$$$$.{s}", "token payload is not valid base64url"),
        (lambda h, p, s: f"{h}.{b64url(b'garbage')}.{s}", "token signature is invalid"),
        (lambda h, p, s: f"{h}.{p}.%%%", "token signature is not valid base64url"),
        (lambda h, p, s: f"{h}.{p}.{s[:-3]}", "token signature is invalid"),
        (lambda h, p, s: f"{h}.{p}.{s[:-1]}B", "token is malformed"),  # non-canonical base64
        (lambda h, p, s: f"{h}.{p}.", "token signature is not valid base64url"),
        (lambda h, p, s: f"{h}.{p}.{s}=", "token signature is not valid base64url"),
        (lambda h, p, s: f"{h}.{p}.A", "token signature is not valid base64url"),
        (lambda h, p, s: f"{h} .{p}.{s}", "token header is not valid base64url"),
    ],
)
async def test_garbage_segments_rejected(
    hs_verifier: TokenVerifier, make: Any, detail: str
) -> None:
    """Malformed input in any segment yields a 401 with a precise detail, never a 500."""
    h, p, s = _good()
    await rejects(hs_verifier, make(h, p, s), detail)


async def test_garbage_payload_with_valid_signature_rejected(hs_verifier: TokenVerifier) -> None:
    """Even correctly signed, a payload that is not a JSON object is refused."""
    header = b64json({"alg": "HS256"})
    for payload in (b64url(b"not json"), b64url(b"[1]"), b64url(b'"str"')):
        signing_input = f"{header}.{payload}"
        sig = hmac.new(LONG_SECRET, signing_input.encode(), hashlib.sha256).digest()
        await rejects(hs_verifier, f"{signing_input}.{b64url(sig)}", "token is malformed")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "a.b.c.d.e", "...", "a..c"])
async def test_wrong_number_of_segments_rejected(hs_verifier: TokenVerifier, token: str) -> None:
    """Only compact JWS (three segments) is accepted; JWE (five) and fragments are not."""
    await rejects(hs_verifier, token)


async def test_non_ascii_token_rejected(hs_verifier: TokenVerifier) -> None:
    """Non-ASCII cannot be base64url; reject before decoding."""
    await rejects(hs_verifier, "é" * 10, "non-ASCII")


async def test_detail_never_contains_the_token(hs_verifier: TokenVerifier) -> None:
    """Error details end up in logs and responses: they must not carry credentials."""
    token = jwt.encode(claims(), b"w" * 64)
    detail = await rejects(hs_verifier, token)
    assert token not in detail
    assert LONG_SECRET.decode() not in detail
    for part in token.split("."):
        assert part not in detail


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(st.text(alphabet="ABCxyz019-_=+/.", max_size=40), min_size=1, max_size=6).map(
            ".".join
        ),
    )
)
def test_arbitrary_input_is_always_a_clean_401(token: str) -> None:
    """Fuzz: no input makes verification crash (500) or succeed without the secret."""
    verifier = TokenVerifier(verifier_settings(), LONG_SECRET)
    with pytest.raises(Unauthorized):
        asyncio.run(verifier.verify(token))


@pytest.mark.parametrize(
    "extra_header",
    [{"crit": ["exp"], "exp": 1}, {"crit": []}, {"b64": False, "crit": ["b64"]}, {"kid": 5}],
)
async def test_unsupported_header_parameters_rejected(
    hs_verifier: TokenVerifier, extra_header: dict[str, Any]
) -> None:
    """Critical extensions we do not implement (RFC 7515 4.1.11) must make the token fail."""
    await rejects(hs_verifier, hs_forge(claims(), LONG_SECRET, **extra_header))
