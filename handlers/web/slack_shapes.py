"""The shape of what Slack posts to us: every part that Bolt or a listener reads into is what Slack sends.

A signed request is Slack's, or comes from someone holding the signing secret. Either way a payload whose
`view` is a string or whose `actions` is empty must not reach Bolt, which would raise deep inside (a 500,
or an error id in a listener). This checks the containers' types only; the values in them (ids, refs,
typed text) are read with bounds by the listeners and services, which answer a bad one politely.
Unknown fields are allowed: Slack adds fields all the time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Named(_Part):
    id: StrictStr | None = None


class _Action(_Part):
    action_id: StrictStr
    value: StrictStr | None = None


class _Input(_Part):
    """One input's state in a submitted view: the fields our forms read."""

    value: StrictStr | None = None
    selected_user: StrictStr | None = None
    selected_date: StrictStr | None = None
    selected_option: dict[str, Any] | None = None
    selected_options: list[dict[str, Any]] | None = None


class _State(_Part):
    values: dict[str, dict[str, _Input]] = Field(default_factory=dict)


class _View(_Part):
    type: StrictStr  # Bolt reads `view["type"]` on every submission
    id: StrictStr | None = None
    callback_id: StrictStr | None = None
    private_metadata: StrictStr | None = None
    hash: StrictStr | None = None
    state: _State | None = None


class _Message(_Part):
    ts: StrictStr | None = None
    text: StrictStr | None = None


class _Interaction(_Part):
    """block_actions, view_submission, view_closed, shortcut, message_action, block_suggestion."""

    type: StrictStr
    user: _Named | StrictStr | None = None
    team: _Named | None = None
    channel: _Named | None = None
    enterprise: _Named | StrictStr | None = None
    container: dict[str, Any] | None = None
    message: _Message | None = None
    view: _View | None = None
    trigger_id: StrictStr | None = None
    response_url: StrictStr | None = None
    callback_id: StrictStr | None = None


class _BlockActions(_Interaction):
    actions: list[_Action] = Field(min_length=1)


class _SubmittedView(_View):
    callback_id: StrictStr


class _ViewSubmission(_Interaction):
    view: _SubmittedView


class _SlashCommand(_Part):
    command: StrictStr
    text: StrictStr = ""
    user_id: StrictStr = ""
    channel_id: StrictStr = ""
    trigger_id: StrictStr = ""
    response_url: StrictStr = ""


class _Event(_Part):
    type: StrictStr


class _EventCallback(_Part):
    event_id: StrictStr
    event: _Event
    team_id: StrictStr | None = None
    authorizations: list[dict[str, Any]] | None = None


_BY_TYPE: dict[str, type[_Part]] = {
    "block_actions": _BlockActions,
    "view_submission": _ViewSubmission,
    "view_closed": _ViewSubmission,
    "event_callback": _EventCallback,
}


def is_slack_shaped(body: dict[str, Any]) -> bool:
    """True when the parsed body has the shape of a Slack command, interaction or event."""
    kind = body.get("type")
    if "command" in body:
        model: type[_Part] = _SlashCommand
    elif kind is None:
        return True  # Slack's ssl_check and similar: Bolt answers those itself
    elif not isinstance(kind, str):
        return False
    else:
        model = _BY_TYPE.get(kind, _Interaction)
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True
