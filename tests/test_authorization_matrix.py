"""Who may do what, for every command and button, through signed requests to the real app.

Five people: the campaign's owner, the assignee of T-1, the approver of a sign-off, a bystander (on the
team, nothing to do with the campaign) and an admin. The campaign has one asset, AS-1. Each row is one request; every person sends it, the
ones who may not first (a refusal must change nothing), then the ones who may. A refusal is the
authorization service's message; anything else (done, or "already done") counts as allowed.

Authorization is decided in Python, not SQL: one backend is enough here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from models import Approval, Asset, TeamMember
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import NEXT_YEAR, count, reply_text, send_command
from tests.slack_requests import block_actions_payload, view_submission_payload

OWNER, ASSIGNEE, APPROVER, BYSTANDER, ADMIN = "U0ALICE", "U0BOB", "U0CAROL", "U0DANA", "U0ADAM"
ROLES = {"bystander": BYSTANDER, "approver": APPROVER, "assignee": ASSIGNEE, "owner": OWNER, "admin": ADMIN}
EVERYONE = frozenset(ROLES)
MANAGERS = frozenset({"owner", "admin"})
WORKERS = frozenset({"assignee", "owner", "admin"})
REFUSAL = re.compile(r"Only (the|a|an) .* can |is not yours to decide")


@dataclass(frozen=True)
class World:
    campaign_id: int
    task_id: int  # T-1, assigned to the assignee
    approval_id: int  # the approver's vote
    assignee_member_id: int


# A request: sent as `user` in `world`; returns what the person was told (text), or None for "allowed,
# nothing to read" (a modal opened, the copies of a sign-off updated). The last argument says whether a
# refusal is expected, so the request waits for the answer that must come (a refusal is always a message).
Send = Callable[[RunningApp, FakeSlack, str, World, bool], Awaitable[str | None]]


def command(name: str, text: str) -> Send:
    async def send(app: RunningApp, fake: FakeSlack, user: str, world: World, refusal: bool) -> str | None:
        typed = text.format(c=world.campaign_id, t=world.task_id, ap=world.approval_id)
        return reply_text(await send_command(app, fake, name, typed, user_id=user))

    return send


def opens_a_modal(name: str, text: str) -> Send:
    async def send(app: RunningApp, fake: FakeSlack, user: str, world: World, refusal: bool) -> str | None:
        url = fake.response_url()
        url_id = url.rsplit("/", 1)[1]
        seen = len(fake.calls_to("views.open"))
        status, _ = await app.slack.command(name, text, user_id=user, response_url=url)
        assert status == 200
        call = await first_of(fake, url_id, None if refusal else "views.open", seen)
        return reply_text(call) if call.method == "response_url" else None

    return send


async def first_of(fake: FakeSlack, url_id: str, signal: str | None, seen: int) -> Call:
    """The reply at the response_url, or the `signal` call (the `seen + 1`-th), whichever comes first."""
    waits = {asyncio.ensure_future(fake.wait_for("response_url", lambda call: call.url_id == url_id))}
    if signal:
        waits.add(asyncio.ensure_future(fake.wait_for(signal, count=seen + 1)))
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return done.pop().result()


def button(action_id: str, value: Callable[[World], str], *, allowed_signal: str | None = None) -> Send:
    """A click under a message. A refusal always comes back at its response_url; an allowed click may
    instead open a modal or update the sign-off's copies (`allowed_signal`, whichever comes first)."""

    async def send(app: RunningApp, fake: FakeSlack, user: str, world: World, refusal: bool) -> str | None:
        url = fake.response_url()
        url_id = url.rsplit("/", 1)[1]
        seen = len(fake.calls_to(allowed_signal)) if allowed_signal else 0
        payload = block_actions_payload(user_id=user, action_id=action_id, value=value(world), response_url=url)
        assert (await app.slack.interaction(payload))[0] == 200
        call = await first_of(fake, url_id, None if refusal else allowed_signal, seen)
        return reply_text(call) if call.method == "response_url" else None

    send.surface = action_id  # type: ignore[attr-defined]
    return send


def acknowledged(action_id: str) -> Send:
    """A click the app only acknowledges (a link button: the browser does the rest): a 200, and that is all."""

    async def send(app: RunningApp, fake: FakeSlack, user: str, world: World, refusal: bool) -> str | None:
        payload = block_actions_payload(user_id=user, action_id=action_id, view={"id": "VDASH", "type": "modal"})
        assert (await app.slack.interaction(payload))[0] == 200
        return None

    send.surface = action_id  # type: ignore[attr-defined]
    return send


def submission(callback_id: str, metadata: Callable[[World], str], values: dict) -> Send:
    """A modal submit: every form answers in the ack (a refusal as errors under a field)."""

    async def send(app: RunningApp, fake: FakeSlack, user: str, world: World, refusal: bool) -> str | None:
        payload = view_submission_payload(user_id=user, callback_id=callback_id, values=values,
                                          private_metadata=metadata(world))
        status, body = await app.slack.interaction(payload)
        assert status == 200
        return body

    send.surface = callback_id  # type: ignore[attr-defined]
    return send




TASK = {"value": lambda w: str(w.task_id)}
ROWS: dict[str, tuple[Send, frozenset[str]]] = {
    # /campaign
    "campaign list": (command("/campaign", "list"), EVERYONE),
    "campaign show": (command("/campaign", "show CM-{c}"), EVERYONE),
    "campaign templates": (command("/campaign", "templates"), EVERYONE),
    "campaign new": (command("/campaign", f'new "Own" promo {NEXT_YEAR}'), EVERYONE),
    "campaign new (form)": (opens_a_modal("/campaign", "new"), EVERYONE),
    "campaign assign": (command("/campaign", "assign CM-{c}"), MANAGERS),
    "campaign launch": (command("/campaign", "launch CM-{c}"), MANAGERS),
    "campaign pause": (command("/campaign", "pause CM-{c}"), MANAGERS),
    "campaign resume": (command("/campaign", "resume CM-{c}"), MANAGERS),
    "campaign complete": (command("/campaign", "complete CM-{c}"), MANAGERS),
    "campaign cancel": (command("/campaign", "cancel CM-{c}"), MANAGERS),
    "campaign channel": (command("/campaign", "channel CM-{c} <#C0NEWS|news>"), MANAGERS),
    "campaign mute": (command("/campaign", "mute CM-{c}"), EVERYONE),
    "campaign unmute": (command("/campaign", "unmute CM-{c}"), EVERYONE),
    "campaign escalation (show)": (command("/campaign", "escalation CM-{c}"), EVERYONE),
    "campaign escalation (set)": (command("/campaign", "escalation CM-{c} grace=2h"), MANAGERS),
    "campaign help": (command("/campaign", "help"), EVERYONE),
    "campaign asset add": (command("/campaign", "asset add CM-{c} https://example.com/page"), WORKERS),
    "campaign asset list": (command("/campaign", "asset list CM-{c}"), EVERYONE),
    "campaign asset tie": (command("/campaign", "asset tie AS-1 T-{t}"), WORKERS),
    "campaign asset remove": (command("/campaign", "asset remove AS-1"), WORKERS),
    "campaign asset draft (form)": (opens_a_modal("/campaign", "asset draft CM-1"), WORKERS),
    "campaign checks": (command("/campaign", "checks CM-{c}"), EVERYONE),
    # /task
    "task mine": (command("/task", "mine"), EVERYONE),
    "task list": (command("/task", "list CM-{c}"), EVERYONE),
    "task new (form)": (opens_a_modal("/task", "new"), EVERYONE),
    "task start": (command("/task", "start T-{t}"), WORKERS),
    "task done": (command("/task", "done T-{t}"), WORKERS),
    "task block": (command("/task", "block T-{t} waiting for legal"), WORKERS),
    "task due": (command("/task", f"due T-{{t}} {NEXT_YEAR}"), WORKERS),
    "task estimate": (command("/task", "estimate T-{t} 3d"), WORKERS),
    "task assign": (command("/task", "assign T-{t} <@U0DANA|dana>"), MANAGERS),
    "task comment": (command("/task", "comment T-{t} looks good"), WORKERS),
    # /team
    "team list": (command("/team", "list"), EVERYONE),
    "team me": (command("/team", "me skills=writing capacity=3"), EVERYONE),
    "team add someone new with skills": (command("/team", "add <@U0NEW|new> skills=design"), MANAGERS),
    "team add someone new with a role": (command("/team", "add <@U0NEW|new> role=lead notify=email"), {"admin"}),
    "team add: change someone": (command("/team", "add <@U0BOB|bob> capacity=1"), {"assignee", "admin"}),
    "team add: look at someone": (command("/team", "add <@U0BOB|bob>"), EVERYONE),
    # /approval
    "approval mine": (command("/approval", "mine"), EVERYONE),
    "approval request": (command("/approval", 'request CM-{c} "Brand check" <@U0DANA|dana>'), MANAGERS),
    "approval resubmit": (command("/approval", 'resubmit CM-{c} "Legal review"'), MANAGERS),
    "approval skip": (command("/approval", 'skip CM-{c} "Legal review" not needed'), MANAGERS),
    # /dashboard
    "dashboard": (command("/dashboard", "CM-{c}"), EVERYONE),
    "dashboard links": (command("/dashboard", "links"), EVERYONE),
    # /api
    "api token new": (command("/api", 'token new "CRM sync" scope=read'), {"admin"}),
    "api token new as someone": (command("/api", 'token new "Agent" scope=write as=<@U0BOB|bob>'), {"admin"}),
    "api token list": (command("/api", "token list"), {"admin"}),
    "api token revoke": (command("/api", "token revoke 1"), {"admin"}),
    # buttons
    "button: task start": (button("task_start", TASK["value"]), WORKERS),
    "button: task done": (button("task_done", TASK["value"]), WORKERS),
    "button: task done anyway": (button("task_done_anyway", TASK["value"]), WORKERS),
    "button: task block": (button("task_block", TASK["value"], allowed_signal="views.open"), WORKERS),
    "button: snooze an hour": (button("task_snooze_hour", TASK["value"]), WORKERS),
    "button: snooze till tomorrow": (button("task_snooze_tomorrow", TASK["value"]), WORKERS),
    "button: approve": (button("approval_approve", lambda w: str(w.approval_id), allowed_signal="chat.update"),
                        {"approver"}),
    "button: reject": (button("approval_reject", lambda w: str(w.approval_id), allowed_signal="views.open"),
                       {"approver"}),
    "button: delegate": (button("approval_delegate", lambda w: str(w.approval_id), allowed_signal="views.open"),
                         {"approver"}),
    "button: try again": (button("delivery_retry", lambda w: f"{w.campaign_id}:member:{w.assignee_member_id}"),
                          MANAGERS),
    "button: open dashboard": (button("home_open_dashboard", lambda w: "all", allowed_signal="views.open"),
                               EVERYONE),
    "button: the dashboard link in its modal": (acknowledged("dashboard_link_opened"), EVERYONE),
    # modal submissions
    "form: block reason": (submission("task_block_modal", lambda w: str(w.task_id),
                                      {"reason": {"reason": "waiting for legal"}}), WORKERS),
    "form: reject reason": (submission("approval_reject_modal", lambda w: str(w.approval_id),
                                       {"reason": {"reason": "not yet"}}), {"approver"}),
}


async def make_world(app: RunningApp, fake: FakeSlack) -> World:
    for user, name in ((APPROVER, "carol"), (BYSTANDER, "dana"), (ADMIN, "adam"), ("U0NEW", "newcomer")):
        fake.add_user(user, name=name, real_name=name.title(), tz="Europe/Berlin")
    for user in (BYSTANDER, ADMIN):
        await send_command(app, fake, "/team", "me", user_id=user)
    await send_command(app, fake, "/campaign", f'new "Matrix" promo {NEXT_YEAR}', user_id=OWNER)
    await send_command(app, fake, "/task", "assign T-1 <@U0BOB|bob>", user_id=OWNER)
    await send_command(app, fake, "/approval", 'request CM-1 "Legal review" <@U0CAROL|carol>', user_id=OWNER)
    await send_command(app, fake, "/campaign", "asset add CM-1 https://example.com/brief Brief", user_id=OWNER)
    async with app.sessions() as db:
        carol = await db.scalar(select(TeamMember.id).where(TeamMember.slack_user_id == APPROVER))
        bob = await db.scalar(select(TeamMember.id).where(TeamMember.slack_user_id == ASSIGNEE))
        approval_id = await db.scalar(select(Approval.id).where(Approval.approver_id == carol))
    assert carol and bob and approval_id and await count(app, Asset) == 1, "the world was not built"
    return World(campaign_id=1, task_id=1, approval_id=approval_id, assignee_member_id=bob)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("row", ROWS, ids=[re.sub(r"\W+", "-", row) for row in ROWS])
async def test_who_may_do_what(db_url: str, fake_slack: FakeSlack, row: str) -> None:
    send, allowed = ROWS[row]
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids=ADMIN), fake_slack) as app:
        world = await make_world(app, fake_slack)
        for role in sorted(ROLES, key=lambda role: role in allowed):  # refusals first, on an untouched world
            told = await send(app, fake_slack, ROLES[role], world, role not in allowed)
            refused = told is not None and bool(REFUSAL.search(told))
            assert "error id" not in (told or ""), (row, role, told)
            assert refused == (role not in allowed), (row, role, told)


class _Registrations:
    """Stands in for the AsyncApp in `register_all`: records what each surface listens to."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}

    def __getattr__(self, kind: str) -> Callable[[str], Callable[[Any], Any]]:
        def listen(name: str) -> Callable[[Any], Any]:
            self.seen.setdefault(kind, set()).add(name)
            return lambda listener: listener

        return listen


def test_every_command_button_and_form_is_in_the_matrix() -> None:
    from handlers.slack import campaign, register_all, task

    registered = _Registrations()
    register_all(registered)  # type: ignore[arg-type]
    surfaces = {getattr(send, "surface", None) for send, _ in ROWS.values()}
    assert registered.seen["action"] <= surfaces
    covered = {"task_block_modal", "approval_reject_modal"}  # submitted here; the others are tested as forms
    assert covered <= surfaces and covered <= registered.seen["view"]
    typed = [row.split(" (")[0].split(":")[0].split() for row in ROWS]
    for name, subcommands in (("campaign", campaign.SUBCOMMANDS), ("task", task.SUBCOMMANDS)):
        handled = {subcommands[words[1]] for words in typed if words[0] == name and words[1] in subcommands}
        assert handled == set(subcommands.values()), name
    assert {f"/{words[0]}" for words in typed if words[0] != "button" and words[0] != "form"} == \
        registered.seen["command"]
