"""The owner's plan alert is written in the transaction of the change that caused it, over signed requests.

So a change that rolls back leaves no alert, a change that commits leaves exactly one (under the one key
scheme of `services.plan_alerts`), and a failure after the commit cannot lose it: the sweep sends it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import handlers.slack.context as unit_of_work_module
import handlers.slack.task as task_command
from models import Timeline
from services import plan_alerts
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.test_task_command import get_task, plan_alert_rows, task, tight_promo


def _five_days_longer(hours: float) -> str:
    return f"{hours / 8 + 5:g}d"  # past the whole buffer: the launch slips, the owner must hear


async def test_a_change_that_rolls_back_leaves_no_alert_one_that_commits_leaves_one(
    running_app: RunningApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    critical = await tight_promo(running_app, fake_slack)
    longer = _five_days_longer(critical.duration_hours)

    def broken_reply(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("the reply could not be built")

    # The estimate is changed, the plan re-planned and its alert written; then building the reply fails,
    # inside the same unit of work: everything rolls back together.
    with monkeypatch.context() as patch:
        patch.setattr(task_command, "task_changed", broken_reply)
        refused = await task(running_app, fake_slack, f"estimate T-{critical.id} {longer}")
    assert "error id" in refused.args["text"], refused.args["text"]
    assert (await get_task(running_app, critical.id)).duration_hours == critical.duration_hours
    assert await plan_alert_rows(running_app) == []

    await task(running_app, fake_slack, f"estimate T-{critical.id} {longer}")

    async with running_app.sessions() as db:
        timeline = (await db.scalars(select(Timeline))).one()
    assert timeline.computed_at is not None
    [row] = await plan_alert_rows(running_app)
    assert row.dedupe_key == plan_alerts.dedupe_key(timeline.campaign_id, timeline.computed_at)
    assert row.payload["because"] == f"T-{critical.id} re-estimated {critical.duration_hours:g}h → " \
                                     f"{critical.duration_hours + 40:g}h (Alice Archer)"  # plain text
    alert = await fake_slack.wait_for("chat.postMessage")
    assert alert.args["channel"] == "U0ALICE" and alert.args["text"] == "CM-1 Flash sale: plan alert"


async def test_a_failure_right_after_the_commit_cannot_lose_the_alert(
    db_url: str, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        critical = await tight_promo(app, fake_slack)

        async def crashed(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the listener died between the commit and the hand-out")

        # Everything after the commit fails, the hand-out of the written rows included.
        monkeypatch.setattr(unit_of_work_module, "send_many", crashed)
        reply = await task(app, fake_slack, f"estimate T-{critical.id} {_five_days_longer(critical.duration_hours)}")
        assert "error id" in reply.args["text"], reply.args["text"]
        [row] = await plan_alert_rows(app)  # committed with the change all the same
        assert fake_slack.calls_to("chat.postMessage") == []

        result = await app.runtime.sweeper_for_tests().run_once()  # the sweep finds it due and hands it out

        assert result is not None and row.id in result.due_ids
        alert = await fake_slack.wait_for("chat.postMessage")
    assert alert.args["channel"] == "U0ALICE" and "plan alert" in alert.args["text"]
