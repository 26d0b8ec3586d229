"""Workers: claim a job, run it (``runner.run_claim``), report, repeat; from the store or from RQ.

Without a broker, ``slots`` threads claim jobs straight from the store (SQLite or PostgreSQL) with a
lease that a heartbeat renews; a worker that stops heartbeating loses its jobs to the others, and its
sandbox containers are removed by the next worker that notices (they carry its name). With
``--broker redis://...``, RQ hands out job keys (one RQ worker per slot, RQ's scheduler for delayed
retries) and the job function claims each key in the store with the same conditional update, so a
redelivered job is a no-op. Either way the store is the truth and every attempt is kept.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.build.sandbox import Limits
from rebuild.recipes import RecipeBook
from rebuild.service import broker, jobs
from rebuild.service.config import ServicePaths, content_equivalence_of, service_id_of
from rebuild.service.runner import JobSettings, job_engine, reap_containers, run_claim
from rebuild.service.store import Claim, Store, pending_for

ENV = "REBUILD_SERVICE_WORKER"  # an RQ worker's settings, read by the job function in its work horse
Progress = Callable[[str, str], None]
AVOID_PAUSE = 1.0  # seconds before a retry meant for another worker goes back to the queue


@dataclass(frozen=True)
class WorkerConfig:
    """One `rebuild worker` invocation (JSON, so RQ's work horses can read it)."""

    db: str
    data_dir: str
    name: str
    cache_dir: str
    tags: str = ""
    slots: int = 1
    burst: bool = False
    broker: str | None = None
    recipes: str | None = None
    timeout: float = 1800.0
    index_url: str = "https://pypi.org/simple"
    diffoscope: bool = True
    poll_seconds: float = 1.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))

    @property
    def paths(self) -> ServicePaths:
        return ServicePaths(Path(self.data_dir), self.db)

    def job_settings(self, store: Store) -> JobSettings:
        """Raises: InputError: the store's content-equivalence setting is not true or false."""
        settings = store.settings()
        return JobSettings(
            book=recipe_book(self.recipes),
            cache_dir=Path(self.cache_dir),
            limits=Limits(timeout_s=self.timeout),
            index_url=self.index_url,
            diffoscope=self.diffoscope,
            verifier_id=settings.get("verifier_id", JobSettings.verifier_id),
            content_equivalence=content_equivalence_of(settings),
            service_id=service_id_of(settings),
        )


@functools.cache
def recipe_book(recipes: str | None) -> RecipeBook:
    """Read once per process (RQ's work horses inherit it from the worker they fork from)."""
    return RecipeBook([Path(recipes)] if recipes else [])


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def lease_of(store: Store) -> float:
    return float(store.settings().get("lease_seconds", 60))


def _docker() -> Any | None:
    from rebuild.build.docker import connect
    from rebuild.errors import DockerUnavailableError

    try:
        return connect()
    except DockerUnavailableError:
        return None


@contextmanager
def heartbeat(store: Store, worker: str, lease: float, on_beat: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Renew this worker's leases every third of a lease, in the background, while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease / 3):
            try:
                store.heartbeat(worker, lease)
                on_beat()
            except Exception:  # the database blinked: the next beat tries again, well within the lease
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat-{worker}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def run_worker(config: WorkerConfig, progress: Progress = lambda s, m: None) -> dict[str, Any]:
    """`rebuild worker`: the store-claim loop, or RQ when a broker is given."""
    if config.broker:
        return run_rq(config, progress)
    return StoreWorker(config, progress).run()


class StoreWorker:
    """``slots`` threads that claim jobs from the store until stopped (or, with ``burst``, drained)."""

    def __init__(self, config: WorkerConfig, progress: Progress = lambda s, m: None) -> None:
        self.config = config
        self.progress = progress
        self.store = Store.open(config.db)
        self.lease = lease_of(self.store)
        self.docker = _docker()
        self.results: list[dict[str, Any]] = []
        self._running: dict[int, Claim] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self) -> dict[str, Any]:
        c = self.config
        self.store.register_worker(c.name, socket.gethostname(), os.getpid(), "store", c.tags, c.slots)
        self._reap_dead()
        settings = c.job_settings(self.store)
        with (
            tempfile.TemporaryDirectory(prefix="rebuild-worker-") as work,
            heartbeat(self.store, c.name, self.lease, self._reap_dead),
        ):
            threads = [
                threading.Thread(target=self._slot, args=(settings, Path(work)), name=f"slot-{i}", daemon=True)
                for i in range(c.slots)
            ]
            for t in threads:
                t.start()
            try:
                while any(t.is_alive() for t in threads):
                    for t in threads:
                        t.join(timeout=0.5)
            except KeyboardInterrupt:
                self._interrupted()
                raise
        self._reap_dead()  # a killed worker's containers do not outlive the one that took its job
        self.store.stop_worker(c.name)
        return {"worker": c.name, "mode": "store", "jobs": self.results}

    def _slot(self, settings: JobSettings, work: Path) -> None:
        c = self.config
        while not self._stop.is_set():
            try:
                claim = self.store.claim(c.name, c.tags, self.lease)
                if claim is None:
                    if c.burst and pending_for(self.store, c.tags) == 0:
                        return
                    self._stop.wait(c.poll_seconds)
                    continue
                with self._lock:
                    self._running[claim.attempt_id] = claim
                self.progress("job", f"{claim.target} (attempt {claim.number})")
                outcome, fields = run_claim(claim, settings, c.paths.blobs, work, job_engine)
                decision = self.store.finish(claim, outcome, fields)
                with self._lock:
                    self._running.pop(claim.attempt_id, None)
                self.results.append(_row(claim, outcome, decision))
                self.progress("done", f"{claim.target}: {outcome} ({_next(decision)})")
            except Exception as e:  # the store blinked, say: this slot goes on after a pause
                self.progress("error", f"{type(e).__name__}: {e}")
                self._stop.wait(c.poll_seconds)

    def _interrupted(self) -> None:
        """Stopped on purpose: running jobs go back to the queue (nothing counted), containers go."""
        self._stop.set()
        with self._lock:
            held = list(self._running.values())
        for claim in held:
            self.store.finish(claim, jobs.INTERRUPTED, {"detail": "the worker was stopped"})
        if self.docker is not None:
            reap_containers(self.docker, service_id_of(self.store.settings()), set(), only_worker=self.config.name)
        self.store.stop_worker(self.config.name)

    def _reap_dead(self) -> None:
        if self.docker is not None:
            for name in reap_containers(
                self.docker, service_id_of(self.store.settings()), set(self.store.live_workers())
            ):
                self.progress("reap", f"removed container {name} of a worker that is gone")


def _row(claim: Claim, outcome: str, decision: jobs.Decision | None) -> dict[str, Any]:
    return {"key": claim.key, "target": claim.target, "attempt": claim.number, "outcome": outcome,
            "next": _next(decision)}  # fmt: skip


def _next(decision: jobs.Decision | None) -> str:
    if decision is None:
        return "lease lost meanwhile: result kept, not used"
    if decision.final:
        return f"final: {decision.verdict}"
    return f"retry in {decision.delay:g} s" + (" on another worker" if decision.other_worker else "")


# --- RQ ------------------------------------------------------------------------------------------------


def run_rq(config: WorkerConfig, progress: Progress = lambda s, m: None) -> dict[str, Any]:
    """One RQ worker per slot (processes), each serving the queues of its tags."""
    import multiprocessing

    assert config.broker is not None
    broker.connect(config.broker)  # fail early, with the project's error, when Redis does not answer
    Store.open(config.db).close()
    if config.slots == 1:
        return _rq_slot(config)
    names = [f"{config.name}-{i}" for i in range(1, config.slots + 1)]
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_rq_slot, args=(dataclasses.replace(config, name=n, slots=1),)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return {"worker": config.name, "mode": "rq", "slots": names, "exit_codes": [p.exitcode for p in procs]}


def _rq_slot(config: WorkerConfig) -> dict[str, Any]:
    from rq import Worker

    assert config.broker is not None
    os.environ[ENV] = config.to_json()  # the work horses RQ forks read their settings here
    conn = broker.connect(config.broker)
    store = Store.open(config.db)
    lease = lease_of(store)
    docker = _docker()

    def reap() -> None:
        if docker is not None:
            reap_containers(docker, service_id_of(store.settings()), set(store.live_workers()))

    store.register_worker(config.name, socket.gethostname(), os.getpid(), "rq", config.tags, 1)
    recipe_book(config.recipes)  # read here, once: each work horse is a fork of this process
    reap()
    with heartbeat(store, config.name, lease, reap):
        worker = Worker(broker.worker_queues(config.tags), connection=conn, name=f"{config.name}.{os.getpid()}")
        worked = worker.work(burst=config.burst, with_scheduler=True, logging_level="WARNING")
    store.stop_worker(config.name)
    return {"worker": config.name, "mode": "rq", "worked": worked}


def rq_perform(key: str) -> str:
    """The RQ job function: claim ``key`` in the store (a no-op if it is not queued), run it, report."""
    from rq import get_current_job

    config = WorkerConfig.from_json(os.environ[ENV])
    store = Store(config.db)  # the worker checked the schema when it started
    try:
        lease = lease_of(store)
        conn = get_current_job().connection  # type: ignore[union-attr]
        claim = store.claim_key(key, config.name, lease)
        if claim is None:
            return "no-op: the job is not queued (running elsewhere, done, or not due)"
        job = store.job(key)
        tags = job.tags if job else ""
        if claim == "avoid":  # back of the queue for another worker; the pause bounds how often it comes back
            time.sleep(AVOID_PAUSE)
            broker.enqueue(conn, key, tags)
            return "left for another worker (a retry meant for another one)"
        assert isinstance(claim, Claim)
        with tempfile.TemporaryDirectory(prefix="rebuild-worker-") as work, heartbeat(store, config.name, lease):
            outcome, fields = run_claim(claim, config.job_settings(store), config.paths.blobs, Path(work), job_engine)
        decision = store.finish(claim, outcome, fields)
        if decision is not None and not decision.final:
            broker.enqueue(conn, key, tags, decision.delay)
            store.mark_dispatched(key)
        return f"{outcome}: {_next(decision)}"
    finally:
        store.close()
