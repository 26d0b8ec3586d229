"""Connecting to the Docker engine, with one clear error when none answers."""

from __future__ import annotations

import os
from typing import Any

from rebuild.errors import DockerUnavailableError

# Said whenever the engine is missing: the one thing a user can do about it.
START_HINT = (
    "start a Docker engine: as root run ./setup.sh (it installs docker.io and starts dockerd), "
    "or `sudo systemctl start docker`; set DOCKER_HOST if it listens elsewhere"
)


def connect(timeout: int = 300) -> Any:
    """Return a docker client whose engine has answered a ping.

    The timeout is per API call; it is long because ``docker load`` of a
    builder image moves half a gigabyte. A down engine fails at once anyway.

    Raises:
        DockerUnavailableError: the SDK is missing or no engine answers.
    """
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as e:  # pragma: no cover - a broken install
        raise DockerUnavailableError("the docker Python SDK is not installed", START_HINT) from e
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as e:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise DockerUnavailableError(f"no Docker engine answers at {where}", START_HINT) from e
    return client


def engine_version(client: Any) -> str:
    """The engine's version string, for reports."""
    return str(client.version().get("Version", "unknown"))
