"""`/campaign escalation CM-12 [grace=1d contact=@dana ... | reset]` (alias `policy`): show or set who hears
about late work, and when. Anyone may look; the owner or an admin may change it."""

from __future__ import annotations

from typing import Any

from blocks.escalation import escalation_policy
from handlers.slack.args import PersonRef, parse_person, person_id
from handlers.slack.context import Work
from services import campaigns
from services import escalation_policy as policies
from services.errors import InvalidInput
from services.refs import RefKind, parse_ref

USAGE = ("Usage: `/campaign escalation CM-12` to see it, or `/campaign escalation CM-12 grace=1d critical=4h "
         "contact=@dana` to change it (`reset` restores the defaults).")


async def escalation(work: Work, args: list[str], command: dict[str, Any]) -> dict[str, Any]:
    if not args:
        raise InvalidInput(f"Which campaign? {USAGE}")
    campaign_id = parse_ref(args[0], RefKind.CAMPAIGN)
    change = policies.parse_change(args[1:])
    contact = _contact(change)  # bad input is refused before any lookup
    campaign = await campaigns.get_campaign(db=work.db, campaign_id=campaign_id)
    changed: list[str] = []
    if not change.is_empty:
        contact_user_id = await person_id(contact, db=work.db) if isinstance(contact, PersonRef) else contact
        changed = await policies.set_policy(db=work.db, campaign=campaign, change=change,
                                            contact_user_id=contact_user_id, actor=work.authz_actor)
    view = await policies.describe(db=work.db, campaign=campaign)
    return {**escalation_policy(view, changed=changed, asked_to_change=not change.is_empty),
            "response_type": "ephemeral"}


def _contact(change: policies.PolicyChange) -> PersonRef | None | policies.Keep:
    if change.contact is None or isinstance(change.contact, policies.Keep):
        return change.contact
    try:
        return parse_person(change.contact)
    except InvalidInput:
        raise InvalidInput("`contact=` needs a person: mention them with @, like `contact=@dana` "
                           "(or `contact=none`).") from None
