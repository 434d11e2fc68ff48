"""case-folded search keys: tasks.description_key, title_key re-folded (specs/database/schema.md)

`q` used to compare Python's lower(title) with the database's lower(description): outside ASCII
those differ between SQLite and PostgreSQL ("ΟΔΟΣ", "İ"). Both keys are now Unicode case
folding computed by the application, so search and the title sort agree on both databases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# A lightweight view of the table, frozen here so later model changes cannot alter this step.
tasks = sa.table(
    "tasks",
    sa.column("id", sa.BigInteger()),
    sa.column("title", sa.String()),
    sa.column("title_key", sa.String()),
    sa.column("description", sa.String()),
    sa.column("description_key", sa.Text()),
)


def _rekey(fold: Callable[[str], str], *, with_description: bool) -> None:
    """Recompute the keys of every row, a batch at a time in id order."""
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(tasks.c.id, tasks.c.title, tasks.c.description)
            .where(tasks.c.id > last_id)
            .order_by(tasks.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            values: dict[str, str | None] = {"title_key": fold(row.title)}
            if with_description:
                values["description_key"] = (
                    None if row.description is None else fold(row.description)
                )
            connection.execute(sa.update(tasks).where(tasks.c.id == row.id).values(**values))
        last_id = rows[-1].id


def upgrade() -> None:
    op.add_column("tasks", sa.Column("description_key", sa.Text(), nullable=True))
    _rekey(str.casefold, with_description=True)


def downgrade() -> None:
    _rekey(str.lower, with_description=False)
    op.drop_column("tasks", "description_key")
