"""Helpers for the approval tests: a campaign and its people, `/approval`, clicks and modal submissions,
the Slack copies of a stage's request as the fake recorded them, and `settled`: the app is done."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from models import Approval, ApprovalMessage, AuditEntry, Campaign, Task
from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import send_command
from tests.slack_requests import block_actions_payload, view_submission_payload
from tests.support.waiting import settled as support_settled

CHANNEL = "C0GENERAL"  # where the test campaigns are created, so their requests are posted there too
OWNER, BOB, CAROL, DAN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"
ERIN, FRANK = "U0ERIN", "U0FRANK"  # hold the template's roles in a `staffed` campaign
MENTION = {BOB: "<@U0BOB|bob>", CAROL: "<@U0CAROL|carol>", DAN: "<@U0DAN|dan>"}


def add_people(fake: FakeSlack) -> None:
    fake.add_user(CAROL, name="carol", real_name="Carol Chen", tz="Europe/Paris")
    fake.add_user(DAN, name="dan", real_name="Dan Diaz", tz="America/New_York")


async def new_campaign(
    app: RunningApp, fake: FakeSlack, name: str = "Spring launch", template: str = "webinar", *, staffed: bool = True
) -> int:
    """A campaign created by the owner in CHANNEL. `staffed`: the webinar template's roles (marketing lead,
    brand) belong to two people the tests leave alone, so nobody is told a stage has no approvers."""
    add_people(fake)
    await always_at_work(app, fake, OWNER, BOB, CAROL, DAN)
    if staffed:
        for user, role in ((ERIN, "marketing lead"), (FRANK, "brand")):
            fake.add_user(user, name=user.lower(), real_name=user.title(), tz="Europe/Berlin")
            await send_command(app, fake, "/team", f"me role={role} {AT_WORK}", user_id=user)
    launch = (date.today() + timedelta(days=120)).isoformat()
    await send_command(app, fake, "/campaign", f'new "{name}" {template} {launch}', channel_id=CHANNEL)
    async with app.sessions() as db:
        return max((await db.scalars(select(Campaign.id))).all())


AT_WORK = "hours=mon-sun 0-24"  # no quiet hours: a request goes out at once, whatever the hour the test runs


async def always_at_work(app: RunningApp, fake: FakeSlack, *users: str) -> None:
    """Give `users` working hours round the clock, so their quiet hours never hold a message back."""
    for user in users:
        await send_command(app, fake, "/team", f"me {AT_WORK}", user_id=user)


async def approval(app: RunningApp, fake: FakeSlack, text: str, user: str = OWNER) -> Call:
    return await send_command(app, fake, "/approval", text, user_id=user)


def text_of(call_or_args: Call | dict[str, Any]) -> str:
    args = call_or_args.args if isinstance(call_or_args, Call) else call_or_args
    return repr(args.get("blocks")) + str(args.get("text", ""))


async def settled(app: RunningApp, limit: float = 20.0) -> None:
    """Wait until the app has done what it was asked: no listener is running (their work after the ack
    included) and no outbox row is due or being sent. A definite state, not a quiet spell."""
    await support_settled(app, outbox=True, timeout=limit)


async def click(
    app: RunningApp, fake: FakeSlack, user: str, action_id: str, approval_id: int, *,
    channel: str | None = None, ts: str | None = None, ephemeral: bool = False, home: bool = False,
) -> str:
    """Click a button as `user`; returns the id of the click's response_url (its replies land there)."""
    url = fake.response_url()
    if home:
        payload = block_actions_payload(user_id=user, action_id=action_id, value=str(approval_id),
                                        view={"id": "VHOME", "type": "home", "blocks": []})
    else:
        channel = channel or dm_channel(fake, user) or CHANNEL
        container = {"type": "message", "message_ts": ts or "1700000000.000100", "channel_id": channel,
                     "is_ephemeral": ephemeral}
        payload = block_actions_payload(user_id=user, action_id=action_id, value=str(approval_id), response_url=url,
                                        channel_id=channel, message_ts=ts, container=container)
    status, body = await app.slack.interaction(payload)
    assert (status, body) == (200, "")
    return url.rsplit("/", 1)[1]


async def submit(app: RunningApp, user: str, callback_id: str, metadata: str, values: dict) -> tuple[int, Any]:
    status, body = await app.slack.interaction(
        view_submission_payload(user_id=user, callback_id=callback_id, private_metadata=metadata, values=values)
    )
    return status, json.loads(body) if body else None


async def reject(app: RunningApp, user: str, approval_id: int, reason: str) -> tuple[int, Any]:
    return await submit(app, user, "approval_reject_modal", str(approval_id), {"reason": {"reason": reason}})


async def delegate(app: RunningApp, user: str, approval_id: int, to: str | None) -> tuple[int, Any]:
    leaf = {"type": "users_select", "selected_user": to}
    return await submit(app, user, "approval_delegate_modal", str(approval_id), {"delegate": {"delegate_to": leaf}})


def dm_channel(fake: FakeSlack, user: str) -> str | None:
    """The bot's DM with `user`, as Slack named it when a message was posted to the user's id."""
    posted = [call.response["channel"] for call in posts_in(fake, user) if isinstance(call.response, dict)
              and call.response.get("channel")]
    return posted[-1] if posted else None


def posts_in(fake: FakeSlack, channel: str | None) -> list[Call]:
    """Messages that went out to `channel` (a user id: their DM), failed attempts left out."""
    return [call for call in fake.calls_to("chat.postMessage") if call.args.get("channel") == channel
            and not call.injected]


def requests_to(fake: FakeSlack, user: str) -> list[Call]:
    """The approval requests `user` got in their DM."""
    return [call for call in posts_in(fake, user) if "approval_approve" in text_of(call)]


def told_owner(fake: FakeSlack, user: str = OWNER) -> list[Call]:
    """What the owner heard about decisions (not the notices that a template stage has nobody to approve it)."""
    return [call for call in posts_in(fake, user) if "nobody can approve" not in text_of(call)]


def to_owner(call: Call) -> bool:
    """A post telling the owner about a decision (see `told_owner`)."""
    return call.args.get("channel") == OWNER and "nobody can approve" not in text_of(call)


def unstaffed_notices(fake: FakeSlack, stage: str, user: str = OWNER) -> list[Call]:
    return [call for call in posts_in(fake, user) if "nobody can approve" in text_of(call) and stage in text_of(call)]


async def task_id(app: RunningApp, key: str, campaign_id: int = 1) -> int:
    """The id of the campaign's task made from the template task `key`."""
    async with app.sessions() as db:
        found = await db.scalar(select(Task.id).where(Task.campaign_id == campaign_id, Task.template_key == key))
        assert found is not None, key
        return found


def buttons(message: dict[str, Any]) -> list[str]:
    return [element["action_id"] for block in message.get("blocks") or [] if block["type"] == "actions"
            for element in block["elements"]]


async def copies(app: RunningApp, stage: str) -> list[tuple[str, str, int | None]]:
    async with app.sessions() as db:
        rows = await db.scalars(select(ApprovalMessage).where(ApprovalMessage.stage == stage).order_by(ApprovalMessage.id))
        return [(row.channel, row.ts, row.approval_id) for row in rows]


def updates_of(fake: FakeSlack, channel: str, ts: str) -> list[Call]:
    return [call for call in fake.calls_to("chat.update") if (call.args.get("channel"), call.args.get("ts")) == (channel, ts)]


async def approvals(app: RunningApp) -> dict[int, Approval]:
    async with app.sessions() as db:
        return {row.id: row for row in await db.scalars(select(Approval))}


async def audit_actions(app: RunningApp) -> list[str]:
    async with app.sessions() as db:
        return list((await db.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all())


async def campaign(app: RunningApp, campaign_id: int = 1) -> Campaign:
    async with app.sessions() as db:
        found = await db.get(Campaign, campaign_id)
        assert found is not None
        return found
