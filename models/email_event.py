"""What the email provider (Mailjet) tells us about a campaign's emails: each event once, and the raw
batches it posted, kept until a worker has read them.

A batch is stored as it came (`email_event_batches`) in the request that received it, so a 10,000-event
post is answered at once and nothing is lost if the process stops; a job turns it into events. An event
is stored once (`dedupe_key`, a hash of what identifies it), with the campaign it names, or with no
campaign and the provider's campaign label kept (`custom_campaign`) when that label names none of ours,
so it can be attributed later rather than dropped. Recipients are kept only as a hash of the address:
enough to count people, nothing to leak.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

MAX_LABEL = 255
MAX_ERROR = 500


class EmailEvent(Base):
    """One provider event: `event` is sent, open, click, bounce, blocked, spam or unsub."""

    __tablename__ = "email_events"
    __table_args__ = (
        Index("ix_email_events_campaign_id_event", "campaign_id", "event"),
        Index("ix_email_events_custom_campaign", "custom_campaign"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(16), default="mailjet")
    event: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    custom_campaign: Mapped[str | None] = mapped_column(String(MAX_LABEL))
    message_id: Mapped[str | None] = mapped_column(String(40))
    recipient_hash: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    url: Mapped[str | None] = mapped_column(Text)  # a click's link
    hard_bounce: Mapped[bool | None]
    error: Mapped[str | None] = mapped_column(String(MAX_ERROR))  # a bounce's or block's reason
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("email_event_batches.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class EmailEventBatch(Base):
    """One POST from the provider, as received; `status` pending until a job has stored its events."""

    __tablename__ = "email_event_batches"
    __table_args__ = (Index("ix_email_event_batches_status", "status"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), default="mailjet")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, failed
    events: Mapped[int] = mapped_column(default=0)  # in the body
    stored: Mapped[int] = mapped_column(default=0)  # new events stored
    duplicates: Mapped[int] = mapped_column(default=0)
    unmatched: Mapped[int] = mapped_column(default=0)  # stored without a campaign
    rejected: Mapped[int] = mapped_column(default=0)  # items that are not events we understand
    error: Mapped[str | None] = mapped_column(String(MAX_ERROR))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    processed_at: Mapped[datetime | None]
