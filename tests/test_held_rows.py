"""A change locks its campaign once: the re-plan after it does not ask for the row again, while a later
transaction on the same session, or a re-plan of a campaign nobody locked yet, still takes the lock.
PostgreSQL only: SQLite has no row locks (its BEGIN IMMEDIATE lets one writer in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import TeamMember
from models.db import create_engine, create_session_factory
from services import campaigns, plans
from services.planning.templates import load_library
from tests.conftest import empty_database
from tests.statements import counting_statements

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def pg_sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await empty_database(postgres_url)
    engine = create_engine(postgres_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def _campaign(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as db:
        owner = TeamMember(slack_user_id="UOWNER", name="Owner", timezone="UTC", weekly_availability={})
        db.add(owner)
        await db.flush()
        plan = await campaigns.create_campaign(db=db, name="Launch", template=load_library().resolve("newsletter"),
                                               launch_date=date(2027, 4, 5), owner=owner, now=NOW)
        return plan.campaign.id


def _locks(statements: list[str]) -> int:
    return sum("FOR UPDATE" in statement.upper() for statement in statements)


async def test_a_replan_after_the_change_locked_its_campaign_takes_no_second_lock(
    pg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = pg_sessions
    campaign_id = await _campaign(sessions)
    engine = sessions.kw["bind"]
    async with sessions() as db:
        async with db.begin():
            with counting_statements(engine) as changed:
                campaign = await campaigns.lock_campaign(db, campaign_id)
                await plans.replan(db=db, campaign=campaign, now=NOW, reason="a change")
        async with db.begin():  # the next transaction holds nothing: its re-plan locks again
            with counting_statements(engine) as later:
                campaign = await campaigns.get_campaign(db=db, campaign_id=campaign_id)
                await plans.replan(db=db, campaign=campaign, now=NOW, reason="the daily re-plan")
    assert _locks(changed) == 1, changed
    assert _locks(later) == 1, later
