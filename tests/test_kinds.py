"""Every notification kind can be read every way a person may have chosen: Slack, email and the in-app inbox.

One sample payload per `Kind`, built the way its writer builds it, with a hostile name wherever a person
types one. Each kind must have its own renderer (a kind that falls back to the generic one fails here),
and every rendering must say something and show the name inert: escaped, never a live mention or tag.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from blocks import emails, home, notifications
from models import Notification, TeamMember
from services.agent_handoff import HandoffResult
from services.approval_notices import CopyUpdate, RequestNotice, StageOutcome
from services.approval_stages import StageState
from services.campaign_created import CampaignCreated
from services.content_checks import Finding, Rule, Severity
from services.delivery import DeliveryFailed
from services.home import Bucket, HomeData, TaskGroup
from services.kinds import NOT_MESSAGES, Kind
from services.plan_alerts import PlanAlert
from services.signoffs import ContentHeld, StageUnstaffed
from tests.fake_slack_blocks import MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT, block_problems

HOSTILE = "<!channel> & <b>"
RAW = ("<!channel>", "<b>")  # what must never reach a reader as markup
SLACK_ESCAPED = "&lt;!channel&gt; &amp; &lt;b&gt;"
HTML_ESCAPED = "&lt;!channel&gt; &amp; &lt;b&gt;"
DUE = "2027-03-12T16:00:00+00:00"
NAMELESS = frozenset({Kind.DIGEST})  # counts only: nothing a person typed is in it
MESSAGES = [kind for kind in Kind if kind not in NOT_MESSAGES]  # a Home refresh is the Home; a webhook, a POST


def task_payload(kind: Kind) -> dict[str, Any]:
    return {"kind": kind.value, "task": "T-3", "task_id": 3, "title": HOSTILE, "campaign": "CM-1", "campaign_id": 1,
            "campaign_name": HOSTILE, "due": DUE, "reason": "due_soon", "assignee_id": 1}


def approval_payload(kind: Kind) -> dict[str, Any]:
    return {"kind": kind.value, "approval": "AP-2", "approval_id": 2, "stage": HOSTILE, "title": HOSTILE,
            "campaign": "CM-1", "campaign_id": 1, "campaign_name": HOSTILE, "deadline": DUE, "due": DUE,
            "reason": "deadline_soon", "approver_id": 1, "delegated_to_id": None}


def status_payload() -> dict[str, Any]:
    task = {"task": "T-4", "task_id": 4, "title": HOSTILE, "assignee": "U0ALICE", "due": DUE, "milestone": False,
            "due_day": "2027-03-12"}
    return {
        "kind": "campaign_status", "campaign": "CM-1", "campaign_id": 1, "campaign_name": HOSTILE, "week": "2027-W11",
        "as_of": "2027-03-15T09:00:00+00:00", "status": "active", "launch_date": "2027-05-03",
        "projected_launch": "2027-05-06", "risk": "late", "tasks_done": 2, "tasks_total": 11, "tasks_done_pct": 18,
        "progress_pct": 30.0, "buffer_days": 2.0, "buffer_left_pct": 0.0, "buffer_left_days": 0.0,
        "overdue_count": 1, "overdue": [task], "due_soon_count": 0, "due_soon": [],
        "approvals_waiting": 0, "oldest_approvals": [], "done_last_7_days": 1,
    }


SAMPLES: dict[Kind, dict[str, Any]] = {
    Kind.TASK_REMINDER: task_payload(Kind.TASK_REMINDER),
    Kind.TASK_OVERDUE: task_payload(Kind.TASK_OVERDUE),
    Kind.TASK_ESCALATION: task_payload(Kind.TASK_ESCALATION),
    Kind.APPROVAL_REMINDER: approval_payload(Kind.APPROVAL_REMINDER),
    Kind.APPROVAL_ESCALATION: approval_payload(Kind.APPROVAL_ESCALATION),
    Kind.DIGEST: {"kind": "digest", "date": "2027-03-12", "due_today": 1, "overdue": 2, "approvals_waiting": 1},
    Kind.CAMPAIGN_STATUS: status_payload(),
    Kind.PLAN_ALERT: PlanAlert(campaign_id=1, campaign_name=HOSTILE, alerts=("Launch slips 2 days",),
                               because=f"T-3 re-estimated ({HOSTILE})").to_payload(),
    Kind.DELIVERY_FAILED: DeliveryFailed(campaign_id=1, campaign_name=HOSTILE, kind=Kind.TASK_REMINDER.value,
                                         reason="not_in_channel", recipient_channel="C0GONE").to_payload(),
    Kind.STAGE_UNSTAFFED: StageUnstaffed(campaign_id=1, campaign_name=HOSTILE, stage=HOSTILE, role=HOSTILE,
                                         opening=True).to_payload(),
    Kind.CONTENT_CHECKS_FAILED: ContentHeld(campaign_id=1, campaign_name=HOSTILE, stages=(HOSTILE,), errors=(
        Finding(Severity.ERROR, Rule.PLACEHOLDER_TEXT, "AS-1", HOSTILE, f"The subject still has: {HOSTILE}"),)
    ).to_payload(),
    Kind.CAMPAIGN_CREATED: CampaignCreated(
        campaign_id=1, campaign_name=HOSTILE, template_title=HOSTILE, owner="U0ALICE", launch_date=date(2027, 5, 3),
        created_on=date(2027, 3, 1), tasks=9, milestones=1, critical_days=20.0, buffer_days=3.0).to_payload(),
    Kind.AGENT_HANDOFF_RESULT: HandoffResult(campaign_id=1, campaign_name=HOSTILE, handoff_id="7f0c", went_through=False,
                                             reason=f"the agent refused it: {HOSTILE}").to_payload(),
    Kind.APPROVAL_REQUEST: RequestNotice(campaign_id=1, campaign_name=HOSTILE, stage=HOSTILE, round=1,
                                         approval_id=2, deadline=datetime(2027, 3, 12, 16, tzinfo=UTC)).payload(),
    Kind.APPROVAL_COPY_UPDATE: CopyUpdate(copy_id=5, campaign_id=1, stage=HOSTILE, approval_id=2, channel="C0CAMP",
                                          ts="1700000000.000100").payload(),
    Kind.APPROVAL_OUTCOME: StageOutcome(campaign_id=1, campaign_name=HOSTILE, stage=HOSTILE, round=1,
                                        outcome=StageState.REJECTED, decided_by="U0BOB", reason=HOSTILE,
                                        approval_id=2).payload(),
}


def assert_inert(shown: str) -> None:
    for markup in RAW:
        assert markup not in shown


def test_every_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(MESSAGES)


@pytest.mark.parametrize("kind", MESSAGES)
def test_every_kind_has_its_own_slack_message(kind: Kind) -> None:
    assert kind in notifications.RENDERERS, f"{kind} would fall back to the generic message"
    rendered = notifications.render(kind, SAMPLES[kind])
    assert rendered["text"].strip() and rendered["blocks"]
    assert block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT) == []
    shown = json.dumps(rendered)
    assert_inert(shown)
    if kind not in NAMELESS:
        assert SLACK_ESCAPED in json.loads(shown)["text"] + json.dumps(rendered["blocks"])


@pytest.mark.parametrize("kind", MESSAGES)
def test_every_kind_has_its_own_email(kind: Kind) -> None:
    assert kind in emails.RENDERERS, f"{kind} would fall back to the generic email"
    mail = emails.render_email(kind, SAMPLES[kind], tz="Europe/Berlin")
    assert mail.subject.strip() and mail.text.strip() and "\n" not in mail.subject
    assert_inert(mail.html)
    if kind not in NAMELESS:
        assert HOSTILE in mail.text and HTML_ESCAPED in mail.html


@pytest.mark.parametrize("kind", MESSAGES)
def test_every_kind_has_its_own_inbox_line(kind: Kind) -> None:
    assert kind in home.INBOX_WORDS, f"{kind} would show in the inbox as its raw name"
    with_payload = Notification(id=1, kind=kind.value, payload=SAMPLES[kind],
                                scheduled_for=datetime(2027, 3, 1, 9, tzinfo=UTC), read_at=None)
    bare = Notification(id=2, kind=kind.value, payload={}, scheduled_for=datetime(2027, 3, 1, 8, tzinfo=UTC),
                        read_at=None)
    lines = inbox_lines([with_payload, bare])
    assert len(lines) == 2 and all(line.strip(" *·") for line in lines)
    assert_inert(json.dumps(lines))
    assert home.INBOX_WORDS[kind] in lines[1]


def inbox_lines(inbox: list[Notification]) -> list[str]:
    """The inbox's lines as the Home tab shows them."""
    member = TeamMember(id=1, slack_user_id="U0ALICE", name="Alice", timezone="UTC")
    now = datetime(2027, 3, 1, 10, tzinfo=UTC)
    data = HomeData(member=member, now=now, today=now.date(),
                    task_groups=[TaskGroup(bucket, [], 0) for bucket in Bucket], approvals=[], approvals_total=0,
                    campaigns=[], campaigns_total=0, inbox=inbox, unread_total=len(inbox))
    view = home.home_view(data)
    assert block_problems(view["blocks"], VIEW_BLOCK_LIMIT) == []
    [section] = [block for block in view["blocks"]
                 if block["type"] == "section" and ":large_blue_circle:" in block["text"]["text"]]
    return str(section["text"]["text"]).split("\n")
