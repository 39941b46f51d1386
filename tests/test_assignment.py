"""The assignment engine: who fits a task, who is ranked first, and what the owner is told."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.availability import DAYS
from services.planning.assignment import Candidate, Choice, TaskNeed, assign_many, choose

OWNER = "Europe/Berlin"
WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
MONDAY = date(2025, 6, 2)  # no DST change near this week anywhere used below


def member(
    member_id: int,
    name: str = "",
    *,
    skills: Sequence[str] = ("design",),
    role: str | None = None,
    tz: str = OWNER,
    hours: Mapping[str, Sequence[Sequence[str]]] = WEEKDAYS,
    cap: int = 5,
    active: int = 0,
    ooo: tuple[date, date] | None = None,
    cont: int = 0,
) -> Candidate:
    return Candidate(member_id, name or f"Member {member_id}", frozenset(skills), role, tz, hours, cap, active, ooo,
                     cont)


def at(day: int, hour: float, tz: str = OWNER) -> datetime:
    """Day 0 = Monday 2 June 2025, at `hour` o'clock in `tz`."""
    start = datetime.combine(MONDAY + timedelta(days=day), datetime.min.time(), ZoneInfo(tz))
    return start + timedelta(hours=hour)


def task(task_id: int = 1, skill: str | None = "design", start: datetime | None = None,
         end: datetime | None = None) -> TaskNeed:
    return TaskNeed(task_id, f"Task {task_id}", skill, start or at(0, 9), end or at(4, 17))


def pick(t: TaskNeed, *candidates: Candidate) -> Choice:
    return choose(t, candidates, owner_timezone=OWNER)


# --- who fits -----------------------------------------------------------------------------------------


def test_skill_matches_a_skill_or_the_role_case_insensitively() -> None:
    writer = member(1, "Alice", skills=["copywriting"])
    designer = member(2, "Bob", skills=[], role="Designer")
    assert pick(task(skill="Copywriting"), writer, designer).member_id == 1
    assert pick(task(skill="DESIGNER"), writer, designer).member_id == 2
    assert pick(task(skill=None), designer, writer).member_id == 1  # anyone: the name decides the tie


def test_nobody_has_the_skill() -> None:
    assert pick(task(skill="video"), member(1)).explanation == "Nobody fits: no one has the skill 'video'"
    assert pick(task(skill=None)).explanation == "Nobody fits: the team is empty"


def test_a_member_at_capacity_is_skipped() -> None:
    assert pick(task(), member(1, "Alice", active=5), member(2, "Bob", active=4)).member_id == 2
    full = pick(task(), member(1, active=5), member(2, cap=0))
    assert full == Choice(1, None, "Nobody fits: 2 with 'design' are at capacity")


def test_out_of_office_for_the_whole_window_is_skipped() -> None:
    away = member(1, ooo=(MONDAY - timedelta(days=3), MONDAY + timedelta(days=4)))
    assert pick(task(), away).explanation == "Nobody fits: 1 with 'design' is out of office"


def test_out_of_office_for_part_of_the_window_still_fits() -> None:
    first_half = member(1, ooo=(MONDAY, MONDAY + timedelta(days=2)))
    second_half = member(2, ooo=(MONDAY + timedelta(days=3), MONDAY + timedelta(days=9)))
    assert pick(task(), first_half).member_id == 1
    assert pick(task(), second_half).member_id == 2
    # The days left over are a weekend: nothing is worked, so they are out of office for this task.
    thursday_to_sunday = task(start=at(3, 9), end=at(6, 20))
    weekdays_off = member(3, ooo=(MONDAY + timedelta(days=3), MONDAY + timedelta(days=4)))
    assert pick(thursday_to_sunday, weekdays_off).explanation == "Nobody fits: 1 with 'design' is out of office"


def test_working_days_must_fall_in_the_window() -> None:
    mon_tue = member(1, hours={"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]})
    wed_thu = task(start=at(2, 0), end=at(4, 0))
    assert pick(wed_thu, mon_tue).explanation == "Nobody fits: 1 with 'design' has no working hours in the window"
    assert pick(task(start=at(1, 16), end=at(2, 12)), mon_tue).member_id == 1  # the last hour of Tuesday
    # The window's end days count by the hour: Monday evening to Tuesday 08:00 misses both shifts.
    assert pick(task(start=at(0, 18), end=at(1, 8)), mon_tue).member_id is None


def test_a_long_window_covers_every_weekday() -> None:
    sundays = member(1, hours={"sun": [["10:00", "12:00"]]})
    assert pick(task(start=at(0, 9), end=at(9, 17)), sundays).member_id == 1
    assert pick(task(start=at(3, 9), end=at(5, 23)), sundays).member_id is None  # Thu-Sat
    assert pick(task(start=at(3, 9), end=at(6, 11)), sundays).member_id == 1  # ends in Sunday's shift
    # Sunday afternoon to next Sunday morning: six whole days between, none of them a Sunday.
    assert pick(task(start=at(6, 13), end=at(13, 9)), sundays).member_id is None


def test_window_days_are_the_members_own() -> None:
    tokyo = member(1, "Aiko", tz="Asia/Tokyo")
    london = member(2, "Zed", tz="UTC")
    friday_evening_utc = task(start=at(4, 16, "UTC"), end=at(4, 23, "UTC"))  # Saturday 01:00-08:00 in Tokyo
    assert pick(friday_evening_utc, tokyo).member_id is None
    assert pick(friday_evening_utc, tokyo, london).member_id == 2
    monday_morning_tokyo = task(start=at(-1, 23, "UTC"), end=at(0, 2, "UTC"))  # Sunday night in UTC
    assert pick(monday_morning_tokyo, tokyo, london).member_id == 1


def test_overnight_shifts_spill_into_the_next_day() -> None:
    nights = member(1, hours={"fri": [["22:00", "02:00"]]})
    assert pick(task(start=at(5, 1), end=at(5, 3)), nights).member_id == 1  # Saturday 01:00
    assert pick(task(start=at(5, 3), end=at(5, 9)), nights).member_id is None
    short = member(2, hours={"fri": [["23:00", "00:30"]]})
    assert pick(task(start=at(5, 0), end=at(5, 0.25)), short).member_id == 2
    assert pick(task(start=at(5, 0.5), end=at(5, 9)), short).member_id is None


def test_a_milestone_is_judged_on_its_whole_day() -> None:
    assert pick(task(start=at(2, 20), end=at(2, 20)), member(1)).member_id == 1
    assert pick(task(start=at(5, 12), end=at(5, 12)), member(1)).member_id is None


def test_the_window_must_be_aware_and_in_order() -> None:
    with pytest.raises(ValueError, match="aware"):
        TaskNeed(1, "x", None, datetime(2025, 6, 2), at(1, 0))
    with pytest.raises(ValueError, match="before"):
        TaskNeed(1, "x", None, at(1, 0), at(0, 0))


# --- who comes first ----------------------------------------------------------------------------------


def test_lowest_load_ratio_wins() -> None:
    assert pick(task(), member(1, "Alice", active=3), member(2, "Bob", active=1)).member_id == 2
    # A ratio, not a count: 2 of 10 is lighter than 1 of 2.
    assert pick(task(), member(1, "Alice", cap=2, active=1), member(2, "Bob", cap=10, active=2)).member_id == 2


def test_at_equal_load_overlap_with_the_owner_wins() -> None:
    far = member(1, "Aaron", tz="America/Los_Angeles")  # nine hours behind Berlin
    near = member(2, "Zoe")
    assert pick(task(), far, near).member_id == 2
    lighter_far = replace(far, max_concurrent=10)
    assert pick(task(), lighter_far, replace(near, active_tasks=1)).member_id == 1  # load comes first


def test_then_continuity_then_name_then_id() -> None:
    assert pick(task(), member(1, "Alice"), member(2, "Zoe", cont=2)).member_id == 2
    assert pick(task(), member(2, "bob"), member(1, "Carol")).member_id == 2
    assert pick(task(), member(7, "Sam"), member(3, "Sam")).member_id == 3


def test_assign_many_spreads_work_and_respects_capacity() -> None:
    team = [member(1, "Alice", cap=2), member(2, "Bob", cap=2)]
    choices = assign_many([task(i) for i in range(1, 6)], team, owner_timezone=OWNER)
    assert [c.member_id for c in choices] == [1, 2, 1, 2, None]
    assert choices[2].explanation.startswith("Alice: design, 1 of 2 slots busy")
    assert choices[4].explanation == "Nobody fits: 2 with 'design' are at capacity"


def test_assign_many_counts_continuity_within_the_batch() -> None:
    # After tasks 1-3 both are half full (1 of 2, 2 of 4): Bob holds two tasks of this campaign, Alice one.
    team = [member(1, "Alice", cap=2), member(2, "Bob", cap=4)]
    choices = assign_many([task(i) for i in range(1, 6)], team, owner_timezone=OWNER)
    assert [c.member_id for c in choices] == [1, 2, 2, 2, 1]


def test_determinism_whatever_the_candidate_order() -> None:
    rng = random.Random(7)
    team = [member(i, rng.choice(["Ana", "Ben", "Cy"]), skills=rng.sample(["design", "seo"], 1),
                   tz=rng.choice(["UTC", OWNER, "Asia/Tokyo"]), cap=rng.randint(1, 3), cont=rng.randint(0, 1))
            for i in range(1, 13)]
    tasks = [task(i, rng.choice(["design", "seo", None])) for i in range(1, 30)]
    first = assign_many(tasks, team, owner_timezone=OWNER)
    for _ in range(5):
        rng.shuffle(team)
        assert assign_many(tasks, team, owner_timezone=OWNER) == first


# --- what the owner is told ---------------------------------------------------------------------------


def test_explanation_for_the_chosen_member() -> None:
    alice = member(1, "Alice Archer", skills=["copywriting"], active=2)
    assert pick(task(skill="copywriting"), alice).explanation == (
        "Alice Archer: copywriting, 2 of 5 slots busy, works Mon-Fri 9-17 Europe/Berlin")
    assert pick(task(skill=None), alice).explanation == "Alice Archer: 2 of 5 slots busy, works Mon-Fri 9-17 Europe/Berlin"


@pytest.mark.parametrize(
    ("hours", "summary"),
    [
        ({**{d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu")}, "fri": [["09:00", "13:00"]]},
         "Mon-Thu 9-17, Fri 9-13"),
        ({"mon": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]]}, "Mon 9-17, Wed 9-17"),
        ({"mon": [["09:00", "12:00"], ["13:30", "17:00"]], "tue": [["13:30", "17:00"], ["09:00", "12:00"]]},
         "Mon-Tue 9-12/13:30-17"),
        ({"sat": [["22:00", "06:00"]], "sun": [["00:00", "24:00"]]}, "Sat 22-6, Sun 0-24"),
    ],
)
def test_availability_is_summarised_compactly(hours: dict[str, list[list[str]]], summary: str) -> None:
    everyone = member(1, "Kim", hours=hours)
    assert pick(task(skill=None, start=at(0, 0), end=at(7, 0)), everyone).explanation.endswith(f"works {summary} {OWNER}")


def test_explanation_counts_every_reason_nobody_fits() -> None:
    team = [member(1, active=5), member(2, cap=1, active=1), member(3, ooo=(MONDAY, MONDAY + timedelta(days=6))),
            member(4, hours={"sat": [["09:00", "17:00"]]}), member(5, hours={"sun": [["09:00", "17:00"]]}),
            member(6, skills=["seo"])]
    assert pick(task(), *team).explanation == (
        "Nobody fits: 2 with 'design' are at capacity, 1 is out of office, 2 have no working hours in the window")
    assert pick(task(skill=None), member(1, active=5)).explanation == "Nobody fits: 1 is at capacity"


# --- properties ---------------------------------------------------------------------------------------

ZONES = ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati", "Asia/Kolkata", "Europe/Berlin"]
BASE = datetime(2025, 10, 20, tzinfo=UTC)  # the weeks of the EU and US clock changes
clock = st.integers(0, 48).map(lambda i: f"{i // 2:02d}:{i % 2 * 30:02d}")
weeks = st.dictionaries(st.sampled_from(DAYS), st.lists(st.lists(clock, min_size=2, max_size=2), max_size=2))
candidates = st.builds(
    lambda i, skills, role, tz, hours, cap, active, ooo, cont: member(
        i, "Ana", skills=skills, role=role, tz=tz, hours=hours, cap=cap, active=active, ooo=ooo, cont=cont),
    st.integers(1, 10**6), st.sets(st.sampled_from(["design", "seo"]), max_size=2),
    st.sampled_from([None, "writer"]), st.sampled_from(ZONES), weeks, st.integers(0, 3), st.integers(0, 3),
    st.none() | st.tuples(st.integers(-3, 25), st.integers(0, 10)).map(
        lambda p: (BASE.date() + timedelta(days=p[0]), BASE.date() + timedelta(days=p[0] + p[1]))),
    st.integers(0, 2),
)
needs = st.builds(
    lambda skill, offset, length: TaskNeed(0, "t", skill, BASE + timedelta(minutes=15 * offset),
                                           BASE + timedelta(minutes=15 * (offset + length))),
    st.sampled_from(["design", "seo", "writer", None]), st.integers(0, 4 * 24 * 21),
    st.integers(0, 4 * 24 * 2) | st.integers(0, 4 * 24 * 12),
)


def _minutes(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:])


def available(c: Candidate, t: TaskNeed) -> bool:
    """The slow way: walk every local day of the window with its shifts, the overnight ones split at midnight."""
    tz = ZoneInfo(c.timezone)
    start, end = (t.window_start.astimezone(tz).replace(tzinfo=None), t.window_end.astimezone(tz).replace(tzinfo=None))
    if start == end:
        start, end = datetime.combine(start.date(), datetime.min.time()), datetime.combine(start.date() + timedelta(days=1), datetime.min.time())
    day = start.date()
    while day <= end.date():
        away = c.out_of_office and c.out_of_office[0] <= day <= c.out_of_office[1]
        name, yesterday = DAYS[day.weekday()], DAYS[day.weekday() - 1]
        shifts = [(_minutes(a), _minutes(b)) for a, b in c.weekly_availability.get(name, [])]
        shifts = [(a, b if b > a else 24 * 60) for a, b in shifts if a != b]
        shifts += [(0, _minutes(b)) for a, b in c.weekly_availability.get(yesterday, [])
                   if _minutes(b) < _minutes(a)]
        midnight = datetime.combine(day, datetime.min.time())
        for a, b in [(a, b) for a, b in shifts if a < b]:  # an empty shift ("24:00-00:00") is no time
            if not away and midnight + timedelta(minutes=a) < end and midnight + timedelta(minutes=b) > start:
                return True
        day += timedelta(days=1)
    return False


@settings(max_examples=300, deadline=None)
@given(st.lists(candidates, max_size=8, unique_by=lambda c: c.member_id), st.lists(needs, min_size=1, max_size=12))
def test_a_chosen_member_always_fits(team: list[Candidate], tasks: list[TaskNeed]) -> None:
    tasks = [replace(t, task_id=i) for i, t in enumerate(tasks)]
    load = {c.member_id: c.active_tasks for c in team}
    by_id = {c.member_id: c for c in team}
    for t, choice in zip(tasks, assign_many(tasks, team, owner_timezone=OWNER), strict=True):
        fits = [c for c in team if (t.skill is None or t.skill in c.skills | {c.role})
                and load[c.member_id] < c.max_concurrent and available(c, t)]
        if choice.member_id is None:
            assert not fits, choice.explanation
            assert choice.explanation.startswith("Nobody fits: ")
            continue
        chosen = by_id[choice.member_id]
        assert chosen in fits, choice.explanation
        assert load[chosen.member_id] / chosen.max_concurrent == min(load[c.member_id] / c.max_concurrent for c in fits)
        load[chosen.member_id] += 1
