"""The forms behind `/campaign new`, `/task new` and the "Create task from message" shortcut.

Block ids are the services' field names (`services.fields.InvalidField.field`), so an error a service
raises lands under the field it is about. Every input's action id is `value`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.codec import encode_id
from blocks.tasks import task_created
from blocks.text import MODAL_TITLE_LIMIT, context, plain, section
from models import Campaign, Priority
from services.campaigns import MAX_NAME_LENGTH, campaign_ref
from services.planning.templates import Template
from services.refs import RefKind, format_ref
from services.tasks import DEFAULT_ESTIMATE, MAX_DESCRIPTION, MAX_TITLE, CreatedTask

CAMPAIGN_MODAL = "campaign_new_modal"
TASK_MODAL = "task_new_modal"
VALUE = "value"  # the action id of every input
OPTION_TEXT_LIMIT = 75
OPTIONS_LIMIT = 100
PLACEHOLDER_LIMIT = 150
LABEL_LIMIT = 2000
HINT_LIMIT = 2000

# Campaign form fields (block ids).
NAME, TEMPLATE, LAUNCH_DATE, OWNER, CHANNEL = "name", "template", "launch_date", "owner", "channel"
# Task form fields (block ids).
CAMPAIGN, TITLE, DESCRIPTION, ESTIMATE, DUE, ASSIGNEE, PRIORITY, AFTER, BEFORE = (
    "campaign", "title", "description", "estimate", "due", "assignee", "priority", "after", "before")
PRIORITY_LABELS = {Priority.LOW: "Low", Priority.NORMAL: "Normal", Priority.HIGH: "High", Priority.URGENT: "Urgent"}


def option(text: str, value: str, description: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"text": plain(text, OPTION_TEXT_LIMIT), "value": value}
    if description:
        made["description"] = plain(description, OPTION_TEXT_LIMIT)
    return made


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False,
           hint: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label, LABEL_LIMIT),
                             "element": {**element, "action_id": VALUE}, "optional": optional}
    if hint:
        block["hint"] = plain(hint, HINT_LIMIT)
    return block


def _text_input(placeholder: str, *, max_length: int, initial: str | None = None,
                multiline: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "max_length": max_length, "multiline": multiline,
                               "placeholder": plain(placeholder, PLACEHOLDER_LIMIT)}
    if initial:
        element["initial_value"] = initial[:max_length]
    return element


def _modal(callback_id: str, title: str, submit: str, blocks: list[dict[str, Any]],
           private_metadata: str = "") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, MODAL_TITLE_LIMIT),
        "submit": plain(submit, MODAL_TITLE_LIMIT),
        "close": plain("Cancel", MODAL_TITLE_LIMIT),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


# ---------------------------------------------------------------- campaigns


def campaign_modal(templates: Sequence[Template], *, requester: str) -> dict[str, Any]:
    """`/campaign new` without arguments. `requester` (a Slack user id) is the owner unless changed."""
    choices = [option(t.title, t.name, t.description) for t in sorted(templates, key=lambda t: t.title)]
    blocks = [
        _input(NAME, "Name", _text_input("Spring launch", max_length=MAX_NAME_LENGTH)),
        _input(TEMPLATE, "Template", {"type": "static_select", "placeholder": plain("Pick a template"),
                                      "options": choices[:OPTIONS_LIMIT]},
               hint="The template's tasks are planned back from the launch date."),
        _input(LAUNCH_DATE, "Launch date", {"type": "datepicker", "placeholder": plain("Pick the launch day")}),
        _input(OWNER, "Owner", {"type": "users_select", "placeholder": plain("Who runs it"), "initial_user": requester},
               hint="The owner plans, staffs, launches and signs off; admins can too."),
        _input(CHANNEL, "Channel", {
            "type": "conversations_select", "placeholder": plain("Where news of it goes"),
            "default_to_current_conversation": True,
            "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        }, optional=True, hint="Invite me there (/invite @Campaign Manager) so I can post."),
    ]
    return _modal(CAMPAIGN_MODAL, "New campaign", "Create", blocks)


def done_view(title: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a form turns into once it did its job: the result, and a way out."""
    return {"type": "modal", "title": plain(title, MODAL_TITLE_LIMIT), "close": plain("Done", MODAL_TITLE_LIMIT),
            "blocks": blocks[:100]}


def working_view(title: str, text: str) -> dict[str, Any]:
    """What a form shows when its work takes longer than the ack may wait; the result replaces it."""
    blocks = [section(f":hourglass_flowing_sand: {text}"), context("This changes to the result in a moment.")]
    return {"type": "modal", "title": plain(title, MODAL_TITLE_LIMIT), "close": plain("Close", MODAL_TITLE_LIMIT),
            "blocks": blocks}


def notice_view(text: str, *, title: str = "Campaign Manager") -> dict[str, Any]:
    """The one notice modal: what could not be done, and why. `text` is escaped.

    Shown where there is nothing to reply under: a click on the Home tab (views.open with its trigger_id),
    a form that cannot be shown, a form whose outcome came too late for its ack (views.update).
    """
    return {"type": "modal", "title": plain(title, MODAL_TITLE_LIMIT),
            "close": plain("OK", MODAL_TITLE_LIMIT), "blocks": [section(f":warning: {text}")]}


# ---------------------------------------------------------------- tasks

ADDING_TASK = working_view("New task", "Adding the task…")


def task_added_view(created: CreatedTask, *, viewer_tz: str) -> dict[str, Any]:
    """The task form once its task is in; a form sent again says it added nothing new."""
    blocks = task_created(created, viewer_tz=viewer_tz)["blocks"]
    if created.repeated:
        ref = format_ref(RefKind.TASK, created.task.id)
        repeat = f":repeat: This form was sent before: {ref} was already added, so nothing new was."
        blocks = [context(repeat), *blocks]
    return done_view("Task added", blocks)


def task_modal(
    campaigns: Sequence[Campaign], *, selected: int | None = None, title: str = "", description: str = "",
    from_message: bool = False,
) -> dict[str, Any]:
    """`/task new` without arguments, or the message shortcut (title and description filled in)."""
    choices = [option(f"{campaign_ref(c)} {c.name}", encode_id(c.id)) for c in campaigns[:OPTIONS_LIMIT]]
    campaign_select: dict[str, Any] = {"type": "static_select", "placeholder": plain("Pick a campaign"),
                                       "options": choices}
    chosen = next((choice for choice, c in zip(choices, campaigns, strict=False) if c.id == selected), None)
    if chosen is not None:
        campaign_select["initial_option"] = chosen
    priorities = [option(label, priority.value) for priority, label in PRIORITY_LABELS.items()]
    blocks = [
        _input(CAMPAIGN, "Campaign", campaign_select),
        _input(TITLE, "Title", _text_input("Draft the launch email", max_length=MAX_TITLE, initial=title)),
        _input(DESCRIPTION, "Description", _text_input("What done looks like, links, notes", multiline=True,
                                                       max_length=MAX_DESCRIPTION, initial=description),
               optional=True),
        _input(ESTIMATE, "Estimate", _text_input(f"{DEFAULT_ESTIMATE} if empty; 4h, 2d, 1.5d", max_length=20),
               optional=True, hint="Working time: a day is 8 hours."),
        _input(DUE, "Due date", {"type": "datepicker", "placeholder": plain("Leave it to the plan")}, optional=True,
               hint="Empty: the plan picks the latest day that still meets the launch."),
        _input(ASSIGNEE, "Assignee", {"type": "users_select", "placeholder": plain("Nobody yet")}, optional=True),
        _input(PRIORITY, "Priority", {"type": "static_select", "options": priorities,
                                      "initial_option": priorities[1]}),
        _input(AFTER, "Waits for", _text_input("T-4, T-7", max_length=200), optional=True,
               hint="Tasks of the same campaign that must finish first."),
        _input(BEFORE, "Must finish before", _text_input("T-9", max_length=200), optional=True,
               hint="Tasks of the same campaign that wait for this one."),
        context("The campaign is re-planned as soon as the task is added."),
    ]
    return _modal(TASK_MODAL, "Task from message" if from_message else "New task", "Add task", blocks)
