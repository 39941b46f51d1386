"""Form submissions under load: the task form and the block-reason form always ack within
`handlers.slack.forms.ACK_WITHIN_SECONDS`, and a task form sent twice (a retry, a second click after a
timeout, two at once) adds one task.

Slow work is made slow deterministically: the bound is patched down to a few milliseconds and the
database is held still (tests/held_database.py), so the ack must go out while the work is stuck.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.slack import forms
from models import FormSubmission, Task, TaskStatus
from services import plans
from services.sweep import sweep
from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack, view_problems
from tests.held_database import database_held
from tests.home_helpers import (
    get_task,
    home_click,
    next_publish,
    planned_campaign,
    publishes,
    set_task,
    snapshot_reasons,
    texts,
)
from tests.slack_helpers import count
from tests.slack_requests import view_submission_payload
from tests.test_modals import LAUNCH, NEW_TASK, RESEARCH, WEB_COPY, new_campaign, task_form

SLOW = 0.05  # the bound in the slow tests: the held database keeps the work well past it


async def submit_task(app: RunningApp, form: dict[str, Any], *, view_id: str, user_id: str = "U0ALICE") -> dict:
    """Send the task form as view `view_id`; return the ack's JSON body."""
    payload = view_submission_payload(user_id=user_id, callback_id="task_new_modal", view_id=view_id,
                                      values={block: {"value": leaf} for block, leaf in form.items()})
    status, body = await app.slack.interaction(payload)
    assert status == 200, body
    return json.loads(body) if body else {}


async def submit_reason(app: RunningApp, task_id: int, reason: str, *, view_id: str) -> tuple[int, str]:
    payload = view_submission_payload(user_id="U0ALICE", callback_id="task_block_modal", view_id=view_id,
                                      private_metadata=str(task_id), values={"reason": {"reason": reason}})
    return await app.slack.interaction(payload)


def shown(view: dict[str, Any]) -> str:
    return json.dumps(view)


@pytest.fixture
def slow_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forms, "ACK_WITHIN_SECONDS", SLOW)


async def open_task_form(app: RunningApp, fake: FakeSlack) -> str:
    """`/task new` as Alice; the id Slack gave the form it opened (views.update needs a view that exists)."""
    opened = len(fake.calls_to("views.open"))
    status, _ = await app.slack.command("/task", "new", user_id="U0ALICE")
    assert status == 200
    call = await fake.wait_for("views.open", count=opened + 1)
    assert call.response["ok"], call.response
    return str(call.response["view"]["id"])


async def open_block_form(app: RunningApp, fake: FakeSlack, task_id: int) -> str:
    """Alice's Block button on her Home tab; the id of the reason form it opened."""
    opened = len(fake.calls_to("views.open"))
    status, _ = await app.slack.interaction(home_click("U0ALICE", "task_block", str(task_id), "trig.block"))
    assert status == 200
    call = await fake.wait_for("views.open", count=opened + 1)
    assert call.response["ok"] and call.args["view"]["callback_id"] == "task_block_modal", call.response
    return str(call.response["view"]["id"])


async def updated_view(fake: FakeSlack, view_id: str) -> Call:
    """The views.update that follows a late ack, for that view."""
    return await fake.wait_for("views.update", lambda call: call.args.get("view_id") == view_id)


# ---------------------------------------------------------------- the task form, sent more than once


async def test_the_same_view_submitted_twice_adds_one_task(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    first = await submit_task(running_app, task_form(title="Partner webinar"), view_id="V0TWICE")
    again = await submit_task(running_app, task_form(title="Partner webinar"), view_id="V0TWICE")

    assert first["response_action"] == again["response_action"] == "update", (first, again)
    assert f"T-{NEW_TASK} added to CM-1" in shown(first["view"]) and "already" not in shown(first["view"])
    assert f"T-{NEW_TASK} was already added" in shown(again["view"]) and view_problems(again["view"]) == []
    assert await count(running_app, Task) == len(LAUNCH.tasks) + 1
    # The first submission re-planned once; the repeat changed nothing.
    assert (await snapshot_reasons(running_app))[1:] == [f"T-{NEW_TASK} added"]


async def test_two_submissions_of_one_view_at_once_add_one_task(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    acks = await asyncio.gather(*(submit_task(running_app, task_form(title="Webinar"), view_id="V0RACE")
                                  for _ in range(2)))

    assert [ack["response_action"] for ack in acks] == ["update", "update"], acks
    assert not any("error id" in shown(ack) for ack in acks)
    assert all(f"T-{NEW_TASK} added to CM-1" in shown(ack["view"]) for ack in acks)
    assert sum(f"T-{NEW_TASK} was already added" in shown(ack["view"]) for ack in acks) == 1
    async with running_app.sessions() as db:
        titles = list(await db.scalars(select(Task.title).where(Task.title == "Webinar")))
    assert titles == ["Webinar"]


async def test_a_refused_submission_leaves_the_view_free_for_the_corrected_one(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    """Slack keeps the same view (and id) while it shows field errors: the fixed form must still add."""
    await new_campaign(running_app, fake_slack)
    refused = await submit_task(running_app, task_form(estimate="3x"), view_id="V0FIXED")
    assert refused["response_action"] == "errors" and list(refused["errors"]) == ["estimate"], refused

    fixed = await submit_task(running_app, task_form(estimate="2d"), view_id="V0FIXED")
    assert f"T-{NEW_TASK} added to CM-1" in shown(fixed["view"]), fixed
    assert (await get_task(running_app, NEW_TASK)).duration_hours == 16.0


async def test_other_views_add_their_own_tasks(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    for view_id in ("V0ONE", "V0TWO"):
        ack = await submit_task(running_app, task_form(title="Same title"), view_id=view_id)
        assert ack["response_action"] == "update" and "already" not in shown(ack["view"]), ack
    assert await count(running_app, Task) == len(LAUNCH.tasks) + 2


# ---------------------------------------------------------------- the task form, slower than the bound


async def test_a_slow_task_form_acks_with_a_working_view_then_shows_the_task(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str, slow_forms: None
) -> None:
    await new_campaign(running_app, fake_slack)
    view_id = await open_task_form(running_app, fake_slack)
    async with database_held(db_url):  # the work cannot finish while this holds
        async with asyncio.timeout(2.5):  # inside Slack's 3 s
            ack = await submit_task(running_app, task_form(title="Slow <!here> webinar"), view_id=view_id)
        assert ack["response_action"] == "update" and view_problems(ack["view"]) == [], ack
        assert "Adding the task" in shown(ack["view"])
        assert fake_slack.calls_to("views.update") == []  # answered before the work was done

    update = await updated_view(fake_slack, view_id)
    assert update.response["ok"], update.response
    view = update.args["view"]
    assert view_problems(view) == [] and view["title"]["text"] == "Task added"
    assert f"T-{NEW_TASK} added to CM-1" in shown(view)
    assert "Slow &lt;!here&gt; webinar" in shown(view) and "<!here>" not in shown(view)
    assert (await get_task(running_app, NEW_TASK)).title == "Slow <!here> webinar"


async def test_a_slow_refused_task_form_says_why_in_the_form(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str, slow_forms: None
) -> None:
    await new_campaign(running_app, fake_slack)
    view_id = await open_task_form(running_app, fake_slack)
    async with database_held(db_url):
        ack = await submit_task(running_app, task_form(after=f"T-{WEB_COPY}", before=f"T-{RESEARCH}"),
                                view_id=view_id)
        assert "Adding the task" in shown(ack["view"]), ack

    view = (await updated_view(fake_slack, view_id)).args["view"]
    assert view_problems(view) == []
    assert "The task was not added" in shown(view) and "That makes a loop" in shown(view)
    assert await count(running_app, Task) == len(LAUNCH.tasks)


async def test_a_slow_task_form_that_fails_unexpectedly_shows_an_error_id(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str, slow_forms: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await new_campaign(running_app, fake_slack)
    view_id = await open_task_form(running_app, fake_slack)

    async def broken_replan(**_: Any) -> None:
        raise RuntimeError("the planner fell over")

    monkeypatch.setattr(plans, "replan", broken_replan)
    async with database_held(db_url):
        ack = await submit_task(running_app, task_form(), view_id=view_id)
        assert "Adding the task" in shown(ack["view"]), ack

    view = (await updated_view(fake_slack, view_id)).args["view"]
    assert "The task was not added" in shown(view) and "error id" in shown(view)
    assert "fell over" not in shown(view)
    assert await count(running_app, Task) == len(LAUNCH.tasks)


async def test_a_late_repeat_of_a_slow_submission_answers_with_the_same_task(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str, slow_forms: None
) -> None:
    """The person saw "Adding the task…" and submitted again from a retry: still one task."""
    await new_campaign(running_app, fake_slack)
    view_id = await open_task_form(running_app, fake_slack)
    async with database_held(db_url):
        first, again = await asyncio.gather(*(submit_task(running_app, task_form(), view_id=view_id)
                                              for _ in range(2)))
        assert "Adding the task" in shown(first["view"]) and "Adding the task" in shown(again["view"])

    await fake_slack.wait_for("views.update", lambda call: call.args.get("view_id") == view_id, count=2)
    views = [shown(call.args["view"]) for call in fake_slack.calls_to("views.update")]
    assert all(f"T-{NEW_TASK} added to CM-1" in view for view in views)
    assert sum(f"T-{NEW_TASK} was already added" in view for view in views) == 1
    assert await count(running_app, Task) == len(LAUNCH.tasks) + 1


# ---------------------------------------------------------------- the block-reason form


async def test_a_slow_block_form_acks_in_time_then_blocks_and_republishes(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str, slow_forms: None
) -> None:
    ids = await planned_campaign(running_app)
    task_id = ids["design"]
    view_id = await open_block_form(running_app, fake_slack, task_id)
    seen = len(publishes(fake_slack, "U0ALICE"))
    async with database_held(db_url):
        async with asyncio.timeout(2.5):
            status, body = await submit_reason(running_app, task_id, "waiting for <!channel> legal", view_id=view_id)
        assert status == 200
        ack = json.loads(body)
        assert ack["response_action"] == "update" and view_problems(ack["view"]) == [], ack
        assert f"Blocking T-{task_id}" in shown(ack["view"])
        assert fake_slack.calls_to("views.update") == []

    view = (await updated_view(fake_slack, view_id)).args["view"]
    assert view_problems(view) == [] and f"T-{task_id} is blocked" in shown(view)
    assert "&lt;!channel&gt;" in shown(view) and "<!channel>" not in shown(view)
    task = await get_task(running_app, task_id)
    assert task.status is TaskStatus.BLOCKED and task.blocked_reason == "waiting for <!channel> legal"
    home = await next_publish(fake_slack, "U0ALICE", seen)
    assert "_Blocked:_ waiting for &lt;!channel&gt; legal" in "\n".join(texts(home))


async def test_a_slow_refused_block_form_says_why(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str, slow_forms: None
) -> None:
    ids = await planned_campaign(running_app)
    view_id = await open_block_form(running_app, fake_slack, ids["brief"])
    await set_task(running_app, ids["brief"], status=TaskStatus.DONE)  # finished while the form was open
    async with database_held(db_url):
        status, body = await submit_reason(running_app, ids["brief"], "legal review", view_id=view_id)
        assert status == 200 and f"Blocking T-{ids['brief']}" in body, body

    view = (await updated_view(fake_slack, view_id)).args["view"]
    assert view_problems(view) == []
    assert f"T-{ids['brief']} was not blocked" in shown(view) and "can't change any more" in shown(view)
    assert (await get_task(running_app, ids["brief"])).status is TaskStatus.DONE


async def test_a_quick_block_form_still_just_closes(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    status, body = await submit_reason(running_app, ids["brief"], "legal review", view_id="V0QUICK")
    assert (status, body) == (200, "")
    await next_publish(fake_slack, "U0ALICE", 0)  # the steps after the ack have run
    assert (await get_task(running_app, ids["brief"])).status is TaskStatus.BLOCKED
    assert fake_slack.calls_to("views.update") == []


async def test_the_sweep_forgets_form_submissions_after_a_day(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A repeat comes within minutes; the claims would otherwise pile up, one per task added by a form."""
    now = datetime.now(UTC)
    async with sessions.begin() as db:
        db.add_all([FormSubmission(view_id="V0OLD", created_at=now - timedelta(days=1, minutes=1)),
                    FormSubmission(view_id="V0RECENT", created_at=now - timedelta(hours=23))])
    async with sessions.begin() as db:
        await sweep(db=db, now=now)
    async with sessions() as db:
        assert list(await db.scalars(select(FormSubmission.view_id))) == ["V0RECENT"]
