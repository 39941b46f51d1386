"""The dashboard's JSON over real HTTP: the week's schedule, one campaign, the metrics; errors as JSON.

Same link, same scope rules and same time zones as the pages (`test_dashboard_pages`), on SQLite and
PostgreSQL. The JSON carries names as people typed them (it is data: escaping is the reader's job), and
says so with its content type and `nosniff`.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from models import Campaign
from services.refs import RefKind, format_ref
from tests.conftest import RunningApp
from tests.dashboard_helpers import (
    APPROVED_STAGE,
    MIDNIGHT_TITLE,
    SCRIPT_NAME,
    WAITING_STAGE,
    Answer,
    fetch,
    seed_workspace,
)
from tests.support.dashboard import dashboard_token as token_for

API = "/api/dashboard"


def ref(campaign_id: int) -> str:
    return format_ref(RefKind.CAMPAIGN, campaign_id)


def assert_json(answer: Answer, status: int = 200) -> dict:
    assert answer.status == status, (answer.status, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in answer.headers and answer.headers["Referrer-Policy"] == "no-referrer"
    return answer.json()


def titles_on(schedule: dict, day: date) -> list[str]:
    entry = next(entry for entry in schedule["days"] if entry["day"] == day.isoformat())
    return [card["title"] for card in entry["milestones"] + entry["tasks"]]


async def test_the_schedule_is_the_readers_week(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    day, next_day = seeded.midnight_day, seeded.midnight_day + timedelta(days=1)

    utc = assert_json(await fetch(running_app, f"{API}/schedule", token=token, start=day.isoformat()))
    assert utc["zone"] == "UTC" and len(utc["days"]) == 7
    first = date.fromisoformat(utc["first"])
    assert first.weekday() == 0 and first <= day < first + timedelta(days=7)
    assert MIDNIGHT_TITLE in titles_on(utc, day)
    card = next(card for entry in utc["days"] for card in entry["tasks"] if card["title"] == MIDNIGHT_TITLE)
    assert card["due_at"].endswith("23:30:00Z") or card["due_at"].endswith("23:30:00+00:00")
    assert card["assignee"] == {"slack_user_id": "U0BOB", "name": "Bob Baker"}
    assert card["status"] == "todo" and card["campaign_ref"] == ref(seeded.newsletter)

    berlin = assert_json(await fetch(running_app, f"{API}/schedule", token=token, start=next_day.isoformat(),
                                     tz="Europe/Berlin"))
    assert MIDNIGHT_TITLE in titles_on(berlin, next_day)
    assert all(MIDNIGHT_TITLE not in titles_on(berlin, entry_day)
               for entry_day in (date.fromisoformat(entry["day"]) for entry in berlin["days"]) if entry_day != next_day)

    launch_day = seeded.now.date() + timedelta(days=21)
    with_launch = assert_json(await fetch(running_app, f"{API}/schedule", token=token, start=launch_day.isoformat()))
    launches = next(entry["launches"] for entry in with_launch["days"] if entry["day"] == launch_day.isoformat())
    assert [launch["name"] for launch in launches] == [SCRIPT_NAME]  # as typed: JSON is data
    assert launches[0]["health"] in ("late", "at-risk", "on-track")


async def test_a_campaign_as_json(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    body = assert_json(await fetch(running_app, f"{API}/campaigns/{ref(seeded.webinar)}", token=token))
    assert body["campaign"]["ref"] == ref(seeded.webinar) and body["campaign"]["name"] == SCRIPT_NAME
    assert {task["id"] for task in body["tasks"]} >= {seeded.done_task, seeded.late_task, seeded.blocked_task}
    late = next(task for task in body["tasks"] if task["id"] == seeded.late_task)
    assert late["overdue"] is True
    stages = {stage["name"]: stage for stage in body["stages"]}
    assert stages[APPROVED_STAGE]["state"] == "passed"
    assert stages[APPROVED_STAGE]["votes"][0]["status"] == "approved"
    assert stages[APPROVED_STAGE]["votes"][0]["decided_by"]["name"] == "Bob Baker"
    assert [line["action"] for line in stages[APPROVED_STAGE]["trail"]][:2] == [
        f"asked for sign-off on {APPROVED_STAGE}", f"approved {APPROVED_STAGE}"]
    assert stages[WAITING_STAGE]["state"] == "open"
    assert any(line["action"] == "created the campaign" for line in body["activity"])
    by_ref = assert_json(await fetch(running_app, f"{API}/campaigns/cm{seeded.webinar}", token=token))
    assert by_ref["campaign"]["id"] == seeded.webinar  # cm12 and 12 are CM-12 too


async def test_metrics_as_json(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    today = seeded.now.date()
    body = assert_json(await fetch(running_app, f"{API}/metrics", token=token,
                                   **{"from": (today - timedelta(days=5)).isoformat(),
                                      "to": (today + timedelta(days=100)).isoformat()}))
    assert body["email"]["available"] is False and body["email"]["opens"] is None  # no Mailjet event yet
    assert body["buffer"]["campaigns"] == 3
    assert sum(count["count"] for count in body["buffer"]["by_health"]) == 3
    assert body["turnaround"]["decided"] == 1
    assert body["on_time"]["whole"] == 1  # the task finished while seeding
    scoped = assert_json(await fetch(running_app, f"{API}/metrics",
                                     token=await token_for(running_app, campaign_id=seeded.newsletter)))
    assert scoped["turnaround"]["decided"] == 0 and scoped["on_time"]["whole"] == 0  # the webinar's, not its own


async def test_errors_are_json_with_the_right_status(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    scoped = await token_for(running_app, campaign_id=seeded.newsletter)
    forged = token.split(".")[0] + "." + "A" * 43
    cases = [
        (f"{API}/schedule", {}, 401), (f"{API}/schedule", {"token": forged}, 401),
        (f"{API}/metrics", {"token": token[:-2]}, 401), (f"{API}/campaigns/{ref(seeded.webinar)}", {}, 401),
        (f"{API}/campaigns/{ref(seeded.webinar)}", {"token": scoped}, 403),
        (f"{API}/campaigns/{ref(999_999)}", {"token": scoped}, 403),
        (f"{API}/campaigns/{ref(999_999)}", {"token": token}, 404),
        (f"{API}/campaigns/T-{seeded.webinar}", {"token": token}, 400),
        (f"{API}/campaigns/%3Cscript%3E", {"token": token}, 400),
        (f"{API}/schedule", {"token": token, "tz": "Not/AZone"}, 400),
        (f"{API}/schedule", {"token": token, "start": "2025-02-30"}, 400),
        (f"{API}/metrics", {"token": token, "from": "2025-03-01", "to": "2025-01-01"}, 400),
        (f"{API}/metrics", {"token": token, "from": "1999-12-31"}, 400),
        (f"{API}/nothing-here", {"token": token}, 404),
    ]
    for path, query, status in cases:
        body = assert_json(await fetch(running_app, path, **query), status)
        assert isinstance(body["error"], str) and body["error"], (path, query)
        assert "Traceback" not in body["error"]
        if status in (401, 403):
            assert "fresh link" in body["hint"]


async def test_a_campaign_link_schedules_only_its_campaign(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app, campaign_id=seeded.webinar)
    day = seeded.midnight_day
    body = assert_json(await fetch(running_app, f"{API}/schedule", token=token, start=day.isoformat()))
    campaigns = {card["campaign_id"] for entry in body["days"] for card in entry["tasks"] + entry["milestones"]}
    campaigns |= {launch["id"] for entry in body["days"] for launch in entry["launches"]}
    assert campaigns <= {seeded.webinar}
    assert MIDNIGHT_TITLE not in titles_on(body, day)


async def test_json_is_kept_until_its_campaign_changes(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    deps = running_app.runtime.deps
    assert deps is not None
    token = await token_for(running_app)
    path = f"{API}/campaigns/{ref(seeded.newsletter)}"
    assert assert_json(await fetch(running_app, path, token=token))["campaign"]["name"] == "Autumn newsletter"
    async with running_app.sessions.begin() as db:
        await db.execute(update(Campaign).where(Campaign.id == seeded.newsletter).values(name="Winter newsletter"))
    assert assert_json(await fetch(running_app, path, token=token))["campaign"]["name"] == "Autumn newsletter"
    deps.live.heard([seeded.newsletter])
    assert assert_json(await fetch(running_app, path, token=token))["campaign"]["name"] == "Winter newsletter"
