"""The dashboard links' signing key from the configuration: DASHBOARD_SECRET, or, when that is unset, one
derived from SLACK_SIGNING_SECRET (`services.links.link_secret`)."""

from __future__ import annotations

from handlers.ports import Config
from services import links


def secret_of(settings: Config) -> bytes | None:
    return links.link_secret(
        dashboard_secret=settings.dashboard_secret.get_secret_value() if settings.dashboard_secret else None,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
    )
