"""The dashboard's read model: what each page shows, read from the store in a few bounded queries.

A *release* is a target (ecosystem, name, version); its verdict is its newest job's. The four headline
categories are those of reproduce.debian.net: reproduced, not reproduced (bytes differ, or the artifact is
not what its provenance names), could not rebuild (bad input, a build or the infrastructure failed), and
queued (queued or running). The rate is reproduced over releases with a final verdict. Every value read
here came from a store row a worker or a document wrote, and is treated as text to escape, never markup.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from rebuild.service import jobs
from rebuild.service.models import DONE, DROPPED, QUEUED, RUNNING, Attempt, Attestation, Job, Target, Worker
from rebuild.service.store import Store

REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD, PENDING, DROPPED_CATEGORY = (
    "reproduced", "not reproduced", "could not rebuild", "queued", "dropped",
)  # fmt: skip
CATEGORIES = (REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD, PENDING)
RECENT = 25  # results on the overview
REGRESSIONS = 10  # regressions on the overview
QUEUE_ROWS = 200  # queued jobs listed on the queue page (the count is exact)
TREND_BUCKETS = 24


@dataclass(frozen=True)
class Release:
    target_id: int
    ecosystem: str
    name: str
    version: str
    category: str
    verdict: str  # the job's verdict, or its status while it has none
    when: float | None  # finished, else last changed
    attempts: int = 0


@dataclass(frozen=True)
class EcosystemCounts:
    ecosystem: str
    counts: dict[str, int]

    @property
    def decided(self) -> int:
        return sum(self.counts.get(c, 0) for c in (REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD))

    @property
    def rate(self) -> float | None:
        """Reproduced over releases with a final verdict; None before the first one."""
        return self.counts.get(REPRODUCED, 0) / self.decided if self.decided else None


@dataclass(frozen=True)
class Bucket:
    start: float
    end: float
    counts: dict[str, int]


@dataclass(frozen=True)
class Regression:
    release: Release
    previous_version: str


@dataclass(frozen=True)
class Overview:
    ecosystems: list[EcosystemCounts]
    total: EcosystemCounts
    recent: list[Release]
    trend: list[Bucket]
    regressions: list[Regression]


@dataclass(frozen=True)
class RunningJob:
    key: str
    target_id: int
    target: str
    worker: str
    since: float | None
    attempt: int | None
    lease_until: float | None


@dataclass(frozen=True)
class QueuedJob:
    key: str
    target_id: int
    target: str
    tags: str
    round: int
    queued_at: float
    not_before: float


@dataclass(frozen=True)
class WorkerRow:
    name: str
    host: str
    mode: str
    tags: str
    slots: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    live: bool


@dataclass(frozen=True)
class QueueView:
    running: list[RunningJob]
    queued: list[QueuedJob]
    queued_total: int
    workers: list[WorkerRow]


@dataclass(frozen=True)
class AttemptRow:
    id: int
    round: int
    number: int
    worker: str
    started_at: float
    seconds: float | None
    outcome: str
    classification: str
    detail: str
    exit_code: int | None
    image_digest: str
    verifier_version: str
    artifacts: str  # JSON as stored: parsed (untrusted) by the page
    rebuilt_blobs: str
    report_blob: str | None
    compare_blob: str | None
    log_blob: str | None
    statements_blob: str | None
    diffoscope_blob: str | None


@dataclass(frozen=True)
class AttestationRow:
    id: int
    artifact: str
    verdict: str
    keyid: str
    signed_at: float
    published_path: str | None


@dataclass(frozen=True)
class JobView:
    key: str
    status: str
    verdict: str | None
    category: str
    detail: str
    round: int
    created_at: float
    finished_at: float | None
    attempts: list[AttemptRow]
    attestations: list[AttestationRow]


@dataclass(frozen=True)
class ReleaseView:
    release: Release
    target: str
    jobs: list[JobView]


def category(status: str, verdict: str | None) -> str:
    if status in (QUEUED, RUNNING):
        return PENDING
    if status == DROPPED:
        return DROPPED_CATEGORY
    if verdict == jobs.REPRODUCED:
        return REPRODUCED
    if verdict in (jobs.NOT_REPRODUCED, jobs.FAILED_VERIFICATION):
        return NOT_REPRODUCED
    return COULD_NOT_REBUILD


def _category_sql() -> Any:
    return case(
        (Job.status.in_((QUEUED, RUNNING)), PENDING),
        (Job.status == DROPPED, DROPPED_CATEGORY),
        (Job.verdict == jobs.REPRODUCED, REPRODUCED),
        (Job.verdict.in_((jobs.NOT_REPRODUCED, jobs.FAILED_VERIFICATION)), NOT_REPRODUCED),
        else_=COULD_NOT_REBUILD,
    )


def _latest_jobs() -> Any:
    """Each target's newest job (one row per target): the release's verdict."""
    rank = func.row_number().over(partition_by=Job.target_id, order_by=(Job.created_at.desc(), Job.key.desc()))
    ranked = select(
        Job.target_id.label("target_id"),
        Job.key.label("key"),
        Job.status.label("status"),
        Job.verdict.label("verdict"),
        func.coalesce(Job.finished_at, Job.updated_at).label("when"),
        _category_sql().label("category"),
        rank.label("rank"),
    ).subquery()
    return select(ranked).where(ranked.c.rank == 1).subquery()


def _release_query(latest: Any) -> Select[Any]:
    return select(
        Target.id, Target.ecosystem, Target.name, Target.version, latest.c.category, latest.c.status,
        latest.c.verdict, latest.c.when,
    ).join(latest, latest.c.target_id == Target.id)  # fmt: skip


def _release(row: Any, attempts: int = 0) -> Release:
    target_id, ecosystem, name, version, cat, status, verdict, when = row[:8]
    return Release(int(target_id), str(ecosystem), str(name), str(version), str(cat), str(verdict or status),
                   float(when) if when is not None else None, attempts)  # fmt: skip


def overview(store: Store, now: float | None = None) -> Overview:
    with store.session() as s:
        latest = _latest_jobs()
        counts: dict[str, dict[str, int]] = {}
        for ecosystem, cat, n in s.execute(
            select(Target.ecosystem, latest.c.category, func.count())
            .join(latest, latest.c.target_id == Target.id)
            .group_by(Target.ecosystem, latest.c.category)
        ):
            counts.setdefault(str(ecosystem), {})[str(cat)] = int(n)
        recent = [_release(r) for r in s.execute(_release_query(latest).order_by(latest.c.when.desc()).limit(RECENT))]
        trend = _trend(s, now if now is not None else time.time())
        regressions = _regressions(s, latest)
    ecosystems = [EcosystemCounts(e, c) for e, c in sorted(counts.items())]
    total: dict[str, int] = {}
    for e in ecosystems:
        for cat, n in e.counts.items():
            total[cat] = total.get(cat, 0) + n
    return Overview(ecosystems, EcosystemCounts("all", total), recent, trend, regressions)


def _trend(s: Session, now: float) -> list[Bucket]:
    """Final verdicts reached per period, in the last ``TREND_BUCKETS`` periods up to now; the period (an hour, six,
    a day, a week, a month, a year) is the shortest that reaches back to the first verdict, or as far as it can."""
    first = s.scalar(select(func.min(Job.finished_at)).where(Job.status == DONE, Job.finished_at.is_not(None)))
    if first is None:
        return []
    width = _bucket_width(max(now - float(first), 1.0))
    end = now - now % width + width
    n = TREND_BUCKETS  # always the same number of periods: one busy hour is one narrow bar, not the whole chart
    start = end - n * width
    buckets = [dict.fromkeys((REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD), 0) for _ in range(n)]
    rows = s.execute(select(Job.finished_at, _category_sql()).where(Job.status == DONE, Job.finished_at >= start))
    for finished, cat in rows:
        index = min(int((float(finished) - start) // width), n - 1)
        if cat in buckets[index]:
            buckets[index][cat] += 1
    return [Bucket(start + i * width, start + (i + 1) * width, b) for i, b in enumerate(buckets)]


def _bucket_width(span: float) -> float:
    for width in (3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0):
        if span / width <= TREND_BUCKETS:
            return width
    return 365 * 86400.0


def _regressions(s: Session, latest: Any) -> list[Regression]:
    """Releases not reproduced whose previous version (by the ecosystem's version order) reproduced."""
    failing = (
        select(Target.ecosystem, Target.name)
        .join(latest, latest.c.target_id == Target.id)
        .where(latest.c.category == NOT_REPRODUCED)
        .distinct()
        .subquery()
    )
    rows = s.execute(
        _release_query(latest).join(
            failing, and_(failing.c.ecosystem == Target.ecosystem, failing.c.name == Target.name)
        )
    ).all()
    packages: dict[tuple[str, str], list[Release]] = {}
    for row in rows:
        release = _release(row)
        packages.setdefault((release.ecosystem, release.name), []).append(release)
    found = []
    for releases in packages.values():
        ordered = sorted(releases, key=lambda r: version_key(r.ecosystem, r.version))
        for previous, current in itertools.pairwise(ordered):
            if current.category == NOT_REPRODUCED and previous.category == REPRODUCED:
                found.append(Regression(current, previous.version))
    found.sort(key=lambda r: r.release.when or 0.0, reverse=True)
    return found[:REGRESSIONS]


_PARTS = re.compile(r"(\d+)")


def version_key(ecosystem: str, version: str) -> tuple[Any, ...]:
    """Versions in the ecosystem's order: PEP 440 for PyPI, dpkg's for Debian, else numbers compared as
    numbers. A version that does not parse sorts by the generic rule, before those that do (older)."""
    if ecosystem == "pypi":
        from packaging.version import InvalidVersion, Version

        try:
            return (1, Version(version), ())
        except InvalidVersion:
            pass
    elif ecosystem == "debian":
        from debian.debian_support import Version as DebianVersion

        try:
            return (1, DebianVersion(version), ())
        except ValueError:
            pass
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _PARTS.split(version) if p)
    return (0 if ecosystem in ("pypi", "debian") else 1, 0, parts)


def queue(store: Store) -> QueueView:
    live = set(store.live_workers())
    with store.session() as s:
        running = [
            RunningJob(key, int(tid), str(target), str(worker or ""), started, number, lease)
            for key, tid, target, worker, started, number, lease in s.execute(
                select(
                    Job.key,
                    Target.id,
                    Target.target,
                    Job.lease_worker,
                    Attempt.started_at,
                    Attempt.number,
                    Job.lease_until,
                )
                .join(Target, Job.target_id == Target.id)
                .outerjoin(Attempt, Attempt.id == Job.attempt_id)
                .where(Job.status == RUNNING)
                .order_by(Attempt.started_at, Job.key)
            )
        ]
        queued_total = int(s.scalar(select(func.count()).select_from(Job).where(Job.status == QUEUED)) or 0)
        queued = [
            QueuedJob(key, int(tid), str(target), str(tags), int(round_), float(created), float(not_before))
            for key, tid, target, tags, round_, created, not_before in s.execute(
                select(Job.key, Target.id, Target.target, Job.tags, Job.round, Job.created_at, Job.not_before)
                .join(Target, Job.target_id == Target.id)
                .where(Job.status == QUEUED)
                .order_by(Job.created_at, Job.key)
                .limit(QUEUE_ROWS)
            )
        ]
        workers = [
            WorkerRow(w.name, w.host, w.mode, w.tags, w.slots, w.started_at, w.heartbeat_at, w.stopped_at,
                      w.name in live)
            for w in s.scalars(select(Worker).order_by(Worker.stopped_at.is_not(None), Worker.started_at.desc()))
        ]  # fmt: skip
    return QueueView(running, queued, queued_total, workers)


def package(store: Store, ecosystem: str, name: str) -> list[Release]:
    """The package's releases, newest version first; empty when the store has none."""
    with store.session() as s:
        latest = _latest_jobs()
        counts = (
            select(Job.target_id.label("target_id"), func.count(Attempt.id).label("n"))
            .join(Attempt, Attempt.job_key == Job.key)
            .group_by(Job.target_id)
            .subquery()
        )
        rows = s.execute(
            _release_query(latest)
            .add_columns(func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.target_id == Target.id)
            .where(Target.ecosystem == ecosystem, Target.name == name)
        ).all()
    releases = [_release(row, int(row[8])) for row in rows]
    releases.sort(key=lambda r: version_key(r.ecosystem, r.version), reverse=True)
    return releases


def release(store: Store, target_id: int) -> ReleaseView | None:
    """Every job of a release, newest first, with every attempt (newest first) and attestation."""
    with store.session() as s:
        target = s.get(Target, target_id)
        if target is None:
            return None
        job_rows = s.scalars(select(Job).where(Job.target_id == target_id).order_by(Job.created_at.desc())).all()
        keys = [j.key for j in job_rows]
        attempts: dict[str, list[AttemptRow]] = {k: [] for k in keys}
        for a in s.scalars(select(Attempt).where(Attempt.job_key.in_(keys)).order_by(Attempt.id.desc())):
            attempts[a.job_key].append(_attempt(a))
        signed: dict[str, list[AttestationRow]] = {k: [] for k in keys}
        for t in s.scalars(select(Attestation).where(Attestation.job_key.in_(keys)).order_by(Attestation.id)):
            signed[t.job_key].append(AttestationRow(t.id, t.artifact, t.verdict, t.keyid, t.signed_at,
                                                    t.published_path))  # fmt: skip
        views = [
            JobView(j.key, j.status, j.verdict, category(j.status, j.verdict), j.detail, j.round, j.created_at,
                    j.finished_at, attempts[j.key], signed[j.key])
            for j in job_rows
        ]  # fmt: skip
        newest = views[0] if views else None
        head = Release(
            target.id, target.ecosystem, target.name, target.version,
            newest.category if newest else PENDING, (newest.verdict or newest.status) if newest else "no job",
            (newest.finished_at or None) if newest else None, sum(len(v.attempts) for v in views),
        )  # fmt: skip
        return ReleaseView(head, target.target, views)


def _attempt(a: Attempt) -> AttemptRow:
    return AttemptRow(
        a.id, a.round, a.number, a.worker, a.started_at, a.seconds, a.outcome or "running", a.classification,
        a.detail, a.exit_code, a.image_digest, a.verifier_version, a.artifacts, a.rebuilt_blobs, a.report_blob,
        a.compare_blob, a.log_blob, a.statements_blob, getattr(a, "diffoscope_blob", None),
    )  # fmt: skip


def attempt(store: Store, attempt_id: int) -> tuple[AttemptRow, int, str] | None:
    """One attempt, its release's id and target."""
    with store.session() as s:
        row = s.execute(
            select(Attempt, Target.id, Target.target)
            .join(Job, Job.key == Attempt.job_key)
            .join(Target, Target.id == Job.target_id)
            .where(Attempt.id == attempt_id)
        ).first()
        if row is None:
            return None
        return _attempt(row[0]), int(row[1]), str(row[2])


def attestation(store: Store, attestation_id: int) -> AttestationRow | None:
    with store.session() as s:
        t = s.get(Attestation, attestation_id)
        if t is None:
            return None
        return AttestationRow(t.id, t.artifact, t.verdict, t.keyid, t.signed_at, t.published_path)


def attestation_blob(store: Store, attestation_id: int) -> str | None:
    with store.session() as s:
        return s.scalar(select(Attestation.bundle_blob).where(Attestation.id == attestation_id))
