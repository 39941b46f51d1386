"""API tokens: how an integration (a CRM, a BI tool, an AI agent) acts as one member through the API.

The token handed out once is `cm_<id>_<secret>`; only a SHA-256 of the secret is kept here, so a copy of
the database opens nothing. A token is good while its row exists and is not revoked. Ids are never reused
(SQLite AUTOINCREMENT; PostgreSQL sequences never go back), so a revoked token can not come back as another.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

MAX_LABEL = 200
MAX_SCOPE = 16
SECRET_HASH_LENGTH = 64  # sha256, hex


class ApiToken(Base):
    """One token: what it is for (`label`, as typed: escape it), what it may do (`scope`: `read` or `write`),
    whom it acts as (`member_id`), who made it, when it was last used, and whether someone ended it.

    `last_used_at` is written at most once a minute per token (`services.api_tokens`): close enough to
    tell a live integration from a dead one, without a write on every request.
    """

    __tablename__ = "api_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(MAX_LABEL))
    scope: Mapped[str] = mapped_column(String(MAX_SCOPE))
    member_id: Mapped[int] = mapped_column(ForeignKey("team_members.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
    secret_hash: Mapped[str] = mapped_column(String(SECRET_HASH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None]
