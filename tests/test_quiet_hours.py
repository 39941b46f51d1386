"""Quiet hours: when a non-urgent message may reach someone, in their own zone, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import Urgency
from models.team import default_availability
from services.quiet_hours import next_delivery_time

BERLIN, CHICAGO = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Chicago")


def person(tz: str = "Europe/Berlin", hours: dict[str, Any] | None = None,
           ooo: tuple[date, date] | None = None) -> Any:
    return SimpleNamespace(
        timezone=tz, weekly_availability=default_availability() if hours is None else hours,
        out_of_office_from=ooo[0] if ooo else None, out_of_office_until=ooo[1] if ooo else None,
    )


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def test_inside_working_hours_goes_now() -> None:
    at = local(BERLIN, 2027, 3, 23, 10, 30)  # Tuesday 10:30 CET
    assert next_delivery_time(person(), at, Urgency.NORMAL) == at


def test_evening_waits_for_next_morning() -> None:
    at = local(BERLIN, 2027, 3, 23, 22, 0)  # Tuesday 22:00 CET = 21:00Z
    assert next_delivery_time(person(), at, Urgency.NORMAL) == datetime(2027, 3, 24, 8, 0, tzinfo=UTC)


def test_early_morning_waits_for_the_same_day() -> None:
    at = local(BERLIN, 2027, 3, 23, 6, 0)
    assert next_delivery_time(person(), at, Urgency.LOW) == local(BERLIN, 2027, 3, 23, 9, 0)


def test_sunday_waits_for_monday() -> None:
    at = local(BERLIN, 2027, 3, 21, 11, 0)  # Sunday
    assert next_delivery_time(person(), at, Urgency.NORMAL) == local(BERLIN, 2027, 3, 22, 9, 0)


def test_spring_forward_weekend_lands_on_local_nine() -> None:
    # Friday 22:00 CET (+01:00); clocks go forward on Sunday 2027-03-28; Monday 09:00 is CEST (+02:00).
    at = local(BERLIN, 2027, 3, 26, 22, 0)
    result = next_delivery_time(person(), at, Urgency.NORMAL)
    assert result == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)
    assert result.astimezone(BERLIN).hour == 9


def test_fall_back_weekend_lands_on_local_nine() -> None:
    at = local(BERLIN, 2027, 10, 29, 18, 0)  # Friday CEST; clocks go back Sunday 2027-10-31
    assert next_delivery_time(person(), at, Urgency.NORMAL) == datetime(2027, 11, 1, 8, 0, tzinfo=UTC)


def test_same_instant_differs_by_time_zone() -> None:
    at = datetime(2027, 3, 23, 15, 0, tzinfo=UTC)  # 16:00 in Berlin, 10:00 in Chicago (CDT since 14 March)
    assert next_delivery_time(person("Europe/Berlin"), at, Urgency.NORMAL) == at
    assert next_delivery_time(person("America/Chicago"), at, Urgency.NORMAL) == at
    late = datetime(2027, 3, 23, 20, 0, tzinfo=UTC)  # 21:00 Berlin (quiet), 15:00 Chicago (working)
    assert next_delivery_time(person("Europe/Berlin"), late, Urgency.NORMAL) == local(BERLIN, 2027, 3, 24, 9, 0)
    assert next_delivery_time(person("America/Chicago"), late, Urgency.NORMAL) == late


@pytest.mark.parametrize("urgency", [Urgency.HIGH, Urgency.CRITICAL])
def test_urgent_goes_at_once(urgency: Urgency) -> None:
    at = local(BERLIN, 2027, 3, 21, 3, 0)
    assert next_delivery_time(person(), at, urgency) == at


def test_no_hours_set_goes_at_once() -> None:
    at = local(BERLIN, 2027, 3, 21, 3, 0)
    assert next_delivery_time(person(hours={}), at, Urgency.NORMAL) == at


def test_split_day_waits_for_the_afternoon_window() -> None:
    hours = {"tue": [["09:00", "12:00"], ["13:00", "17:00"]]}
    at = local(BERLIN, 2027, 3, 23, 12, 30)
    assert next_delivery_time(person(hours=hours), at, Urgency.NORMAL) == local(BERLIN, 2027, 3, 23, 13, 0)
    assert next_delivery_time(person(hours=hours), local(BERLIN, 2027, 3, 23, 12, 0), Urgency.NORMAL) == local(
        BERLIN, 2027, 3, 23, 13, 0)  # a window's end is exclusive


def test_out_of_office_days_are_skipped() -> None:
    away = person(ooo=(date(2027, 3, 23), date(2027, 3, 24)))
    at = local(BERLIN, 2027, 3, 23, 10, 0)  # Tuesday, inside the hours but away
    assert next_delivery_time(away, at, Urgency.NORMAL) == local(BERLIN, 2027, 3, 25, 9, 0)


def test_gives_up_after_the_lookahead_and_sends() -> None:
    away = person(ooo=(date(2027, 3, 1), date(2027, 5, 1)))
    at = local(BERLIN, 2027, 3, 23, 10, 0)
    assert next_delivery_time(away, at, Urgency.NORMAL) == at


def test_window_to_midnight_and_bad_zone() -> None:
    night = person(tz="Not/AZone", hours={"sat": [["20:00", "24:00"]]})  # unknown zone reads as UTC
    at = datetime(2027, 3, 27, 23, 30, tzinfo=UTC)
    assert next_delivery_time(night, at, Urgency.NORMAL) == at
    assert next_delivery_time(night, datetime(2027, 3, 27, 10, 0, tzinfo=UTC), Urgency.NORMAL) == datetime(
        2027, 3, 27, 20, 0, tzinfo=UTC)
