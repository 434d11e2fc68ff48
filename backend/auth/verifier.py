"""Verify a bearer JWT with PyJWT and return who it names (a `Principal`).

The key is chosen by us, never by the token: HS* only with the configured secret, asymmetric
algorithms only with a JWKS key whose type and curve fit them. Header parameters that point
elsewhere (`jku`, `x5u`, `jwk`) are ignored. Every failure is an `Unauthorized` whose detail
names the problem without repeating attacker-supplied text. docs/security.md lists the checks
in order.
"""

from __future__ import annotations

import base64
import codecs
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import jwt
from jwt.exceptions import InvalidSubjectError
from jwt.types import Options

from backend.errors import Unauthorized
from backend.settings import Settings

from .jwks import JwksCache, PublicKey
from .policy import (
    ASYMMETRIC_ALGORITHMS,
    HS_ALGORITHMS,
    HS_MIN_KEY_BYTES,
    KNOWN_ALGORITHMS,
    MAX_TOKEN_BYTES,
    hs_algorithms_for,
    is_valid_subject,
)

_SEGMENT_NAMES: Final = ("header", "payload", "signature")
_B64URL_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")  # unpadded base64url, not empty
_NUMERIC_CLAIMS: Final = ("exp", "nbf", "iat")
# NumericDate claims beyond this (3000-01-01T00:00:00Z) are nonsense, or an attempt at one.
MAX_NUMERIC_DATE: Final = 32503680000
# Verified tokens remembered per process. Clients send the same token for its whole life, and a
# signature check (PyJWT's parsing + HMAC or Ed25519) costs more than the rest of a small request.
VERIFIED_CACHE_SIZE: Final = 4096
NO_AUDIENCE_CONFIGURED: Final = (
    "token has an audience (aud) but none is configured: set JWT_AUDIENCE or BETTER_AUTH_URL"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for, and until when (Better Auth's profile claims if typed)."""

    subject: str
    expires_at: datetime
    email: str | None = None
    name: str | None = None
    email_verified: bool | None = None


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a successful verification established; valid while `exp` and the key still hold."""

    principal: Principal
    expires_at: float
    key: bytes | PublicKey
    kid: str | None  # JWKS key id (None for the shared secret)


class TokenVerifier:
    """Verifies tokens from Better Auth (JWKS) and/or signed with the shared secret."""

    def __init__(
        self, settings: Settings, hs_secret: bytes | None, *, jwks: JwksCache | None = None
    ) -> None:
        self._jwks = jwks if jwks is not None else JwksCache.from_settings(settings)
        self._hs_secret: bytes | None = None
        self._hs_algorithms: tuple[str, ...] = ()
        if hs_secret is not None:
            if len(hs_secret) < HS_MIN_KEY_BYTES["HS256"]:
                raise ValueError(
                    f"the HS secret must be at least {HS_MIN_KEY_BYTES['HS256']} bytes "
                    "(RFC 7518 section 3.2)"
                )
            # Fails now, not per request, if the "secret" is a PEM/DER/JWK public key.
            try:
                jwt.encode({}, hs_secret, algorithm="HS256")
            except jwt.InvalidKeyError as exc:
                raise ValueError(f"the HS secret is not usable: {exc}") from None
            self._hs_secret = hs_secret
            self._hs_algorithms = tuple(sorted(hs_algorithms_for(hs_secret)))
        if self._hs_secret is None and self._jwks is None:
            raise ValueError("no token key configured: need an HS secret or a JWKS URL")
        self._issuer = settings.expected_issuer
        self._audience = settings.expected_audience
        self._leeway = settings.jwt_leeway_seconds
        # PyJWT's defaults verify signature, exp, nbf, iat, iss, aud (a token with `aud` needs
        # a configured audience), sub and jti types; we add the claims a token must carry.
        options: Options = {"require": ["exp", "sub"], "enforce_minimum_key_length": True}
        self._decoder = jwt.PyJWT(options)
        self._verified: dict[str, _Verified] = {}

    @property
    def hs_algorithms(self) -> tuple[str, ...]:
        """HS* algorithms accepted with the configured secret (those it is long enough for)."""
        return self._hs_algorithms

    async def verify(self, token: str) -> str:
        """Return the token's `sub` if the token is valid; raise Unauthorized otherwise."""
        return (await self.verify_principal(token)).subject

    async def verify_principal(self, token: str) -> Principal:
        """Who the token speaks for if it is valid; Unauthorized (or 503 from JWKS) otherwise."""
        # Size first, so an oversized token costs neither parsing nor a JWKS fetch.
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized(f"token is larger than {MAX_TOKEN_BYTES} bytes")
        if not token.isascii():
            raise Unauthorized("token contains non-ASCII characters")
        remembered = self._verified.get(token)
        if remembered is not None and await self._still_valid(token, remembered):
            return remembered.principal
        header = _read_header(token)
        key, algorithms = await self._select_key(header)
        try:
            claims = self._decoder.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.InvalidAudienceError as exc:
            detail = NO_AUDIENCE_CONFIGURED if self._audience is None else _describe(exc)
            raise Unauthorized(detail) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(_describe(exc)) from exc
        principal = _principal(claims)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # oldest first
        kid = None if key is self._hs_secret else header.get("kid")
        self._verified[token] = _Verified(principal, principal.expires_at.timestamp(), key, kid)
        return principal

    async def _still_valid(self, token: str, remembered: _Verified) -> bool:
        """A remembered token passes only while unexpired and its JWKS key is the one it had.

        The key is looked up exactly as on a first verification, so a key dropped from the
        JWKS (after the cache TTL) rejects the token with the same error, a key set too stale
        to trust gives the same 503, and a re-fetched key set (new key objects) sends the
        token through full verification again.
        """
        if remembered.expires_at <= time.time() - self._leeway:  # PyJWT's own exp rule
            del self._verified[token]
            return False
        if remembered.kid is None:
            return True
        assert self._jwks is not None
        try:
            entry = await self._jwks.get_key(remembered.kid)
        except Exception:
            self._verified.pop(token, None)
            raise
        if entry.key is not remembered.key:
            self._verified.pop(token, None)
            return False
        return True

    async def prefetch_keys(self) -> bool:
        """Warm the JWKS cache (e.g. at start-up); False if the JWKS endpoint did not answer."""
        return True if self._jwks is None else await self._jwks.refresh()

    async def aclose(self) -> None:
        """Release the JWKS HTTP client."""
        if self._jwks is not None:
            await self._jwks.aclose()

    async def _select_key(
        self, header: dict[str, Any]
    ) -> tuple[bytes | PublicKey, tuple[str, ...]]:
        """The key for the token's `alg`/`kid` (named by the token, never supplied by it)."""
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise Unauthorized("token header has no algorithm (alg)")
        if alg.lower() == "none":
            raise Unauthorized("token algorithm 'none' is not allowed")
        if alg in HS_ALGORITHMS:
            if self._hs_secret is None or alg not in self._hs_algorithms:
                raise Unauthorized(f"token algorithm '{alg}' is not allowed")
            return self._hs_secret, self._hs_algorithms
        if alg in ASYMMETRIC_ALGORITHMS:
            if self._jwks is None:
                raise Unauthorized(f"token algorithm '{alg}' is not allowed")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthorized("token header has no key id (kid)")
            entry = await self._jwks.get_key(kid)
            if alg not in entry.algorithms:
                raise Unauthorized(f"token algorithm '{alg}' does not match its key")
            return entry.key, entry.algorithms
        if alg in KNOWN_ALGORITHMS:
            raise Unauthorized(f"token algorithm '{alg}' is not allowed")
        raise Unauthorized("token algorithm is not supported")


def _read_header(token: str) -> dict[str, Any]:
    """The (still untrusted) JOSE header, once the compact form and its text encoding are sound.

    PyJWT hands the decoded bytes to `json.loads`, which guesses UTF-16/32 and skips a UTF-8
    BOM; RFC 7515 5.2 and RFC 7519 7.2 allow UTF-8 only. So both JSON segments must decode as
    strict UTF-8 with no BOM and no NUL byte (which valid JSON text never holds raw, and which
    every UTF-16/32 encoding of it does): then PyJWT's parse reads exactly this text.
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise Unauthorized("token must have three dot-separated segments")
    for name, segment in zip(_SEGMENT_NAMES, segments, strict=True):
        if _B64URL_SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
            raise Unauthorized(f"token {name} is not valid base64url")
    header_text = _utf8_json_text(segments[0], "header")
    _utf8_json_text(segments[1], "payload")
    try:
        header = json.loads(header_text)
    except (ValueError, RecursionError):
        raise Unauthorized("token header is not valid JSON") from None
    if not isinstance(header, dict):
        raise Unauthorized("token header is not a JSON object")
    return header


def _utf8_json_text(segment: str, name: str) -> str:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    try:
        if raw.startswith(codecs.BOM_UTF8) or b"\x00" in raw:
            raise ValueError(name)
        return raw.decode("utf-8")  # strict: no lone surrogates, no overlong forms
    except ValueError:
        raise Unauthorized(f"token {name} is not UTF-8 JSON text") from None


def _principal(claims: dict[str, Any]) -> Principal:
    """The principal of verified claims; Unauthorized if a date or the subject is unusable."""
    for name in _NUMERIC_CLAIMS:
        if name in claims:
            _check_numeric_date(name, claims[name])
    subject = claims.get("sub")
    if not is_valid_subject(subject):
        raise Unauthorized("token subject (sub) is not a valid user id")
    email, display_name, verified = (
        claims.get("email"),
        claims.get("name"),
        claims.get("emailVerified"),
    )
    return Principal(
        subject=subject,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        email=email if isinstance(email, str) else None,
        name=display_name if isinstance(display_name, str) else None,
        email_verified=verified if isinstance(verified, bool) else None,
    )


def _check_numeric_date(name: str, value: object) -> None:
    # PyJWT reads these with int(), so it accepts numeric strings, booleans and any size;
    # RFC 7519 NumericDate is a JSON number, and ours must also fit a datetime.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"token claim '{name}' is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Unauthorized(f"token claim '{name}' is not a finite number")
    if not 0 <= value < MAX_NUMERIC_DATE:
        raise Unauthorized(f"token claim '{name}' is out of range (before year 3000)")


def _describe(exc: jwt.PyJWTError) -> str:
    """A client-safe detail for a PyJWT error (its own messages may quote token content)."""
    match exc:
        case jwt.ExpiredSignatureError():
            return "token has expired"
        case jwt.ImmatureSignatureError():
            return "token is not valid yet (nbf or iat is in the future)"
        case jwt.InvalidSignatureError():
            return "token signature is invalid"
        case jwt.MissingRequiredClaimError():
            return f"token is missing the '{exc.claim}' claim"
        case jwt.InvalidIssuerError():
            return "token issuer (iss) is not accepted"
        case jwt.InvalidAudienceError():
            return "token audience (aud) is not accepted"
        case jwt.InvalidIssuedAtError():
            return "token claim 'iat' is not a number"
        case InvalidSubjectError():
            return "token subject (sub) is not a valid user id"
        case jwt.InvalidAlgorithmError():
            return "token algorithm is not allowed"
        case jwt.InvalidKeyError():
            return "token key is not usable"
        case jwt.DecodeError():
            return "token is malformed"
        case _:
            return "token is invalid"
