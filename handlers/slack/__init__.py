"""Slack listeners, one module per surface; each exposes `register(app)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.slack import campaign, home, task, team

SURFACES = (campaign, home, task, team)


def register_all(app: AsyncApp) -> None:
    for surface in SURFACES:
        surface.register(app)
