"""When people work: parse and describe weekly hours, out-of-office ranges, time zones, skills."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from services.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # the keys of `weekly_availability`, Monday first
_DAY_NAMES = {day: index for index, day in enumerate(DAYS)} | {
    name: index for index, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
}
_CLOCK = r"(\d{1,2})(?::(\d{2}))?"
_SPAN = re.compile(rf"^{_CLOCK}-{_CLOCK}$")
HOURS_EXAMPLE = "`mon-fri 9-17` or `mon-thu 9-17, fri 9-13`"
MAX_SKILLS = 20
MAX_CAPACITY = 50


def parse_hours(text: str) -> dict[str, list[list[str]]]:
    """`mon-fri 9-17`, `mon-thu 9-17, fri 9-13`, `sat 8:30-12:30` -> weekly availability."""
    availability: dict[str, list[list[str]]] = {}
    for part in (piece.strip() for piece in text.lower().split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) != 2:
            raise InvalidInput(f"I can't read the hours `{part}`. Write them like {HOURS_EXAMPLE}.")
        days, span = words
        window = _parse_span(span)
        for day in _parse_days(days):
            availability.setdefault(DAYS[day], []).append(window)
    if not availability:
        raise InvalidInput(f"No working hours given. Write them like {HOURS_EXAMPLE}.")
    return {day: sorted(windows) for day, windows in sorted(availability.items(), key=lambda item: DAYS.index(item[0]))}


def _parse_days(text: str) -> list[int]:
    if "-" in text:
        first, _, last = text.partition("-")
        start, end = _day(first), _day(last)
        return list(range(start, end + 1)) if start <= end else list(range(start, 7)) + list(range(0, end + 1))
    return [_day(text)]


def _day(text: str) -> int:
    if text not in _DAY_NAMES:
        raise InvalidInput(f"`{text}` is not a day. Use mon, tue, wed, thu, fri, sat, sun.")
    return _DAY_NAMES[text]


def _parse_span(text: str) -> list[str]:
    match = _SPAN.match(text)
    if not match:
        raise InvalidInput(f"`{text}` is not a time span. Write it like `9-17` or `8:30-12:30`.")
    start_h, start_m, end_h, end_m = (int(value or 0) for value in match.groups())
    if not (0 <= start_h <= 24 and 0 <= end_h <= 24 and start_m < 60 and end_m < 60):
        raise InvalidInput(f"`{text}` is not a time span within a day.")
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if not start < end <= 24 * 60:
        raise InvalidInput(f"`{text}`: the end must come after the start, within the same day.")
    return [f"{start_h:02d}:{start_m:02d}", f"{end_h:02d}:{end_m:02d}"]


def parse_out_of_office(text: str) -> tuple[date, date] | None:
    """`2027-01-04..2027-01-08`, a single `2027-01-04`, or `off`/`none` to clear."""
    cleaned = text.strip().lower()
    if cleaned in ("off", "none", "clear", "-"):
        return None
    first, _, last = cleaned.partition("..")
    try:
        start = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if last else start
    except ValueError:
        raise InvalidInput("Out of office is a date or a range: `2027-01-04..2027-01-08` (or `off`).") from None
    if end < start:
        raise InvalidInput("The out-of-office range ends before it starts.")
    return start, end


@cache
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_timezone(text: str) -> str:
    name = _zones_by_lower_name().get(text.strip().lower())
    if name is None:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise InvalidInput(f"`{shown}` is not a time zone. Use an Area/City name such as `Europe/Berlin`.")
    return name


def parse_skills(text: str) -> list[str]:
    skills: list[str] = []
    for raw in text.split(","):
        skill = " ".join(raw.strip().lower().split())
        if not skill or skill in skills:
            continue
        if len(skill) > 40:
            raise InvalidInput("A skill name is at most 40 characters.")
        skills.append(skill)
    if len(skills) > MAX_SKILLS:
        raise InvalidInput(f"At most {MAX_SKILLS} skills, please.")
    return skills


def parse_capacity(text: str) -> int:
    # ASCII digits, a few of them: `isdigit()` takes `²`, which int() then refuses with a crash.
    number = text.strip()
    if not re.fullmatch(r"[0-9]{1,3}", number, re.ASCII) or not 1 <= int(number) <= MAX_CAPACITY:
        raise InvalidInput(f"Capacity is how many tasks someone can carry at once: a number from 1 to {MAX_CAPACITY}.")
    return int(number)


NOTIFY_CHOICES = ("slack", "email", "in_app")


def parse_notify_via(text: str) -> str:
    """`slack` (a DM), `email` or `in_app` (the App Home inbox only); `app`/`home` mean in_app."""
    cleaned = text.strip().lower().replace("-", "_")
    cleaned = {"app": "in_app", "home": "in_app", "inapp": "in_app", "dm": "slack", "mail": "email"}.get(cleaned, cleaned)
    if cleaned not in NOTIFY_CHOICES:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise InvalidInput(f"`{shown}` is not a way I can reach you. Use `notify=slack` (a direct message), "
                           "`notify=email` or `notify=in_app` (only your Home tab inbox).")
    return cleaned


def describe_hours(availability: dict[str, Any]) -> str:
    """`Mon-Fri 9-17`, `Mon-Thu 9-17, Fri 9-13`: consecutive days with the same hours collapse."""
    runs: list[tuple[int, int, str]] = []
    for index, day in enumerate(DAYS):
        windows = availability.get(day) or []
        if not windows:
            continue
        hours = " ".join(f"{_short(start)}-{_short(end)}" for start, end in windows)
        if runs and runs[-1][1] == index - 1 and runs[-1][2] == hours:
            runs[-1] = (runs[-1][0], index, hours)
        else:
            runs.append((index, index, hours))
    if not runs:
        return "no working hours set"
    names = [day.capitalize() for day in DAYS]
    return ", ".join(
        f"{names[first]}-{names[last]} {hours}" if last > first else f"{names[first]} {hours}"
        for first, last, hours in runs
    )


def _short(clock: str) -> str:
    hours, _, minutes = clock.partition(":")
    return str(int(hours)) if minutes in ("", "00") else f"{int(hours)}:{minutes}"
