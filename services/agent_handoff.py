"""The marketing agent hand-off: each launch is told to the agent at MARKETING_AGENT_URL as an MCP tool call,
`cm_campaign_launched`, and the campaign's owner is told whether it went through.

The call is an outbox row (`Kind.AGENT_HANDOFF`), written by `launched` in the launch's own transaction:
a rolled-back launch hands nothing off, and an agent that is down neither blocks nor undoes the launch;
the row is retried with the outbox's backoff until it goes through or fails for good. The call itself is
the delivery job's (`handlers.jobs.agent`); what a fault means is `services.delivery`'s.

Delivery is at least once (a crash between the agent's answer and its record repeats the call), so the
arguments carry `handoff_id`, the same on every attempt of one hand-off: the agent dedupes on it.

The owner's notice (`Kind.AGENT_HANDOFF_RESULT`) is written when the row is settled: `went_through` in
the transaction that records the call, `did_not_go_through` in the one that fails it. Its key is per
hand-off, so it is said once whatever happens to the row afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Urgency
from services import notifications
from services.kinds import Kind
from services.refs import RefKind, format_ref

TOOL = "cm_campaign_launched"
RECIPIENT = "agent"  # the row's recipient_channel: not a Slack channel, never posted to
ARGUMENTS = ("campaign_ref", "name", "launched_at", "channel", "owner", "handoff_id")
MAX_REASON = 300  # characters of a failure's reason kept in the owner's notice


async def launched(*, db: AsyncSession, campaign: Campaign, owner_slack_id: str, now: datetime) -> int | None:
    """Write the hand-off of `campaign`'s launch, in the caller's transaction; the new row's id."""
    handoff_id = str(uuid.uuid4())
    arguments = {
        "campaign_ref": format_ref(RefKind.CAMPAIGN, campaign.id), "name": campaign.name,
        "launched_at": now.astimezone(UTC).isoformat(timespec="seconds"), "channel": campaign.channel_id or None,
        "owner": owner_slack_id, "handoff_id": handoff_id,
    }
    return await notifications.notify(
        db=db, dedupe_key=f"agent_handoff:{campaign.id}:{handoff_id}", kind=Kind.AGENT_HANDOFF,
        payload={"handoff_id": handoff_id, "arguments": arguments}, recipient_channel=RECIPIENT,
        campaign_id=campaign.id, now=now)


def arguments_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's arguments a hand-off row carries; ValueError when the payload is not one `launched` wrote."""
    arguments = payload.get("arguments")
    if not isinstance(arguments, dict) or any(name not in arguments for name in ARGUMENTS):
        raise ValueError("not an agent hand-off payload")
    return {name: arguments[name] for name in ARGUMENTS}


@dataclass(frozen=True)
class HandoffResult:
    """The payload of the owner's notice: whether a launch reached the marketing agent, and if not, why."""

    campaign_id: int
    campaign_name: str
    handoff_id: str
    went_through: bool
    reason: str | None = None

    @property
    def ref(self) -> str:
        return format_ref(RefKind.CAMPAIGN, self.campaign_id)

    @property
    def summary(self) -> str:
        """One plain line: the in-app inbox shows it, and it is the Slack message's fallback text."""
        if self.went_through:
            return f"{self.ref} {self.campaign_name} was handed to the marketing agent."
        return f"{self.ref} {self.campaign_name} could not be handed to the marketing agent."

    def to_payload(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name, "handoff_id": self.handoff_id,
                "went_through": self.went_through, "reason": self.reason, "summary": self.summary}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> HandoffResult:
        """Read back what `to_payload` stored; raises (KeyError, ValueError) on anything else."""
        reason = payload.get("reason")
        return cls(campaign_id=int(payload["campaign_id"]), campaign_name=str(payload["campaign_name"]),
                   handoff_id=str(payload["handoff_id"]), went_through=bool(payload["went_through"]),
                   reason=None if reason is None else str(reason))


async def went_through(*, db: AsyncSession, campaign_id: int | None, payload: Mapping[str, Any],
                       now: datetime) -> int | None:
    """Tell the owner the hand-off in `payload` (a hand-off row's) reached the agent; the notice's id, or None
    when it was told before or there is nobody to tell."""
    return await _tell_owner(db, campaign_id, payload, reason=None, now=now)


async def did_not_go_through(*, db: AsyncSession, campaign_id: int | None, payload: Mapping[str, Any],
                             reason: str, now: datetime) -> int | None:
    """Tell the owner the hand-off failed for good, and why; the notice's id, or None (told before, nobody)."""
    return await _tell_owner(db, campaign_id, payload, reason=_one_line(reason) or "unknown", now=now)


async def _tell_owner(db: AsyncSession, campaign_id: int | None, payload: Mapping[str, Any], *, reason: str | None,
                      now: datetime) -> int | None:
    campaign = await db.get(Campaign, campaign_id) if campaign_id is not None else None
    if campaign is None:
        return None  # the campaign is gone: nobody to tell
    handoff_id = str(payload.get("handoff_id") or "")
    arguments = payload.get("arguments")
    # The name as it was handed off (the campaign may have been renamed since).
    name = arguments.get("name") if isinstance(arguments, dict) else None
    result = HandoffResult(campaign_id=campaign.id, campaign_name=str(name or campaign.name), handoff_id=handoff_id,
                           went_through=reason is None, reason=reason)
    return await notifications.notify(
        db=db, dedupe_key=f"agent_handoff_result:{campaign.id}:{handoff_id}", kind=Kind.AGENT_HANDOFF_RESULT,
        payload=result.to_payload(), recipient_id=campaign.owner_id, campaign_id=campaign.id,
        urgency=Urgency.NORMAL if reason is None else Urgency.HIGH, now=now)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_REASON]
