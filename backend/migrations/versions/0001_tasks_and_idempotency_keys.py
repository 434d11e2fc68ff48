"""tasks and idempotency_keys (specs/database/schema.md)

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.tables import BIGINT_ID, JSON_TAGS, SORT_KEY, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", BIGINT_ID, primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("title_key", SORT_KEY, nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="2"),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("tags", JSON_TAGS, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("length(user_id) BETWEEN 1 AND 128", name="user_id_length"),
        sa.CheckConstraint("length(title) BETWEEN 1 AND 200", name="title_length"),
        sa.CheckConstraint(
            "description IS NULL OR length(description) <= 1000", name="description_length"
        ),
        sa.CheckConstraint("priority IN (1, 2, 3)", name="priority_rank"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_at", "id"])
    op.create_index("ix_tasks_user_updated", "tasks", ["user_id", "updated_at", "id"])
    op.create_index("ix_tasks_user_due", "tasks", ["user_id", "due_at", "id"])
    op.create_index("ix_tasks_user_priority", "tasks", ["user_id", "priority", "id"])
    op.create_index("ix_tasks_user_title", "tasks", ["user_id", "title_key", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_tasks_tags",
            "tasks",
            ["tags"],
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("tasks")
