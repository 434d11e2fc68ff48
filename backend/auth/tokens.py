"""Mint HS-signed tokens: for `todo-api token USER_ID` in development, and for tests."""

from __future__ import annotations

import time
from typing import Any

import jwt

from .policy import HS_ALGORITHMS, HS_MIN_KEY_BYTES, is_valid_subject


def mint_token(
    secret: bytes,
    user_id: str,
    *,
    ttl_seconds: int = 3600,
    issuer: str | None = None,
    audience: str | None = None,
    algorithm: str = "HS256",
) -> str:
    """A token for `user_id` that `TokenVerifier` accepts with the same secret (and iss/aud)."""
    if algorithm not in HS_ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(sorted(HS_ALGORITHMS))}")
    if len(secret) < HS_MIN_KEY_BYTES[algorithm]:
        raise ValueError(
            f"{algorithm} needs a secret of at least {HS_MIN_KEY_BYTES[algorithm]} bytes"
        )
    if not is_valid_subject(user_id):
        raise ValueError("user id must be 1..128 URL-safe characters, not starting with a dot")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=algorithm)
