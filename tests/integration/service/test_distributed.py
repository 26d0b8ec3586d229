"""Distributed mode: a real redis-server, `rebuild dispatch`, and `rebuild worker --broker` processes.

The store is the truth: every job runs once however often Redis delivers it, and after Redis is lost
`dispatch --reconcile` hands every queued job again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rebuild.service import broker
from rebuild.service.models import Attempt
from rebuild.service.store import Store
from tests.integration.service.conftest import RedisServer
from tests.integration.service.fastjobs import fast_release
from tests.integration.test_pipeline import REBUILD, rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_service_containers")]


def service(data: Path, *args: str) -> Any:
    r = rebuild(*args, "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def attempts_per_job(data: Path) -> dict[str, int]:
    store = Store.open(f"sqlite:///{data / 'service.db'}")
    with store.session() as s:
        rows = s.execute(select(Attempt.job_key, func.count()).group_by(Attempt.job_key)).all()
    return {key: int(n) for key, n in rows}


def workers(data: Path, url: str, names: list[str]) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen([REBUILD, "worker", "--broker", url, "--burst", "--no-diffoscope", "--name", name,
                          "--data-dir", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    ]  # fmt: skip
    done = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def test_two_workers_drain_twenty_jobs_once_each(tmp_path: Path, builder_image: str, redis_server: RedisServer) -> None:
    data = tmp_path / "data"
    service(data, "init")
    releases = [fast_release(tmp_path / f"r{n}", n, builder_image) for n in range(20)]
    queued = service(data, "queue", "add", *map(str, releases))["queued"]
    assert len({row["key"] for row in queued}) == 20
    assert len(service(data, "dispatch", "--broker", redis_server.url)["dispatched"]) == 20
    assert service(data, "dispatch", "--broker", redis_server.url)["dispatched"] == []  # handed once
    conn = broker.connect(redis_server.url)
    for row in queued[:5]:  # Redis delivers some jobs twice: the claim makes the second delivery a no-op
        broker.enqueue(conn, row["key"], "")
    for r in workers(data, redis_server.url, ["alpha", "beta"]):
        assert r.returncode == 0, r.stderr
    status = service(data, "status")
    assert status["jobs"] == {"done": 20} and status["verdicts"] == {"reproduced": 20}
    per_job = attempts_per_job(data)
    assert len(per_job) == 20 and set(per_job.values()) == {1}  # no job ran twice
    ran_on = {row["target"]: row["worker"] for row in service(data, "queue", "ls")["jobs"]}
    assert len(ran_on) == 20
    by_worker = Store.open(f"sqlite:///{data / 'service.db'}")
    with by_worker.session() as s:
        names = set(s.scalars(select(Attempt.worker)))
    assert names == {"alpha", "beta"}  # both took jobs


def test_redis_lost_and_reconciled_from_the_store(
    tmp_path: Path, builder_image: str, redis_server: RedisServer
) -> None:
    data = tmp_path / "data"
    service(data, "init")
    releases = [fast_release(tmp_path / f"r{n}", n, builder_image) for n in range(4)]
    service(data, "queue", "add", *map(str, releases))
    assert len(service(data, "dispatch", "--broker", redis_server.url)["dispatched"]) == 4
    redis_server.stop()  # everything Redis held is gone
    redis_server.start()
    assert service(data, "dispatch", "--broker", redis_server.url)["dispatched"] == []  # the store thinks they went
    assert service(data, "status")["jobs"] == {"queued": 4}  # and nothing is lost: the store has them all
    assert len(service(data, "dispatch", "--broker", redis_server.url, "--reconcile")["dispatched"]) == 4
    (r,) = workers(data, redis_server.url, ["solo"])
    assert r.returncode == 0, r.stderr
    assert service(data, "status")["verdicts"] == {"reproduced": 4}
    assert set(attempts_per_job(data).values()) == {1}
