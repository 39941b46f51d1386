"""People who work on campaigns: their skills, hours and capacity, as the planner needs them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps

WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


def default_availability() -> dict[str, Any]:
    """Monday to Friday, 09:00-17:00 in the member's own time zone."""
    return {day: [["09:00", "17:00"]] for day in WORKDAYS}


class TeamMember(Timestamps, Base):
    __tablename__ = "team_members"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(64))
    skills: Mapped[list[Any]] = mapped_column(default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # {"mon": [["09:00", "17:00"]], ...}: several windows a day allowed, days missing are off.
    weekly_availability: Mapped[dict[str, Any]] = mapped_column(default=default_availability)
    max_concurrent_tasks: Mapped[int] = mapped_column(default=5)
    out_of_office_from: Mapped[date | None]
    out_of_office_until: Mapped[date | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    profile_synced_at: Mapped[datetime | None]
    # How this person wants to hear from us: "slack" (DM), "email" or "in_app" (App Home inbox only).
    notify_via: Mapped[str] = mapped_column(String(16), default="slack")
    # Campaign ids whose reminders this person muted (urgent escalations still come through).
    muted_campaigns: Mapped[list[Any]] = mapped_column(default=list)
