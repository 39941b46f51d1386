"""Helpers for the REST API tests: requests over real HTTP to the running app, and a few campaigns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from multidict import CIMultiDictProxy

from tests.conftest import RunningApp
from tests.home_helpers import BERLIN, planned_campaign


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any  # the parsed JSON, or the text when it is not JSON
    text: str


async def call(app: RunningApp, method: str, path: str, *, token: str | None = None, json: Any = None,
               headers: dict[str, str] | None = None, data: bytes | None = None) -> Answer:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with app.http.request(method, app.url(path), json=json, data=data, headers=sent) as response:
        text = await response.text()
        try:
            body: Any = await response.json(content_type=None) if text else None
        except ValueError:
            body = text
        return Answer(response.status, response.headers, body, text)


async def campaigns_launching(app: RunningApp, count: int, *, owner: str = "U0ALICE") -> list[dict[str, int]]:
    """`count` planned campaigns, launching a day apart (the first in 30 days), each with its task ids."""
    start = datetime.now(BERLIN).date() + timedelta(days=30)
    return [await planned_campaign(app, owner=owner, launch=start + timedelta(days=i), name=f"Campaign {i}")
            for i in range(count)]


def launch_in(days: int) -> date:
    return datetime.now(BERLIN).date() + timedelta(days=days)
