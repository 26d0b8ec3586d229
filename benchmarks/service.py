"""The service's figures: jobs per minute with 1 and 2 workers on a fast recipe (and the queue overhead per
job), and the store's claim rate on SQLite and PostgreSQL (one process, and four racing).

Needs Docker, redis-server and PostgreSQL (./setup.sh). Every server is started here on 127.0.0.1 and stopped.
    .venv/bin/python benchmarks/service.py [--jobs 20] [--claims 400]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, figure

REBUILD = str(Path(sys.executable).parent / "rebuild")


def cli(data: Path, *args: str) -> str:
    r = subprocess.run([REBUILD, *args, "--data-dir", str(data)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"rebuild {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def attempt_times(data: Path) -> tuple[list[float], list[float]]:
    """Each attempt's seconds, and the gaps between one attempt's end and the next's start on a worker."""
    from sqlalchemy import select

    from rebuild.service.models import Attempt
    from rebuild.service.store import Store

    with Store.open(f"sqlite:///{data / 'service.db'}").session() as s:
        rows = s.execute(select(Attempt.worker, Attempt.started_at, Attempt.finished_at, Attempt.seconds)).all()
    gaps = []
    for worker in {r.worker for r in rows}:
        mine = sorted((r for r in rows if r.worker == worker), key=lambda r: r.started_at)
        gaps += [b.started_at - a.finished_at for a, b in itertools.pairwise(mine)]
    return [float(r.seconds or 0) for r in rows], gaps


def throughput(tmp: Path, jobs: int, workers: int, image: str, broker: str | None = None) -> None:
    from tests.integration.service.fastjobs import fast_release

    mode = "rq" if broker else "store"
    data = tmp / f"{mode}-{workers}"
    cli(data, "init")
    releases = [str(fast_release(tmp / f"{mode}-{workers}-r" / str(n), n, image)) for n in range(jobs)]
    cli(data, "queue", "add", *releases)
    if broker:
        cli(data, "dispatch", "--broker", broker)
    extra = ["--broker", broker] if broker else []
    started = time.perf_counter()
    procs = [
        subprocess.Popen([REBUILD, "worker", "--burst", "--no-diffoscope", "--name", f"w{i}", "--data-dir", str(data),
                          *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(workers)
    ]  # fmt: skip
    for p in procs:
        p.wait()
    wall = time.perf_counter() - started
    status = json.loads(cli(data, "status", "--json"))
    assert status["verdicts"] == {"reproduced": jobs}, status
    seconds, gaps = attempt_times(data)
    busy = sum(seconds)
    overhead = (wall * workers - busy) / jobs  # worker time not spent running a job, per job
    figure(
        f"{mode} mode, {workers} worker(s): jobs per minute", f"{jobs / wall * 60:.1f} ({jobs} jobs in {wall:.1f} s)"
    )
    figure(f"{mode} mode, {workers} worker(s): mean job (verify in Docker)", f"{busy / len(seconds):.2f} s")
    figure(f"{mode} mode, {workers} worker(s): queue overhead per job, between two jobs on a worker",
           f"{sum(gaps) / len(gaps):.3f} s (max {max(gaps):.3f} s)", "under 0.2 s")  # fmt: skip
    figure(f"{mode} mode, {workers} worker(s): all worker time not in a job, per job (start-up, idle tail)",
           f"{overhead:.3f} s")  # fmt: skip


def _claimer(url: str, name: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    sys.path.insert(0, str(ROOT))
    from rebuild.service import jobs
    from rebuild.service.store import Store

    store = Store.open(url)
    store.settings()  # connected before the clock starts
    n, started = 0, time.time()
    while (claim := store.claim(name, "", 60)) is not None:
        store.finish(claim, jobs.REPRODUCED, {})
        n += 1
    out.put((n, started, time.time()))


def claim_rate(tmp: Path, url: str, label: str, claims: int, processes: int) -> None:
    from rebuild.service import jobs
    from rebuild.service.config import ServicePaths, init_service
    from rebuild.service.store import Store

    init_service(ServicePaths(tmp / f"claims-{label}-{processes}", url))
    store = Store.open(url)
    for n in range(claims):
        decided = {"target": f"bench-{n}"}
        store.add_job(f"bench-{n}", ("generic", "bench", str(n)), jobs.job_key(decided), decided, "")
    store.close()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=_claimer, args=(url, f"c{i}", out)) for i in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    done = sum(n for n, _, _ in results)
    wall = max(end for _, _, end in results) - min(start for _, start, _ in results)  # process start-up excluded
    assert done == claims, (done, claims)
    figure(f"claim rate, {label}, {processes} process(es)", f"{claims / wall:.0f} claims+finishes/s "
           f"({wall / claims * 1000:.1f} ms each)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--claims", type=int, default=400)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from rebuild.build.docker import connect
    from rebuild.build.images import ImageBuilder
    from rebuild.fetch.cache import default_cache_dir
    from rebuild.recipes import RecipeBook
    from tests.integration.service.servers import RedisServer, create_database, free_port, postgres_cluster

    image = ImageBuilder(connect(), default_cache_dir()).ensure(RecipeBook().get("command").image).digest
    with tempfile.TemporaryDirectory(prefix="rebuild-bench-service-") as name:
        tmp = Path(name)
        os.environ.setdefault("REBUILD_CACHE_DIR", str(tmp / "cache"))
        throughput(tmp, args.jobs, 1, image)
        throughput(tmp, args.jobs, 2, image)
        redis = RedisServer(free_port(), tmp)
        redis.start()
        try:
            throughput(tmp, args.jobs, 2, image, broker=redis.url)
        finally:
            redis.stop()
        for processes in (1, 4):
            claim_rate(tmp, f"sqlite:///{tmp / f'claims-{processes}.db'}", "SQLite", args.claims, processes)
        with postgres_cluster() as url:
            for processes in (1, 4):
                db = create_database(url, f"bench{processes}")
                claim_rate(tmp, db, "PostgreSQL", args.claims, processes)


if __name__ == "__main__":
    main()
