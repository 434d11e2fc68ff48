"""The request's dependency chain: caller and unit of work -> a tag's handlers.

Each link is an ordinary FastAPI dependency, so `app.dependency_overrides` can replace any of
them (a test may stand in for the caller) and app-, router- and route-level `dependencies=` run
on every contract route. FastAPI resolves each once per request; each level of the chain costs
it about 10 us per request, so the chain is as short as its links are distinct.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated

from fastapi import Depends, Request

from backend.auth import Principal, current_principal
from backend.db import Session, unit_of_work
from backend.errors import Forbidden
from backend.ratelimit import RateLimiter


async def caller(request: Request) -> Principal:
    """Who the request's bearer token speaks for, verified (401 otherwise)."""
    principal = await current_principal(request)
    request.state.user_id = principal.subject  # for the access log
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:  # counted once the token is verified: per user, not per address
        await limiter.check(principal.subject, request.scope["state"])
    return principal


Caller = Annotated[Principal, Depends(caller)]


def check_path_owner(request: Request, caller: Principal) -> str:
    """The path's `{user_id}`, checked once against the caller: 403 for anyone else.

    Read from the matched route's path parameters rather than declared again: the route itself
    declares and validates `user_id` with the contract's constraints.
    """
    if request.path_params.get("user_id") != caller.subject:
        raise Forbidden("the user_id in the path is not the authenticated user")
    return caller.subject


class UnitOfWork:
    """The request's unit of work, opened when a handler first needs the database.

    FastAPI solves dependencies before it validates the parameters and the body, so opening
    the database connection lazily keeps an invalid request from ever taking one.
    """

    def __init__(self, request: Request, stack: AsyncExitStack) -> None:
        self._request = request
        self._stack = stack
        self._session: Session | None = None

    async def session(self) -> Session:
        """The request's database session, opened on first use and ended with the request."""
        if self._session is None:
            work = unit_of_work(self._request.app.state, self._request.method)
            self._session = await self._stack.enter_async_context(work)
        return self._session


async def open_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """Ends with the route function (`scope="function"`): committed before the response."""
    async with AsyncExitStack() as stack:
        yield UnitOfWork(request, stack)


Work = Annotated[UnitOfWork, Depends(open_unit_of_work, scope="function")]
