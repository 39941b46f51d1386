"""The approval builders stay inside Slack's limits and keep typed text inert, whatever the data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from blocks.approvals import (
    delegate_modal,
    mine_message,
    owner_update,
    reject_modal,
    request_copy,
    request_reply,
)
from blocks.codec import Origin, decode_approval, encode_approval_form
from blocks.modals import notice_view
from models import ApprovalRule, ApprovalStatus, NotificationChannel
from services.approval_notices import StageOutcome, Told
from services.approval_stages import AssetLink, Person, StageState, StageView, Vote
from services.approvals import MAX_REASON
from services.refs import MAX_ID
from tests.fake_slack import MESSAGE_BLOCK_LIMIT, block_problems, view_problems

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
NASTY = "<!channel> & <@U0BOB> <https://evil.example|click> "


def person(index: int) -> Person:
    return Person(slack_user_id=f"U{index:08d}", name=(NASTY * 20)[:200])


def worst_stage(state: StageState, statuses: list[ApprovalStatus]) -> StageView:
    votes = tuple(
        Vote(approval_id=MAX_ID - index, approver=person(index), delegate=person(100 + index), status=status,
             decided_by=person(200 + index) if status is not ApprovalStatus.PENDING else None,
             decided_at=NOW if status is not ApprovalStatus.PENDING else None,
             comments=(NASTY * 60)[:1000] if status is ApprovalStatus.REJECTED else None)
        for index, status in enumerate(statuses)
    )
    assets = tuple(AssetLink(name=(NASTY * 20)[:300], kind="landing <page>", url=url)
                   for url in ["https://example.com/" + "a" * 900, "javascript:<x>|y", None] * 4)
    return StageView(campaign_id=10**11, campaign_name=(NASTY * 10)[:200], channel_id="C0GENERAL",
                     owner=person(999), stage=(NASTY * 5)[:100], order=1, rule=ApprovalRule.ALL, round=12,
                     deadline=NOW, state=state, waits_for=(NASTY * 5)[:100], votes=votes, assets=assets,
                     campaign_approved_at=NOW if state is StageState.PASSED else None)


STATES = [
    (StageState.OPEN, [ApprovalStatus.PENDING] * 10),
    (StageState.OPEN, [ApprovalStatus.APPROVED] * 5 + [ApprovalStatus.PENDING] * 5),
    (StageState.WAITING, [ApprovalStatus.PENDING] * 10),
    (StageState.PASSED, [ApprovalStatus.APPROVED] * 10),
    (StageState.REJECTED, [ApprovalStatus.REJECTED] + [ApprovalStatus.CANCELLED] * 9),
]


def assert_inert(payload: dict) -> None:
    text = repr(payload)
    assert "<!channel>" not in text and "<@U0BOB>" not in text and "<https://evil" not in text
    assert "<javascript:" not in text


@pytest.mark.parametrize(("state", "statuses"), STATES)
def test_every_copy_fits_and_escapes(state: StageState, statuses: list[ApprovalStatus]) -> None:
    view = worst_stage(state, statuses)
    for approval_id in [None, *(vote.approval_id for vote in view.votes)]:
        copy = request_copy(view, approval_id)
        assert block_problems(copy["blocks"], MESSAGE_BLOCK_LIMIT) == [], approval_id
        assert len(copy["text"]) <= 3000
        assert_inert(copy)
    outcome = StageOutcome(campaign_id=view.campaign_id, campaign_name=view.campaign_name, stage=view.stage,
                           round=view.round, outcome=StageState.REJECTED if state is StageState.REJECTED else StageState.PASSED,
                           decided_by="U0CAROL", reason=NASTY * 30, approval_id=7, opened=("x" * 100,))
    told = [Told("U0CAROL", NotificationChannel.EMAIL, None), Told("U0DAN", NotificationChannel.SLACK, NOW)]
    for payload in (owner_update(outcome.payload()), request_reply(view, told)):
        assert block_problems(payload["blocks"], MESSAGE_BLOCK_LIMIT) == []
        assert_inert(payload)


def test_buttons_show_only_while_the_readers_answer_is_needed() -> None:
    view = worst_stage(StageState.OPEN, [ApprovalStatus.APPROVED, ApprovalStatus.PENDING])
    approved, pending = (vote.approval_id for vote in view.votes)

    def actions(payload: dict) -> list[str]:
        return [element["action_id"] for block in payload["blocks"] if block["type"] == "actions"
                for element in block["elements"]]

    assert actions(request_copy(view, pending)) == ["approval_approve", "approval_reject", "approval_delegate"]
    assert actions(request_copy(view, approved)) == [] and actions(request_copy(view, None)) == []
    passed = replace(view, state=StageState.PASSED)
    assert actions(request_copy(passed, pending)) == []
    button = next(block for block in request_copy(view, pending)["blocks"] if block["type"] == "actions")
    assert {element["value"] for element in button["elements"]} == {str(pending)}
    assert {decode_approval(element["value"]) for element in button["elements"]} == {pending}  # what the listener reads


def test_mine_fits_however_many_wait() -> None:
    view = worst_stage(StageState.OPEN, [ApprovalStatus.PENDING] * 10)
    items = [(MAX_ID - index, view) for index in range(35)]
    payload = mine_message(items, viewer="U00000001")
    assert block_problems(payload["blocks"], MESSAGE_BLOCK_LIMIT) == [] and "35 approvals" in payload["text"]
    assert_inert(payload)


def test_modals_are_valid_views() -> None:
    for modal in (reject_modal(MAX_ID, encode_approval_form(MAX_ID, Origin.HOME)),
                  delegate_modal(MAX_ID, encode_approval_form(MAX_ID, Origin.MESSAGE)),
                  notice_view("AP-1 is not yours to decide: it waits for Bob &lt;b&gt;.", title="Approval")):
        assert view_problems(modal) == []
    assert reject_modal(7, "7")["blocks"][1]["element"]["max_length"] == MAX_REASON == 1000
