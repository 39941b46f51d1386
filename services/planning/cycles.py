"""Dependency loops: ordering a graph of hashable nodes, and naming one loop when there is one.

The schedule (task ids 0..n-1, with its own Kahn pass folded into the forward pass) and the template
checks (task keys) both need "things that wait on one another" found and named the same way, so the
naming lives here once: `trace_cycle` takes the nodes an ordering could not place and returns one loop,
and `CycleError` says it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Generic, TypeVar

Node = TypeVar("Node", bound=Hashable)


class CycleError(ValueError, Generic[Node]):
    """Things that wait on one another; `cycle` lists one loop in order, e.g. ``[a, b]`` for a -> b -> a.

    Task ids from the schedule, task keys from a template: an ``except CycleError`` sees either.
    """

    def __init__(self, cycle: Sequence[Node]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle " + " -> ".join(str(node) for node in [*self.cycle, self.cycle[0]]))


def topological_order(nodes: Iterable[Node], edges: Iterable[tuple[Node, Node]]) -> list[Node]:
    """Every node after the nodes it waits on (an edge is ``(before, after)``), ties in the given order.

    Every edge must name two of the nodes. Raises CycleError naming one loop if there is one.
    """
    order, stuck, edges = _kahn(nodes, edges)
    if stuck:
        raise CycleError(trace_cycle(stuck, edges))
    return order


def find_cycle(nodes: Iterable[Node], edges: Iterable[tuple[Node, Node]]) -> list[Node] | None:
    """One loop among the edges (as `trace_cycle` names it), or None if there is none."""
    _, stuck, edges = _kahn(nodes, edges)
    return trace_cycle(stuck, edges) if stuck else None


def trace_cycle(stuck: Sequence[Node], edges: Iterable[tuple[Node, Node]]) -> list[Node]:
    """One loop among the nodes an ordering could not place, in edge order, the first not repeated.

    Each stuck node waits on another stuck node, so walking back from the first one along its first
    stuck predecessor must revisit a node; the nodes from that first visit on, reversed, are a loop.
    The loop starts at whichever of its nodes comes first in `stuck`, so the same graph always reads
    the same way.
    """
    position = {node: at for at, node in enumerate(stuck)}
    predecessors: dict[Node, list[Node]] = {node: [] for node in stuck}
    for before, after in edges:
        if before in position and after in position:
            predecessors[after].append(before)
    visited_at: dict[Node, int] = {}
    walk: list[Node] = []
    node = stuck[0]
    while node not in visited_at:
        visited_at[node] = len(walk)
        walk.append(node)
        node = predecessors[node][0]
    loop = walk[visited_at[node] :]
    loop.reverse()
    first = min(range(len(loop)), key=lambda at: position[loop[at]])
    return loop[first:] + loop[:first]


def _kahn(
    nodes: Iterable[Node], edges: Iterable[tuple[Node, Node]]
) -> tuple[list[Node], list[Node], list[tuple[Node, Node]]]:
    """The nodes in order as far as they go, the nodes left over (in the given order), and the edges."""
    edge_list = list(edges)
    waiting = dict.fromkeys(nodes, 0)
    successors: dict[Node, list[Node]] = {node: [] for node in waiting}
    for before, after in edge_list:
        successors[before].append(after)
        waiting[after] += 1
    order = [node for node, count in waiting.items() if not count]
    for node in order:  # grows while it is read
        for after in successors[node]:
            waiting[after] -= 1
            if not waiting[after]:
                order.append(after)
    return order, [node for node, count in waiting.items() if count], edge_list
