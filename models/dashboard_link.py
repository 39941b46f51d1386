"""Read-only dashboard links, kept so each one can expire and be revoked on its own.

The token handed out (`services.links`) names a row here and is checked against it on every request:
a link is good while its row exists, is not revoked and has not expired. Ids are never reused (SQLite
AUTOINCREMENT; PostgreSQL sequences never go back), so a token of a deleted link can not come back to life
as another.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

MAX_SCOPE = 24  # "campaign:" and a 10-digit id
MAX_LABEL = 200


class DashboardLink(Base):
    """One link: what it opens (`scope`), who made it, until when, and whether someone ended it.

    `scope` is `all` or `campaign:<id>`; `campaign_id` repeats the id of a campaign scope so the link goes
    with its campaign. `created_by_id` NULL: made by the app itself (the weekly status's timeline link).
    `label` says in words what it opens ("every campaign", "CM-12 Spring launch"), as typed: escape it.
    """

    __tablename__ = "dashboard_links"
    __table_args__ = (
        Index("ix_dashboard_links_created_by_id_created_at", "created_by_id", "created_at"),  # "links I made"
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(MAX_SCOPE))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
    label: Mapped[str] = mapped_column(String(MAX_LABEL), default="", server_default="")
