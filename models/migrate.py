"""Run Alembic migrations from async code, sharing our engine's connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _migrate(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _migrate(engine, "downgrade", revision)


async def _migrate(engine: AsyncEngine, action: str, revision: str) -> None:
    if engine.dialect.name != "sqlite":
        async with engine.begin() as connection:
            await connection.run_sync(_run, action, revision)
        return
    # SQLite alters a table by copying it and dropping the original; with foreign keys enforced, that
    # drop would cascade and delete every child row (tasks of a campaign...). The pragma only takes
    # effect outside a transaction, so migrations get their own connection with enforcement off, and
    # the result is checked for broken references before it counts.
    unguarded = create_engine(engine.url.render_as_string(hide_password=False), foreign_keys=False)
    try:
        async with unguarded.begin() as connection:
            await connection.run_sync(_run, action, revision)
            broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"migration left {len(broken)} broken references, e.g. {broken[0]}")
    finally:
        await unguarded.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection  # env.py uses it instead of opening its own
    getattr(command, action)(config, revision)
