"""What a token may look like: size, algorithms, and the shape of its subject.

Kept in one place so the verifier, the JWKS parser and `mint_token` cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

# Better Auth tokens are well under 1 KiB; anything this large is an attack on the parser.
MAX_TOKEN_BYTES: Final = 8192

# RFC 7518 section 3.2: an HMAC key MUST be at least as long as the hash output.
HS_MIN_KEY_BYTES: Final[dict[str, int]] = {"HS256": 32, "HS384": 48, "HS512": 64}
HS_ALGORITHMS: Final = frozenset(HS_MIN_KEY_BYTES)

RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
# The curve decides the algorithm: a P-256 key never verifies an ES384 token.
EC_CURVE_ALGORITHMS: Final[dict[str, str]] = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})
ASYMMETRIC_ALGORITHMS: Final = RSA_ALGORITHMS | frozenset(EC_CURVE_ALGORITHMS.values()) | {"EdDSA"}
MIN_RSA_KEY_BITS: Final = 2048

# Registered JWS algorithm names (RFC 7518, RFC 8037, RFC 8812, RFC 9864). Only these are
# repeated in error details: anything else in `alg` is attacker text and stays out of headers.
KNOWN_ALGORITHMS: Final = (
    HS_ALGORITHMS
    | ASYMMETRIC_ALGORITHMS
    | {"none", "ES256K", "Ed25519", "Ed448", "RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "dir"}
)

# Same rule as the contract's `user_id` path parameter (specs/api/openapi.yaml, UserId):
# 1..128 URL-safe characters, not starting with a dot.
SUBJECT_PATTERN: Final = r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}"
_SUBJECT_RE: Final = re.compile(SUBJECT_PATTERN)


def is_valid_subject(value: object) -> TypeGuard[str]:
    """True if `value` can be a user id in our URLs (so `sub` and `{user_id}` compare 1:1)."""
    return isinstance(value, str) and _SUBJECT_RE.fullmatch(value) is not None


def hs_algorithms_for(secret: bytes) -> frozenset[str]:
    """The HS* algorithms this secret is long enough for."""
    return frozenset(alg for alg, size in HS_MIN_KEY_BYTES.items() if len(secret) >= size)
