"""A worker's metrics on METRICS_PORT: what all its Dramatiq processes counted, summed, in one scrape.

`campaign-manager worker --processes N` forks N processes that each count deliveries and Slack calls
(`handlers.metrics`). They write their values to files in one directory (prometheus_client's multiprocess
mode), and one more process, forked by Dramatiq from the same parent for this middleware (`forks`),
serves their sum over HTTP. The directory is per run (named after that parent), so a restart starts from
zero as counters should; it is removed when the serving process stops.

`prepare` must run before the first metric is made, in every worker process: `bot.worker_boot` calls it
before it imports anything that defines one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import dramatiq

log = logging.getLogger(__name__)

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own; an operator may set it


def directory() -> str:
    """The run's directory: the same in every worker process and in the serving one (siblings, one parent)."""
    return os.environ.get(DIRECTORY_VARIABLE) or os.path.join(
        tempfile.gettempdir(), f"campaign-manager-worker-metrics-{os.getppid()}")


def prepare(port: int | None) -> None:
    """With a port: every metric made from now on in this process goes to the run's shared directory."""
    if port is None:
        return
    path = directory()
    os.makedirs(path, exist_ok=True)
    os.environ[DIRECTORY_VARIABLE] = path
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()  # read when each metric is made: chosen before any is


class ServeMetrics(dramatiq.Middleware):
    """Asks Dramatiq for one process beside the workers that serves their metrics (`serve`)."""

    @property
    def forks(self) -> list:  # type: ignore[type-arg]
        return [serve]


def serve() -> int:
    """The serving process's body: the workers' summed metrics on METRICS_PORT until Dramatiq stops it."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    from bot.settings import load_settings

    port = load_settings().metrics_port
    if port is None:
        return 0
    path = directory()
    os.makedirs(path, exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    server, thread = start_http_server(port, registry=registry)
    log.info("worker metrics on port %d", port)
    try:
        thread.join()
    finally:
        server.shutdown()
        shutil.rmtree(path, ignore_errors=True)
    return 0
