"""What every entry point needs from the composition root, handed over explicitly (no globals).

Typed with the ports of `handlers.ports`, which `bot/` implements: handlers never import `bot/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.live import LiveHub
from handlers.ports import Config, JobQueue
from services.planning.templates import TemplateLibrary

if TYPE_CHECKING:
    from handlers.jobs.environment import Outbound
    from handlers.slack.inflight import ListenerWork


@dataclass
class Deps:
    settings: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # For units of work that read first (lists, the Home): on SQLite they do not queue for the write lock.
    reading_sessions: async_sessionmaker[AsyncSession] | None = None
    redis: Any | None = None  # redis.asyncio.Redis in Redis mode
    queue: JobQueue | None = None  # the broker and, when embedded, its in-process worker
    templates: TemplateLibrary = field(default_factory=TemplateLibrary)
    inflight: ListenerWork | None = None  # bounds and tracks Slack listener work; None = unbounded (console)
    known_members: set[str] = field(default_factory=set)  # Slack ids seen with a profile: handlers.slack.profiles
    # The mailer and pacer of the inline delivery (no worker: handlers.slack.notify), built on first use and
    # kept so the pacer's slots outlive one unit of work.
    inline_outbound: Outbound | None = None
    live: LiveHub = field(default_factory=LiveHub)  # changes told to open dashboard pages (handlers.live)
