"""The calendar feed `/dashboard/calendar.ics?token=…`, fetched over real HTTP from the running app and read
back with `vobject`, a parser that shares no code with the `icalendar` library that writes the feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import vobject
from sqlalchemy import select

from models import Campaign, CampaignStatus, Task
from services import calendar_feed
from tests.conftest import RunningApp
from tests.home_helpers import planned_campaign, set_task
from tests.support.dashboard import dashboard_token

FEED = "/dashboard/calendar.ics"
HOSTILE_NAME = 'Q3, "big"; launch <script>alert(1)</script> \\ back'
HOSTILE_TITLE = "Copy\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:forged; <img src=x onerror=alert(1)>, \\n"


async def fetch(app: RunningApp, token: str | None, **headers: str) -> tuple[int, Any, bytes]:
    params = {"token": token} if token is not None else {}
    async with app.http.get(app.url(FEED), params=params, headers=headers) as response:
        return response.status, response.headers, await response.read()


async def feed(app: RunningApp, token: str) -> tuple[Any, bytes, Any]:
    """The parsed calendar, the raw body and the headers of a good fetch."""
    status, headers, body = await fetch(app, token)
    assert status == 200, body[:500]
    return vobject.readOne(body.decode("utf-8")), body, headers


def events_by_uid(calendar: Any) -> dict[str, Any]:
    events = calendar.contents.get("vevent", [])
    by_uid = {event.uid.value: event for event in events}
    assert len(by_uid) == len(events), "every UID once"
    return by_uid


async def tasks_of(app: RunningApp, campaign_id: int) -> list[Task]:
    async with app.sessions() as db:
        return list(await db.scalars(select(Task).where(Task.campaign_id == campaign_id).order_by(Task.id)))


async def campaign_of(app: RunningApp, task_id: int) -> Campaign:
    async with app.sessions() as db:
        task = await db.get(Task, task_id)
        assert task is not None
        campaign = await db.get(Campaign, task.campaign_id)
        assert campaign is not None
        return campaign


def task_uid(task: Task) -> str:
    return f"task-{task.id}-{'milestone' if task.is_milestone else 'due'}@campaign-manager"


async def test_the_feed_holds_launches_milestones_and_due_tasks(running_app: RunningApp) -> None:
    app = running_app
    launch = datetime.now(UTC).date() + timedelta(days=45)
    ids = await planned_campaign(app, name="Summer launch", launch=launch)
    campaign = await campaign_of(app, ids["brief"])
    token = await dashboard_token(app)

    calendar, body, headers = await feed(app, token)

    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Content-Disposition"] == 'inline; filename="campaigns.ics"'
    assert headers["ETag"].startswith('"') and headers["X-Content-Type-Options"] == "nosniff"
    assert calendar.version.value == "2.0" and calendar.method.value == "PUBLISH" and calendar.prodid.value
    assert calendar.x_wr_calname.value == "Campaigns"
    assert calendar.refresh_interval.value == "PT1H" and calendar.x_published_ttl.value == "PT1H"
    lines = body.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) <= 75 for line in lines), "CRLF lines folded at 75 octets"

    events = events_by_uid(calendar)
    ref = f"CM-{campaign.id}"
    dashboard_page = app.runtime.deps.settings.public_url + f"/dashboard/{token}/campaigns/{ref}"  # type: ignore[union-attr]
    launch_event = events[f"cm-{campaign.id}-launch@campaign-manager"]
    assert launch_event.dtstart.value == launch and not isinstance(launch_event.dtstart.value, datetime)
    assert launch_event.dtend.value == launch + timedelta(days=1)
    assert launch_event.summary.value == f"Launch: Summer launch ({ref})"
    assert launch_event.status.value == "CONFIRMED" and launch_event.url.value == dashboard_page
    assert dashboard_page in launch_event.description.value

    tasks = await tasks_of(app, campaign.id)
    assert any(task.is_milestone for task in tasks) and any(not task.is_milestone for task in tasks)
    for task in tasks:
        event = events[task_uid(task)]
        assert task.due_at is not None and event.dtstart.value == task.due_at.replace(microsecond=0)
        assert event.dtstart.value.utcoffset() == timedelta(0)
        assert f"DTSTART:{task.due_at:%Y%m%dT%H%M%S}Z".encode() in body  # UTC, written with Z
        assert f"(T-{task.id})" in event.summary.value and "Summer launch" in event.summary.value
        assert event.summary.value.startswith("Milestone: " if task.is_milestone else "Due: ")
        assert event.url.value == dashboard_page
    assert set(events) == {launch_event.uid.value} | {task_uid(task) for task in tasks}


async def test_uids_stay_and_a_redated_task_changes_its_event(running_app: RunningApp) -> None:
    app = running_app
    ids = await planned_campaign(app)
    token = await dashboard_token(app)
    first, first_body, first_headers = await feed(app, token)
    again, again_body, again_headers = await feed(app, token)
    assert again_body == first_body and again_headers["ETag"] == first_headers["ETag"]
    before = events_by_uid(first)
    copy_uid = f"task-{ids['copy']}-due@campaign-manager"
    old = before[copy_uid]

    # LAST-MODIFIED has whole seconds: let the clock pass the event's second, so the change has a later one.
    wait = (old.last_modified.value + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, wait))
    new_due = old.dtstart.value + timedelta(days=2, hours=3)
    await set_task(app, ids["copy"], due_at=new_due, due_fixed=True)

    changed, changed_body, changed_headers = await feed(app, token)
    after = events_by_uid(changed)
    assert set(after) == set(before)
    assert after[copy_uid].dtstart.value == new_due
    assert int(after[copy_uid].sequence.value) > int(old.sequence.value)
    assert after[copy_uid].last_modified.value > old.last_modified.value
    brief_uid = f"task-{ids['brief']}-due@campaign-manager"
    assert after[brief_uid].sequence.value == before[brief_uid].sequence.value  # untouched: unchanged
    assert changed_headers["ETag"] != first_headers["ETag"]
    status, _, _ = await fetch(app, token, **{"If-None-Match": first_headers["ETag"]})
    assert status == 200  # the old tag no longer matches


async def test_a_matching_etag_gets_an_empty_304(running_app: RunningApp) -> None:
    app = running_app
    await planned_campaign(app)
    token = await dashboard_token(app)
    _, _, headers = await feed(app, token)
    etag = headers["ETag"]

    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        status, not_modified, body = await fetch(app, token, **{"If-None-Match": sent})
        assert (status, body) == (304, b""), sent
        assert not_modified["ETag"] == etag
    for sent in ('"other"', "garbage", etag.strip('"')):
        status, _, body = await fetch(app, token, **{"If-None-Match": sent})
        assert status == 200 and body.startswith(b"BEGIN:VCALENDAR"), sent


async def test_a_campaign_link_gives_only_its_campaign(running_app: RunningApp) -> None:
    app = running_app
    mine = await campaign_of(app, (await planned_campaign(app, name="Mine"))["brief"])
    other = await campaign_of(app, (await planned_campaign(app, name="Other"))["brief"])

    calendar, _, _ = await feed(app, await dashboard_token(app, campaign_id=mine.id))
    events = events_by_uid(calendar)
    assert calendar.x_wr_calname.value == f"Mine (CM-{mine.id})"
    assert f"cm-{mine.id}-launch@campaign-manager" in events
    assert set(events) == {f"cm-{mine.id}-launch@campaign-manager"} | {task_uid(t) for t in await tasks_of(app, mine.id)}
    assert not any("Other" in event.summary.value for event in events.values())

    everything, _, _ = await feed(app, await dashboard_token(app))
    assert f"cm-{other.id}-launch@campaign-manager" in events_by_uid(everything)


async def test_hostile_names_arrive_intact_and_forge_nothing(running_app: RunningApp) -> None:
    app = running_app
    ids = await planned_campaign(app, name=HOSTILE_NAME)
    await set_task(app, ids["copy"], title=HOSTILE_TITLE)
    campaign = await campaign_of(app, ids["copy"])
    tasks = await tasks_of(app, campaign.id)

    calendar, body, headers = await feed(app, await dashboard_token(app, campaign_id=campaign.id))

    assert headers["Content-Type"].startswith("text/calendar") and headers["X-Content-Type-Options"] == "nosniff"
    events = events_by_uid(calendar)
    assert len(events) == len(tasks) + 1, "the title's END/BEGIN lines made no event of their own"
    assert not any(line.startswith(b"SUMMARY:forged") for line in body.split(b"\r\n"))
    assert calendar.x_wr_calname.value == f"{HOSTILE_NAME} (CM-{campaign.id})"
    launch = events[f"cm-{campaign.id}-launch@campaign-manager"]
    assert launch.summary.value == f"Launch: {HOSTILE_NAME} (CM-{campaign.id})"
    copy = events[f"task-{ids['copy']}-due@campaign-manager"]
    assert copy.summary.value == f"Due: {HOSTILE_TITLE.replace(chr(13) + chr(10), chr(10))} (T-{ids['copy']}) · {HOSTILE_NAME}"


async def test_a_cancelled_campaign_keeps_its_launch_crossed_out_and_drops_its_tasks(running_app: RunningApp) -> None:
    app = running_app
    ids = await planned_campaign(app, name="Called off")
    campaign = await campaign_of(app, ids["brief"])
    async with app.sessions.begin() as db:
        row = await db.get(Campaign, campaign.id)
        assert row is not None
        row.status = CampaignStatus.CANCELLED

    events = events_by_uid((await feed(app, await dashboard_token(app)))[0])
    launch = events.pop(f"cm-{campaign.id}-launch@campaign-manager")
    assert launch.status.value == "CANCELLED" and launch.summary.value.startswith("Cancelled launch: Called off")
    assert events == {}


async def test_the_window_leaves_out_what_is_long_past_or_far_ahead(running_app: RunningApp) -> None:
    app = running_app
    ids = await planned_campaign(app)
    now = datetime.now(UTC)
    await set_task(app, ids["brief"], due_at=now - timedelta(days=120), due_fixed=True)
    await set_task(app, ids["design"], due_at=now + timedelta(days=400), due_fixed=True)
    await set_task(app, ids["copy"], due_at=now - timedelta(days=30), due_fixed=True)

    uids = set(events_by_uid((await feed(app, await dashboard_token(app)))[0]))
    assert f"task-{ids['copy']}-due@campaign-manager" in uids  # a month ago: still shown
    assert f"task-{ids['brief']}-due@campaign-manager" not in uids
    assert f"task-{ids['design']}-due@campaign-manager" not in uids


async def test_a_full_window_keeps_the_soonest_upcoming_events(running_app: RunningApp) -> None:
    app = running_app
    ids = await planned_campaign(app)
    now = datetime.now(UTC)
    await set_task(app, ids["brief"], due_at=now - timedelta(days=1), due_fixed=True)  # past: goes first
    async with app.sessions() as db:
        events = await calendar_feed.calendar_events(db=db, campaign_id=None, now=now, limit=3)
        every = await calendar_feed.calendar_events(db=db, campaign_id=None, now=now)
    upcoming = sorted((e for e in every if e.kind is not calendar_feed.EventKind.LAUNCH and e.start >= now),
                      key=lambda e: e.start)
    assert [e.uid for e in events if e.kind is not calendar_feed.EventKind.LAUNCH] == [e.uid for e in upcoming[:2]]
    assert len(events) == 3 and any(e.kind is calendar_feed.EventKind.LAUNCH for e in events)


async def test_forged_truncated_and_missing_tokens_get_a_plain_401(running_app: RunningApp) -> None:
    app = running_app
    await planned_campaign(app, name="Secret plans")
    token = await dashboard_token(app)
    scope, _, signature = token.partition(".")
    for bad in (None, "", token[:-3], f"{scope}.{'A' * len(signature)}", "all", token + "x", "<script>"):
        status, headers, body = await fetch(app, bad)
        assert status == 401, bad
        assert headers["Content-Type"].startswith("text/html")
        assert b"BEGIN:VCALENDAR" not in body and b"Secret plans" not in body and b"<script>" not in body


def test_a_launch_is_an_all_day_date_with_a_sequence() -> None:
    launch = calendar_feed.CalendarEvent(
        uid="b", kind=calendar_feed.EventKind.LAUNCH, summary="", start=date(2030, 1, 2), end=date(2030, 1, 3),
        description="", campaign_id=1, url=None, last_modified=datetime(2029, 1, 1, tzinfo=UTC))
    assert launch.sequence > 0
    body = calendar_feed.feed_ical([launch], name="x")
    assert b"DTSTART;VALUE=DATE:20300102" in body and b"SEQUENCE:" in body
