"""In-memory cache of the JWKS published by Better Auth's JWT plugin.

Each process keeps its own copy (no shared state between workers). Keys are parsed once per
fetch (with PyJWT's `PyJWK`), so verifying a token never parses key material. The fetch is async
(httpx), bounded in time and size, and rate limited: a stream of unknown `kid`s costs the auth
server at most one request per cooldown (plus the refresh due once per TTL), and concurrent
misses wait for the same fetch. Log lines name the URL without credentials or query.
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
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK, PyJWTError

from backend.errors import ServiceUnavailable, Unauthorized
from backend.metrics import JWKS_FAILURES, JWKS_FETCHES
from backend.settings import Settings

from .policy import EC_CURVE_ALGORITHMS, MIN_RSA_KEY_BITS, OKP_CURVES, RSA_ALGORITHMS

logger = logging.getLogger(__name__)

PublicKey: TypeAlias = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

# A key set is a few hundred bytes; a huge body is a misconfiguration or an attack.
MAX_JWKS_BYTES: Final = 256 * 1024

# Ed25519 encodings of small-order points (and non-canonical twins of them). OpenSSL loads them
# as public keys; a signature "by" such a key can be forged, so a JWK holding one is skipped.
# The same list libsodium refuses (its `has_small_order`), checked with the sign bit cleared.
_ED25519_SMALL_ORDER: Final = frozenset(
    bytes.fromhex(point)
    for point in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)
_ED25519_P: Final = 2**255 - 19


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
    kid, kty, crv, alg = jwk.get("kid"), jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    if not isinstance(crv, str | None):
        return None
    if not isinstance(kid, str) or not kid or not _for_verification(jwk):
        return None
    if alg is not None and not isinstance(alg, str):
        return None
    # The key type and curve decide the algorithms; a JWK `alg` may only narrow them.
    types: tuple[type[PublicKey], ...]
    if kty == "OKP" and crv in OKP_CURVES:
        allowed, types = frozenset({"EdDSA"}), (Ed25519PublicKey, Ed448PublicKey)
    elif kty == "EC" and crv in EC_CURVE_ALGORITHMS:
        allowed, types = frozenset({EC_CURVE_ALGORITHMS[crv]}), (EllipticCurvePublicKey,)
    elif kty == "RSA":
        allowed, types = RSA_ALGORITHMS, (RSAPublicKey,)
    else:
        return None  # symmetric ("oct") or unknown key types never come from a JWKS
    if alg is not None:
        if alg not in allowed:
            return None
        allowed = frozenset({alg})
    try:
        key = PyJWK(dict(jwk), algorithm=min(allowed)).key
    except (PyJWTError, ValueError, TypeError, KeyError):
        return None
    # A private key in a public set is refused rather than used for its public half.
    if not isinstance(key, types) or not _strong_enough(key):
        return None
    return JwksKey(kid=kid, key=key, algorithms=tuple(sorted(allowed)))


def _for_verification(jwk: Mapping[str, Any]) -> bool:
    """RFC 7517 4.2/4.3: `use` (if present) is "sig" and `key_ops` (if present) has "verify"."""
    if jwk.get("use", "sig") != "sig":
        return False
    key_ops = jwk.get("key_ops")
    return key_ops is None or (isinstance(key_ops, list) and "verify" in key_ops)


def _strong_enough(key: PublicKey) -> bool:
    """RSA of at least MIN_RSA_KEY_BITS; Ed25519 a canonical point that is not of small order."""
    if isinstance(key, RSAPublicKey):
        return key.key_size >= MIN_RSA_KEY_BITS
    if isinstance(key, Ed25519PublicKey):
        raw = key.public_bytes_raw()
        y = raw[:31] + bytes([raw[31] & 0x7F])  # the sign bit of x is not part of y
        return y not in _ED25519_SMALL_ORDER and int.from_bytes(y, "little") < _ED25519_P
    return True


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


def redact_url(url: str) -> str:
    """scheme://host[:port]/path of `url`: what a log line may say (no credentials, no query)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


class JwksCache:
    """Fetches, caches and refreshes a JWKS; `get_key` is the only call on the request path.

    Keys are refreshed once the TTL has passed (a key the issuer withdrew is refused from then
    on). While the endpoint fails, cached keys keep serving for at most `max_stale_seconds`
    after the last good fetch; failed fetches are retried once per cooldown.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        ttl_seconds: float,
        refetch_cooldown_seconds: float,
        max_stale_seconds: float = 3600,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_stale_seconds < ttl_seconds:
            raise ValueError("max_stale_seconds must be at least ttl_seconds")
        self._url = url
        self._log_url = redact_url(url)
        self._timeout = timeout_seconds
        self._ttl = ttl_seconds
        self._cooldown = refetch_cooldown_seconds
        self._max_stale = max_stale_seconds
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
            max_stale_seconds=settings.jwks_max_stale_seconds,
        )

    @property
    def url(self) -> str:
        return self._url

    async def get_key(self, kid: str) -> JwksKey:
        """The key for `kid`: Unauthorized if the set has no such key, 503 if we cannot know."""
        key = self._keys.get(kid)
        now = self._clock()
        if key is not None and (
            not self._expired(now) or (self._lock.locked() and not self._too_stale(now))
        ):
            return key  # hot path (or briefly stale while another request refreshes)
        generation = self._generation
        async with self._lock:
            # Whoever held the lock before us may already have fetched: reuse that result.
            if generation == self._generation and self._may_fetch(self._clock()):
                await self._fetch()
        key = self._keys.get(kid)
        if key is not None:
            if not self._too_stale(self._clock()):
                return key  # fresh, or stale within the bound while the JWKS endpoint is down
            raise ServiceUnavailable(
                "cannot verify the token: the key server (JWKS) has not answered for too long",
                retry_after=self._retry_after(),
            )
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

    def _too_stale(self, now: float) -> bool:
        return self._loaded_at is None or now - self._loaded_at >= self._max_stale

    def _may_fetch(self, now: float) -> bool:
        # The cooldown paces refetches for unknown kids and retries after a failure; a good key
        # set whose TTL has passed is refreshed at once, so withdrawn keys go within the TTL.
        if self._attempted_at is None or now - self._attempted_at >= self._cooldown:
            return True
        return not self._failing and self._expired(now)

    def _retry_after(self) -> int:
        if self._attempted_at is None:
            return 1
        remaining = self._cooldown - (self._clock() - self._attempted_at)
        return max(1, math.ceil(remaining))

    async def _fetch(self) -> None:
        # Nothing is recorded if the fetch is cancelled, so the next waiter simply tries again.
        JWKS_FETCHES.inc()
        try:
            keys = await self._download()
        except JwksFetchError as exc:
            JWKS_FAILURES.inc()
            logger.warning("JWKS fetch from %s failed: %s; keeping cached keys", self._log_url, exc)
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
