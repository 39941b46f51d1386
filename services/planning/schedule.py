"""The critical path method on plain lists: earliest and latest dates, float, and the critical path.

Tasks are the integers 0..n-1 and times are working-hour offsets (floats); the calendar turns them into
moments. Links are finish-to-start with a lag in working hours.

Speed is a product requirement (a plan is recomputed on every edit), so the hot loops touch only lists
of ints and floats, with the links read once:
- each task's outgoing links are one flat list, successor and lag interleaved ([s0, lag0, s1, lag1, ...]):
  one list per task is cheaper to fill and to walk than two parallel ones, and stepping through it by
  index beats zip() over an iterator (measured: about 20% off each pass);
- Kahn's algorithm runs over a list that is read while it grows, and the forward pass rides along, since
  a task's earliest start is final once it leaves the queue;
- no list of incoming links at all: the critical path needs the predecessors of a handful of tasks and
  picks those links out at C speed (`itertools.compress`), and a cycle is traced only on failure.
A Link checks itself when it is made (ids not negative, not linked to itself, lag finite and not
negative), so the hot path only has to catch ids past the last task. `bench/planning.py` measures it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

from services.planning import cycles
from services.planning.cycles import CycleError

# Two times this close are equal: a link is "driving" when it alone would put the successor where it is.
TOLERANCE = 1e-9
# Float a task may carry above the minimum, from rounding alone, and still be looked at for the path.
_FLOAT_SLACK = 1e-6

_successor_of = operator.attrgetter("successor")


@dataclass(frozen=True, slots=True)
class Link:
    """Finish-to-start: `successor` starts at least `lag` working hours after `predecessor` finishes."""

    predecessor: int
    successor: int
    lag: float = 0.0

    def __post_init__(self) -> None:
        if self.predecessor < 0 or self.successor < 0:
            raise ValueError(f"link {self.predecessor} -> {self.successor}: task ids start at 0")
        if self.predecessor == self.successor:
            raise ValueError(f"task {self.predecessor} is linked to itself")
        if not (math.isfinite(self.lag) and self.lag >= 0):
            raise ValueError(f"link {self.predecessor} -> {self.successor}: lag must be finite, not negative")


@dataclass
class Schedule:
    """Per-task lists indexed by task id, in working hours from the plan's origin; see compute_schedule."""

    order: list[int]
    earliest_start: list[float]
    earliest_finish: list[float]
    latest_start: list[float]
    latest_finish: list[float]
    total_float: list[float]
    critical_path: list[int]
    project_finish: float
    min_float: float


# Per task, successors and lags interleaved; Any because mypy cannot type an alternating list.
_Outgoing = list[list[Any]]


def _adjacency(task_count: int, links: Sequence[Link]) -> tuple[_Outgoing, list[int]]:
    """Outgoing links per task and the number of incoming links per task."""
    outgoing: _Outgoing = [[] for _ in range(task_count)]
    incoming_count = [0] * task_count
    try:
        for link in links:
            successor = link.successor
            pairs = outgoing[link.predecessor]
            pairs.append(successor)
            pairs.append(link.lag)
            incoming_count[successor] += 1
    except IndexError:
        raise _outside(task_count, links) from None
    return outgoing, incoming_count


def _outside(task_count: int, links: Sequence[Link]) -> ValueError:
    bad = next(link for link in links if max(link.predecessor, link.successor) >= task_count)
    return ValueError(f"link {bad.predecessor} -> {bad.successor} names a task outside 0..{task_count - 1}")


def _pairs(links: Sequence[Link]) -> list[tuple[int, int]]:
    return [(link.predecessor, link.successor) for link in links]


def find_cycle(task_count: int, links: Sequence[Link]) -> list[int] | None:
    """One cycle of the links (task ids in link order, the first not repeated), or None if there is none."""
    try:
        return cycles.find_cycle(range(task_count), _pairs(links))
    except KeyError:  # a link names a task past the last
        raise _outside(task_count, links) from None


def _require_finite(values: list[float], what: str, *, non_negative: bool) -> None:
    # A NaN or an infinity anywhere makes the sum non-finite: one pass at C speed instead of a test each.
    if values and (not math.isfinite(sum(values)) or (non_negative and min(values) < 0)):
        raise ValueError(f"{what} must be finite{' and not negative' if non_negative else ''}")


def compute_schedule(
    durations: Sequence[float],
    links: Sequence[Link],
    *,
    deadline: float,
    min_start: Sequence[float] | float = 0.0,
) -> Schedule:
    """Forward and backward passes, total float and the critical path.

    `min_start` is one earliest start for every task or one per task. Tasks without successors must
    finish by `deadline`; float is negative where they cannot (the plan is compressed).
    """
    task_count = len(durations)
    duration = list(durations)
    _require_finite(duration, "durations", non_negative=True)
    _require_finite([deadline], "the deadline", non_negative=False)
    if isinstance(min_start, int | float):
        earliest_start = [float(min_start)] * task_count
    else:
        earliest_start = [float(value) for value in min_start]
        if len(earliest_start) != task_count:
            raise ValueError(f"min_start has {len(earliest_start)} values for {task_count} tasks")
    _require_finite(earliest_start, "min_start", non_negative=False)

    outgoing, waiting = _adjacency(task_count, links)
    # Kahn's algorithm with the forward pass folded in: when a task is taken from the queue all its
    # predecessors are done, so its earliest start is final and can be pushed on to its successors.
    earliest_finish = [0.0] * task_count
    order = [task for task in range(task_count) if not waiting[task]]
    ready = order.append
    for task in order:
        finish = earliest_start[task] + duration[task]
        earliest_finish[task] = finish
        pairs = outgoing[task]
        for at in range(0, len(pairs), 2):
            successor = pairs[at]
            start = finish + pairs[at + 1]
            if start > earliest_start[successor]:
                earliest_start[successor] = start
            left = waiting[successor] - 1
            waiting[successor] = left
            if not left:
                ready(successor)
    if len(order) < task_count:
        stuck = [task for task in range(task_count) if waiting[task]]
        raise CycleError(cycles.trace_cycle(stuck, _pairs(links)))

    # Backward pass in reverse order, pulling from successors. Starting from the deadline is the same as
    # "deadline for tasks without successors": a successor's latest start minus a lag never exceeds it.
    latest_start = [0.0] * task_count
    latest_finish = [0.0] * task_count
    for task in reversed(order):
        finish = deadline
        pairs = outgoing[task]
        for at in range(0, len(pairs), 2):
            bound = latest_start[pairs[at]] - pairs[at + 1]
            if bound < finish:
                finish = bound
        latest_finish[task] = finish
        latest_start[task] = finish - duration[task]

    total_float = list(map(operator.sub, latest_start, earliest_start))
    if task_count:
        project_finish = max(earliest_finish)
        min_float = min(total_float)
    else:
        project_finish = float(min_start) if isinstance(min_start, int | float) else 0.0
        min_float = 0.0
    critical_path = _critical_path(links, outgoing, earliest_start, earliest_finish, total_float, min_float)
    return Schedule(
        order=order,
        earliest_start=earliest_start,
        earliest_finish=earliest_finish,
        latest_start=latest_start,
        latest_finish=latest_finish,
        total_float=total_float,
        critical_path=critical_path,
        project_finish=project_finish,
        min_float=min_float,
    )


def _critical_path(
    links: Sequence[Link],
    outgoing: _Outgoing,
    earliest_start: list[float],
    earliest_finish: list[float],
    total_float: list[float],
    min_float: float,
) -> list[int]:
    """Walk back along driving links from the task that finishes last.

    Among tasks finishing last, one without successors comes first: a closing milestone finishes with
    the task before it, and the path should end at the milestone. Then the smallest float, then the
    lowest id. Such a task has the minimum float (the deadline minus the project finish), and along a
    driving link the predecessor's float is at most the successor's, so the walk never leaves the
    tasks with the minimum float: only the links into those are gathered, the rest skipped at C speed.
    """
    if not earliest_finish:
        return []
    finish_line = max(earliest_finish) - TOLERANCE
    last = min(
        (task for task, finish in enumerate(earliest_finish) if finish >= finish_line),
        key=lambda task: (bool(outgoing[task]), total_float[task], task),
    )
    threshold = min_float + _FLOAT_SLACK
    near_minimum = [value <= threshold for value in total_float]
    links_into: dict[int, list[Link]] = {}
    for link in compress(links, map(near_minimum.__getitem__, map(_successor_of, links))):
        links_into.setdefault(link.successor, []).append(link)

    path = [last]
    task = last
    while True:
        if near_minimum[task]:
            into = links_into.get(task, [])
        else:  # rounding beyond the slack: unlikely, so a plain scan will do
            into = [link for link in links if link.successor == task]
        start = earliest_start[task]
        driver = -1
        for link in into:
            candidate = link.predecessor
            if abs(earliest_finish[candidate] + link.lag - start) <= TOLERANCE and (
                driver < 0
                or total_float[candidate] < total_float[driver]
                or (total_float[candidate] == total_float[driver] and candidate < driver)
            ):
                driver = candidate
        if driver < 0:
            break
        path.append(driver)
        task = driver
    path.reverse()
    return path
