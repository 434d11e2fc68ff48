"""The key set as root of trust: which keys count, how stale they may get, how it is fetched.

Keys are served over real HTTP on 127.0.0.1; time is moved by hand (a fake monotonic clock on
the verifier's JWKS cache) where the rule is about minutes, and for real where it is seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from backend.auth import TokenVerifier, parse_jwk_set
from backend.errors import ServiceUnavailable, Unauthorized
from tests.security.helpers import jwks_settings
from tests.support import (
    ISSUER,
    FakeClock,
    JwksServer,
    SigningKey,
    app_client,
    assert_problem,
    better_auth_claims,
    cache_for,
    ed25519_key,
    verifier_settings,
)

VICTIM = "alice"


async def _verifier(server: JwksServer, clock: FakeClock, **overrides: Any) -> TokenVerifier:
    values: dict[str, Any] = {"better_auth_url": ISSUER, "jwt_jwks_url": server.url, **overrides}
    settings = verifier_settings(**values)
    return TokenVerifier(settings, None, jwks=cache_for(settings, clock))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- key_ops -----------------------------------------------------------------------------------


@pytest.fixture
def ops_keys() -> dict[str, SigningKey]:
    """Ed25519 keys whose JWKs carry different `key_ops` (RFC 7517 4.3)."""
    keys = {name: ed25519_key(f"ops-{name}") for name in ("verify", "sign+verify", "none")}
    keys["verify"].jwk["key_ops"] = ["verify"]
    keys["sign+verify"].jwk["key_ops"] = ["sign", "verify"]
    for name, ops in (
        ("encrypt", ["encrypt"]),
        ("sign", ["sign"]),
        ("empty", []),
        ("str", "verify"),
    ):
        key = ed25519_key(f"ops-{name}")
        key.jwk["key_ops"] = ops
        keys[name] = key
    return keys


@pytest.fixture
async def ops_verifier(
    ops_keys: dict[str, SigningKey], clock: FakeClock
) -> AsyncIterator[TokenVerifier]:
    server = JwksServer(keys=[key.jwk for key in ops_keys.values()])
    server.start()
    verifier = await _verifier(server, clock)
    yield verifier
    await verifier.aclose()
    server.stop()


async def test_keys_whose_key_ops_lack_verify_are_not_used(
    ops_verifier: TokenVerifier, ops_keys: dict[str, SigningKey]
) -> None:
    """Threat: a key the issuer published for another operation (key_ops without "verify")
    verifies tokens. Such keys are skipped like `use: enc` keys; the others still work."""
    for name in ("verify", "sign+verify", "none"):
        assert await ops_verifier.verify(ops_keys[name].sign(better_auth_claims())) == "user_1"
    for name in ("encrypt", "sign", "empty", "str"):
        with pytest.raises(Unauthorized) as info:
            await ops_verifier.verify(ops_keys[name].sign(better_auth_claims()))
        assert "kid" in info.value.detail, name
    parsed = parse_jwk_set({"keys": [key.jwk for key in ops_keys.values()]})
    assert set(parsed) == {"ops-verify", "ops-sign+verify", "ops-none"}


# -- cleartext key set in production -----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"better_auth_url": "http://auth.example.com"}, "BETTER_AUTH_URL"),
        ({"jwt_jwks_url": "http://auth.example.com/jwks"}, "JWT_JWKS_URL"),
        ({"jwt_jwks_url": "http://10.0.0.7:3000/api/auth/jwks"}, "JWT_JWKS_URL"),
        ({"jwt_jwks_url": "http://localhost.evil.example/jwks"}, "JWT_JWKS_URL"),
        ({"jwt_jwks_url": "http://127.0.0.1.nip.io/jwks"}, "JWT_JWKS_URL"),
        ({"jwt_jwks_url": "ftp://auth.example.com/jwks"}, "JWT_JWKS_URL"),
        (
            {"better_auth_url": "https://auth.example.com", "jwt_jwks_url": "http://a.example/j"},
            "JWT_JWKS_URL",
        ),
    ],
)
def test_production_refuses_a_cleartext_jwks_url(values: dict[str, str], setting: str) -> None:
    """Threat: the key set is fetched over cleartext HTTP, so anyone on the path can publish
    their own key and sign any user's token. Production refuses it and says what to do."""
    with pytest.raises(ValidationError) as info:
        verifier_settings(todo_env="production", **values)
    message = str(info.value)
    assert "https" in message and setting in message and "loopback" in message


@pytest.mark.parametrize(
    "values",
    [
        {"better_auth_url": "https://auth.example.com"},
        {"jwt_jwks_url": "https://auth.example.com/api/auth/jwks"},
        {"better_auth_url": "http://127.0.0.1:3000"},
        {"better_auth_url": "http://127.8.9.10:3000"},
        {"better_auth_url": "http://localhost:3000"},
        {"better_auth_url": "http://LOCALHOST"},
        {"jwt_jwks_url": "http://[::1]:3000/api/auth/jwks"},
    ],
)
def test_production_allows_https_and_loopback_jwks_urls(values: dict[str, str]) -> None:
    """The same-host setup (Better Auth beside the API) and https keep working."""
    assert verifier_settings(todo_env="production", **values).jwks_url is not None


def test_development_still_allows_a_cleartext_jwks_url() -> None:
    """Only production is strict: a local Better Auth over http is the usual dev setup."""
    settings = verifier_settings(todo_env="development", better_auth_url="http://auth.test")
    assert settings.jwks_url == "http://auth.test/api/auth/jwks"


# -- revocation latency ------------------------------------------------------------------------


async def test_removed_key_is_refused_within_the_ttl_even_with_a_longer_cooldown(
    clock: FakeClock, ed_key: SigningKey, es_key: SigningKey
) -> None:
    """Threat: a key the issuer withdrew (compromised) keeps verifying for max(TTL, cooldown).
    Once the TTL has passed, the next use refetches and the removed key is refused."""
    server = JwksServer(keys=[ed_key.jwk, es_key.jwk])
    server.start()
    verifier = await _verifier(
        server, clock, jwks_cache_ttl_seconds=10, jwks_refetch_cooldown_seconds=300
    )
    try:
        token = es_key.sign(better_auth_claims())
        fresh = es_key.sign(better_auth_claims("user_2"))
        assert await verifier.verify(token) == "user_1"
        server.keys = [ed_key.jwk]  # the issuer withdraws the EC key
        clock.advance(9)
        assert await verifier.verify(token) == "user_1"  # within the TTL: still trusted
        clock.advance(1)
        for withdrawn in (token, fresh):  # remembered and first-use tokens alike
            with pytest.raises(Unauthorized):
                await verifier.verify(withdrawn)
        assert server.requests == 2
        assert await verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    finally:
        await verifier.aclose()
        server.stop()


@pytest.mark.parametrize("outage", ["http-500", "refused"])
async def test_cached_keys_expire_after_max_stale_during_an_outage(
    clock: FakeClock, ed_key: SigningKey, outage: str
) -> None:
    """Threat: while the JWKS endpoint errors (or an attacker keeps it erroring), a withdrawn
    key stays trusted forever. Cached keys serve at most JWKS_MAX_STALE_SECONDS after the last
    good fetch; then tokens that need them get 503 with Retry-After, until the set is back."""
    server = JwksServer(keys=[ed_key.jwk])
    server.start()
    verifier = await _verifier(
        server,
        clock,
        jwks_cache_ttl_seconds=60,
        jwks_refetch_cooldown_seconds=30,
        jwks_max_stale_seconds=300,
    )
    try:
        remembered = ed_key.sign(better_auth_claims())
        assert await verifier.verify(remembered) == "user_1"
        if outage == "http-500":
            server.status = 500
        else:
            server.stop()
        clock.advance(299)  # past the TTL, refetch fails: the cached key still serves
        assert await verifier.verify(remembered) == "user_1"
        assert await verifier.verify(ed_key.sign(better_auth_claims("user_2"))) == "user_2"
        clock.advance(1)
        for token in (remembered, ed_key.sign(better_auth_claims("user_3"))):
            with pytest.raises(ServiceUnavailable) as info:
                await verifier.verify(token)
            assert int(info.value.headers["Retry-After"]) >= 1
        if outage == "http-500":
            server.status = 200
        else:
            server.start()
        clock.advance(30)  # the cooldown after the failed attempt
        assert await verifier.verify(remembered) == "user_1"
    finally:
        await verifier.aclose()
        server.stop()


def test_max_stale_is_a_setting_no_shorter_than_the_ttl() -> None:
    """The bound is configurable (default one hour) and cannot undercut the refresh period."""
    assert verifier_settings().jwks_max_stale_seconds == 3600
    with pytest.raises(ValidationError, match="JWKS_MAX_STALE_SECONDS"):
        verifier_settings(jwks_cache_ttl_seconds=600, jwks_max_stale_seconds=599)


async def test_stale_key_set_is_a_503_problem_through_the_api(
    database_url: str, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """End to end, in real time: key server down beyond the bound gives 503 problem+json."""
    settings = jwks_settings(
        database_url,
        jwks_server.url,
        jwks_cache_ttl_seconds=1,
        jwks_refetch_cooldown_seconds=30,
        jwks_max_stale_seconds=1,
    )
    headers = {"Authorization": f"Bearer {ed_key.sign(better_auth_claims(VICTIM))}"}
    async with app_client(settings) as client:
        assert (await client.get(f"/api/{VICTIM}/tasks", headers=headers)).status_code == 200
        jwks_server.stop()
        await asyncio.sleep(1.2)
        response = await client.get(f"/api/{VICTIM}/tasks", headers=headers)
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1


# -- logs --------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def auth_logs() -> Iterator[_Collect]:
    """Records of the auth package's loggers, however the process configures its handlers."""
    handler = _Collect()
    logger = logging.getLogger("backend.auth")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.mark.parametrize("failure", ["http-503", "refused", "garbage"])
async def test_jwks_log_lines_carry_no_credentials_or_query(
    clock: FakeClock, ed_key: SigningKey, auth_logs: _Collect, failure: str
) -> None:
    """Threat: a JWKS URL with a password or an API key in its query ends up in the logs."""
    server = JwksServer(keys=[ed_key.jwk])
    server.start()
    url = server.url.replace("http://", "http://svc:pa55word@") + "?api_key=k3y&x=1"
    verifier = await _verifier(server, clock, jwt_jwks_url=url)
    if failure == "http-503":
        server.status = 503
    elif failure == "garbage":
        server.body = b'{"keys": [{"kty": "oct"}, 5]}'
    else:
        server.stop()
    try:
        with pytest.raises((ServiceUnavailable, Unauthorized)):
            await verifier.verify(ed_key.sign(better_auth_claims()))
    finally:
        await verifier.aclose()
        server.stop()
    assert auth_logs.records, "the failed fetch is logged"
    for record in auth_logs.records:
        line = record.getMessage()
        assert "pa55word" not in line and "svc" not in line, line
        assert "k3y" not in line and "api_key" not in line and "?" not in line, line
        assert record.name.startswith("backend."), record.name
    if failure != "garbage":
        assert any(
            f"http://127.0.0.1:{server.port}/api/auth/jwks" in r.getMessage()
            for r in auth_logs.records
        )
