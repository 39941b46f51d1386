"""Domain errors. Entry points map them to a short message for the person; nothing else leaks out."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a user can cause and fix; `str(error)` is shown to them as is."""


class NotFound(DomainError):
    pass


class NotAllowed(DomainError):
    pass


class InvalidInput(DomainError):
    pass
