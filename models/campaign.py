"""Campaigns and the plan (timeline) computed for each."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps, str_enum, utcnow
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
    approved_at: Mapped[datetime | None]  # when the last approval stage passed
    # Who hears about late work after the owner; and the campaign's own escalation policy, where it
    # differs from the defaults: {"task_grace_hours": 24, "critical_grace_hours": 4, ...}.
    escalation_contact_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id"))
    escalation_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)

    owner: Mapped[TeamMember] = relationship(lazy="raise", foreign_keys=[owner_id])
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
    progress_pct: Mapped[float] = mapped_column(default=0.0)
    # Highest buffer alert (0, 50, 100) already sent, so each crossing is told once.
    alert_level: Mapped[int] = mapped_column(default=0)
    # The template's approval stages, kept for the approvals workflow to open in order.
    approval_stages: Mapped[list[Any]] = mapped_column(default=list)
    # The template's content checks and deliverables when the campaign was made (`Template.content_snapshot`);
    # None for campaigns made before there were any: they get the defaults.
    content_rules: Mapped[dict[str, Any] | None]
    computed_at: Mapped[datetime | None]

    campaign: Mapped[Campaign] = relationship(back_populates="timeline", lazy="raise")


class TimelineSnapshot(Base):
    """One point of the plan's history: the buffer fever chart is drawn from these."""

    __tablename__ = "timeline_snapshots"
    __table_args__ = (Index("ix_timeline_snapshots_campaign_id_at", "campaign_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(200))
    projected_launch: Mapped[date | None]
    buffer_consumed_pct: Mapped[float] = mapped_column(default=0.0)
    progress_pct: Mapped[float] = mapped_column(default=0.0)
