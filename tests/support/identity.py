"""Who calls the API in tests: the test secret, real HS256 tokens, signed-in users."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from backend.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"test-secret-for-todo-api-0123456789abcdef"


def token_for(user_id: str, *, ttl_seconds: int = 3600, secret: bytes = SECRET) -> str:
    return mint_token(secret, user_id, ttl_seconds=ttl_seconds)


@dataclass(frozen=True)
class User:
    """A signed-in user: their id and the Authorization header of a real HS256 token."""

    id: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def named(cls, user_id: str, *, ttl_seconds: int = 3600) -> User:
        token = token_for(user_id, ttl_seconds=ttl_seconds)
        return cls(id=user_id, token=token, headers={"Authorization": f"Bearer {token}"})

    @property
    def tasks(self) -> str:
        return f"/api/{self.id}/tasks"

    def task(self, task_id: int | str) -> str:
        return f"/api/{self.id}/tasks/{task_id}"
