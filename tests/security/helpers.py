"""What the security tests share: the operations to attack, leak checks, JWKS settings."""

from __future__ import annotations

import uuid
from typing import Any

from backend.settings import Settings
from tests.support import ISSUER, make_settings, user_operations

FRONTEND = "http://localhost:3000"
# Fields of a problem body that differ per request by design.
PER_REQUEST_FIELDS = frozenset({"request_id", "instance"})


# Every operation on a user's data, read from the contract: a new one is attacked too.
OPERATIONS = user_operations()
TASK_OPERATIONS = [name for name, op in OPERATIONS.items() if op.on_task]


def marker(label: str) -> str:
    """A string no request of another user can produce by chance: finding it means a leak."""
    return f"{label}-secret-{uuid.uuid4().hex}"


def comparable(body: dict[str, Any], task_id: int | str) -> dict[str, Any]:
    """A problem body minus per-request fields, with the requested id abstracted away."""
    kept = {key: value for key, value in body.items() if key not in PER_REQUEST_FIELDS}
    if isinstance(kept.get("detail"), str):
        kept["detail"] = kept["detail"].replace(str(task_id), "{id}")
    return kept


def leaked_task_ids(document: Any, secret_ids: set[int]) -> set[int]:
    """Ids of secret tasks that appear as a task object anywhere in a JSON document."""
    found: set[int] = set()
    if isinstance(document, dict):
        if document.get("id") in secret_ids:
            found.add(document["id"])
        for value in document.values():
            found |= leaked_task_ids(value, secret_ids)
    elif isinstance(document, list):
        for item in document:
            found |= leaked_task_ids(item, secret_ids)
    return found


def jwks_settings(database_url: str, jwks_url: str, **overrides: Any) -> Settings:
    """Like production with Better Auth: JWKS only, iss = aud = the Better Auth URL."""
    values: dict[str, Any] = {
        "better_auth_secret": None,
        "better_auth_url": ISSUER,
        "jwt_jwks_url": jwks_url,
        "jwks_refetch_cooldown_seconds": 0,
        "jwks_timeout_seconds": 2,
    }
    values.update(overrides)
    return make_settings(database_url, **values)
