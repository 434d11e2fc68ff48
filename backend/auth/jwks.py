"""In-memory cache of the JWKS published by Better Auth's JWT plugin.

Each process keeps its own copy (no shared state between workers). Keys are parsed once per
fetch, so verifying a token never parses key material. The fetch is async (httpx), bounded in
time and size, and rate limited: a stream of unknown `kid`s costs the auth server at most one
request per cooldown, and concurrent misses wait for the same fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import httpx
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError
from nacl.signing import VerifyKey

from backend.errors import ServiceUnavailable, Unauthorized
from backend.settings import Settings

from .jws import SodiumEdDSAAlgorithm
from .policy import EC_CURVE_ALGORITHMS, MIN_RSA_KEY_BITS, OKP_CURVES, RSA_ALGORITHMS

logger = logging.getLogger(__name__)

# Ed25519 keys are held as libsodium keys (see jws.py), checked when the key set is parsed.
PublicKey: TypeAlias = RSAPublicKey | EllipticCurvePublicKey | VerifyKey | Ed448PublicKey

# A key set is a few hundred bytes; a huge body is a misconfiguration or an attack.
MAX_JWKS_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class JwksKey:
    """A parsed public key and the algorithms it may verify (bound to its kty/crv/alg)."""

    kid: str
    key: PublicKey
    algorithms: tuple[str, ...]


class JwksFetchError(Exception):
    """The key set could not be fetched or was not a key set."""


def parse_jwk(jwk: Mapping[str, Any]) -> JwksKey | None:
    """Parse one JWK, or None if it is not a usable public signing key (skipped, not fatal)."""
    kid, kty, alg = jwk.get("kid"), jwk.get("kty"), jwk.get("alg")
    if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
        return None
    if alg is not None and not isinstance(alg, str):
        return None
    data = dict(jwk)
    key: PublicKey
    try:
        if kty == "OKP" and jwk.get("crv") in OKP_CURVES:
            allowed = frozenset({"EdDSA"})
            # A private key in a public set, or an Ed25519 point that is not a usable public
            # key (small order, off the curve), is InvalidKeyError: refuse rather than guess.
            key = SodiumEdDSAAlgorithm.from_jwk(data)
        elif kty == "EC" and jwk.get("crv") in EC_CURVE_ALGORITHMS:
            allowed = frozenset({EC_CURVE_ALGORITHMS[jwk["crv"]]})
            ec = ECAlgorithm.from_jwk(data)
            if not isinstance(ec, EllipticCurvePublicKey):
                return None
            key = ec
        elif kty == "RSA":
            allowed = RSA_ALGORITHMS
            rsa = RSAAlgorithm.from_jwk(data)
            if not isinstance(rsa, RSAPublicKey) or rsa.key_size < MIN_RSA_KEY_BITS:
                return None
            key = rsa
        else:
            return None  # symmetric ("oct") or unknown key types never come from a JWKS
    except (InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    if alg is not None:
        if alg not in allowed:
            return None
        allowed = frozenset({alg})
    return JwksKey(kid=kid, key=key, algorithms=tuple(sorted(allowed)))


def parse_jwk_set(document: object) -> dict[str, JwksKey]:
    """Parse a JWKS document into usable keys by kid; raise JwksFetchError if it is no JWKS."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksFetchError("response is not a JWK set")
    parsed: dict[str, JwksKey] = {}
    skipped = 0
    for jwk in keys:
        entry = parse_jwk(jwk) if isinstance(jwk, dict) else None
        if entry is None or entry.kid in parsed:
            skipped += 1
            continue
        parsed[entry.kid] = entry
    if skipped:
        logger.warning("JWKS: ignored %d unsupported or duplicate key(s)", skipped)
    return parsed


class JwksCache:
    """Fetches, caches and refreshes a JWKS; `get_key` is the only call on the request path."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        ttl_seconds: float,
        refetch_cooldown_seconds: float,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._ttl = ttl_seconds
        self._cooldown = refetch_cooldown_seconds
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: dict[str, JwksKey] = {}
        self._loaded_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last completed fetch, good or bad
        self._failing = False  # the last completed fetch failed
        self._generation = 0  # completed fetches; lets waiters reuse a fetch they queued behind

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksCache | None:
        """A cache for `settings.jwks_url`, or None when no JWKS is configured."""
        if settings.jwks_url is None:
            return None
        return cls(
            settings.jwks_url,
            timeout_seconds=settings.jwks_timeout_seconds,
            ttl_seconds=settings.jwks_cache_ttl_seconds,
            refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
        )

    @property
    def url(self) -> str:
        return self._url

    async def get_key(self, kid: str) -> JwksKey:
        """The key for `kid`: Unauthorized if the set has no such key, 503 if we cannot know."""
        key = self._keys.get(kid)
        if key is not None and (not self._expired(self._clock()) or self._lock.locked()):
            return key  # hot path (or stale while another request refreshes): no waiting
        generation = self._generation
        async with self._lock:
            # Whoever held the lock before us may already have fetched: reuse that result.
            if generation == self._generation and self._may_fetch(self._clock()):
                await self._fetch()
        key = self._keys.get(kid)
        if key is not None:
            return key  # fresh, or stale but the JWKS endpoint is down: keep serving it
        if self._failing or self._loaded_at is None:
            raise ServiceUnavailable(
                "cannot verify the token: the key server (JWKS) is unavailable",
                retry_after=self._retry_after(),
            )
        raise Unauthorized("token key id (kid) is not in the issuer's key set")

    async def refresh(self) -> bool:
        """Fetch now unless a fetch is already running (e.g. to warm the cache at start-up)."""
        generation = self._generation
        async with self._lock:
            if generation == self._generation:
                await self._fetch()
        return not self._failing

    async def aclose(self) -> None:
        """Close the HTTP client if this cache created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None

    def _expired(self, now: float) -> bool:
        return self._loaded_at is None or now - self._loaded_at >= self._ttl

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._cooldown

    def _retry_after(self) -> int:
        if self._attempted_at is None:
            return 1
        remaining = self._cooldown - (self._clock() - self._attempted_at)
        return max(1, math.ceil(remaining))

    async def _fetch(self) -> None:
        # Nothing is recorded if the fetch is cancelled, so the next waiter simply tries again.
        try:
            keys = await self._download()
        except JwksFetchError as exc:
            logger.warning("JWKS fetch from %s failed: %s; keeping cached keys", self._url, exc)
            self._failing = True
        else:
            self._keys = keys
            self._loaded_at = self._clock()
            self._failing = False
        self._attempted_at = self._clock()
        self._generation += 1

    async def _download(self) -> dict[str, JwksKey]:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, headers={"Accept": "application/json"}
            )
        body = bytearray()
        try:
            # httpx's timeout is per operation; this bounds the whole fetch (a slow drip too).
            async with asyncio.timeout(self._timeout):
                async with self._client.stream("GET", self._url) as response:
                    if response.status_code != httpx.codes.OK:
                        raise JwksFetchError(f"HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_JWKS_BYTES:
                            raise JwksFetchError("response is too large")
        except TimeoutError:
            raise JwksFetchError(f"timed out after {self._timeout:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise JwksFetchError(type(exc).__name__) from exc
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise JwksFetchError("response is not JSON") from None
        return parse_jwk_set(document)
