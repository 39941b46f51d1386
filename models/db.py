"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

One request or one job is one transaction: callers use `sessions.begin()`, which commits on success
and rolls back on error. Services never commit.

When PostgreSQL is down, waiting is the worst answer: a connection attempt gives up after
CONNECT_TIMEOUT_SECONDS and a wait for a pooled connection after POOL_TIMEOUT_SECONDS, so a Slack
listener can still say "can't reach the database" while Slack is listening. `is_unreachable` tells
such failures (worth a retry later) from errors in what was asked.

Waiting on the server is bounded too: `statement_timeout_ms` makes PostgreSQL cancel a statement (a lock
wait included) that runs longer, so a stuck query ends in an error instead of holding a pooled connection
and its locks for good. Every connection names its process (`application_name`), so `pg_stat_activity`
shows which instance of a fleet holds which connections.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_errors
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

CONNECT_TIMEOUT_SECONDS = 2.0  # a local or same-region server answers in milliseconds
POOL_TIMEOUT_SECONDS = 3.0  # every pooled connection busy for this long: the server is not keeping up


# Execution option marking connections of a `reads_first` session factory (see create_session_factory).
READS_FIRST = "campaign_manager_reads_first"


def create_engine(
    database_url: str, *, pool_size: int = 10, max_overflow: int | None = None, echo: bool = False,
    foreign_keys: bool = True, statement_timeout_ms: int | None = None,
) -> AsyncEngine:
    """`foreign_keys=False` only for SQLite migrations: see models.migrate. PostgreSQL opens at most
    `pool_size + max_overflow` connections (`max_overflow` defaults to `pool_size`).

    `statement_timeout_ms` (PostgreSQL): None or 0 leaves the server's own (none, unless configured), which
    is what migrations want; the app and its workers pass DATABASE_STATEMENT_TIMEOUT_MS. Connections are
    checked before use (`pool_pre_ping`), so after a server restart or failover a dead one is replaced
    instead of failing the request that drew it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url, echo=echo, foreign_keys=foreign_keys)
    server_settings = {"application_name": application_name()}
    if statement_timeout_ms:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    return create_async_engine(
        database_url, echo=echo, pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow, pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "server_settings": server_settings},
        hide_parameters=True,  # an error's text would hold the values bound (message text) and get logged
    )


def application_name() -> str:
    """`campaign-manager/<host>/<pid>`: in a container the host name is the container's id. PostgreSQL
    keeps 63 bytes of it; the pid, at the end, is what tells two processes on one host apart."""
    host = socket.gethostname()[:32]
    return f"campaign-manager/{host}/{os.getpid()}"


def _server_gone_errors() -> tuple[type[BaseException], ...]:
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - asyncpg is a dependency; SQLite-only installs may lack it
        return ()
    # 08xxx connection exceptions (a connection lost mid-query included), 57P01-03 the server shutting down
    # or starting up, 53300 too many connections. Not 57014: a cancelled query is about the query.
    return (pg.PostgresConnectionError, pg.AdminShutdownError, pg.CrashShutdownError, pg.CannotConnectNowError,
            pg.TooManyConnectionsError)


_SERVER_GONE = _server_gone_errors()


def is_unreachable(error: BaseException) -> bool:
    """True when `error` means the database could not be reached or the connection was lost: worth
    trying again later, and nothing the person asked for is wrong.

    asyncpg raises plain OSError/ConnectionRefusedError when it cannot connect (SQLAlchemy does not wrap
    those), its own errors when the server shuts down, and SQLAlchemy marks a connection lost mid-way
    as `connection_invalidated`; a full pool times out with SQLAlchemy's TimeoutError. Ask it about
    errors of database work: an OSError from an HTTP call (aiohttp's connection errors) looks the same.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_errors.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (OSError, sa_errors.TimeoutError, *_SERVER_GONE)):
            return True
        # SQLAlchemy keeps the driver's error in `orig` and raises its own `from` it.
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and id(orig) not in seen else current.__cause__
    return False


def _sqlite_engine(database_url: str, *, echo: bool, foreign_keys: bool) -> AsyncEngine:
    in_memory = ":memory:" in database_url or database_url.rstrip("/").endswith("sqlite+aiosqlite:")
    # timeout: how long a writer waits for SQLite's single write lock before giving up.
    engine = create_async_engine(database_url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True)

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
        # A unit of work that reads first starts without the write lock, so reads do not queue behind
        # writes (WAL lets them run side by side); should it write after all (a first contact), SQLite
        # takes the lock then, and a conflict ends in "database is locked", which is retried.
        reads_first = connection.get_execution_options().get(READS_FIRST)
        connection.exec_driver_sql("BEGIN DEFERRED" if reads_first else "BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: AsyncEngine, *, reads_first: bool = False) -> async_sessionmaker[AsyncSession]:
    """`reads_first`: see `reading_session_factory`."""
    bind = engine.execution_options(**{READS_FIRST: True}) if reads_first else engine
    # expire_on_commit=False: objects stay readable after the unit of work ends (for rendering).
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=True)


def reading_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession] | None:
    """Sessions for units of work that only read, where that makes a difference: on SQLite they begin
    without the write lock, so they do not queue behind writes. PostgreSQL readers never wait for
    writers, so there it is None (the usual sessions serve)."""
    return create_session_factory(engine, reads_first=True) if engine.dialect.name == "sqlite" else None
