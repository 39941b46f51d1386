"""Approval messages: a stage's request (an approver's DM or the campaign channel's post) in every state,
what the owner hears, `/approval mine`, and the reject and delegate modals.

Every copy of a request is rendered from one `StageView`, so all copies say the same thing; an
approver's copy adds the buttons while their own answer is still needed. The outbox's approval rows
(`services.approval_notices`) are rendered here at delivery: requests and copy updates from the stage as
it is then, the owner's news from its payload. Times are Slack date tokens, shown in each reader's own
time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from blocks.codec import encode_id
from blocks.content import check_summary, findings_text
from blocks.ids import APPROVAL_APPROVE, APPROVAL_DELEGATE, APPROVAL_REJECT, REASON_ACTION, REASON_BLOCK
from blocks.text import (
    MODAL_TITLE_LIMIT,
    button,
    context,
    escape,
    fit_escaped,
    header,
    message,
    plain,
    section,
    user_mention,
)
from models import ApprovalRule, ApprovalStatus, NotificationChannel
from services.approval_notices import RequestNotice, StageOutcome, Told
from services.approval_stages import AssetLink, StageLine, StageState, StageView, Vote, approval_ref
from services.approvals import MAX_REASON
from services.refs import RefKind, format_ref

REJECT_CALLBACK, DELEGATE_CALLBACK = "approval_reject_modal", "approval_delegate_modal"
DELEGATE_BLOCK, DELEGATE_ACTION = "delegate", "delegate_to"
REASON_SHOWN = 1200  # a reason is at most MAX_REASON (1,000) characters; escaping can lengthen it
VOTES_PER_SECTION = 5  # ten approvers with their names stay far below a section's 3,000 characters
MINE_SHOWN = 20  # two blocks each, under a message's 50

STATUS_ICONS = {ApprovalStatus.PENDING: ":hourglass_flowing_sand:", ApprovalStatus.APPROVED: ":white_check_mark:",
                ApprovalStatus.REJECTED: ":x:", ApprovalStatus.DELEGATED: ":hourglass_flowing_sand:",
                ApprovalStatus.CANCELLED: ":heavy_minus_sign:"}
TITLES = {StageState.OPEN: (":memo:", "Approval requested"), StageState.WAITING: (":double_vertical_bar:", "Waiting"),
          StageState.PASSED: (":white_check_mark:", "Approved"), StageState.REJECTED: (":x:", "Rejected"),
          StageState.SKIPPED: (":heavy_minus_sign:", "Skipped"), StageState.UNSTAFFED: (":warning:", "Needs approvers"),
          StageState.HELD: (":no_entry:", "Held by content errors")}
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


def when(moment: datetime, pattern: str = "{date_short_pretty} at {time}") -> str:
    """A time each reader sees in their own zone; the fallback (old clients, notifications) is UTC."""
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{pattern}|{fallback}>"


def rule_phrase(rule: ApprovalRule) -> str:
    return "one approval is enough" if rule is ApprovalRule.ANY else "every approver must approve"


def due_phrase(view: StageView) -> str:
    return f"due {when(view.deadline)}" if view.deadline else "no deadline"


def stage_title(view: StageView, limit: int = 100) -> str:
    return f"*{fit_escaped(view.stage, limit)}* · {view.campaign_ref} {fit_escaped(view.campaign_name, 120)}"


def request_copy(view: StageView, approval_id: int | None) -> dict[str, Any]:
    """One copy of a stage's request: an approver's DM (`approval_id`) or the channel's post (None)."""
    icon, title = TITLES[view.state]
    vote = view.vote(approval_id)
    facts = [rule_phrase(view.rule).capitalize(), due_phrase(view)]
    if view.round > 1:
        facts.append(f"round {view.round}")
    blocks = [section(f"{icon} {title}: {stage_title(view)}"), context(" · ".join(facts))]
    if view.state is StageState.OPEN and (vote is None or vote.status is ApprovalStatus.PENDING):
        blocks.append(section(_review_text(view)))
    blocks += _vote_sections(view)
    status = _status_text(view, vote)
    if status:
        blocks.append(section(status))
    if view.findings and view.state is StageState.OPEN:  # beside the buttons: what the checks found
        blocks.append(section(f"*Content checks* · {check_summary(view.findings)}\n{findings_text(view.findings)}"))
    if vote is not None and view.state is StageState.OPEN and vote.status is ApprovalStatus.PENDING:
        blocks.append(decision_buttons(vote.approval_id))
    footer = f"{vote.ref} · " if vote else ""
    footer += f"requested by {user_mention(view.owner.slack_user_id)}"
    if vote is None and view.state is StageState.OPEN:
        footer += " · approvers decide in their direct messages with me"
    blocks.append(context(footer))
    text = f"{title}: {fit_escaped(view.stage, 100)} · {view.campaign_ref} {fit_escaped(view.campaign_name, 120)}"
    return message(text, blocks)


def request_notice(payload: Mapping[str, Any], stage: StageView) -> dict[str, Any]:
    """An outbox request or copy update (`approval_request`, `approval_copy_update`): the copy whose
    approval the payload names, rendered from the stage as it is at delivery."""
    approval_id = payload.get("approval_id")
    return request_copy(stage, approval_id if isinstance(approval_id, int) else None)


def request_fallback(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A request rendered without its stage (a renderer that only has the payload): where to decide."""
    notice = RequestNotice.from_payload(dict(payload))
    ref = format_ref(RefKind.CAMPAIGN, notice.campaign_id)
    text = (f":memo: Your sign-off on *{fit_escaped(notice.stage, 100)}* · {ref} "
            f"{fit_escaped(notice.campaign_name, 120)} is requested.")
    return message(f"Approval requested: {fit_escaped(notice.stage, 100)} · {ref}",
                   [section(text), context("Decide on my Home tab, or with `/approval mine`.")])


def decision_buttons(approval_id: int) -> dict[str, Any]:
    value = encode_id(approval_id)
    return {"type": "actions", "block_id": f"approval_{value}", "elements": [
        button("Approve", APPROVAL_APPROVE, value, style="primary"),
        button("Reject", APPROVAL_REJECT, value, style="danger"),
        button("Delegate", APPROVAL_DELEGATE, value),
    ]}


def _review_text(view: StageView) -> str:
    if not view.assets:
        return f"No assets are attached; review the plan with `/campaign show {view.campaign_ref}`."
    return "*To review:*\n" + "\n".join(f"• {_asset_line(asset)}" for asset in view.assets)


def _asset_line(asset: AssetLink) -> str:
    name = fit_escaped(asset.name, 120)
    kind = f" ({fit_escaped(asset.kind, 30)})" if asset.kind else ""
    ref = f"{asset.ref} " if asset.ref else ""
    if asset.url and len(asset.url) <= 1000 and _SAFE_URL.match(asset.url):
        return f"{ref}<{asset.url.replace('&', '&amp;')}|{name}>{kind}"
    return ref + name + kind + (f": {fit_escaped(asset.url, 200)}" if asset.url else "")


def vote_line(vote: Vote) -> str:
    line = f"{STATUS_ICONS[vote.status]} {user_mention(vote.approver.slack_user_id)}"
    if vote.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
        line += f" {vote.status.value}"
        if vote.decided_by and vote.decided_by.slack_user_id != vote.approver.slack_user_id:
            line += f" (through {user_mention(vote.decided_by.slack_user_id)})"
        if vote.decided_at:
            line += f" {when(vote.decided_at)}"
    elif vote.status is ApprovalStatus.CANCELLED:
        line += " · not needed any more"
    else:
        line += " · waiting"
        if vote.delegate:
            line += f" (delegated to {user_mention(vote.delegate.slack_user_id)})"
    return line


def _vote_sections(view: StageView) -> list[dict[str, Any]]:
    lines = [vote_line(vote) for vote in view.votes]
    progress = f"*Approvers* · {view.approved} of {len(view.votes)} approved"
    chunks = [lines[start:start + VOTES_PER_SECTION] for start in range(0, len(lines), VOTES_PER_SECTION)]
    return [section("\n".join(([progress] if index == 0 else []) + chunk)) for index, chunk in enumerate(chunks)]


def _status_text(view: StageView, vote: Vote | None) -> str | None:
    decided = f" {when(view.decided_at)}" if view.decided_at else ""
    if view.state is StageState.PASSED:
        text = f":white_check_mark: *Stage passed*{decided}."
        if view.campaign_approved_at:
            text += f" Every sign-off of {view.campaign_ref} is in."
        return text
    if view.state is StageState.REJECTED:
        rejection = view.rejection
        who = user_mention(rejection.decided_by.slack_user_id) if rejection and rejection.decided_by else "someone"
        return f":x: *Rejected* by {who}{decided}:\n{quote(rejection.comments if rejection else None)}"
    if view.state is StageState.WAITING:
        return f":double_vertical_bar: Opens when {_opens_when(view.waits_for, view.waits_for_task)}."
    if view.state is StageState.SKIPPED:
        return ":heavy_minus_sign: *Skipped*: the owner took this stage out; nothing more to decide."
    if vote is None:
        return None
    if vote.status is ApprovalStatus.APPROVED:
        decider = vote.decided_by or vote.approver
        # The approver's and the delegate's copies look alike: "You" only when nobody else could be meant.
        who = "You" if vote.delegate is None and decider == vote.approver else user_mention(decider.slack_user_id)
        more = view.still_needed
        return f":white_check_mark: {who} approved. Waiting for {more} more approval{'s' if more != 1 else ''}."
    if vote.delegate:
        return (f"Delegated to {user_mention(vote.delegate.slack_user_id)} for "
                f"{user_mention(vote.approver.slack_user_id)}; either of you can decide.")
    return None


def _opens_when(stage: str | None, task_ref: str | None) -> str:
    if task_ref:
        return f"{task_ref} is done"
    return f"*{fit_escaped(stage or '', 100)}* has passed"


def stage_line(line: StageLine, campaign_ref: str) -> str:
    """One stage's state in words: waiting for T-3, open until <date> (who has decided), approved,
    rejected (why), skipped, held by content errors, or which role nobody has."""
    state, name = line.status.state, f"*{fit_escaped(line.name, 100)}*"
    if state is StageState.WAITING:
        what = line.status.waits_for_task or f'"{fit_escaped(line.status.waits_for or "", 100)}"'
        return f":double_vertical_bar: {name} · waiting for {what}"
    if state is StageState.OPEN:
        until = f"open until {when(line.deadline)}" if line.deadline else "open, no deadline"
        decided = ", ".join(f"{fit_escaped(who, 60)} {status.value}" for who, status in line.decided)
        return f":memo: {name} · {until}" + (f" ({decided})" if decided else " (nobody has decided yet)")
    if state is StageState.PASSED:
        return f":white_check_mark: {name} · approved"
    if state is StageState.REJECTED:
        return f":x: {name} · rejected: {fit_escaped(line.reason or 'no reason given', 200)}"
    if state is StageState.SKIPPED:
        return f":heavy_minus_sign: {name} · skipped ({fit_escaped(line.status.skipped or 'by the owner', 200)})"
    if state is StageState.HELD:
        errors = f"{line.status.errors} content error{'s' if line.status.errors != 1 else ''}"
        return f":no_entry: {name} · held: {errors} to fix first (`/campaign checks {campaign_ref}`)"
    role = fit_escaped(line.role or "approver", 60)
    return (f":warning: {name} · needs approvers: nobody has the role \"{role}\"; "
            f"`/approval request {campaign_ref} \"{fit_escaped(line.name, 100)}\" @someone`")


def quote(text: str | None) -> str:
    """A reason shown as a block quote; escaped, so `<!channel>` in it is only text."""
    if not text:
        return "> (no reason given)"
    return "\n".join(f"> {line}" for line in fit_escaped(text, REASON_SHOWN).splitlines())


def owner_update(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The owner's news of a stage (`approval_outcome`): it passed, was rejected or skipped, as it happened."""
    news = StageOutcome.from_payload(dict(payload))
    ref = format_ref(RefKind.CAMPAIGN, news.campaign_id)
    title = f"*{fit_escaped(news.stage, 100)}* · {ref} {fit_escaped(news.campaign_name, 120)}"
    who = user_mention(news.decided_by) if news.decided_by else "someone"
    if news.outcome is StageState.REJECTED:
        again = approval_ref(news.approval_id) if news.approval_id else f'{ref} "{fit_escaped(news.stage, 100)}"'
        blocks = [section(f":x: {title} was rejected by {who}:\n{quote(news.reason)}"),
                  context(f"Change what they ask for, then `/approval resubmit {again}` sends it to the approvers again.")]
        return message(f"Rejected: {fit_escaped(news.stage, 100)} · {ref}", blocks)
    if news.campaign_approved:
        blocks = [section(f":tada: *{ref} {fit_escaped(news.campaign_name, 120)} is approved*: "
                          f"every sign-off is in, the last one {fit_escaped(news.stage, 100)}.")]
        return message(f"{ref} is approved", blocks)
    if news.outcome is StageState.SKIPPED:
        why = f": {fit_escaped(news.reason, 300)}" if news.reason else ""
        blocks = [section(f":heavy_minus_sign: {title} was skipped by {who}{why}.")]
    else:
        blocks = [section(f":white_check_mark: {title} passed.")]
    if news.opened:
        blocks.append(context("Next: " + ", ".join(f"*{fit_escaped(name, 100)}*" for name in news.opened)
                              + " is open now."))
    verb = "Skipped" if news.outcome is StageState.SKIPPED else "Approved"
    return message(f"{verb}: {fit_escaped(news.stage, 100)} · {ref}", blocks)


def skip_reply(campaign_ref: str, stage: str, opened: Sequence[str], campaign_approved: bool) -> dict[str, Any]:
    """The reply to `/approval skip`."""
    lines = [f":heavy_minus_sign: *{fit_escaped(stage, 100)}* is skipped: {campaign_ref} no longer waits for it."]
    if opened:
        lines.append("Open now: " + ", ".join(f"*{fit_escaped(name, 100)}*" for name in opened) + ".")
    if campaign_approved:
        lines.append(f":tada: Every sign-off of {campaign_ref} is in: it is approved.")
    return message(f"Skipped: {fit_escaped(stage, 100)} · {campaign_ref}", [section("\n".join(lines))])


WAYS = {NotificationChannel.SLACK: "in Slack", NotificationChannel.EMAIL: "by email",
        NotificationChannel.IN_APP: "on their Home tab"}


def request_reply(view: StageView, told: Sequence[Told] = (), *, resubmitted: bool = False) -> dict[str, Any]:
    """The reply to `/approval request` or `/approval resubmit`. `told`: how each approver hears of it (the
    requests written for this round); one who cannot be reached makes the owner hear of it later."""
    people = ", ".join(user_mention(vote.approver.slack_user_id) for vote in view.votes)
    verb = "Sent back to" if resubmitted else "Asked"
    if view.state is StageState.WAITING:
        text = (f":double_vertical_bar: {stage_title(view)} opens when "
                f"{_opens_when(view.waits_for, view.waits_for_task)}; then {people} will get the request.")
    else:
        text = f":outbox_tray: {verb} {people} to sign off {stage_title(view)}."
    facts = [rule_phrase(view.rule).capitalize(), due_phrase(view)] + ([f"round {view.round}"] if view.round > 1 else [])
    blocks = [section(text), context(" · ".join(facts))]
    if told:
        blocks.append(section(_told_text(told)))
    return message(f"{verb} approvers: {fit_escaped(view.stage, 100)} · {view.campaign_ref}", blocks)


def _told_text(told: Sequence[Told]) -> str:
    lines = []
    for person in told:
        way = WAYS.get(person.channel, "in Slack")
        later = f" when their working hours begin ({when(person.held_until)})" if person.held_until else ""
        lines.append(f"{user_mention(person.slack_user_id)} {way}{later}")
    return ("They will be told: " + "; ".join(lines) + ". If a request cannot be delivered, "
            "the owner hears of it; anyone can decide with `/approval mine`.")


def mine_message(items: Sequence[tuple[int, StageView]], viewer: str) -> dict[str, Any]:
    """`/approval mine`: what waits for the viewer (a Slack user id), with the buttons."""
    if not items:
        return message("Nothing waits for your approval.", [section(":sparkles: Nothing waits for your approval right now.")])
    shown = items[:MINE_SHOWN]
    blocks = [header(f"Waiting for you: {len(items)} approval{'s' if len(items) != 1 else ''}")]
    for approval_id, view in shown:
        vote = view.vote(approval_id)
        extra = ""
        if vote and vote.approver.slack_user_id != viewer:
            extra = f" · for {user_mention(vote.approver.slack_user_id)}"
        blocks.append(section(f"{stage_title(view)}\n{rule_phrase(view.rule).capitalize()} · {due_phrase(view)} · "
                              f"{view.approved} of {len(view.votes)} approved{extra} · {approval_ref(approval_id)}"))
        blocks.append(decision_buttons(approval_id))
    return message(f"{len(items)} approvals wait for you", blocks)


def reject_modal(approval_id: int, metadata: str) -> dict[str, Any]:
    """Ask why; `metadata` is the form's private_metadata, made by `blocks.codec.encode_approval_form`."""
    return {
        "type": "modal", "callback_id": REJECT_CALLBACK, "private_metadata": metadata,
        "title": plain(f"Reject {approval_ref(approval_id)}", MODAL_TITLE_LIMIT),
        "submit": plain("Reject", MODAL_TITLE_LIMIT), "close": plain("Cancel", MODAL_TITLE_LIMIT),
        "blocks": [
            section("The campaign owner gets your reason, and everyone who has the request sees it."),
            {"type": "input", "block_id": REASON_BLOCK, "label": plain("Why do you reject it?"),
             "element": {"type": "plain_text_input", "action_id": REASON_ACTION, "multiline": True,
                         "max_length": MAX_REASON, "placeholder": plain("What has to change before you approve?")}},
        ],
    }


def delegate_modal(approval_id: int, metadata: str) -> dict[str, Any]:
    """Ask who decides instead; `metadata` as for `reject_modal`."""
    return {
        "type": "modal", "callback_id": DELEGATE_CALLBACK, "private_metadata": metadata,
        "title": plain(f"Delegate {approval_ref(approval_id)}", MODAL_TITLE_LIMIT),
        "submit": plain("Delegate", MODAL_TITLE_LIMIT), "close": plain("Cancel", MODAL_TITLE_LIMIT),
        "blocks": [
            {"type": "input", "block_id": DELEGATE_BLOCK, "label": plain("Who decides instead of you?"),
             "element": {"type": "users_select", "action_id": DELEGATE_ACTION, "placeholder": plain("Pick a person")}},
            context("They get the request with the buttons. You can still decide it yourself."),
        ],
    }


def decided_modal(text: str) -> dict[str, Any]:
    """What a reject or delegate form becomes when its answer is saved late (or is being saved)."""
    return {"type": "modal", "title": plain("Approval", MODAL_TITLE_LIMIT), "close": plain("Close", MODAL_TITLE_LIMIT),
            "blocks": [section(f":white_check_mark: {escape(text)}"),
                       context("Everyone who has the request sees it in their copy.")]}


APPROVAL_USAGE = [
    ('`/approval request CM-12 "Legal review" @dana @lee [rule=all|any] [by 2027-03-01]`',
     "ask for a sign-off stage (owner or admin); stages run in order"),
    ('`/approval request CM-12 "Messaging sign-off"`',
     "a template stage opens by itself when its task is done; this sends it to the people with its role now"),
    ('`/approval resubmit AP-7` · `/approval resubmit CM-12 "Legal review"`', "send a rejected stage back to its approvers"),
    ('`/approval skip CM-12 "Brand review" [why]`', "take a template stage out of the sign-off (owner or admin)"),
    ("`/approval mine`", "what waits for your decision, with the buttons"),
    ("`/approval help`", "this message"),
]


def approval_help(note: str | None = None) -> dict[str, Any]:
    """`note` is already escaped."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in APPROVAL_USAGE)
    blocks = [section(f":warning: {note}")] if note else []
    blocks += [header("Campaign Manager: /approval"), section(lines),
               context("`all`: every approver must approve. `any`: the first approval passes the stage. "
                       "Any rejection rejects it. Approvers decide with the buttons in their direct messages.")]
    return message(note or "How to use /approval", blocks)

