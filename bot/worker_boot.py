"""Imported by every Dramatiq worker process: set the broker, then declare the jobs on it.

With METRICS_PORT set, the metrics' shared directory is chosen first, before any module that defines a
metric is imported (`bot.worker_metrics`), and Dramatiq is asked for a process that serves them.
"""

from __future__ import annotations

from bot import worker_metrics
from bot.settings import load_settings

settings = load_settings()
worker_metrics.prepare(settings.metrics_port)

from bot.broker import create_queue  # noqa: E402 - after the metrics' directory is chosen
from bot.jobs import declare_jobs_on  # noqa: E402
from bot.logs import configure_logging, secrets_of  # noqa: E402

configure_logging(settings.log_level, settings.log_format, secrets=secrets_of(settings))
queue = create_queue(settings.redis_url, namespace=settings.redis_namespace)
declare_jobs_on(queue, settings)  # the Dramatiq CLI finds the actors on the global broker set above
if settings.metrics_port is not None:
    queue.broker.add_middleware(worker_metrics.ServeMetrics())
