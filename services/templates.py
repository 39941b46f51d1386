"""The catalogue of campaign templates a campaign can be created from.

Names and one-line descriptions only; the task lists behind them arrive with the planning engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.errors import InvalidInput


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    title: str
    description: str


CATALOGUE: dict[str, TemplateInfo] = {
    info.name: info
    for info in (
        TemplateInfo("product_launch", "Product launch", "Positioning, assets, press and launch-day push"),
        TemplateInfo("newsletter", "Newsletter", "Draft, design, review and send one issue"),
        TemplateInfo("webinar", "Webinar", "Speakers, landing page, promotion and follow-up"),
        TemplateInfo("promo", "Sale / promotion", "Offer, creatives, channels and wrap-up"),
        TemplateInfo("event", "Event", "Venue, agenda, invitations, logistics and recap"),
    )
}

_ALIASES = {"launch": "product_launch", "product-launch": "product_launch", "sale": "promo"}


def resolve_template(name: str) -> TemplateInfo:
    key = name.strip().lower().replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in CATALOGUE:
        options = ", ".join(f"`{known}`" for known in CATALOGUE)
        shown = name if len(name) <= 40 else name[:39] + "…"
        raise InvalidInput(f"There is no template called `{shown}`. Pick one of: {options}.")
    return CATALOGUE[key]
