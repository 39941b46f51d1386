"""The ports handlers depend on: the configuration they read and the queue they send jobs through.

`bot/` implements them (`bot.settings.Settings`, `bot.broker.Queue`, checked in tests/test_layers.py) and
hands them over in `Deps` and the job environment, so handlers never import `bot/`: wiring knows the
entry points, never the reverse. Each port lists only what handlers use; a new need is a new line here.
Members are read-only properties: handlers read configuration, they never change it.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr


@runtime_checkable
class DeliveryConfig(Protocol):
    """What building a delivery reads: its mail, pacing, lease and the marketing agent it hands launches to.
    The jobs read it, and so does the inline delivery of a process without a worker (`handlers.slack.notify`):
    both build it the same way (`handlers.jobs.environment.outbound`). Listeners read
    `marketing_agent_url` too: a launch is handed off only when an agent is configured."""

    @property
    def smtp_url(self) -> str | None: ...
    @property
    def email_from(self) -> str: ...
    @property
    def redis_namespace(self) -> str: ...
    @property
    def slack_channel_pace_seconds(self) -> float: ...
    @property
    def notification_lease_seconds(self) -> int: ...
    @property
    def marketing_agent_url(self) -> str | None: ...
    @property
    def marketing_agent_token(self) -> SecretStr | None: ...


@runtime_checkable
class Config(DeliveryConfig, Protocol):
    """What Slack listeners and web routes read from the configuration."""

    @property
    def admin_user_ids(self) -> frozenset[str]: ...
    @property
    def team_holidays(self) -> frozenset[date]: ...
    @property
    def sweep_interval_seconds(self) -> int: ...
    @property
    def public_url(self) -> str: ...
    @property
    def dashboard_secret(self) -> SecretStr | None: ...
    @property
    def slack_signing_secret(self) -> SecretStr | None: ...
    @property
    def mailjet_webhook_secret(self) -> SecretStr | None: ...
    @property
    def ops_token(self) -> SecretStr | None:
        """Lets a request from another machine see /metrics and /health/detailed (handlers.web.operators)."""
        ...
    @property
    def api_rate_limit_per_minute(self) -> int | None: ...
    @property
    def dashboard_link_days(self) -> int:
        """How long a dashboard link made from Slack (`/dashboard`, the Home's button) lasts."""
        ...
    @property
    def embedded(self) -> bool:
        """No Redis: the queue, cache and pub/sub live inside the app process."""
        ...


@runtime_checkable
class JobConfig(DeliveryConfig, Protocol):
    """What the jobs' environment reads to build its own database, Slack, mail and Redis clients."""

    @property
    def database_url(self) -> str: ...
    @property
    def slack_bot_token(self) -> SecretStr | None: ...
    @property
    def slack_api_url(self) -> str: ...
    @property
    def redis_url(self) -> str | None: ...
    @property
    def database_pool_size(self) -> int: ...
    @property
    def database_statement_timeout_ms(self) -> int: ...


@runtime_checkable
class JobSender(Protocol):
    """The one way to send a job: listeners, the sweep and a job's own follow-ups all go through it."""

    async def enqueue(self, job_name: str, *, delay_ms: int | None = None, **kwargs: Any) -> None:
        """Send job `job_name` with keyword arguments `kwargs`, after `delay_ms` if given; raises when the
        broker is unreachable."""
        ...


@runtime_checkable
class JobQueue(JobSender, Protocol):
    """The queue as the web side sees it: sending, whether anything will run what it sends, its health."""

    @property
    def has_consumer(self) -> bool:
        """False only in embedded mode without its worker: nothing would ever run a job sent now, so a
        caller that must not wait for the sweep does the work inline instead."""
        ...

    def stats(self) -> dict[str, Any]:
        """Queue depths for /health/detailed; raises if the broker's backend is unreachable (blocking)."""
        ...
