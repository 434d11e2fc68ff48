"""task_quota_allows(): the per-user task quota, checked exactly inside a create's INSERT

A create is `INSERT INTO tasks ... SELECT ... WHERE task_quota_allows(:user_id, :max_tasks)`
(one statement, one round trip). The function takes a transaction-level advisory lock for the
user, so one user's creates run their check one at a time, and then reads the user's count from
task_counts. A VOLATILE PL/pgSQL function takes a fresh snapshot for each statement it runs at
READ COMMITTED, so that read sees every create that committed while this one waited for the
lock: the quota is exact, not "exact unless creates overlap". The lock is released when the
create's transaction ends (autocommit: right after the statement).

Lock order: a create takes the advisory lock, then (its trigger) the counter row; other writes
take only counter rows; so no two writes wait for each other in opposite orders.

SQLite has one writer at a time: the same check is a plain subquery there, and this revision
changes nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The advisory lock's first key, 1952543595 ("task" in ASCII), so it cannot collide with
# another application's single-key advisory locks on the same database.
QUOTA_FUNCTION = """
CREATE FUNCTION task_quota_allows(p_user_id varchar, p_max_tasks integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    total bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1952543595, hashtext(p_user_id));
    SELECT coalesce(sum(n), 0) INTO total FROM task_counts WHERE user_id = p_user_id;
    RETURN total < p_max_tasks;
END
$body$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(QUOTA_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION task_quota_allows(varchar, integer)")
