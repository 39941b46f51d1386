"""Per-request plumbing for Slack listeners: dependencies, the unit of work, the acting member."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.deps import Deps
from handlers.slack import inflight, profiles
from handlers.slack.notify import send_many
from models import TeamMember
from services import authz, changes, home_views, notifications, tasks, team, transactions
from services.team import Profile

T = TypeVar("T")


def inject_deps(deps: Deps) -> Callable[..., Awaitable[None]]:
    """A global middleware that puts the shared dependencies into every request's context."""

    async def middleware(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> None:
        context["deps"] = deps
        await next()

    return middleware


def deps_of(context: AsyncBoltContext) -> Deps:
    return context["deps"]


@dataclass
class Work:
    """One unit of work on behalf of the person who sent the request."""

    db: AsyncSession
    actor: TeamMember
    deps: Deps
    # What Slack said of the newcomers among the people the request names, asked before the transaction
    # opened (handlers.slack.profiles): hand `profile_of(id)` to team.ensure_member.
    newcomers: Mapping[str, Profile | None] = field(default_factory=dict)

    def profile_of(self, slack_user_id: str) -> Profile | None:
        return self.newcomers.get(slack_user_id)

    @property
    def today(self) -> date:
        """Today where the actor is: a date typed by someone in Tokyo means Tokyo's calendar."""
        return datetime.now(ZoneInfo(self.actor.timezone)).date()

    @property
    def is_admin(self) -> bool:
        return self.actor.slack_user_id in self.deps.settings.admin_user_ids

    @property
    def authz_actor(self) -> authz.Actor:
        return authz.Actor(member=self.actor, is_admin=self.is_admin)

    @property
    def holidays(self) -> frozenset[date]:
        return self.deps.settings.team_holidays

    def task_context(self) -> tasks.Context:
        return tasks.Context(actor=self.authz_actor, now=datetime.now(UTC), holidays=self.holidays)

    async def refresh_home(self, *, opened: bool = False) -> None:
        """Publish the actor's App Home afresh once this transaction commits (`services.home_views`)."""
        await home_views.refresh(db=self.db, member_id=self.actor.id, now=datetime.now(UTC), opened=opened)


log = logging.getLogger(__name__)

# A lookup that just failed (rate limit, outage) is not worth repeating at once.
PROFILE_RETRY_DELAY_MS = 60_000


@asynccontextmanager
async def unit_of_work(
    context: AsyncBoltContext, client: AsyncWebClient, *, reading: bool = False, people: Iterable[str] = ()
) -> AsyncIterator[Work]:
    """Open a transaction (committed when the block ends without error) and resolve the actor.

    `people`: Slack ids the request names (an assignee, an owner): those new to the app are looked up in
    Slack with the actor, before the transaction opens (`Work.profile_of`).

    `reading`: the work only reads (a list, a Home). Where the database has reading sessions (SQLite,
    whose writers queue for one lock), it runs in one that does not take the write lock, provided the
    actor is known already: a first contact writes the member, so it takes the usual way.
    """
    deps = deps_of(context)
    user_id = context.user_id or ""
    async with inflight.slot(deps.inflight):  # a slot, or Busy after SLOT_WAIT
        new = await profiles.newcomers(deps, client, [user_id, *people])  # before the transaction opens
        sessions = deps.sessions
        if reading and deps.reading_sessions is not None and user_id not in new:
            sessions = deps.reading_sessions
        async with sessions.begin() as db:
            actor = await team.ensure_member(db=db, slack_user_id=user_id, profile=new.get(user_id))
            yield Work(db=db, actor=actor, deps=deps, newcomers=new)
    await deps.live.publish(changes.changed_in(db))  # committed: open dashboards read afresh (never raises)
    await send_many(deps, client, notifications.written_in(db))  # committed: hand them out now
    if actor.profile_synced_at is None:
        if deps.queue is not None:
            await _refresh_profile_later(deps, actor)
    else:
        profiles.remember(deps, [user_id])


async def in_unit_of_work(
    context: AsyncBoltContext, client: AsyncWebClient, body: Callable[[Work], Awaitable[T]], *, reading: bool = False,
    people: Iterable[str] = (),
) -> T:
    """`body` in a `unit_of_work`, run again whole (a new transaction) if the database aborted it to
    break a deadlock: two changes to one campaign can still collide, and the person should not hear of
    it. `body` must send nothing before the commit; what it returns is what the caller needs after it."""

    async def once() -> T:
        async with unit_of_work(context, client, reading=reading, people=people) as work:
            return await body(work)

    return await transactions.retrying(once)


async def _refresh_profile_later(deps: Deps, member: TeamMember) -> None:
    """After the commit, so the job finds the row. Best effort: the next contact tries again anyway."""
    assert deps.queue is not None
    try:
        await deps.queue.enqueue("team.refresh_profile", member_id=member.id, delay_ms=PROFILE_RETRY_DELAY_MS)
    except Exception:
        log.warning("could not queue a profile refresh for %s", member.slack_user_id, exc_info=True)
