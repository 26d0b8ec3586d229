"""RQ on Redis, for many machines: Redis only hands out the next jobs; the store stays the truth.

``dispatch`` hands every queued job that was not handed yet to RQ (one queue per tag set; a delayed retry
through RQ's scheduler) and marks it handed in the store. ``--reconcile`` rebuilds Redis's queues from the
store after Redis was lost: every queued job is handed again. A job delivered twice is harmless: the
worker's claim is a conditional update, so the second delivery finds the job running or done and does
nothing.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

from rebuild.errors import EnvironmentFailure, InputError
from rebuild.service import jobs
from rebuild.service.store import Store, to_dispatch, undispatch_all

PREFIX = "rebuild"
JOB_FUNCTION = "rebuild.service.worker.rq_perform"
RESULT_TTL = 600  # RQ's own record of a run; the store keeps the real one


def connect(url: str) -> Any:
    """A Redis connection that answers.

    Raises:
        InputError: not a redis:// URL.
        EnvironmentFailure: Redis does not answer.
    """
    import redis

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise InputError(f"--broker {url!r} is not a Redis URL", "for example redis://127.0.0.1:6379/0")
    conn = redis.Redis.from_url(url, socket_connect_timeout=10, health_check_interval=30)
    try:
        conn.ping()
    except redis.RedisError as e:
        raise EnvironmentFailure(
            f"the broker {url} does not answer: {e}", "start redis-server, or drop --broker"
        ) from e
    return conn


def queue_name(tags: str) -> str:
    return f"{PREFIX}:{tags}" if tags else PREFIX


def worker_queues(worker_tags: str) -> list[str]:
    """Every queue a worker with these tags serves (each subset of its tags), most specific first."""
    tags = sorted(jobs.tag_set(worker_tags))
    subsets = [c for n in range(len(tags), -1, -1) for c in itertools.combinations(tags, n)]
    return [queue_name(",".join(subset)) for subset in subsets]


def enqueue(conn: Any, key: str, tags: str, delay: float = 0.0) -> None:
    from rq import Queue

    queue = Queue(queue_name(tags), connection=conn)
    options: dict[str, Any] = {"job_timeout": -1, "result_ttl": RESULT_TTL, "failure_ttl": 86400,
                               "description": f"rebuild job {key[:16]}"}  # fmt: skip
    if delay > 0.5:
        queue.enqueue_in(timedelta(seconds=delay), JOB_FUNCTION, key, **options)
    else:
        queue.enqueue(JOB_FUNCTION, key, **options)


def dispatch(store: Store, conn: Any, reconcile: bool = False) -> dict[str, Any]:
    """Hand queued jobs to RQ; first recover expired leases, and with ``reconcile`` rebuild the queues."""
    recovered = store.recover_expired()
    cleared = 0
    if reconcile:
        cleared = _clear_queues(conn)
        undispatch_all(store)
    now = time.time()
    handed = to_dispatch(store)
    for key, tags, not_before in handed:
        enqueue(conn, key, tags, max(0.0, not_before - now))
    return {"recovered": recovered, "dispatched": [key for key, _, _ in handed], "cleared": cleared,
            "reconciled": reconcile}  # fmt: skip


def _clear_queues(conn: Any) -> int:
    from rq import Queue

    cleared = 0
    for queue in Queue.all(connection=conn):
        if queue.name == PREFIX or queue.name.startswith(PREFIX + ":"):
            cleared += queue.count
            queue.empty()  # type: ignore[no-untyped-call]
            for job_id in queue.scheduled_job_registry.get_job_ids():
                queue.scheduled_job_registry.remove(job_id, delete_job=True)
    return cleared
