"""The campaign rows this transaction has locked already.

A change locks its campaign first (`campaigns.lock_campaign`) and then re-plans it, and the re-plan
locks the campaigns it writes (`plans.replan_many`, which also serves the sweep, where nothing locked
them before). Remembering what is held spares the second lock's round trip on every change. The
record belongs to one transaction: a row lock ends with it, so a later transaction on the same session
starts with nothing held. (No savepoints are used, whose rollback would release a lock taken inside.)
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

_HELD = "campaign_manager_held_campaigns"


def note_held(db: AsyncSession, campaign_ids: Iterable[int]) -> None:
    transaction = db.sync_session.get_transaction()
    held = db.info.get(_HELD)
    if held is None or held[0] is not transaction:
        held = db.info[_HELD] = (transaction, set[int]())
    held[1].update(campaign_ids)


def not_yet_held(db: AsyncSession, campaign_ids: Iterable[int]) -> list[int]:
    """`campaign_ids` less those this transaction holds, in ascending order (the project's lock order)."""
    held = db.info.get(_HELD)
    if held is None or held[0] is not db.sync_session.get_transaction():
        return sorted(set(campaign_ids))
    return sorted(set(campaign_ids) - held[1])
