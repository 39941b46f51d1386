"""Idempotency keys for the API's campaign creates (`models.ApiIdempotencyKey`): the same
`Idempotency-Key` sent twice makes one campaign, and the second answer is the first one's campaign.

The claim is an INSERT of (token, hash of the key) in the create's own transaction: a retry that runs
while the first is still open waits on the unique row, then finds what the first made; a create that
failed rolled its claim back with it. The key reused with another request body is refused (a client's
mistake, never answered with a campaign it did not ask for). Keys are forgotten after KEPT (the sweep),
far longer than any client retries. (A task's create keeps its key the way a Slack form does, in
`form_submissions`, through `tasks.create_task(submission_id=...)`.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ApiIdempotencyKey
from models.upsert import insert_ignore
from services.errors import InvalidInput

MAX_KEY = 200
KEPT = timedelta(days=1)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    token_id: int
    key_hash: str
    request_hash: str


def claim_of(*, token_id: int, key: str, request: str) -> Claim:
    """`request`: the request as it matters for the key (its body, canonically serialized)."""
    return Claim(token_id=token_id, key_hash=digest(key), request_hash=digest(request))


async def claim(*, db: AsyncSession, claim: Claim, now: datetime) -> int | None:
    """Take the key in this transaction: None when it is ours now; else the campaign an earlier create
    with it made (InvalidInput when that create asked for something else, or its campaign is gone)."""
    if await insert_ignore(db, ApiIdempotencyKey, {"token_id": claim.token_id, "key_hash": claim.key_hash,
                                                   "request_hash": claim.request_hash, "created_at": now},
                           conflict=["token_id", "key_hash"]):
        return None
    earlier = (await db.execute(select(ApiIdempotencyKey.request_hash, ApiIdempotencyKey.campaign_id).where(
        ApiIdempotencyKey.token_id == claim.token_id, ApiIdempotencyKey.key_hash == claim.key_hash))).one()
    if earlier.request_hash != claim.request_hash:
        raise InvalidInput("This Idempotency-Key was used for a different request; use a new key.")
    if earlier.campaign_id is None:
        raise InvalidInput("This Idempotency-Key was used for a create whose campaign is gone; use a new key.")
    return int(earlier.campaign_id)


async def record(*, db: AsyncSession, claim: Claim, campaign_id: int) -> None:
    key = await db.scalar(select(ApiIdempotencyKey).where(ApiIdempotencyKey.token_id == claim.token_id,
                                                          ApiIdempotencyKey.key_hash == claim.key_hash))
    if key is not None:
        key.campaign_id = campaign_id


async def forget(*, db: AsyncSession, now: datetime) -> None:
    """Keys older than KEPT: no client retries that late."""
    await db.execute(delete(ApiIdempotencyKey).where(ApiIdempotencyKey.created_at < now - KEPT))
