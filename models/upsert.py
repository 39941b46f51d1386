"""Portable "insert unless it exists", for rows guarded by a unique key (members, outbox dedupe keys), and
"which of these exist" in one statement however many there are to check."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, func, select
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


def one_of(db: AsyncSession, column: InstrumentedAttribute[Any], values: Collection[str | int]) -> ColumnElement[bool]:
    """`column IN values` with the values as one bound parameter, so that any number of them is one statement.

    An ordinary IN list takes a parameter per value, and both drivers cap a statement's parameters
    (32,767), so long lists had to be split into a query per chunk. PostgreSQL: `column = ANY(array)`;
    SQLite: `column IN (SELECT value FROM json_each(json))`. Both use the column's index.
    """
    if db.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    listed = func.json_each(json.dumps(list(values))).table_valued("value")
    return column.in_(select(listed.c.value))
