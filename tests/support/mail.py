"""A real SMTP server in the test (aiosmtpd) that keeps what it receives: the `smtp` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from handlers.jobs.mail import Mailer
from services.mailer import SmtpConfig
from tests.support.network import free_port


@dataclass
class Collector:
    """An aiosmtpd handler: keeps what it receives; `refuse` answers RCPT with that reply instead."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:  # noqa: N802
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


@dataclass
class Smtp:
    collector: Collector
    port: int

    def mailer(self) -> Mailer:
        return Mailer(SmtpConfig(hostname="127.0.0.1", port=self.port, start_tls=False), "cm@example.test")


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield Smtp(collector, controller.port)
    finally:
        controller.stop()
