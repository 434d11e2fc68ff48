"""Compact-JWS verification and claim checks: PyJWT's rules, without PyJWT's per-token costs.

A token's first verification used to cost ~150-180 us for EdDSA and ~56 us for HS256 on our
machine. Most of it was OpenSSL's Ed25519 verify (~106 us; libsodium via PyNaCl: ~55 us),
PyJWT's base64url check (a Python loop per character) and its HMAC key re-check per token
(~15 us). So the verifier no longer calls `PyJWT.decode`: `verify_jws` and `validate_claims`
run the same checks in the same order with PyJWT's exceptions, on PyJWT's own algorithm
objects except EdDSA (libsodium) and HS* (secret checked once). tests/auth/test_auth_jws.py
compares their answers with PyJWT's on generated tokens.
"""

from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Collection, Sequence
from typing import Any, Final, Literal, overload

from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import Algorithm, HMACAlgorithm, OKPAlgorithm, get_default_algorithms
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidJTIError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    MissingRequiredClaimError,
)
from jwt.types import JWKDict
from nacl.bindings import crypto_sign_BYTES, crypto_sign_ed25519_pk_to_curve25519
from nacl.exceptions import BadSignatureError
from nacl.exceptions import RuntimeError as SodiumRuntimeError
from nacl.signing import VerifyKey

B64URL_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")  # one or more base64url characters
_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters allowed last, by segment length % 4 (those whose unused low bits are zero).
_CANONICAL_LAST: Final = {0: _B64URL_ALPHABET, 2: _B64URL_ALPHABET[::16], 3: _B64URL_ALPHABET[::4]}
_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_SUPPORTED_CRIT: Final = frozenset({"b64"})
_REQUIRED_CLAIMS: Final = ("exp", "sub")
_HMAC_HASHES: Final = {
    "HS256": HMACAlgorithm.SHA256,
    "HS384": HMACAlgorithm.SHA384,
    "HS512": HMACAlgorithm.SHA512,
}


def ed25519_verify_key(public: Ed25519PublicKey) -> VerifyKey:
    """A libsodium key for `public`; InvalidKeyError if it is not a usable Ed25519 point.

    libsodium's Ed25519 -> X25519 conversion rejects encodings that are not on the curve, the
    small-order points and points outside the prime-order subgroup, so such a key fails when the
    key set is loaded instead of silently never verifying (OpenSSL loads any 32 bytes).
    """
    raw = public.public_bytes_raw()
    try:
        crypto_sign_ed25519_pk_to_curve25519(raw)
    except SodiumRuntimeError:
        raise InvalidKeyError("not a valid Ed25519 public key") from None
    return VerifyKey(raw)


class SodiumEdDSAAlgorithm(Algorithm):
    """EdDSA for verification only: Ed25519 with libsodium, Ed448 with PyJWT's own code."""

    def __init__(self) -> None:
        self._okp = OKPAlgorithm()

    def prepare_key(self, key: Any) -> VerifyKey | Ed448PublicKey:
        # Only prepared public keys from our JWKS cache: no PEM strings, no private keys.
        if isinstance(key, VerifyKey | Ed448PublicKey):
            return key
        raise InvalidKeyError("EdDSA needs a public key from the key set")

    def sign(self, msg: bytes, key: Any) -> bytes:
        raise NotImplementedError("this algorithm only verifies")

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        if isinstance(key, VerifyKey):
            if len(sig) != crypto_sign_BYTES:
                return False  # PyNaCl raises ValueError here; OpenSSL returned "invalid"
            try:
                key.verify(msg, sig)
            except BadSignatureError:
                return False
            return True
        return self._okp.verify(msg, key, sig)

    @overload
    @staticmethod
    def to_jwk(key_obj: Any, as_dict: Literal[True]) -> JWKDict: ...

    @overload
    @staticmethod
    def to_jwk(key_obj: Any, as_dict: Literal[False] = False) -> str: ...

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> JWKDict | str:
        if isinstance(key_obj, VerifyKey):
            key_obj = Ed25519PublicKey.from_public_bytes(bytes(key_obj))
        return OKPAlgorithm.to_jwk(key_obj, as_dict=as_dict)  # type: ignore[call-overload,no-any-return]

    @staticmethod
    def from_jwk(jwk: str | JWKDict) -> VerifyKey | Ed448PublicKey:
        key = OKPAlgorithm.from_jwk(jwk)
        if isinstance(key, Ed25519PublicKey):
            return ed25519_verify_key(key)
        if isinstance(key, Ed448PublicKey):
            return key
        raise InvalidKeyError("a private key where a public key was expected")


class HmacSecret(bytes):
    """An HS secret that PyJWT's `HMACAlgorithm.prepare_key` has accepted."""


def prepare_hs_secret(secret: bytes) -> HmacSecret:
    """`secret` checked once by PyJWT (no PEM/DER/SSH/JWK key); InvalidKeyError if not."""
    return HmacSecret(HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(secret))


class _PreparedHMACAlgorithm(HMACAlgorithm):
    """HMAC that skips re-checking a secret already checked by `prepare_hs_secret`.

    PyJWT's `prepare_key` runs on every verification: it tries the secret as a DER public key,
    an X.509 certificate and JSON (~15 us). The secret is fixed per process, so once is enough.
    """

    def prepare_key(self, key: str | bytes) -> bytes:
        if type(key) is HmacSecret:
            return key
        return super().prepare_key(key)


def b64url_decode(segment: str) -> bytes:
    """Strict base64url: alphabet only, no padding, canonical trailing bits; else DecodeError.

    PyJWT's own check (GHSA-hxm8-2xgr-2p9m) loops over every character in Python and re-encodes;
    a regex and a look at the last character say the same in C. The last character of a
    segment of 4n+2 (4n+3) characters carries 4 (2) unused bits, which must be zero: otherwise
    several strings decode to the same bytes (e.g. a signature ending in "B" where "A" is meant).
    """
    size = len(segment) % 4
    if (
        B64URL_SEGMENT.fullmatch(segment) is None
        or size == 1
        or segment[-1] not in _CANONICAL_LAST[size]
    ):
        raise DecodeError("segment is not canonical base64url")
    # a2b_base64 would skip characters outside the alphabet: the regex above has refused them.
    return binascii.a2b_base64(segment.encode().translate(_URLSAFE) + b"=" * (-size % 4))


def verify_jws(
    segments: Sequence[str], header: dict[str, Any], key: Any, algorithms: Collection[str]
) -> dict[str, Any]:
    """The claims of a compact JWS signed with `key` by one of `algorithms`; PyJWTError if not.

    The steps and their order are PyJWT's (`PyJWS.decode_complete`, `_load`,
    `_validate_headers`, `_verify_signature`, `PyJWT._decode_payload`), with its exceptions, so
    every malformed token fails with the same error as before.
    """
    header_segment, payload_segment, signature_segment = segments
    b64url_decode(header_segment)  # `header` was parsed from it; here only strictness counts
    if header.get("b64", True) is False:
        raise DecodeError("detached payloads (b64: false) are not accepted")
    payload = b64url_decode(payload_segment)
    signature = b64url_decode(signature_segment)
    if "kid" in header and not isinstance(header["kid"], str):
        raise InvalidTokenError("Key ID header parameter must be a string")
    if "crit" in header:
        _check_crit(header)
    # The caller chose `key` and `algorithms` for this `alg` already; checked again, as PyJWT does.
    alg = header.get("alg")
    algorithm = ALGORITHMS.get(alg) if isinstance(alg, str) and alg in algorithms else None
    if algorithm is None:
        raise InvalidAlgorithmError("The specified alg value is not allowed")
    prepared = algorithm.prepare_key(key)
    if algorithm.check_key_length(prepared) is not None:
        raise InvalidKeyError("key is shorter than the algorithm requires")
    signing_input = f"{header_segment}.{payload_segment}".encode()
    if not algorithm.verify(signing_input, prepared, signature):
        raise InvalidSignatureError("Signature verification failed")
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        raise DecodeError("Invalid payload string") from None
    if not isinstance(claims, dict):
        raise DecodeError("Invalid payload string: must be a json object")
    return claims


def _check_crit(header: dict[str, Any]) -> None:
    # PyJWT understands only "b64", and refuses any other critical extension.
    crit = header["crit"]
    if not isinstance(crit, list) or len(crit) == 0:
        raise InvalidTokenError("Invalid 'crit' header: must be a non-empty list")
    for extension in crit:
        if not isinstance(extension, str) or extension not in _SUPPORTED_CRIT:
            raise InvalidTokenError("Unsupported critical extension")
        if extension not in header:
            raise InvalidTokenError("Critical extension is missing from headers")


def validate_claims(
    claims: dict[str, Any], *, issuer: str | None, audience: str | None, leeway: float
) -> None:
    """PyJWT's claim checks for our options (exp and sub required, aud only when expected).

    Same checks, order and exceptions as `PyJWT._validate_claims` with
    `require=["exp", "sub"]`, `verify_aud=audience is not None` and the rest at their defaults;
    tests/auth/test_auth_jws.py compares the two on generated claim sets.
    """
    for name in _REQUIRED_CLAIMS:
        if claims.get(name) is None:
            raise MissingRequiredClaimError(name)
    now = time.time()
    if "iat" in claims:
        try:
            iat = int(claims["iat"])
        except (ValueError, TypeError, OverflowError):
            raise InvalidIssuedAtError("Issued At claim (iat) must be an integer.") from None
        if iat > now + leeway:
            raise ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in claims:
        try:
            nbf = int(claims["nbf"])
        except (ValueError, TypeError, OverflowError):
            raise DecodeError("Not Before claim (nbf) must be an integer.") from None
        if nbf > now + leeway:
            raise ImmatureSignatureError("The token is not yet valid (nbf)")
    try:
        exp = int(claims["exp"])
    except (ValueError, TypeError, OverflowError):
        raise DecodeError("Expiration Time claim (exp) must be an integer.") from None
    if exp <= now - leeway:
        raise ExpiredSignatureError("Signature has expired")
    if issuer is not None:
        if "iss" not in claims:
            raise MissingRequiredClaimError("iss")
        if not isinstance(claims["iss"], str) or claims["iss"] != issuer:
            raise InvalidIssuerError("Invalid issuer")
    if audience is not None:
        _check_audience(claims, audience)
    if not isinstance(claims["sub"], str):
        raise InvalidSubjectError("Subject must be a string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise InvalidJTIError("JWT ID must be a string")


def _check_audience(claims: dict[str, Any], audience: str) -> None:
    if not claims.get("aud"):
        raise MissingRequiredClaimError("aud")
    audiences = claims["aud"]
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or any(not isinstance(each, str) for each in audiences):
        raise InvalidAudienceError("Invalid claim format in token")
    if audience not in audiences:
        raise InvalidAudienceError("Audience doesn't match")


# What verify_jws runs for each `alg`: PyJWT's own algorithms, except EdDSA (libsodium) and
# HS* (the secret checked once). "none" is absent: the verifier refuses it before we get here.
ALGORITHMS: Final[dict[str, Algorithm]] = {
    **{name: alg for name, alg in get_default_algorithms().items() if name != "none"},
    "EdDSA": SodiumEdDSAAlgorithm(),
    **{name: _PreparedHMACAlgorithm(hash_alg) for name, hash_alg in _HMAC_HASHES.items()},
}
