"""Per-user request limits: fixed one-minute windows, counted in Redis or in this process.

With REDIS_URL every instance counts in the same Redis key (one EVALSHA round trip: INCR, and
EXPIREAT on the window's first request), so the limit holds however many instances serve a
user. Without it each process counts alone. Redis trouble never fails a request: the request
is served unchecked (fail open), a counter says so, and a log line at most once a minute.

Every checked response carries the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers):
`RateLimit-Policy: "per-user";q=<quota>;w=60` and `RateLimit: "per-user";r=<left>;t=<reset>`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from backend.errors import TooManyRequests
from backend.metrics import RATE_LIMIT_REDIS_ERRORS, RATE_LIMIT_UNCHECKED, RATE_LIMITED
from backend.settings import Settings

logger = logging.getLogger("todo_api")

POLICY = "per-user"
WINDOW_SECONDS = 60
STATE_KEY = "rate_limit_headers"  # in the request's scope state; RequestContextMiddleware sends
# After a failed round trip Redis is left alone this long: a dead Redis costs one timeout a
# second per process, not one per request.
REDIS_BACKOFF_SECONDS = 1.0
ERROR_LOG_INTERVAL_SECONDS = 60.0
# INCR, and on the window's first request its expiry (the key outlives the window by a second).
INCREMENT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
return count
"""

Headers = list[tuple[bytes, bytes]]


class Counts(Protocol):
    async def increment(self, user_id: str, window: int) -> int | None:
        """The user's requests in `window` counting this one; None when it cannot be known."""
        ...

    async def aclose(self) -> None: ...


class LocalCounts:
    """This process's counts for the current window only (older windows are dropped whole)."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def increment(self, user_id: str, window: int) -> int | None:
        if window != self._window:
            self._window = window
            self._counts = {}
        count = self._counts.get(user_id, 0) + 1
        self._counts[user_id] = count
        return count

    async def aclose(self) -> None:
        return None


class RedisCounts:
    """Counts shared through Redis; bounded in time, and open when Redis fails."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # No retries: a request must not wait out several timeouts for a counter.
        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._client.register_script(INCREMENT_SCRIPT)
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._clock = clock
        self._skip_until = 0.0
        self._failing = False
        self._errors_unlogged = 0
        self._logged_at = -math.inf

    async def increment(self, user_id: str, window: int) -> int | None:
        if self._skip_until and self._clock() < self._skip_until:
            RATE_LIMIT_UNCHECKED.inc()
            return None
        key = f"{self._prefix}{user_id}:{window}"
        expire_at = (window + 1) * WINDOW_SECONDS + 1
        try:
            async with asyncio.timeout(self._timeout):
                count = await self._script(keys=[key], args=[expire_at])
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            RATE_LIMIT_UNCHECKED.inc()
            return None
        if self._failing:
            self._failing = False
            self._skip_until = 0.0
            logger.warning("rate limit: Redis answers again; requests are counted again")
        return int(count)

    def _failed(self, exc: BaseException) -> None:
        RATE_LIMIT_REDIS_ERRORS.inc()
        now = self._clock()
        self._failing = True
        self._skip_until = now + REDIS_BACKOFF_SECONDS
        self._errors_unlogged += 1
        if now - self._logged_at >= ERROR_LOG_INTERVAL_SECONDS:
            logger.warning(
                "rate limit: Redis unavailable (%s); serving requests without a limit check",
                type(exc).__name__,
                extra={"redis_errors": self._errors_unlogged},
            )
            self._logged_at = now
            self._errors_unlogged = 0

    async def aclose(self) -> None:
        await self._client.aclose()


class RateLimiter:
    """RATE_LIMIT_PER_MINUTE requests per user and fixed minute; 429 beyond it."""

    def __init__(
        self, per_minute: int, counts: Counts, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.quota = per_minute
        self.counts = counts
        self.clock = clock
        self._policy = (
            b"ratelimit-policy",
            f'"{POLICY}";q={per_minute};w={WINDOW_SECONDS}'.encode(),
        )

    async def check(self, user_id: str, state: dict[str, Any]) -> None:
        """Count this request; put the RateLimit headers in `state`; 429 when over the quota."""
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        count = await self.counts.increment(user_id, window)
        if count is None:
            return  # fail open: no count, so no headers that would claim one
        reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        remaining = max(0, self.quota - count)
        state[STATE_KEY] = [
            self._policy,
            (b"ratelimit", b'"%s";r=%d;t=%d' % (POLICY.encode(), remaining, reset)),
        ]
        if count > self.quota:
            RATE_LIMITED.inc()
            raise TooManyRequests(
                f"more than {self.quota} requests this minute; retry in {reset} s",
                retry_after=reset,
            )

    async def aclose(self) -> None:
        await self.counts.aclose()


def create_rate_limiter(settings: Settings) -> RateLimiter | None:
    """The limiter the settings ask for, or None (RATE_LIMIT_PER_MINUTE unset: no check at all)."""
    if settings.rate_limit_per_minute is None:
        return None
    counts: Counts
    if settings.redis_url:
        counts = RedisCounts(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            timeout_seconds=settings.redis_timeout_seconds,
        )
    else:
        counts = LocalCounts()
    return RateLimiter(settings.rate_limit_per_minute, counts)
