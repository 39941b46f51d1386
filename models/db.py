"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

One request or one job is one transaction: callers use `sessions.begin()`, which commits on success
and rolls back on error. Services never commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def create_engine(
    database_url: str, *, pool_size: int = 10, echo: bool = False, foreign_keys: bool = True
) -> AsyncEngine:
    """`foreign_keys=False` only for SQLite migrations: see models.migrate."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url, echo=echo, foreign_keys=foreign_keys)
    return create_async_engine(
        database_url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def _sqlite_engine(database_url: str, *, echo: bool, foreign_keys: bool) -> AsyncEngine:
    in_memory = ":memory:" in database_url or database_url.rstrip("/").endswith("sqlite+aiosqlite:")
    # timeout: how long a writer waits for SQLite's single write lock before giving up.
    engine = create_async_engine(database_url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE below is what runs:
        # a deferred BEGIN that later upgrades to a write lock fails at once under contention
        # instead of waiting out the busy timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the unit of work ends (for rendering).
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
