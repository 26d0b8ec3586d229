"""Real servers for the service tests, all on 127.0.0.1 and random free ports, stopped at teardown:
``redis-server`` (Debian's package) and a throwaway PostgreSQL cluster (Debian's initdb and pg_ctl, run as
the ``postgres`` user when the tests run as root). Missing programs skip locally and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _in_ci
from tests.integration.service.servers import (
    RedisServer,
    create_database,
    free_port,
    postgres_bindir,
    postgres_cluster,
    wait_for,
)

__all__ = ["RedisServer", "wait_for"]


def need(what: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true and {what} is required (./setup.sh installs it)")
    pytest.skip(f"{what} is not installed (./setup.sh installs it)")


@pytest.fixture()
def no_leftover_service_containers(docker_client: Any, session_label: str) -> Iterator[None]:
    """No sandbox container of a service worker of this run outlives the test (each carries its worker's label
    and the run's session label; another run's, or another pytest-xdist process's, are not ours to judge).
    """
    from rebuild.build.sandbox import SESSION_LABEL
    from rebuild.service.runner import WORKER_LABEL

    yield
    mine = {"label": [WORKER_LABEL, f"{SESSION_LABEL}={session_label}"]}
    left = docker_client.containers.list(all=True, filters=mine, ignore_removed=True)
    assert left == [], f"service containers left behind: {[c.name for c in left]}"


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        need("redis-server")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway cluster for the whole run, stopped after it."""
    if postgres_bindir() is None:
        need("PostgreSQL (Debian's postgresql package)")
    with postgres_cluster() as url:
        yield url


@pytest.fixture()
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A new database in the cluster for one test."""
    import psycopg

    name = f"t{os.getpid()}_{time.monotonic_ns()}"
    yield create_database(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store tests on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return str(request.getfixturevalue("fresh_postgres"))
