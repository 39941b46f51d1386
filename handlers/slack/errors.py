"""The one place that turns a failure inside a Slack listener into a message for the person.

Domain errors (bad input, not found, not allowed) are theirs to fix: show the message. A database that
cannot be reached (down, restarting, every connection busy) is nobody's mistake and passes: say so and
ask them to try again. Anything else is ours: log it with a short id and show only the id, never a trace.

Where the answer goes depends only on where the request came from (`Source`), and `answer_error` is the
one function that knows the right way for each:
- a slash command, or a click under a message (both carry a response_url): an ephemeral reply;
- a click on the App Home tab (no response_url, nothing to reply under): a notice modal opened with the
  click's own trigger_id;
- a modal submission not acked yet: the error under its field, in the ack;
- an event: nobody to answer; the error is logged.
(A form acked with a "working" view before its work failed is answered by `forms.answer_in_time`, which
turns that view into the notice.)
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.help import error_message
from blocks.modals import notice_view
from blocks.text import escape, truncate
from models.db import is_unreachable
from services.errors import DomainError
from services.fields import InvalidField

log = logging.getLogger(__name__)

DATABASE_UNREACHABLE = "I can't reach the database right now; try again in a moment."
# A field's error is one short line under the input. 200, not 150: it is what every form has shown so far,
# and the longest domain messages (a quoted ref and its example, an error id) fit without an ellipsis.
ERROR_LIMIT = 200


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


def errors_for(error: Exception, *, fields: Collection[str], fallback: str) -> dict[str, str]:
    """A form's field errors: under the failing field, or the `fallback` one.

    Domain errors read as plain text (a field's error is not mrkdwn), unexpected ones as an error id.
    """
    if isinstance(error, InvalidField) and error.field in fields:
        return {error.field: truncate(str(error), ERROR_LIMIT)}
    text = str(error) if isinstance(error, DomainError) else describe(error)
    return {fallback: truncate(text, ERROR_LIMIT)}


def form_refusal(error: Exception, *, fields: Collection[str], fallback: str) -> dict[str, Any]:
    """The ack that keeps a submitted form open with `error` under its field."""
    return {"response_action": "errors", "errors": errors_for(error, fields=fields, fallback=fallback)}


@dataclass(frozen=True)
class Source:
    """Where a request came from, as far as answering it goes. Build it with one of the constructors."""

    respond: AsyncRespond | None = None  # a response_url: a command or a click under a message
    client: AsyncWebClient | None = None  # with trigger_id: a click on the Home tab
    trigger_id: str | None = None
    ack: AsyncAck | None = None  # a modal submission whose ack is still to be sent
    fields: frozenset[str] = frozenset()
    fallback: str = ""

    @classmethod
    def command(cls, respond: AsyncRespond | None) -> Source:
        """A slash command (or anything answered through `respond`); None for an event."""
        return cls(respond=respond)

    @classmethod
    def click(cls, body: Mapping[str, Any], respond: AsyncRespond | None, client: AsyncWebClient) -> Source:
        """A button: under a message it has a response_url; on the Home tab only its trigger_id."""
        if body.get("response_url") and respond is not None:
            return cls(respond=respond)
        trigger_id = body.get("trigger_id")
        return cls(client=client, trigger_id=trigger_id if isinstance(trigger_id, str) and trigger_id else None)

    @classmethod
    def form(cls, ack: AsyncAck, *, fields: Collection[str], fallback: str) -> Source:
        """A modal submission, before its ack: errors go under `fields` (else under `fallback`)."""
        return cls(ack=ack, fields=frozenset(fields), fallback=fallback)


async def answer_error(error: Exception, source: Source) -> None:
    """Tell the person why their request failed, the one right way for where it came from. Never raises."""
    if source.ack is not None:
        await source.ack(**form_refusal(error, fields=source.fields, fallback=source.fallback))
        return
    await tell(source, describe(error))


async def tell(source: Source, text: str) -> None:
    """Show `text` (escaped) to the person behind a command or a click; a failure to do so is logged."""
    try:
        if source.respond is not None:
            await source.respond(**error_message(text), response_type="ephemeral", replace_original=False)
        elif source.client is not None and source.trigger_id:
            await source.client.views_open(trigger_id=source.trigger_id, view=notice_view(text))
    except Exception:
        log.warning("could not deliver an error message to the user", exc_info=True)


@asynccontextmanager
async def answering_errors(source: Source) -> AsyncIterator[None]:
    """Wrap a listener's body after `ack()`: a failure becomes `answer_error`, not a raise.

    Why not leave it to Bolt's error handler: when a listener acks and then fails within Bolt's 10 ms
    ack-polling tick, Bolt's async runner resets the ack and answers Slack 404 ("dispatch_failed"
    shown to the person) on top of our message. Catching here keeps the 200.
    """
    try:
        yield
    except Exception as error:
        await answer_error(error, source)


def replying_errors(respond: AsyncRespond | None) -> AbstractAsyncContextManager[None]:
    """`answering_errors` for a command (or an event, with None): the reply goes through `respond`."""
    return answering_errors(Source.command(respond))


async def handle_listener_error(
    error: Exception, body: dict[str, Any], respond: AsyncRespond | None, client: AsyncWebClient,
) -> None:
    """Bolt's backstop for failures outside `answering_errors` (middleware, listeners without it)."""
    if body.get("type") == "block_actions":
        source = Source.click(body, respond, client)
    elif body.get("response_url") or body.get("response_urls"):
        source = Source.command(respond)
    else:  # events and view submissions have nowhere to reply (a submission's ack is Bolt's by now)
        describe(error)  # logs it
        return
    await answer_error(error, source)
