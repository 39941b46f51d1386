"""Block Kit to plain text, for the terminal: what a person would read in Slack, minus the styling."""

from __future__ import annotations

import html
import re
from typing import Any

_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_MENTION = re.compile(r"<([@#!])([^<>|]+)>")
_BOLD = re.compile(r"\*([^*\n]+)\*")


def mrkdwn_to_text(text: str) -> str:
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = _MENTION.sub(lambda m: ("@" if m.group(1) == "!" else m.group(1)) + m.group(2), text)
    text = _BOLD.sub(r"\1", text)
    return html.unescape(text)


def _element_text(element: dict[str, Any]) -> str:
    text = element.get("text")
    if isinstance(text, dict):
        element = text
    if element.get("type") == "plain_text":  # shown as typed: Slack parses no markup in it
        return str(element.get("text", ""))
    return mrkdwn_to_text(str(element.get("text") or ""))


def render_block(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = _element_text(block)
        return [title, "=" * min(len(title), 72)]
    if kind == "section":
        lines = [_element_text(block)] if block.get("text") else []
        for field in block.get("fields", []):
            label, _, value = _element_text(field).partition("\n")
            lines.append(f"  {label.strip('*')}: {value}" if value else f"  {label}")
        return lines
    if kind == "context":
        return ["  " + " ".join(_element_text(element) for element in block.get("elements", []))]
    if kind == "divider":
        return ["-" * 40]
    if kind == "actions":
        return ["  " + "  ".join(f"[{_element_text(element)}]" for element in block.get("elements", []))]
    return []


def render_message(payload: dict[str, Any]) -> str:
    blocks = payload.get("blocks") or []
    if not blocks:
        return mrkdwn_to_text(str(payload.get("text", "")))
    return "\n".join(line for block in blocks for line in render_block(block))
