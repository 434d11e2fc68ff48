"""Which HS secret to use, generating a development one when nothing is configured.

A generated secret lives in a file beside the database, so it survives restarts (tokens from
`todo-api token` keep working) and differs per checkout. Production never gets here: settings
refuse to start without BETTER_AUTH_SECRET or a JWKS URL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from backend.settings import Settings

logger = logging.getLogger(__name__)

FALLBACK_SECRET_FILE: Final = ".todo-api-secret"  # noqa: S105 (a file name, not a secret)
_MIN_SECRET_BYTES: Final = 32


def resolve_hs_secret(settings: Settings) -> tuple[bytes | None, Path | None]:
    """The HS secret and, if it was generated or loaded from a file, that file (log it loudly)."""
    if settings.better_auth_secret is not None:
        return settings.better_auth_secret.get_secret_value().encode(), None
    if settings.jwks_url is not None:
        return None, None
    if settings.todo_env == "production":  # settings already refuse this; never weaken it here
        raise RuntimeError("refusing to generate a development secret in production")
    path = dev_secret_path(settings)
    return load_or_create_secret(path), path


def dev_secret_path(settings: Settings) -> Path:
    """`<sqlite file>.secret`, or `.todo-api-secret` in the working directory otherwise."""
    database = settings.sqlite_path
    if database is None:
        return Path.cwd() / FALLBACK_SECRET_FILE
    return database.with_name(database.name + ".secret").absolute()


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret at `path`, creating it (mode 0600, atomically) if it does not exist."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48).encode("ascii")
    # Write a private temp file, then hard-link it into place: readers never see a partial
    # file, and if another process won the race we keep (and use) its secret.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secret + b"\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("%s is readable by other users; run: chmod 600 %s", path, path)
    secret = path.read_bytes().strip()
    if len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"{path} holds no usable secret; delete it to generate a new one")
    return secret
