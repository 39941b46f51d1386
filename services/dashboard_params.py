"""What a dashboard URL may ask for, checked: time zone, days, months, filters, ranges.

Each parser takes the raw query value (None when absent) and returns a clean value or raises
InvalidInput with a sentence for the reader; the handlers answer that with a 400 page or JSON error.
A value that is well formed but names nothing (an owner nobody is, a template no campaign uses) is not
an error: it simply matches nothing. Dates are bounded so a URL cannot ask for year 9999 or a range
that reads the whole history in one request.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from models import CampaignStatus
from services.campaigns import OPEN_STATUSES
from services.dashboard import Health
from services.errors import InvalidInput
from services.planning.templates import normalize_name

DEFAULT_ZONE = "UTC"
FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_RANGE_DAYS = 2 * 366  # metrics over at most two years per request
DEFAULT_RANGE_DAYS = 90  # metrics: this many days back and ahead of today
MAX_OWNER_LENGTH = 200  # a member's name column
MAX_PAGE = 10_000
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)
_TEMPLATE = re.compile(r"[a-z0-9_]{1,64}", re.ASCII)
_PAGE = re.compile(r"[0-9]{1,6}", re.ASCII)


@cache
def known_zones() -> frozenset[str]:
    """The IANA names this system knows (read once: listing them walks the zone files)."""
    return frozenset(zoneinfo.available_timezones()) | {DEFAULT_ZONE}


def shown(text: str, limit: int = 40) -> str:
    """A typed value, short enough to repeat in an error."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_zone(text: str | None) -> ZoneInfo:
    """An IANA time zone like Europe/Berlin; UTC when none is given."""
    if text is None or text == "":
        return ZoneInfo(DEFAULT_ZONE)
    if text not in known_zones():
        raise InvalidInput(f'"{shown(text)}" is not a time zone; use a name like Europe/Berlin or UTC.')
    return ZoneInfo(text)


def parse_day(text: str | None, *, field: str) -> date | None:
    """A day written YYYY-MM-DD, or None when absent."""
    if text is None or text == "":
        return None
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f'{field} must be a day written YYYY-MM-DD, not "{shown(text)}".') from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidInput(f"{field} must be between {FIRST_YEAR} and {LAST_YEAR}.")
    return day


def parse_month(text: str | None) -> date | None:
    """A month written YYYY-MM, as its first day; None when absent."""
    if text is None or text == "":
        return None
    match = _MONTH.fullmatch(text)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise InvalidInput(f'month must be written YYYY-MM, not "{shown(text)}".')
    year = int(match.group(1))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInput(f"month must be between {FIRST_YEAR} and {LAST_YEAR}.")
    return date(year, int(match.group(2)), 1)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class StatusFilter:
    word: str  # as the filter form shows it: open, all, or a status
    statuses: tuple[CampaignStatus, ...]


def parse_status(text: str | None) -> StatusFilter:
    """open (default), all, or one campaign status."""
    word = (text or "open").strip().lower()
    if word == "open":
        return StatusFilter("open", OPEN_STATUSES)
    if word == "all":
        return StatusFilter("all", tuple(CampaignStatus))
    try:
        return StatusFilter(word, (CampaignStatus(word),))
    except ValueError:
        names = ", ".join(status.value for status in CampaignStatus)
        raise InvalidInput(f'"{shown(word)}" is not a status; use open, all or one of {names}.') from None


def parse_owner(text: str | None) -> str | None:
    """A Slack user id or a person's name, as typed (matched later); None when absent."""
    if text is None or not text.strip():
        return None
    cleaned = " ".join(text.split()).removeprefix("@")
    if len(cleaned) > MAX_OWNER_LENGTH or any(unicodedata.category(char).startswith("C") for char in cleaned):
        raise InvalidInput("owner must be a Slack user id or a name.")
    return cleaned


def parse_template(text: str | None) -> str | None:
    """A template name (product_launch, "Product launch" and product-launch are the same); None when absent."""
    if text is None or not text.strip():
        return None
    name = normalize_name(text)
    if not _TEMPLATE.fullmatch(name):
        raise InvalidInput(f'"{shown(text)}" is not a template name; they look like product_launch.')
    return name


def parse_health(text: str | None) -> Health | None:
    if text is None or text == "":
        return None
    try:
        return Health(text.strip().lower().replace(" ", "-"))
    except ValueError:
        names = ", ".join(health.value for health in Health)
        raise InvalidInput(f'"{shown(text)}" is not a health; use one of {names}.') from None


def parse_page(text: str | None) -> int:
    if text is None or text == "":
        return 1
    if not _PAGE.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInput(f"page must be a number from 1 to {MAX_PAGE}.")
    return int(text)


def parse_range(start: str | None, end: str | None, *, today: date,
                names: tuple[str, str] = ("from", "to")) -> tuple[date, date]:
    """`from` and `to` (both days included; `names`: what the asker calls them); by default
    DEFAULT_RANGE_DAYS either side of today."""
    first = parse_day(start, field=names[0])
    last = parse_day(end, field=names[1])
    if first is None and last is None:
        first, last = today - timedelta(days=DEFAULT_RANGE_DAYS), today + timedelta(days=DEFAULT_RANGE_DAYS)
    elif first is None:
        assert last is not None
        first = max(date(FIRST_YEAR, 1, 1), last - timedelta(days=2 * DEFAULT_RANGE_DAYS))
    elif last is None:
        last = min(date(LAST_YEAR, 12, 31), first + timedelta(days=2 * DEFAULT_RANGE_DAYS))
    if first > last:
        raise InvalidInput(f"{names[0]} must be on or before {names[1]}.")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise InvalidInput(f"Ask for at most {MAX_RANGE_DAYS} days at a time.")
    return first, last
