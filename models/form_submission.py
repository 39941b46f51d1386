"""Form submissions already acted on, by Slack view id: a form sent twice does its work once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

MAX_VIEW_ID = 255  # Slack's ids are short ("V0123ABCDEF"); this is its limit for any id it hands out


class FormSubmission(Base):
    """One submitted view, claimed in the transaction that acts on it.

    Slack resends nothing by itself, but a person who saw a timeout submits the same view again, and a
    proxy may retry the request: the second submission finds the row and answers with what the first did.
    `task_id` is set once the task exists (the row is claimed before, in the same transaction), and the
    row goes with its task.
    """

    __tablename__ = "form_submissions"

    view_id: Mapped[str] = mapped_column(String(MAX_VIEW_ID), primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
