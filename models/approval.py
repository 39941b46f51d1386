"""One approver's decision on one stage of a campaign's sign-off."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps, str_enum
from models.enums import ApprovalRule, ApprovalStatus
from models.team import TeamMember


class Approval(Timestamps, Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("campaign_id", "stage", "approver_id"),
        Index("ix_approvals_status_deadline", "status", "deadline"),
        Index("ix_approvals_approver_id_status", "approver_id", "status"),
        {"sqlite_autoincrement": True},  # ids back the AP-<n> refs
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(100))
    stage_order: Mapped[int] = mapped_column(default=0)
    rule: Mapped[ApprovalRule] = mapped_column(str_enum(ApprovalRule), default=ApprovalRule.ALL)
    approver_id: Mapped[int] = mapped_column(ForeignKey("team_members.id"))
    delegated_to_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id"))
    status: Mapped[ApprovalStatus] = mapped_column(str_enum(ApprovalStatus), default=ApprovalStatus.PENDING)
    comments: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]

    approver: Mapped[TeamMember] = relationship(foreign_keys=[approver_id], lazy="raise")
    delegated_to: Mapped[TeamMember | None] = relationship(foreign_keys=[delegated_to_id], lazy="raise")
