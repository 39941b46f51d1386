"""A seeded workspace for the dashboard tests, and readers for what the dashboard answers.

`seed_workspace(app)` plans three campaigns from the built-in templates through the real services
(`create_campaign`, task moves, a sign-off stage requested and approved) and then pins a few facts the
tests look for: a late task, a task due at 23:30 UTC (the next day in Berlin), and names that try to
break out of HTML or ping a Slack channel. Other dashboard tests (timeline, calendar, live) may use it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from models import Approval, Task, TaskStatus, TeamMember
from services import approvals, campaigns, tasks, team
from services.authz import Actor
from services.planning.templates import load_library
from services.tasks import Context
from tests.conftest import RunningApp

SCRIPT_NAME = "<script>alert(1)</script>"
MENTION_NAME = '<!channel> & "quotes"'
HOSTILE = (SCRIPT_NAME, MENTION_NAME)
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;!channel&gt; &amp; &#34;quotes&#34;")
ALICE, BOB, EVIL = "U0ALICE", "U0BOB", "U0EVIL"
PEOPLE = {ALICE: ("Alice Archer", "Europe/Berlin"), BOB: ("Bob Baker", "America/Chicago"),
          EVIL: (SCRIPT_NAME, "UTC")}
APPROVED_STAGE = "Legal review"
WAITING_STAGE = 'Brand <check> & "tone"'
MIDNIGHT_TITLE = "Midnight checkpoint"
LATE_TITLE = "Overdue <b>press</b> list"


@dataclass(frozen=True)
class Seeded:
    now: datetime
    members: dict[str, int]  # member ids by Slack id
    webinar: int  # campaign ids: launches in three weeks, named SCRIPT_NAME, owned by Alice
    launch: int  # product launch in three months, named MENTION_NAME, owned by the hostile member
    newsletter: int  # owned by Bob, in six weeks
    done_task: int
    started_task: int
    blocked_task: int
    late_task: int  # open, due two days ago (in the webinar)
    midnight_task: int  # due at 23:30 UTC on `midnight_day` (in the newsletter)
    midnight_day: date
    approved: int  # the approval decided in APPROVED_STAGE
    waiting: int  # the approval pending in WAITING_STAGE


async def seed_workspace(app: RunningApp) -> Seeded:
    library = load_library()
    now = datetime.now(UTC)
    today = now.date()
    async with app.sessions.begin() as db:
        people = {slack_id: await team.ensure_member(db=db, slack_user_id=slack_id,
                                                     profile=team.Profile(name=name, timezone=zone))
                  for slack_id, (name, zone) in PEOPLE.items()}
        alice, bob, evil = people[ALICE], people[BOB], people[EVIL]
        webinar = await campaigns.create_campaign(db=db, name=SCRIPT_NAME, template=library.resolve("webinar"),
                                                  launch_date=today + timedelta(days=21), owner=alice, now=now)
        launch = await campaigns.create_campaign(db=db, name=MENTION_NAME,
                                                 template=library.resolve("product_launch"),
                                                 launch_date=today + timedelta(days=90), owner=evil, now=now)
        newsletter = await campaigns.create_campaign(db=db, name="Autumn newsletter",
                                                     template=library.resolve("newsletter"),
                                                     launch_date=today + timedelta(days=45), owner=bob, now=now)
        for index, task in enumerate(webinar.tasks):
            task.assignee_id = (evil if index % 3 == 2 else alice).id
        for task in launch.tasks:
            task.assignee_id = evil.id
        ids = [task.id for task in webinar.tasks]
    as_alice = Context(actor=Actor(member=alice), now=now)
    async with app.sessions.begin() as db:
        done = await tasks.get_task(db=db, task_id=ids[0])
        await tasks.complete(db=db, task=done, ctx=as_alice)
    async with app.sessions.begin() as db:
        started = await tasks.get_task(db=db, task_id=ids[1])
        await tasks.start(db=db, task=started, ctx=as_alice)
    async with app.sessions.begin() as db:
        blocked = await tasks.get_task(db=db, task_id=ids[3])
        await tasks.block(db=db, task=blocked, reason=f"waiting on {SCRIPT_NAME}", ctx=as_alice)
    async with app.sessions.begin() as db:
        await approvals.request_stage(db=db, ctx=as_alice, campaign_id=webinar.campaign.id,
                                      stage_name=APPROVED_STAGE, approvers=[bob])
    approved = await _approval_id(app, webinar.campaign.id, APPROVED_STAGE)
    async with app.sessions.begin() as db:
        await approvals.approve(db=db, ctx=Context(actor=Actor(member=bob), now=now), approval_id=approved)
    async with app.sessions.begin() as db:
        await approvals.request_stage(db=db, ctx=as_alice, campaign_id=webinar.campaign.id,
                                      stage_name=WAITING_STAGE, approvers=[evil])
    waiting = await _approval_id(app, webinar.campaign.id, WAITING_STAGE)
    # Pinned after every re-plan above, which would move them: a person fixed these dates.
    midnight_day = today + timedelta(days=8)
    async with app.sessions.begin() as db:
        late = await db.get(Task, ids[2])
        assert late is not None
        late.title, late.due_at, late.due_fixed, late.status = LATE_TITLE, now - timedelta(days=2), True, TaskStatus.TODO
        midnight = await db.get(Task, newsletter.tasks[0].id)
        assert midnight is not None
        midnight.title, midnight.due_fixed = MIDNIGHT_TITLE, True
        midnight.due_at = datetime.combine(midnight_day, time(23, 30), tzinfo=UTC)
        midnight.assignee_id = bob.id
    return Seeded(
        now=now, members={slack_id: member.id for slack_id, member in people.items()},
        webinar=webinar.campaign.id, launch=launch.campaign.id, newsletter=newsletter.campaign.id,
        done_task=ids[0], started_task=ids[1], blocked_task=ids[3], late_task=ids[2],
        midnight_task=newsletter.tasks[0].id, midnight_day=midnight_day, approved=approved, waiting=waiting,
    )


async def _approval_id(app: RunningApp, campaign_id: int, stage: str) -> int:
    async with app.sessions() as db:
        found = await db.scalar(select(Approval.id).where(Approval.campaign_id == campaign_id, Approval.stage == stage))
        assert found is not None
        return found


async def member_named(app: RunningApp, slack_id: str) -> TeamMember:
    async with app.sessions() as db:
        found = await team.find_member(db=db, slack_user_id=slack_id)
        assert found is not None
        return found


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    headers: Any  # the response's headers (a case-insensitive multidict)

    def json(self) -> Any:
        return json.loads(self.text)


async def fetch(app: RunningApp, path: str, **query: str) -> Answer:
    """GET a dashboard path on the running app, without following redirects."""
    async with app.http.get(app.url(path), params=query or None, allow_redirects=False) as response:
        return Answer(response.status, await response.text(), response.headers)


def day_section(html: str, day: date) -> str:
    """The week view's column of one day (empty when the page has no such day)."""
    match = re.search(rf'<section aria-labelledby="day-{day.isoformat()}">(.*?)</section>', html, re.S)
    return match.group(1) if match else ""


def main_of(html: str) -> str:
    match = re.search(r"<main\b[^>]*>(.*)</main>", html, re.S)
    assert match, "the page has a <main>"
    return match.group(1)


def live_scope_of(html: str) -> str | None:
    match = re.search(r'<main\b[^>]*\bdata-live-scope="([^"]+)"', html)
    return match.group(1) if match else None


def assert_no_raw_hostile_text(text: str) -> None:
    """Nothing a user typed reaches the page unescaped (the escaped forms may, and should)."""
    for raw in HOSTILE:
        assert raw not in text, f"unescaped {raw!r} on the page"
    assert "<b>press</b>" not in text and "<check>" not in text


INLINE = re.compile(r"<script\b[^>]*>\s*[^<\s]|\sstyle=|\son[a-z]+=", re.I)


def assert_no_inline_code(html: str) -> None:
    """No inline script body, style attribute or event handler: the CSP would block them anyway."""
    found = INLINE.search(html)
    assert found is None, f"inline code the CSP forbids: {html[max(0, found.start() - 60): found.end() + 60]!r}"

