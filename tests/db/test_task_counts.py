"""task_counts (revision 0004): its triggers keep it equal to count(*) on both databases.

Every case writes with raw SQL, the way tools/bench.py seeds and cleans up, and compares the
whole table with a GROUP BY over tasks after each statement. The API's own write paths are
checked in tests/api/test_task_counts.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic import command

from backend.db import sync_url
from backend.migrate import alembic_config, upgrade_to_head

Counts = dict[tuple[str, bool, int], int]

INSERT = sa.text(
    "INSERT INTO tasks (user_id, title, title_key, completed, priority, tags, version, "
    "created_at, updated_at) VALUES (:user_id, 'task', 'task', :completed, :priority, '[]', 1, "
    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """A connection whose block is one committed transaction."""
    engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def stored_counts(url: str) -> Counts:
    """task_counts as stored, rows at zero left out (a bucket that emptied keeps its row)."""
    with connect(url) as connection:
        rows = connection.execute(
            sa.text("SELECT user_id, completed, priority, n FROM task_counts")
        )
        return {(user, bool(done), priority): n for user, done, priority, n in rows if n != 0}


def true_counts(url: str) -> Counts:
    with connect(url) as connection:
        rows = connection.execute(
            sa.text(
                "SELECT user_id, completed, priority, count(*) FROM tasks "
                "GROUP BY user_id, completed, priority"
            )
        )
        return {(user, bool(done), priority): n for user, done, priority, n in rows}


def assert_exact(url: str) -> Counts:
    counts = true_counts(url)
    assert stored_counts(url) == counts
    return counts


def insert_mix(connection: sa.Connection, user_id: str, n: int) -> None:
    """n tasks in one multi-row statement, spread over all six (completed, priority) buckets."""
    connection.execute(
        INSERT,
        [
            {"user_id": user_id, "completed": index % 2 == 0, "priority": 1 + index % 3}
            for index in range(n)
        ],
    )


def test_counts_follow_raw_sql_inserts_updates_and_deletes(scratch_url: str) -> None:
    upgrade_to_head(scratch_url)
    assert assert_exact(scratch_url) == {}
    with connect(scratch_url) as connection:
        insert_mix(connection, "u1", 50)
        insert_mix(connection, "u2", 7)
    counts = assert_exact(scratch_url)
    assert sum(counts.values()) == 57 and len(counts) == 12

    statements = [
        # one row, then many rows, moved between buckets
        "UPDATE tasks SET completed = NOT completed WHERE id = (SELECT min(id) FROM tasks)",
        "UPDATE tasks SET priority = 3 WHERE user_id = 'u1' AND priority = 1",
        "UPDATE tasks SET completed = NOT completed WHERE user_id = 'u1'",
        # to another owner (not an API path, but SQL can do it)
        "UPDATE tasks SET user_id = 'u3' WHERE user_id = 'u2' AND priority = 2",
        # no bucket changes: counts untouched
        "UPDATE tasks SET title = 'renamed', version = version + 1",
        "UPDATE tasks SET completed = completed, priority = priority",
        # two rows swap buckets in one statement: the net change is zero
        "UPDATE tasks SET completed = NOT completed WHERE id IN "
        "(SELECT min(id) FROM tasks WHERE user_id = 'u1' GROUP BY completed)",
        "DELETE FROM tasks WHERE id = (SELECT max(id) FROM tasks)",
        "DELETE FROM tasks WHERE user_id = 'u1' AND completed",
        "UPDATE tasks SET version = version + 1 WHERE user_id = 'nobody'",
        "DELETE FROM tasks WHERE user_id = 'nobody'",
    ]
    for statement in statements:
        with connect(scratch_url) as connection:
            connection.execute(sa.text(statement))
        assert stored_counts(scratch_url) == true_counts(scratch_url), statement

    with connect(scratch_url) as connection:
        connection.execute(sa.text("DELETE FROM tasks"))
    assert assert_exact(scratch_url) == {}


def test_a_rolled_back_write_leaves_the_counts_alone(scratch_url: str) -> None:
    upgrade_to_head(scratch_url)
    with connect(scratch_url) as connection:
        insert_mix(connection, "u1", 6)
    before = assert_exact(scratch_url)
    engine = sa.create_engine(sync_url(scratch_url), poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            insert_mix(connection, "u1", 6)
            connection.execute(sa.text("DELETE FROM tasks WHERE priority = 1"))
            connection.rollback()
    finally:
        engine.dispose()
    assert assert_exact(scratch_url) == before


def test_0004_backfills_rows_written_before_it_and_downgrade_removes_it(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, "0003")
    with connect(scratch_url) as connection:
        insert_mix(connection, "early", 20)
        insert_mix(connection, "other", 3)
    command.upgrade(config, "0004")
    counts = assert_exact(scratch_url)
    assert sum(counts.values()) == 23

    with connect(scratch_url) as connection:
        insert_mix(connection, "early", 5)
        connection.execute(sa.text("DELETE FROM tasks WHERE user_id = 'other'"))
    assert sum(assert_exact(scratch_url).values()) == 25

    command.downgrade(config, "0003")
    with connect(scratch_url) as connection:
        assert "task_counts" not in sa.inspect(connection).get_table_names()
        # No trigger is left behind pointing at the dropped table: writes still work.
        insert_mix(connection, "late", 4)
        connection.execute(sa.text("UPDATE tasks SET completed = NOT completed"))
        connection.execute(sa.text("DELETE FROM tasks WHERE user_id = 'early' AND priority = 1"))
    command.upgrade(config, "0004")
    assert sum(assert_exact(scratch_url).values()) == 25 + 4 - 9


def test_a_missing_counter_row_fails_the_write_instead_of_drifting(scratch_url: str) -> None:
    """Counts altered by hand are an error at the next decrement, not a silently wrong total."""
    upgrade_to_head(scratch_url)
    with connect(scratch_url) as connection:
        insert_mix(connection, "u1", 3)
        connection.execute(sa.text("DELETE FROM task_counts"))
    with (
        pytest.raises(sa.exc.DBAPIError, match="task_counts has no row"),
        connect(scratch_url) as connection,
    ):
        connection.execute(sa.text("DELETE FROM tasks WHERE user_id = 'u1'"))
    with connect(scratch_url) as connection:
        remaining = connection.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one()
    assert remaining == 3


def test_counts_cannot_go_negative(scratch_url: str) -> None:
    upgrade_to_head(scratch_url)
    with connect(scratch_url) as connection:
        insert_mix(connection, "u1", 1)
    with pytest.raises(sa.exc.IntegrityError), connect(scratch_url) as connection:
        connection.execute(sa.text("UPDATE task_counts SET n = -1"))


def test_truncate_empties_the_counts_on_postgres(scratch_postgres: str) -> None:
    """TRUNCATE fires no row or DELETE triggers; its own trigger clears the counts."""
    upgrade_to_head(scratch_postgres)
    with connect(scratch_postgres) as connection:
        insert_mix(connection, "u1", 9)
    assert assert_exact(scratch_postgres) != {}
    with connect(scratch_postgres) as connection:
        connection.execute(sa.text("TRUNCATE tasks"))
        assert connection.execute(sa.text("SELECT count(*) FROM task_counts")).scalar_one() == 0
    with connect(scratch_postgres) as connection:
        insert_mix(connection, "u1", 2)
    assert sum(assert_exact(scratch_postgres).values()) == 2
