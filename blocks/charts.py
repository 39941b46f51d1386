"""The dashboard's charts as inline SVG drawn on the server: a campaign's Gantt and its buffer fever chart.

Pure: the values of `services.plan_view` in, markup out, no database. Everything people typed (task
titles, names, the reasons of re-plans) goes through `markupsafe.escape`; numbers are formatted here.
Colours and weights come from class names, styled by the page's own stylesheet (static/timeline.css),
with SVG presentation attributes as the plain fallback: the dashboard's CSP refuses `style=` attributes.

Each chart is one `role="img"` with an `aria-label` summing it up; every bar and point carries a `<title>`
(the browser's tooltip) with its full text, and the page lists the same facts in a table beside it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from markupsafe import Markup, escape

from services.plan_view import AMBER_FROM, RED_FROM, Bar, FeverPoint, TimelineView, band_limit

# The Gantt's geometry, in the viewBox's units (the page scales the whole drawing to its width).
LABEL_WIDTH = 250
PLOT_WIDTH = 880
RIGHT_PAD = 44  # room for the "late" tag after a bar that ends at the right edge
GANTT_WIDTH = LABEL_WIDTH + PLOT_WIDTH + RIGHT_PAD
AXIS_HEIGHT = 46  # the moment labels (today, launch) above the date labels
FOOT_HEIGHT = 12
NOW_REACH = timedelta(days=14)  # today this far after the plan (or before it) still widens the chart

# Fewer rows get more room; a plan of hundreds of tasks stays a readable height.
ROW_HEIGHTS = ((25, 28), (60, 20), (math.inf, 14))
LABEL_CHARS = {28: 34, 20: 38, 14: 44}

FEVER_WIDTH, FEVER_HEIGHT = 380, 320
FEVER_PLOT = (48, 14, 366, 270)  # left, top, right, bottom
FEVER_DOTS = 60  # the latest points drawn as dots with a tooltip; older ones only in the trail

ELLIPSIS = "…"


# ---------------------------------------------------------------- shared helpers


def _num(value: float) -> str:
    """A coordinate, short: one decimal, no trailing `.0`."""
    return f"{value:.1f}".removesuffix(".0")


def _pct(value: float) -> str:
    return f"{value:.0f}%"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


@functools.lru_cache(maxsize=1024)  # a plan's tasks share their moments: many end when others start
def _when(moment: datetime, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


# ---------------------------------------------------------------- the Gantt


class _Axis:
    """Time to x, from `start` at the plot's left edge to `end` at its right."""

    def __init__(self, start: datetime, end: datetime):
        self.start = start
        self.seconds = max((end - start).total_seconds(), 3600.0)

    def x(self, moment: datetime) -> float:
        return LABEL_WIDTH + (moment - self.start).total_seconds() / self.seconds * PLOT_WIDTH

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


def row_height(count: int) -> int:
    return next(height for limit, height in ROW_HEIGHTS if count <= limit)


def gantt_axis(view: TimelineView) -> _Axis:
    """The span the chart shows: all the work, the launch (target and projected) and, when near, today."""
    starts = [bar.start for bar in view.bars]
    ends = [bar.projected_end or bar.end for bar in view.bars] + [view.launch_at]
    if view.projected_launch_at is not None:
        ends.append(view.projected_launch_at)
    low, high = min(starts + ends), max(ends)
    # Today well before the plan (work planned as late as the launch allows) widens the chart by up to the
    # plan's own length; further out, the bars would shrink to slivers, and today gets an edge marker.
    if low - max(NOW_REACH, high - low) <= view.now <= high + NOW_REACH:
        low, high = min(low, view.now), max(high, view.now)
    pad = max((high - low) / 40, timedelta(hours=12))
    return _Axis(low - pad, high + pad)


def gantt_svg(view: TimelineView, tz: tzinfo = UTC) -> Markup:
    """The campaign's plan as a Gantt chart, dates shown in `tz`."""
    bars = view.bars
    row = row_height(len(bars))
    height = AXIS_HEIGHT + row * max(len(bars), 1) + FOOT_HEIGHT
    classes = "gantt-chart" + (" compact" if row < 20 else "")
    label = (f"Gantt chart of {view.ref} {view.name}: {len(bars)} tasks, {view.critical_count} on the critical "
             f"path, {view.late_count} late; target launch {_day(view.launch_date)}")
    if view.slipping and view.projected_launch is not None:
        label += f", projected {_day(view.projected_launch)}"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{classes}" role="img" aria-label="{escape(label)}" '
           f'viewBox="0 0 {GANTT_WIDTH} {height}" width="{GANTT_WIDTH}" height="{height}" '
           f'preserveAspectRatio="xMinYMin meet" font-size="{12 if row >= 20 else 10}">',
           _gantt_defs()]
    if not bars:
        out.append(f'<text class="empty" x="{LABEL_WIDTH}" y="{AXIS_HEIGHT // 2 + 6}">No dated tasks yet.</text>'
                   "</svg>")
        return Markup("".join(out))
    axis = gantt_axis(view)
    bottom = AXIS_HEIGHT + row * len(bars)
    out += _bands(len(bars), row)
    out += _grid(axis, tz, bottom)
    rows = {bar.task_id: position for position, bar in enumerate(bars)}
    by_id = {bar.task_id: bar for bar in bars}
    out.append('<g class="links">')
    for before, after in view.dependencies:
        out.append(_link(by_id[before], by_id[after], rows[before], rows[after], axis, row))
    out.append("</g>")
    limit = LABEL_CHARS[row]
    for position, bar in enumerate(bars):
        out.append(_task(bar, position, axis, row, tz, limit))
    out += _moment_lines(view, axis, tz, bottom)
    out.append("</svg>")
    return Markup("".join(out))


def _gantt_defs() -> str:
    arrow = ('<marker id="gantt-arrow{suffix}" class="arrow{cls}" viewBox="0 0 6 6" refX="6" refY="3" '
             'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
             '<path d="M0,0 L6,3 L0,6 z" fill="{fill}"/></marker>')
    return ("<defs>" + arrow.format(suffix="", cls="", fill="#7a8090")
            + arrow.format(suffix="-critical", cls=" critical", fill="#b3261e") + "</defs>")


def _bands(count: int, row: int) -> list[str]:
    """Every other row shaded, so a long row is easy to follow from its label to its bar."""
    return [f'<rect class="row-band" x="0" y="{AXIS_HEIGHT + position * row}" width="{GANTT_WIDTH}" '
            f'height="{row}" fill="#f3f4f7"/>' for position in range(1, count, 2)]


def _ticks(axis: _Axis, tz: tzinfo) -> tuple[list[tuple[datetime, str]], list[tuple[datetime, datetime]]]:
    """Tick moments with their labels, and the weekends to shade (short spans only), in `tz`."""
    first = axis.start.astimezone(tz).date()
    last = axis.end.astimezone(tz).date()
    span = (last - first).days
    ticks, weekends = [], []
    day = first
    while day <= last + timedelta(days=1):
        moment = datetime.combine(day, time(0), tzinfo=tz)
        if span <= 16:
            ticks.append((moment, f"{day:%a} {day.day}"))
        elif span <= 75 and day.weekday() == 0:
            ticks.append((moment, f"{day.day} {day:%b}"))
        elif 75 < span <= 400 and day.day == 1:
            ticks.append((moment, f"{day:%b %Y}" if day.month == 1 or not ticks else f"{day:%b}"))
        elif span > 400 and day.day == 1 and day.month in (1, 4, 7, 10):
            ticks.append((moment, f"{day:%b %Y}"))
        if span <= 75 and day.weekday() == 5:
            weekends.append((moment, datetime.combine(day + timedelta(days=2), time(0), tzinfo=tz)))
        day += timedelta(days=1)
    return ticks, weekends


def _grid(axis: _Axis, tz: tzinfo, bottom: int) -> list[str]:
    ticks, weekends = _ticks(axis, tz)
    left, right = LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH
    out = ['<g class="grid">']
    for start, end in weekends:
        x1, x2 = max(left, axis.x(start)), min(right, axis.x(end))
        if x2 > x1:
            out.append(f'<rect class="weekend" x="{_num(x1)}" y="{AXIS_HEIGHT}" width="{_num(x2 - x1)}" '
                       f'height="{bottom - AXIS_HEIGHT}" fill="#eceef3"/>')
    for moment, text in ticks:
        x = axis.x(moment)
        if left <= x <= right:
            out.append(f'<line class="tick" x1="{_num(x)}" x2="{_num(x)}" y1="{AXIS_HEIGHT - 4}" y2="{bottom}" '
                       f'stroke="#d9dce3"/>'
                       f'<text class="tick-label" x="{_num(x + 3)}" y="{AXIS_HEIGHT - 8}">{escape(text)}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{AXIS_HEIGHT}" y2="{AXIS_HEIGHT}" stroke="#9aa0ac"/>')
    out.append("</g>")
    return out


def _center(position: int, row: int) -> float:
    return AXIS_HEIGHT + position * row + row / 2


def _link(before: Bar, after: Bar, before_row: int, after_row: int, axis: _Axis, row: int) -> str:
    """An arrow from the end of `before` to the start of `after`, with square elbows."""
    x1, y1 = axis.x(before.end), _center(before_row, row)
    if before.milestone:
        x1 += row * 0.3  # from the diamond's right point
    x2, y2 = axis.x(after.start), _center(after_row, row)
    if after.milestone:
        x2 -= row * 0.3  # to the diamond's left point
    if x2 - x1 >= 10:
        d = f"M{_num(x1)},{_num(y1)} H{_num(x1 + 5)} V{_num(y2)} H{_num(x2)}"
    else:  # the successor starts before (or just after) this one ends: go round between the rows
        between = y2 - row / 2 if y2 > y1 else y2 + row / 2
        d = (f"M{_num(x1)},{_num(y1)} h5 V{_num(between)} H{_num(x2 - 5)} V{_num(y2)} H{_num(x2)}")
    critical = before.critical and after.critical
    return (f'<path class="link{" critical" if critical else ""}" d="{d}" fill="none" '
            f'stroke="{"#b3261e" if critical else "#7a8090"}" '
            f'marker-end="url(#gantt-arrow{"-critical" if critical else ""})">'
            f"<title>{escape(before.ref)} → {escape(after.ref)}</title></path>")


def _task_classes(bar: Bar) -> str:
    classes = ["task", f"status-{bar.status.value}"]
    if bar.milestone:
        classes.append("milestone")
    if bar.critical:
        classes.append("critical")
    if bar.late:
        classes.append("late")
    if bar.done:
        classes.append("done")
    return " ".join(classes)


def _task_title(bar: Bar, tz: tzinfo) -> str:
    notes = [note for flag, note in ((bar.critical, "critical path"), (bar.late, "late")) if flag]
    when = (f"{_when(bar.end, tz)}" if bar.milestone
            else f"{_when(bar.start, tz)} → {_when(bar.end, tz)}")
    parts = [f"{bar.ref} {bar.title}", "milestone" if bar.milestone else bar.status.value.replace("_", " "),
             when]
    if bar.projected_end is not None:
        parts.append(f"projected to finish {_when(bar.projected_end, tz)}")
    parts.append(bar.assignee or "unassigned")
    if notes:
        parts.append(", ".join(notes))
    return " · ".join(parts)


def _task(bar: Bar, position: int, axis: _Axis, row: int, tz: tzinfo, label_chars: int) -> str:
    y = AXIS_HEIGHT + position * row
    center = y + row / 2
    out = [f'<g class="{_task_classes(bar)}" data-ref="{escape(bar.ref)}">',
           f"<title>{escape(_task_title(bar, tz))}</title>",
           f'<text class="label" x="8" y="{_num(center + 4)}">{escape(truncate(f"{bar.ref} {bar.title}", label_chars))}'
           "</text>"]
    end_x = axis.x(bar.end)
    if bar.milestone:
        half = row * 0.3
        out.append(f'<path class="diamond" d="M{_num(end_x)},{_num(center - half)} l{_num(half)},{_num(half)} '
                   f'l{_num(-half)},{_num(half)} l{_num(-half)},{_num(-half)} z" fill="#5a3fc0"/>')
        tail = end_x + half
    else:
        start_x = axis.x(bar.start)
        width = max(end_x - start_x, 2.0)
        out.append(f'<rect class="bar" x="{_num(start_x)}" y="{_num(y + row * 0.2)}" width="{_num(width)}" '
                   f'height="{_num(row * 0.6)}" rx="2" fill="{"#b3261e" if bar.critical else "#4a73c9"}"/>')
        tail = start_x + width
    if bar.late:
        if bar.projected_end is not None:  # how far past its due moment it is now projected to finish
            slip_end = axis.x(min(bar.projected_end, axis.end))
            if slip_end > tail:
                out.append(f'<rect class="slip" x="{_num(tail)}" y="{_num(y + row * 0.35)}" '
                           f'width="{_num(slip_end - tail)}" height="{_num(row * 0.3)}" fill="#e8a29c"/>')
                tail = slip_end
        out.append(f'<text class="late-mark" x="{_num(tail + 4)}" y="{_num(center + 4)}" fill="#b3261e">late</text>')
    out.append("</g>")
    return "".join(out)


def _moment_lines(view: TimelineView, axis: _Axis, tz: tzinfo, bottom: int) -> list[str]:
    """The target launch, the projected launch when it slipped, and today, over the bars."""
    out = []
    lines: list[tuple[str, datetime, str, str]] = [
        ("launch", view.launch_at, "Launch", f"Target launch {_day(view.launch_date)}")]
    if view.slipping and view.projected_launch_at is not None and view.projected_launch is not None:
        lines.append(("projected-launch", view.projected_launch_at, "Projected",
                      f"Projected launch {_day(view.projected_launch)}"))
    lines.append(("today", view.now, "Today", f"Today, {_when(view.now, tz)}"))
    colours = {"launch": "#1a7f37", "projected-launch": "#b3261e", "today": "#2457c5"}
    for kind, moment, text, title in lines:
        x = axis.x(moment)
        if kind == "today" and not LABEL_WIDTH <= x <= LABEL_WIDTH + PLOT_WIDTH:
            out.append(_today_off_chart(moment, tz, before=x < LABEL_WIDTH))
            continue
        if not LABEL_WIDTH <= x <= LABEL_WIDTH + PLOT_WIDTH:
            continue
        label_y = 12 if kind == "today" else 25
        dashes = "" if kind == "today" else ' stroke-dasharray="6 4"'
        out.append(f'<g class="moment {kind}"><title>{escape(title)}</title>'
                   f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{label_y + 2}" y2="{bottom}" '
                   f'stroke="{colours[kind]}" stroke-width="2"{dashes}/>'
                   f'<text x="{_num(x + 3)}" y="{label_y}" fill="{colours[kind]}">{escape(text)}</text></g>')
    return out


def _today_off_chart(now: datetime, tz: tzinfo, *, before: bool) -> str:
    """Today, far before or after the plan: a marker at the chart's edge instead of a line."""
    local = now.astimezone(tz)
    short = f"{local.day} {local:%b}"
    if before:
        x, anchor, text = LABEL_WIDTH, "start", f"◀ Today, {short}"
        where = "before the first planned work"
    else:
        x, anchor, text = LABEL_WIDTH + PLOT_WIDTH, "end", f"Today, {short} ▶"
        where = "after the plan's end"
    return (f'<g class="moment today off-chart"><title>{escape(f"Today, {_when(now, tz)}, {where}")}</title>'
            f'<text x="{x}" y="12" text-anchor="{anchor}" fill="#2457c5">{escape(text)}</text></g>')


# ---------------------------------------------------------------- the buffer fever chart


def fever_scale(points: Sequence[FeverPoint]) -> float:
    """The chart's top in buffer consumed (%): 100, or more in steps of 25 (at most 200) when a point is above."""
    highest = max((point.buffer_consumed_pct for point in points), default=0.0)
    return float(min(200, max(100, math.ceil(highest / 25) * 25)))


def fever_xy(point: FeverPoint, top: float) -> tuple[float, float]:
    left, upper, right, lower = FEVER_PLOT
    done = min(100.0, max(0.0, point.work_done_pct))
    consumed = min(top, max(0.0, point.buffer_consumed_pct))
    return left + done / 100 * (right - left), lower - consumed / top * (lower - upper)


def fever_svg(points: Sequence[FeverPoint], *, current: FeverPoint | None = None, tz: tzinfo = UTC) -> Markup:
    """Buffer consumed against work done: the plan's history as a trail, `current` as the big dot."""
    everything = [*points, *([current] if current is not None else [])]
    top = fever_scale(everything)
    left, upper, right, lower = FEVER_PLOT

    def at(done: float, consumed: float) -> str:
        x, y = fever_xy(FeverPoint(at=None, work_done_pct=done, buffer_consumed_pct=consumed), top)
        return f"{_num(x)},{_num(y)}"

    latest = current or (points[-1] if points else None)
    if latest is None:
        label = "Buffer fever chart: no plan history yet."
    else:
        label = (f"Buffer fever chart: {_pct(latest.work_done_pct)} of the work done, "
                 f"{_pct(latest.buffer_consumed_pct)} of the buffer used, in the {latest.zone.value} band; "
                 f"{len(points)} points of history.")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="fever-chart" role="img" aria-label="{escape(label)}" '
           f'viewBox="0 0 {FEVER_WIDTH} {FEVER_HEIGHT}" width="{FEVER_WIDTH}" height="{FEVER_HEIGHT}" font-size="11">']
    amber0, amber1 = band_limit(AMBER_FROM, 0), band_limit(AMBER_FROM, 100)
    red0, red1 = band_limit(RED_FROM, 0), band_limit(RED_FROM, 100)
    bands = (
        ("green", "#cfe9d6", [at(0, 0), at(100, 0), at(100, amber1), at(0, amber0)],
         "Green: the buffer is being used no faster than the work gets done"),
        ("amber", "#f6e3b4", [at(0, amber0), at(100, amber1), at(100, red1), at(0, red0)],
         "Amber: watch, and plan what to do if it keeps climbing"),
        ("red", "#f3c2bd", [at(0, red0), at(100, red1), at(100, top), at(0, top)],
         "Red: act now, the launch is at risk"),
    )
    for name, fill, corners, title in bands:
        out.append(f'<polygon class="band band-{name}" points="{" ".join(corners)}" fill="{fill}">'
                   f"<title>{escape(title)}</title></polygon>")
    out += _fever_axes(top)
    if latest is None:
        out.append(f'<text class="empty" x="{_num((left + right) / 2)}" y="{_num((upper + lower) / 2)}" '
                   f'text-anchor="middle">No plan history yet.</text></svg>')
        return Markup("".join(out))
    trail = [fever_xy(point, top) for point in everything]
    out.append(f'<polyline class="trail" points="{" ".join(f"{_num(x)},{_num(y)}" for x, y in trail)}" '
               f'fill="none" stroke="#394150" stroke-width="1.5"/>')
    for point in points[-FEVER_DOTS:]:
        out.append(_fever_dot(point, top, tz, radius=3.5, extra=""))
    if current is not None:
        out.append(_fever_dot(current, top, tz, radius=7, extra=" current"))
    out.append("</svg>")
    return Markup("".join(out))


def _fever_axes(top: float) -> list[str]:
    left, upper, right, lower = FEVER_PLOT
    out = ['<g class="axes">',
           f'<line x1="{left}" x2="{right}" y1="{lower}" y2="{lower}" stroke="#5b6170"/>',
           f'<line x1="{left}" x2="{left}" y1="{upper}" y2="{lower}" stroke="#5b6170"/>']
    for done in (0, 25, 50, 75, 100):
        x = left + done / 100 * (right - left)
        out.append(f'<text class="tick-label" x="{_num(x)}" y="{lower + 14}" text-anchor="middle">{done}%</text>')
    step = 25 if top <= 100 else 50
    for consumed in range(0, int(top) + 1, step):
        y = lower - consumed / top * (lower - upper)
        out.append(f'<text class="tick-label" x="{left - 5}" y="{_num(y + 4)}" text-anchor="end">{consumed}%</text>')
    out.append(f'<text class="axis-title" x="{_num((left + right) / 2)}" y="{lower + 32}" '
               f'text-anchor="middle">Work done</text>')
    out.append(f'<text class="axis-title" x="{-(upper + lower) / 2:.1f}" y="12" transform="rotate(-90)" '
               f'text-anchor="middle">Buffer used</text>')
    out.append("</g>")
    return out


def _fever_dot(point: FeverPoint, top: float, tz: tzinfo, *, radius: float, extra: str) -> str:
    x, y = fever_xy(point, top)
    off_scale = point.buffer_consumed_pct > top
    when = "Now" if extra else (_when(point.at, tz) if point.at is not None else "Earlier")
    title = (f"{when}: {_pct(point.work_done_pct)} of the work done, {_pct(point.buffer_consumed_pct)} of the "
             f"buffer used ({point.zone.value})" + (f" · {point.reason}" if point.reason and not extra else ""))
    classes = f"point zone-{point.zone.value}{extra}{' off-scale' if off_scale else ''}"
    fills = {"green": "#1a7f37", "amber": "#9a6700", "red": "#b3261e"}
    return (f'<g class="{classes}"><title>{escape(title)}</title>'
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(radius)}" fill="{fills[point.zone.value]}" '
            f'stroke="#fff" stroke-width="1.5"/></g>')
