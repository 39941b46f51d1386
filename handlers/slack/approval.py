"""`/approval` and its buttons: request sign-off stages, approve, reject (with a reason), delegate, resubmit.

Buttons carry the approval id. Approve decides at once; Reject and Delegate open their modal right
after the ack (a trigger_id lives 3 s) and only then check the click, turning the modal into a notice
when it can't go on. The same buttons appear on the Home tab; a click there re-publishes it.

Nothing here sends a message: the requests, the updates of their copies and the owner's news are outbox
rows the services write with the change. A listener only answers the person who acted, through what the
request gives it: `respond()` where there is a response_url, a notice modal opened with the click's
trigger_id on the Home tab, and the modal's own ack (or `views.update` of it) for a modal submission.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.approvals import (
    DELEGATE_ACTION,
    DELEGATE_BLOCK,
    DELEGATE_CALLBACK,
    REJECT_CALLBACK,
    approval_help,
    decided_modal,
    delegate_modal,
    mine_message,
    reject_modal,
    request_reply,
    skip_reply,
)
from blocks.codec import Origin, decode_approval, decode_approval_form, encode_approval_form
from blocks.ids import APPROVAL_APPROVE, APPROVAL_DELEGATE, APPROVAL_REJECT, REASON_ACTION, REASON_BLOCK
from blocks.modals import notice_view, working_view
from blocks.text import escape
from handlers.slack import profiles
from handlers.slack.args import (
    PersonRef,
    looks_like_date,
    parse_date,
    parse_person,
    resolve_people,
    split_words,
    truncate_word,
)
from handlers.slack.context import Work, deps_of, unit_of_work
from handlers.slack.errors import Source, answering_errors, form_refusal, replying_errors, tell
from handlers.slack.forms import Answer, answer_in_time, view_id_of
from models import ApprovalRule
from services import approval_notices, approval_stages, approvals, team
from services.errors import DomainError, InvalidInput
from services.refs import RefKind, format_ref, parse_ref
from services.team import Profile

log = logging.getLogger(__name__)

REQUEST_USAGE = 'Usage: `/approval request CM-12 "Legal review" @dana @lee [rule=all|any] [by 2027-03-01]`'
RESUBMIT_USAGE = 'Usage: `/approval resubmit AP-7` or `/approval resubmit CM-12 "Legal review"`'
SKIP_USAGE = 'Usage: `/approval skip CM-12 "Brand review" [why]`'
PERSON_CHECK_SECONDS = 1.5  # inside a modal submission's 3 s: past it, let the choice through unchecked
NOTICE_TITLE = "Approval"


def register(app: AsyncApp) -> None:
    app.command("/approval")(approval_command)
    app.action(APPROVAL_APPROVE)(approve_clicked)
    app.action(APPROVAL_REJECT)(reject_clicked)
    app.action(APPROVAL_DELEGATE)(delegate_clicked)
    app.view(REJECT_CALLBACK)(reject_submitted)
    app.view(DELEGATE_CALLBACK)(delegate_submitted)


async def approval_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        # PostgreSQL text can't hold NUL; nobody means one, so it never reaches a stored stage name.
        words = split_words((command.get("text") or "").replace("\x00", ""))
        subcommand = words[0].lower() if words else "help"
        if subcommand == "request":
            reply = await request(words[1:], context, client)
        elif subcommand == "resubmit":
            reply = await resubmit(words[1:], context, client)
        elif subcommand == "skip":
            reply = await skip(words[1:], context, client)
        elif subcommand == "mine":
            async with unit_of_work(context, client, reading=True) as work:
                reply = await _mine(work)
        else:
            note = None if subcommand in ("help", "?") else f"`/approval {escape(truncate_word(words[0]))}` is not a command I know."
            reply = approval_help(note)
        await respond(**reply, response_type="ephemeral")


async def request(args: list[str], context: AsyncBoltContext, client: AsyncWebClient) -> dict[str, Any]:
    if not args:
        raise InvalidInput(f"Which campaign and stage? {REQUEST_USAGE}")
    campaign_id = parse_ref(args[0], RefKind.CAMPAIGN)
    stage, people, rule, due = parse_request(args[1:])
    mentions = await resolve_people(people, sessions=deps_of(context).sessions)
    for slack_user_id in mentions:
        problem = await person_problem(client, slack_user_id)
        if problem:
            raise InvalidInput(problem)
    new = await profiles.newcomers(deps_of(context), client, mentions)  # Slack asked before the transaction
    async with unit_of_work(context, client) as work:
        members = [await team.ensure_member(db=work.db, slack_user_id=uid, profile=new.get(uid)) for uid in mentions]
        change = await approvals.request_stage(db=work.db, ctx=work.task_context(), campaign_id=campaign_id,
                                               stage_name=stage, approvers=members, rule=rule, due=due)
        return await _request_reply(work, change, resubmitted=False)


def parse_request(args: list[str]) -> tuple[str, list[PersonRef], ApprovalRule | None, date | None]:
    """`"Legal review" <@U1|dana> <@U2> rule=any by 2027-03-01`: the stage name comes first."""
    name: list[str] = []
    mentions: list[PersonRef] = []
    rule: ApprovalRule | None = None
    due: date | None = None
    words = iter(enumerate(args))
    for index, word in words:
        lowered = word.lower()
        if word.startswith(("<@", "@")):
            mentions.append(parse_person(word))
        elif lowered.startswith("rule="):
            if lowered[5:] not in ("all", "any"):
                raise InvalidInput("`rule=` is `all` (everyone approves) or `any` (one approval is enough).")
            rule = ApprovalRule(lowered[5:])
        elif lowered.startswith("by="):
            due = parse_date(word[3:])
        elif lowered == "by" and index + 1 < len(args) and looks_like_date(args[index + 1]):
            due = parse_date(next(words)[1])
        elif mentions or rule or due:
            raise InvalidInput(f"Put the stage name first, then the people. {REQUEST_USAGE}")
        else:
            name.append(word)
    if not name:
        raise InvalidInput(f"Name the stage. {REQUEST_USAGE}")
    return " ".join(name), list(dict.fromkeys(mentions)), rule, due


async def resubmit(args: list[str], context: AsyncBoltContext, client: AsyncWebClient) -> dict[str, Any]:
    due = None
    if len(args) >= 2 and args[-2].lower() == "by":
        due, args = parse_date(args[-1]), args[:-2]
    elif args and args[-1].lower().startswith("by="):
        due, args = parse_date(args[-1][3:]), args[:-1]
    if not args:
        raise InvalidInput(RESUBMIT_USAGE)
    async with unit_of_work(context, client) as work:
        if args[0].upper().startswith("AP"):
            if len(args) > 1:
                raise InvalidInput(RESUBMIT_USAGE)
            approval = await approvals.get_approval(db=work.db, approval_id=parse_ref(args[0], RefKind.APPROVAL))
            campaign_id, stage = approval.campaign_id, approval.stage
        else:
            campaign_id, stage = parse_ref(args[0], RefKind.CAMPAIGN), " ".join(args[1:])
            if not stage:
                raise InvalidInput(RESUBMIT_USAGE)
        change = await approvals.resubmit(db=work.db, ctx=work.task_context(), campaign_id=campaign_id,
                                          stage_name=stage, due=due)
        return await _request_reply(work, change, resubmitted=True)


async def skip(args: list[str], context: AsyncBoltContext, client: AsyncWebClient) -> dict[str, Any]:
    """`/approval skip CM-12 "Brand review" not needed for a soft launch`: the quoted name, then why."""
    if len(args) < 2:
        raise InvalidInput(SKIP_USAGE)
    campaign_id = parse_ref(args[0], RefKind.CAMPAIGN)
    async with unit_of_work(context, client) as work:
        change = await approvals.skip_stage(db=work.db, ctx=work.task_context(), campaign_id=campaign_id,
                                            stage_name=args[1], reason=" ".join(args[2:]))
    return skip_reply(format_ref(RefKind.CAMPAIGN, campaign_id), change.stage, change.opened, change.campaign_approved)


async def _request_reply(work: Work, change: approvals.Change, *, resubmitted: bool) -> dict[str, Any]:
    """What the requester hears, read in the change's transaction: who is asked, and how each will be told
    (the requests are written already; one that cannot be delivered reaches the owner as a notice)."""
    view = await approval_stages.load_stage(work.db, change.campaign_id, change.stage)
    told = await approval_notices.how_told(db=work.db, campaign_id=change.campaign_id, stage=change.stage)
    return request_reply(view, told, resubmitted=resubmitted)


async def _mine(work: Work) -> dict[str, Any]:
    items = await approval_stages.waiting_for(work.db, work.actor)
    return mine_message(items, viewer=work.actor.slack_user_id)


async def person_problem(client: AsyncWebClient, slack_user_id: str) -> str | None:
    """Why this Slack user can't approve (a bot, gone, unknown), or None. A slow or failed lookup says None."""
    try:
        async with asyncio.timeout(PERSON_CHECK_SECONDS):
            response = await client.users_info(user=slack_user_id)
    except SlackApiError as error:
        if error.response.get("error") == "user_not_found":
            return f"I can't find the person {slack_user_id} in this workspace."
        return None
    except Exception:
        log.warning("could not look up %s", slack_user_id, exc_info=True)
        return None
    user = response.get("user") or {}
    name = user.get("real_name") or user.get("name") or slack_user_id
    if user.get("is_bot") or slack_user_id == "USLACKBOT":
        return f"{name} is a bot; only a person can approve."
    if user.get("deleted"):
        return f"{name} has left the workspace."
    return None


async def approve_clicked(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
    context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    await ack()
    source = Source.click(body, respond, client)
    async with answering_errors(source):
        approval_id = decode_approval(action.get("value"))
        async with unit_of_work(context, client) as work:
            change = await approvals.approve(db=work.db, ctx=work.task_context(), approval_id=approval_id)
            if _from_home(body):
                await work.refresh_home()
        await _settle(change, work, source, from_list=_from_list(body))


async def reject_clicked(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
    context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    await _open_decision_modal(ack, body, action, respond, context, client, reject_modal)


async def delegate_clicked(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
    context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    await _open_decision_modal(ack, body, action, respond, context, client, delegate_modal)


async def _open_decision_modal(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
    context: AsyncBoltContext, client: AsyncWebClient, build: Callable[[int, str], dict[str, Any]],
) -> None:
    """Open the modal first (the trigger_id lives 3 s), then check the click may decide at all."""
    await ack()
    source = Source.click(body, respond, client)
    async with answering_errors(source):
        approval_id = decode_approval(action.get("value"))
        metadata = encode_approval_form(approval_id, Origin.HOME if _from_home(body) else Origin.MESSAGE)
        opened = await client.views_open(trigger_id=body["trigger_id"], view=build(approval_id, metadata))
        await _check_click(context, client, approval_id, opened, source)


async def reject_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    # `approvals.reject` refuses an empty or too long reason; the refusal shows under the field.
    reason = str(_field(view, REASON_BLOCK, REASON_ACTION).get("value") or "")

    async def decide(work: Work, approval_id: int, new: Mapping[str, Profile | None]) -> approvals.Change:
        return await approvals.reject(db=work.db, ctx=work.task_context(), approval_id=approval_id, reason=reason)

    await _answer_submission(ack, view, context, client, decide, field=REASON_BLOCK, done="Rejected")


async def delegate_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    chosen = str(_field(view, DELEGATE_BLOCK, DELEGATE_ACTION).get("selected_user") or "")
    if chosen == (body.get("user") or {}).get("id"):
        problem: str | None = "You can't delegate to yourself; pick someone else."
    else:
        problem = await person_problem(client, chosen) if chosen else "Pick the person who decides instead of you."
    if problem:
        await ack(response_action="errors", errors={DELEGATE_BLOCK: problem})
        return

    async def decide(work: Work, approval_id: int, new: Mapping[str, Profile | None]) -> approvals.Change:
        to = await team.ensure_member(db=work.db, slack_user_id=chosen, profile=new.get(chosen))
        return await approvals.delegate(db=work.db, ctx=work.task_context(), approval_id=approval_id, to=to)

    await _answer_submission(ack, view, context, client, decide, field=DELEGATE_BLOCK, done="Delegated",
                             people=[chosen])


async def _answer_submission(
    ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
    decide: Callable[[Work, int, Mapping[str, Profile | None]], Awaitable[approvals.Change]], *, field: str,
    done: str, people: Sequence[str] = (),
) -> None:
    """Decide before the ack when that is quick, so a refusal shows on the form; else say so by views.update
    (`forms.answer_in_time`). `people` new to the team are looked up in Slack before the transaction. A
    click from the Home tab re-publishes it after the commit."""

    async def run() -> tuple[approvals.Change, Work]:
        form = decode_approval_form(view.get("private_metadata"))
        new = await profiles.newcomers(deps_of(context), client, people)
        async with unit_of_work(context, client) as work:
            change = await decide(work, form.approval_id, new)
            if form.origin is Origin.HOME:
                await work.refresh_home()
        return change, work

    def answer(result: tuple[approvals.Change, Work]) -> Answer:
        change = result[0]
        if change.note:
            notice = notice_view(escape(change.note), title=NOTICE_TITLE)
            return Answer(ack={"response_action": "update", "view": notice}, view=notice)
        return Answer(ack={}, view=decided_modal(done))

    def refusal(error: Exception) -> dict[str, Any]:
        return form_refusal(error, fields={field}, fallback=field)

    await answer_in_time(ack, client, view_id_of(view), run(), working=working_view(NOTICE_TITLE, "Saving your answer…"),
                         answer=answer, refusal=refusal, not_done="Your answer was not saved:")


async def _settle(change: approvals.Change, work: Work, source: Source, *, from_list: bool = False) -> None:
    """After the commit: tell the clicker why nothing changed, and refresh the list the click came from.
    (The copies, the next stages' requests, the owner's news and a Home's refresh went into the outbox
    with the change.)"""
    if change.note:
        await tell(source, escape(change.note))
    if from_list and change.changed and source.respond is not None:
        # the `/approval mine` list the click came from: show what is left
        async with work.deps.sessions.begin() as db:
            reply = await _mine(Work(db=db, actor=work.actor, deps=work.deps))
        await source.respond(**reply, replace_original=True)


async def _check_click(
    context: AsyncBoltContext, client: AsyncWebClient, approval_id: int, opened: Any, source: Source
) -> None:
    """A click someone can't act on turns the modal just opened into a notice saying why; under a message
    the reason is raised too, so it also stays in the conversation (its response_url). The Home tab's
    click has no other answer left: its trigger_id opened the modal."""
    try:
        async with unit_of_work(context, client) as work:
            await approvals.check_decidable(db=work.db, ctx=work.task_context(), approval_id=approval_id)
    except DomainError as error:
        try:
            await client.views_update(view_id=opened["view"]["id"], hash=opened["view"]["hash"],
                                      view=notice_view(escape(str(error)), title=NOTICE_TITLE))
        except Exception:
            log.warning("could not turn the modal into a notice", exc_info=True)
        if source.respond is not None:
            raise


def _field(view: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    return ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(action_id) or {}


def _from_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _from_list(body: dict[str, Any]) -> bool:
    return bool((body.get("container") or {}).get("is_ephemeral"))
