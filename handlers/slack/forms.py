"""Reading a submitted modal and answering it: values by block id, errors under the right field, and an
answer within Slack's 3 seconds however long the work takes (`answer_in_time`).

A modal's work runs before its ack when it can, so a refusal can be shown on the form where the person
still is. Under load it cannot always: past ACK_WITHIN_SECONDS the form is acked with a "working" view,
and the result (or what went wrong) follows by `views.update`. Slack gives up on an ack after 3 s and
shows the person an error even though the work went on; the bound leaves room for Bolt's 10 ms ack
polling and the trip back to Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from blocks.modals import VALUE, notice_view
from handlers.slack.errors import describe

log = logging.getLogger(__name__)

ACK_WITHIN_SECONDS = 2.0  # read at each submission, so tests can lower it

T = TypeVar("T")


class Form:
    """The values of a submitted view, by block id (every input's action id is `blocks.modals.VALUE`)."""

    def __init__(self, view: dict[str, Any]):
        self.values: dict[str, Any] = (view.get("state") or {}).get("values") or {}
        self.private_metadata = str(view.get("private_metadata") or "")
        self.view_id = view_id_of(view)

    def _state(self, block_id: str) -> dict[str, Any]:
        state = (self.values.get(block_id) or {}).get(VALUE)
        return state if isinstance(state, dict) else {}

    def text(self, block_id: str) -> str:
        return str(self._state(block_id).get("value") or "")

    def option(self, block_id: str) -> str | None:
        chosen = self._state(block_id).get("selected_option")
        return str(chosen["value"]) if isinstance(chosen, dict) and chosen.get("value") else None

    def user(self, block_id: str) -> str | None:
        return self._state(block_id).get("selected_user") or None

    def conversation(self, block_id: str) -> str | None:
        return self._state(block_id).get("selected_conversation") or None

    def day(self, block_id: str) -> date | None:
        """A datepicker's day; None when empty (Slack only sends YYYY-MM-DD)."""
        try:
            return date.fromisoformat(str(self._state(block_id).get("selected_date") or ""))
        except ValueError:
            return None


def view_id_of(view: dict[str, Any]) -> str | None:
    """The submitted view's id (Slack always sends one): what a repeat of the same submission shares."""
    view_id = view.get("id")
    return view_id if isinstance(view_id, str) and view_id else None


@dataclass(frozen=True)
class Answer:
    """How a form answers once its work is done: `ack`, the ack's arguments ({} closes the form), when
    the work finished in time; `view`, what the form becomes through views.update when it did not."""

    ack: dict[str, Any]
    view: dict[str, Any]


async def answer_in_time(
    ack: AsyncAck, client: AsyncWebClient, view_id: str | None, work: Awaitable[T], *,
    working: dict[str, Any], answer: Callable[[T], Answer], refusal: Callable[[Exception], dict[str, Any]],
    not_done: str,
) -> None:
    """Run a submitted form's `work` and ack within ACK_WITHIN_SECONDS, whatever happens.

    Done in time: ack with `answer(result).ack`, or with `refusal(error)` (the errors under the fields:
    `errors.form_refusal`).
    Not yet: ack at once with the `working` view and let the work go on (the ack does not cancel it),
    then update form `view_id` to `answer(result).view`, or to a notice: `not_done` and why.
    What others hear, and a Home's refresh, `work` writes to the outbox with its change.
    """
    running = asyncio.ensure_future(work)
    finished, _ = await asyncio.wait({running}, timeout=ACK_WITHIN_SECONDS)
    if finished:
        error = _failure(running)
        await ack(**(refusal(error) if error else answer(running.result()).ack))
    else:
        await ack(response_action="update", view=working)
        with contextlib.suppress(Exception):  # its failure is read below; a shutdown may still cancel it
            await running
        await _show_late_outcome(client, view_id, running, answer, not_done)


def _failure(finished: asyncio.Future[Any]) -> Exception | None:
    error = finished.exception()
    if error is None or isinstance(error, Exception):
        return error
    raise error  # KeyboardInterrupt and the like are not the person's to hear about


async def _show_late_outcome(
    client: AsyncWebClient, view_id: str | None, finished: asyncio.Future[T], answer: Callable[[T], Answer],
    not_done: str,
) -> None:
    """Replace the working view with the result, or with what went wrong: nothing ends silently."""
    error = _failure(finished)
    try:
        view = notice_view(f"{not_done} {describe(error)}") if error else answer(finished.result()).view
        if view_id is None:  # Slack always sends the view's id; without it there is nothing to update
            raise ValueError("a view submission without a view id")
        await client.views_update(view_id=view_id, view=view)
    except Exception:  # after the ack a raise only reaches Bolt's log; the person may have closed the form
        log.warning("could not show the outcome of form %s", view_id, exc_info=True)
