"""The API's units of work: a read in a reading session, a change in one transaction of its own.

A change runs like a Slack command's (`handlers.slack.context.unit_of_work`): the services write the
domain rows and any outbox rows together; after the commit the open dashboards are told what changed
(`deps.live`) and the outbox rows are handed to the delivery jobs. A body aborted by the database to
break a deadlock runs again whole (`services.transactions.retrying`), so it must send nothing itself.

Outbox rows of an API change go to the queue when a worker consumes it; in embedded mode without a
worker they wait for the sweep (the inline delivery that Slack commands use needs the Slack client,
which lives with the Slack handlers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.deps import Deps
from handlers.jobs.notifications import hand_out
from handlers.web import DEPS_KEY
from handlers.web.api_v1.registry import Call
from models import TeamMember
from services import authz, changes, notifications, tasks, transactions
from services.errors import NotFound

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ApiWork:
    db: AsyncSession
    actor: authz.Actor  # the token's member, loaded in this session
    deps: Deps
    now: datetime

    @property
    def member(self) -> TeamMember:
        return self.actor.member

    @property
    def holidays(self) -> frozenset[date]:
        return self.deps.settings.team_holidays

    def task_context(self) -> tasks.Context:
        return tasks.Context(actor=self.actor, now=self.now, holidays=self.holidays)


async def reading(call: Call, body: Callable[[ApiWork], Awaitable[T]]) -> T:
    deps = call.request.app[DEPS_KEY]
    async with (deps.reading_sessions or deps.sessions).begin() as db:
        return await body(ApiWork(db=db, actor=call.caller.actor, deps=deps, now=datetime.now(UTC)))


async def changing(call: Call, body: Callable[[ApiWork], Awaitable[T]]) -> T:
    deps = call.request.app[DEPS_KEY]
    written: list[int] = []
    changed: set[int] = set()

    async def once() -> T:
        async with deps.sessions.begin() as db:
            member = await db.get(TeamMember, call.caller.member.id)  # fresh, and in this session
            if member is None:
                raise NotFound("The member this token acts as is gone.")
            actor = authz.Actor(member=member, is_admin=call.caller.is_admin)
            result = await body(ApiWork(db=db, actor=actor, deps=deps, now=datetime.now(UTC)))
        written[:] = notifications.written_in(db)
        changed.clear()
        changed.update(changes.changed_in(db))
        return result

    result = await transactions.retrying(once)
    await deps.live.publish(changed)  # committed: open dashboards read afresh (never raises)
    await _hand_out(deps, written)
    return result


async def _hand_out(deps: Deps, notification_ids: list[int]) -> None:
    queue = deps.queue
    if not notification_ids or queue is None or not queue.has_consumer:
        return  # pending in the outbox: the sweep hands them out
    try:
        await hand_out(queue, notification_ids)
    except Exception:  # the rows stay pending for the sweep
        log.warning("could not hand notifications %s over for delivery", notification_ids, exc_info=True)
