"""The app's Prometheus metrics, stated once: every name, unit, label set, and how a label gets its value.

The objects live on prometheus_client's default registry, one per process (the client's own model), and
every module that records something imports them from here. `serve` exposes them at /metrics
(`handlers.web.metrics`, together with the gauges it reads from the database at scrape time); a worker
process on METRICS_PORT (`bot.worker_metrics`).

Label values are bounded: route templates, Slack method names, notification kinds and delivery channels,
status classes. Never a raw path, an id, a user, a channel or text: a value that does not look like one
of ours is counted as "other", so a forged or odd request cannot grow a series per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from services.kinds import Kind

OTHER = "other"
# Web latencies: an ack is milliseconds, a dashboard page tens, Slack's own limit 3 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A sweep or a re-plan: milliseconds when idle, seconds for the daily re-plan of a thousand campaigns.
WORK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "cm_http_requests_total", "HTTP requests answered, by route template, method and status class (2xx, 4xx...).",
    ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "cm_http_request_duration_seconds", "Time to answer an HTTP request (a live stream: how long it stayed open).",
    ["route"], buckets=LATENCY_BUCKETS)
SLACK_REQUESTS = Counter(
    "cm_slack_requests_total", "Signed Slack requests handed to Bolt, by payload type and name "
    "(the command, event type, callback or action id).", ["type", "name"])
SLACK_API_CALLS = Counter(
    "cm_slack_api_calls_total", "Slack Web API calls, each attempt, by method and outcome "
    "(ok, refused, rate_limited, server_error, network_error).", ["method", "outcome"])
SLACK_API_RATE_LIMITED = Counter(
    "cm_slack_api_rate_limited_total", "Slack Web API answers of 429 (rate limited), by method.", ["method"])
DELIVERIES = Counter(
    "cm_deliveries_total", "Delivery attempts of outbox rows, by kind, channel (slack, email, webhook, agent) "
    "and outcome (sent, retry, rate_limited, paced, failed...).", ["kind", "channel", "outcome"])
SWEEPS = Counter(
    "cm_sweeps_total", "Sweeps by outcome: ran, locked (another process was sweeping), failed.", ["outcome"])
SWEEP_DURATION = Histogram(
    "cm_sweep_duration_seconds", "Time one sweep took, hand-out included (sweeps that ran).", buckets=WORK_BUCKETS)
REPLAN_DURATION = Histogram(
    "cm_replan_duration_seconds", "Time one re-plan took (one campaign's, or the sweep's batch).",
    buckets=WORK_BUCKETS)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SLACK_PAYLOAD_TYPES = frozenset({"command", "event_callback", "block_actions", "block_suggestion", "view_submission",
                                 "view_closed", "shortcut", "message_action", "url_verification"})
# Our commands, callbacks and action ids are words; one with a digit in it carries an id: not a label.
_NAME = re.compile(r"^/?[A-Za-z_.:-]{1,48}$")
_SLACK_METHOD = re.compile(r"^[a-z]+(\.[A-Za-z]+){1,3}$")
_KINDS = frozenset(kind.value for kind in Kind)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else OTHER


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def kind_label(kind: str) -> str:
    return kind if kind in _KINDS else OTHER


def observe_replan(seconds: float) -> None:
    """Told by `services.plans` after each re-plan (wired by bot/: services know no metrics library)."""
    REPLAN_DURATION.observe(seconds)


# ------------------------------------------------------------------ Slack requests (a Bolt middleware)


def slack_payload_labels(body: Mapping[str, Any]) -> tuple[str, str]:
    """(type, name) of a Slack request body as Bolt parsed it: `command` and `/campaign`, `event_callback`
    and `app_home_opened`, `view_submission` and its callback id, `block_actions` and the first action id."""
    if "command" in body:
        kind, name = "command", body.get("command")
    else:
        kind = str(body.get("type") or "")
        name = None
        if kind == "event_callback":
            name = (body.get("event") or {}).get("type")
        elif kind in ("view_submission", "view_closed"):
            name = (body.get("view") or {}).get("callback_id")
        elif kind in ("shortcut", "message_action"):
            name = body.get("callback_id")
        elif kind in ("block_actions", "block_suggestion"):
            actions = body.get("actions") or [body]
            name = actions[0].get("action_id") if isinstance(actions[0], Mapping) else None
    if kind not in SLACK_PAYLOAD_TYPES:
        return OTHER, ""
    return kind, _bounded_name(name)


def _bounded_name(name: object) -> str:
    if name is None or name == "":
        return ""
    return name if isinstance(name, str) and _NAME.match(name) else OTHER


async def count_slack_requests(body: dict[str, Any], next: Any) -> None:  # noqa: A002 - Bolt passes `next` by name
    """A Bolt global middleware: one count per signed request, before any listener runs."""
    SLACK_REQUESTS.labels(*slack_payload_labels(body)).inc()
    await next()


# ------------------------------------------------------------------ Slack Web API calls


class CountSlackCalls(AsyncRetryHandler):
    """Counts every attempt of a Web API call, 429s apart, and never asks for a retry itself.

    slack_sdk hands each response (and each connection error) to the client's retry handlers in turn
    until one retries: placed first, this one sees every attempt, including those a rate-limit handler
    after it then retries, without wrapping the client or its session.
    """

    async def can_retry_async(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                              error: Exception | None = None) -> bool:
        method = slack_method(request.url)
        if error is not None or response is None:
            outcome = "network_error"
        elif int(response.status_code) == 429:
            outcome = "rate_limited"
            SLACK_API_RATE_LIMITED.labels(method).inc()
        elif int(response.status_code) >= 500:
            outcome = "server_error"
        elif isinstance(response.body, Mapping) and response.body.get("ok") is False:
            outcome = "refused"
        else:
            outcome = "ok"
        SLACK_API_CALLS.labels(method, outcome).inc()
        return False


def slack_method(url: str) -> str:
    """`chat.postMessage` from `https://slack.com/api/chat.postMessage?…`."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name if _SLACK_METHOD.match(name) else OTHER


def counting(handlers: list[AsyncRetryHandler]) -> list[AsyncRetryHandler]:
    """A client's retry handlers with the counter in front (it must come first to see every attempt)."""
    return [CountSlackCalls(), *handlers]
