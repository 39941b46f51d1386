"""Durations people type: one grammar, two meanings of a day.

An estimate or a template counts working time (a day is 8 working hours, a week 5 days); an escalation
policy counts elapsed time (a day is 24 hours). The tables pin what each entry point accepted before the
two parsers became one, so folding them changed no stored value.
"""

from __future__ import annotations

import pytest

from services.durations import ELAPSED_TIME, WORKING_TIME, DurationError, hours_of
from services.errors import InvalidInput
from services.escalation_policy import parse_change
from services.planning.templates import parse_duration as working_hours

# What an estimate or a template file accepts, and the working hours it means.
WORKING = [
    ("4h", 4), ("2d", 16), ("1.5d", 12), ("30m", 0.5), ("1w", 40), (".5h", 0.5), ("2.", 2), ("4", 4),
    (4, 4), (2.5, 2.5), (0, 0), ("0", 0), (" 2 D ", 16), ("3 days", 24), ("1day", 8), ("90 min", 1.5),
    ("90 mins", 1.5), ("45 minutes", 0.75), ("1 minute", 1 / 60), ("1 hour", 1), ("2hrs", 2), ("2hr", 2),
    ("2 Hours", 2), ("1wk", 40), ("2 weeks", 80), ("1 week", 40), ("0.25d", 2), ("10m", 10 / 60),
    ("1.25m", 1.25 / 60), ("4\th", 4),
]  # fmt: skip

# What `/campaign escalation ... grace=` accepts, and the elapsed hours stored (rounded to the minute).
ELAPSED = [
    ("30m", 0.5), ("4h", 4), ("1.5h", 1.5), ("1d", 24), ("2d", 48), ("1.5d", 36), ("4", 4), ("0", 0),
    (".5h", 0.5), ("1.5 hours", 1.5), ("2 Hours", 2), ("1 hour", 1), ("2hr", 2), ("2hrs", 2), ("90 min", 1.5),
    ("90 mins", 1.5), ("45 minutes", 0.75), ("1 minute", 1 / 60), ("7 days", 168), ("1day", 24),
    (" 2 D ", 48), ("1.25m", 1 / 60), ("0.01h", 1 / 60), ("0.1h", 0.1), ("10m", 10 / 60), ("٣h", 3),
    ("30d", 720),
]  # fmt: skip

# Refused by both, before and after.
NEITHER = ["soon", "-1h", "nan", "1e3h", "4 h 30 m", "2x", "inf", "h", "1,5h", "- 4h"]


def elapsed_hours(text: str) -> float:
    return parse_change([f"grace={text}"]).values["task_grace_hours"]


@pytest.mark.parametrize(("text", "hours"), WORKING)
def test_working_time_reads_as_before(text: str | float, hours: float) -> None:
    assert working_hours(text) == pytest.approx(hours, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("text", "hours"), ELAPSED)
def test_elapsed_time_reads_as_before(text: str, hours: float) -> None:
    assert elapsed_hours(text) == pytest.approx(hours, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("text", NEITHER)
def test_what_is_not_a_duration_is_refused_by_both(text: str) -> None:
    with pytest.raises(ValueError):
        working_hours(text)
    with pytest.raises(InvalidInput):
        elapsed_hours(text)


def test_elapsed_time_has_no_weeks() -> None:
    with pytest.raises(InvalidInput):
        elapsed_hours("1w")


# ---------------------------------------------------------------- since the grammar is one


@pytest.mark.parametrize(("text", "working", "elapsed"), [("2d", 16, 48), ("1.5d", 12, 36), ("3h", 3, 3),
                                                          ("90 min", 1.5, 1.5), ("2.", 2, 2), ("２h", 2, 2)])
def test_one_grammar_two_days(text: str, working: float, elapsed: float) -> None:
    assert (hours_of(text, WORKING_TIME), hours_of(text, ELAPSED_TIME)) == (working, elapsed)


def test_each_error_says_which_day_it_means() -> None:
    with pytest.raises(DurationError) as working:
        hours_of("soon", WORKING_TIME)
    with pytest.raises(DurationError) as elapsed:
        hours_of("1w", ELAPSED_TIME)
    assert "2d = two working days of 8 hours" in str(working.value)
    assert str(elapsed.value).startswith("'1w' is not a duration") and "2d = 48 hours" in str(elapsed.value)
    with pytest.raises(InvalidInput) as typed:
        elapsed_hours("soon")
    assert str(typed.value) == ("`grace=`: `soon` is not a duration "
                                "(write it like 30m, 4h or 1d; 2d = 48 hours; a bare number is hours).")
