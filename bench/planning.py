"""Planning engine benchmarks: prints figures for docs/BENCHMARKS.md.

Run: .venv/bin/python -m bench.planning   (from the repository root)

Each section is a `bench_*()` function called from `main()`; add new sections there.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable

import networkx as nx

from services.planning.schedule import Link, Schedule, compute_schedule

SEED = 20240611
RUNS = 7
TASKS = 10_000
LINKS = 30_000


def _random_plan(seed: int = SEED) -> tuple[list[float], list[Link]]:
    """A random DAG: distinct pairs, each linking the lower to the higher position of a shuffled order,
    so it is acyclic without the ids giving the order away. Durations 1-40 h; most links without lag."""
    rng = random.Random(seed)
    position = list(range(TASKS))
    rng.shuffle(position)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < LINKS:
        a, b = rng.randrange(TASKS), rng.randrange(TASKS)
        if a != b:
            pairs.add((position[min(a, b)], position[max(a, b)]))
    durations = [float(rng.randint(1, 40)) for _ in range(TASKS)]
    # Links in no particular order, as people add them; created in list order, as a database load would.
    ordered = sorted(pairs)
    rng.shuffle(ordered)
    links = [Link(p, s, float(rng.choice((0, 0, 0, 2, 8)))) for p, s in ordered]
    return durations, links


def _networkx_graphs(durations: list[float], links: list[Link]) -> tuple[nx.DiGraph, nx.DiGraph]:
    """The same plan as networkx graphs, built once, outside the timing.

    networkx's longest path weighs edges, not nodes, so an edge u -> v weighs duration[u] + lag: the
    time from u's start to the earliest start of v. That leaves out the duration of the path's last task.
    `with_sink` adds a sink that every task links to with weight duration[u], so its longest path is
    exactly the project finish: the same question compute_schedule answers, at the price of one more
    edge per task for networkx. `plain` is the graph without the sink: less work for networkx but not
    quite the same answer. We report both and treat the cheaper one as the stricter comparison.
    """
    plain = nx.DiGraph()
    plain.add_nodes_from(range(len(durations)))
    plain.add_weighted_edges_from(
        (link.predecessor, link.successor, durations[link.predecessor] + link.lag) for link in links
    )
    with_sink = plain.copy()
    sink = len(durations)
    with_sink.add_weighted_edges_from((task, sink, duration) for task, duration in enumerate(durations))
    return plain, with_sink


def _path_length(graph: nx.DiGraph, path: list[int]) -> float:
    return float(sum(graph.edges[u, v]["weight"] for u, v in zip(path, path[1:], strict=False)))


def _timed(call: Callable[[], object]) -> float:
    # Collect first so one contender does not pay for the other's garbage; GC stays on while timed,
    # as it is in production.
    gc.collect()
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _figures(label: str, seconds: list[float]) -> str:
    return (
        f"{label:<34} best {min(seconds) * 1e3:7.1f} ms   median {statistics.median(seconds) * 1e3:7.1f} ms"
    )


def bench_cpm() -> None:
    """Critical path method: compute_schedule against networkx's dag_longest_path, in turns."""
    durations, links = _random_plan()
    plain, with_sink = _networkx_graphs(durations, links)
    finish = compute_schedule(durations, links, deadline=0.0).project_finish

    def ours() -> Schedule:
        return compute_schedule(durations, links, deadline=finish)

    def networkx_sink() -> object:
        return nx.dag_longest_path(with_sink)

    def networkx_plain() -> object:
        return nx.dag_longest_path(plain)

    contenders = {
        "compute_schedule (both passes)": ours,
        "nx.dag_longest_path + sink": networkx_sink,
        "nx.dag_longest_path, no sink": networkx_plain,
    }
    seconds: dict[str, list[float]] = {label: [] for label in contenders}
    for call in contenders.values():  # warm up: imports, caches, the specialising interpreter
        call()
    for _ in range(RUNS):
        for label, call in contenders.items():  # in turns, so a noisy neighbour hurts all alike
            seconds[label].append(_timed(call))

    print(f"Planning: critical path ({TASKS:,} tasks, {LINKS:,} links, seed {SEED}, {RUNS} runs each)")
    for label, values in seconds.items():
        print("  " + _figures(label, values))
    mine = seconds["compute_schedule (both passes)"]
    for label in ("nx.dag_longest_path + sink", "nx.dag_longest_path, no sink"):
        theirs = seconds[label]
        print(
            f"  ratio to {label:<30} best {min(mine) / min(theirs):.2f}x   "
            f"median {statistics.median(mine) / statistics.median(theirs):.2f}x"
        )

    schedule = ours()
    nx_length = _path_length(with_sink, nx.dag_longest_path(with_sink))
    chain = schedule.critical_path
    lags = {(link.predecessor, link.successor): link.lag for link in links}
    along_path = sum(durations[t] for t in chain) + sum(
        lags[p, s] for p, s in zip(chain, chain[1:], strict=False)
    )
    agree = (
        abs(nx_length - schedule.project_finish) < 1e-6 and abs(along_path - schedule.project_finish) < 1e-6
    )
    print(
        f"  longest path: ours {schedule.project_finish:.1f} h (critical path of {len(chain)} tasks sums to "
        f"{along_path:.1f} h), networkx {nx_length:.1f} h -> {'agree' if agree else 'DISAGREE'}"
    )
    if not agree:
        raise SystemExit(1)


def main() -> None:
    bench_cpm()
    print()
    from bench.assignment import bench_assignment  # the second section of this script

    result = bench_assignment()
    verdict = "meets" if result["median_ms"] < 100 else "MISSES"
    print(f"  target: all 1,000 assignments in under 100 ms -> {verdict} it")


if __name__ == "__main__":
    main()
