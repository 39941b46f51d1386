"""The retry of a whole transaction: exactly on lock conflicts, and never more than the bound."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from models import TeamMember
from models.db import create_engine, create_session_factory
from services import transactions
from tests.conftest import empty_database


class PgError(Exception):
    """Stands in for the driver's error: what `is_retryable` reads is its SQLSTATE."""

    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def pg_error(sqlstate: str | None, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("UPDATE tasks ...", None, PgError(sqlstate))


DEADLOCK, SERIALIZATION = pg_error("40P01"), pg_error("40001")
SQLITE_LOCKED = OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))


class Flaky:
    """A transaction body that fails with `errors`, one per run, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors, self.runs = list(errors), 0

    async def __call__(self) -> str:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.mark.parametrize("error", [DEADLOCK, SERIALIZATION, SQLITE_LOCKED], ids=["40P01", "40001", "sqlite-locked"])
async def test_a_lock_conflict_is_run_again_until_it_goes_through(error: DBAPIError) -> None:
    body, sleeps = Flaky(error, error), Sleeps()
    assert await transactions.retrying(body, attempts=3, sleep=sleeps) == "done"
    assert body.runs == 3
    assert len(sleeps.delays) == 2


async def test_it_gives_up_after_the_bound_with_the_last_error() -> None:
    body, sleeps = Flaky(*[pg_error("40P01") for _ in range(10)]), Sleeps()
    with pytest.raises(DBAPIError) as raised:
        await transactions.retrying(body, attempts=3, sleep=sleeps)
    assert body.runs == 3
    assert len(sleeps.delays) == 2
    assert raised.value is not DEADLOCK and getattr(raised.value.orig, "sqlstate", None) == "40P01"


@pytest.mark.parametrize("error", [
    pg_error("23505", IntegrityError),  # a unique violation fails the same way every time
    pg_error("42P01"),  # undefined table
    pg_error(None),  # a connection lost mid-query: the outage handling's business, not a conflict
    OperationalError("SELECT 1", None, sqlite3.OperationalError("no such table: tasks")),
    ValueError("not a database error at all"),
], ids=["unique-violation", "undefined-table", "no-sqlstate", "sqlite-other", "not-dbapi"])
async def test_other_errors_are_not_retried(error: Exception) -> None:
    body, sleeps = Flaky(error), Sleeps()
    with pytest.raises(type(error)):
        await transactions.retrying(body, attempts=3, sleep=sleeps)
    assert body.runs == 1
    assert sleeps.delays == []


async def test_the_backoff_doubles_with_jitter() -> None:
    for attempt in (1, 2, 3):
        middle = transactions.BASE_DELAY_SECONDS * 2 ** (attempt - 1)
        delays = [transactions.backoff(attempt) for _ in range(200)]
        assert all(0.5 * middle <= delay <= 1.5 * middle for delay in delays)
        assert len(set(delays)) > 1, "jitter: two colliding transactions should not wake at the same moment"


# ---------------------------------------------------------------- a real deadlock on PostgreSQL


@pytest.fixture
async def pg_sessions(postgres_url: str) -> AsyncIterator[tuple[AsyncSession, AsyncSession]]:
    await empty_database(postgres_url)
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    async with sessions.begin() as db:
        db.add_all([TeamMember(slack_user_id="U1", name="one"), TeamMember(slack_user_id="U2", name="two")])
    async with sessions() as first, sessions() as second:
        yield first, second
    await engine.dispose()


async def _rename(db: AsyncSession, slack_user_id: str, name: str) -> None:
    await db.execute(update(TeamMember).where(TeamMember.slack_user_id == slack_user_id).values(name=name))


async def test_a_real_postgresql_deadlock_is_recognised(pg_sessions: tuple[AsyncSession, AsyncSession]) -> None:
    """What asyncpg raises through SQLAlchemy is what `is_retryable` reads, not only our stand-in."""
    first, second = pg_sessions
    await first.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
    await _rename(first, "U1", "first")
    await _rename(second, "U2", "second")
    # Each now waits for the row the other holds: PostgreSQL aborts one of them, the other goes through.
    results = await asyncio.gather(_rename(first, "U2", "first"), _rename(second, "U1", "second"),
                                   return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert len(errors) == 1, results
    assert transactions.is_retryable(errors[0])
    survivor = second if results[0] is errors[0] else first
    assert len((await survivor.scalars(select(TeamMember))).all()) == 2
