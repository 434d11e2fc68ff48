"""Configuration: safe defaults, production refusals, database URLs as providers give them."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from backend.db import async_url, sync_url
from backend.settings import MIN_SECRET_LENGTH, PLACEHOLDER_SECRETS, Settings


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_defaults_need_no_configuration() -> None:
    settings = make()
    assert settings.database_url == "sqlite:///todo.db"
    assert settings.sqlite_path == Path("todo.db")
    assert settings.cors_origins == []
    assert settings.better_auth_secret is None


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"better_auth_secret": "short-but-not-placeholder"},
        {"better_auth_secret": "s" * 40, "cors_origins": "*"},
    ],
    ids=["no-auth", "short-secret", "cors-wildcard"],
)
def test_production_refuses_unsafe_configuration(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make(todo_env="production", **values)


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDER_SECRETS))
def test_production_refuses_a_placeholder_long_enough_for_the_length_rule(placeholder: str) -> None:
    """Only the placeholder rule can refuse these: each passes the length rule."""
    assert len(placeholder) >= MIN_SECRET_LENGTH
    for secret in (placeholder, placeholder.upper()):
        with pytest.raises(ValidationError, match="placeholder"):
            make(todo_env="production", better_auth_secret=secret)
    # Control: a secret of the same length that is not a placeholder is accepted.
    strong = secrets.token_hex(len(placeholder))[: len(placeholder)]
    assert make(todo_env="production", better_auth_secret=strong).better_auth_secret is not None


def test_production_accepts_jwks_or_a_strong_secret() -> None:
    assert make(todo_env="production", better_auth_url="https://auth.example.com").jwks_url == (
        "https://auth.example.com/api/auth/jwks"
    )
    assert make(todo_env="production", better_auth_secret="s" * 40).better_auth_secret is not None


def test_better_auth_url_sets_issuer_audience_and_jwks() -> None:
    settings = make(better_auth_url="https://app.example.com/")
    assert settings.jwks_url == "https://app.example.com/api/auth/jwks"
    assert settings.expected_issuer == "https://app.example.com/"
    assert settings.expected_audience == "https://app.example.com/"
    explicit = make(
        better_auth_url="https://app.example.com",
        jwt_jwks_url="https://keys.example.com/jwks",
        jwt_issuer="iss",
        jwt_audience="aud",
    )
    assert (explicit.jwks_url, explicit.expected_issuer, explicit.expected_audience) == (
        "https://keys.example.com/jwks",
        "iss",
        "aud",
    )


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    assert make().cors_origins == ["https://a.example.com", "https://b.example.com"]


def test_neon_style_url_keeps_its_options_and_gets_the_async_driver() -> None:
    raw = (
        "postgresql://neondb_owner:p%40ss@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech"
        "/neondb?sslmode=require&channel_binding=require"
    )
    url = async_url(raw)
    assert url.drivername == "postgresql+psycopg"
    assert url.query == {"sslmode": "require", "channel_binding": "require"}
    assert url.password == "p@ss"
    assert url.host == "ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech"
    assert sync_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_sqlite_urls_map_to_async_and_sync_drivers() -> None:
    assert async_url("sqlite:///todo.db").drivername == "sqlite+aiosqlite"
    assert sync_url("sqlite:///todo.db").drivername == "sqlite"
    assert make(database_url="sqlite:///:memory:").sqlite_path is None


def test_unsupported_database_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported DATABASE_URL scheme"):
        async_url("mysql://root@localhost/db")
