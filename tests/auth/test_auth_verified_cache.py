"""The verifier remembers tokens it verified, without weakening any check that can change later.

A remembered token must still expire on time and must stop working when its JWKS key is gone
(tests/auth/test_auth_jwks.py::test_ttl_refresh_drops_revoked_keys covers the key side).
"""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from backend.auth import TokenVerifier
from backend.auth.verifier import VERIFIED_CACHE_SIZE
from backend.errors import Unauthorized
from tests.support import LONG_SECRET, claims, verifier_settings


def _hs(payload: dict[str, object]) -> str:
    return jwt.encode(payload, LONG_SECRET, algorithm="HS256")


async def test_a_remembered_token_still_expires() -> None:
    verifier = TokenVerifier(
        verifier_settings(better_auth_secret=LONG_SECRET.decode(), jwt_leeway_seconds=0),
        LONG_SECRET,
    )
    exp = int(time.time()) + 1
    token = _hs({"sub": "user_1", "iat": exp - 1, "exp": exp})
    assert await verifier.verify(token) == "user_1"
    assert await verifier.verify(token) == "user_1"  # served from memory
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    assert caught.value.detail == "token has expired"
    await verifier.aclose()


async def test_only_valid_tokens_are_remembered(hs_verifier: TokenVerifier) -> None:
    good = _hs(claims("user_1"))
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await hs_verifier.verify(forged)
    assert await hs_verifier.verify(good) == "user_1"
    assert list(hs_verifier._verified) == [good]


async def test_memory_is_bounded(hs_verifier: TokenVerifier) -> None:
    tokens = [_hs(claims(f"user_{n}")) for n in range(VERIFIED_CACHE_SIZE + 3)]
    for n, token in enumerate(tokens):
        assert await hs_verifier.verify(token) == f"user_{n}"
    assert len(hs_verifier._verified) == VERIFIED_CACHE_SIZE
    assert tokens[0] not in hs_verifier._verified  # oldest out first
    assert tokens[-1] in hs_verifier._verified
