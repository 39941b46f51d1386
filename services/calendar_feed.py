"""The calendar feed: launches, milestones and due dates as iCalendar (RFC 5545) events.

Calendar apps (Google Calendar, Outlook, Apple Calendar) subscribe to the feed's URL and fetch it again
every so often; whatever is in the feed then replaces what they showed. So each event keeps one UID for
its whole life (`cm-12-launch@campaign-manager`, `task-42-due@campaign-manager`), and its SEQUENCE and
LAST-MODIFIED come from the rows' `updated_at`: they grow when the event changes and stay put when it does
not. DTSTAMP is LAST-MODIFIED too rather than the time of the fetch, so the same plan gives the same bytes
and a client polling an unchanged feed gets a 304 (the handler's ETag is a hash of the body).

Launches are all-day events on the launch date (a date has no time zone). Milestones and due tasks are
points in time, in UTC (`...Z`): each app shows them in its reader's own zone. A cancelled campaign keeps
its launch, marked CANCELLED, so calendars that already show it cross it out instead of silently losing
it; its tasks, and cancelled tasks, leave the feed.

The feed covers a bounded window (WINDOW_BACK days back, WINDOW_AHEAD days ahead, by whole UTC days so
the body is stable within a day) and at most MAX_EVENTS events, upcoming ones first.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from icalendar import Calendar, Event, vDuration, vText
from icalendar import __version__ as icalendar_version
from sqlalchemy import and_, case, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import Campaign, CampaignStatus, Task, TaskStatus, TeamMember, Timeline
from services.refs import RefKind, format_ref

WINDOW_BACK = timedelta(days=90)
WINDOW_AHEAD = timedelta(days=365)
MAX_EVENTS = 1500
UID_DOMAIN = "campaign-manager"
PRODID = "-//Campaign Manager//Dashboard calendar//EN"
FEED_FORMAT = 1  # bump when `feed_ical` writes the same events differently
REFRESH = timedelta(hours=1)  # how often we suggest clients fetch again (REFRESH-INTERVAL, X-PUBLISHED-TTL)
# SEQUENCE is a 32-bit integer: seconds since this epoch last until 2088 and grow with every change.
SEQUENCE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
# RFC 5545 allows no control characters in text but HTAB (a newline is written escaped, as `\n`).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LAUNCH_STATUS_WORDS = {CampaignStatus.COMPLETED: "Launched", CampaignStatus.CANCELLED: "Cancelled launch"}
_TASK_STATUS_WORDS = {TaskStatus.TODO: "to do", TaskStatus.IN_PROGRESS: "in progress",
                      TaskStatus.BLOCKED: "blocked", TaskStatus.DONE: "done"}


class EventStatus(enum.StrEnum):
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class EventKind(enum.StrEnum):
    LAUNCH = "launch"
    MILESTONE = "milestone"
    DUE = "due"


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    kind: EventKind
    summary: str
    start: date | datetime  # a date for an all-day launch; an aware UTC datetime for a due time
    end: date | datetime  # exclusive for dates (the next day); equal to `start` for a point in time
    description: str
    campaign_id: int
    url: str | None  # the campaign's dashboard page, when the caller gave `page_url`
    last_modified: datetime
    status: EventStatus = EventStatus.CONFIRMED

    @property
    def sequence(self) -> int:
        return max(0, int((self.last_modified - SEQUENCE_EPOCH).total_seconds()))


@dataclass(frozen=True)
class Window:
    first_day: date
    last_day: date  # inclusive

    @classmethod
    def around(cls, now: datetime) -> Window:
        today = now.astimezone(UTC).date()
        return cls(first_day=today - WINDOW_BACK, last_day=today + WINDOW_AHEAD)

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=UTC)

    @property
    def ends(self) -> datetime:  # exclusive
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=UTC)


async def calendar_events(
    *, db: AsyncSession, campaign_id: int | None, now: datetime,
    page_url: Callable[[str], str] | None = None, limit: int = MAX_EVENTS,
) -> list[CalendarEvent]:
    """The feed's events: every campaign's (`campaign_id` None) or one campaign's, in start order.

    `page_url(ref)` gives the dashboard page of the campaign `ref` (e.g. "CM-12"), for the events' links.
    """
    window = Window.around(now)
    launches = await _launches(db=db, campaign_id=campaign_id, window=window, page_url=page_url, limit=limit)
    tasks = await _task_events(db=db, campaign_id=campaign_id, window=window, now=now, page_url=page_url,
                               limit=limit - len(launches))
    return sorted(launches + tasks, key=_start_order)


async def calendar_name(*, db: AsyncSession, campaign_id: int | None) -> str:
    """What a calendar app names the subscription."""
    if campaign_id is None:
        return "Campaigns"
    name = await db.scalar(select(Campaign.name).where(Campaign.id == campaign_id))
    ref = format_ref(RefKind.CAMPAIGN, campaign_id)
    return f"{_clean(name)} ({ref})" if name else f"Campaign {ref}"


def feed_ical(events: Sequence[CalendarEvent], *, name: str) -> bytes:
    """The events as one VCALENDAR, folded and escaped by `icalendar` (CRLF lines of at most 75 octets)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    # Typed explicitly: `icalendar` writes properties it does not know (X-*, and RFC 7986's NAME) raw,
    # without escaping commas, semicolons or newlines.
    calendar.add("name", vText(name))  # RFC 7986; X-WR-CALNAME for the apps that predate it
    calendar.add("x-wr-calname", vText(name))
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    for item in events:
        calendar.add_component(_vevent(item))
    return calendar.to_ical()


def _vevent(item: CalendarEvent) -> Event:
    event = Event()
    event.add("uid", item.uid)
    event.add("dtstamp", item.last_modified)
    event.add("last-modified", item.last_modified)
    event.add("sequence", item.sequence)
    event.add("dtstart", item.start)
    event.add("dtend", item.end)
    event.add("summary", item.summary)
    event.add("description", item.description)
    event.add("status", item.status.value)
    event.add("transp", "TRANSPARENT")  # a deadline in someone's calendar must not mark them busy
    if item.url:
        event.add("url", item.url)
    return event


async def _launches(
    *, db: AsyncSession, campaign_id: int | None, window: Window, page_url: Callable[[str], str] | None, limit: int,
) -> list[CalendarEvent]:
    if limit <= 0:
        return []
    query = (
        select(Campaign.id, Campaign.name, Campaign.status, Campaign.launch_date, Campaign.updated_at,
               TeamMember.name, Timeline.projected_launch, Timeline.updated_at)
        .join(TeamMember, TeamMember.id == Campaign.owner_id)
        .outerjoin(Timeline, Timeline.campaign_id == Campaign.id)
        .where(Campaign.launch_date >= window.first_day, Campaign.launch_date <= window.last_day)
        .order_by(Campaign.launch_date, Campaign.id)
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    events = []
    for cid, name, status, launch, updated_at, owner, projected, planned_at in await db.execute(query):
        ref = format_ref(RefKind.CAMPAIGN, cid)
        title = f"{_LAUNCH_STATUS_WORDS.get(status, 'Launch')}: {_clean(name)} ({ref})"
        lines = [f"Campaign {ref}, {status.value}. Owner: {_clean(owner)}."]
        if projected is not None and projected != launch and status not in (CampaignStatus.COMPLETED,
                                                                               CampaignStatus.CANCELLED):
            lines.append(f"The plan projects the launch on {projected.isoformat()}.")
        events.append(_event(
            uid=f"cm-{cid}-{EventKind.LAUNCH.value}", kind=EventKind.LAUNCH, summary=title, start=launch,
            end=launch + timedelta(days=1), lines=lines, campaign_id=cid, ref=ref, page_url=page_url,
            changed=(updated_at, planned_at),
            status=EventStatus.CANCELLED if status is CampaignStatus.CANCELLED else EventStatus.CONFIRMED,
        ))
    return events


async def _task_events(
    *, db: AsyncSession, campaign_id: int | None, window: Window, now: datetime,
    page_url: Callable[[str], str] | None, limit: int,
) -> list[CalendarEvent]:
    if limit <= 0:
        return []
    assignee = aliased(TeamMember)
    upcoming = Task.due_at >= now
    query = (
        select(Task.id, Task.title, Task.is_milestone, Task.status, Task.due_at, Task.updated_at,
               Task.on_critical_path, assignee.name, Campaign.id, Campaign.name, Campaign.updated_at)
        .join(Campaign, Campaign.id == Task.campaign_id)
        .outerjoin(assignee, assignee.id == Task.assignee_id)
        .where(and_(Task.due_at >= window.starts, Task.due_at < window.ends),
               Task.status != TaskStatus.CANCELLED, Campaign.status != CampaignStatus.CANCELLED)
        # When the window holds more than `limit`, what comes next matters most: upcoming soonest first,
        # then the past, latest first. (Within each group the other key is NULL or constant.)
        .order_by(case((upcoming, 0), else_=1), case((upcoming, Task.due_at)),
                  Task.due_at.desc(), Task.id)
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(Task.campaign_id == campaign_id)
    events = []
    for (tid, title, milestone, status, due_at, updated_at, critical, assignee_name,
         cid, campaign_name, campaign_updated_at) in await db.execute(query):
        ref, task_ref = format_ref(RefKind.CAMPAIGN, cid), format_ref(RefKind.TASK, tid)
        kind = EventKind.MILESTONE if milestone else EventKind.DUE
        done = status is TaskStatus.DONE
        label = ("Reached" if done else "Milestone") if milestone else ("Done" if done else "Due")
        summary = f"{label}: {_clean(title)} ({task_ref}) · {_clean(campaign_name)}"
        state = _TASK_STATUS_WORDS.get(status, status.value) + (", on the critical path" if critical else "")
        lines = [f"{'Milestone' if milestone else 'Task'} {task_ref} of campaign {ref}: {state}.",
                 f"Assignee: {_clean(assignee_name) if assignee_name else 'nobody yet'}."]
        if due_at is None:  # the window's bounds leave these out; this tells mypy
            continue
        due = due_at.astimezone(UTC).replace(microsecond=0)  # iCalendar times have whole seconds
        events.append(_event(
            uid=f"task-{tid}-{kind.value}", kind=kind, summary=summary, start=due, end=due, lines=lines,
            campaign_id=cid, ref=ref, page_url=page_url, changed=(updated_at, campaign_updated_at),
        ))
    return events


def _event(
    *, uid: str, kind: EventKind, summary: str, start: date | datetime, end: date | datetime, lines: list[str],
    campaign_id: int, ref: str, page_url: Callable[[str], str] | None, changed: tuple[datetime | None, ...],
    status: EventStatus = EventStatus.CONFIRMED,
) -> CalendarEvent:
    url = page_url(ref) if page_url else None
    if url:
        lines = [*lines, f"Dashboard: {url}"]  # Google Calendar shows no URL property; the text it shows
    last_modified = max(moment for moment in changed if moment is not None).astimezone(UTC).replace(microsecond=0)
    return CalendarEvent(
        uid=f"{uid}@{UID_DOMAIN}", kind=kind, summary=summary, start=start, end=end,
        description="\n".join(lines), campaign_id=campaign_id, url=url, last_modified=last_modified, status=status,
    )


def _clean(text: str) -> str:
    """User text as calendar text: control characters out (the library escapes the rest)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _start_order(event: CalendarEvent) -> tuple[datetime, str]:
    start = event.start
    moment = start if isinstance(start, datetime) else datetime.combine(start, time.min, tzinfo=UTC)
    return moment, event.uid


def etag_of(body: bytes) -> str:
    """A strong ETag for a feed body: the same bytes, the same tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def fingerprint(events: Sequence[CalendarEvent], *, name: str) -> str:
    """What the body is made from, hashed: equal fingerprints, equal bodies (`feed_ical` is pure).

    Writing a feed is the slow part (`icalendar` takes about 0.5 ms an event); hashing what goes into it
    takes a few microseconds an event, so a body already written can be found by this and reused.
    """
    digest = hashlib.sha256(f"{FEED_FORMAT}\x00{icalendar_version}\x00{name}".encode())
    for event in events:
        digest.update(repr(event).encode())
    return digest.hexdigest()
