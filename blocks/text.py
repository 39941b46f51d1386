"""Safe text for Block Kit: escape what users typed, and fit Slack's length limits.

Slack only acts on `<...>` sequences (mentions, links, `<!channel>`), so escaping `&`, `<` and `>` is
enough to make typed text inert. Every string that came from a person goes through `escape`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SECTION_TEXT_LIMIT = 3000
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
BUTTON_TEXT_LIMIT = 75
FALLBACK_TEXT_LIMIT = 3000
MODAL_TITLE_LIMIT = 24  # a modal's title, submit and close texts
ACTION_VALUE_LIMIT = 2000  # a button's or an option's value
PRIVATE_METADATA_LIMIT = 3000  # a view's private_metadata
ELLIPSIS = "…"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def fit_escaped(text: str, limit: int) -> str:
    """Escape then truncate without cutting an entity like `&amp;` in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = HEADER_LIMIT) -> dict[str, Any]:
    # plain_text is never parsed for mentions, but it has the same length limits.
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, HEADER_LIMIT)}


def section(text: str, *, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": mrkdwn(truncate(text, SECTION_TEXT_LIMIT))}
    if fields:
        block["fields"] = [mrkdwn(truncate(field, FIELD_LIMIT)) for field in fields[:10]]
    return block


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(truncate(text, CONTEXT_LIMIT)) for text in texts[:10]]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    """A button carrying `value` back to its listener; make the value with `blocks.codec`."""
    if len(value) > ACTION_VALUE_LIMIT:  # the codec's encoders never get here; Slack would refuse the message
        raise ValueError(f"a button value of {len(value)} characters")
    made: dict[str, Any] = {"type": "button", "text": plain(text, BUTTON_TEXT_LIMIT), "action_id": action_id,
                            "value": value}
    if style:
        made["style"] = style
    return made


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def user_mention(slack_user_id: str) -> str:
    """A mention we build ourselves from a stored id (ids are [A-Z0-9], never user prose)."""
    return f"<@{slack_user_id}>" if slack_user_id.isalnum() else escape(slack_user_id)


def channel_mention(channel_id: str) -> str:
    return f"<#{channel_id}>" if channel_id.isalnum() else escape(channel_id)


def day_label(moment: datetime, timezone: str) -> str:
    """`Tue 12 Jan` in the reader's own time zone (a due date is a day, wherever you are)."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %d %b}"


def message(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A message payload; `text` is the notification and screen-reader fallback, already escaped."""
    payload: dict[str, Any] = {"text": truncate(text, FALLBACK_TEXT_LIMIT)}
    if blocks:
        payload["blocks"] = blocks[:50]
    return payload
