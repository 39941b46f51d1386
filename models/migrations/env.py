"""Alembic environment: uses the connection handed over by models.migrate, or DATABASE_URL for the CLI."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from models import Base
from models.db import create_engine

target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    from bot.settings import load_settings  # only the alembic CLI path needs settings

    engine = create_engine(load_settings().database_url)
    async with engine.begin() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


shared = context.config.attributes.get("connection")
if shared is not None:
    run_with(shared)
else:
    asyncio.run(run_from_settings())
