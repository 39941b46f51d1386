"""docker-compose.yml describes a fleet an operator can scale: read as Compose reads it (YAML, with the
`${VAR:-default}` interpolation done here the same way), since CI has no Docker to run `docker compose config`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.settings import Settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def _interpolated(value: Any) -> Any:
    """`${VAR:-default}` as Compose expands it with VAR unset, `$$` as a literal `$`."""
    if isinstance(value, str):
        value = re.sub(r"\$\{[A-Z_][A-Z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {key: _interpolated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item) for item in value]
    return value


def compose() -> dict[str, Any]:
    return _interpolated(yaml.safe_load(COMPOSE.read_text()))


def test_the_fleet_has_its_parts_and_only_the_proxy_publishes_a_port() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "app", "worker", "proxy"}
    assert "ports" not in services["app"], "replicas cannot share a host port: the proxy fronts them"
    assert services["app"]["expose"] == ["3000"]
    assert services["proxy"]["ports"] == ["3000:80"]
    assert services["proxy"]["image"].startswith("nginx:")
    assert services["proxy"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert "healthcheck" in services["proxy"] and "disable" not in services["proxy"]["healthcheck"]


def test_app_instances_and_workers_scale_and_wait_for_the_migration() -> None:
    services = compose()["services"]
    for name in ("app", "worker"):
        assert int(services[name]["deploy"]["replicas"]) >= 2, name
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://"), "a fleet shares Redis"
    assert services["worker"]["command"][0] == "worker"
    assert services["migrate"]["command"] == ["migrate"]


def test_the_proxy_spreads_requests_over_every_replica_and_streams_live_updates() -> None:
    config = compose()["configs"]["proxy-conf"]["content"]
    assert "resolver 127.0.0.11" in config, "Docker's DNS, asked again as replicas come and go"
    assert re.search(r"set \$app http://app:3000;", config) and "proxy_pass $app;" in config
    events = config.split("/events$", 1)[1]
    assert "proxy_buffering off;" in events.split("}", 1)[0]


def test_the_pools_fit_postgresqls_connections_at_the_default_scale() -> None:
    services = compose()["services"]
    max_connections = int(services["postgres"]["command"][2].split("=", 1)[1])
    app = int(services["app"]["environment"]["DATABASE_POOL_SIZE"]) * int(services["app"]["deploy"]["replicas"])
    processes = int(services["worker"]["command"][services["worker"]["command"].index("--processes") + 1])
    workers = (int(services["worker"]["environment"]["DATABASE_POOL_SIZE"]) * processes
               * int(services["worker"]["deploy"]["replicas"]))
    assert app + workers + 10 <= max_connections  # 10: migrations, psql, a health check's spare


def test_every_setting_the_file_passes_is_one_the_app_reads() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name in ("app", "worker", "migrate"):
        passed = set(compose()["services"][name]["environment"])
        assert passed <= known, passed - known
