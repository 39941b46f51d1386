"""Dashboard links from the configuration: the signing key, and a signed link to every campaign.

The key is DASHBOARD_SECRET, or, when that is unset, one derived from SLACK_SIGNING_SECRET
(`services.links.link_secret`). Used by `/dashboard` and by the App Home that delivery publishes.
"""

from __future__ import annotations

from handlers.ports import DeliveryConfig
from services import links

DASHBOARD_PATH = "/dashboard"


def secret_of(settings: DeliveryConfig) -> bytes | None:
    return links.link_secret(
        dashboard_secret=settings.dashboard_secret.get_secret_value() if settings.dashboard_secret else None,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
    )


def home_dashboard_url(settings: DeliveryConfig) -> str:
    """The App Home's "Open dashboard" link: signed for every campaign where it can be, else the bare page
    (which says how to get a link)."""
    secret = secret_of(settings)
    if secret is None:
        return settings.public_url + DASHBOARD_PATH
    return links.dashboard_url(settings.public_url, links.dashboard_token(secret, links.SCOPE_ALL))
