# syntax=docker/dockerfile:1
#
# Campaign Manager container image.
#
#   docker build -t campaign-manager .
#   docker run --rm -p 3000:3000 -v cm-data:/app/data \
#     -e SLACK_BOT_TOKEN=xoxb-... -e SLACK_SIGNING_SECRET=... campaign-manager
#
# Without further settings the container uses SQLite in the /app/data volume
# and the embedded in-process queue (no REDIS_URL). The image's entrypoint is
# the `campaign-manager` CLI, so arguments after the image name are a
# subcommand; create the schema once with
#   docker run --rm -v cm-data:/app/data campaign-manager migrate
# Others: worker, demo, slash "/campaign list" --user U123 (default: serve).

# Both stages must use the same interpreter: the virtualenv's bin/python is a
# symlink to /usr/local/bin/python3.11 of the base image.
ARG PYTHON_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------
# builder: install the project and its dependencies into /opt/venv
# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# All dependencies ship manylinux wheels for amd64/arm64. On a platform
# without wheels, add: apt-get update && apt-get install -y build-essential
RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from the runtime lock alone (every package of the tree
# pinned, each file checked against its hash; `make lock` writes it), so this
# layer stays cached while only application code changes.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements.lock

# Then the project itself (a regular, non-editable install: code and the
# alembic migrations are copied into site-packages, /src is not needed later).
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
 && test -x /opt/venv/bin/campaign-manager

# --------------------------------------------------------------------------
# runtime: slim image with the venv and an unprivileged user
# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=3000 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite+aiosqlite:////app/data/campaign_manager.db

RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

# Same path as in the builder, so the console-script shebangs
# (#!/opt/venv/bin/python) keep working.
COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Create and chown the data dir before declaring the volume: a fresh named
# volume is initialised from this directory, ownership included. (Bind mounts
# keep the host's ownership; make them writable for uid 10001.)
RUN mkdir -p /app/data && chown -R app:app /app
VOLUME ["/app/data"]

# Numeric uid so orchestrators can verify runAsNonRoot.
USER 10001:10001

EXPOSE 3000

# slim has no curl; urlopen raises on connection errors and HTTP >= 400,
# which makes python exit non-zero. Only meaningful for `serve`: disable it
# for worker/migrate containers (docker-compose.yml does).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=4)"]

ENTRYPOINT ["campaign-manager"]
CMD ["serve"]
