"""SQLModel table models: the storage shape described in specs/database/schema.md.

Kept apart from the API schemas in generated/; backend/mapping.py converts between them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import configure_mappers
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TAGS = sa.JSON().with_variant(JSONB(), "postgresql")
# Byte-wise ("C") comparison on PostgreSQL, as SQLite's default BINARY collation does.
SORT_KEY = sa.String(800).with_variant(sa.String(800, collation="C"), "postgresql")

PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}
PRIORITY_NAME = {rank: name for name, rank in PRIORITY_RANK.items()}

TITLE_MAX = 200
DESCRIPTION_MAX = 1000
USER_ID_MAX = 128
IDEMPOTENCY_KEY_MAX = 255


def fold_case(text: str) -> str:
    """The case-insensitive key of a title or description (Unicode case folding, as `q` uses).

    Folding in Python rather than with the database's lower() makes search and the title sort
    identical on SQLite and PostgreSQL, whatever the server's locale ("ΟΔΟΣ", "Straße", "İ").
    """
    return text.casefold()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on both databases.

    SQLite has no timestamp type: values are stored as naive UTC text in one fixed format,
    so text comparison and ordering agree with time order.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(
        self, dialect: sa.Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "sqlite":
            return super().result_processor(dialect, coltype)

        def in_utc(value: datetime | None) -> datetime | None:
            # psycopg returns aware datetimes in the session's time zone: UTC (set on connect)
            # unless a pooler dropped that SET. One call per value instead of SQLAlchemy's two.
            if value is None or value.tzinfo is UTC:
                return value
            return value.astimezone(UTC)

        return in_utc

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - SQLite text from raw SQL
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Task(SQLModel, table=True):
    """One task of one user."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.CheckConstraint(f"length(user_id) BETWEEN 1 AND {USER_ID_MAX}", name="user_id_length"),
        sa.CheckConstraint(f"length(title) BETWEEN 1 AND {TITLE_MAX}", name="title_length"),
        sa.CheckConstraint(
            f"description IS NULL OR length(description) <= {DESCRIPTION_MAX}",
            name="description_length",
        ),
        sa.CheckConstraint("priority IN (1, 2, 3)", name="priority_rank"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
        sa.Index("ix_tasks_user_due", "user_id", "due_at", "id"),
        sa.Index("ix_tasks_user_priority", "user_id", "priority", "id"),
        sa.Index("ix_tasks_user_title", "user_id", "title_key", "id"),
        sa.Index(
            "ix_tasks_tags",
            "tags",
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
        # AUTOINCREMENT: SQLite would otherwise hand the id of a deleted newest task to the next
        # one, and an ETag ("id.version") of the deleted task would match the new task in
        # If-Match. PostgreSQL's sequence never reuses an id.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.String(USER_ID_MAX), nullable=False))
    title: str = Field(sa_column=sa.Column(sa.String(TITLE_MAX), nullable=False))
    # fold_case(title), kept by the application: one case-insensitive sort and search key that
    # orders the same on SQLite and PostgreSQL (both compare it byte-wise) and can be indexed.
    title_key: str = Field(sa_column=sa.Column(SORT_KEY, nullable=False))
    description: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(DESCRIPTION_MAX), nullable=True)
    )
    # fold_case(description), the search key for `q`: the database's own lower() differs
    # between SQLite and PostgreSQL (and from Python) outside ASCII, this does not.
    description_key: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    completed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    priority: int = Field(
        default=2, sa_column=sa.Column(sa.SmallInteger(), nullable=False, server_default="2")
    )
    due_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    tags: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(JSON_TAGS, nullable=False, server_default=sa.text("'[]'")),
    )
    version: int = Field(
        default=1, sa_column=sa.Column(sa.BigInteger(), nullable=False, server_default="1")
    )
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class IdempotencyKey(SQLModel, table=True):
    """A create request's Idempotency-Key and the response it produced, per user."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.Index("ix_idempotency_keys_expires_at", "expires_at"),)

    user_id: str = Field(sa_column=sa.Column(sa.String(USER_ID_MAX), primary_key=True))
    key: str = Field(sa_column=sa.Column(sa.String(IDEMPOTENCY_KEY_MAX), primary_key=True))
    request_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    task_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))
    response_body: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class TaskCount(SQLModel, table=True):
    """How many tasks a user has per (completed, priority), kept exact by triggers on `tasks`.

    X-Total-Count of a list filtered by status and/or priority only sums at most six of these
    rows instead of counting the user's tasks, so it costs the same at 100 or 100 000 tasks.
    Written by the database alone (revision 0004), so raw SQL keeps it exact too.
    """

    __tablename__ = "task_counts"
    __table_args__ = (sa.CheckConstraint("n >= 0", name="n_not_negative"),)

    user_id: str = Field(sa_column=sa.Column(sa.String(USER_ID_MAX), primary_key=True))
    completed: bool = Field(sa_column=sa.Column(sa.Boolean(), primary_key=True))
    priority: int = Field(
        sa_column=sa.Column(sa.SmallInteger(), primary_key=True, autoincrement=False)
    )
    n: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))


# Set up the ORM instrumentation now, at import, not lazily on the first ORM use. A table model
# built without a query (`Task.model_construct(...)`) reads its attributes through it: when the
# repository did that for UPDATE ... RETURNING, a fresh worker whose first requests were updates
# answered 500 (AttributeError) until some other query configured the mappers.
configure_mappers()
