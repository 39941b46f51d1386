"""Working calendar: hand-checked moments (weekends, holidays, both DST changes) and arithmetic laws."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.planning.calendar import WorkingCalendar

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
berlin = WorkingCalendar("Europe/Berlin")
new_york = WorkingCalendar("America/New_York")


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def local(moment: datetime, zone: ZoneInfo = BERLIN) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def test_defaults_and_working_days() -> None:
    assert berlin.hours_per_day == 8.0
    assert berlin.is_working_day(date(2027, 3, 26))  # Friday
    assert not berlin.is_working_day(date(2027, 3, 27))  # Saturday
    holiday = WorkingCalendar("Europe/Berlin", holidays=frozenset({date(2027, 3, 26)}))
    assert not holiday.is_working_day(date(2027, 3, 26))
    assert WorkingCalendar("UTC", day_start=time(8, 30), day_end=time(12, 0)).hours_per_day == 3.5


@pytest.mark.parametrize(
    "settings_",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "UTC", "day_start": time(17), "day_end": time(9)},
        {"timezone": "UTC", "workdays": frozenset()},
        {"timezone": "UTC", "workdays": frozenset({7})},
    ],
)
def test_bad_calendars_are_refused(settings_: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(**settings_)  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2027, 3, 26, 10)
    aware = at(BERLIN, 2027, 3, 26, 10)
    with pytest.raises(ValueError):
        berlin.next_working_moment(naive)
    with pytest.raises(ValueError):
        berlin.add_working_hours(naive, 1)
    with pytest.raises(ValueError):
        berlin.working_hours_between(aware, naive)


def test_next_working_moment() -> None:
    inside = at(BERLIN, 2027, 3, 24, 10, 30)
    assert berlin.next_working_moment(inside) == inside
    assert berlin.next_working_moment(inside).tzinfo is UTC
    assert local(berlin.next_working_moment(at(BERLIN, 2027, 3, 24, 6))) == datetime(2027, 3, 24, 9)
    # 17:00 is past the working day (which ends just before it); so is the weekend.
    assert local(berlin.next_working_moment(at(BERLIN, 2027, 3, 24, 17))) == datetime(2027, 3, 25, 9)
    assert local(berlin.next_working_moment(at(BERLIN, 2027, 3, 27, 12))) == datetime(2027, 3, 29, 9)


def test_chain_across_a_weekend() -> None:
    friday = at(BERLIN, 2027, 3, 19, 15)
    assert local(berlin.add_working_hours(friday, 4)) == datetime(2027, 3, 22, 11)  # 2 h Fri, 2 h Mon
    assert berlin.working_hours_between(friday, berlin.add_working_hours(friday, 4)) == 4
    # Work that fills Friday ends on Friday 17:00, not on Monday 09:00.
    assert local(berlin.add_working_hours(at(BERLIN, 2027, 3, 19, 9), 8)) == datetime(2027, 3, 19, 17)
    # Going back: Monday 10:00 minus 2 h is Friday 16:00; landing on 09:00 stays on Monday.
    assert local(berlin.add_working_hours(at(BERLIN, 2027, 3, 22, 10), -2)) == datetime(2027, 3, 19, 16)
    assert local(berlin.add_working_hours(at(BERLIN, 2027, 3, 22, 11), -2)) == datetime(2027, 3, 22, 9)
    # Adding nothing to a Saturday moment gives Monday's start; the weekend counts for nothing.
    assert local(berlin.add_working_hours(at(BERLIN, 2027, 3, 20, 12), 0)) == datetime(2027, 3, 22, 9)
    assert berlin.working_hours_between(at(BERLIN, 2027, 3, 19, 17), at(BERLIN, 2027, 3, 22, 9)) == 0
    assert berlin.working_hours_between(at(BERLIN, 2027, 3, 22, 11), friday) == -4


def test_berlin_spring_forward_keeps_eight_hour_days() -> None:
    # Clocks go from 02:00 to 03:00 on Sunday 2027-03-28: Friday is UTC+1, Monday UTC+2.
    friday = at(BERLIN, 2027, 3, 26, 9)
    assert friday.astimezone(UTC).hour == 8
    monday_end = berlin.add_working_hours(friday, 16)
    assert monday_end == datetime(2027, 3, 29, 15, tzinfo=UTC)  # 17:00 CEST
    assert local(monday_end) == datetime(2027, 3, 29, 17)
    assert berlin.working_hours_between(friday, monday_end) == 16
    # Working on the Sunday itself: still 8 working hours, though the day is 23 hours long.
    every_day = WorkingCalendar("Europe/Berlin", workdays=frozenset(range(7)))
    assert every_day.working_hours_between(at(BERLIN, 2027, 3, 28), at(BERLIN, 2027, 3, 29)) == 8
    assert every_day.add_working_hours(at(BERLIN, 2027, 3, 28, 9), 8) == datetime(2027, 3, 28, 15, tzinfo=UTC)


def test_new_york_fall_back_keeps_eight_hour_days() -> None:
    # Clocks go from 02:00 back to 01:00 on Sunday 2027-11-07: Friday is UTC-4, Monday UTC-5.
    friday = at(NEW_YORK, 2027, 11, 5, 9)
    monday_end = new_york.add_working_hours(friday, 16)
    assert monday_end == datetime(2027, 11, 8, 22, tzinfo=UTC)  # 17:00 EST
    assert new_york.working_hours_between(friday, monday_end) == 16
    every_day = WorkingCalendar("America/New_York", workdays=frozenset(range(7)))
    assert every_day.working_hours_between(at(NEW_YORK, 2027, 11, 7), at(NEW_YORK, 2027, 11, 8)) == 8


def test_holidays_are_skipped() -> None:
    easter = frozenset({date(2027, 3, 26), date(2027, 3, 29)})  # Good Friday, Easter Monday
    calendar = WorkingCalendar("Europe/Berlin", holidays=easter)
    thursday = at(BERLIN, 2027, 3, 25, 9)
    assert local(calendar.add_working_hours(thursday, 9)) == datetime(2027, 3, 30, 10)
    assert calendar.working_hours_between(thursday, at(BERLIN, 2027, 3, 31, 9)) == 16
    assert local(calendar.next_working_moment(at(BERLIN, 2027, 3, 26, 10))) == datetime(2027, 3, 30, 9)
    assert local(calendar.add_working_hours(at(BERLIN, 2027, 3, 30, 9), -1)) == datetime(2027, 3, 25, 16)
    # A holiday on a Saturday changes nothing.
    saturday_off = WorkingCalendar("Europe/Berlin", holidays=frozenset({date(2027, 3, 27)}))
    assert saturday_off.add_working_hours(thursday, 24) == berlin.add_working_hours(thursday, 24)


def test_end_of_previous_working_day() -> None:
    assert local(berlin.end_of_previous_working_day(date(2027, 3, 29))) == datetime(2027, 3, 26, 17)
    assert local(berlin.end_of_previous_working_day(date(2027, 3, 30))) == datetime(2027, 3, 29, 17)
    assert local(berlin.end_of_previous_working_day(date(2027, 3, 28))) == datetime(2027, 3, 26, 17)
    good_friday = WorkingCalendar("Europe/Berlin", holidays=frozenset({date(2027, 3, 26)}))
    assert local(good_friday.end_of_previous_working_day(date(2027, 3, 29))) == datetime(2027, 3, 25, 17)


def test_a_year_of_hours_is_cheap() -> None:
    start = at(BERLIN, 2027, 1, 4, 9)  # a Monday
    year_later = berlin.add_working_hours(start, 52 * 40)
    assert local(year_later) == datetime(2027, 12, 31, 17)  # 52 full weeks end on a Friday evening
    calls = 500
    began = clock.perf_counter()
    for _ in range(calls):
        berlin.add_working_hours(start, 52 * 40)
    assert (clock.perf_counter() - began) / calls < 0.0005  # measured: about 5 microseconds


# Laws, on random calendars and moments.

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    start_hour = draw(st.integers(6, 10))
    length = draw(st.integers(4, 10))
    workdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    holidays = draw(st.frozensets(st.dates(date(2026, 1, 1), date(2028, 12, 31)), max_size=30))
    return WorkingCalendar(
        draw(st.sampled_from(ZONES)),
        day_start=time(start_hour, draw(st.sampled_from([0, 30]))),
        day_end=time(start_hour + length),
        workdays=workdays,
        holidays=holidays,
    )


moments = st.datetimes(datetime(2026, 6, 1), datetime(2027, 6, 1), timezones=st.just(UTC))
hours = st.floats(-2000, 2000, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(calendars(), moments, hours)
def test_between_undoes_add(calendar: WorkingCalendar, start: datetime, amount: float) -> None:
    end = calendar.add_working_hours(start, amount)
    assert end.tzinfo is UTC
    assert calendar.working_hours_between(start, end) == pytest.approx(amount, abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(calendars(), moments, st.floats(0, 2000, allow_nan=False))
def test_add_then_subtract_returns_to_a_working_moment(
    calendar: WorkingCalendar, anywhere: datetime, amount: float
) -> None:
    start = calendar.next_working_moment(anywhere)
    assert calendar.add_working_hours(calendar.add_working_hours(start, amount), -amount) == start
    # Backwards first: the same working position, though a day boundary may come back as the day's end.
    there_and_back = calendar.add_working_hours(calendar.add_working_hours(start, -amount), amount)
    assert calendar.working_hours_between(start, there_and_back) == 0


@settings(max_examples=80, deadline=None)
@given(calendars(), moments, hours, hours)
def test_adding_is_monotonic(calendar: WorkingCalendar, start: datetime, first: float, second: float) -> None:
    low, high = sorted((first, second))
    assert calendar.add_working_hours(start, low) <= calendar.add_working_hours(start, high)


@settings(max_examples=80, deadline=None)
@given(calendars(), moments, st.integers(0, 10 * 24 * 60))
def test_next_working_moment_is_the_first_working_moment_not_before(
    calendar: WorkingCalendar, moment: datetime, minutes_later: int
) -> None:
    later = moment + timedelta(minutes=minutes_later)
    found = calendar.next_working_moment(moment)
    assert found >= moment
    assert calendar.working_hours_between(moment, found) == 0
    assert calendar.next_working_moment(found) == found
    assert calendar.next_working_moment(later) >= found
    assert calendar.working_hours_between(moment, later) >= 0
