"""A bad value that belongs to one named field, so a form (a Slack modal) can show the message under it.

It is an `InvalidInput` like any other: a slash command shows the message as a reply, a modal under the
field named by `field` (the services' own field names; the modal maps them to its blocks).
"""

from __future__ import annotations

from services.errors import InvalidInput


class InvalidField(InvalidInput):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
