"""Reading a submitted modal and answering it: values by block id, and errors under the right field.

A modal's work runs before its ack, so a refusal can be shown on the form where the person still is;
each form's work is one short transaction, well inside Slack's 3 seconds.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from blocks.modals import VALUE
from blocks.text import truncate
from handlers.slack.errors import describe
from services.errors import DomainError
from services.fields import InvalidField

ERROR_LIMIT = 200  # Slack shows a field's error as a short line under the input


class Form:
    """The values of a submitted view, by block id (every input's action id is `blocks.modals.VALUE`)."""

    def __init__(self, view: dict[str, Any]):
        self.values: dict[str, Any] = (view.get("state") or {}).get("values") or {}
        self.private_metadata = str(view.get("private_metadata") or "")

    def _state(self, block_id: str) -> dict[str, Any]:
        state = (self.values.get(block_id) or {}).get(VALUE)
        return state if isinstance(state, dict) else {}

    def text(self, block_id: str) -> str:
        return str(self._state(block_id).get("value") or "")

    def option(self, block_id: str) -> str | None:
        chosen = self._state(block_id).get("selected_option")
        return str(chosen["value"]) if isinstance(chosen, dict) and chosen.get("value") else None

    def user(self, block_id: str) -> str | None:
        return self._state(block_id).get("selected_user") or None

    def conversation(self, block_id: str) -> str | None:
        return self._state(block_id).get("selected_conversation") or None

    def day(self, block_id: str) -> date | None:
        """A datepicker's day; None when empty (Slack only sends YYYY-MM-DD)."""
        try:
            return date.fromisoformat(str(self._state(block_id).get("selected_date") or ""))
        except ValueError:
            return None


def errors_for(error: Exception, *, fields: set[str], fallback: str) -> dict[str, str]:
    """Where a failure is shown on the form: under its field, or the `fallback` one.

    Domain errors read as plain text (a field's error is not mrkdwn), unexpected ones as an error id.
    """
    if isinstance(error, InvalidField) and error.field in fields:
        return {error.field: truncate(str(error), ERROR_LIMIT)}
    text = str(error) if isinstance(error, DomainError) else describe(error)
    return {fallback: truncate(text, ERROR_LIMIT)}
