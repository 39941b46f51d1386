"""Dramatiq actors. They take ids, open their own unit of work and call services.

Import this package only after `bot.broker.create_queue` has set the broker.
"""
