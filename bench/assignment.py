"""Assignment speed: 1,000 tasks over 100 members (target: under 100 ms, pure Python).

Run: .venv/bin/python -m bench.assignment   (also the second section of bench.planning)
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta

from services.planning.assignment import Candidate, TaskNeed, assign_many

SEED = 20240611
RUNS = 7
SKILLS = ("copywriting", "design", "video", "social", "seo", "email", "analytics", "pr", "events", "web")
ROLES = (None, "designer", "copywriter", "marketer", "producer")
ZONES = ("UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
         "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo", "Pacific/Auckland")
WEEKS = (
    {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    {d: [["09:00", "13:00"]] for d in ("mon", "tue", "wed")},
    {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], "tue": [["08:00", "16:00"]], "thu": [["10:00", "18:00"]]},
    {d: [["22:00", "06:00"]] for d in ("sun", "mon", "tue", "wed", "thu")},
)


def _data(seed: int = SEED) -> tuple[list[TaskNeed], list[Candidate]]:
    rng = random.Random(seed)
    start = datetime(2025, 3, 3, 8, tzinfo=UTC)
    members = []
    for i in range(100):
        away = None
        if rng.random() < 0.15:
            first = date(2025, 3, 3) + timedelta(days=rng.randrange(60))
            away = (first, first + timedelta(days=rng.randrange(1, 15)))
        members.append(Candidate(
            member_id=i + 1, name=f"Member {i:03d}", skills=frozenset(rng.sample(SKILLS, rng.randint(1, 3))),
            role=rng.choice(ROLES), timezone=rng.choice(ZONES), weekly_availability=rng.choice(WEEKS),
            max_concurrent=rng.randint(2, 10), active_tasks=rng.randint(0, 2), out_of_office=away,
            tasks_in_campaign=rng.randint(0, 3),
        ))
    tasks = []
    for i in range(1000):
        begin = start + timedelta(hours=rng.randrange(24 * 60))
        tasks.append(TaskNeed(
            task_id=i + 1, title=f"Task {i}", skill=rng.choice((*SKILLS, None)),
            window_start=begin, window_end=begin + timedelta(hours=rng.randint(1, 24 * 10)),
        ))
    return tasks, members


def bench_assignment() -> dict[str, float | int]:
    tasks, members = _data()
    times = []
    assigned = 0
    for _ in range(RUNS):
        began = time.perf_counter()
        choices = assign_many(tasks, members, owner_timezone="Europe/Berlin")
        times.append((time.perf_counter() - began) * 1000)
        assigned = sum(c.member_id is not None for c in choices)
    result: dict[str, float | int] = {
        "tasks": len(tasks), "members": len(members), "assigned": assigned,
        "median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
    }
    print(f"assignment: {len(tasks)} tasks over {len(members)} members: median {result['median_ms']} ms "
          f"of {RUNS} runs, {assigned} assigned")
    return result


if __name__ == "__main__":
    bench_assignment()
