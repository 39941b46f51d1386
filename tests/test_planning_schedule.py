"""Critical path method: hand-checked plans, then laws on random DAGs checked against networkx."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.planning.calendar import WorkingCalendar
from services.planning.schedule import CycleError, Link, Schedule, compute_schedule, find_cycle

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_chain() -> None:
    plan = compute_schedule([8, 16, 4], [Link(0, 1), Link(1, 2)], deadline=40)
    assert plan.order == [0, 1, 2]
    assert plan.earliest_start == [0, 8, 24]
    assert plan.earliest_finish == [8, 24, 28]
    assert plan.latest_finish == [20, 36, 40]
    assert plan.latest_start == [12, 20, 36]
    assert plan.total_float == [12, 12, 12]
    assert plan.critical_path == [0, 1, 2]
    assert (plan.project_finish, plan.min_float) == (28, 12)


def test_a_chain_across_a_weekend_in_dates() -> None:
    """How offsets become moments: the calendar adds each offset to the plan's start."""
    calendar = WorkingCalendar("Europe/Berlin")
    kickoff = datetime(2027, 3, 26, 9, tzinfo=BERLIN)  # a Friday
    plan = compute_schedule([8, 16, 4], [Link(0, 1), Link(1, 2)], deadline=40)

    def moment(offset: float) -> datetime:
        return calendar.add_working_hours(kickoff, offset).astimezone(BERLIN).replace(tzinfo=None)

    # A finish that fills a day is that evening; a start on a day boundary is the next working morning.
    assert moment(plan.earliest_finish[0]) == datetime(2027, 3, 26, 17)
    start = calendar.next_working_moment(calendar.add_working_hours(kickoff, plan.earliest_start[1]))
    assert start.astimezone(BERLIN).replace(tzinfo=None) == datetime(2027, 3, 29, 9)
    assert moment(plan.earliest_finish[1]) == datetime(2027, 3, 30, 17)
    assert moment(plan.earliest_finish[2]) == datetime(2027, 3, 31, 13)
    # And back: a deadline moment becomes an offset.
    assert calendar.working_hours_between(kickoff, datetime(2027, 4, 2, 17, tzinfo=BERLIN)) == 48


def test_a_lag_delays_the_successor() -> None:
    plan = compute_schedule([8, 4], [Link(0, 1, lag=4)], deadline=20)
    assert plan.earliest_start == [0, 12]
    assert plan.latest_start == [4, 16]
    assert plan.critical_path == [0, 1]


def test_parallel_branches_the_longer_is_critical() -> None:
    #      1 (10)
    # 0 <        > 3
    #      2 (4)
    links = [Link(0, 1), Link(0, 2), Link(1, 3), Link(2, 3)]
    plan = compute_schedule([2, 10, 4, 1], links, deadline=13)
    assert plan.earliest_start == [0, 2, 2, 12]
    assert plan.total_float == [0, 0, 6, 0]
    assert plan.critical_path == [0, 1, 3]
    # A lag on the short branch can make it the driving one.
    lagged = compute_schedule([2, 10, 4, 1], [*links[:3], Link(2, 3, lag=7)], deadline=14)
    assert lagged.critical_path == [0, 2, 3]
    assert lagged.total_float == [0, 1, 0, 0]


def test_a_compressed_plan_has_negative_float() -> None:
    plan = compute_schedule([8, 16, 4], [Link(0, 1), Link(1, 2)], deadline=20)
    assert plan.total_float == [-8, -8, -8]
    assert plan.min_float == -8
    assert plan.critical_path == [0, 1, 2]
    side = compute_schedule([8, 16, 4, 2], [Link(0, 1), Link(1, 2), Link(0, 3)], deadline=20)
    assert side.total_float[3] == 10  # the side task still has room
    assert side.critical_path == [0, 1, 2]


def test_milestones_take_no_time() -> None:
    # 0 (8) and 1 (5) lead to the launch milestone 2; 2 leads to a follow-up 3 (4).
    plan = compute_schedule([8, 5, 0, 4], [Link(0, 2), Link(1, 2), Link(2, 3)], deadline=12)
    assert plan.earliest_start[2] == plan.earliest_finish[2] == 8
    assert plan.critical_path == [0, 2, 3]
    assert plan.total_float[1] == 3
    # A closing milestone finishes with its predecessor; the path still ends on it.
    closing = compute_schedule([8, 5, 0], [Link(0, 2), Link(1, 2)], deadline=10)
    assert closing.critical_path == [0, 2]
    assert closing.total_float == [2, 5, 2]


def test_min_start_and_unlinked_tasks() -> None:
    plan = compute_schedule([4, 3, 2], [Link(0, 1)], deadline=30, min_start=[0, 20, 1])
    assert plan.earliest_start == [0, 20, 1]
    assert plan.critical_path == [1]  # it waits for its own start, not for task 0
    assert plan.project_finish == 23
    assert compute_schedule([], [], deadline=5, min_start=2).project_finish == 2
    empty = compute_schedule([], [], deadline=5)
    assert (empty.order, empty.critical_path, empty.min_float) == ([], [], 0)


def test_duplicate_links_count_once() -> None:
    plan = compute_schedule([1, 1], [Link(0, 1), Link(0, 1, lag=2)], deadline=10)
    assert plan.earliest_start == [0, 3]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        compute_schedule([1, 1], [Link(0, 2)], deadline=5)
    with pytest.raises(ValueError, match="itself"):
        compute_schedule([1, 1], [Link(1, 1)], deadline=5)
    with pytest.raises(ValueError):
        Link(0, 1, lag=-1)
    with pytest.raises(ValueError):
        Link(-1, 1)
    with pytest.raises(ValueError):
        compute_schedule([1, -1], [], deadline=5)
    with pytest.raises(ValueError):
        compute_schedule([1, float("nan")], [], deadline=5)
    with pytest.raises(ValueError):
        compute_schedule([1, 1], [], deadline=5, min_start=[0])
    with pytest.raises(ValueError, match="outside"):
        find_cycle(2, [Link(5, 0)])


def test_a_cycle_is_named() -> None:
    links = [Link(0, 1), Link(1, 2), Link(2, 3), Link(3, 1), Link(3, 4)]
    with pytest.raises(CycleError) as raised:
        compute_schedule([1] * 5, links, deadline=10)
    assert raised.value.cycle == [1, 2, 3]  # starts at the lowest id of the loop
    assert str(raised.value) == "dependency cycle 1 -> 2 -> 3 -> 1"
    assert find_cycle(5, links) == raised.value.cycle
    assert find_cycle(5, links[:3]) is None


# Laws on random plans.


@st.composite
def plans(draw: st.DrawFn) -> tuple[list[float], list[Link]]:
    """A random DAG: links only from a lower to a higher position of a random permutation of the ids."""
    count = draw(st.integers(1, 25))
    position = draw(st.permutations(range(count)))
    pairs = draw(
        st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)), max_size=3 * count)
    )
    durations = draw(
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 8.0, 13.5, 40.0]), min_size=count, max_size=count)
    )
    lags = st.sampled_from([0.0, 0.0, 1.0, 2.5])
    links = [Link(position[min(a, b)], position[max(a, b)], draw(lags)) for a, b in pairs if a != b]
    return durations, links


def _check_laws(durations: list[float], links: list[Link], plan: Schedule, deadline: float) -> None:
    count = len(durations)
    rank = {task: at for at, task in enumerate(plan.order)}
    assert sorted(plan.order) == list(range(count))
    for link in links:
        assert rank[link.predecessor] < rank[link.successor]
        assert plan.earliest_start[link.successor] >= plan.earliest_finish[link.predecessor] + link.lag - 1e-9
        assert plan.latest_finish[link.predecessor] <= plan.latest_start[link.successor] - link.lag + 1e-9
    for task in range(count):
        assert plan.earliest_start[task] >= 0
        assert plan.earliest_finish[task] == plan.earliest_start[task] + durations[task]
        assert plan.latest_finish[task] <= deadline + 1e-9
        assert plan.total_float[task] >= plan.min_float
    assert plan.project_finish == max(plan.earliest_finish)
    assert plan.min_float == pytest.approx(deadline - plan.project_finish, abs=1e-9)
    if deadline >= plan.project_finish:
        assert min(plan.total_float) >= -1e-9

    path = plan.critical_path
    lag_of: dict[tuple[int, int], float] = {}
    for link in links:  # of parallel links, the longest lag binds
        lag_of[link.predecessor, link.successor] = max(
            link.lag, lag_of.get((link.predecessor, link.successor), 0)
        )
    assert path and plan.earliest_finish[path[-1]] == plan.project_finish
    assert plan.earliest_start[path[0]] == 0
    for before, after in zip(path, path[1:], strict=False):
        assert plan.earliest_finish[before] + lag_of[before, after] == pytest.approx(
            plan.earliest_start[after]
        )
    for task in path:
        assert plan.total_float[task] == pytest.approx(plan.min_float, abs=1e-9)
    length = sum(durations[t] for t in path) + sum(lag_of[p, s] for p, s in zip(path, path[1:], strict=False))
    assert length == pytest.approx(plan.project_finish)

    # networkx agrees: edges weigh the source's duration plus the lag, and a sink takes the last duration.
    graph = nx.DiGraph()
    graph.add_nodes_from(range(count + 1))
    for (before, after), lag in lag_of.items():
        graph.add_edge(before, after, weight=durations[before] + lag)
    graph.add_weighted_edges_from((task, count, durations[task]) for task in range(count))
    assert nx.dag_longest_path_length(graph) == pytest.approx(plan.project_finish)


@settings(max_examples=100, deadline=None)
@given(plans(), st.floats(0, 1.5), st.booleans())
def test_random_plans_obey_the_laws(plan_: tuple[list[float], list[Link]], slack: float, tight: bool) -> None:
    durations, links = plan_
    finish = compute_schedule(durations, links, deadline=0).project_finish
    # Deadlines both after the finish (float >= 0) and before it (compressed).
    deadline = finish * (1 - slack / 2 if tight else 1 + slack)
    plan = compute_schedule(durations, links, deadline=deadline)
    _check_laws(durations, links, plan, deadline)


@settings(max_examples=100, deadline=None)
@given(plans(), st.randoms(use_true_random=False))
def test_a_back_edge_always_raises_cycle_error(
    plan_: tuple[list[float], list[Link]], rng: random.Random
) -> None:
    durations, links = plan_
    if not links:
        return
    assert find_cycle(len(durations), links) is None
    # Walk forward along links from a random link's start, then link the end back to the start.
    successors: dict[int, list[int]] = {}
    for link in links:
        successors.setdefault(link.predecessor, []).append(link.successor)
    start = rng.choice(links).predecessor
    end = start
    for _ in range(rng.randint(1, len(durations))):
        if end not in successors:
            break
        end = rng.choice(successors[end])
    cyclic = [*links, Link(end, start)]
    with pytest.raises(CycleError) as raised:
        compute_schedule(durations, cyclic, deadline=100)
    cycle = raised.value.cycle
    assert len(set(cycle)) == len(cycle) >= 2
    linked = {(link.predecessor, link.successor) for link in cyclic}
    assert all((a, b) in linked for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True))
    found = find_cycle(len(durations), cyclic)
    assert found is not None and len(set(found)) == len(found)


def test_a_large_plan_matches_networkx() -> None:
    rng = random.Random(7)
    count = 2_000
    position = list(range(count))
    rng.shuffle(position)
    pairs = {tuple(sorted(rng.sample(range(count), 2))) for _ in range(6_000)}
    links = [Link(position[a], position[b], float(rng.choice([0, 0, 4]))) for a, b in pairs]
    durations = [float(rng.randint(1, 40)) for _ in range(count)]
    plan = compute_schedule(durations, links, deadline=0)
    _check_laws(durations, links, plan, 0)
