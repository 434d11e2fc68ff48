"""Turn `Authorization: Bearer <JWT>` into a principal: the first step of every handler scope."""

from __future__ import annotations

import re
from typing import Final

from fastapi import Request

from backend.errors import Unauthorized

from .verifier import Principal, TokenVerifier

# RFC 9110 credentials: an auth-scheme token, then one or more spaces, then the token68.
_CREDENTIALS_RE: Final = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?", re.DOTALL)
_FORBIDDEN_IN_TOKEN: Final = re.compile(r"[\s,]")


def bearer_token(authorization: str | None) -> str:
    """Extract the token from an Authorization header value (RFC 6750 section 2.1)."""
    if authorization is None:
        raise Unauthorized("Authorization header is missing")
    value = authorization.strip()
    if not value:
        raise Unauthorized("Authorization header is empty")
    match = _CREDENTIALS_RE.fullmatch(value)
    if match is None or match.group(1).lower() != "bearer":
        raise Unauthorized("Authorization scheme must be Bearer")
    token = match.group(2)
    if not token:
        raise Unauthorized("bearer token is missing")
    if _FORBIDDEN_IN_TOKEN.search(token):
        raise Unauthorized("bearer token must not contain whitespace or commas")
    return token


async def current_principal(request: Request) -> Principal:
    """The verified principal of the request's bearer token; Unauthorized (401) otherwise."""
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:
        raise Unauthorized("send exactly one Authorization header")
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify_principal(bearer_token(headers[0] if headers else None))


async def current_user_id(request: Request) -> str:
    """The verified `sub` of the request's bearer token; Unauthorized (401) otherwise."""
    return (await current_principal(request)).subject
