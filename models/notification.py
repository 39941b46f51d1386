"""The outbox: every message the app owes someone, written with the change that caused it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, str_enum, utcnow
from models.enums import NotificationChannel, NotificationStatus, Urgency

OPEN_ROWS = text("status IN ('pending', 'claimed')")


class Notification(Timestamps, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient_id_sent_at", "recipient_id", "sent_at"),
        Index("ix_notifications_scheduled_for_sent_at", "scheduled_for", "sent_at"),
        # The sweep and the claims look only at open rows: a partial index keeps that cost to the open rows
        # however many sent ones the table has gathered.
        Index("ix_notifications_open_scheduled_for", "scheduled_for",
              postgresql_where=OPEN_ROWS, sqlite_where=OPEN_ROWS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A unique key per (thing, kind, due slot) makes writing the same reminder twice a no-op.
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="CASCADE"))
    recipient_channel: Mapped[str | None] = mapped_column(String(32))  # a Slack channel instead of a person
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    channel: Mapped[NotificationChannel] = mapped_column(
        str_enum(NotificationChannel), default=NotificationChannel.SLACK
    )
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency), default=Urgency.NORMAL)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus), default=NotificationStatus.PENDING
    )
    scheduled_for: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    retries: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
