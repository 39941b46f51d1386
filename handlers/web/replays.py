"""Refuse a signed Slack request seen before: a signature proves who sent a request, not that it is new.

Slack signs `v0:{timestamp}:{body}` and requests more than five minutes off our clock are refused, so a
captured request can be replayed only inside that window. Remembering every accepted signature for as
long as it could still pass closes the window: in Redis, shared by every instance, or in this process's
memory (`handlers.first_seen`).

Slack's event retries are re-signed with a new timestamp (the last one comes minutes later, which an old
timestamp would not survive), so they are not replays here: they are recognised by event_id in
handlers/slack/dedupe.py. Going beyond Slack's scheme this way refuses nothing Slack really sends.
"""

from __future__ import annotations

from typing import Any

from handlers.first_seen import FirstSeen, first_seen

# A timestamp up to 5 minutes ahead passes too, so a signature can stay valid for up to 10 minutes after
# it is first seen; remember it that long, plus a minute for clocks that disagree between instances.
REMEMBER_SECONDS = 11 * 60


class ReplayCache:
    """Signatures already accepted, by (timestamp, signature)."""

    def __init__(self, window: FirstSeen):
        self.window = window

    async def first_time(self, *, timestamp: str, signature: str) -> bool:
        """True the first time a (timestamp, signature) is offered, False for every repeat."""
        return await self.window.first_time(f"{timestamp}:{signature}")


def replay_cache(*, redis: Any | None, namespace: str) -> ReplayCache:
    return ReplayCache(first_seen(redis=redis, namespace=namespace, kind="slack-replay", seconds=REMEMBER_SECONDS))
