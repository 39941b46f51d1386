"""An append-only record of who did what, when: the answer to "who changed this?"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"), Index("ix_audit_log_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # a Slack user id, or "system" for jobs
    action: Mapped[str] = mapped_column(String(64))  # "campaign.created", "approval.approved", ...
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
