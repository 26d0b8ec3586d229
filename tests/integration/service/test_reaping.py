"""Two services on one Docker engine: a worker reaps only its own service's containers, never another's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from rebuild.build.sandbox import LABEL, SESSION_ENV, SESSION_LABEL
from rebuild.service.config import ServicePaths, init_service, service_id_of
from rebuild.service.runner import SERVICE_LABEL, WORKER_LABEL, reap_containers
from rebuild.service.store import Store

pytestmark = pytest.mark.docker


def _container(docker_client: Any, image: str, service: str, worker: str) -> Any:
    labels = {LABEL: "1", WORKER_LABEL: worker, SERVICE_LABEL: service, SESSION_LABEL: os.environ[SESSION_ENV]}
    return docker_client.containers.create(image, ["true"], labels=labels, network_mode="none")


def test_a_worker_never_reaps_another_services_containers(docker_client: Any, builder_image: str) -> None:
    ours = _container(docker_client, builder_image, "service-a", "gone-worker")
    theirs = _container(docker_client, builder_image, "service-b", "busy-worker")
    try:
        removed = reap_containers(docker_client, "service-a", live_workers=set())
        assert removed == [ours.name]  # a dead worker of ours: removed
        left = {c.id for c in docker_client.containers.list(all=True, filters={"label": f"{SERVICE_LABEL}=service-b"})}
        assert theirs.id in left  # service b's worker is not in our store, yet its build is not ours to remove
        assert reap_containers(docker_client, "service-b", live_workers={"busy-worker"}) == []  # alive in b
        assert reap_containers(docker_client, "service-b", live_workers=set()) == [theirs.name]
    finally:
        for c in (ours, theirs):
            with contextlib.suppress(Exception):  # already reaped
                c.remove(force=True)


def test_init_gives_each_service_its_own_id_and_keeps_it(tmp_path: Path) -> None:
    ids = []
    for name in ("a", "b"):
        paths = ServicePaths.of(None, tmp_path / name)
        init_service(paths)
        first = service_id_of(Store.open(paths.db).settings())
        init_service(paths)  # a second init keeps it
        assert service_id_of(Store.open(paths.db).settings()) == first
        ids.append(first)
    assert len(ids[0]) == 32 and ids[0] != ids[1]
