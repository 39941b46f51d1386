"""Write the audit log: one line per change that matters, in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEntry


def record(*, db: AsyncSession, actor: str, action: str, entity_type: str, entity_id: int, **details: Any) -> None:
    db.add(AuditEntry(actor=actor, action=action, entity_type=entity_type, entity_id=entity_id, details=details))
