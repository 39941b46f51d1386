"""Block Kit to plain text, for the terminal: what a person would read in Slack, minus the styling.

Slack's client does some of the reading itself: it shows `<@U1>` as a name, `<!date^...>` in the reader's
own zone, and a modal as a form. The console has no client, so this module does that part, for one reader.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# <@U1|name>, <#C1|name>, <!here>, <!date^...|fallback>, <https://x|label>, <https://x>
_MARKUP = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"\*([^*\n]+)\*")
_DATE_TOKEN = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Reader:
    """Who reads the text: their time zone, and the channel names the console knows by id."""

    timezone: str = "UTC"
    channel_names: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None  # "today" for {date_pretty}; None is the moment of rendering

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


def mrkdwn_to_text(text: str, reader: Reader | None = None) -> str:
    reader = reader or Reader()
    text = _MARKUP.sub(lambda match: _readable(match, reader), text)
    text = _BOLD.sub(r"\1", text)
    return html.unescape(text)


def _readable(match: re.Match[str], reader: Reader) -> str:
    sigil, target, label = match.group(1), match.group(2), match.group(3)
    if sigil == "!":
        if target.startswith("date^"):
            return slack_date(target, label or "", reader)
        return label or "@" + target.split("^")[0]  # <!here>, <!subteam^S1|@team>
    if sigil == "#":
        return "#" + (label or reader.channel_names.get(target, target))
    if sigil == "@":
        return "@" + (label or target)
    return f"{label} ({target})" if label else target


def slack_date(spec: str, fallback: str, reader: Reader) -> str:
    """`date^<unix>^<pattern>[^<link>]` as Slack shows it to this reader; its fallback when unreadable."""
    parts = spec.split("^")
    if len(parts) < 3 or not parts[1].lstrip("-").isdigit():
        return fallback
    moment = datetime.fromtimestamp(int(parts[1]), reader.zone)
    today = (reader.now or datetime.now(reader.zone)).astimezone(reader.zone).date()
    words: list[str] = []

    def word(match: re.Match[str]) -> str:
        said = _date_word(match.group(1), moment, today)
        words.append(said or "")
        return said or ""

    shown = _DATE_TOKEN.sub(word, parts[2])
    return fallback if not all(words) else shown  # one token Slack does not know: Slack shows the fallback


def _date_word(token: str, moment: datetime, today: Any) -> str | None:
    day = moment.date()
    days = (day - today).days
    pretty = {0: "today", 1: "tomorrow", -1: "yesterday"}.get(days)
    ordinal = f"{moment:%B} {_ordinal(day.day)}, {day.year}"
    forms = {
        "date_num": f"{day:%Y-%m-%d}",
        "date": ordinal,
        "date_short": f"{moment:%b} {day.day}, {day.year}",
        "date_long": f"{moment:%A}, {ordinal}",
        "time": f"{moment:%H:%M}",
        "time_secs": f"{moment:%H:%M:%S}",
    }
    if token.endswith("_pretty"):
        base = forms.get(token.removesuffix("_pretty"))
        return pretty or base if base else None
    return forms.get(token)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _element_text(element: dict[str, Any], reader: Reader | None = None) -> str:
    text = element.get("text")
    if isinstance(text, dict):
        element = text
    if element.get("type") == "plain_text":  # shown as typed: Slack parses no markup in it
        return str(element.get("text", ""))
    return mrkdwn_to_text(str(element.get("text") or ""), reader)


def render_block(block: dict[str, Any], reader: Reader | None = None) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = _element_text(block, reader)
        return [title, "=" * min(len(title), 72)]
    if kind == "section":
        lines = [_element_text(block, reader)] if block.get("text") else []
        for item in block.get("fields", []):
            label, _, value = _element_text(item, reader).partition("\n")
            lines.append(f"  {label.strip('*')}: {value}" if value else f"  {label}")
        return lines
    if kind == "context":
        return ["  " + " ".join(_element_text(element, reader) for element in block.get("elements", []))]
    if kind == "divider":
        return ["-" * 40]
    if kind == "actions":
        return ["  " + "  ".join(f"[{_element_text(element, reader)}]" for element in block.get("elements", []))]
    if kind == "input":
        return _input_lines(block)
    return []


# What a person fills in, by input element: what the terminal says in place of the widget.
_INPUT_KINDS = {
    "plain_text_input": "text", "number_input": "number", "email_text_input": "email", "url_text_input": "link",
    "datepicker": "date", "timepicker": "time", "datetimepicker": "date and time",
    "users_select": "person", "multi_users_select": "people",
    "conversations_select": "channel", "channels_select": "channel", "multi_conversations_select": "channels",
    "multi_channels_select": "channels", "static_select": "one of", "multi_static_select": "any of",
    "radio_buttons": "one of", "checkboxes": "any of",
}
OPTIONS_SHOWN = 6


def _input_lines(block: dict[str, Any]) -> list[str]:
    """`Owner (person: @U123)`: the label, the kind of answer, and what it holds already."""
    element = block.get("element") or {}
    kind = _INPUT_KINDS.get(str(element.get("type")), str(element.get("type", "input")))
    options = [_element_text(option) for option in element.get("options", [])]
    if options:
        more = f", … ({len(options)} in all)" if len(options) > OPTIONS_SHOWN else ""
        kind = f"{kind}: {', '.join(options[:OPTIONS_SHOWN])}{more}"
    elif element.get("initial_user"):
        kind = f"{kind}: @{element['initial_user']}"
    elif element.get("initial_value"):
        kind = f"{kind}: {element['initial_value']}"
    if element.get("type") == "plain_text_input" and element.get("multiline"):
        kind += ", several lines"
    if block.get("optional"):
        kind += ", optional"
    lines = [f"  {_element_text(block.get('label') or {})} ({kind})"]
    if block.get("hint"):
        lines.append(f"      {_element_text(block['hint'])}")
    return lines


def render_view(view: dict[str, Any], reader: Reader | None = None) -> str:
    """A modal as the form it is: its title, its fields, its buttons (the console cannot fill it in)."""
    title = _element_text(view.get("title") or {})
    buttons = "  ".join(f"[{_element_text(view[key])}]" for key in ("submit", "close") if view.get(key))
    lines = [title, "=" * min(len(title), 72)]
    lines += [line for block in view.get("blocks") or [] for line in render_block(block, reader)]
    return "\n".join([*lines, *([buttons] if buttons else [])])


def render_message(payload: dict[str, Any], reader: Reader | None = None) -> str:
    if isinstance(payload.get("view"), dict):  # views.open / views.update / views.publish
        return render_view(payload["view"], reader)
    blocks = payload.get("blocks") or []
    if not blocks:
        return mrkdwn_to_text(str(payload.get("text", "")), reader)
    return "\n".join(line for block in blocks for line in render_block(block, reader))
