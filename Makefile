# The two commands of the README: `make run` and `make test`. Each sets itself up on first use.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

# The locks pin the whole dependency tree, with hashes, for every platform on Python 3.11 and newer:
# requirements-dev.lock (runtime + dev) for the venv and CI, requirements.lock (runtime) for the image.
# The runtime lock is resolved within the dev lock, so the image runs the versions the tests ran.
# `make lock` keeps the pins it can; `make lock LOCK_UPGRADE=--upgrade` moves everything to the newest.
LOCK_UPGRADE ?=
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" $(LOCK_UPGRADE)

.PHONY: run test lint lock clean

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements-dev.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/campaign-manager demo --if-empty
	$(VENV)/bin/campaign-manager serve

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services blocks models bot handlers

# After changing pyproject.toml's dependencies: regenerate both locks, then commit them with it.
# Needs only uv, not an install from the lock being replaced (which may be missing or stale).
lock: $(VENV)/bin/uv
	$(LOCK) --extra dev --output-file requirements-dev.lock
	$(LOCK) --constraint requirements-dev.lock --output-file requirements.lock

$(VENV)/bin/uv:  # normally installed from requirements-dev.lock; this bootstraps a venv without one
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache campaign_manager.db*
