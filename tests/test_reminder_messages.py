"""Reminder messages: valid Block Kit, escaped, with buttons that work (snooze) for the right person only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import select

from blocks.notifications import render
from handlers.slack.task_actions import snooze_until
from models import Task
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.slack_helpers import send_command
from tests.slack_requests import block_actions_payload

NASTY = "<!channel> & <@U0BOB>"


@pytest.mark.parametrize("kind", ["task_reminder", "task_overdue", "task_escalation", "approval_reminder",
                                  "approval_escalation", "digest", "something_new"])
def test_every_kind_renders_valid_escaped_blocks(kind: str) -> None:
    payload = {"kind": kind, "task": "T-4", "task_id": 4, "title": NASTY, "campaign": "CM-1", "campaign_name": NASTY,
               "due": "2027-03-01T16:00:00+00:00", "approval": "AP-2", "stage": NASTY,
               "deadline": "2027-03-01T16:00:00+00:00", "due_today": 2, "overdue": 1, "approvals_waiting": 0,
               "summary": NASTY}
    rendered = render(kind, payload)
    for block in rendered.get("blocks", []):
        Block.parse(block).validate_json()
    shown = repr(rendered)
    assert "<!channel>" not in shown and "<@U0BOB>" not in shown


def test_snooze_until_tomorrow_is_nine_in_the_morning_where_you_are() -> None:
    now = datetime(2027, 3, 27, 22, 30, tzinfo=UTC)  # Saturday night UTC, the eve of Berlin's clock change
    until = snooze_until("task_snooze_tomorrow", now, "Europe/Berlin")
    assert until == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)  # 09:00 CEST on Sunday the 28th
    assert snooze_until("task_snooze_hour", now, "Europe/Berlin") == now + timedelta(hours=1)


async def test_the_snooze_button_quiets_my_task_and_refuses_others(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    launch = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    await send_command(running_app, fake_slack, "/campaign", f'new "Snoozy" newsletter {launch}')
    await send_command(running_app, fake_slack, "/task", "assign T-1 <@U0ALICE|alice>")
    for user in ("U0BOB", "U0ALICE"):
        payload = block_actions_payload(user_id=user, action_id="task_snooze_hour", value="1",
                                        response_url=fake_slack.response_url())
        status, _ = await running_app.slack.interaction(payload)
        assert status == 200
        await fake_slack.wait_for("response_url", lambda call, url=payload["response_url"]: url.endswith(call.url_id or "-"))
    async with running_app.sessions() as db:
        task = (await db.scalars(select(Task).where(Task.id == 1))).one()
    assert task.snoozed_until is not None
    assert timedelta(minutes=55) < task.snoozed_until - datetime.now(UTC) <= timedelta(hours=1)
    refusals = [call for call in fake_slack.calls_to("response_url") if "Only the assignee" in str(call.args)]
    assert len(refusals) == 1
