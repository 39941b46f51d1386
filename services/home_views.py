"""App Home refreshes through the outbox: one row per member, armed again and again, so the latest state wins.

A Home is not a message: Slack shows the last view published, so what matters is that the last publish
shows the latest state and that publishes for one person never overtake each other. Each member has
one Kind.HOME_VIEW row (key `home:<member id>`), written or armed again in the transaction of the change
that asks for it (`refresh`):

- none yet, or the last one was sent, failed or withdrawn: it is (re)armed, pending and due now;
- pending: nothing to do, it renders the Home when it goes out, this change included;
- claimed (a worker is rendering or publishing it): it is flagged `again`, and the record step arms it
  once more after the publish, since the worker may have read the Home before this change committed.

The Home is rendered when the row goes out, in a reading transaction after the claim, so nothing
changes hands between the claim and the render that the flag does not catch. One row per member means
one publish at a time per member, in order.

`opened`: the person opened the tab. The unread notifications the published view shows are then marked
read once Slack took it (not on refreshes after a click elsewhere, which the person may not be looking at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Notification, NotificationChannel, NotificationStatus
from services import home, notifications
from services.kinds import Kind
from services.notifications import Draft

ARMED_AGAIN = (NotificationStatus.SENT, NotificationStatus.FAILED, NotificationStatus.WITHDRAWN)


def home_key(member_id: int) -> str:
    return f"home:{member_id}"


@dataclass(frozen=True)
class HomeRefresh:
    """The payload of a Kind.HOME_VIEW row."""

    opened: bool = False  # the person opened the tab: mark what the view shows read once it is published
    again: bool = False  # a change committed while the row was out: publish once more after this one

    def payload(self) -> dict[str, Any]:
        return {"opened": self.opened, "again": self.again}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> HomeRefresh:
        return cls(opened=payload.get("opened") is True, again=payload.get("again") is True)


async def refresh(*, db: AsyncSession, member_id: int, now: datetime, opened: bool = False) -> list[int]:
    """Ask for the member's Home to be published afresh after this transaction commits; returns the row
    to hand out, if it needs handing out (it is also noted for the unit of work, like every outbox write)."""
    # The usual case, the last Home went out: armed again in one conditional statement.
    armed = (await db.scalars(
        update(Notification)
        .where(Notification.dedupe_key == home_key(member_id), Notification.status.in_(ARMED_AGAIN))
        .values(_armed(HomeRefresh(opened=opened), now))
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )).all()
    if armed:
        notifications.note_written(db, armed)
        return list(armed)
    # Otherwise locked: a worker's record step decides "sent or again" under the same lock, so a flag set
    # here is never lost between its read and its write.
    row = await db.scalar(select(Notification).where(Notification.dedupe_key == home_key(member_id))
                          .with_for_update())
    if row is None:
        draft = Draft(dedupe_key=home_key(member_id), kind=Kind.HOME_VIEW, payload=HomeRefresh(opened).payload(),
                      recipient_id=member_id, channel=NotificationChannel.SLACK)
        return await notifications.notify_many(db=db, drafts=[draft], now=now)
    state = HomeRefresh.from_payload(row.payload)
    if row.status is NotificationStatus.PENDING:
        if opened and not state.opened:
            row.payload = HomeRefresh(opened=True, again=state.again).payload()
        return []
    if row.status is NotificationStatus.CLAIMED:
        row.payload = HomeRefresh(opened=state.opened or opened, again=True).payload()
        return []
    for name, value in _armed(HomeRefresh(opened=opened), now).items():  # failed or sent since the UPDATE
        setattr(row, name, value)
    notifications.note_written(db, [row.id])
    return [row.id]


def claimed(row: Notification) -> None:
    """At the claim, in its transaction: the render that follows sees every change committed so far."""
    state = HomeRefresh.from_payload(row.payload)
    if state.again:
        row.payload = HomeRefresh(opened=state.opened).payload()


@dataclass(frozen=True)
class Published:
    """A Home that Slack took: its row, and the unread notifications it showed."""

    notification_id: int
    member_id: int
    unread_shown: Sequence[int] = ()


async def record(*, db: AsyncSession, published: Sequence[Published], now: datetime) -> list[int]:
    """Mark the rows sent, or armed again when a change came while they were out (returned, to hand out);
    mark read what an opened Home showed."""
    if not published:
        return []
    ids = sorted(done.notification_id for done in published)
    rows = {row.id: row for row in await db.scalars(
        select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id).with_for_update())}
    again = []
    for done in published:
        row = rows.get(done.notification_id)
        if row is None:
            continue
        state = HomeRefresh.from_payload(row.payload)
        if state.opened and done.unread_shown:
            await home.mark_read(db=db, member_id=done.member_id, notification_ids=done.unread_shown, now=now)
        if state.again:
            for name, value in _armed(HomeRefresh(), now).items():
                setattr(row, name, value)
            again.append(row.id)
        else:
            await notifications.mark_sent(db=db, notification=row, now=now, slack_channel=None, slack_ts=None)
            row.payload = HomeRefresh().payload()
    return again


def _armed(state: HomeRefresh, now: datetime) -> dict[str, Any]:
    """The columns of a row armed again: pending, due now, a fresh attempt budget."""
    return {"payload": state.payload(), "status": NotificationStatus.PENDING, "scheduled_for": now,
            "claimed_until": None, "retries": 0, "last_error": None, "updated_at": now}
