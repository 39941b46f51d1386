"""Secrets the app makes for itself when the configuration gives none, kept so every process shares them.

The embedded default (`make run`: no DASHBOARD_SECRET, no Slack signing secret) still signs dashboard
links: the key is made once, at the first start, and read by every later start, the console and every
other instance on the same database, so a link made by one opens on all of them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class AppSecret(Base):
    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
