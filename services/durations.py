"""Durations people type (`4h`, `1.5d`, `90 min`): one grammar, and a table of units for each meaning.

The grammar: a number, then optionally a unit (`m`, `h`, `d`, `w` or a word for one: `mins`, `hours`,
`days`, `week`...), case and spaces ignored; a bare number is hours. What a unit is worth depends on what
is measured, and the two meanings really do differ:

- WORKING_TIME, for estimates and template files: a day is HOURS_PER_DAY working hours and a week five
  such days, because the plan counts only the campaign calendar's working hours. `2d` of work is 16 hours.
- ELAPSED_TIME, for escalation graces and reminder offsets: a day is 24 hours on the clock, because a
  grace runs through nights and weekends. A `2d` grace ends 48 hours later. It has no week.

Each error says which meaning applies, so whoever typed `2d` learns which day was meant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

HOURS_PER_DAY = 8.0  # a working day: the campaign calendar's 09:00-17:00

_UNIT_WORDS = {"": "h", "min": "m", "mins": "m", "minute": "m", "minutes": "m", "hr": "h", "hrs": "h",
               "hour": "h", "hours": "h", "day": "d", "days": "d", "wk": "w", "week": "w", "weeks": "w"}  # fmt: skip
# \d, not [0-9]: digits from other scripts (full-width ones typed with an IME, say) read as float() reads them.
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")


@dataclass(frozen=True)
class Meaning:
    """What each unit is worth in hours, and how to write a duration in this meaning."""

    unit_hours: Mapping[str, float]  # "m", "h", "d" (and "w" where a week makes sense) -> hours
    hint: str  # ends "is not a duration (...)": examples, and what `2d` means here


WORKING_TIME = Meaning(
    {"m": 1 / 60, "h": 1.0, "d": HOURS_PER_DAY, "w": 5 * HOURS_PER_DAY},
    f"write it like 4h, 1.5d or 30m; 2d = two working days of {HOURS_PER_DAY:g} hours",
)
ELAPSED_TIME = Meaning(
    {"m": 1 / 60, "h": 1.0, "d": 24.0},
    "write it like 30m, 4h or 1d; 2d = 48 hours; a bare number is hours",
)


class DurationError(ValueError):
    """Not a duration in this meaning. `problem` is the message after the typed text, so a caller
    can quote the text its own way (`str()` quotes it like repr)."""

    def __init__(self, typed: object, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{_shown(typed)} {problem}")


def hours_of(text: str | int | float, meaning: Meaning) -> float:
    """Hours in a duration, in `meaning`: ``2d`` is 16 in WORKING_TIME and 48 in ELAPSED_TIME.

    A number (from a YAML file, say) is hours. Raises DurationError on anything else, on a negative
    duration and on one too long for a float.
    """
    hours, negative = math.nan, False
    if isinstance(text, str):
        cleaned = text.strip().lower()
        negative = cleaned.startswith("-")
        match = _DURATION.fullmatch(cleaned.removeprefix("-").lstrip())
        unit = _UNIT_WORDS.get(match.group(2), match.group(2)) if match else ""
        if match and unit in meaning.unit_hours:
            hours = float(match.group(1)) * meaning.unit_hours[unit]
    elif isinstance(text, int | float) and not isinstance(text, bool):
        try:
            hours = float(text)
        except OverflowError:  # an int beyond float
            hours = math.inf if text > 0 else -math.inf
    if math.isnan(hours):
        raise DurationError(text, f"is not a duration ({meaning.hint})")
    if negative or hours < 0:
        raise DurationError(text, "is negative")
    if math.isinf(hours):
        raise DurationError(text, "is too long")
    return hours + 0.0  # no -0.0


def _shown(typed: object) -> str:
    """The typed value as repr() shows it, cut to about 30 characters."""
    if isinstance(typed, int) and abs(typed) > 10**12:  # repr() of a 5,000-digit int raises
        return "that number"
    shown = repr(typed)
    return shown if len(shown) <= 32 else shown[:30] + "…"
