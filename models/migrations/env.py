"""Alembic environment: uses the connection handed over by models.migrate, or DATABASE_URL for the CLI.

The app migrates through models.migrate (`campaign-manager migrate`, or on start), which hands the
connection over. Running `alembic` by hand reads DATABASE_URL itself: models do not import the app's
settings (bot/), which sit above them.
"""

from __future__ import annotations

import asyncio
import os

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


async def run_from_environment() -> None:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL to run alembic by hand, or run `campaign-manager migrate`.")
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


shared = context.config.attributes.get("connection")
if shared is not None:
    run_with(shared)
else:
    asyncio.run(run_from_environment())
