"""Idempotency keys of the API's creates: a retried create makes one thing, and says what it made.

A key is claimed in the create's own transaction (the unique pair token + key hash), so a retry that
runs while the first is still open waits on the claim and then finds what the first made; a create
that failed leaves no row and the key free. The request's hash is kept too: the same key sent with a
different body is a client's mistake, refused rather than answered with something else.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

HASH_LENGTH = 64  # sha256, hex


class ApiIdempotencyKey(Base):
    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
