"""The layers hold: read from the source with `ast`, so an import hidden under TYPE_CHECKING counts too.

- handlers/ never import bot/: entry points depend on the ports of `handlers.ports`, which bot implements
  (and bot/broker.py imports nothing from handlers, so the two never import in a circle);
- services/ call nobody over the network: no Slack, HTTP, SMTP, broker or Redis client;
- bot's Settings and Queue satisfy the ports, member by member and type by type.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from bot.broker import Queue, create_queue
from bot.settings import Settings
from handlers.ports import Config, JobConfig, JobQueue, JobSender

ROOT = Path(__file__).resolve().parent.parent
NETWORK_CLIENTS = frozenset({"slack_sdk", "slack_bolt", "aiohttp", "aiosmtplib", "smtplib", "dramatiq", "redis"})
# Known offenders, each with the module it imports. An entry that no longer occurs fails the test too, so
# the list only shrinks.
SERVICES_ALLOWED: set[tuple[str, str]] = set()


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in the file, wherever it stands (functions, TYPE_CHECKING)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def offences(folder: str, top_level_names: frozenset[str]) -> list[tuple[str, int, str]]:
    """(file, line, module) for each import under `folder` of a package named in `top_level_names`."""
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in imports(path):
            if module.partition(".")[0] in top_level_names:
                found.append((path.relative_to(ROOT).as_posix(), line, module))
    return found


def test_the_guard_sees_imports_under_type_checking_and_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.settings import Settings\n"
        "def later():\n    import bot.broker\n"
        "from . import sibling\n"  # relative: never bot
    )
    assert [module for _, module in imports(source)] == ["typing", "bot.settings", "bot.broker"]


def test_handlers_never_import_bot() -> None:
    assert offences("handlers", frozenset({"bot"})) == []


def test_the_broker_imports_nothing_from_handlers() -> None:
    assert [module for _, module in imports(ROOT / "bot/broker.py") if module.partition(".")[0] == "handlers"] == []


def test_services_make_no_network_calls() -> None:
    found = offences("services", NETWORK_CLIENTS)
    assert [(file, line, module) for file, line, module in found if (file, module) not in SERVICES_ALLOWED] == []
    stale = SERVICES_ALLOWED - {(file, module) for file, _, module in found}
    assert not stale, f"no longer imported, drop from SERVICES_ALLOWED: {sorted(stale)}"


def _port_members(port: type) -> list[str]:
    """The port's members, those it inherits from other ports (`DeliveryConfig`) included."""
    ports = [cls for cls in port.__mro__ if cls.__module__ == port.__module__]
    return sorted({name for cls in ports for name in vars(cls) if not name.startswith("_")})


def _read_type(owner: type, name: str) -> Any:
    """The type a reader gets from `owner.name`: a pydantic field's, or a property's return type."""
    fields = getattr(owner, "model_fields", {})
    if name in fields:
        return fields[name].annotation
    member = inspect.getattr_static(owner, name)
    assert isinstance(member, property), f"{owner.__name__}.{name} is neither a field nor a property"
    return get_type_hints(member.fget)["return"]


@pytest.mark.parametrize("port", [Config, JobConfig])
def test_settings_give_every_config_port_member_with_its_type(port: type) -> None:
    assert isinstance(Settings.model_construct(), port)
    for name in _port_members(port):
        assert _read_type(Settings, name) == _read_type(port, name), f"Settings.{name} differs from {port.__name__}"


@pytest.mark.parametrize("port", [JobSender, JobQueue])
def test_the_broker_queue_gives_every_queue_port_member_with_its_signature(port: type) -> None:
    queue = create_queue(None)
    try:
        assert isinstance(queue, port)
    finally:
        queue.broker.close()
    for name in {*_port_members(port), *_port_members(JobSender)}:
        ours, theirs = inspect.getattr_static(Queue, name), inspect.getattr_static(port, name)
        if isinstance(theirs, property):
            assert _read_type(Queue, name) == _read_type(port, name), f"Queue.{name} differs from {port.__name__}"
        else:
            assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name
            assert inspect.signature(ours) == inspect.signature(theirs), f"Queue.{name} differs from {port.__name__}"


# Slack calls that send a message or publish a surface: only the delivery job makes them, for rows of the
# outbox. Listeners answer a person with ack/respond, open or update the modal the person is in, and ask.
SENDING_CALLS = frozenset({"chat_postMessage", "chat_postEphemeral", "chat_update", "chat_scheduleMessage",
                           "chat_unfurl", "views_publish", "files_upload_v2", "api_call"})
SENDER = Path("handlers/jobs/delivery.py")


def sending_calls(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in SENDING_CALLS:
            yield node.lineno, node.attr


def test_only_the_delivery_job_sends_to_slack() -> None:
    found = [(str(path.relative_to(ROOT)), line, name)
             for folder in ("bot", "handlers", "services", "blocks", "models")
             for path in sorted((ROOT / folder).rglob("*.py")) if path.relative_to(ROOT) != SENDER
             for line, name in sending_calls(path)]
    assert found == []
    assert {name for _, name in sending_calls(ROOT / SENDER)} == {"chat_postMessage", "chat_update", "views_publish",
                                                                     "chat_unfurl"}
