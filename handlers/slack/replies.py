"""`respond()` over the app's one HTTP session.

Bolt's own `respond()` opens a new aiohttp session, hence a new connection (a new TLS handshake to
hooks.slack.com), for every reply. Replies are most of what the app sends, so a global middleware swaps
in this one, which posts to the same response_url through the Web API client's shared session: the
connection pool stays warm and a reply costs one request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import ClientSession
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient


class PooledRespond(AsyncRespond):
    def __init__(self, *, response_url: str, session: ClientSession, respond: AsyncRespond):
        super().__init__(response_url=response_url, proxy=respond.proxy, ssl=respond.ssl)
        self.session = session

    async def __call__(  # type: ignore[override]
        self, text: str | dict[str, Any] = "", blocks: Sequence[Any] | None = None, **fields: Any
    ) -> WebhookResponse:
        message = dict(text) if isinstance(text, dict) else {"text": text, "blocks": blocks, **fields}
        client = AsyncWebhookClient(url=str(self.response_url), session=self.session, proxy=self.proxy, ssl=self.ssl)
        return await client.send_dict({key: value for key, value in message.items() if value is not None})


def replies_on_shared_session() -> Callable[..., Awaitable[None]]:
    """A global middleware giving listeners a `respond()` that reuses the Web API client's session."""

    async def middleware(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> None:
        session = getattr(context.client, "session", None)
        if context.response_url and context.respond is not None and isinstance(session, ClientSession):
            context["respond"] = PooledRespond(response_url=context.response_url, session=session,
                                               respond=context.respond)
        await next()

    return middleware
