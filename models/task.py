"""Tasks of a campaign and the finish-to-start links between them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps, str_enum
from models.enums import Priority, TaskStatus
from models.team import TeamMember

if TYPE_CHECKING:
    from models.campaign import Campaign


class Task(Timestamps, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_campaign_id_status", "campaign_id", "status"),
        Index("ix_tasks_assignee_id_due_at", "assignee_id", "due_at"),
        {"sqlite_autoincrement": True},  # ids back the T-<n> refs
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
    assignment_reason: Mapped[str | None] = mapped_column(Text)
    required_skill: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority), default=Priority.NORMAL)
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus), default=TaskStatus.TODO)
    is_milestone: Mapped[bool] = mapped_column(default=False)
    template_key: Mapped[str | None] = mapped_column(String(64))  # which template task this came from
    duration_hours: Mapped[float] = mapped_column(default=8.0)
    # The plan works back from the launch: start_at/due_at are the latest dates that still meet it,
    # earliest_* what a forward pass from today allows. due_fixed: a person set due_at, keep it.
    start_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    due_fixed: Mapped[bool] = mapped_column(default=False)
    earliest_start_at: Mapped[datetime | None]
    earliest_finish_at: Mapped[datetime | None]
    float_hours: Mapped[float | None]
    on_critical_path: Mapped[bool] = mapped_column(default=False)
    completed_at: Mapped[datetime | None]
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    snoozed_until: Mapped[datetime | None]  # reminders wait until then ("Snooze 1 h", "until tomorrow")

    campaign: Mapped[Campaign] = relationship(back_populates="tasks", lazy="raise")
    assignee: Mapped[TeamMember | None] = relationship(lazy="raise")


class TaskDependency(Base):
    """`successor` may start only after `predecessor` finishes, plus `lag_hours` of working time."""

    __tablename__ = "task_dependencies"
    __table_args__ = (
        CheckConstraint("predecessor_id <> successor_id", name="not_self"),
        Index("ix_task_dependencies_successor_id", "successor_id"),
    )

    predecessor_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    successor_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    lag_hours: Mapped[float] = mapped_column(default=0.0)
