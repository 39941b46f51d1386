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
        # "Waiting for me" asks approver_id = me OR delegated_to_id = me: without both indexes, a table scan.
        Index("ix_approvals_delegated_to_id", "delegated_to_id"),
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
    # Who clicked: the approver, or the person they delegated to.
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id"))
    # Bumped when a rejected stage is resubmitted; decisions of older rounds are history (audit log).
    round: Mapped[int] = mapped_column(default=1)

    approver: Mapped[TeamMember] = relationship(foreign_keys=[approver_id], lazy="raise")
    delegated_to: Mapped[TeamMember | None] = relationship(foreign_keys=[delegated_to_id], lazy="raise")


class ApprovalMessage(Base):
    """A Slack message showing a stage's request (an approver's DM or the campaign channel post).

    Every copy is updated in place when the stage moves, so they are all remembered here: recorded by the
    delivery job in the transaction that marks the request sent. `update_id` is the last outbox row written
    to bring this copy up to date (`services.approval_notices`): while it is still pending, a newer change
    needs no row of its own, since the row renders the stage as it is when it goes out.
    """

    __tablename__ = "approval_messages"
    __table_args__ = (
        UniqueConstraint("channel", "ts"),
        Index("ix_approval_messages_campaign_id_stage", "campaign_id", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(100))
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    update_id: Mapped[int | None]  # a notifications.id; no foreign key: the outbox's history may be pruned
