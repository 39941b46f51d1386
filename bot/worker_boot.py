"""Imported by every Dramatiq worker process: set the broker, then declare the jobs on it."""

from __future__ import annotations

from bot.broker import create_queue
from bot.jobs import declare_jobs_on
from bot.logs import configure_logging
from bot.settings import load_settings

settings = load_settings()
configure_logging(settings.log_level, settings.log_format)
queue = create_queue(settings.redis_url, namespace=settings.redis_namespace)
declare_jobs_on(queue, settings)  # the Dramatiq CLI finds the actors on the global broker set above
