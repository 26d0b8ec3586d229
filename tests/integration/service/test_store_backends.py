"""The results store on both backends (SQLite file, a real PostgreSQL cluster): queueing, claims, leases,
retries by outcome, and N processes racing to claim without a double claim."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from rebuild.service import jobs
from rebuild.service.config import ServicePaths, init_service
from rebuild.service.models import Attempt, Job
from rebuild.service.store import Store, current_revision, pending_for


def make_store(url: str, tmp_path: Path, **policy: float) -> Store:
    init_service(
        ServicePaths(tmp_path / "data", url),
        lease_seconds=60,
        policy=jobs.RetryPolicy(backoff_seconds=policy.get("backoff", 30), infrastructure_attempts=3),
    )
    return Store.open(url)


def add(store: Store, n: int, tags: str = "") -> str:
    decided = {"target": f"t{n}", "verifier": "test"}
    job, created = store.add_job(f"t{n}", ("generic", f"t{n}", "1"), jobs.job_key(decided), decided, tags)
    assert created
    return job.key


def expire_leases(store: Store) -> None:
    with store.session() as s:
        s.execute(update(Job).where(Job.status == "running").values(lease_until=0.0))


def test_init_is_idempotent_and_migrates(store_url: str, tmp_path: Path) -> None:
    paths = ServicePaths(tmp_path / "data", store_url)
    first = init_service(paths, verifier_id="https://example.org/v")
    again = init_service(paths, verifier_id="https://other.example/v")
    assert first["revision"] == again["revision"] == "0003" and not again["key_created"]
    assert again["settings"]["verifier_id"] == "https://example.org/v"  # settings are kept
    assert current_revision(Store(store_url).engine) == "0003"


def test_the_same_key_is_queued_once(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path)
    key = add(store, 1)
    decided = {"target": "t1", "verifier": "test"}
    job, created = store.add_job("t1", ("generic", "t1", "1"), key, decided, "")
    assert not created and job.key == key
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_claim_finish_and_redelivery_is_a_no_op(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path)
    key = add(store, 1)
    claim = store.claim("w1", "", 60)
    assert claim is not None and claim.key == key and claim.number == 1
    assert store.claim("w2", "", 60) is None  # running: nobody else gets it
    assert store.claim_key(key, "w2", 60) is None  # a redelivery while running changes nothing
    decision = store.finish(claim, jobs.REPRODUCED, {"artifacts": {"a": "0" * 64}})
    assert decision is not None and decision.verdict == jobs.REPRODUCED
    assert store.claim_key(key, "w2", 60) is None  # nor once done
    job = store.job(key)
    assert job is not None and job.status == "done" and job.verdict == "reproduced"


def test_a_lost_worker_loses_its_job_and_its_late_result_is_not_used(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path, backoff=0)
    key = add(store, 1)
    first = store.claim("w1", "", 60)
    assert first is not None
    expire_leases(store)  # w1 stopped heartbeating
    assert store.recover_expired() == [key]  # (claims look for expired leases once a second; this looks now)
    second = store.claim("w2", "", 60)
    assert second is not None and second.key == key and second.number == 2
    assert store.finish(first, jobs.REPRODUCED, {}) is None  # too late: the job is w2's now
    assert store.finish(second, jobs.REPRODUCED, {}) is not None
    with store.session() as s:
        attempts = s.scalars(select(Attempt).where(Attempt.job_key == key).order_by(Attempt.id)).all()
    assert [a.outcome for a in attempts] == [jobs.REPRODUCED, jobs.REPRODUCED]  # every attempt is kept
    assert "not used" in attempts[0].detail
    job = store.job(key)
    assert job is not None and job.status == "done" and job.attempt_id == second.attempt_id


def test_not_reproduced_is_rechecked_once_on_another_worker(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path)
    store.register_worker("w1", "h", 1, "store", "", 1)
    store.register_worker("w2", "h", 2, "store", "", 1)
    key = add(store, 1)
    claim = store.claim("w1", "", 60)
    assert claim is not None
    decision = store.finish(claim, jobs.NOT_REPRODUCED, {})
    assert decision is not None and not decision.final and decision.other_worker
    assert store.claim("w1", "", 60) is None  # another worker is alive: it is theirs
    assert store.claim_key(key, "w1", 60) == "avoid"
    recheck = store.claim("w2", "", 60)
    assert recheck is not None and recheck.number == 2
    final = store.finish(recheck, jobs.NOT_REPRODUCED, {})
    assert final is not None and final.verdict == jobs.NOT_REPRODUCED


def test_infrastructure_failures_back_off_then_give_up(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path, backoff=1000)
    key = add(store, 1)
    for attempt in (1, 2):
        claim = store.claim("w1", "", 60)
        assert claim is not None and claim.number == attempt
        decision = store.finish(claim, jobs.INFRASTRUCTURE, {"detail": "fetch failed"})
        assert decision is not None and decision.delay == 1000 * 2 ** (attempt - 1)
        assert store.claim("w1", "", 60) is None  # backing off
        with store.session() as s:
            s.execute(update(Job).where(Job.key == key).values(not_before=0.0))
    claim = store.claim("w1", "", 60)
    assert claim is not None
    decision = store.finish(claim, jobs.INFRASTRUCTURE, {})
    assert decision is not None and decision.verdict == jobs.COULD_NOT_REBUILD
    assert store.retry([key]) == [key]  # a new round
    again = store.claim("w1", "", 60)
    assert again is not None and again.round == 2 and again.number == 4


def test_tags_route_jobs(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path)
    heavy = add(store, 1, tags="mem=high")
    assert store.claim("small", "", 60) is None
    assert pending_for(store, "") == 0 and pending_for(store, "mem=high") == 1
    claim = store.claim("big", "mem=high", 60)
    assert claim is not None and claim.key == heavy


def test_drop_and_retry(store_url: str, tmp_path: Path) -> None:
    store = make_store(store_url, tmp_path)
    key = add(store, 1)
    assert store.drop([key]) == [key]
    assert store.claim("w1", "", 60) is None
    assert store.retry([key]) == [key]
    assert store.claim("w1", "", 60) is not None


def _race(url: str, name: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = Store.open(url)
    claimed = []
    while (claim := store.claim(name, "", 60)) is not None:
        claimed.append(claim.key)
        store.finish(claim, jobs.REPRODUCED, {})
    results.put((name, claimed))
    store.close()


@pytest.mark.parametrize("processes", [4])
def test_processes_racing_to_claim_never_double_claim(store_url: str, tmp_path: Path, processes: int) -> None:
    store = make_store(store_url, tmp_path)
    keys = {add(store, n) for n in range(60)}
    store.close()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    procs = [context.Process(target=_race, args=(store_url, f"w{i}", results)) for i in range(processes)]
    for p in procs:
        p.start()
    got = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    claimed = [key for _, keys_of in got for key in keys_of]
    assert len(claimed) == len(set(claimed)) == len(keys)  # every job once, none twice
    assert set(claimed) == keys
    with Store.open(store_url).session() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == len(keys)
