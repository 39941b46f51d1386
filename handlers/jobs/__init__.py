"""Dramatiq jobs. They take ids, open their own unit of work and call services.

Importing this package records every job; `declare_jobs(broker, env)` binds them to a broker.
"""

from handlers.jobs import email_events, notifications, team  # noqa: F401  (records their jobs)
from handlers.jobs.environment import JobEnvironment
from handlers.jobs.registry import JOBS, declare_jobs

__all__ = ["JOBS", "JobEnvironment", "declare_jobs"]
