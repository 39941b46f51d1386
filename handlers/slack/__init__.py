"""Slack listeners, one module per surface; each exposes `register(app)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.slack import (
    api_tokens,
    approval,
    assets,
    campaign,
    dashboard,
    delivery_actions,
    home,
    task,
    task_actions,
    team,
    unfurl,
)

SURFACES = (api_tokens, approval, assets, campaign, dashboard, delivery_actions, home, task, task_actions, team, unfurl)


def register_all(app: AsyncApp) -> None:
    for surface in SURFACES:
        surface.register(app)
