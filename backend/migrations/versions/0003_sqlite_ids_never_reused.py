"""SQLite: tasks.id AUTOINCREMENT, so the id of a deleted task is never handed out again

Without it SQLite reuses the largest rowid after that row is deleted, and the deleted task's
ETag ("id.version") would match the new task in If-Match. PostgreSQL's identity sequence never
reuses ids, so this revision changes nothing there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_tasks(*, autoincrement: bool) -> None:
    """SQLite cannot alter a primary key in place: copy the table (checks and indexes kept)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "tasks", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_tasks(autoincrement=True)


def downgrade() -> None:
    _rebuild_tasks(autoincrement=False)
