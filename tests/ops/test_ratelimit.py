"""Per-user rate limits: 429 with Retry-After and the RateLimit headers, one budget through Redis,
served when Redis is gone or hangs, and nothing at all when the limit is off."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from backend.ratelimit import RateLimiter, RedisCounts
from backend.settings import Settings
from tests.ops.helpers import REDIS_HOST, REDIS_PORT, AppClient, redis_reachable, sample
from tests.support import User, assert_problem, free_port

# A minute boundary a little ahead of the real clock: Redis expires keys by the real clock.
WINDOW_START = float((int(time.time() // 60) + 10) * 60)
NOW = WINDOW_START + 30.0  # the middle of that window: 30 s left
POLICY = '"per-user";q=3;w=60'


def _fix_clock(limiter: RateLimiter | None, now: float = NOW) -> None:
    assert limiter is not None
    limiter.clock = lambda: now


def _prefix() -> str:
    return f"todo-api-test:{uuid.uuid4().hex}:"


@pytest.fixture
def redis_url() -> str:
    if not redis_reachable():
        pytest.skip(f"Redis is not running at {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


async def test_429_after_the_quota_with_retry_after_and_ratelimit_headers(
    app_client: AppClient,
) -> None:
    alice, bob = User.named("alice"), User.named("bob")
    async with app_client(rate_limit_per_minute=3) as (app, client):
        _fix_clock(app.state.rate_limiter)
        seen = []
        for _ in range(2):
            response = await client.get(alice.tasks, headers=alice.headers)
            assert response.status_code == 200, response.text
            seen.append(response.headers["ratelimit"])
            assert response.headers["ratelimit-policy"] == POLICY
        # An error response is counted and carries the headers too.
        missing = await client.get(alice.task(12345), headers=alice.headers)
        assert missing.status_code == 404
        seen.append(missing.headers["ratelimit"])
        assert seen == ['"per-user";r=2;t=30', '"per-user";r=1;t=30', '"per-user";r=0;t=30']

        limited_before = sample("todo_rate_limited_total")
        refused = await client.get(alice.tasks, headers=alice.headers)
        body = assert_problem(refused, 429, "too-many-requests")
        assert body["title"] == "Too Many Requests"
        assert refused.headers["retry-after"] == "30"
        assert refused.headers["ratelimit"] == '"per-user";r=0;t=30'
        assert refused.headers["ratelimit-policy"] == POLICY
        assert sample("todo_rate_limited_total") == limited_before + 1

        # Another user has a budget of their own; a request without a valid token is not
        # counted against anyone (it is refused before the limit is looked at).
        other = await client.get(bob.tasks, headers=bob.headers)
        assert other.status_code == 200
        assert other.headers["ratelimit"] == '"per-user";r=2;t=30'
        anonymous = await client.get(alice.tasks)
        assert anonymous.status_code == 401
        assert "ratelimit" not in anonymous.headers

        # The next minute starts a new budget.
        _fix_clock(app.state.rate_limiter, WINDOW_START + 60.0)
        again = await client.get(alice.tasks, headers=alice.headers)
        assert again.status_code == 200
        assert again.headers["ratelimit"] == '"per-user";r=2;t=60'


async def test_two_instances_share_one_budget_through_redis(
    app_client: AppClient, redis_url: str
) -> None:
    alice = User.named("alice")
    # A window ten minutes ahead of now, not of import time: Redis expires the key at the
    # window's end, which must still be in the future when this test runs.
    window_start = float((int(time.time() // 60) + 10) * 60)
    now = window_start + 30.0
    options = {"rate_limit_per_minute": 3, "redis_url": redis_url, "redis_key_prefix": _prefix()}
    async with (
        app_client(**options) as (first_app, first),
        app_client(**options) as (second_app, second),
    ):
        _fix_clock(first_app.state.rate_limiter, now)
        _fix_clock(second_app.state.rate_limiter, now)
        statuses = [
            (await client.get(alice.tasks, headers=alice.headers)).status_code
            for client in (first, second, first, second, first)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        refused = await second.get(alice.tasks, headers=alice.headers)
        assert refused.headers["retry-after"] == "30"
    key = f"{options['redis_key_prefix']}alice:{int(now // 60)}"
    with redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as direct:
        assert int(direct.get(key) or 0) == 6
        assert direct.expiretime(key) == window_start + 60 + 1
        direct.delete(key)


async def test_redis_unreachable_serves_requests_and_says_so(
    app_client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    alice = User.named("alice")
    errors, unchecked = (
        sample("todo_rate_limit_redis_errors_total"),
        sample("todo_rate_limit_unchecked_total"),
    )
    gone = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="todo_api"):
        async with app_client(rate_limit_per_minute=1, redis_url=gone) as (_, client):
            for _ in range(5):
                response = await client.get(alice.tasks, headers=alice.headers)
                assert response.status_code == 200, response.text
                assert "ratelimit" not in response.headers  # no count, so no claim of one
    assert sample("todo_rate_limit_redis_errors_total") >= errors + 1
    assert sample("todo_rate_limit_unchecked_total") == unchecked + 5
    lines = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(lines) == 1  # one line, not one per request


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener that accepts connections and never answers: a hanging Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


async def test_a_hanging_redis_delays_a_request_by_the_timeout_at_most(
    app_client: AppClient, silent_server: int
) -> None:
    alice = User.named("alice")
    errors = sample("todo_rate_limit_redis_errors_total")
    async with app_client(
        rate_limit_per_minute=1,
        redis_url=f"redis://127.0.0.1:{silent_server}/0",
        redis_timeout_seconds=0.2,
    ) as (_, client):
        started = time.monotonic()
        first = await client.get(alice.tasks, headers=alice.headers)
        first_took = time.monotonic() - started
        # Within the back-off after a failure, Redis is not asked at all.
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.get(alice.tasks, headers=alice.headers) for _ in range(5))
        )
        rest_took = time.monotonic() - started
    assert first.status_code == 200
    assert 0.15 <= first_took < 1.5, first_took
    assert [r.status_code for r in results] == [200] * 5
    # Five concurrent requests: none waits for Redis again while the back-off (1 s) lasts; on
    # a machine so loaded that they outlast it, Redis is asked once more, never once each.
    assert rest_took < 1.5, rest_took
    assert errors + 1 <= sample("todo_rate_limit_redis_errors_total") <= errors + 2


async def test_off_by_default_no_limiter_and_no_headers(app_client: AppClient) -> None:
    assert Settings(_env_file=None).rate_limit_per_minute is None
    alice = User.named("alice")
    async with app_client() as (app, client):
        assert app.state.rate_limiter is None
        for _ in range(5):
            response = await client.get(alice.tasks, headers=alice.headers)
            assert response.status_code == 200
            assert "ratelimit" not in response.headers
            assert "ratelimit-policy" not in response.headers


def test_settings_read_the_limit_and_refuse_nonsense() -> None:
    settings = Settings(_env_file=None, rate_limit_per_minute="120", redis_url="")
    assert settings.rate_limit_per_minute == 120
    assert settings.redis_url is None
    assert Settings(_env_file=None, rate_limit_per_minute="").rate_limit_per_minute is None
    with pytest.raises(ValueError, match="rate_limit_per_minute"):
        Settings(_env_file=None, rate_limit_per_minute=0)


async def test_redis_counts_increment_and_expire_with_their_window(redis_url: str) -> None:
    prefix = _prefix()
    window = int(time.time() // 60)
    counts = RedisCounts(redis_url, prefix=prefix, timeout_seconds=1.0)
    try:
        assert [await counts.increment("carol", window) for _ in range(3)] == [1, 2, 3]
        assert await counts.increment("carol", window + 1) == 1
    finally:
        await counts.aclose()
    with redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as direct:
        assert direct.expiretime(f"{prefix}carol:{window}") == (window + 1) * 60 + 1
        assert direct.expiretime(f"{prefix}carol:{window + 1}") == (window + 2) * 60 + 1
        direct.delete(f"{prefix}carol:{window}", f"{prefix}carol:{window + 1}")
