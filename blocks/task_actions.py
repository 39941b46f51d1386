"""Modals behind the task buttons: why is it blocked, and a notice for a click that could not be done."""

from __future__ import annotations

from typing import Any

from blocks.campaigns import task_title
from blocks.codec import encode_id
from blocks.ids import REASON_ACTION, REASON_BLOCK
from blocks.modals import done_view, working_view
from blocks.text import MODAL_TITLE_LIMIT, context, fit_escaped, plain, section
from models import Task
from services.campaigns import campaign_ref
from services.refs import RefKind, format_ref
from services.tasks import MAX_REASON

BLOCK_MODAL = "task_block_modal"


def block_reason_modal(task: Task) -> dict[str, Any]:
    """Ask what the task waits for; the task id travels in private_metadata."""
    return {
        "type": "modal",
        "callback_id": BLOCK_MODAL,
        "private_metadata": encode_id(task.id),
        "title": plain(f"Block {format_ref(RefKind.TASK, task.id)}", MODAL_TITLE_LIMIT),
        "submit": plain("Block", MODAL_TITLE_LIMIT),
        "close": plain("Cancel", MODAL_TITLE_LIMIT),
        "blocks": [
            section(f"*{task_title(task, 200)}*\n"
                    f"{campaign_ref(task.campaign)} {fit_escaped(task.campaign.name, 150)}"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain("What is it waiting for?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": MAX_REASON,
                    "placeholder": plain("Waiting for legal review of the landing page copy"),
                },
            },
            context("The campaign is re-planned at once; its owner hears about it if the launch moves."),
        ],
    }


def blocking_view(task_id: int | None) -> dict[str, Any]:
    """The reason form while the block takes longer than the ack may wait; `blocked_view` replaces it."""
    ref = format_ref(RefKind.TASK, task_id) if task_id is not None else "the task"
    return working_view("Block a task", f"Blocking {ref}…")


def blocked_view(task: Task) -> dict[str, Any]:
    """The reason form once the task is blocked (only when that took longer than the ack may wait)."""
    ref = format_ref(RefKind.TASK, task.id)
    return done_view(f"{ref} blocked", [
        section(f":no_entry: {ref} is blocked: *{fit_escaped(task.title, 200)}*\n"
                f"_Waiting for:_ {fit_escaped(task.blocked_reason or '', 500)}"),
        context("The campaign was re-planned; its owner hears about it if the launch moved."),
    ])

