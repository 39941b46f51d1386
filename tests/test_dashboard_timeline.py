"""The campaign timeline page over real HTTP: a campaign planned from a template, moved by the task service
(a task done, one re-estimated), and read back through a dashboard link as the Gantt, the fever chart
and their tables. Token, ref and time-zone cases answer with a plain page, never a trace."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from multidict import CIMultiDictProxy
from sqlalchemy import select

from models import Campaign, Task, TaskStatus, TimelineSnapshot
from services import authz, campaigns, tasks, team
from services.plan_view import campaign_timeline
from services.planning.templates import load_library
from tests.conftest import RunningApp
from tests.home_helpers import BERLIN, member, planned_campaign
from tests.statements import counting_statements
from tests.support.dashboard import dashboard_token

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("pwned")</script> & <b onmouseover=alert(1)>"x"</b>'


async def get(app: RunningApp, path: str) -> tuple[int, str, CIMultiDictProxy[str]]:
    async with app.http.get(app.url(path), allow_redirects=False) as response:
        return response.status, await response.text(), response.headers


def chart(html: str, css_class: str) -> ET.Element:
    found = re.search(rf'<svg[^>]*class="{css_class}[ "].*?</svg>', html, re.DOTALL)
    assert found, f"no {css_class} on the page"
    return ET.fromstring(found.group(0))


def classes(element: ET.Element) -> set[str]:
    return set((element.get("class") or "").split())


def chart_tasks(svg: ET.Element) -> dict[str, set[str]]:
    return {g.get("data-ref", ""): classes(g) for g in svg.iter(f"{SVG}g") if "task" in classes(g)}


def fever_points(svg: ET.Element) -> list[tuple[set[str], str]]:
    found = []
    for g in svg.iter(f"{SVG}g"):
        if "point" in classes(g):
            title = g.find(f"{SVG}title")
            found.append((classes(g), title.text if title is not None and title.text else ""))
    return found


async def act(app: RunningApp, task_id: int, op: Any, **args: Any) -> None:
    """One unit of work by the campaign's owner through the task service, as a Slack command would run it;
    then the after-commit news an open page listens for."""
    async with app.sessions.begin() as db:
        task = await tasks.get_task(db=db, task_id=task_id)
        owner = await team.find_member(db=db, slack_user_id="U0ALICE")
        assert owner is not None
        await op(db=db, task=task, ctx=tasks.Context(actor=authz.Actor(member=owner), now=datetime.now(UTC)), **args)
        campaign_id = task.campaign_id
    deps = app.runtime.deps
    assert deps is not None
    await deps.live.publish([campaign_id])


async def campaign_of(app: RunningApp, task_id: int) -> int:
    async with app.sessions() as db:
        campaign_id = await db.scalar(select(Task.campaign_id).where(Task.id == task_id))
        assert campaign_id is not None
        return campaign_id


async def open_critical_refs(app: RunningApp, campaign_id: int) -> set[str]:
    async with app.sessions() as db:
        ids = await db.scalars(select(Task.id).where(Task.campaign_id == campaign_id, Task.on_critical_path,
                                                     Task.status != TaskStatus.DONE))
        return {f"T-{task_id}" for task_id in ids}


async def test_the_timeline_draws_the_plan_and_follows_its_changes(running_app: RunningApp) -> None:
    # Two weeks out: the small template's 4.5 days of work and a day of buffer start within days, so
    # today is on the chart.
    ids = await planned_campaign(running_app, launch=datetime.now(BERLIN).date() + timedelta(days=14))
    campaign_id = await campaign_of(running_app, ids["brief"])
    token = await dashboard_token(running_app, campaign_id=campaign_id)
    path = f"/dashboard/{token}/campaigns/CM-{campaign_id}/timeline?tz=Europe/Berlin"

    status, html, headers = await get(running_app, path)
    assert status == 200, html
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["Referrer-Policy"] == "no-referrer"
    assert f'data-live-scope="campaign:{campaign_id}"' in html
    assert '<link rel="stylesheet" href="/static/timeline.css">' in html and ' style="' not in html
    gantt = chart(html, "gantt-chart")
    assert gantt.get("role") == "img" and gantt.get("aria-label")
    drawn = chart_tasks(gantt)
    assert set(drawn) == {f"T-{task_id}" for task_id in ids.values()}
    assert {ref for ref, marks in drawn.items() if "critical" in marks} == await open_critical_refs(running_app, campaign_id)
    assert {f"T-{ids[key]}" for key in ("brief", "copy", "launch")} <= {
        ref for ref, marks in drawn.items() if "critical" in marks}
    assert "critical" not in drawn[f"T-{ids['design']}"]
    assert "milestone" in drawn[f"T-{ids['launch']}"]
    assert not [ref for ref, marks in drawn.items() if "late" in marks]
    today = [g for g in gantt.iter(f"{SVG}g") if {"moment", "today"} <= classes(g)]
    assert len(today) == 1 and today[0].find(f"{SVG}line") is not None
    links = [p for p in gantt.iter(f"{SVG}path") if "link" in classes(p)]
    assert len(links) == 5  # brief→copy, brief→design, copy→review, design→review, review→launch
    assert len(fever_points(chart(html, "fever-chart"))) == 2  # "planned" and the current plan

    # A task done, then one re-estimated far past what the launch allows: two more points of history.
    await act(running_app, ids["brief"], tasks.complete)
    await act(running_app, ids["copy"], tasks.reestimate, hours=400.0)

    status, html, _ = await get(running_app, path)
    assert status == 200, html
    drawn = chart_tasks(chart(html, "gantt-chart"))
    assert {"done", "status-done"} <= drawn[f"T-{ids['brief']}"] and "critical" not in drawn[f"T-{ids['brief']}"]
    assert {"critical", "late"} <= drawn[f"T-{ids['copy']}"]
    assert "late" not in drawn[f"T-{ids['design']}"]
    assert {ref for ref, marks in drawn.items() if "critical" in marks} == await open_critical_refs(running_app, campaign_id)
    assert re.search(r'class="moment projected-launch"', html), "the launch slipped: its projection is drawn"

    fever = chart(html, "fever-chart")
    points = fever_points(fever)
    async with running_app.sessions() as db:
        reasons = list(await db.scalars(select(TimelineSnapshot.reason).where(TimelineSnapshot.campaign_id == campaign_id)
                                        .order_by(TimelineSnapshot.at, TimelineSnapshot.id)))
    assert len(reasons) == 3 and len(points) == 4  # the history, then now
    for (_, title), reason in zip(points, reasons, strict=False):
        assert title.endswith(reason)
    assert "current" in points[-1][0] and "zone-red" in points[-1][0]
    assert "zone-green" in points[0][0]
    assert "re-estimated 16h → 400h" in html  # the history table under the chart
    assert "in the red band" in (fever.get("aria-label") or "")


async def test_links_refs_and_time_zones_are_checked(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app)
    campaign_id = await campaign_of(running_app, ids["brief"])
    other = await campaign_of(running_app, (await planned_campaign(running_app, name="Other"))["brief"])
    everything = await dashboard_token(running_app)
    this_one = await dashboard_token(running_app, campaign_id=campaign_id)

    async def status_of(token: str, ref: str, query: str = "") -> int:
        status, html, headers = await get(running_app, f"/dashboard/{token}/campaigns/{ref}/timeline{query}")
        assert "Traceback" not in html and "Content-Security-Policy" in headers
        return status

    assert await status_of(everything, f"CM-{campaign_id}") == 200
    assert await status_of(everything, f"cm{other}") == 200
    assert await status_of(this_one, f"CM-{campaign_id}") == 200
    assert await status_of(this_one, f"CM-{other}") == 403
    assert await status_of("not-a-token", f"CM-{campaign_id}") == 401
    assert await status_of(this_one[:-3], f"CM-{campaign_id}") == 401
    assert await status_of(everything, "CM-9999") == 404
    assert await status_of(everything, "CM-99999999999") == 404
    assert await status_of(everything, "T-3") == 400
    assert await status_of(everything, "%3Cscript%3E") == 400
    assert await status_of(everything, f"CM-{campaign_id}", "?tz=Mars/Olympus_Mons") == 400
    assert await status_of(everything, f"CM-{campaign_id}", "?tz=../../../etc/passwd") == 400
    assert await status_of(everything, f"CM-{campaign_id}", "?tz=" + "A" * 300) == 400
    assert await status_of("not-a-token", "T-3", "?tz=Mars/Olympus_Mons") == 401  # the link first: nothing leaks

    # The reader's zone: the launch milestone is due at 09:00 in the owner's Berlin, 02:00 in Chicago.
    async with running_app.sessions() as db:
        launch = await db.get(Task, ids["launch"])
        assert launch is not None and launch.due_at is not None
    chicago = launch.due_at.astimezone(ZoneInfo("America/Chicago"))
    status, html, _ = await get(running_app, f"/dashboard/{everything}/campaigns/CM-{campaign_id}/timeline"
                                             "?tz=America/Chicago")
    assert status == 200 and "times in America/Chicago" in html
    assert f"{chicago:%a %d %b %Y, %H:%M}</time>" in html
    assert chicago.hour in (2, 3)


async def test_hostile_names_are_shown_as_text(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, name="Launch")
    campaign_id = await campaign_of(running_app, ids["brief"])
    async with running_app.sessions.begin() as db:
        campaign = await db.get(Campaign, campaign_id)
        copy = await db.get(Task, ids["copy"])
        assert campaign is not None and copy is not None
        campaign.name = HOSTILE
        copy.title = HOSTILE
    token = await dashboard_token(running_app)
    status, html, _ = await get(running_app, f"/dashboard/{token}/campaigns/CM-{campaign_id}/timeline")
    assert status == 200
    assert "<script>alert" not in html and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(" in html
    gantt = chart(html, "gantt-chart")  # still well formed
    title = next(g for g in gantt.iter(f"{SVG}g") if g.get("data-ref") == f"T-{ids['copy']}").find(f"{SVG}title")
    assert title is not None and title.text is not None and HOSTILE in title.text
    assert HOSTILE in (gantt.get("aria-label") or "")


async def test_the_stylesheet_is_served_by_the_app(running_app: RunningApp) -> None:
    status, css, headers = await get(running_app, "/static/timeline.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert ".gantt-chart" in css and ".fever-chart" in css


async def test_the_timeline_reads_in_four_statements_however_big_the_plan(running_app: RunningApp) -> None:
    small = await campaign_of(running_app, (await planned_campaign(running_app))["brief"])
    async with running_app.sessions.begin() as db:
        plan = await campaigns.create_campaign(
            db=db, name="Big launch", template=load_library().resolve("product_launch"),
            owner=await member(db, "U0BOB"), now=datetime.now(UTC),
            launch_date=datetime.now(BERLIN).date() + timedelta(days=90))
        big = plan.campaign.id
    deps = running_app.runtime.deps
    assert deps is not None
    counts, sizes = [], []
    for campaign_id in (small, big):
        async with running_app.sessions() as db:
            with counting_statements(deps.engine) as statements:
                view = await campaign_timeline(db=db, campaign_id=campaign_id, now=datetime.now(UTC))
        counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))
        sizes.append((len(view.bars), len(view.dependencies)))
    assert counts == [4, 4]
    assert sizes[0] == (5, 5) and sizes[1][0] > 15 and sizes[1][1] > 15
