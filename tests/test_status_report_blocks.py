"""The weekly status post as Slack blocks and as email: valid Block Kit, escaped, within Slack's limits."""

from __future__ import annotations

from typing import Any

from blocks.campaigns import email_results_line
from blocks.emails import render_email
from blocks.notifications import render
from tests.fake_slack_blocks import MESSAGE_BLOCK_LIMIT, block_problems

NASTY = "<!channel> & <@U123>"
DUE = "2027-03-12T16:00:00+00:00"


def payload(*, title: str = NASTY, name: str = NASTY, items: int = 1, **extra: Any) -> dict[str, Any]:
    task = {"task": "T-4", "task_id": 4, "title": title, "assignee": "U0ALICE", "due": DUE, "milestone": False,
            "due_day": "2027-03-12"}
    approval = {"approval": "AP-2", "stage": title, "approver": "U0BOB", "requested": DUE, "deadline": DUE,
                "requested_day": "2027-03-12"}
    return {
        "kind": "campaign_status", "campaign": "CM-1", "campaign_id": 1, "campaign_name": name, "week": "2027-W11",
        "as_of": "2027-03-15T09:00:00+00:00", "status": "active", "launch_date": "2027-05-03",
        "projected_launch": "2027-05-06", "risk": "late", "tasks_done": 2, "tasks_total": 11, "tasks_done_pct": 18,
        "progress_pct": 30.0, "buffer_days": 2.0, "buffer_left_pct": 0.0, "buffer_left_days": 0.0,
        "overdue_count": items + 3, "overdue": [task] * items,
        "due_soon_count": items, "due_soon": [{**task, "milestone": True, "assignee": None}] * items,
        "approvals_waiting": items, "oldest_approvals": [approval] * items, "done_last_7_days": 1, **extra,
    }


def test_the_status_post_escapes_what_people_typed() -> None:
    rendered = render("campaign_status", payload())
    assert block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT) == []
    shown = repr(rendered)
    assert "<!channel>" not in shown and "<@U123>" not in shown
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in rendered["text"]
    body = "\n".join(block["text"]["text"] for block in rendered["blocks"] if block["type"] == "section")
    # Mentions we build from stored ids stay live; the due date is a Slack date token.
    assert "<@U0ALICE>" in body and "<@U0BOB>" in body and "_unassigned_" in body
    assert "<!date^1804867200^{date_short_pretty}|2027-03-12>" in body
    assert ":red_circle: late" in body and "Launch Mon 03 May 2027, projected Thu 06 May 2027" in body
    assert "*Overdue (4)*" in body and "…and 3 more" in body and ":triangular_flag_on_post:" in body


def test_long_names_and_full_lists_stay_within_block_kit_limits() -> None:
    long = "&<>" * 100 + "x" * 300  # escaping triples the first part
    rendered = render("campaign_status", payload(title=long, name=long, items=5, overdue_count=400))
    assert block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT) == []
    assert len(rendered["text"]) <= 3000
    for block in rendered["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
    assert "…and 395 more" in repr(rendered)


def test_a_quiet_week_says_so() -> None:
    quiet = payload(items=0, overdue_count=0, risk="on track", projected_launch="2027-05-03", launch_date="2027-05-03")
    rendered = render("campaign_status", quiet)
    assert block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT) == []
    body = repr(rendered["blocks"])
    assert "Nothing overdue" in body and "projected" not in body and "Overdue (" not in body


def test_the_status_email_escapes_html_and_keeps_one_subject_line() -> None:
    email = render_email("campaign_status", payload(name="Launch\n<b>bold</b> & co", items=2))
    assert email.subject == "Weekly status CM-1 Launch <b>bold</b> & co: late"
    assert "<b>" not in email.html and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in email.html
    assert "Overdue (5):" in email.text and "• T-4 <!channel> & <@U123>, due Fri 12 Mar 2027" in email.text
    assert "Waiting for a decision (2):" in email.text and "asked Fri 12 Mar 2027" in email.text
    assert "Progress: 2 of 11 tasks done (18%), 30% of the work" in email.text


def test_email_rates_never_round_a_part_to_all_or_none() -> None:
    line = email_results_line({"recipients": 201, "delivered_pct": 99.5, "opened_pct": 0.4, "clicked_pct": 10.0,
                               "bounced": 1, "unsubscribed": 0})
    assert "99.5% delivered" in line and "0.4% opened" in line and "10% clicked" in line
    assert "100%" not in email_results_line({"recipients": 3, "delivered_pct": 99.9})
    assert "100% delivered" in email_results_line({"recipients": 3, "delivered_pct": 100})
