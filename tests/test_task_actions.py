"""The task buttons on the Home tab (Start, Done, Block) and the modal asking why a task is blocked, end to
end: signed interaction payloads in, the database, the re-published Home and Slack calls out."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select

from models import Task, TaskStatus, Timeline
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.home_helpers import (
    BERLIN,
    buttons,
    get_task,
    home_click,
    next_publish,
    planned_campaign,
    publishes,
    set_task,
    snapshot_reasons,
    task_buckets,
    texts,
)
from tests.slack_helpers import working_days_after
from tests.slack_requests import block_actions_payload, view_submission_payload

NOT_YOURS = "Only the assignee, the campaign owner or an admin can"


async def click(app: RunningApp, fake: FakeSlack, user: str, action_id: str, value: str) -> dict:
    """Click a button on `user`'s Home tab and return the Home published after it."""
    seen = len(publishes(fake, user))
    status, body = await app.slack.interaction(home_click(user, action_id, value))
    assert (status, body) == (200, "")
    return await next_publish(fake, user, seen)


def submission(user: str, task_id: int, reason: str) -> dict:
    return view_submission_payload(user_id=user, callback_id="task_block_modal", private_metadata=str(task_id),
                                   values={"reason": {"reason": reason}})


async def state(app: RunningApp, task_id: int) -> tuple[TaskStatus, str | None, bool, int]:
    task = await get_task(app, task_id)
    return task.status, task.blocked_reason, task.completed_at is not None, len(await snapshot_reasons(app))


# ---------------------------------------------------------------- Done and Start


async def test_done_completes_replans_and_republishes(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    before = await snapshot_reasons(running_app)

    view = await click(running_app, fake_slack, "U0ALICE", "task_done", str(ids["brief"]))

    task = await get_task(running_app, ids["brief"])
    assert task.status is TaskStatus.DONE and task.completed_at is not None
    assert (await snapshot_reasons(running_app))[len(before):] == [f"T-{ids['brief']} done"]
    shown = [task_id for bucket in task_buckets(view).values() for task_id in bucket]
    assert ids["brief"] not in shown and ids["copy"] in shown
    # In place: nothing is posted, no modal opens, the owner hears nothing without an alert.
    assert not fake_slack.calls_to("response_url") and not fake_slack.calls_to("views.open")
    assert not fake_slack.calls_to("chat.postMessage")


async def test_done_tells_the_owner_when_the_plan_alerts(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    launch = working_days_after(datetime.now(BERLIN).date(), 2)  # far too close: the buffer is gone
    ids = await planned_campaign(running_app, owner="U0ALICE", assignee="U0BOB", launch=launch)
    async with running_app.sessions.begin() as db:
        timeline = (await db.scalars(select(Timeline))).one()
        timeline.alert_level = 0  # as if nobody had been told yet

    await click(running_app, fake_slack, "U0BOB", "task_done", str(ids["brief"]))

    alert = await fake_slack.wait_for("chat.postMessage")
    assert alert.args["channel"] == "U0ALICE" and "plan alert" in alert.args["text"]
    assert f"After: T-{ids['brief']} done (Bob Baker)" in json.dumps(alert.args["blocks"])


async def test_start_marks_it_in_progress(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)

    view = await click(running_app, fake_slack, "U0ALICE", "task_start", str(ids["copy"]))

    assert (await get_task(running_app, ids["copy"])).status is TaskStatus.IN_PROGRESS
    assert set(buttons(view, f"task-{ids['copy']}")) == {"task_done", "task_block"}
    assert any(f"`T-{ids['copy']}` Copy" in text and "in progress" in text for text in texts(view))


async def test_a_click_under_a_message_is_answered_there(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    await set_task(running_app, ids["copy"], title="Copy <!channel> now")
    payload = block_actions_payload(user_id="U0ALICE", action_id="task_start", value=str(ids["copy"]),
                                    response_url=fake_slack.response_url())

    assert (await running_app.slack.interaction(payload))[0] == 200

    reply = await fake_slack.wait_for("response_url")
    assert reply.args["response_type"] == "ephemeral" and reply.args["replace_original"] is False
    assert f"Started T-{ids['copy']}" in reply.args["text"]
    assert "Copy &lt;!channel&gt; now" in json.dumps(reply.args["blocks"]) and "<!channel>" not in json.dumps(reply.args)
    # The Home is not re-published for a click elsewhere (it is built afresh when the tab opens); a
    # re-publish would have gone out before the reply that has arrived.
    assert fake_slack.calls_to("views.publish") == []


# ---------------------------------------------------------------- Block


async def test_block_asks_why_then_blocks(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    await set_task(running_app, ids["design"], title="Design <!here> banner")
    task_id = ids["design"]

    status, _ = await running_app.slack.interaction(home_click("U0ALICE", "task_block", str(task_id), "trig.block"))
    assert status == 200
    opened = await fake_slack.wait_for("views.open")
    assert opened.args["trigger_id"] == "trig.block" and opened.response["ok"], opened.response
    modal = opened.args["view"]
    assert (modal["callback_id"], modal["private_metadata"]) == ("task_block_modal", str(task_id))
    assert "Design &lt;!here&gt; banner" in modal["blocks"][0]["text"]["text"]
    assert await state(running_app, task_id) == (TaskStatus.TODO, None, False, 1)  # nothing yet

    seen = len(publishes(fake_slack, "U0ALICE"))
    status, body = await running_app.slack.interaction(submission("U0ALICE", task_id, "  <!channel> waiting\nfor legal "))
    assert (status, body) == (200, "")  # the modal closes

    task = await get_task(running_app, task_id)
    assert task.status is TaskStatus.BLOCKED and task.blocked_reason == "<!channel> waiting for legal"
    assert (await snapshot_reasons(running_app))[-1] == f"T-{task_id} blocked"
    view = await next_publish(fake_slack, "U0ALICE", seen)
    shown = "\n".join(texts(view))
    assert "_Blocked:_ &lt;!channel&gt; waiting for legal" in shown and "Design &lt;!here&gt; banner" in shown
    assert "<!channel>" not in json.dumps(view) and "<!here>" not in json.dumps(view)
    assert set(buttons(view, f"task-{task_id}")) == {"task_start", "task_done"}


async def test_an_empty_reason_is_refused_on_the_form(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    for reason in ("", "   \n ", "\x00"):
        status, body = await running_app.slack.interaction(submission("U0ALICE", ids["brief"], reason))
        assert status == 200
        answer = json.loads(body)
        assert answer["response_action"] == "errors" and set(answer["errors"]) == {"reason"}
    assert await state(running_app, ids["brief"]) == (TaskStatus.TODO, None, False, 1)
    assert not publishes(fake_slack, "U0ALICE")


async def test_a_reason_with_a_nul_is_kept_without_it(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    status, body = await running_app.slack.interaction(submission("U0ALICE", ids["brief"], "legal\x00 review"))
    assert (status, body) == (200, "")
    assert (await get_task(running_app, ids["brief"])).blocked_reason == "legal review"


# ---------------------------------------------------------------- refusals


async def test_someone_elses_task_is_refused_under_a_message(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)  # Alice's campaign, Alice's tasks
    before = await state(running_app, ids["brief"])
    for action in ("task_done", "task_start", "task_block"):
        url = fake_slack.response_url()
        payload = block_actions_payload(user_id="U0BOB", action_id=action, value=str(ids["brief"]), response_url=url)
        assert (await running_app.slack.interaction(payload))[0] == 200
        reply = await fake_slack.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id))
        assert reply.args["response_type"] == "ephemeral" and NOT_YOURS in reply.args["text"]
    assert await state(running_app, ids["brief"]) == before
    assert not fake_slack.calls_to("views.open")


async def test_someone_elses_task_is_refused_on_the_home_tab(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    before = await state(running_app, ids["brief"])
    for n, action in enumerate(("task_done", "task_start", "task_block"), start=1):
        view = await click(running_app, fake_slack, "U0BOB", action, str(ids["brief"]))
        notice = await fake_slack.wait_for("views.open", count=n)
        assert notice.response["ok"] and notice.args["view"].get("callback_id") != "task_block_modal"
        assert NOT_YOURS in json.dumps(notice.args["view"])
        assert task_buckets(view) == {}  # Bob's Home, re-published, has none of Alice's tasks
    assert await state(running_app, ids["brief"]) == before
    assert not fake_slack.calls_to("response_url")


async def test_someone_elses_block_submission_is_refused(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    before = await state(running_app, ids["brief"])
    status, body = await running_app.slack.interaction(submission("U0BOB", ids["brief"], "mine now"))
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors" and NOT_YOURS in answer["errors"]["reason"]
    assert await state(running_app, ids["brief"]) == before


async def test_a_finished_task_cannot_be_done_twice(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    await click(running_app, fake_slack, "U0ALICE", "task_done", str(ids["brief"]))
    before = await state(running_app, ids["brief"])
    await click(running_app, fake_slack, "U0ALICE", "task_done", str(ids["brief"]))
    notice = await fake_slack.wait_for("views.open")
    assert f"T-{ids['brief']} is already done." in json.dumps(notice.args["view"])
    assert await state(running_app, ids["brief"]) == before
    await click(running_app, fake_slack, "U0ALICE", "task_block", str(ids["brief"]))
    notice = await fake_slack.wait_for("views.open", count=2)
    assert "can't change any more" in json.dumps(notice.args["view"])


async def test_a_button_without_a_task_id_is_refused(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await planned_campaign(running_app)
    for n, value in enumerate(("", "T-1; drop", "999999"), start=1):
        await click(running_app, fake_slack, "U0ALICE", "task_done", value)
        notice = await fake_slack.wait_for("views.open", count=n)
        assert "does not point at a task" in json.dumps(notice.args["view"]) or "no task" in json.dumps(
            notice.args["view"])
    async with running_app.sessions() as db:
        assert not list(await db.scalars(select(Task).where(Task.status == TaskStatus.DONE)))
