"""The results store: one SQLite file (WAL) by default, PostgreSQL by URL, and the truth of the service.

Every change of a job's state is one conditional UPDATE (``... WHERE status = 'queued'``, ``... WHERE
attempt_id = :mine``), so a job redelivered by a broker, claimed by two workers at once, or finished by a
worker whose lease already expired changes nothing. Claims lock their candidate rows with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; on SQLite every transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time,
waiting up to ``busy_timeout`` instead of failing with "database is locked").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from rebuild.errors import EnvironmentFailure, InputError
from rebuild.service import jobs
from rebuild.service.models import DONE, DROPPED, QUEUED, RUNNING, Attempt, Job, Setting, Target, Worker

MIGRATIONS = Path(__file__).parent / "migrations"
RECOVER_EVERY = 1.0  # seconds between a worker's looks for expired leases


def engine_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the driver installed); SQLite files get their directory made.

    Raises:
        InputError: neither ``sqlite:///FILE`` nor ``postgresql://...``.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    if url.startswith("postgresql+psycopg://"):
        return url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return url
    raise InputError(f"--db {url!r} is not a database URL", "use sqlite:///PATH or postgresql://USER@HOST:PORT/DB")


def make_engine(url: str) -> Engine:
    full = engine_url(url)
    if full.startswith("sqlite"):
        engine = create_engine(full, connect_args={"timeout": 120, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _connect(dbapi: Any, record: Any) -> None:
            dbapi.isolation_level = None  # SQLAlchemy's "begin" below decides how a transaction starts
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=120000"):
                dbapi.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now: no failed upgrade later

        return engine
    return create_engine(full, pool_pre_ping=True, isolation_level="READ COMMITTED")


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: run ``target``, then report on ``attempt_id``."""

    key: str
    target: str
    attempt_id: int
    number: int
    round: int
    worker: str


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest migration; returns its revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return str(ScriptDirectory.from_config(config).get_current_head())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class Store:
    """Operations on the store; each method is one transaction."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._recovered_at = -RECOVER_EVERY  # claims look for expired leases at most this often

    @classmethod
    def open(cls, url: str) -> Store:
        """A store that ``rebuild init`` made.

        Raises:
            InputError: not initialized, or made by another version of the schema.
            EnvironmentFailure: the database does not answer.
        """
        store = cls(url)
        try:
            revision = current_revision(store.engine)
        except OperationalError as e:
            raise EnvironmentFailure(f"the store {redact(url)} does not answer: {e.orig}") from e
        if revision is None:
            raise InputError(f"the store {redact(url)} is not initialized", f"run: rebuild init --db {redact(url)}")
        return store

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # --- settings ------------------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        with self.session() as s:
            return {row.name: row.value for row in s.scalars(select(Setting))}

    def put_settings(self, values: Mapping[str, str]) -> None:
        with self.session() as s:
            for name, value in values.items():
                s.merge(Setting(name=name, value=value))

    def policy(self) -> jobs.RetryPolicy:
        return jobs.RetryPolicy.from_settings(self.settings())

    # --- queueing ------------------------------------------------------------------------------------

    def add_job(
        self, target: str, where: tuple[str, str, str], key: str, decided_by: Mapping[str, Any], tags: str
    ) -> tuple[Job, bool]:
        """Queue the job unless its key is known; returns it and whether it is new."""
        now = time.time()
        for _ in range(3):  # a concurrent insert of the same target or key: read it back
            try:
                with self.session() as s:
                    row = s.scalar(select(Target).where(Target.target == target))
                    if row is None:
                        row = Target(target=target, ecosystem=where[0], name=where[1], version=where[2], created_at=now)
                        s.add(row)
                        s.flush()
                    existing = s.get(Job, key)
                    if existing is not None:
                        return existing, False
                    job = Job(
                        key=key, target_id=row.id, status=QUEUED, tags=tags, decided_by=jobs.canonical(decided_by),
                        round=1, not_before=0.0, detail="", created_at=now, updated_at=now,
                    )  # fmt: skip
                    s.add(job)
                    return job, True
            except IntegrityError:
                continue
        raise EnvironmentFailure(f"could not queue {target}: the store kept refusing the insert")

    def retry(self, keys: Sequence[str]) -> list[str]:
        """Queue final or dropped jobs again, for a new round of attempts."""
        with self.session() as s:
            done = s.scalars(select(Job).where(Job.key.in_(keys), Job.status.in_((DONE, DROPPED)))).all()
            for job in done:
                job.status, job.round, job.verdict, job.detail, job.finished_at = QUEUED, job.round + 1, None, "", None
                job.not_before, job.dispatched_at, job.avoid_worker, job.updated_at = 0.0, None, None, time.time()
            return [job.key for job in done]

    def drop(self, keys: Sequence[str]) -> list[str]:
        """Take queued jobs out of the queue (a running one finishes; its result is kept)."""
        with self.session() as s:
            found = s.scalars(select(Job).where(Job.key.in_(keys), Job.status == QUEUED)).all()
            for job in found:
                job.status, job.updated_at = DROPPED, time.time()
            return [job.key for job in found]

    # --- claiming ------------------------------------------------------------------------------------

    def claim(self, worker: str, worker_tags: str, lease: float, scan: int = 16) -> Claim | None:
        """The oldest due job this worker may take, leased to it; None when there is none."""
        if time.monotonic() - self._recovered_at >= RECOVER_EVERY:
            self.recover_expired()
        now = time.time()
        with self.session() as s:
            candidates = s.execute(
                select(Job.key, Job.tags, Job.avoid_worker)
                .where(Job.status == QUEUED, Job.not_before <= now)
                .order_by(Job.created_at, Job.key)
                .limit(scan)
                .with_for_update(skip_locked=True)
            ).all()
            others: list[str] | None = None
            for key, tags, avoid in candidates:
                if not jobs.takes(worker_tags, tags):
                    continue
                if avoid == worker:
                    others = self._other_live_workers(s, worker, now) if others is None else others
                    if others:
                        continue
                claim = self._take(s, key, worker, lease, now)
                if claim is not None:
                    return claim
        return None

    def claim_key(self, key: str, worker: str, lease: float) -> Claim | str | None:
        """Claim one job a broker delivered: a Claim, None (not queued or not due: a no-op), or "avoid"
        (a retry meant for another worker, and another one is alive)."""
        now = time.time()
        with self.session() as s:
            job = s.scalar(select(Job).where(Job.key == key).with_for_update())
            if job is None or job.status != QUEUED or job.not_before > now + 1:
                return None
            if job.avoid_worker == worker and self._other_live_workers(s, worker, now):
                return "avoid"
            return self._take(s, key, worker, lease, now)

    def _take(self, s: Session, key: str, worker: str, lease: float, now: float) -> Claim | None:
        taken = s.execute(
            update(Job)
            .where(Job.key == key, Job.status == QUEUED)
            .values(status=RUNNING, lease_worker=worker, lease_until=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        round_, target = s.execute(
            select(Job.round, Target.target).join(Target, Job.target_id == Target.id).where(Job.key == key)
        ).one()
        number = 1 + (s.scalar(select(func.count()).select_from(Attempt).where(Attempt.job_key == key)) or 0)
        attempt = Attempt(
            job_key=key, round=round_, number=number, worker=worker, started_at=now, classification="",
            detail="", image_digest="", verifier_version="", artifacts="{}", rebuilt_blobs="{}",
        )  # fmt: skip
        s.add(attempt)
        s.flush()
        s.execute(update(Job).where(Job.key == key).values(attempt_id=attempt.id))
        return Claim(key, str(target), attempt.id, number, round_, worker)

    def heartbeat(self, worker: str, lease: float) -> None:
        """The worker is alive, and so are the leases of the jobs it holds."""
        now = time.time()
        with self.session() as s:
            s.execute(update(Worker).where(Worker.name == worker).values(heartbeat_at=now))
            s.execute(
                update(Job)
                .where(Job.lease_worker == worker, Job.status == RUNNING)
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            )

    def recover_expired(self) -> list[str]:
        """Jobs whose worker stopped heartbeating: their attempt is "lost", and the retry rules apply."""
        self._recovered_at = time.monotonic()
        now = time.time()
        recovered = []
        with self.session() as s:
            expired = s.scalars(
                select(Job).where(Job.status == RUNNING, Job.lease_until < now).with_for_update(skip_locked=True)
            ).all()
            for job in expired:
                attempt = s.get(Attempt, job.attempt_id) if job.attempt_id is not None else None
                if attempt is not None and attempt.outcome is None:
                    attempt.outcome, attempt.finished_at = jobs.LOST, now
                    attempt.detail = f"worker {attempt.worker} stopped heartbeating (its lease expired)"
                decision = jobs.decide(jobs.LOST, self._earlier(s, job, job.attempt_id), self._policy(s))
                self._apply(job, decision, job.lease_worker, now)
                recovered.append(job.key)
        return recovered

    # --- results -------------------------------------------------------------------------------------

    def finish(self, claim: Claim, outcome: str, fields: Mapping[str, Any]) -> jobs.Decision | None:
        """Record the attempt; apply the retry rules. None when the lease was lost meanwhile (the attempt
        is kept, the job is someone else's now)."""
        now = time.time()
        with self.session() as s:
            attempt = s.get(Attempt, claim.attempt_id)
            assert attempt is not None
            if attempt.outcome == jobs.INTERRUPTED:  # given back on purpose: what the killed run said is noise
                return None
            attempt.outcome, attempt.finished_at = outcome, now
            attempt.seconds = round(now - attempt.started_at, 3)
            for name, value in fields.items():
                setattr(attempt, name, json.dumps(value, sort_keys=True) if isinstance(value, dict) else value)
            job = s.scalar(select(Job).where(Job.key == claim.key).with_for_update())
            if job is None or job.status != RUNNING or job.attempt_id != claim.attempt_id:
                attempt.detail = (attempt.detail + " (finished after its lease expired: not used)").strip()
                return None
            decision = jobs.decide(outcome, self._earlier(s, job, claim.attempt_id), self._policy(s))
            self._apply(job, decision, claim.worker, now)
            return decision

    def job(self, key: str) -> Job | None:
        with self.session() as s:
            return s.get(Job, key)

    def mark_dispatched(self, key: str) -> None:
        with self.session() as s:
            s.execute(update(Job).where(Job.key == key).values(dispatched_at=time.time()))

    def _earlier(self, s: Session, job: Job, current: int | None) -> list[str]:
        rows = s.scalars(
            select(Attempt.outcome)
            .where(Attempt.job_key == job.key, Attempt.round == job.round, Attempt.id != (current or -1))
            .order_by(Attempt.id)
        ).all()
        return [o for o in rows if o and o != jobs.INTERRUPTED]

    def _policy(self, s: Session) -> jobs.RetryPolicy:
        return jobs.RetryPolicy.from_settings({row.name: row.value for row in s.scalars(select(Setting))})

    @staticmethod
    def _apply(job: Job, decision: jobs.Decision, worker: str | None, now: float) -> None:
        job.lease_worker, job.lease_until, job.updated_at, job.detail = None, None, now, decision.reason
        if decision.final:
            job.status, job.verdict, job.finished_at = DONE, decision.verdict, now
        else:
            job.status, job.not_before, job.dispatched_at = QUEUED, now + decision.delay, None
            job.avoid_worker = worker if decision.other_worker else None

    # --- workers -------------------------------------------------------------------------------------

    def register_worker(self, name: str, host: str, pid: int, mode: str, tags: str, slots: int) -> None:
        now = time.time()
        with self.session() as s:
            s.merge(
                Worker(name=name, host=host, pid=pid, mode=mode, tags=tags, slots=slots, started_at=now,
                       heartbeat_at=now, stopped_at=None)
            )  # fmt: skip

    def stop_worker(self, name: str) -> None:
        with self.session() as s:
            s.execute(update(Worker).where(Worker.name == name).values(stopped_at=time.time()))

    def live_workers(self) -> list[str]:
        with self.session() as s:
            return self._live(s, time.time())

    def _live(self, s: Session, now: float) -> list[str]:
        lease = float(s.scalar(select(Setting.value).where(Setting.name == "lease_seconds")) or 60)
        return list(
            s.scalars(select(Worker.name).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= now - lease))
        )

    def _other_live_workers(self, s: Session, worker: str, now: float) -> list[str]:
        return [w for w in self._live(s, now) if w != worker]


def redact(url: str) -> str:
    """A URL as shown in messages: never its password."""
    head, sep, tail = url.partition("://")
    if "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        return f"{head}{sep}{user}:***@{tail.split('@', 1)[1]}"
    return url


def pending_for(store: Store, worker_tags: str) -> int:
    """Jobs this worker could still take: queued (due or not) or running elsewhere (they may be lost)."""
    with store.session() as s:
        rows = s.execute(select(Job.tags).where(Job.status.in_((QUEUED, RUNNING)))).all()
    return sum(1 for (tags,) in rows if jobs.takes(worker_tags, tags))


def to_dispatch(store: Store) -> list[tuple[str, str, float]]:
    """Queued jobs not yet handed to the broker, marked handed: ``(key, tags, not_before)``."""
    now = time.time()
    with store.session() as s:
        found = s.scalars(
            select(Job).where(Job.status == QUEUED, Job.dispatched_at.is_(None)).with_for_update(skip_locked=True)
        ).all()
        for job in found:
            job.dispatched_at = now
        return [(job.key, job.tags, job.not_before) for job in found]


def undispatch_all(store: Store) -> int:
    """Forget what the broker was given (it was lost): every queued job is handed again."""
    with store.session() as s:
        result = s.execute(
            update(Job)
            .where(Job.status == QUEUED)
            .values(dispatched_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
