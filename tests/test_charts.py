"""The timeline's SVG charts, drawn from plain values: what a reader sees marked (the critical path, late
work, milestones, today, the fever chart's bands and points), hostile titles kept as text, and a plan of
hundreds of tasks kept to a readable size. Each chart is parsed as XML, so a broken tag fails too."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from blocks.charts import FEVER_PLOT, LABEL_WIDTH, PLOT_WIDTH, fever_svg, fever_xy, gantt_svg
from models import CampaignStatus, TaskStatus
from services.plan_view import Bar, FeverPoint, TimelineView, Zone, fever_zone

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted" \'single\''


def at(days: float) -> datetime:
    return NOW + timedelta(days=days)


def bar(task_id: int, start: float, end: float, **flags: object) -> Bar:
    values: dict[str, object] = {
        "task_id": task_id, "ref": f"T-{task_id}", "title": f"Task {task_id}", "start": at(start), "end": at(end),
        "status": TaskStatus.TODO, "assignee": "Alice Archer", "critical": False, "milestone": False, "late": False,
    }
    values.update(flags)
    return Bar(**values)  # type: ignore[arg-type]


def timeline(bars: list[Bar], dependencies: list[tuple[int, int]] = (), *, now: datetime = NOW,  # type: ignore[assignment]
             launch: date = date(2027, 3, 20), projected: date | None = None, name: str = "Spring launch") -> TimelineView:
    def nine(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)

    return TimelineView(
        campaign_id=7, ref="CM-7", name=name, status=CampaignStatus.ACTIVE, owner="Alice Archer",
        owner_timezone="UTC", launch_date=launch, projected_launch=projected or launch, launch_at=nine(launch),
        projected_launch_at=nine(projected or launch), buffer_hours=16.0, buffer_consumed_pct=25.0,
        work_done_pct=40.0, now=now, bars=bars, dependencies=list(dependencies), fever=[], current=None,
        unscheduled=[],
    )


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def tasks_of(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-ref", ""): g for g in svg.iter(f"{SVG}g") if "task" in classes(g)}


def classes(element: ET.Element) -> set[str]:
    return set((element.get("class") or "").split())


def tooltip(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text or ""


def moment(svg: ET.Element, kind: str) -> ET.Element | None:
    return next((g for g in svg.iter(f"{SVG}g") if {"moment", kind} <= classes(g)), None)


# ---------------------------------------------------------------- the Gantt


def test_the_critical_path_is_marked_on_its_bars_and_links() -> None:
    bars = [bar(1, -2, 1, critical=True), bar(2, -1, 2), bar(3, 2, 4, critical=True)]
    svg = parse(gantt_svg(timeline(bars, [(1, 3), (2, 3)])))
    tasks = tasks_of(svg)
    assert {ref for ref, g in tasks.items() if "critical" in classes(g)} == {"T-1", "T-3"}
    assert "critical path" in tooltip(tasks["T-1"]) and "critical path" not in tooltip(tasks["T-2"])
    links = {tooltip(path): classes(path) for path in svg.iter(f"{SVG}path") if "link" in classes(path)}
    assert links == {"T-1 → T-3": {"link", "critical"}, "T-2 → T-3": {"link"}}
    assert svg.get("role") == "img" and "2 on the critical path" in (svg.get("aria-label") or "")


def test_late_work_is_marked_with_its_projected_slip() -> None:
    bars = [bar(1, -3, -1, late=True), bar(2, 0, 2, late=True, projected_end=at(5)), bar(3, 0, 3)]
    svg = parse(gantt_svg(timeline(bars)))
    tasks = tasks_of(svg)
    assert {ref for ref, g in tasks.items() if "late" in classes(g)} == {"T-1", "T-2"}
    for ref in ("T-1", "T-2"):
        marks = [t for t in tasks[ref].iter(f"{SVG}text") if "late-mark" in classes(t)]
        assert [t.text for t in marks] == ["late"]
    assert not [t for t in tasks["T-3"].iter(f"{SVG}text") if "late-mark" in classes(t)]
    # The slip runs from the bar's due end to the projected finish.
    due_bar = next(r for r in tasks["T-2"].iter(f"{SVG}rect") if "bar" in classes(r))
    slip = next(r for r in tasks["T-2"].iter(f"{SVG}rect") if "slip" in classes(r))
    bar_end = float(due_bar.get("x", 0)) + float(due_bar.get("width", 0))
    assert abs(float(slip.get("x", 0)) - bar_end) < 0.2
    assert abs(float(slip.get("width", 0)) / float(due_bar.get("width", 0)) - 1.5) < 0.05  # 3 days past a 2-day bar
    assert "projected to finish" in tooltip(tasks["T-2"]) and "2 late" in (svg.get("aria-label") or "")


def test_milestones_are_diamonds_and_done_work_is_marked_done() -> None:
    bars = [bar(1, -5, -4, status=TaskStatus.DONE), bar(2, 3, 3, milestone=True, critical=True)]
    svg = parse(gantt_svg(timeline(bars, [(1, 2)])))
    tasks = tasks_of(svg)
    milestone = tasks["T-2"]
    assert "milestone" in classes(milestone)
    assert [p for p in milestone.iter(f"{SVG}path") if "diamond" in classes(p)]
    assert not [r for r in milestone.iter(f"{SVG}rect") if "bar" in classes(r)]
    assert "done" in classes(tasks["T-1"]) and "status-done" in classes(tasks["T-1"])
    assert not [p for p in tasks["T-1"].iter(f"{SVG}path") if "diamond" in classes(p)]


def test_the_today_line_stands_at_now_even_some_way_before_the_plan() -> None:
    svg = parse(gantt_svg(timeline([bar(1, 10, 12), bar(2, 12, 16)], launch=date(2027, 3, 21))))
    today = moment(svg, "today")
    assert today is not None and "off-chart" not in classes(today) and today.find(f"{SVG}line") is not None


def test_the_today_line_stands_at_now() -> None:
    # A bar starting exactly now: the today line is at its left edge; one ending now: at its right edge.
    bars = [bar(1, -4, 0), bar(2, 0, 3), bar(3, 3, 6)]
    svg = parse(gantt_svg(timeline(bars)))
    today = moment(svg, "today")
    assert today is not None and tooltip(today).startswith("Today")
    line = today.find(f"{SVG}line")
    assert line is not None and line.get("x1") == line.get("x2")
    x = float(line.get("x1", 0))
    tasks = tasks_of(svg)
    starting = next(r for r in tasks["T-2"].iter(f"{SVG}rect") if "bar" in classes(r))
    ending = next(r for r in tasks["T-1"].iter(f"{SVG}rect") if "bar" in classes(r))
    assert abs(float(starting.get("x", 0)) - x) < 0.2
    assert abs(float(ending.get("x", 0)) + float(ending.get("width", 0)) - x) < 0.2
    assert LABEL_WIDTH < x < LABEL_WIDTH + PLOT_WIDTH


def test_today_far_before_the_plan_is_an_edge_marker_and_a_slipped_launch_shows_both_dates() -> None:
    bars = [bar(1, 100, 110)]
    svg = parse(gantt_svg(timeline(bars, launch=date(2027, 6, 20), projected=date(2027, 6, 25))))
    today = moment(svg, "today")
    assert today is not None and "off-chart" in classes(today) and today.find(f"{SVG}line") is None
    assert "before the first planned work" in tooltip(today)
    marker = today.find(f"{SVG}text")
    assert marker is not None and marker.text == "◀ Today, 3 Mar" and float(marker.get("x", 0)) == LABEL_WIDTH
    launch, projected = moment(svg, "launch"), moment(svg, "projected-launch")
    assert launch is not None and "Target launch Sun 20 Jun 2027" in tooltip(launch)
    assert projected is not None and "Projected launch Fri 25 Jun 2027" in tooltip(projected)
    launch_line, projected_line = launch.find(f"{SVG}line"), projected.find(f"{SVG}line")
    assert launch_line is not None and projected_line is not None
    assert float(launch_line.get("x1", 0)) < float(projected_line.get("x1", 0))


def test_hostile_titles_stay_text_and_long_ones_are_cut_with_the_whole_title_in_the_tooltip() -> None:
    long_title = "Write the " + "very " * 30 + "long brief"
    bars = [bar(1, 0, 1, title=HOSTILE, assignee=HOSTILE), bar(2, 1, 2, title=long_title)]
    markup = str(gantt_svg(timeline(bars, [(1, 2)], name=HOSTILE)))
    assert "<script" not in markup and "<img" not in markup
    svg = parse(markup)  # well formed: nothing the title held broke out of its element
    assert not list(svg.iter(f"{SVG}script")) and not list(svg.iter("script"))
    tasks = tasks_of(svg)
    assert HOSTILE in tooltip(tasks["T-1"])
    assert HOSTILE in (svg.get("aria-label") or "")
    label = next(t for t in tasks["T-2"].iter(f"{SVG}text") if "label" in classes(t))
    assert label.text is not None and label.text.endswith("…") and len(label.text) < 50
    assert long_title in tooltip(tasks["T-2"])


def test_dates_are_shown_in_the_readers_time_zone() -> None:
    svg = parse(gantt_svg(timeline([bar(1, 0, 1)]), ZoneInfo("Asia/Tokyo")))
    # 12:00 UTC is 21:00 in Tokyo.
    assert "Wed 3 Mar 2027, 21:00" in tooltip(tasks_of(svg)["T-1"])


def test_two_hundred_tasks_fit_a_readable_chart() -> None:
    bars = [bar(i, i * 0.2, i * 0.2 + 1.5, title=f"Task number {i} " + "x" * 80, critical=i % 3 == 0)
            for i in range(1, 201)]
    links = [(i, i + 1) for i in range(1, 200)]
    markup = str(gantt_svg(timeline(bars, links)))
    svg = parse(markup)
    assert len(tasks_of(svg)) == 200
    height = float(svg.get("height", 0))
    assert height < 3200  # rows collapse: 14 units each
    assert "compact" in classes(svg)
    assert len(markup) < 250_000


def test_a_plan_without_dated_tasks_says_so() -> None:
    svg = parse(gantt_svg(timeline([])))
    assert [t.text for t in svg.iter(f"{SVG}text")] == ["No dated tasks yet."]


# ---------------------------------------------------------------- the fever chart


def point(done: float, used: float, reason: str = "re-planned", day: int = 0) -> FeverPoint:
    return FeverPoint(at=at(day), work_done_pct=done, buffer_consumed_pct=used, reason=reason)


def test_the_zones_slope_upwards_with_the_work_done() -> None:
    assert fever_zone(0, 10) is Zone.GREEN and fever_zone(0, 20) is Zone.AMBER and fever_zone(0, 35) is Zone.RED
    assert fever_zone(90, 60) is Zone.GREEN and fever_zone(90, 80) is Zone.AMBER and fever_zone(90, 97) is Zone.RED
    assert fever_zone(100, 100) is Zone.RED


def test_the_fever_chart_has_three_bands_and_a_dot_per_replan() -> None:
    history = [point(0, 0, "planned"), point(30, 10, "T-1 done", 1), point(50, 55, "T-2 re-estimated", 2)]
    current = FeverPoint(at=at(2), work_done_pct=60, buffer_consumed_pct=90, reason="now")
    svg = parse(fever_svg(history, current=current))
    bands = [p for p in svg.iter(f"{SVG}polygon")]
    assert [sorted(classes(p)) for p in bands] == [["band", "band-green"], ["band", "band-amber"], ["band", "band-red"]]
    points = [g for g in svg.iter(f"{SVG}g") if "point" in classes(g)]
    assert [sorted(classes(g) - {"point"}) for g in points] == [
        ["zone-green"], ["zone-green"], ["zone-amber"], ["current", "zone-red"]]
    assert "T-2 re-estimated" in tooltip(points[2])
    assert "60% of the work done, 90% of the buffer used" in (svg.get("aria-label") or "")
    trail = next(svg.iter(f"{SVG}polyline"))
    assert len((trail.get("points") or "").split()) == 4
    # Up the chart as the buffer goes, right as the work gets done.
    centers = [(float(c.get("cx", 0)), float(c.get("cy", 0))) for g in points for c in g.iter(f"{SVG}circle")]
    assert centers[0] == (FEVER_PLOT[0], FEVER_PLOT[3])
    assert [x for x, _ in centers] == sorted(x for x, _ in centers)
    assert [y for _, y in centers] == sorted((y for _, y in centers), reverse=True)


def test_a_buffer_overrun_raises_the_scale_and_the_dot_stays_inside() -> None:
    svg = parse(fever_svg([point(20, 140)]))
    labels = [t.text for t in svg.iter(f"{SVG}text") if "tick-label" in classes(t)]
    assert "150%" in labels
    x, y = fever_xy(point(20, 140), 150.0)
    assert FEVER_PLOT[1] <= y <= FEVER_PLOT[3]
    circle = next(svg.iter(f"{SVG}circle"))
    assert (float(circle.get("cx", 0)), float(circle.get("cy", 0))) == (round(x, 1), round(y, 1))


def test_hostile_reasons_stay_text_and_no_history_says_so() -> None:
    markup = str(fever_svg([point(10, 5, HOSTILE)]))
    assert "<script" not in markup
    svg = parse(markup)
    dot = next(g for g in svg.iter(f"{SVG}g") if "point" in classes(g))
    assert HOSTILE in tooltip(dot)
    empty = parse(fever_svg([]))
    assert "No plan history yet." in [t.text for t in empty.iter(f"{SVG}text")]
    assert empty.get("role") == "img" and "no plan history" in (empty.get("aria-label") or "")
