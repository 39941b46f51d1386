"""Campaigns and the plan (timeline) computed for each."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps, str_enum
from models.enums import CampaignStatus
from models.team import TeamMember

if TYPE_CHECKING:
    from models.task import Task


class Campaign(Timestamps, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_status_launch_date", "status", "launch_date"),
        Index("ix_campaigns_owner_id", "owner_id"),
        {"sqlite_autoincrement": True},  # ids back the CM-<n> refs: never reuse one
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(64))
    launch_date: Mapped[date]
    status: Mapped[CampaignStatus] = mapped_column(str_enum(CampaignStatus), default=CampaignStatus.PLANNING)
    owner_id: Mapped[int] = mapped_column(ForeignKey("team_members.id"))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)

    owner: Mapped[TeamMember] = relationship(lazy="raise")
    timeline: Mapped[Timeline | None] = relationship(back_populates="campaign", lazy="raise", uselist=False)
    tasks: Mapped[list[Task]] = relationship(back_populates="campaign", lazy="raise", order_by="Task.id")


class Timeline(Timestamps, Base):
    """The computed plan: what the scheduler last decided for a campaign."""

    __tablename__ = "timelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    # [{"name": "Assets ready", "task_id": 12, "date": "2027-03-01"}, ...]
    milestones: Mapped[list[Any]] = mapped_column(default=list)
    critical_path: Mapped[list[Any]] = mapped_column(default=list)  # task ids, in order
    buffer_hours: Mapped[float] = mapped_column(default=0.0)
    buffer_consumed_pct: Mapped[float] = mapped_column(default=0.0)
    projected_launch: Mapped[date | None]
    compressed_days: Mapped[int] = mapped_column(default=0)
    computed_at: Mapped[datetime | None]

    campaign: Mapped[Campaign] = relationship(back_populates="timeline", lazy="raise")
