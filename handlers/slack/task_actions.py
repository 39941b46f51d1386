"""The task buttons (Start, Done, Block) on the Home tab, or on any message that carries them, the modal that
asks why a task is blocked, and "Done anyway".

Done on a task that hands over an asset it does not have yet asks first: under a message, a reply with a
"Done anyway" button (and the commands to attach it); on the Home tab, a notice that says the same with
`/task done T-n anyway`. Nothing changes until one of them is used.

Every change goes through `services.tasks` (which authorizes and re-plans). A click on the Home tab
re-publishes the Home so the click shows in place; a click under a message gets a line there instead
(the Home is built afresh whenever the person opens the tab, so re-publishing it for a click elsewhere
would cost the click a Home's worth of queries for nothing). A refusal goes where the click came from: an ephemeral reply
under a message, or a small modal on the Home tab (which has nothing to reply under).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.assets import deliverable_prompt
from blocks.codec import decode_task, decode_task_form
from blocks.ids import (
    REASON_ACTION,
    REASON_BLOCK,
    TASK_BLOCK,
    TASK_DONE,
    TASK_DONE_ANYWAY,
    TASK_SNOOZE_HOUR,
    TASK_SNOOZE_TOMORROW,
    TASK_START,
)
from blocks.task_actions import BLOCK_MODAL, block_reason_modal, blocked_view, blocking_view
from blocks.tasks import task_changed
from handlers.slack.context import Work, in_unit_of_work, unit_of_work
from handlers.slack.errors import Source, answer_error, form_refusal
from handlers.slack.forms import Answer, answer_in_time, view_id_of
from models import Task
from services import authz, plans, tasks
from services.refs import RefKind, format_ref, parse_id

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.action(TASK_START)(start_clicked)
    app.action(TASK_DONE)(done_clicked)
    app.action(TASK_DONE_ANYWAY)(done_anyway_clicked)
    app.action(TASK_BLOCK)(block_clicked)
    app.view(BLOCK_MODAL)(block_submitted)
    app.action(TASK_SNOOZE_HOUR)(snooze_clicked)
    app.action(TASK_SNOOZE_TOMORROW)(snooze_clicked)


# A button's change: given the unit of work and the task, do it; return the icon + line for the reply,
# and the re-plan if the change moved the plan.
Change = Callable[[Work, Task, str | None], Awaitable[tuple[str, plans.PlanSummary | None]]]
# What a click's transaction hands to the steps after its commit: the reply.
_Clicked = tuple[Work, dict[str, Any]]
# What the reason form's transaction hands on: the blocked task.
_Blocked = tuple[Work, Task]


async def _start(work: Work, task: Task, action_id: str | None) -> tuple[str, plans.PlanSummary | None]:
    await tasks.start(db=work.db, task=task, ctx=work.task_context())
    return f":arrow_forward: Started {tasks.task_ref(task)}", None


async def _done(work: Work, task: Task, action_id: str | None) -> tuple[str, plans.PlanSummary | None]:
    plan = await tasks.complete(db=work.db, task=task, ctx=work.task_context())
    return f":white_check_mark: {tasks.task_ref(task)} is done", plan


async def _done_anyway(work: Work, task: Task, action_id: str | None) -> tuple[str, plans.PlanSummary | None]:
    """"Done anyway", under the question a Done asked: finish it without the asset it hands over."""
    plan = await tasks.complete(db=work.db, task=task, ctx=work.task_context(), anyway=True)
    return f":white_check_mark: {tasks.task_ref(task)} is done, without its deliverable", plan


async def _snooze(work: Work, task: Task, action_id: str | None) -> tuple[str, plans.PlanSummary | None]:
    """From a reminder: quiet for an hour, or until 09:00 tomorrow in the person's own time zone."""
    ctx = work.task_context()
    until = snooze_until(action_id, ctx.now, work.actor.timezone)
    await tasks.snooze(db=work.db, task=task, until=until, ctx=ctx)
    when = f"<!date^{int(until.timestamp())}^{{date_short_pretty}} {{time}}|{until:%Y-%m-%d %H:%M} UTC>"
    return f":zzz: Reminders for {tasks.task_ref(task)} wait until {when}", None


def snooze_until(action_id: str | None, now: datetime, timezone: str) -> datetime:
    if action_id == TASK_SNOOZE_HOUR:
        return now + timedelta(hours=1)
    local = now.astimezone(ZoneInfo(timezone))
    return datetime.combine(local.date() + timedelta(days=1), time(9, 0), tzinfo=local.tzinfo).astimezone(UTC)


def _button(change: Change) -> Callable[..., Awaitable[None]]:
    """A listener for one task button: ack, change the task, answer, re-publish the Home. (What others hear,
    the owner's plan alert or a sign-off request, the service writes to the outbox with the change.)"""

    async def clicked(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
        context: AsyncBoltContext, client: AsyncWebClient,
    ) -> None:
        await ack()
        async with telling_errors(body, respond, context, client):
            async def run(work: Work) -> _Clicked:
                task = await tasks.get_task(db=work.db, task_id=decode_task(action.get("value")))
                try:
                    note, plan = await change(work, task, action.get("action_id"))
                except tasks.DeliverableMissing as missing:
                    if not _from_message(body):
                        raise  # the Home tab has nothing to ask under: a notice says how to finish it anyway
                    return work, deliverable_prompt(missing)  # nothing changed: ask, with "Done anyway"
                if _on_home(body):
                    await work.refresh_home()
                return work, task_changed(task, note, plan, viewer_tz=work.actor.timezone)

            work, reply = await in_unit_of_work(context, client, run)
            await _after_change(body, respond, client, work, reply)

    return clicked


start_clicked, done_clicked, snooze_clicked = _button(_start), _button(_done), _button(_snooze)
done_anyway_clicked = _button(_done_anyway)


async def block_clicked(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
    context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    await ack()
    async with telling_errors(body, respond, context, client):
        # Refuse before asking for a reason: nobody should type one for a task they may not block.
        async with unit_of_work(context, client) as work:
            task = await tasks.get_task(db=work.db, task_id=decode_task(action.get("value")))
            authz.require_task_worker(work.authz_actor, task, task.campaign, "block this task")
            tasks.require_open(task)
        # trigger_id lives 3 seconds: the lookup above is one short read, nothing slow comes first.
        await client.views_open(trigger_id=body["trigger_id"], view=block_reason_modal(task))


async def block_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    values = (view.get("state") or {}).get("values") or {}
    typed = ((values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}).get("value") or ""
    reason = typed.replace("\x00", "")  # PostgreSQL text can't hold NUL; nobody means one
    if not reason.split():
        await ack(response_action="errors", errors={REASON_BLOCK: "Say what the task is waiting for."})
        return
    async def run(work: Work) -> _Blocked:
        task = await tasks.get_task(db=work.db, task_id=decode_task_form(view.get("private_metadata")))
        await tasks.block(db=work.db, task=task, reason=reason, ctx=work.task_context())
        await work.refresh_home()
        return work, task

    def answer(blocked: _Blocked) -> Answer:
        return Answer(ack={}, view=blocked_view(blocked[1]))  # in time: the form just closes

    def refusal(error: Exception) -> dict[str, Any]:
        return form_refusal(error, fields={REASON_BLOCK}, fallback=REASON_BLOCK)

    # The change runs before the ack when it can, so a refusal can be shown on the form, where the person
    # still is; under load the form says "Blocking T-n…" and shows the outcome later.
    task_id = parse_id(view.get("private_metadata"))
    not_done = f"{format_ref(RefKind.TASK, task_id) if task_id is not None else 'The task'} was not blocked:"
    blocking = in_unit_of_work(context, client, run)
    await answer_in_time(ack, client, view_id_of(view), blocking, working=blocking_view(task_id), answer=answer,
                         refusal=refusal, not_done=not_done)


def _from_message(body: dict[str, Any]) -> bool:
    return bool(body.get("response_url"))


def _on_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


async def _after_change(
    body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, work: Work, reply: dict[str, Any],
) -> None:
    """A click under a message gets a line there (one on the Home shows there: the change asked for it)."""
    if _from_message(body):
        try:
            await respond(**reply, response_type="ephemeral", replace_original=False)
        except Exception:
            log.warning("could not confirm a task change to %s", work.actor.slack_user_id, exc_info=True)


@asynccontextmanager
async def telling_errors(
    body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> AsyncIterator[None]:
    """Like `errors.replying_errors`, for clicks that may come from the Home tab.

    On the Home tab there is no message to answer under, so the answer is a small modal, and the Home
    is re-published: a refused click usually means it was out of date (reassigned, already done).
    """
    try:
        yield
    except Exception as error:
        await answer_error(error, Source.click(body, respond, client))
        if not _from_message(body):
            await _republish(context, client)


async def _republish(context: AsyncBoltContext, client: AsyncWebClient) -> None:
    """The Home again after a refused click on it (it was most likely out of date)."""
    try:
        async with unit_of_work(context, client) as work:
            await work.refresh_home()
    except Exception:
        log.warning("could not ask for the home of %s after a refused click", context.user_id, exc_info=True)
