"""Emails show payload dates in the reader's own zone ("Tue 1 Dec 2026, 14:00 (Europe/Berlin)"), since an
email cannot carry Slack's `<!date^...>` tokens; a plain date is a calendar day and is not shifted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.emails import Email, local_when, render_email
from models import Approval, Campaign, CampaignStatus, Notification, Task, TeamMember
from services.reminders import due_notifications

NASTY = "<b>Launch</b> & <!channel>"
LATE_EVENING_UTC = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # Tue 1 Dec in Los Angeles, Wed 2 Dec in Tokyo


def task_payload(kind: str, due: datetime) -> dict[str, Any]:
    """The keys services.reminders._task_rules writes (due is the UTC instant's isoformat)."""
    payload: dict[str, Any] = {
        "kind": kind, "task": "T-7", "task_id": 7, "title": NASTY, "campaign": "CM-3", "campaign_id": 3,
        "campaign_name": "Spring <sale> & more", "due": due.isoformat(), "assignee_id": 4,
        "reason": {"task_reminder": "due_soon", "task_overdue": "overdue", "task_escalation": "overdue"}[kind],
    }
    if kind == "task_reminder":
        payload["offset_hours"] = 2.0
    elif kind == "task_overdue":
        payload["days_overdue"] = 1
    else:
        payload |= {"level": 1, "grace_hours": 24.0}
    return payload


def approval_payload(kind: str, deadline: datetime) -> dict[str, Any]:
    """The keys services.reminders._approval_rules writes: the deadline twice, as "deadline" and "due"."""
    payload: dict[str, Any] = {
        "kind": kind, "approval": "AP-9", "approval_id": 9, "stage": NASTY, "title": NASTY, "campaign": "CM-3",
        "campaign_id": 3, "campaign_name": "Spring <sale> & more", "deadline": deadline.isoformat(),
        "due": deadline.isoformat(), "approver_id": 4, "delegated_to_id": None,
        "reason": "deadline_soon" if kind == "approval_reminder" else "deadline_passed",
    }
    if kind == "approval_escalation":
        payload["level"] = 1
    return payload


def payload_for(kind: str, when: datetime) -> dict[str, Any]:
    return task_payload(kind, when) if kind.startswith("task_") else approval_payload(kind, when)


def shown(email: Email) -> str:
    return "\n".join((email.subject, email.text, email.html))


DATED_KINDS = ["task_reminder", "task_overdue", "task_escalation", "approval_reminder", "approval_escalation"]


@pytest.mark.parametrize("kind", DATED_KINDS)
def test_each_dated_kind_shows_the_local_time_not_the_iso_string(kind: str) -> None:
    payload = payload_for(kind, LATE_EVENING_UTC)
    email = render_email(kind, payload, tz="Asia/Tokyo")

    local = "Wed 2 Dec 2026, 08:30 (Asia/Tokyo)"
    assert local in email.text and local in email.html
    assert "2026-12-01" not in shown(email) and "23:30" not in shown(email)
    # The date did not change how typed text is treated: raw in the text part, escaped in the HTML part.
    assert NASTY in email.text and "<b>" not in email.html and "&lt;b&gt;Launch&lt;/b&gt; &amp;" in email.html


@pytest.mark.parametrize(("tz", "local"), [
    ("America/Los_Angeles", "Tue 1 Dec 2026, 15:30 (America/Los_Angeles)"),
    ("Asia/Tokyo", "Wed 2 Dec 2026, 08:30 (Asia/Tokyo)"),
])
def test_one_instant_reads_on_different_days_either_side_of_the_pacific(tz: str, local: str) -> None:
    email = render_email("task_reminder", task_payload("task_reminder", LATE_EVENING_UTC), tz=tz)
    assert f"Due {local} · CM-3 Spring <sale> & more" in email.text


@pytest.mark.parametrize(("instant", "local"), [
    # Summer time starts Sun 29 Mar 2026 at 01:00 UTC: 02:00 CET becomes 03:00 CEST.
    ("2026-03-29T00:30:00+00:00", "Sun 29 Mar 2026, 01:30 (Europe/Berlin)"),
    ("2026-03-29T01:30:00+00:00", "Sun 29 Mar 2026, 03:30 (Europe/Berlin)"),
    # It ends Sun 25 Oct 2026 at 01:00 UTC: two instants an hour apart both read 02:30.
    ("2026-10-25T00:30:00+00:00", "Sun 25 Oct 2026, 02:30 (Europe/Berlin)"),
    ("2026-10-25T01:30:00+00:00", "Sun 25 Oct 2026, 02:30 (Europe/Berlin)"),
    # An offset other than UTC is honoured, not dropped.
    ("2026-07-01T09:00:00-04:00", "Wed 1 Jul 2026, 15:00 (Europe/Berlin)"),
])
def test_berlin_clock_changes(instant: str, local: str) -> None:
    payload = approval_payload("approval_reminder", LATE_EVENING_UTC) | {"deadline": instant}
    email = render_email("approval_reminder", payload, tz="Europe/Berlin")
    assert f"deadline {local}" in email.text


@pytest.mark.parametrize("tz", [None, "", "   ", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime",
                                "America", "Europe/Berlin\x00"])
def test_no_empty_or_unknown_zone_falls_back_to_utc_and_says_so(tz: str | None) -> None:
    email = render_email("task_overdue", task_payload("task_overdue", LATE_EVENING_UTC), tz=tz)
    assert "Due Tue 1 Dec 2026, 23:30 (UTC) ·" in email.text


def test_without_a_zone_the_email_is_in_utc() -> None:
    email = render_email("approval_escalation", approval_payload("approval_escalation", LATE_EVENING_UTC))
    assert "deadline Tue 1 Dec 2026, 23:30 (UTC)" in email.text


def test_a_naive_timestamp_is_utc() -> None:
    assert local_when("2026-12-01T23:30:00", "Asia/Tokyo") == "Wed 2 Dec 2026, 08:30 (Asia/Tokyo)"
    assert local_when("2026-12-01T23:30", "America/Los_Angeles") == "Tue 1 Dec 2026, 15:30 (America/Los_Angeles)"


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago", None])
def test_a_plain_date_is_a_calendar_day_and_is_not_shifted(tz: str | None) -> None:
    assert local_when("2026-12-01", tz) == "Tue 1 Dec 2026"
    assert local_when(date(2026, 12, 1), tz) == "Tue 1 Dec 2026"


def test_datetime_objects_are_read_like_their_iso_form() -> None:
    assert local_when(LATE_EVENING_UTC, "Asia/Tokyo") == local_when(LATE_EVENING_UTC.isoformat(), "Asia/Tokyo")
    assert local_when(datetime(2026, 12, 1, 23, 30), "Asia/Tokyo") == "Wed 2 Dec 2026, 08:30 (Asia/Tokyo)"


@pytest.mark.parametrize("value", ["next Tuesday", "2026-13-45", "2026-12-01T25:00", "<i>soon</i> & later", "17"])
@pytest.mark.parametrize("kind", ["task_reminder", "approval_reminder"])
def test_a_malformed_value_is_shown_as_it_came(kind: str, value: str) -> None:
    key = "due" if kind == "task_reminder" else "deadline"
    payload = payload_for(kind, LATE_EVENING_UTC) | {key: value}
    email = render_email(kind, payload, tz="Asia/Tokyo")
    assert value in email.text and "(Asia/Tokyo)" not in email.text
    assert "<i>" not in email.html


@pytest.mark.parametrize(("value", "tz"), [
    ("9999-12-31T23:59:00+00:00", "Asia/Tokyo"),  # Tokyo's clock is already past the last year
    ("0001-01-01T00:30:00", "America/Los_Angeles"),  # Los Angeles' clock is still before the first
])
def test_an_instant_the_zone_cannot_show_is_shown_as_it_came(value: str, tz: str) -> None:
    email = render_email("task_escalation", task_payload("task_escalation", LATE_EVENING_UTC) | {"due": value}, tz=tz)
    assert f"Due {value} ·" in email.text


def test_a_value_of_another_type_is_shown_as_it_came() -> None:
    assert local_when(1764631800, "Asia/Tokyo") == "1764631800"
    assert local_when(["2026-12-01"], "Asia/Tokyo") == "['2026-12-01']"


@pytest.mark.parametrize(("kind", "missing"), [("task_reminder", "Due no date ·"), ("approval_reminder", "deadline none")])
@pytest.mark.parametrize("absent", [None, "", "drop"])
def test_a_missing_date_says_so(kind: str, missing: str, absent: str | None) -> None:
    key = "due" if kind == "task_reminder" else "deadline"
    payload = payload_for(kind, LATE_EVENING_UTC)
    if absent == "drop":
        del payload[key]
    else:
        payload[key] = absent
    assert missing in render_email(kind, payload, tz="Asia/Tokyo").text


def test_kinds_without_dates_still_render_with_a_zone() -> None:
    digest = render_email("digest", {"kind": "digest", "date": "2026-12-01", "due_today": 2, "overdue": 1,
                                     "approvals_waiting": 0}, tz="Asia/Tokyo")
    assert "2 due today · 1 overdue" in digest.text
    other = render_email("something_new", {"summary": "Hello", "text": "2026-12-01T23:30:00+00:00"}, tz="Asia/Tokyo")
    assert "Hello" in other.subject and "2026-12-01T23:30:00+00:00" in other.text  # free text is not parsed


async def test_payloads_written_by_the_sweep_read_in_the_recipients_zone(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    due = datetime(2027, 3, 10, 20, 0, tzinfo=UTC)  # 12:00 Wed in Los Angeles (PST), 05:00 Thu in Tokyo
    async with sessions.begin() as db:
        member = TeamMember(slack_user_id="U0TOKYO", name="Kei", email="kei@example.com", timezone="Asia/Tokyo",
                            weekly_availability={})
        db.add(member)
        await db.flush()
        campaign = Campaign(name="Spring <sale>", template="promo", launch_date=date(2027, 5, 1),
                            status=CampaignStatus.ACTIVE, owner_id=member.id)
        db.add(campaign)
        await db.flush()
        db.add(Task(campaign_id=campaign.id, title="Write copy", assignee_id=member.id, due_at=due))
        db.add(Approval(campaign_id=campaign.id, stage="Legal", approver_id=member.id, deadline=due))
    async with sessions.begin() as db:
        await due_notifications(db=db, now=due - timedelta(hours=1))
    async with sessions() as db:
        rows = {row.kind: row for row in await db.scalars(select(Notification))}
        zone = await db.scalar(select(TeamMember.timezone).where(TeamMember.slack_user_id == "U0TOKYO"))
    assert {"task_reminder", "approval_reminder"} <= set(rows)

    task = render_email("task_reminder", rows["task_reminder"].payload, tz=zone)
    approval = render_email("approval_reminder", rows["approval_reminder"].payload, tz=zone)
    assert "Due Thu 11 Mar 2027, 05:00 (Asia/Tokyo) ·" in task.text
    assert "deadline Thu 11 Mar 2027, 05:00 (Asia/Tokyo)" in approval.text
    for email in (task, approval):
        assert "2027-03-10" not in shown(email)
    west = render_email("task_reminder", rows["task_reminder"].payload, tz="America/Los_Angeles")
    assert "Due Wed 10 Mar 2027, 12:00 (America/Los_Angeles) ·" in west.text
