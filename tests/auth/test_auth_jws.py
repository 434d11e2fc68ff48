"""backend/auth/jws.py: our compact-JWS checks against PyJWT's, libsodium Ed25519, strict base64url.

The verifier used to call `jwt.PyJWT.decode`; it now runs the same checks itself (jws.py says
why). PyJWT stays the reference here: every generated token must get exactly the answer the
old code path (PyJWT.decode, then `_subject`) gave, detail for detail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import OKPAlgorithm
from nacl.signing import VerifyKey

from backend.auth import TokenVerifier, parse_jwk, parse_jwk_set
from backend.auth.jws import (
    ALGORITHMS,
    SodiumEdDSAAlgorithm,
    b64url_decode,
    prepare_hs_secret,
    validate_claims,
    verify_jws,
)
from backend.auth.verifier import _describe, _read_header, _subject
from backend.errors import Unauthorized

from .helpers import (
    ISSUER,
    SECRET,
    JwksServer,
    SigningKey,
    b64json,
    b64url,
    better_auth_claims,
    cache_for,
    claims,
    ed25519_key,
    make_settings,
)

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
LEEWAY = 10


async def rejects(verifier: TokenVerifier, token: str, detail: str) -> None:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    assert info.value.detail == detail


def with_signature(token: str, signature: str) -> str:
    return token.rsplit(".", 1)[0] + "." + signature


def non_canonical(segment: str) -> str:
    """The same bytes under a lenient decoder: the last character with a trailing bit set."""
    assert len(segment) % 4 in (2, 3)
    return segment[:-1] + ALPHABET[ALPHABET.index(segment[-1]) + 1]


# -- strict base64url --------------------------------------------------------------------------


def _lenient_round_trip(segment: str) -> bool:
    """What PyJWT's check amounts to: decodes, and re-encodes to the very same text."""
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return False
    return base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() == segment


@pytest.mark.parametrize("prefix", ["", "eyJh", "QUJD"])
def test_b64url_decode_agrees_with_round_trip_on_every_tail(prefix: str) -> None:
    """Every 2- and 3-character tail: accepted exactly when canonical, with the same bytes."""
    tails = [a + b for a in "AQgwBRhx" for b in ALPHABET]
    tails += [a + b + c for a in "Aw_" for b in "Ab9" for c in ALPHABET]
    tails += [a + b + c + d for a in "eA" for b in "y_" for c in "J-" for d in ALPHABET]
    for tail in tails:
        segment = prefix + tail
        if _lenient_round_trip(segment):
            assert b64url_decode(segment) == base64.urlsafe_b64decode(
                segment + "=" * (-len(segment) % 4)
            ), segment
        else:
            with pytest.raises(jwt.DecodeError):
                b64url_decode(segment)


@pytest.mark.parametrize(
    "segment",
    ["", "A", "QUJDR", "QQ==", "QUI=", "QU+D", "QU/D", "QU D", "QU\nD", "QU.D", "QUJDé", "QQ=A"],
)
def test_b64url_decode_refuses_padding_and_foreign_characters(segment: str) -> None:
    with pytest.raises(jwt.DecodeError):
        b64url_decode(segment)


async def test_non_canonical_signature_bits_rejected_eddsa(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    """A genuine EdDSA token whose signature text ends in a non-zero unused bit is refused."""
    token = ed_key.sign(better_auth_claims())
    forged = with_signature(token, non_canonical(token.rsplit(".", 1)[1]))
    await rejects(jwks_verifier, forged, "token is malformed")
    assert await jwks_verifier.verify(token) == "user_1"


async def test_non_canonical_segments_rejected_hs(hs_verifier: TokenVerifier) -> None:
    """Same for HS256 (43-character signature), and for the header and payload segments."""
    token = jwt.encode(claims("user_1"), SECRET, algorithm="HS256")
    header, payload, signature = token.split(".")
    await rejects(
        hs_verifier, with_signature(token, non_canonical(signature)), "token is malformed"
    )
    if len(payload) % 4 in (2, 3):
        forged = f"{header}.{non_canonical(payload)}.{signature}"
        await rejects(hs_verifier, forged, "token is malformed")
    assert await hs_verifier.verify(token) == "user_1"


# -- libsodium Ed25519 ---------------------------------------------------------------------------


async def test_eddsa_tampered_payload_rejected(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    header, _, signature = ed_key.sign(better_auth_claims("user_1")).split(".")
    forged = f"{header}.{b64json(better_auth_claims('user_2'))}.{signature}"
    await rejects(jwks_verifier, forged, "token signature is invalid")


@pytest.mark.parametrize("size", [0, 1, 63, 65, 128])
async def test_eddsa_signature_of_wrong_length_rejected(
    jwks_verifier: TokenVerifier, ed_key: SigningKey, size: int
) -> None:
    token = ed_key.sign(better_auth_claims())
    real = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    signature = (real * 3)[:size]
    detail = "token signature is invalid" if size else "token signature is not valid base64url"
    await rejects(jwks_verifier, with_signature(token, b64url(signature)), detail)


async def test_eddsa_signature_by_other_key_and_flipped_bits_rejected(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    token = ed_key.sign(better_auth_claims())
    other = ed25519_key(ed_key.kid).sign(better_auth_claims())
    await rejects(jwks_verifier, other, "token signature is invalid")
    real = bytearray(base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "=="))
    for index in (0, 31, 32, 63):  # R and S halves
        flipped = bytearray(real)
        flipped[index] ^= 0x01
        forged = with_signature(token, b64url(bytes(flipped)))
        await rejects(jwks_verifier, forged, "token signature is invalid")


# Small-order points (the identity, order 2, 4 and 8, and non-canonical encodings of them) and a
# y coordinate >= p: OpenSSL loads all of these as Ed25519 public keys; libsodium refuses them.
LOW_ORDER_POINTS = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_ed25519_key_refused_at_jwks_load(point: str, ed_key: SigningKey) -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(bytes.fromhex(point)), "kid": "bad"}
    OKPAlgorithm.from_jwk(dict(jwk))  # OpenSSL takes it ...
    assert parse_jwk(jwk) is None  # ... we do not
    assert set(parse_jwk_set({"keys": [jwk, ed_key.jwk]})) == {ed_key.kid}


def test_ed25519_key_of_wrong_size_refused() -> None:
    for size in (31, 33):
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x01" * size), "kid": "bad"}
        assert parse_jwk(jwk) is None


def test_ed25519_jwk_becomes_a_libsodium_key(ed_key: SigningKey) -> None:
    entry = parse_jwk(ed_key.jwk)
    assert entry is not None and isinstance(entry.key, VerifyKey)
    assert entry.algorithms == ("EdDSA",)
    assert SodiumEdDSAAlgorithm.to_jwk(entry.key, as_dict=True) == {
        k: v for k, v in ed_key.jwk.items() if k in ("kty", "crv", "x")
    }


async def test_ed448_still_verifies(jwks_server: JwksServer, clock: Any) -> None:
    """Ed448 keys stay cryptography objects (libsodium has no Ed448) and keep verifying."""
    private = ed448.Ed448PrivateKey.generate()
    jwk = {**OKPAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": "ed448"}
    jwks_server.keys = [jwk]
    verifier = _jwks_verifier(jwks_server, clock)
    token = jwt.encode(better_auth_claims(), private, algorithm="EdDSA", headers={"kid": "ed448"})
    assert await verifier.verify(token) == "user_1"
    header, _, signature = token.split(".")
    forged = f"{header}.{b64json(better_auth_claims('user_2'))}.{signature}"
    await rejects(verifier, forged, "token signature is invalid")
    await verifier.aclose()


def _jwks_verifier(server: JwksServer, clock: Any) -> TokenVerifier:
    settings = make_settings(better_auth_url=ISSUER, jwt_jwks_url=server.url)
    return TokenVerifier(settings, None, jwks=cache_for(settings, clock))


def test_eddsa_algorithm_takes_only_prepared_public_keys(ed_key: SigningKey) -> None:
    """No PEM text, no private keys, no raw bytes: keys come from the JWKS cache only."""
    algorithm = ALGORITHMS["EdDSA"]
    public = ed_key.private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key in (pem, pem.decode(), public.public_bytes_raw(), ed_key.private, public, SECRET):
        with pytest.raises(jwt.InvalidKeyError):
            algorithm.prepare_key(key)
    with pytest.raises(NotImplementedError):
        algorithm.sign(b"msg", VerifyKey(public.public_bytes_raw()))
    private_jwk = OKPAlgorithm.to_jwk(ed_key.private, as_dict=True)
    with pytest.raises(jwt.InvalidKeyError):
        SodiumEdDSAAlgorithm.from_jwk(private_jwk)


def test_prepared_hs_secret_skips_only_its_own_checks() -> None:
    """The per-token key check is skipped for the checked secret alone, not for other bytes."""
    algorithm = ALGORITHMS["HS256"]
    assert algorithm.prepare_key(prepare_hs_secret(SECRET)) == SECRET
    body = b"MCowBQYDK2VwAyEA" + b"A" * 43 + b"="
    pem = b"-----BEGIN PUBLIC KEY-----\n" + body + b"\n-----END PUBLIC KEY-----"
    for key in (pem, b'{"kty":"oct","k":"' + b"A" * 43 + b'"}'):
        with pytest.raises(jwt.InvalidKeyError):
            algorithm.prepare_key(key)
        with pytest.raises(jwt.InvalidKeyError):
            prepare_hs_secret(key)


# -- the same answers as PyJWT ----------------------------------------------------------------

NOW = int(time.time())
# Times at least 5 s away from every boundary (leeway 10 s), so the two clocks never disagree.
TIMES = [NOW - 10**6, NOW - 30, NOW - 5, NOW, NOW + 5, NOW + 30, NOW + 10**6]
ODD_VALUES = [
    None, True, False, 0, -1, 1.5, 10**30, "", "1", str(NOW + 100), "abc", [], [NOW], {}, {"a": 1},
]  # fmt: skip
NUMBERS = st.sampled_from(TIMES) | st.sampled_from([float(t) + 0.5 for t in TIMES])
STRINGS = st.sampled_from([ISSUER, "https://other.example", "user_1", ".hidden", "", "a b"])
VALUES = NUMBERS | STRINGS | st.sampled_from(ODD_VALUES)
AUDIENCES = VALUES | st.lists(STRINGS | st.sampled_from([1, None]), max_size=3)
ABSENT: Any = object()
CLAIM_VALUES = {
    "exp": NUMBERS | VALUES,
    "nbf": NUMBERS | VALUES,
    "iat": NUMBERS | VALUES,
    "sub": STRINGS | st.sampled_from(ODD_VALUES),
    "iss": STRINGS | st.sampled_from(ODD_VALUES),
    "aud": AUDIENCES,
    "jti": STRINGS | st.sampled_from(ODD_VALUES),
}
VALID = {"sub": "user_1", "iat": NOW - 5, "exp": NOW + 30, "iss": ISSUER, "aud": ISSUER}


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    """A valid claim set with a few claims changed or dropped, so every check gets reached."""
    payload = dict(VALID)
    for name in draw(st.lists(st.sampled_from(sorted(CLAIM_VALUES)), max_size=3, unique=True)):
        value = draw(st.just(ABSENT) | CLAIM_VALUES[name])
        if value is ABSENT:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


ODD_HEADER = st.fixed_dictionaries(
    {},
    optional={
        "kid": st.sampled_from(["k1", "", 7, None, ["k"]]),
        "typ": st.sampled_from(["JWT", "at+jwt", 1]),
        "crit": st.sampled_from([[], ["b64"], ["ext"], ["b64", "ext"], "b64", [1], None]),
        "b64": st.sampled_from([True, False, 0, "false", None]),
        "ext": st.sampled_from([True, "x"]),  # an extension PyJWT does not understand
    },
)
HEADERS = st.sampled_from([{}, {"typ": "JWT"}, {"kid": "k1"}]) | ODD_HEADER
# Mostly genuine signatures, so that most tokens get as far as the claim checks.
SIGNATURES = st.sampled_from(["good"] * 8 + ["wrong", "non-canonical", "short", "other-alg"])


def _hs_token(header: dict[str, Any], payload: str, signature: str) -> str:
    alg = "HS384" if signature == "other-alg" else "HS256"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[alg]
    head = b64json({"alg": "HS256", **header})
    signing_input = f"{head}.{b64url(payload.encode())}"
    mac = hmac.new(SECRET, signing_input.encode(), digest).digest()
    text = b64url(mac)
    if signature == "wrong":
        text = b64url(bytes(32))
    elif signature == "non-canonical":
        text = non_canonical(text)
    elif signature == "short":
        text = b64url(mac[:16])
    return f"{signing_input}.{text}"


def _reference(token: str, issuer: str | None, audience: str | None) -> str:
    """The answer of the code this replaced: PyJWT.decode, then `_subject`."""
    decoder = jwt.PyJWT(
        options={
            "require": ["exp", "sub"],
            "verify_aud": audience is not None,
            "enforce_minimum_key_length": True,
        }
    )
    try:
        payload = decoder.decode(
            token, SECRET, algorithms=["HS256"], issuer=issuer, audience=audience, leeway=LEEWAY
        )
    except jwt.PyJWTError as exc:
        return "401 " + _describe(exc)
    try:
        return "ok " + _subject(payload)
    except Unauthorized as exc:
        return "401 " + exc.detail


def _ours(token: str, issuer: str | None, audience: str | None) -> str:
    segments, header = _read_header(token)
    try:
        payload = verify_jws(segments, header, prepare_hs_secret(SECRET), ("HS256",))
        validate_claims(payload, issuer=issuer, audience=audience, leeway=LEEWAY)
    except jwt.PyJWTError as exc:
        return "401 " + _describe(exc)
    try:
        return "ok " + _subject(payload)
    except Unauthorized as exc:
        return "401 " + exc.detail


@pytest.mark.parametrize(("issuer", "audience"), [(None, None), (ISSUER, ISSUER)])
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=HEADERS, payload=claim_sets(), signature=SIGNATURES)
def test_same_answer_as_pyjwt(
    issuer: str | None,
    audience: str | None,
    header: dict[str, Any],
    payload: dict[str, Any],
    signature: str,
) -> None:
    token = _hs_token(header, json.dumps(payload), signature)
    assert _ours(token, issuer, audience) == _reference(token, issuer, audience)


RAW_PAYLOADS = [
    '{"sub":"user_1","exp":Infinity}',
    '{"sub":"user_1","exp":NaN}',
    '{"sub":"user_1","exp":-Infinity}',
    '{"sub":"user_1","exp":1e400}',
    f'{{"sub":"user_1","exp":{NOW + 100},"iat":Infinity}}',
    f'{{"sub":"user_1","exp":{NOW + 100},"nbf":NaN}}',
    f'{{"sub":"user_1","exp":{NOW + 100},"sub":"user_2"}}',
    f'{{"sub":"user_1","exp":{NOW + 100}',
    f'[{{"sub":"user_1","exp":{NOW + 100}}}]',
    '"just a string"',
    "null",
    "[" * 10000 + "]" * 10000,
]


@pytest.mark.parametrize(("issuer", "audience"), [(None, None), (ISSUER, ISSUER)])
@pytest.mark.parametrize("payload", RAW_PAYLOADS)
def test_same_answer_as_pyjwt_on_raw_json(
    issuer: str | None, audience: str | None, payload: str
) -> None:
    """JSON that Python parses but json.dumps never writes: Infinity, NaN, duplicate keys."""
    token = _hs_token({}, payload, "good")
    assert _ours(token, issuer, audience) == _reference(token, issuer, audience)
