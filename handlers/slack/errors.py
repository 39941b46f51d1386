"""The one place that turns a failure inside a Slack listener into a message for the person.

Domain errors (bad input, not found, not allowed) are theirs to fix: show the message. A database that
cannot be reached (down, restarting, every connection busy) is nobody's mistake and passes: say so and
ask them to try again. Anything else is ours: log it with a short id and show only the id, never a trace.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond

from blocks.help import error_message
from blocks.text import escape
from models.db import is_unreachable
from services.errors import DomainError

log = logging.getLogger(__name__)

DATABASE_UNREACHABLE = "I can't reach the database right now; try again in a moment."


def new_error_id() -> str:
    return secrets.token_hex(4)


def describe(error: Exception) -> str:
    """The escaped text a person sees for this error (logging the unexpected ones)."""
    if isinstance(error, DomainError):
        return escape(str(error))
    if is_unreachable(error) and not isinstance(error, aiohttp.ClientError):  # not a Slack call that failed
        log.warning("database unreachable: %r", error)  # an outage is logged by whoever watches the database
        return DATABASE_UNREACHABLE
    error_id = new_error_id()
    log.error("unhandled error %s: %r", error_id, error, exc_info=error, extra={"error_id": error_id})
    return f"Something went wrong on our side. If it keeps happening, tell your admin the error id `{error_id}`."


@asynccontextmanager
async def replying_errors(respond: AsyncRespond | None) -> AsyncIterator[None]:
    """Wrap a listener's body after `ack()`: a failure becomes an ephemeral reply (or, for events,
    which have nobody to reply to, a log line), not a raise.

    Why not leave it to Bolt's error handler: when a listener acks and then fails within Bolt's 10 ms
    ack-polling tick, Bolt's async runner resets the ack and answers Slack 404 ("dispatch_failed"
    shown to the person) on top of our message. Catching here keeps the 200.
    """
    try:
        yield
    except Exception as error:
        text = describe(error)
        if respond is not None:
            await _reply(respond, text)


async def _reply(respond: AsyncRespond, text: str) -> None:
    try:
        await respond(**error_message(text), response_type="ephemeral", replace_original=False)
    except Exception:
        log.warning("could not deliver an error message to the user", exc_info=True)


async def handle_listener_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None) -> None:
    """Bolt's backstop for failures outside `replying_errors` (middleware, listeners without it)."""
    text = describe(error)
    has_response_url = bool(body.get("response_url") or body.get("response_urls"))
    if respond is None or not has_response_url:
        return  # events and view submissions have nowhere to reply; describe() already logged it
    await _reply(respond, text)
