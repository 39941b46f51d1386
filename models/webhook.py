"""Outgoing webhooks: a URL an admin registered for some events, and how its last delivery went.

The secret signs every delivery (`X-CM-Signature`, an HMAC the receiver recomputes), so unlike an API
token's it is kept as is: it is shown once, when the webhook is registered, and never listed. A removed
webhook keeps its row (`disabled_at`): deliveries still in the outbox for it are withdrawn at their claim.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

MAX_URL = 2000
SECRET_LENGTH = 64
MAX_ERROR = 500


class Webhook(Base):
    """One registered URL: the events it gets (`events`, a JSON list of names such as "task.done"), its
    signing secret, who registered it, and the last attempt's HTTP status (None: no answer) and error."""

    __tablename__ = "webhooks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL))
    events: Mapped[list[Any]]
    secret: Mapped[str] = mapped_column(String(SECRET_LENGTH))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    disabled_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_delivery_at: Mapped[datetime | None]
