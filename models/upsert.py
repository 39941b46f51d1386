"""Portable "insert unless it exists", for rows guarded by a unique key (members, outbox dedupe keys)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from models.base import Base


async def insert_ignore(db: AsyncSession, model: type[Base], values: dict[str, Any], *, conflict: list[str]) -> bool:
    """Insert one row; return False, changing nothing, when the unique `conflict` columns already exist."""
    statement = _insert(db)(model).values(values).on_conflict_do_nothing(index_elements=conflict)
    result = await db.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def insert_ignore_many(db: AsyncSession, model: type[Base], rows: list[dict[str, Any]], *, conflict: list[str],
                             returning: InstrumentedAttribute[Any]) -> list[Any]:
    """Insert rows in a few statements, skipping those whose unique `conflict` columns exist; `returning` of the new."""
    if not rows:
        return []
    statement = _insert(db)(model).on_conflict_do_nothing(index_elements=conflict).returning(returning)
    # Parameters as a list: SQLAlchemy batches them into multi-row INSERTs itself ("insertmanyvalues") from
    # one cached compilation, where `.values(rows)` would compile a new statement for every call.
    return list((await db.scalars(statement, rows)).all())


def _insert(db: AsyncSession) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both backends spell it the same way)."""
    return postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
