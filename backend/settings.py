"""Configuration from environment variables (and an optional `.env`), validated once.

`create_app(settings)` takes an instance, so tests pass settings in instead of editing
`os.environ`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_FILE = "todo.db"
MIN_SECRET_LENGTH = 32
# Example values copied from guides and .env templates. Shorter ones fail the length rule anyway;
# these are long enough to pass it, so only this list stops them.
PLACEHOLDER_SECRETS = frozenset(
    {
        "change-me-to-a-long-random-secret-value",
        "your-super-secret-jwt-key-change-this-in-production",
        "please-change-this-secret-before-going-to-production",
        "better-auth-secret-12345678901234567890",
        "0123456789abcdef0123456789abcdef",
        "x" * MIN_SECRET_LENGTH,
    }
)


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    todo_env: Literal["development", "test", "production"] = "development"

    # Database: a SQLite file in the working directory unless told otherwise.
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_FILE}"
    db_pool_size: int = Field(default=5, ge=1, le=1000)
    db_max_overflow: int = Field(default=0, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    # psycopg server-side prepared statements: None disables them (PgBouncer transaction mode).
    db_prepare_threshold: int | None = Field(default=5, ge=0)
    # A request that needs the database answers within this (503 past it), even when the
    # database stops answering without closing its connections (a stalled network, a frozen host).
    db_request_deadline_seconds: float = Field(default=5.0, gt=0, le=300)
    # The kernel's means of noticing a dead peer: TCP keepalives on idle connections and
    # tcp_user_timeout on unacknowledged sends (0 leaves the OS default).
    db_keepalives_idle_seconds: int = Field(default=10, ge=1)
    db_tcp_user_timeout_ms: int = Field(default=10_000, ge=0)
    # SET statement_timeout and TimeZone on each new connection. Off behind a transaction
    # pooler (PgBouncer, Neon): a SET lands on whichever server connection runs it, so these
    # belong to the role there (ALTER ROLE ... SET, docs/operations.md).
    db_session_setup: bool = True

    # Auth: HS* with a shared secret, and/or JWKS (Better Auth's JWT plugin).
    better_auth_secret: SecretStr | None = None
    better_auth_url: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)
    jwks_cache_ttl_seconds: int = Field(default=600, ge=1)
    jwks_refetch_cooldown_seconds: float = Field(default=30.0, ge=0)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0)
    # Cached keys are trusted this long after the last good fetch, even while the JWKS is down.
    jwks_max_stale_seconds: int = Field(default=3600, ge=1)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Tasks one user may hold (OWASP API4); a create beyond it is a 409 (specs/database/).
    max_tasks_per_user: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    log_level: str = "INFO"

    # Prometheus metrics: recorded and served on METRICS_HOST:METRICS_PORT only when the port
    # is set (docs/operations.md, "Metrics"); never on the API's port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # Per-user request limit per fixed minute; off when unset. With REDIS_URL the counters are
    # shared by every instance, otherwise each instance counts alone (docs/operations.md).
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    redis_url: str | None = None
    # Bounds one rate-limit round trip; past it the request is served unchecked (fail open).
    redis_timeout_seconds: float = Field(default=0.2, gt=0, le=5)
    redis_key_prefix: str = "todo-api:ratelimit:"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            # A browser's Origin never ends in "/": "http://localhost:3000/" would match nothing.
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip().rstrip("/")]
        return value

    @field_validator(
        "better_auth_url",
        "jwt_jwks_url",
        "jwt_issuer",
        "jwt_audience",
        "metrics_port",
        "rate_limit_per_minute",
        "redis_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("better_auth_secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _prepare_off(cls, value: object) -> object:
        # DB_PREPARE_THRESHOLD= (empty), none or off: no prepared statements (PgBouncer).
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
            return None
        return value

    @model_validator(mode="after")
    def _max_stale_covers_the_ttl(self) -> Settings:
        if self.jwks_max_stale_seconds < self.jwks_cache_ttl_seconds:
            raise ValueError(
                "JWKS_MAX_STALE_SECONDS must be at least JWKS_CACHE_TTL_SECONDS "
                "(keys are refreshed once per TTL)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.todo_env != "production":
            return self
        secret = self.better_auth_secret.get_secret_value() if self.better_auth_secret else None
        if secret is not None and (
            secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH
        ):
            raise ValueError(
                "BETTER_AUTH_SECRET looks like a placeholder or is shorter than "
                f"{MIN_SECRET_LENGTH} characters; refusing to run in production"
            )
        if secret is None and self.jwks_url is None:
            raise ValueError(
                "no authentication configured: set BETTER_AUTH_SECRET, BETTER_AUTH_URL or "
                "JWT_JWKS_URL (TODO_ENV=production never uses a generated development secret)"
            )
        _refuse_cleartext_jwks(self)
        if "*" in self.cors_origins:
            raise ValueError("CORS_ORIGINS='*' is not allowed in production")
        if "null" in self.cors_origins:  # sent by sandboxed iframes and file:// pages
            raise ValueError("CORS_ORIGINS='null' is not allowed in production")
        return self

    @property
    def jwks_url(self) -> str | None:
        """JWKS endpoint: explicit, or Better Auth's default path under its base URL."""
        if self.jwt_jwks_url:
            return self.jwt_jwks_url
        if self.better_auth_url:
            return self.better_auth_url.rstrip("/") + "/api/auth/jwks"
        return None

    @property
    def expected_issuer(self) -> str | None:
        return self.jwt_issuer or self.better_auth_url

    @property
    def expected_audience(self) -> str | None:
        return self.jwt_audience or self.better_auth_url

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_port is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        path = rest.split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)


def _refuse_cleartext_jwks(settings: Settings) -> None:
    """The key set decides whose signatures count: over plain HTTP anyone on the path swaps it."""
    url = settings.jwks_url
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return
    source = "JWT_JWKS_URL" if settings.jwt_jwks_url else "BETTER_AUTH_URL"
    raise ValueError(
        f"{source} gives a JWKS URL with scheme '{parts.scheme}' on host '{parts.hostname}': "
        "in production the key set must be fetched over https, because whoever can alter it "
        "can sign tokens for any user. Use an https:// URL (plain http is accepted only for a "
        "loopback host: 127.0.0.0/8, ::1 or localhost)"
    )


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): traffic that stays local."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
