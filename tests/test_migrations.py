"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from models import Base, migrate
from models.db import create_engine


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)
            )
        assert differences == []
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_indexes_the_design_asks_for_exist(database_url: str) -> None:
    wanted = {
        ("tasks", ("campaign_id", "status")), ("tasks", ("assignee_id", "due_at")),
        ("approvals", ("status", "deadline")), ("notifications", ("recipient_id", "sent_at")),
        ("notifications", ("scheduled_for", "sent_at")),
    }
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda sync: {
                    (table, tuple(index["column_names"]))
                    for table in ("tasks", "approvals", "notifications")
                    for index in inspect(sync).get_indexes(table)
                }
            )
        assert wanted <= found
    finally:
        await engine.dispose()


async def test_downgrade_to_nothing_and_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}")
    try:
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
