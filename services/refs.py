"""Human references people type: CM-12 (campaign), T-7 (task), AP-3 (approval), AS-4 (asset).

The number is the row id; ids come from never-reused sequences, so a ref is never reused either.
"""

from __future__ import annotations

import re
from enum import StrEnum

from services.errors import InvalidInput, NotFound


class RefKind(StrEnum):
    CAMPAIGN = "CM"
    TASK = "T"
    APPROVAL = "AP"
    ASSET = "AS"


_NOUNS = {RefKind.CAMPAIGN: "campaign", RefKind.TASK: "task", RefKind.APPROVAL: "approval", RefKind.ASSET: "asset"}
_A_NOUN = {RefKind.CAMPAIGN: "a campaign", RefKind.TASK: "a task", RefKind.APPROVAL: "an approval",
           RefKind.ASSET: "an asset"}  # with its article
_EXAMPLES = {RefKind.CAMPAIGN: "CM-12", RefKind.TASK: "T-42", RefKind.APPROVAL: "AP-7", RefKind.ASSET: "AS-4"}
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
# ASCII digits only: `\d` and `int()` also take other scripts' digits, and `str.isdigit()` takes `²`.
_PATTERN = re.compile(r"^(?:(?P<prefix>[A-Za-z]{1,2})-?)?(?P<number>[0-9]{1,12})$", re.ASCII)
_ID = re.compile(r"[0-9]{1,12}", re.ASCII)


def parse_id(text: object) -> int | None:
    """A row id carried by one of our own buttons, fields or modals: 1 to MAX_ID in ASCII digits, else None.

    Slack sends back what we put there; anything else was forged or is stale, and the caller says so politely.
    """
    if not isinstance(text, str) or not _ID.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def format_ref(kind: RefKind, number: int) -> str:
    return f"{kind.value}-{number}"


def parse_ref(text: str, kind: RefKind) -> int:
    """Accept `CM-12`, `cm-12`, `cm12` or a bare `12`; refuse another kind's ref with a clear message."""
    cleaned = text.strip().strip("`*_")
    match = _PATTERN.match(cleaned)
    prefix = (match.group("prefix") or kind.value).upper() if match else None
    if match is None or prefix != kind.value or int(match.group("number")) == 0:
        shown = cleaned if len(cleaned) <= 40 else cleaned[:39] + "…"
        raise InvalidInput(f"`{shown}` is not {_A_NOUN[kind]} reference; they look like {_EXAMPLES[kind]}.")
    number = int(match.group("number"))
    if number > MAX_ID:
        raise NotFound(f"There is no {_NOUNS[kind]} {format_ref(kind, number)}.")
    return number
