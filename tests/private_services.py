"""A PostgreSQL and a Redis of the test's own, on ports of their own, that a fault test may stop.

The machine's shared servers (5432, 6379) are never touched: these are started in a fresh temporary
directory, stopped and restarted at will, and removed when the `with` block ends, whatever happened.
PostgreSQL refuses to run as root, so when the tests run as root its commands run as the `postgres`
user (a temporary directory that user owns holds the cluster).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.network import free_port

PG_USER = "postgres"
START_TIMEOUT = 30  # seconds pg_ctl waits for the server (a loaded machine is slow, not broken)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.skip(f"{name} (PostgreSQL server binaries) is not installed")
    return found[-1]


def _as_owner() -> dict[str, object]:
    """subprocess options that run a command as the cluster's owner: `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    owner = pwd.getpwnam(PG_USER)
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run([_pg_bin("pg_ctl"), "-D", str(self.data), *args], check=True, capture_output=True,
                       timeout=START_TIMEOUT + 10, **_as_owner())  # type: ignore[call-overload]

    def start(self) -> None:
        """Returns once the server accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.root / "server.log"), "-t", str(START_TIMEOUT), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Returns once the server is down: `fast` ends every session, as an operator's restart does."""
        self._pg_ctl("-m", mode, "-t", str(START_TIMEOUT), "-w", "stop")

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh, running cluster (user `postgres`, trust auth); stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cm-pg-"))
    options = _as_owner()
    if options:
        os.chown(root, int(options["user"]), int(options["group"]))  # type: ignore[call-overload]
    server = PrivatePostgres(root=root, port=free_port())
    try:
        subprocess.run([_pg_bin("initdb"), "-D", str(server.data), "-A", "trust", "-U", PG_USER, "--no-sync",
                        "-E", "UTF8"], check=True, capture_output=True, timeout=120, **options)  # type: ignore[call-overload]
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):  # already stopped by the test, or never started
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis with no persistence on a port of its own; terminated afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        yield PrivateRedis(port=port, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)  # a process starting up: nothing to wait on but its port
    raise RuntimeError(f"redis-server did not listen on {port} within {timeout} s")
