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


async def _upgrade_with_rows(url: str) -> dict:
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO team_members (slack_user_id, name, skills, timezone, weekly_availability, "
                "max_concurrent_tasks, is_active) VALUES ('U1', 'Old', '[]', 'UTC', '{}', 5, true)"))
            await connection.execute(text(
                "INSERT INTO campaigns (name, template, launch_date, status, owner_id) "
                "VALUES ('Old campaign', 'newsletter', '2027-01-01', 'planning', 1)"))
            await connection.execute(text(
                "INSERT INTO tasks (campaign_id, title, priority, status, is_milestone, duration_hours, "
                "on_critical_path) VALUES (1, 'Old task', 'normal', 'todo', false, 8, false)"))
            await connection.execute(text(
                "INSERT INTO tasks (campaign_id, title, priority, status, is_milestone, duration_hours, "
                "on_critical_path) VALUES (1, 'Second task', 'normal', 'todo', false, 8, false)"))
            await connection.execute(text(
                "INSERT INTO task_dependencies (predecessor_id, successor_id, lag_hours) VALUES (1, 2, 0)"))
            await connection.execute(text(
                "INSERT INTO timelines (campaign_id, template, milestones, critical_path, buffer_hours, "
                "buffer_consumed_pct, compressed_days) VALUES (1, 'newsletter', '[]', '[]', 8, 0, 0)"))
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            # SQLite rebuilds altered tables; with foreign keys enforced that used to cascade-delete children.
            task = (await connection.execute(text("SELECT due_fixed, template_key FROM tasks WHERE id = 1"))).one()
            links = (await connection.execute(text("SELECT count(*) FROM task_dependencies"))).scalar_one()
            assert links == 1
            timeline = (await connection.execute(
                text("SELECT progress_pct, alert_level, approval_stages FROM timelines"))).one()
        return {"task": tuple(task), "timeline": tuple(timeline)}
    finally:
        await engine.dispose()


def test_upgrading_a_database_with_rows_keeps_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from tests import services

    for url in (f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", services.create_postgres_database()):
        try:
            found = asyncio.run(_upgrade_with_rows(url))
        finally:
            if url.startswith("postgresql"):
                services.drop_postgres_database(url)
        assert found["task"][0] in (False, 0) and found["task"][1] is None
        assert found["timeline"][0] == 0 and found["timeline"][1] == 0
        assert found["timeline"][2] in ([], "[]")
