"""Every kind of outbox notification, named once.

The `notifications.kind` column stays a plain string: a `Kind` is a `StrEnum`, so it is stored as its value
and compares equal to it, and rows written before this enum existed read the same. tests/test_kinds.py
checks that each kind has a Slack renderer, an email renderer and an in-app (Home inbox) line, apart from
the NOT_MESSAGES (the SURFACES and the HOOKS: webhooks, the agent hand-off), which nobody reads as a message.
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
    CONTENT_CHECKS_FAILED = "content_checks_failed"  # `services.signoffs`: content errors hold a sign-off stage
    CAMPAIGN_CREATED = "campaign_created"  # `services.campaign_created`
    AGENT_HANDOFF_RESULT = "agent_handoff_result"  # `services.agent_handoff`: whether the launch was handed on
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
    # A launch handed to the marketing agent, an MCP tool call (`services.agent_handoff`): for a machine too.
    AGENT_HANDOFF = "agent_handoff"


TASK_KINDS = frozenset({Kind.TASK_REMINDER, Kind.TASK_OVERDUE, Kind.TASK_ESCALATION})
APPROVAL_REMINDER_KINDS = frozenset({Kind.APPROVAL_REMINDER, Kind.APPROVAL_ESCALATION})
ESCALATIONS = frozenset({Kind.TASK_ESCALATION, Kind.APPROVAL_ESCALATION})
# Slack surfaces rather than messages (a Home's `views.publish`, a link's `chat.unfurl`): always Slack,
# never email or the inbox, and rendered from the database when they go out.
SURFACES = frozenset({Kind.HOME_VIEW, Kind.LINK_UNFURL})
# Calls to other systems (`services.webhooks`, `services.agent_handoff`): never Slack, email or the inbox,
# taken whatever the row's channel, never paced, no generic delivery-failed notice (a hand-off tells its
# owner itself, in its own words).
HOOKS = frozenset({Kind.WEBHOOK, Kind.AGENT_HANDOFF})
# Everything nobody reads as a message: no Slack, email or inbox renderer.
NOT_MESSAGES = SURFACES | HOOKS
