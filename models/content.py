"""What people attach to campaigns and tasks: comments, files and the assets under review."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, str_enum
from models.enums import AssetStatus


class Comment(Timestamps, Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_task_id", "task_id"), Index("ix_comments_campaign_id", "campaign_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("team_members.id"))
    body: Mapped[str] = mapped_column(Text)


class Attachment(Timestamps, Base):
    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_task_id", "task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2000))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id"))


class Asset(Timestamps, Base):
    """A deliverable under review that approvers look at: a link or a file shared in Slack, or an email
    draft (subject, preheader and body, typed in a form). `services.content_checks` reads them before a
    sign-off stage opens; `task_id` ties one to the task it is the deliverable of."""

    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_campaign_id_status", "campaign_id", "status"),
        Index("ix_assets_task_id", "task_id"),
        {"sqlite_autoincrement": True},  # ids back the AS-<n> refs: never reuse one
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(64), default="document")
    url: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[AssetStatus] = mapped_column(str_enum(AssetStatus), default=AssetStatus.DRAFT)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id"))
    # An email draft: what the approvers read, as typed (`body` is its HTML or plain text).
    subject: Mapped[str | None] = mapped_column(String(300))
    preheader: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(2000))  # the Slack message it was attached from
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
