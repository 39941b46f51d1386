"""Helpers shared by the tests: waiting on definite signals (waiting.py)."""
