"""Human references people type: CM-12 (campaign), T-7 (task), AP-3 (approval).

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


_NOUNS = {RefKind.CAMPAIGN: "campaign", RefKind.TASK: "task", RefKind.APPROVAL: "approval"}
_EXAMPLES = {RefKind.CAMPAIGN: "CM-12", RefKind.TASK: "T-42", RefKind.APPROVAL: "AP-7"}
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
_PATTERN = re.compile(r"^(?:(?P<prefix>[A-Za-z]{1,2})-?)?(?P<number>\d{1,12})$")


def format_ref(kind: RefKind, number: int) -> str:
    return f"{kind.value}-{number}"


def parse_ref(text: str, kind: RefKind) -> int:
    """Accept `CM-12`, `cm-12`, `cm12` or a bare `12`; refuse another kind's ref with a clear message."""
    cleaned = text.strip().strip("`*_")
    match = _PATTERN.match(cleaned)
    prefix = (match.group("prefix") or kind.value).upper() if match else None
    if match is None or prefix != kind.value or int(match.group("number")) == 0:
        shown = cleaned if len(cleaned) <= 40 else cleaned[:39] + "…"
        raise InvalidInput(f"`{shown}` is not a {_NOUNS[kind]} reference; they look like {_EXAMPLES[kind]}.")
    number = int(match.group("number"))
    if number > MAX_ID:
        raise NotFound(f"There is no {_NOUNS[kind]} {format_ref(kind, number)}.")
    return number
