"""Tables, the engine and the session factory. No business rules live here."""

from models.api_idempotency_key import ApiIdempotencyKey
from models.api_token import ApiToken
from models.app_secret import AppSecret
from models.approval import Approval, ApprovalMessage
from models.audit import AuditEntry
from models.base import Base, utcnow
from models.campaign import Campaign, Timeline, TimelineSnapshot
from models.content import Asset, Attachment, Comment
from models.dashboard_link import DashboardLink
from models.email_event import EmailEvent, EmailEventBatch
from models.enums import (
    ApprovalRule,
    ApprovalStatus,
    AssetStatus,
    CampaignStatus,
    NotificationChannel,
    NotificationStatus,
    Priority,
    TaskStatus,
    Urgency,
)
from models.form_submission import FormSubmission
from models.notification import Notification
from models.task import Task, TaskDependency
from models.team import TeamMember
from models.webhook import Webhook

__all__ = [
    "ApiIdempotencyKey", "ApiToken", "AppSecret", "ApprovalMessage",
    "Approval", "ApprovalRule", "ApprovalStatus", "Asset", "AssetStatus", "Attachment", "AuditEntry", "Base",
    "Campaign", "CampaignStatus", "Comment", "DashboardLink", "EmailEvent", "EmailEventBatch", "FormSubmission", "Notification", "NotificationChannel",
    "NotificationStatus", "Priority", "Task", "TaskDependency", "TaskStatus", "TeamMember", "Timeline", "TimelineSnapshot", "Urgency",
    "Webhook",
    "utcnow",
]
