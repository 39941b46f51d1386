"""Dashboard links for tests: a token the running app accepts, stored as `/dashboard` in Slack would issue it."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.links import secret_of
from services import dashboard_links, links
from tests.conftest import RunningApp


async def dashboard_token(app: RunningApp, *, campaign_id: int | None = None) -> str:
    """A fresh link's token (made by the app, a week long) for every campaign, or for one (which must exist)."""
    deps = app.runtime.deps
    assert deps is not None
    secret = secret_of(deps.settings)
    assert secret is not None, "the test app signs links with its Slack signing secret"
    scope = links.campaign_scope(campaign_id) if campaign_id is not None else links.SCOPE_ALL
    async with deps.sessions.begin() as db:
        _, token = await dashboard_links.issue(db=db, created_by=None, scope=scope, days=7, now=datetime.now(UTC),
                                               secret=secret, label="for a test")
    return token
