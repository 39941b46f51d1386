"""Every kind of outbox notification, named once.

The `notifications.kind` column stays a plain string: a `Kind` is a `StrEnum`, so it is stored as its value
and compares equal to it, and rows written before this enum existed read the same. tests/test_kinds.py
checks that each kind has a Slack renderer, an email renderer and an in-app (Home inbox) line, apart from
the NOT_MESSAGES (the SURFACES and the webhooks' HOOKS), which nobody reads as a message.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    # The sweep's reminders (`services.reminders`); their payloads carry the kind too ("kind": ...).
    TASK_REMINDER = "task_reminder"
    TASK_OVERDUE = "task_overdue"
    TASK_ESCALATION = "task_escalation"
    APPROVAL_REMINDER = "approval_reminder"
    APPROVAL_ESCALATION = "approval_escalation"
    DIGEST = "digest"
    # The weekly status post (`services.status_reports`).
    CAMPAIGN_STATUS = "campaign_status"
    # The owner's notices.
    PLAN_ALERT = "plan_alert"  # `services.plan_alerts`
    DELIVERY_FAILED = "delivery_failed"  # `services.delivery`
    STAGE_UNSTAFFED = "stage_unstaffed"  # `services.signoffs`
    CAMPAIGN_CREATED = "campaign_created"  # `services.campaign_created`
    # Approval messages (`services.approval_notices`).
    APPROVAL_REQUEST = "approval_request"
    APPROVAL_COPY_UPDATE = "approval_copy_update"  # a `chat.update` of a request's recorded copy
    APPROVAL_OUTCOME = "approval_outcome"
    # A member's App Home published afresh (`services.home_views`): one row per member, re-armed.
    HOME_VIEW = "home_view"
    # Dashboard links pasted in Slack, unfolded into a card (`services.unfurls`).
    LINK_UNFURL = "link_unfurl"
    # A signed HTTP POST to a URL an admin registered (`services.webhooks`): for a machine, not a person.
    WEBHOOK = "webhook"


TASK_KINDS = frozenset({Kind.TASK_REMINDER, Kind.TASK_OVERDUE, Kind.TASK_ESCALATION})
APPROVAL_REMINDER_KINDS = frozenset({Kind.APPROVAL_REMINDER, Kind.APPROVAL_ESCALATION})
ESCALATIONS = frozenset({Kind.TASK_ESCALATION, Kind.APPROVAL_ESCALATION})
# Slack surfaces rather than messages (a Home's `views.publish`, a link's `chat.unfurl`): always Slack,
# never email or the inbox, and rendered from the database when they go out.
SURFACES = frozenset({Kind.HOME_VIEW, Kind.LINK_UNFURL})
# Posts to other systems (`services.webhooks`): never Slack, email or the inbox, never paced, no owner notice.
HOOKS = frozenset({Kind.WEBHOOK})
# Everything nobody reads as a message: no Slack, email or inbox renderer.
NOT_MESSAGES = SURFACES | HOOKS
