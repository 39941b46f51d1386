"""The id of the unit of work under way (an HTTP request, a sweep), for the log lines it and its jobs write.

One context variable holds it. The web middleware (`handlers.web.request_ids`) sets it for each request,
the sweeper for each sweep; asyncio tasks a request starts (Bolt's listeners after the ack) and
`asyncio.to_thread` calls (the queue's send) copy it, so a job's message carries it (the Dramatiq
middleware in `bot.logs`) and the worker sets it again before the job runs. Every log record gets it
from a filter on the handler (`bot.logs`), library records included.

This module imports nothing, so `bot/` and `handlers/` can both use it without importing each other.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

HEADER = "X-Request-Id"
# A caller's id is kept only when it cannot garble a log line or a header: short, and of plain characters.
_ACCEPTED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}", re.ASCII)

current: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_id(prefix: str = "") -> str:
    """A fresh id; `prefix` names what started the work when it is not a request (`sweep-…`)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}" if prefix else uuid.uuid4().hex


def accepted(offered: str | None) -> str | None:
    """`offered` (an incoming X-Request-Id) when it is well-formed, else None: a new id is made instead."""
    if offered is None or not _ACCEPTED.fullmatch(offered):
        return None
    return offered


@contextlib.contextmanager
def bound(request_id: str | None) -> Iterator[str | None]:
    """Log lines written inside the block (and in tasks and jobs it starts) carry `request_id`."""
    token = current.set(request_id)
    try:
        yield request_id
    finally:
        current.reset(token)
