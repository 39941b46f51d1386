"""Hold the database still from a test, so the app's units of work wait on it for as long as the test says.

A definite alternative to "a slow database": on SQLite the test takes the one write lock (every unit of
work begins with BEGIN IMMEDIATE), on PostgreSQL an exclusive lock on team_members (every unit of work
first looks up the acting member). Work that has started waits until the block ends, and no longer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from models.db import create_engine


@asynccontextmanager
async def database_held(url: str) -> AsyncIterator[None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()  # SQLite: BEGIN IMMEDIATE, the write lock (models.db)
            if engine.dialect.name == "postgresql":
                await connection.execute(text("LOCK TABLE team_members IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()
