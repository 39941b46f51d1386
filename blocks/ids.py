"""Action and block ids that a block builder writes and a listener registers: one spelling each.

A button and the listener for it meet only through these strings, so each is written once and both
sides import it. Slack's length limits live beside the other limits, in `blocks/text.py`.
"""

from __future__ import annotations

# Task buttons: on the Home tab and under reminders (Start only on the Home, Snooze only on reminders).
TASK_START, TASK_DONE, TASK_BLOCK = "task_start", "task_done", "task_block"
TASK_SNOOZE_HOUR, TASK_SNOOZE_TOMORROW = "task_snooze_hour", "task_snooze_tomorrow"
# "Done anyway": finish a task that hands over an asset without one (asked first: `blocks.assets`).
TASK_DONE_ANYWAY = "task_done_anyway"

# Approval buttons: on the request, in `/approval mine` and on the Home tab.
APPROVAL_APPROVE, APPROVAL_REJECT, APPROVAL_DELEGATE = "approval_approve", "approval_reject", "approval_delegate"

# The "why" input of the block-a-task form and the reject-an-approval form (its block and action id).
REASON_BLOCK, REASON_ACTION = "reason", "reason"
