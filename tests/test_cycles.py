"""One way to find and name a dependency loop, for task ids (the schedule) and task keys (templates)."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.planning import schedule, template_checks, templates
from services.planning.cycles import CycleError, find_cycle, topological_order, trace_cycle


def test_an_order_puts_each_node_after_what_it_waits_on() -> None:
    edges = [("brief", "copy"), ("brief", "design"), ("copy", "launch"), ("design", "launch")]
    assert topological_order(["launch", "copy", "design", "brief"], edges) == ["brief", "copy", "design", "launch"]
    assert find_cycle(["a", "b"], [("a", "b")]) is None


def test_a_loop_is_named_from_its_first_node_in_the_given_order() -> None:
    edges = [("x", "c"), ("c", "a"), ("a", "b"), ("b", "c")]
    with pytest.raises(CycleError) as raised:
        topological_order(["x", "a", "b", "c"], edges)
    assert raised.value.cycle == ["a", "b", "c"]
    assert str(raised.value) == "dependency cycle a -> b -> c -> a"
    assert find_cycle(["x", "a", "b", "c"], edges) == ["a", "b", "c"]


def test_a_node_waiting_on_itself_is_a_loop_of_one() -> None:
    assert find_cycle(["a", "b"], [("a", "b"), ("b", "b")]) == ["b"]
    assert str(CycleError(["b"])) == "dependency cycle b -> b"


def test_the_schedule_and_the_templates_raise_the_same_error() -> None:
    assert schedule.CycleError is CycleError
    assert template_checks.CycleError is CycleError
    task = templates.TemplateTask("a", "A", 1.0, None, False, (templates.TemplateDependency("a"),))
    with pytest.raises(CycleError):
        templates._topological([task])


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20))
def test_a_loop_is_found_exactly_when_there_is_one(edges: list[tuple[int, int]]) -> None:
    nodes = [f"n{i}" for i in range(8)]
    named = [(f"n{a}", f"n{b}") for a, b in edges]
    graph = nx.DiGraph(named)
    graph.add_nodes_from(nodes)
    cycle = find_cycle(nodes, named)
    if nx.is_directed_acyclic_graph(graph):
        assert cycle is None
        order = topological_order(nodes, named)
        assert all(order.index(a) < order.index(b) for a, b in named)
        return
    assert cycle is not None and len(set(cycle)) == len(cycle)
    assert all((a, b) in set(named) for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True))
    assert cycle[0] == min(cycle, key=nodes.index)


def test_trace_cycle_walks_only_the_stuck_nodes() -> None:
    assert trace_cycle([2, 3], [(1, 2), (3, 2), (2, 3)]) == [2, 3]
