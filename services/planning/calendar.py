"""Working time: which moments count as work, and arithmetic in working hours.

The schedule works in working-hour offsets (plain floats); this calendar turns offsets into real moments
and back. Working time is read on the local wall clock of the calendar's time zone, so 09:00-17:00 is
8 working hours on every working day, the days the clocks change included: the UTC offset moves, the
working day does not.

Inside, a moment becomes its *working position*: the whole working days before its local date times the
length of a day, plus the part of its own day already worked, in integer microseconds. Counting working
days before a date is O(1) (whole weeks by arithmetic, holidays by bisection) and so is the inverse, so
adding a year of hours costs the same as adding one. Integers rather than floats make "add h, then
subtract h" land exactly on the start.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MICROS_PER_HOUR = 3_600_000_000
_WEEK = 7


def _micros_of_day(moment: time | datetime) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; the calendar only takes aware datetimes")


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and hours in one time zone.

    A working day runs from `day_start` (included) to `day_end` (excluded) local time. Both must fall on
    the same calendar day. Wall-clock hours count, so a clock change inside working hours (not the case
    for 09:00-17:00 in any zone we serve) still yields `hours_per_day` working hours that day.
    """

    timezone: str
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()

    # Derived once here so every call is arithmetic only; excluded from equality, hash and repr.
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _start_micros: int = field(init=False, repr=False, compare=False)
    _day_micros: int = field(init=False, repr=False, compare=False)
    _per_week: int = field(init=False, repr=False, compare=False)
    # _before_weekday[w]: how many workdays come before weekday w in a week (Monday = 0).
    _before_weekday: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # _nth_weekday[r]: the weekday of the r-th workday of a week.
    _nth_weekday: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # Ordinals of the holidays that fall on workdays (the others change nothing), sorted for bisection.
    _holiday_ordinals: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("day_start and day_end are local wall-clock times; give them without tzinfo")
        if self.day_end <= self.day_start:
            raise ValueError("the working day must end after it starts, on the same day")
        workdays = frozenset(self.workdays)
        if not workdays or not workdays <= set(range(_WEEK)):
            raise ValueError("workdays must be a non-empty set of weekdays 0 (Monday) to 6 (Sunday)")
        holidays = frozenset(self.holidays)
        # A frozen dataclass only lets __post_init__ set attributes through object.__setattr__.
        put = object.__setattr__
        put(self, "workdays", workdays)
        put(self, "holidays", holidays)
        put(self, "_zone", zone)
        put(self, "_start_micros", _micros_of_day(self.day_start))
        put(self, "_day_micros", _micros_of_day(self.day_end) - _micros_of_day(self.day_start))
        put(self, "_per_week", len(workdays))
        put(self, "_before_weekday", tuple(sum(1 for w in workdays if w < day) for day in range(_WEEK)))
        put(self, "_nth_weekday", tuple(sorted(workdays)))
        put(
            self,
            "_holiday_ordinals",
            tuple(sorted(d.toordinal() for d in holidays if d.weekday() in workdays)),
        )

    @property
    def hours_per_day(self) -> float:
        return self._day_micros / _MICROS_PER_HOUR

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def next_working_moment(self, moment: datetime) -> datetime:
        """The moment itself when it is inside working hours, else the start of the next working day."""
        _require_aware(moment)
        return self._moment(self._position(moment), prefer_day_end=False)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` working hours after `start` (before it when negative), in UTC.

        Going forward, a result that lands exactly on a day boundary is that day's end (Friday 17:00, not
        Monday 09:00): a task finishing then is done before the weekend. Going backward it is the next
        working day's start. Adding 0 moves a moment outside working hours to the next working moment.
        """
        _require_aware(start)
        if not math.isfinite(hours):
            raise ValueError(f"hours must be a finite number, not {hours}")
        delta = round(hours * _MICROS_PER_HOUR)
        return self._moment(self._position(start) + delta, prefer_day_end=delta > 0)

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from `start` to `end`; negative when `end` comes first."""
        _require_aware(start)
        _require_aware(end)
        return (self._position(end) - self._position(start)) / _MICROS_PER_HOUR

    def end_of_previous_working_day(self, day: date) -> datetime:
        """The end of the last working day before `day`, in UTC: "done before launch day starts"."""
        if isinstance(day, datetime):
            raise TypeError("end_of_previous_working_day takes a date, not a datetime")
        return self._moment(self._days_before(day.toordinal()) * self._day_micros, prefer_day_end=True)

    # Positions: integer working microseconds since the start of 0001-01-01 (ordinal 1, a Monday).

    def _is_working_ordinal(self, ordinal: int) -> bool:
        return (ordinal - 1) % _WEEK in self.workdays and not self._is_holiday_ordinal(ordinal)

    def _is_holiday_ordinal(self, ordinal: int) -> bool:
        index = bisect_left(self._holiday_ordinals, ordinal)
        return index < len(self._holiday_ordinals) and self._holiday_ordinals[index] == ordinal

    def _days_before(self, ordinal: int) -> int:
        """Working days with an ordinal below `ordinal`."""
        weeks, weekday = divmod(ordinal - 1, _WEEK)
        plain = weeks * self._per_week + self._before_weekday[weekday]
        return plain - bisect_left(self._holiday_ordinals, ordinal)

    def _nth_working_ordinal(self, n: int) -> int:
        """The ordinal of the n-th working day (0-based), the inverse of `_days_before`.

        Without holidays the n-th workday is found by arithmetic. Holidays push it later: the answer is
        the j-th plain workday where j = n + (holidays up to and including it). Iterating
        j <- n + holidays_upto(plain(j)) from j = n climbs to the least such j, which is the answer; it
        takes one step per cluster of holidays crossed, usually one or two in all.
        """
        j = n
        while True:
            weeks, rank = divmod(j, self._per_week)
            ordinal = weeks * _WEEK + self._nth_weekday[rank] + 1
            following = n + bisect_right(self._holiday_ordinals, ordinal)
            if following == j:
                return ordinal
            j = following

    def _position(self, moment: datetime) -> int:
        local = moment.astimezone(self._zone)
        ordinal = local.toordinal()
        worked_days = self._days_before(ordinal) * self._day_micros
        if not self._is_working_ordinal(ordinal):
            return worked_days
        into_day = _micros_of_day(local) - self._start_micros
        return worked_days + min(max(into_day, 0), self._day_micros)

    def _moment(self, position: int, *, prefer_day_end: bool) -> datetime:
        # A position on a day boundary is both the end of one working day and the start of the next.
        days, into_day = divmod(position, self._day_micros)
        if into_day == 0 and prefer_day_end:
            days, into_day = days - 1, self._day_micros
        day = date.fromordinal(self._nth_working_ordinal(days))
        wall = datetime.combine(day, self.day_start) + timedelta(microseconds=into_day)
        # fold=0: an ambiguous wall time (clocks going back) is its first occurrence.
        return wall.replace(tzinfo=self._zone).astimezone(UTC)
