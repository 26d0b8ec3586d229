"""The tables of the results store: targets, jobs, attempts, attestations, workers, settings.

Times are seconds since the epoch (floats), so that SQLite and PostgreSQL compare them alike. Logs,
reports and rebuilt files are never stored in rows: rows name their sha256 in the blob directory.
The schema is made and changed only by the migrations in ``migrations/``; these classes mirror it.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# job states
QUEUED, RUNNING, DONE, DROPPED = "queued", "running", "done", "dropped"
STATES = (QUEUED, RUNNING, DONE, DROPPED)


class Base(DeclarativeBase):
    pass


class Setting(Base):
    """The service's own settings, written by ``rebuild init`` (verifier id, lease, retry policy, key id)."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (Index("ix_targets_ecosystem_name", "ecosystem", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(1024), unique=True)  # normalized
    ecosystem: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[float] = mapped_column(Float)


class Job(Base):
    """One piece of work, keyed by the sha256 of what decides its result (``jobs.job_key``)."""

    __tablename__ = "jobs"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tags: Mapped[str] = mapped_column(String(256), default="")  # sorted "k=v,k=v": the worker needs them all
    decided_by: Mapped[str] = mapped_column(Text)  # canonical JSON of what the key hashes
    round: Mapped[int] = mapped_column(Integer, default=1)  # `queue retry` starts a new round of attempts
    not_before: Mapped[float] = mapped_column(Float, default=0.0)  # backoff: not claimed before this
    dispatched_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # handed to the broker
    lease_worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempt_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the attempt that holds the lease
    avoid_worker: Mapped[str | None] = mapped_column(String(128), nullable=True)  # retry on another worker
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)  # final: one of jobs.VERDICTS
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class Attempt(Base):
    """One run of a job by one worker; every attempt is kept, whatever came of it."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_key: Mapped[str] = mapped_column(ForeignKey("jobs.key"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[float] = mapped_column(Float, index=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)  # one of jobs.OUTCOMES
    classification: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_digest: Mapped[str] = mapped_column(String(128), default="")
    verifier_version: Mapped[str] = mapped_column(String(64), default="")
    artifacts: Mapped[str] = mapped_column(Text, default="{}")  # JSON: published name -> sha256
    report_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)  # verify-report.json
    compare_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)  # compare-report.json
    log_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)  # build.log
    statements_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)  # unsigned statements
    rebuilt_blobs: Mapped[str] = mapped_column(Text, default="{}")  # JSON: rebuilt name -> sha256
    diffoscope_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)  # diffoscope's HTML report
    # content equivalence of a "not reproduced" result (migration 0003): the label, "no: WHY", or None (not decided)
    equivalence: Mapped[str | None] = mapped_column(Text, nullable=True)


class Attestation(Base):
    """A bundle the service signed for a job's final result (PASSED, or FAILED for "not reproduced")."""

    __tablename__ = "attestations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_key: Mapped[str] = mapped_column(ForeignKey("jobs.key"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    artifact: Mapped[str] = mapped_column(String(512))
    subject_sha256: Mapped[str] = mapped_column(String(64), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # PASSED or FAILED
    bundle_blob: Mapped[str] = mapped_column(String(64))
    keyid: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[float] = mapped_column(Float)
    published_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    published_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Worker(Base):
    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # "store" or "rq"
    tags: Mapped[str] = mapped_column(String(256), default="")
    slots: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    stopped_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Token(Base):
    """A bearer token of the HTTP API's writes: only the sha256 of its secret is kept (``tokens.py``)."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(256))  # sorted, comma-separated
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Change(Base):
    """One entry of the change feed (``/api/v1/changes``): a final verdict or a signed attestation.

    Written only by the database's triggers (migration 0002), in the transaction of the change itself;
    ``id`` is the feed's cursor.
    """

    __tablename__ = "changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "verdict" or "attestation"
    job_key: Mapped[str] = mapped_column(String(64))
    attestation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verdict: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)
