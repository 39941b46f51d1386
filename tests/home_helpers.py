"""Helpers for the App Home and task-button tests: people and plans written straight to the database,
the home_opened event, and readers for what a published Home shows."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Task, TeamMember, TimelineSnapshot
from services import campaigns, team
from services.planning.templates import Template, TemplateDependency, TemplateTask
from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack
from tests.slack_requests import block_actions_payload, event_envelope

BERLIN, CHICAGO = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Chicago")
BUCKET_HEADING = re.compile(r"^:[a-z_]+: \*(Overdue|Due today|Due this week|Later)\* \(\d+\)$")
PEOPLE = {"U0ALICE": ("Alice Archer", "Europe/Berlin"), "U0BOB": ("Bob Baker", "America/Chicago")}


def small_template(buffer_hours: float = 8.0) -> Template:
    def task(key: str, hours: float, *after: str, milestone: bool = False) -> TemplateTask:
        return TemplateTask(key=key, title=key.capitalize(), duration_hours=hours, skill=None,
                            milestone=milestone, after=tuple(TemplateDependency(a) for a in after))

    return Template(
        name="small", title="Small launch", description="A short plan", buffer_hours=buffer_hours,
        tasks=(task("brief", 8), task("copy", 16, "brief"), task("design", 8, "brief"),
               task("review", 4, "copy", "design"), task("launch", 0, "review", milestone=True)),
        approvals=(), aliases=(), source="test",
    )


async def member(db: AsyncSession, slack_user_id: str) -> TeamMember:
    """The member as first contact would create them (same name and time zone as the fake Slack's)."""
    name, tz = PEOPLE[slack_user_id]
    return await team.ensure_member(db=db, slack_user_id=slack_user_id, profile=team.Profile(name=name, timezone=tz))


async def planned_campaign(
    app: RunningApp, *, owner: str = "U0ALICE", assignee: str | None = "U0ALICE", launch: date | None = None,
    name: str = "Summer launch",
) -> dict[str, int]:
    """A campaign planned from the small template; every task given to `assignee`. Task ids by key."""
    async with app.sessions.begin() as db:
        boss = await member(db, owner)
        plan = await campaigns.create_campaign(
            db=db, name=name, template=small_template(), owner=boss, now=datetime.now(UTC),
            launch_date=launch or datetime.now(BERLIN).date() + timedelta(days=60),
        )
        worker = await member(db, assignee) if assignee else None
        for task in plan.tasks:
            task.assignee_id = worker.id if worker else None
        return {task.template_key or "": task.id for task in plan.tasks}


def local(day: date, hour: int, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone)


async def set_task(app: RunningApp, task_id: int, **values: Any) -> None:
    async with app.sessions.begin() as db:
        task = await db.get(Task, task_id)
        assert task is not None
        for key, value in values.items():
            setattr(task, key, value)


async def get_task(app: RunningApp, task_id: int) -> Task:
    async with app.sessions() as db:
        task = await db.get(Task, task_id)
        assert task is not None
        return task


async def snapshot_reasons(app: RunningApp) -> list[str]:
    async with app.sessions() as db:
        return list(await db.scalars(select(TimelineSnapshot.reason).order_by(TimelineSnapshot.id)))


async def count_rows(app: RunningApp, model: type) -> int:
    async with app.sessions() as db:
        return await db.scalar(select(func.count()).select_from(model)) or 0


def home_opened(user: str, tab: str = "home", event_id: str | None = None) -> dict:
    return event_envelope(
        event={"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab,
               "event_ts": "1700000000.000001"},
        event_id=event_id or f"Ev{uuid.uuid4().hex[:12]}",
    )


def publishes(fake: FakeSlack, user: str) -> list[Call]:
    return [call for call in fake.calls_to("views.publish") if call.args.get("user_id") == user]


async def next_publish(fake: FakeSlack, user: str, seen: int) -> dict:
    """Wait for publish number `seen + 1` to `user`, check Slack took it, and return its view."""
    call = await fake.wait_for("views.publish", lambda c: c.args.get("user_id") == user, count=seen + 1)
    assert call.response["ok"], call.response
    return call.args["view"]


async def open_home(app: RunningApp, fake: FakeSlack, user: str = "U0ALICE") -> dict:
    seen = len(publishes(fake, user))
    status, _ = await app.slack.event(home_opened(user))
    assert status == 200
    return await next_publish(fake, user, seen)


def texts(view: dict) -> list[str]:
    """The text of every section, header and context of a view, in order."""
    found = []
    for block in view["blocks"]:
        if block["type"] in ("section", "header"):
            found.append(block["text"]["text"])
        elif block["type"] == "context":
            found.extend(element["text"] for element in block["elements"])
    return found


def task_buckets(view: dict) -> dict[str, list[int]]:
    """Task ids under each bucket title ("Overdue", "Due today", ...), read from the task buttons."""
    buckets: dict[str, list[int]] = {}
    current = None
    for block in view["blocks"]:
        heading = BUCKET_HEADING.match(block["text"]["text"]) if block["type"] == "section" else None
        if heading:
            current = heading.group(1)
        elif block["type"] == "header":
            current = None
        elif block["type"] == "actions" and block.get("block_id", "").startswith("task-"):
            assert current is not None, "a task outside any bucket"
            buckets.setdefault(current, []).append(int(block["block_id"].removeprefix("task-")))
    return buckets


def buttons(view: dict, block_id: str) -> dict[str, str]:
    """action_id -> value of the buttons in one actions block."""
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return {element["action_id"]: element["value"] for element in block["elements"]}


def home_click(user: str, action_id: str, value: str, trigger_id: str = "trig.home") -> dict:
    """A button click on the user's Home tab (no response_url: the Home has nothing to reply under)."""
    view = {"id": "VHOME", "type": "home", "blocks": [], "callback_id": "", "private_metadata": "", "hash": "h"}
    return block_actions_payload(user_id=user, action_id=action_id, value=value, view=view,
                                 block_id=f"task-{value}", trigger_id=trigger_id)
