"""Who does each task: a pure assignment engine (no database, no Slack).

A member fits a task when they have the skill (a skill or their role; no skill = anyone), a free slot
(active < max concurrent) and working hours inside the task window, in their own time zone, on a day
they are not out of office. Among those who fit, the lowest load ratio wins, then the most weekly
working-hour overlap with the owner's 09:00-17:00 Mon-Fri, then continuity in the campaign, then name
and id. When nobody fits the task stays unassigned and the explanation counts why.

Everything that depends only on the member is computed once per call (`_Member`), so the per-task
work is a skill lookup, a sort of the few who have a free slot, and O(1) calendar checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.availability import DAYS  # the weekday keys of `weekly_availability`

_LABELS = tuple(day.capitalize() for day in DAYS)
_DAY_MINUTES = 24 * 60
_OWNER_HOURS = (9 * 60, 17 * 60)
_OK, _NO_HOURS, _OOO = 0, 1, 2


@dataclass(frozen=True)
class Candidate:
    member_id: int
    name: str
    skills: frozenset[str]  # lower-case
    role: str | None
    timezone: str  # IANA
    weekly_availability: Mapping[str, Sequence[Sequence[str]]]  # as stored on TeamMember
    max_concurrent: int
    active_tasks: int  # tasks not done/cancelled assigned to them now
    out_of_office: tuple[date, date] | None  # inclusive range, in their own dates
    tasks_in_campaign: int = 0  # continuity: tasks they already hold in this campaign


@dataclass(frozen=True)
class TaskNeed:
    task_id: int
    title: str
    skill: str | None  # None = anyone
    window_start: datetime  # aware
    window_end: datetime  # aware (due)

    def __post_init__(self) -> None:
        if self.window_start.tzinfo is None or self.window_end.tzinfo is None:
            raise ValueError(f"task {self.task_id}: the window must be time-zone aware")
        if self.window_end < self.window_start:
            raise ValueError(f"task {self.task_id}: the window ends before it starts")


@dataclass(frozen=True)
class Choice:
    task_id: int
    member_id: int | None
    explanation: str  # one short human line


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= _DAY_MINUTES:
        raise ValueError(f"not a time of day: {text!r}")
    return value


def _clock(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours}:{rest:02d}" if rest else str(hours)


class _Member:
    """A candidate with everything per-member precomputed, plus the batch's running counters."""

    __slots__ = ("c", "skills", "tz", "raw", "hours", "mask", "mask2", "ooo", "summary", "overlap",
                 "max", "active", "cont", "rank")

    def __init__(self, c: Candidate) -> None:
        self.c = c
        self.skills = frozenset(s.strip().lower() for s in c.skills) | (
            {c.role.strip().lower()} if c.role else set())
        self.tz = ZoneInfo(c.timezone)
        # raw[d]: the stored windows of weekday d in minutes; "22:00"-"02:00" runs past midnight.
        self.raw: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for key, stored in c.weekly_availability.items():
            name = key.strip().lower()[:3]
            if name not in DAYS:
                raise ValueError(f"{c.name}: unknown weekday {key!r} in weekly availability")
            for window in stored:
                start, end = _minutes(window[0]), _minutes(window[1])
                if start != end:
                    self.raw[DAYS.index(name)].append((start, end))
        for day_windows in self.raw:
            day_windows.sort()
        # hours[d]: the same windows split at midnight, so a day check never looks at its neighbours.
        hours: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for day, windows in enumerate(self.raw):
            for start, end in windows:
                if end > start:
                    hours[day].append((start, end))
                else:
                    if start < _DAY_MINUTES:  # "24:00-02:00" has nothing left on its own day
                        hours[day].append((start, _DAY_MINUTES))
                    if end:
                        hours[(day + 1) % 7].append((0, end))
        self.hours = tuple(tuple(h) for h in hours)
        self.mask = sum(1 << d for d, h in enumerate(hours) if h)
        self.mask2 = self.mask | self.mask << 7  # doubled, so a weekday run may wrap past Sunday
        self.ooo = (c.out_of_office[0].toordinal(), c.out_of_office[1].toordinal()) if c.out_of_office else None
        self.summary = f"works {_summary(self.raw)} {c.timezone}" if self.mask else "has no working hours set"
        self.overlap = 0
        self.max = c.max_concurrent
        self.active = c.active_tasks
        self.cont = c.tasks_in_campaign
        self.rank = 0

    def day_has(self, ordinal: int, lo: int, hi: int) -> bool:
        return any(s < hi and e > lo for s, e in self.hours[(ordinal - 1) % 7])

    def works(self, a: int, b: int, span: tuple[int, int, int, int]) -> bool:
        """Working hours on some local day a..b (ordinals) of the window; O(1) whatever its length."""
        s_ord, s_min, e_ord, e_min = span
        if a > b:
            return False
        lo = s_min if a == s_ord else 0
        hi = e_min if b == e_ord else _DAY_MINUTES
        if a == b:
            return self.day_has(a, lo, hi)
        if self.day_has(a, lo, _DAY_MINUTES) or self.day_has(b, 0, hi):
            return True
        inner = b - a - 1  # whole days between the two ends: only the weekday mask matters
        if inner >= 7:
            return self.mask != 0
        return inner > 0 and (self.mask2 >> (a % 7)) & ((1 << inner) - 1) != 0  # a % 7 = weekday of a+1

    def status(self, span: tuple[int, int, int, int]) -> int:
        s_ord, _, e_ord, _ = span
        if not self.works(s_ord, e_ord, span):
            return _NO_HOURS
        if self.ooo is None or self.ooo[1] < s_ord or self.ooo[0] > e_ord:
            return _OK
        # Out of office for part of the window: the days before and after it may still be worked.
        first, last = self.ooo
        if self.works(s_ord, min(e_ord, first - 1), span) or self.works(max(s_ord, last + 1), e_ord, span):
            return _OK
        return _OOO


def _summary(raw: list[list[tuple[int, int]]]) -> str:
    """Mon-Fri 9-17; consecutive days with the same hours collapse, the others are listed."""
    texts = ["/".join(f"{_clock(s)}-{_clock(e)}" for s, e in windows) for windows in raw]
    parts: list[str] = []
    day = 0
    while day < 7:
        end = day
        while end + 1 < 7 and texts[end + 1] == texts[day]:
            end += 1
        if texts[day]:
            days = _LABELS[day] if end == day else f"{_LABELS[day]}-{_LABELS[end]}"
            parts.append(f"{days} {texts[day]}")
        day = end + 1
    return ", ".join(parts)


def _utc_windows(tz: ZoneInfo, monday: date, raw: Sequence[Sequence[tuple[int, int]]]) -> list[tuple[float, float]]:
    out = []
    for day, windows in enumerate(raw):
        midnight = datetime.combine(monday + timedelta(days=day), datetime.min.time(), tz)
        for start, end in windows:
            stop = end if end > start else end + _DAY_MINUTES
            out.append(((midnight + timedelta(minutes=start)).timestamp(),
                        (midnight + timedelta(minutes=stop)).timestamp()))
    return out


def _prepare(candidates: Sequence[Candidate], owner_timezone: str, reference: datetime) -> list[_Member]:
    owner_tz = ZoneInfo(owner_timezone)
    local = reference.astimezone(owner_tz).date()
    monday = local - timedelta(days=local.weekday())
    # The owner's weeks either side too, so a member far east or west overlaps across the week's edge.
    office: list[list[tuple[int, int]]] = [[_OWNER_HOURS]] * 5 + [[], []]
    owner: list[tuple[float, float]] = []
    for week in (-7, 0, 7):
        owner += _utc_windows(owner_tz, monday + timedelta(days=week), office)
    members = [_Member(c) for c in candidates]
    for m in members:
        m.overlap = round(sum(max(0.0, min(e, oe) - max(s, os)) for s, e in _utc_windows(m.tz, monday, m.raw)
                              for os, oe in owner) / 60)
    order = sorted(members, key=lambda m: (m.c.name.casefold(), m.c.name, m.c.member_id))
    for rank, m in enumerate(order):
        m.rank = rank
    return members


def _span(task: TaskNeed, tz: ZoneInfo) -> tuple[int, int, int, int]:
    """The window as (start ordinal, start minute, end ordinal, end minute) in local wall-clock time."""
    start, end = task.window_start.astimezone(tz), task.window_end.astimezone(tz)
    if start == end:  # a milestone: judge the whole local day it falls on
        return start.toordinal(), 0, end.toordinal(), _DAY_MINUTES
    return start.toordinal(), start.hour * 60 + start.minute, end.toordinal(), end.hour * 60 + end.minute


def _rank(m: _Member) -> tuple[float, int, int, int]:
    return m.active / m.max, -m.overlap, -m.cont, m.rank


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


class _Engine:
    def __init__(self, members: list[_Member]) -> None:
        self.members = members
        self.by_skill: dict[str, list[_Member]] = {}
        for m in members:
            for skill in m.skills:
                self.by_skill.setdefault(skill, []).append(m)

    def choose(self, task: TaskNeed) -> tuple[_Member | None, str]:
        skill = task.skill.strip().lower() if task.skill else None
        pool = self.by_skill.get(skill, []) if skill else self.members
        free = [m for m in pool if m.active < m.max]
        free.sort(key=_rank)
        spans: dict[str, tuple[int, int, int, int]] = {}  # per time zone: members often share one
        counts = [0, 0, 0]
        for m in free:
            span = spans.get(m.c.timezone)
            if span is None:
                span = spans[m.c.timezone] = _span(task, m.tz)
            status = m.status(span)
            if status == _OK:
                busy = f"{m.active} of {m.max} slots busy"
                what = f"{task.skill.strip()}, " if task.skill else ""
                return m, f"{m.c.name}: {what}{busy}, {m.summary}"
            counts[status] += 1
        return None, _nobody(task.skill.strip() if task.skill else None, len(pool), len(pool) - len(free),
                             counts[_OOO], counts[_NO_HOURS])

    def take(self, m: _Member) -> None:
        # Later tasks in the batch see this assignment, so work spreads instead of piling on one person.
        m.active += 1
        m.cont += 1


def _nobody(skill: str | None, pool: int, full: int, away: int, off: int) -> str:
    if not pool:
        return f"Nobody fits: no one has the skill '{skill}'" if skill else "Nobody fits: the team is empty"
    parts = []
    if full:
        parts.append(_count(full, "is at capacity", "are at capacity"))
    if away:
        parts.append(_count(away, "is out of office", "are out of office"))
    if off:
        parts.append(_count(off, "has no working hours in the window", "have no working hours in the window"))
    if skill:
        first, _, rest = parts[0].partition(" ")
        parts[0] = f"{first} with '{skill}' {rest}"
    return "Nobody fits: " + ", ".join(parts)


def choose(task: TaskNeed, candidates: Sequence[Candidate], *, owner_timezone: str) -> Choice:
    """The best member for one task, or nobody with the reason."""
    return assign_many([task], candidates, owner_timezone=owner_timezone)[0]


def assign_many(tasks: Sequence[TaskNeed], candidates: Sequence[Candidate], *, owner_timezone: str) -> list[Choice]:
    """Tasks in the given order; each assignment counts toward the member's load for the next ones."""
    if not tasks:
        return []
    # The reference week for the owner overlap is the batch's first week, so DST is as it will be then.
    engine = _Engine(_prepare(candidates, owner_timezone, min(t.window_start for t in tasks)))
    choices = []
    for task in tasks:
        member, why = engine.choose(task)
        if member is not None:
            engine.take(member)
        choices.append(Choice(task.task_id, member.c.member_id if member else None, why))
    return choices
