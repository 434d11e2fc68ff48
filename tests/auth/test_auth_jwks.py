"""TokenVerifier with Better Auth's JWKS: algorithms, kid handling, caching, outages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import OKPAlgorithm

from backend.auth import MAX_TOKEN_BYTES, JwksCache, TokenVerifier, parse_jwk_set
from backend.errors import ServiceUnavailable, Unauthorized
from tests.support import (
    ISSUER,
    LONG_SECRET,
    FakeClock,
    JwksServer,
    SigningKey,
    b64json,
    b64url,
    better_auth_claims,
    cache_for,
    ec_key,
    ed25519_key,
    hs_forge,
    rsa_key,
    verifier_settings,
)


async def rejects(verifier: TokenVerifier, token: str, detail: str | None = None) -> str:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    if detail is not None:
        assert detail in info.value.detail
    return info.value.detail


@pytest.mark.parametrize("name", ["ed_key", "es_key", "rs_key", "ps_key"])
async def test_jwks_algorithms_accepted(
    jwks_verifier: TokenVerifier, name: str, request: pytest.FixtureRequest
) -> None:
    """Baseline: EdDSA (Better Auth's default), ES256, RS256 and PS256 tokens verify."""
    key: SigningKey = request.getfixturevalue(name)
    assert await jwks_verifier.verify(key.sign(better_auth_claims("user_1"))) == "user_1"


async def test_better_auth_header_without_typ_accepted(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    """Better Auth sends {"alg": "EdDSA", "kid": ...} with no typ: must still verify."""
    header = {"alg": "EdDSA", "kid": ed_key.kid}
    signing_input = f"{b64json(header)}.{b64json(better_auth_claims())}"
    signature = ed_key.private.sign(signing_input.encode())
    assert await jwks_verifier.verify(f"{signing_input}.{b64url(signature)}") == "user_1"


@pytest.mark.parametrize(
    ("alg", "make"),
    [
        ("RS384", lambda: rsa_key("k", "RS384")),
        ("RS512", lambda: rsa_key("k", "RS512")),
        ("PS384", lambda: rsa_key("k", "PS384")),
        ("PS512", lambda: rsa_key("k", "PS512")),
        ("ES384", lambda: ec_key("k", ec.SECP384R1(), "ES384")),
        ("ES512", lambda: ec_key("k", ec.SECP521R1(), "ES512")),
    ],
)
async def test_other_asymmetric_algorithms_accepted(
    jwks_server: JwksServer, clock: FakeClock, alg: str, make: Any
) -> None:
    """The larger RSA/PSS/EC variants Better Auth can be configured with also verify."""
    key: SigningKey = make()
    jwks_server.keys = [key.jwk]
    settings = verifier_settings(better_auth_url=ISSUER, jwt_jwks_url=jwks_server.url)
    verifier = TokenVerifier(settings, None, jwks=cache_for(settings, clock))
    try:
        assert await verifier.verify(key.sign(better_auth_claims())) == "user_1"
    finally:
        await verifier.aclose()


async def test_signature_by_other_key_with_known_kid_rejected(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    """An attacker's own Ed25519 key, claiming our kid, must not verify."""
    forged = ed25519_key(ed_key.kid).sign(better_auth_claims())
    await rejects(jwks_verifier, forged, "token signature is invalid")


async def test_alg_must_match_key_type(
    jwks_verifier: TokenVerifier, rs_key: SigningKey, es_key: SigningKey, ed_key: SigningKey
) -> None:
    """A token may not pick an algorithm its key was not made for (kty/crv/alg binding)."""
    # RS256-signed token naming the EC key's kid.
    token = rs_key.sign(better_auth_claims(), kid=es_key.kid)
    await rejects(jwks_verifier, token, "token algorithm 'RS256' does not match its key")
    # RS256 naming the RSA key whose JWK pins alg PS256.
    token = jwt.encode(better_auth_claims(), rs_key.private, "RS256", headers={"kid": "rsa-ps"})
    await rejects(jwks_verifier, token, "does not match its key")
    token = jwt.encode(better_auth_claims(), es_key.private, "ES256", headers={"kid": ed_key.kid})
    await rejects(jwks_verifier, token, "does not match its key")


async def test_rsa_key_without_alg_verifies_pss_too(
    jwks_verifier: TokenVerifier, rs_key: SigningKey
) -> None:
    """An RSA JWK with no `alg` may verify RS* and PS* (same key type), as RFC 7517 permits."""
    token = jwt.encode(better_auth_claims(), rs_key.private, "PS256", headers={"kid": rs_key.kid})
    assert await jwks_verifier.verify(token) == "user_1"


async def test_hs256_with_public_keys_rejected_without_secret(
    jwks_verifier: TokenVerifier, rs_key: SigningKey, ed_key: SigningKey
) -> None:
    """Key confusion against JWKS: HS256 signed with the RSA PEM / Ed25519 bytes as secret."""
    pem = rs_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = ed_key.private.public_key().public_bytes_raw()
    for secret, kid in ((pem, rs_key.kid), (raw, ed_key.kid)):
        token = hs_forge(better_auth_claims(), secret, kid=kid)
        await rejects(jwks_verifier, token, "token algorithm 'HS256' is not allowed")


async def test_hs_and_jwks_together(jwks_server: JwksServer, ed_key: SigningKey) -> None:
    """Both issuers configured: each token verifies with its own key only."""
    settings = verifier_settings(
        better_auth_secret=LONG_SECRET.decode(),
        better_auth_url=ISSUER,
        jwt_jwks_url=jwks_server.url,
    )
    verifier = TokenVerifier(settings, LONG_SECRET)
    try:
        assert (
            await verifier.verify(hs_forge(better_auth_claims("hs_user"), LONG_SECRET)) == "hs_user"
        )
        assert await verifier.verify(ed_key.sign(better_auth_claims("ed_user"))) == "ed_user"
        raw = ed_key.private.public_key().public_bytes_raw()
        await rejects(verifier, hs_forge(better_auth_claims(), raw, kid=ed_key.kid), "signature")
    finally:
        await verifier.aclose()


async def test_missing_kid_rejected(jwks_verifier: TokenVerifier, ed_key: SigningKey) -> None:
    """Without kid we would have to try keys; Better Auth always sends one."""
    token = jwt.encode(better_auth_claims(), ed_key.private, "EdDSA")
    await rejects(jwks_verifier, token, "no key id (kid)")


async def test_wrong_issuer_and_audience_rejected(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    """A token from another Better Auth deployment (other iss/aud) must not be accepted."""
    await rejects(jwks_verifier, ed_key.sign(better_auth_claims(iss="https://evil.test")), "issuer")
    await rejects(
        jwks_verifier, ed_key.sign(better_auth_claims(aud="https://other.test")), "audience"
    )


async def test_expired_jwks_token_rejected(
    jwks_verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    """Better Auth tokens live 900 s; an old one is refused even with a valid signature."""
    now = int(time.time())
    token = ed_key.sign(better_auth_claims(iat=now - 1000, exp=now - 100))
    await rejects(jwks_verifier, token, "token has expired")


async def test_unknown_kid_rejected_after_one_refetch(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """A kid the issuer never published is a 401 (after at most one permitted refetch)."""
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    assert jwks_server.requests == 1
    clock.advance(31)  # past the cooldown: one refetch is allowed
    stranger = ed25519_key("not-published")
    await rejects(jwks_verifier, stranger.sign(better_auth_claims()), "kid")
    assert jwks_server.requests == 2
    await rejects(jwks_verifier, stranger.sign(better_auth_claims()), "kid")
    assert jwks_server.requests == 2  # within the cooldown: no second refetch


async def test_flood_of_unknown_kids_costs_at_most_one_fetch(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """DoS on the auth server: 50 concurrent bad kids share one in-flight refetch."""
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    clock.advance(31)
    jwks_server.delay = 0.2  # keep the refetch in flight while the others arrive
    tokens = [ed25519_key(f"bad-{i}").sign(better_auth_claims()) for i in range(50)]
    results = await asyncio.gather(
        *(jwks_verifier.verify(t) for t in tokens), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert jwks_server.requests == 2  # the warm-up fetch + exactly one refetch
    # The good key keeps working throughout, without more fetches.
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    assert jwks_server.requests == 2


async def test_concurrent_misses_share_one_fetch_even_without_cooldown(
    jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """With cooldown 0, misses queued behind a fetch reuse it instead of refetching each."""
    settings = verifier_settings(jwt_jwks_url=jwks_server.url, jwks_refetch_cooldown_seconds=0)
    verifier = TokenVerifier(settings, None, jwks=cache_for(settings, clock))
    jwks_server.delay = 0.2
    try:
        tokens = [ed25519_key(f"bad-{i}").sign(better_auth_claims()) for i in range(20)]
        results = await asyncio.gather(
            *(verifier.verify(t) for t in tokens), return_exceptions=True
        )
        assert all(isinstance(r, Unauthorized) for r in results)
        assert jwks_server.requests == 1
    finally:
        await verifier.aclose()


async def test_key_rotation_accepted_after_cooldown(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """Better Auth rotates keys: a newly published kid must be picked up without a restart."""
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    new_key = ed25519_key("ed-2")
    jwks_server.keys = [*jwks_server.keys, new_key.jwk]
    token = new_key.sign(better_auth_claims("user_2"))
    await rejects(jwks_verifier, token, "kid")  # within cooldown of the first fetch
    clock.advance(30)
    assert await jwks_verifier.verify(token) == "user_2"
    assert jwks_server.requests == 2


async def test_ttl_refresh_drops_revoked_keys(
    jwks_verifier: TokenVerifier,
    jwks_server: JwksServer,
    ed_key: SigningKey,
    es_key: SigningKey,
    clock: FakeClock,
) -> None:
    """A key removed from the JWKS stops working once the cache TTL has passed."""
    token = es_key.sign(better_auth_claims())
    assert await jwks_verifier.verify(token) == "user_1"
    jwks_server.keys = [ed_key.jwk]
    clock.advance(599)
    assert await jwks_verifier.verify(token) == "user_1"  # still cached
    assert jwks_server.requests == 1
    clock.advance(1)
    await rejects(jwks_verifier, token, "kid")
    assert jwks_server.requests == 2


@pytest.mark.parametrize("outage", ["http-503", "refused", "garbage"])
async def test_jwks_down_cached_keys_keep_working(
    jwks_verifier: TokenVerifier,
    jwks_server: JwksServer,
    ed_key: SigningKey,
    es_key: SigningKey,
    clock: FakeClock,
    outage: str,
) -> None:
    """Auth server outage: known keys still verify (even past TTL); unknown kids get 503."""
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    if outage == "http-503":
        jwks_server.status = 503
    elif outage == "garbage":
        jwks_server.body = b"<html>maintenance</html>"
    else:
        jwks_server.stop()
    clock.advance(700)  # past TTL: a refresh is attempted and fails
    assert await jwks_verifier.verify(es_key.sign(better_auth_claims("u2"))) == "u2"
    new_key = ed25519_key("ed-new")
    with pytest.raises(ServiceUnavailable) as info:
        await jwks_verifier.verify(new_key.sign(better_auth_claims()))
    assert info.value.status == 503 and "Retry-After" in info.value.headers
    # Still cached, still fine, and the failing endpoint is not retried within the cooldown.
    before = jwks_server.requests
    for _ in range(5):
        assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
        with pytest.raises(ServiceUnavailable):
            await jwks_verifier.verify(new_key.sign(better_auth_claims()))
    assert jwks_server.requests == before


async def test_jwks_recovers_after_outage(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """Once the endpoint is back, the next permitted fetch restores normal 401/200 answers."""
    jwks_server.status = 500
    with pytest.raises(ServiceUnavailable):
        await jwks_verifier.verify(ed_key.sign(better_auth_claims()))
    jwks_server.status = 200
    with pytest.raises(ServiceUnavailable):  # cooldown: not retried yet
        await jwks_verifier.verify(ed_key.sign(better_auth_claims()))
    clock.advance(30)
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    await rejects(jwks_verifier, ed25519_key("other").sign(better_auth_claims()), "kid")


async def test_jwks_timeout_honoured(jwks_server: JwksServer, ed_key: SigningKey) -> None:
    """A hanging auth server must not hang our requests beyond jwks_timeout_seconds."""
    jwks_server.delay = 5
    settings = verifier_settings(jwt_jwks_url=jwks_server.url, jwks_timeout_seconds=0.3)
    verifier = TokenVerifier(settings, None)
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(ed_key.sign(better_auth_claims()))
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 2
        assert jwks_server.requests == 1
    finally:
        await verifier.aclose()


async def test_oversized_token_rejected_without_fetch(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """An 8 KiB+ token is refused before parsing, and never triggers a JWKS request."""
    token = ed_key.sign(better_auth_claims(pad="p" * MAX_TOKEN_BYTES), kid="unknown")
    assert len(token) > MAX_TOKEN_BYTES
    await rejects(jwks_verifier, token, "larger than")
    assert jwks_server.requests == 0


async def test_garbage_token_causes_no_fetch(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer
) -> None:
    """Malformed tokens are refused before any key lookup (no amplification to the auth server)."""
    for token in ("x", "a.b.c", f"{b64json({'alg': 'EdDSA'})}.e30.AAAA", "!!!.!!!.!!!"):
        await rejects(jwks_verifier, token)
    assert jwks_server.requests == 0


async def test_alg_none_with_known_kid_rejected(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """alg none must fail before any key lookup even when it names a real kid."""
    token = f"{b64json({'alg': 'none', 'kid': ed_key.kid})}.{b64json(better_auth_claims())}."
    await rejects(jwks_verifier, token)
    assert jwks_server.requests == 0


def test_unsupported_jwks_entries_are_ignored(ed_key: SigningKey, es_key: SigningKey) -> None:
    """One odd key (oct, unknown kty/crv/alg, encryption, private, weak RSA) must not
    break the whole set, and none of them may become a verification key."""
    weak = rsa_key("weak", bits=1024).jwk
    private_ed = ed25519_key("priv")
    private_jwk = {**OKPAlgorithm.to_jwk(private_ed.private, as_dict=True), "kid": "priv"}
    document = {
        "keys": [
            {"kty": "oct", "k": b64url(b"s" * 32), "kid": "sym"},
            {"kty": "XYZ", "kid": "x"},
            {"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AA", "y": "AA"},
            {**ed_key.jwk, "kid": "enc", "use": "enc"},
            {**ed_key.jwk, "kid": "badalg", "alg": "RS256"},
            {**ed_key.jwk, "kid": "noalg-type", "alg": 5},
            {"kty": "OKP", "crv": "Ed25519", "kid": "broken", "x": "!!"},
            {"kty": "RSA", "kid": "nokey"},
            {**es_key.jwk, "kid": None},
            {**es_key.jwk, "crv": ["P-256"], "kid": "listcrv"},
            weak,
            private_jwk,
            "not-an-object",
            ed_key.jwk,
            es_key.jwk,
            {**es_key.jwk, "x": ed_key.jwk["x"]},  # duplicate kid: first one wins
        ]
    }
    keys = parse_jwk_set(document)
    assert set(keys) == {ed_key.kid, es_key.kid}
    assert keys[ed_key.kid].algorithms == ("EdDSA",)
    assert keys[es_key.kid].algorithms == ("ES256",)


@pytest.mark.parametrize("body", [b"[]", b'{"keys": {}}', b"{}", b"null", b"\xff\xfe"])
async def test_non_jwks_response_is_a_failed_fetch(
    jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock, body: bytes
) -> None:
    """A 200 that is not a key set counts as an outage (503), not as 'no such key' (401)."""
    jwks_server.body = body
    cache = JwksCache(
        jwks_server.url,
        timeout_seconds=2,
        ttl_seconds=600,
        refetch_cooldown_seconds=30,
        clock=clock,
    )
    try:
        with pytest.raises(ServiceUnavailable):
            await cache.get_key(ed_key.kid)
        assert await cache.refresh() is False
    finally:
        await cache.aclose()


async def test_oversized_jwks_response_rejected(
    jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """A huge JWKS body is not buffered without limit."""
    jwks_server.body = b'{"keys": [' + b" " * (300 * 1024) + b"]}"
    cache = JwksCache(
        jwks_server.url,
        timeout_seconds=2,
        ttl_seconds=600,
        refetch_cooldown_seconds=30,
        clock=clock,
    )
    try:
        assert await cache.refresh() is False
    finally:
        await cache.aclose()


async def test_refresh_warms_the_cache(
    jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """Warming at start-up means the first request pays no fetch."""
    cache = JwksCache(
        jwks_server.url,
        timeout_seconds=2,
        ttl_seconds=600,
        refetch_cooldown_seconds=30,
        clock=clock,
    )
    try:
        assert await cache.refresh() is True
        assert jwks_server.requests == 1
        assert (await cache.get_key(ed_key.kid)).algorithms == ("EdDSA",)
        assert jwks_server.requests == 1
    finally:
        await cache.aclose()


async def test_verifier_builds_its_own_cache_from_settings(
    jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """BETTER_AUTH_URL alone configures JWKS path, issuer and audience (Better Auth defaults)."""
    base = jwks_server.url.removesuffix("/api/auth/jwks")
    settings = verifier_settings(better_auth_url=base)
    verifier = TokenVerifier(settings, None)
    try:
        token = ed_key.sign(better_auth_claims(iss=base, aud=base))
        assert await verifier.verify(token) == "user_1"
        await rejects(verifier, ed_key.sign(better_auth_claims()), "issuer")
    finally:
        await verifier.aclose()


def test_no_key_source_is_a_configuration_error() -> None:
    """A verifier with neither secret nor JWKS would reject everyone: fail at start-up."""
    with pytest.raises(ValueError, match="no token key"):
        TokenVerifier(verifier_settings(), None)


async def test_stale_key_served_while_refresh_is_in_flight(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey, clock: FakeClock
) -> None:
    """A slow TTL refresh must not stall every request holding an already-cached key."""
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    clock.advance(600)
    jwks_server.delay = 0.5
    refreshing = asyncio.create_task(jwks_verifier.verify(ed_key.sign(better_auth_claims("a"))))
    await asyncio.sleep(0.1)  # the refresh is now in flight
    started = time.monotonic()
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims("b"))) == "b"
    assert time.monotonic() - started < 0.2
    assert await refreshing == "a"
    assert jwks_server.requests == 2


async def test_token_supplied_key_locations_are_ignored(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer
) -> None:
    """jku/x5u/jwk headers let an attacker name their own key: we never fetch or use them."""
    attacker = ed25519_key("attacker")
    evil = JwksServer(keys=[attacker.jwk])
    evil.start()
    try:
        token = attacker.sign(better_auth_claims(), jku=evil.url, x5u=evil.url, jwk=attacker.jwk)
        await rejects(jwks_verifier, token, "kid")
        assert evil.requests == 0
        assert jwks_server.requests == 1
    finally:
        evil.stop()


async def test_prefetch_keys_warms_verifier(
    jwks_verifier: TokenVerifier, jwks_server: JwksServer, ed_key: SigningKey
) -> None:
    """Start-up warm-up: the first request after it needs no JWKS round trip."""
    assert await jwks_verifier.prefetch_keys() is True
    assert jwks_server.requests == 1
    assert await jwks_verifier.verify(ed_key.sign(better_auth_claims())) == "user_1"
    assert jwks_server.requests == 1
    jwks_server.status = 500
    assert await jwks_verifier.prefetch_keys() is False  # reported, never raised
