"""resolve_hs_secret: configured secret, JWKS-only, and the generated development secret."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from backend.auth import TokenVerifier, mint_token, resolve_hs_secret
from tests.support import verifier_settings


def test_configured_secret_wins(tmp_path: Path) -> None:
    """BETTER_AUTH_SECRET is used as is; no file is written beside the database."""
    settings = verifier_settings(
        better_auth_secret="c" * 40, database_url=f"sqlite:///{tmp_path}/todo.db"
    )
    assert resolve_hs_secret(settings) == (b"c" * 40, None)
    assert list(tmp_path.iterdir()) == []


def test_jwks_only_has_no_secret(tmp_path: Path) -> None:
    """With JWKS configured and no secret, HS tokens are simply not accepted (no dev secret)."""
    settings = verifier_settings(
        better_auth_url="https://auth.example.test", database_url=f"sqlite:///{tmp_path}/todo.db"
    )
    assert resolve_hs_secret(settings) == (None, None)
    assert list(tmp_path.iterdir()) == []


def test_dev_secret_created_private_and_reused(tmp_path: Path) -> None:
    """A generated secret must be unreadable to other users and survive restarts."""
    settings = verifier_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/todo.db")
    secret, path = resolve_hs_secret(settings)
    assert path == tmp_path / "todo.db.secret"
    assert secret is not None and len(secret) >= 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["todo.db.secret"]  # no temp file left
    again, same_path = resolve_hs_secret(settings)
    assert (again, same_path) == (secret, path)
    # A token minted with it (what `todo-api token` does) verifies after a "restart".
    verifier = TokenVerifier(settings, again)
    assert asyncio.run(verifier.verify(mint_token(secret, "dev-user"))) == "dev-user"


def test_dev_secret_differs_per_database(tmp_path: Path) -> None:
    """Two checkouts never share a generated secret."""
    a, _ = resolve_hs_secret(verifier_settings(database_url=f"sqlite:///{tmp_path}/a.db"))
    b, _ = resolve_hs_secret(verifier_settings(database_url=f"sqlite:///{tmp_path}/b.db"))
    assert a != b


def test_non_sqlite_database_uses_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For PostgreSQL (no SQLite file) the secret lives in ./.todo-api-secret."""
    monkeypatch.chdir(tmp_path)
    settings = verifier_settings(database_url="postgresql+psycopg://u@127.0.0.1/todo")
    secret, path = resolve_hs_secret(settings)
    assert path == tmp_path / ".todo-api-secret"
    assert secret == path.read_bytes().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_corrupt_secret_file_is_an_error(tmp_path: Path) -> None:
    """An empty or truncated secret file must not silently become a weak key."""
    (tmp_path / "todo.db.secret").write_bytes(b"short\n")
    settings = verifier_settings(database_url=f"sqlite:///{tmp_path}/todo.db")
    with pytest.raises(ValueError, match="no usable secret"):
        resolve_hs_secret(settings)
