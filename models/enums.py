"""The closed vocabularies stored in the tables. Values are what the database holds; never rename one."""

from __future__ import annotations

import enum


class CampaignStatus(enum.StrEnum):
    PLANNING = "planning"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TaskStatus(enum.StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    DELEGATED = "delegated"
    CANCELLED = "cancelled"


class ApprovalRule(enum.StrEnum):
    ALL = "all"
    ANY = "any"


class NotificationChannel(enum.StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    IN_APP = "in_app"


class Urgency(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # moot by the time it would have gone out (task done, approval decided, ...)


class AssetStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    ARCHIVED = "archived"
