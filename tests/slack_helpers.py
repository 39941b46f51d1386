"""Helpers for the end-to-end command tests: send a slash command, read its reply, fuzz its text."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack

NEXT_YEAR = (date.today() + timedelta(days=200)).isoformat()


async def send_command(
    app: RunningApp, fake: FakeSlack, command: str, text: str, user_id: str = "U0ALICE", **kw: Any
) -> Call:
    """Send `<command> <text>` as `user_id` and return the reply that arrives at its response_url."""
    url = fake.response_url()
    url_id = url.rsplit("/", 1)[1]
    status, _ = await app.slack.command(command, text, user_id=user_id, response_url=url, **kw)
    assert status == 200
    return await fake.wait_for("response_url", lambda call: call.url_id == url_id)


def reply_text(call: Call) -> str:
    """Everything a reply shows: its blocks (as their repr) and its fallback text."""
    return repr(call.args.get("blocks")) + call.args.get("text", "")


async def count(app: RunningApp, model: type) -> int:
    async with app.sessions() as db:
        return await db.scalar(select(func.count()).select_from(model)) or 0


FUZZ_PIECES = ('"', "\u201c", "\u201d", "'", "&amp;", "&lt;!channel&gt;", "&lt;@U0BOB&gt;", "<", ">", "\\", "\n",
               "\t", "\u00a0", "\u200b", "\x00", "\x1f", "🚀", "新", "new", "list", "show", "CM-1", "T-1", "help",
               "product_launch", "promo", NEXT_YEAR, "2027-02-30", "x" * 300, " ", " ", " ")  # fmt: skip


def fuzzed_texts(count: int, seed: int = 20261128, extra: Sequence[str] = ()) -> list[str]:
    """Awkward input: quotes of every kind, entities, mentions, control and wide characters, long runs.

    `extra` adds pieces (a command's own words); without it the texts are the same for a given seed.
    """
    pieces = [*FUZZ_PIECES, *extra]
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def owner_today(timezone: str = "Europe/Berlin") -> date:
    """Today in the campaign owner's calendar (Alice, the default sender, is in Berlin)."""
    return datetime.now(ZoneInfo(timezone)).date()


def working_days_after(start: date, days: int) -> date:
    """The `days`-th Monday-to-Friday day after `start` (no team holidays are configured in tests)."""
    day = start
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day
