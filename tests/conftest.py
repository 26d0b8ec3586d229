"""Shared fixtures. Docker tests skip locally without an engine but fail under CI=true."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
VECTORS = DATA / "vectors"  # written by other projects; see its README.md and the LICENSE files beside them
ASSETS = Path(__file__).resolve().parent / "assets"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from rebuild.build.docker import connect
    from rebuild.errors import DockerUnavailableError

    try:
        return connect()
    except DockerUnavailableError as e:
        if _in_ci():
            pytest.fail(f"CI=true and Docker is required: {e.message}")
        pytest.skip(f"no Docker engine: {e.message}")


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache for the whole run, never the user's: every `rebuild` the tests start inherits it.

    Builder images live in the Docker engine, so the ones ./setup.sh built are still found by their tag.
    """
    path = tmp_path_factory.mktemp("rebuild-cache")
    previous = os.environ.get("REBUILD_CACHE_DIR")
    os.environ["REBUILD_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("REBUILD_CACHE_DIR", None)
    else:
        os.environ["REBUILD_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def builder_image(docker_client: Any, cache_dir: Path) -> str:
    """The digest of the default builder image (built by ./setup.sh; built here if missing)."""
    from rebuild.build.images import ImageBuilder
    from rebuild.recipes import RecipeBook

    spec = RecipeBook().get("command").image
    return str(ImageBuilder(docker_client, cache_dir).ensure(spec).digest)


@pytest.fixture(scope="session", autouse=True)
def session_label() -> str:
    """Every container this run makes carries this label (inherited by the `rebuild` processes it starts)."""
    from rebuild.build.sandbox import SESSION_ENV

    os.environ[SESSION_ENV] = f"tests-{uuid.uuid4().hex[:12]}"
    return os.environ[SESSION_ENV]


@pytest.fixture()
def no_leftover_containers(docker_client: Any, session_label: str) -> Iterator[None]:
    """No container of this run is left behind (another run's, on a shared engine, are not ours to judge)."""
    from rebuild.build.sandbox import SESSION_LABEL

    yield
    left = docker_client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session_label}"})
    assert left == [], f"sandbox containers left behind: {[c.name for c in left]}"


@pytest.fixture(autouse=True)
def _fresh_url_opener() -> Iterator[None]:
    """urllib builds its global opener, proxies included, at the first urlopen of a process: a test that ran
    the CLI with a dead proxy in its environment (the fuzz tests keep documents offline that way) must not
    leave that opener to the tests after it in the same process (pytest-xdist runs several files in one).
    """
    import urllib.request

    yield
    urllib.request.install_opener(None)  # type: ignore[arg-type]  # None: the next urlopen builds a fresh one


@pytest.fixture(scope="session", autouse=True)
def _vectors_present() -> None:
    assert VECTORS.is_dir(), f"test vectors missing at {VECTORS}"
