"""Implements generated.handlers.AuthHandlers: who the bearer token speaks for."""

from __future__ import annotations

from collections.abc import AsyncIterator

from backend.auth import Principal
from backend.dependencies import Caller
from generated import handlers as generated_handlers
from generated.models import CurrentUser


class AuthHandlers(generated_handlers.AuthHandlers):
    """Answers from the verified token alone: no database round trip."""

    def __init__(self, principal: Principal) -> None:
        self._principal = principal

    async def get_current_user(self) -> CurrentUser:
        principal = self._principal
        return CurrentUser(
            user_id=principal.subject,
            email=principal.email,
            name=principal.name,
            email_verified=principal.email_verified,
            token_expires_at=principal.expires_at,
        )


async def auth_handlers(principal: Caller) -> AsyncIterator[AuthHandlers]:
    """The `auth` handlers of one request: the caller, and nothing else."""
    yield AuthHandlers(principal)
