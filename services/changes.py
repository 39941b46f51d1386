"""Which campaigns a transaction changed, collected as it writes, so that no service has to remember.

Open dashboard pages are told after the commit which campaigns changed (`handlers.live`); the entry
point reads `changed_in(db)` next to `notifications.written_in(db)`. The record is filled by session
events registered once, at import, on every Session:

- `after_flush`: the new, changed and deleted rows of the tables a dashboard shows (a campaign, its
  tasks and their links, its plan and plan history, its sign-offs, comments, attachments and assets).
  After the flush, so a new row has its id; a row that was only touched, without a changed value, is
  not a change.
- `do_orm_execute`: statements that write without the unit of work, such as the conditional
  `update(...)` of a decision or a status move and the bulk insert of plan snapshots. Their campaigns
  are read from the statement itself: `campaign_id = x` (or `IN`) in its WHERE clause or in its rows,
  `Campaign.id = x`, or `id = x` of a row this session has loaded. Nothing is queried: collecting costs
  no statement. A statement whose campaign cannot be read that way is logged; its service can name the
  campaigns with `note(db, campaign_ids)`.

Nothing here commits or publishes: a transaction that rolls back is never read (the entry point reads
only after its commit).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Column, event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ClauseElement
from sqlalchemy.sql.visitors import iterate

from models import Approval, Campaign, Task, TaskDependency, Timeline, TimelineSnapshot
from models.content import Asset, Attachment, Comment

log = logging.getLogger(__name__)

CHANGED = "campaigns_changed"  # key in the session's `info`: ids of the campaigns changed through it

# Rows that belong to one campaign through their `campaign_id`.
_OWNED: tuple[type[Any], ...] = (Task, Timeline, TimelineSnapshot, Approval, Comment, Attachment, Asset)
# By table name: a statement's table is often an annotated copy of the model's, equal but not the same object.
_OWNED_TABLES: dict[str, type[Any]] = {model.__tablename__: model for model in _OWNED}
_CAMPAIGNS = Campaign.__tablename__
_DEPENDENCIES = TaskDependency.__tablename__


def note(db: AsyncSession | Session, campaign_ids: Iterable[int]) -> None:
    """Count `campaign_ids` as changed by this session's transaction."""
    _record(db.info, campaign_ids)


def changed_in(db: AsyncSession | Session) -> set[int]:
    """The campaigns this session changed: read after the commit, to tell open dashboards."""
    return set(db.info.get(CHANGED, ()))


def _record(info: dict[Any, Any], campaign_ids: Iterable[int]) -> None:
    changed = info.get(CHANGED)
    if changed is None:
        changed = info[CHANGED] = set()
    changed.update(campaign_id for campaign_id in campaign_ids if isinstance(campaign_id, int))


# ---------------------------------------------------------------- rows the unit of work wrote


@event.listens_for(Session, "after_flush")
def _rows_flushed(session: Session, flush_context: UOWTransaction) -> None:
    known = set(session.info.get(CHANGED, ()))
    found: set[int] = set()
    for row in (*session.new, *session.deleted):
        found.update(_campaigns_of_row(session, row))
    known |= found
    for row in session.dirty:
        ids = _campaigns_of_row(session, row)
        # Only a net change counts; a row of a campaign counted already needs no look at its attributes.
        if ids and not ids <= known and session.is_modified(row, include_collections=False):
            found.update(ids)
            known |= ids
    if found:
        _record(session.info, found)


def _campaigns_of_row(session: Session, row: object) -> set[int]:
    # Values as the row holds them: an attribute that is not loaded is not worth a query here.
    if isinstance(row, Campaign):
        return _ints([inspect(row).dict.get("id")])
    if isinstance(row, _OWNED):
        return _ints([inspect(row).dict.get("campaign_id")])
    if isinstance(row, TaskDependency):
        values = inspect(row).dict
        return _campaigns_of_tasks(session, (values.get("predecessor_id"), values.get("successor_id")))
    return set()


def _campaigns_of_tasks(session: Session, task_ids: Iterable[Any]) -> set[int]:
    """The campaigns of tasks this session holds (a link is added or removed next to its tasks)."""
    found = set()
    for task_id in task_ids:
        task = session.identity_map.get(identity_key(Task, task_id)) if task_id is not None else None
        if task is not None:
            found |= _ints([inspect(task).dict.get("campaign_id")])
    return found


# ---------------------------------------------------------------- statements that bypass the unit of work


@event.listens_for(Session, "do_orm_execute")
def _statement_executed(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table != _CAMPAIGNS and table != _DEPENDENCIES and table not in _OWNED_TABLES:
        return
    found = _campaigns_in_statement(state, table)
    if found:
        _record(state.session.info, found)
    elif not _names_nothing(state):
        log.warning("could not tell which campaigns a %s on %s changed; name them with changes.note()",
                    "bulk insert" if state.is_insert else "statement", table)


def _campaigns_in_statement(state: ORMExecuteState, table: str) -> set[int]:
    session = state.session
    found: set[int] = set()
    if state.is_insert:
        for row in _parameter_rows(state):
            if table == _DEPENDENCIES:
                found.update(_campaigns_of_tasks(session, (row.get("predecessor_id"), row.get("successor_id"))))
            else:
                found.update(_ints([row.get("id" if table == _CAMPAIGNS else "campaign_id")]))
        return found
    whereclause = getattr(state.statement, "whereclause", None)
    if whereclause is None:
        return found
    for column, values in _equalities(whereclause, table):
        if table == _CAMPAIGNS and column.name == "id":
            found.update(_ints(values))
        elif table == _DEPENDENCIES and column.name in ("predecessor_id", "successor_id"):
            found.update(_campaigns_of_tasks(session, values))
        elif column.name == "campaign_id":
            found.update(_ints(values))
        elif column.name == "id" and table in _OWNED_TABLES:
            model = _OWNED_TABLES[table]
            for row_id in values:
                loaded = session.identity_map.get(identity_key(model, row_id))
                if loaded is not None:
                    found |= _ints([inspect(loaded).dict.get("campaign_id")])
    return found


def _equalities(clause: ClauseElement, table: str) -> Iterator[tuple[Column[Any], list[Any]]]:
    """`column = value` and `column IN values` of `table` anywhere in a WHERE clause, with their values."""
    for element in iterate(clause):
        if not isinstance(element, BinaryExpression) or element.operator not in (operators.eq, operators.in_op):
            continue
        column, other = element.left, element.right
        if not isinstance(column, Column):
            column, other = other, column
        if isinstance(column, Column) and column.table.name == table and isinstance(other, BindParameter):
            value = other.effective_value
            yield column, list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]


def _parameter_rows(state: ORMExecuteState) -> list[dict[str, Any]]:
    parameters = state.parameters
    rows: list[dict[str, Any]] = []
    if isinstance(parameters, dict):
        rows.append(dict(parameters))
    elif isinstance(parameters, (list, tuple)):
        rows.extend(row for row in parameters if isinstance(row, dict))
    values = getattr(state.statement, "_values", None)  # insert(...).values({...}): bound in the statement
    if values:
        rows.append({getattr(key, "key", key): getattr(value, "effective_value", value) for key, value in values.items()})
    return rows


def _names_nothing(state: ORMExecuteState) -> bool:
    """An insert without rows writes nothing, so there is nothing to tell."""
    return state.is_insert and not _parameter_rows(state)


def _ints(values: Iterable[Any]) -> set[int]:
    return {value for value in values if isinstance(value, int) and not isinstance(value, bool)}
