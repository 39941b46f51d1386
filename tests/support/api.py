"""API tokens for tests: a token the running app accepts, issued as `/api token new` in Slack would."""

from __future__ import annotations

from datetime import UTC, datetime

from services import api_tokens, team
from tests.conftest import RunningApp


async def api_token(app: RunningApp, *, user: str = "U0ALICE", scope: str = "write", label: str = "for a test") -> str:
    """A fresh token acting as the member with Slack id `user` (made a member if new), with `scope`."""
    async with app.sessions.begin() as db:
        member = await team.ensure_member(db=db, slack_user_id=user)
        issued = await api_tokens.issue(db=db, created_by=member, acting_as=member, label=label, scope=scope,
                                        now=datetime.now(UTC))
    return issued.token
