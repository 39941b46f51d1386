"""When a message may reach someone: inside their working hours, in their own time zone.

Urgent messages go at once. Everything else waits for the recipient's next working window (skipping
out-of-office days). Windows are wall-clock times in the member's zone, turned into instants with
zoneinfo day by day, so a daylight-saving change moves the UTC instant, never the local 09:00.
A member with no hours at all, or no window within LOOKAHEAD_DAYS, gets the message at once: a message
is delayed, never dropped.

A message about something with a deadline (an approval request) is not held when holding it would leave
the recipient less than DEADLINE_NEAR before the deadline: `delivery_time` sends it at once instead. An
approver asked at 22:00 to sign off by 10:00 hears tonight; asked to sign off by the end of tomorrow,
they hear when their day starts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models import Urgency
from services.availability import DAYS

LOOKAHEAD_DAYS = 14
IMMEDIATE = frozenset({Urgency.HIGH, Urgency.CRITICAL})
DEADLINE_NEAR = timedelta(hours=4)  # held past this close to its deadline, a message goes at once


class HasHours(Protocol):
    """What quiet hours read from a member (a TeamMember, or a row of just these columns)."""

    timezone: str
    weekly_availability: dict[str, Any]
    out_of_office_from: date | None
    out_of_office_until: date | None


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def out_of_office(member: HasHours, day: date) -> bool:
    start, end = member.out_of_office_from, member.out_of_office_until
    return start is not None and end is not None and start <= day <= end


def windows_on(member: HasHours, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The member's working windows on local `day`, as UTC instants, in order (none when out of office)."""
    if out_of_office(member, day):
        return []
    spans = (member.weekly_availability or {}).get(DAYS[day.weekday()]) or []
    windows = []
    for span in spans:
        try:
            start, end = _clock(span[0]), _clock(span[1])
        except (ValueError, IndexError, TypeError):
            continue  # a malformed window is ignored, not fatal for the sweep
        begins = _instant(day, start, tz)
        ends = _instant(day, end, tz)
        if ends > begins:
            windows.append((begins, ends))
    return sorted(windows)


def has_hours(member: HasHours) -> bool:
    return any((member.weekly_availability or {}).get(day) for day in DAYS)


def next_delivery_time(member: HasHours, at: datetime, urgency: Urgency | str) -> datetime:
    """`at` if the message may go now; otherwise the start of the member's next working window."""
    if Urgency(urgency) in IMMEDIATE or not has_hours(member):
        return at
    tz = zone(member.timezone)
    first_day = at.astimezone(tz).date()
    # Start a day early: a window of yesterday's local date cannot contain `at`, but checking it is cheap
    # and keeps the loop free of edge cases around midnight.
    for offset in range(-1, LOOKAHEAD_DAYS + 1):
        for begins, ends in windows_on(member, first_day + timedelta(days=offset), tz):
            if begins <= at < ends:
                return at
            if begins > at:
                return begins
    return at


def delivery_time(member: HasHours, at: datetime, urgency: Urgency | str, *, deadline: datetime | None = None) -> datetime:
    """`next_delivery_time`, except that a message whose `deadline` would be less than DEADLINE_NEAR away
    when the member's quiet hours end goes now: a late "please decide" is worse than a late-night one."""
    later = next_delivery_time(member, at, urgency)
    if later > at and deadline is not None and deadline - DEADLINE_NEAR < later:
        return at
    return later


def _clock(text: str) -> int:
    """`09:00` -> minutes since midnight; `24:00` allowed as the end of the day."""
    hours, _, minutes = str(text).partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(text)
    return value


def _instant(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """Local wall time on `day` -> UTC. A time inside a spring-forward gap moves forward by the gap
    (02:30 -> 03:30 in Berlin), zoneinfo's fold=0 reading."""
    if minutes >= 24 * 60:
        return _instant(day + timedelta(days=1), minutes - 24 * 60, tz)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz).astimezone(UTC)
