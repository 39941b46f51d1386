"""The public configuration contract: every setting the app reads, from the environment or `.env`.

The variable names are a promise to operators; rename nothing without a deprecation path.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./campaign_manager.db"
SLACK_DEFAULT_API_URL = "https://slack.com/api/"
DB_POOL_RESERVE = 2  # connections kept from listeners: the sweeper's and a health check's


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_namespace: str = Field(default="campaign-manager", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")  # key prefix
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = SLACK_DEFAULT_API_URL
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    public_url: str = ""  # unset: where `serve` listens (see _public_url_default)
    dashboard_secret: SecretStr | None = None
    dashboard_link_days: int = Field(default=7, ge=1, le=365)  # how long a link from /dashboard or the Home lasts
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "console"
    sweep_interval_seconds: int = Field(default=60, ge=1, le=86400)
    admin_user_ids: Annotated[frozenset[str], NoDecode] = frozenset()
    templates_dir: Path | None = None  # teams' own campaign templates, added to or overriding the built-ins
    team_holidays: Annotated[frozenset[date], NoDecode] = frozenset()  # no one works these days
    smtp_url: str | None = None  # smtp://user:pass@host:587?starttls=1; unset = no email (Slack instead)
    email_from: str = "campaign-manager@localhost"
    # Slack takes about one message per second per channel; 0 turns pacing off (429s still pace us).
    slack_channel_pace_seconds: float = Field(default=1.0, ge=0, le=60)
    # How long a worker holds a notification it is sending; a worker that dies frees it after this.
    notification_lease_seconds: int = Field(default=120, ge=1, le=3600)
    # Bursts: the most connections one process opens to PostgreSQL, and how many listeners may work on the
    # database at once (unset: the pool less DB_POOL_RESERVE for the sweeper and health checks). A listener
    # that finds no free slot within SLOT_WAIT_SECONDS is answered "busy, try again in a moment".
    database_pool_size: int = Field(default=20, ge=1, le=500)  # per process: each `serve`, each worker process
    # PostgreSQL cancels a statement (a lock wait included) running longer than this; 0: no limit.
    database_statement_timeout_ms: int = Field(default=30_000, ge=0, le=3_600_000)
    max_inflight: int | None = Field(default=None, ge=1, le=500)
    slot_wait_seconds: float = Field(default=0.5, gt=0, le=2)  # view submissions wait before their ack: << 3 s
    # Deploys: after SIGTERM, how long listeners, their replies, the sweep and jobs get to finish.
    shutdown_grace_seconds: float = Field(default=20, ge=0, le=600)
    # The marketing agent told of each launch (MCP over streamable HTTP); unset: no hand-off. The token,
    # when set, goes as `Authorization: Bearer` and nowhere else (never logged, never in the URL).
    marketing_agent_url: str | None = None
    marketing_agent_token: SecretStr | None = None
    # Mailjet's event webhook (POST /webhooks/mailjet) must present it (basic auth password or ?secret=);
    # unset or blank: the endpoint is off (404).
    mailjet_webhook_secret: SecretStr | None = None
    # /metrics and /health/detailed answer a request from this machine; from elsewhere only with
    # `Authorization: Bearer <OPS_TOKEN>` (unset: from this machine only).
    ops_token: SecretStr | None = None
    # A `worker` serves its processes' metrics on this port (Prometheus text at any path); unset: none.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # REST API requests per token per minute, counted across every instance (in Redis when there is one);
    # unset: 600 (handlers.web.api_v1.limits.LIMIT_PER_WINDOW).
    api_rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    _public_url_guessed: bool = PrivateAttr(default=False)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the URLs people paste (postgres://, sqlite:///) and pin the async drivers we ship."""
        value = value.strip()
        for prefix, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(prefix):
                return driver + value[len(prefix) :]
        if value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            return value
        raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")

    @field_validator("max_inflight", "api_rate_limit_per_minute", mode="before")
    @classmethod
    def _blank_is_derived(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url", "slack_app_token", "slack_bot_token", "slack_signing_secret", "dashboard_secret",
                     "smtp_url", "marketing_agent_url", "marketing_agent_token", "ops_token", "metrics_port",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_api_url", mode="before")
    @classmethod
    def _blank_is_slack(cls, value: object) -> object:
        return SLACK_DEFAULT_API_URL if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from services.mailer import SmtpConfig  # the one SMTP_URL parser (the sending is handlers/jobs/mail)

        SmtpConfig.from_url(value)  # raises ValueError naming what is wrong
        return value.strip()

    @field_validator("marketing_agent_url")
    @classmethod
    def _agent_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip()
        try:
            parts = urlsplit(url)
            port = parts.port  # raises on a port that is not a number or out of range
        except ValueError:
            raise ValueError("must be an http:// or https:// URL, like https://agent.example.com/mcp") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0:
            raise ValueError("must be an http:// or https:// URL with a host, like https://agent.example.com/mcp")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
            raise ValueError("must not contain spaces or control characters")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            # A credential in the URL would be shown wherever the URL is: it belongs in MARKETING_AGENT_TOKEN.
            raise ValueError("must not carry a user name or password; set MARKETING_AGENT_TOKEN instead")
        return url

    @field_validator("marketing_agent_token")
    @classmethod
    def _agent_token(cls, value: SecretStr | None) -> SecretStr | None:
        # It goes into a header line as is; the message never repeats it.
        if value is not None and any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value.get_secret_value()):
            raise ValueError("must not contain spaces or control characters")
        return value

    @field_validator("email_from", mode="before")
    @classmethod
    def _email_from(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or "campaign-manager@localhost"
            local, at, domain = value.rpartition("<")[2].rstrip(">").partition("@")
            if not at or not local or not domain or any(c in value for c in "\r\n"):
                raise ValueError("must be an email address, like campaign-manager@example.com")
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _blank_is_default(cls, value: object) -> object:
        return "" if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_api_url", "public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins base_url and the method name by plain concatenation.
        return value if value.endswith("/") else value + "/"

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("team_holidays", mode="before")
    @classmethod
    def _holiday_list(cls, value: object) -> object:
        if isinstance(value, str):
            days = set()
            for part in (piece.strip() for piece in value.split(",")):
                if part:
                    try:
                        days.add(date.fromisoformat(part))
                    except ValueError:
                        raise ValueError(f"{part!r} is not a YYYY-MM-DD date") from None
            return frozenset(days)
        return value

    @field_validator("templates_dir", mode="before")
    @classmethod
    def _blank_dir(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _public_url_default(self) -> Settings:
        # Links (the dashboard, the Home tab) must lead back to this server; without a PUBLIC_URL the best
        # guess is where it listens. Remembered as a guess, so `serve --port` moves it along.
        self._public_url_guessed = not self.public_url
        if self._public_url_guessed:
            self.public_url = listen_url(self.host, self.port)
        return self

    def listening_on(self, *, host: str | None, port: int | None) -> Settings:
        """These settings with `serve --host/--port` applied; a guessed public URL follows them."""
        host, port = host or self.host, port or self.port
        update: dict[str, object] = {"host": host, "port": port}
        if self._public_url_guessed:
            update["public_url"] = listen_url(host, port)
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _slack_pairing(self) -> Settings:
        # Over HTTP every request must be verified, so a token without a secret is a misconfiguration.
        if self.slack_bot_token and not self.slack_app_token and not self.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET: required when SLACK_BOT_TOKEN is set (HTTP mode)")
        if self.slack_app_token and not self.slack_bot_token:
            raise ValueError("SLACK_BOT_TOKEN: required when SLACK_APP_TOKEN is set (Socket Mode)")
        return self

    @model_validator(mode="after")
    def _inflight_fits_the_pool(self) -> Settings:
        if self.max_inflight is not None and self.max_inflight > self.database_pool_size:
            raise ValueError(
                f"MAX_INFLIGHT: at most DATABASE_POOL_SIZE ({self.database_pool_size}); "
                "more would only wait on the pool"
            )
        return self

    @property
    def inflight_limit(self) -> int:
        """How many listeners may work on the database at once: MAX_INFLIGHT, or the pool less a reserve."""
        if self.max_inflight is not None:
            return self.max_inflight
        return max(1, self.database_pool_size - DB_POOL_RESERVE)

    @property
    def embedded(self) -> bool:
        """No Redis: queue, cache and pub/sub run inside the app process."""
        return self.redis_url is None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def email_enabled(self) -> bool:
        return self.smtp_url is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def listen_url(host: str, port: int) -> str:
    """`http://host:port` as a browser on this machine reaches it: all interfaces are reached at localhost."""
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        if not name and ":" in message:  # model-level checks name their variable themselves
            lines.append(f"Configuration error: {message}")
        else:
            lines.append(f"Configuration error: {name}: {message}")
    return "\n".join(lines)
