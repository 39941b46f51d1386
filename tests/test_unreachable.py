"""Which failures mean "the database cannot be reached", and what a person is told about them."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp import ClientOSError
from sqlalchemy import exc

from handlers.slack.errors import DATABASE_UNREACHABLE, describe
from models.db import is_unreachable
from services.errors import DomainError


def _wrapped(driver_error: Exception, *, invalidated: bool = False) -> exc.DBAPIError:
    """As SQLAlchemy raises it: its own error, `from` the driver's, which it also keeps in `orig`."""
    try:
        raise exc.DBAPIError("SELECT 1", None, driver_error, connection_invalidated=invalidated) from driver_error
    except exc.DBAPIError as error:
        return error


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connect call failed"),  # asyncpg at connect time: not wrapped at all
    OSError(113, "No route to host"),
    TimeoutError(),  # asyncpg's connect timeout
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached, connection timed out"),
    _wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")),
    _wrapped(RuntimeError("connection is closed"), invalidated=True),
], ids=type)
def test_connection_level_failures_are_unreachable(error: Exception) -> None:
    assert is_unreachable(error)


@pytest.mark.parametrize("error", [
    _wrapped(asyncpg.UniqueViolationError("duplicate key")),
    _wrapped(asyncpg.QueryCanceledError("canceling statement due to statement timeout")),
    _wrapped(asyncpg.DeadlockDetectedError("deadlock detected")),
    ValueError("bad input"),
    DomainError("CM-3 is paused; resume it first"),
], ids=type)
def test_errors_in_what_was_asked_are_not(error: Exception) -> None:
    assert not is_unreachable(error)


def test_a_person_hears_that_the_database_is_unreachable_not_an_error_id() -> None:
    assert describe(ConnectionRefusedError(111, "Connect call failed")) == DATABASE_UNREACHABLE
    assert describe(_wrapped(asyncpg.CannotConnectNowError("starting up"))) == DATABASE_UNREACHABLE


def test_a_slack_call_that_cannot_connect_is_not_blamed_on_the_database() -> None:
    # aiohttp's connection errors are OSErrors too
    assert describe(ClientOSError(111, "Connect call failed")).startswith("Something went wrong on our side")
