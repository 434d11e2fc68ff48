"""Signature-level behaviour: strict base64url, EdDSA tampering, Ed25519 key hygiene, Ed448."""

from __future__ import annotations

import base64
import string
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed448
from jwt.algorithms import OKPAlgorithm

from backend.auth import TokenVerifier, parse_jwk, parse_jwk_set
from backend.errors import Unauthorized
from tests.support import (
    ISSUER,
    LONG_SECRET,
    JwksServer,
    SigningKey,
    b64json,
    b64url,
    better_auth_claims,
    cache_for,
    claims,
    ed25519_key,
    verifier_settings,
)

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


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


async def test_non_canonical_signature_bits_rejected_eddsa(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    """A genuine EdDSA token whose signature text ends in a non-zero unused bit is refused:
    otherwise several strings would be the same token."""
    token = ed_key.sign(better_auth_claims())
    forged = with_signature(token, non_canonical(token.rsplit(".", 1)[1]))
    await rejects(jwks_verifier, forged, "token is malformed")
    assert await jwks_verifier.verify(token) == "user_1"


async def test_non_canonical_segments_rejected_hs(hs_verifier: TokenVerifier) -> None:
    """Same for HS256 (43-character signature), and for the payload segment."""
    token = jwt.encode(claims("user_1"), LONG_SECRET, algorithm="HS256")
    header, payload, signature = token.split(".")
    await rejects(
        hs_verifier, with_signature(token, non_canonical(signature)), "token is malformed"
    )
    if len(payload) % 4 in (2, 3):
        forged = f"{header}.{non_canonical(payload)}.{signature}"
        await rejects(hs_verifier, forged, "token is malformed")
    assert await hs_verifier.verify(token) == "user_1"


@pytest.mark.parametrize("tail", ["=", "==", "+", "/", " "])
async def test_padding_and_foreign_characters_rejected(
    hs_verifier: TokenVerifier, tail: str
) -> None:
    """Unpadded base64url only (RFC 7515 2): padding and the base64 alphabet's +/ are refused."""
    token = jwt.encode(claims("user_1"), LONG_SECRET, algorithm="HS256")
    await rejects(hs_verifier, token + tail, "token signature is not valid base64url")


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
# y coordinate >= p: OpenSSL loads all of these as Ed25519 public keys; a signature "by" such
# a key can be forged, so the key set parser skips them.
LOW_ORDER_POINTS = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0100000000000000000000000000000000000000000000000000000000000080",  # sign bit set
    "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y >= p
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


async def test_ed448_still_verifies(jwks_server: JwksServer, clock: Any) -> None:
    """Ed448 keys (EdDSA with the other curve) verify too, and reject tampering."""
    private = ed448.Ed448PrivateKey.generate()
    jwk = {**OKPAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": "ed448"}
    jwks_server.keys = [jwk]
    settings = verifier_settings(better_auth_url=ISSUER, jwt_jwks_url=jwks_server.url)
    verifier = TokenVerifier(settings, None, jwks=cache_for(settings, clock))
    token = jwt.encode(better_auth_claims(), private, algorithm="EdDSA", headers={"kid": "ed448"})
    assert await verifier.verify(token) == "user_1"
    header, _, signature = token.split(".")
    forged = f"{header}.{b64json(better_auth_claims('user_2'))}.{signature}"
    await rejects(verifier, forged, "token signature is invalid")
    await verifier.aclose()
