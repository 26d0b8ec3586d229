"""The dashboard's read model: what each page shows, read from the store in a few bounded queries.

A *release* is a target (ecosystem, name, version); its verdict is its newest job's. The four headline
categories are those of reproduce.debian.net: reproduced, not reproduced (bytes differ, or the artifact is
not what its provenance names), could not rebuild (bad input, a build or the infrastructure failed), and
queued (queued or running). The rate is reproduced over releases with a final verdict. Every value read
here came from a store row a worker or a document wrote, and is treated as text to escape, never markup.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from rebuild.service import jobs
from rebuild.service.models import DONE, DROPPED, QUEUED, RUNNING, Attempt, Job, Target, Worker
from rebuild.service.store import Store

REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD, PENDING, DROPPED_CATEGORY = (
    "reproduced", "not reproduced", "could not rebuild", "queued", "dropped",
)  # fmt: skip
CATEGORIES = (REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD, PENDING)
RECENT = 25  # results on the overview
REGRESSIONS = 10  # regressions on the overview
FAILURES_SCANNED = 200  # the most recent "not reproduced" releases looked at for regressions
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


def _is_latest() -> Any:
    """The job is its target's newest (no job of the same target is newer): the release's verdict.

    A correlated NOT EXISTS on the target's index, not a window over every job: most targets have one job.
    """
    newer = aliased(Job)
    return ~exists().where(
        newer.target_id == Job.target_id,
        or_(newer.created_at > Job.created_at, and_(newer.created_at == Job.created_at, newer.key > Job.key)),
    )


def _releases() -> Select[Any]:
    """Releases with their newest job's category, status, verdict and time."""
    return (
        select(Target.id, Target.ecosystem, Target.name, Target.version, _category_sql(), Job.status, Job.verdict,
               func.coalesce(Job.finished_at, Job.updated_at))
        .join(Target, Target.id == Job.target_id)
        .where(_is_latest())
    )  # fmt: skip


def _release(row: Any, attempts: int = 0) -> Release:
    target_id, ecosystem, name, version, cat, status, verdict, when = row[:8]
    return Release(int(target_id), str(ecosystem), str(name), str(version), str(cat), str(verdict or status),
                   float(when) if when is not None else None, attempts)  # fmt: skip


def overview(store: Store, now: float | None = None) -> Overview:
    """Counts per ecosystem, the most recent verdicts, the trend and the latest regressions: five aggregate or
    index-ordered queries, none of which returns a row per release."""
    with store.session() as s:
        counts: dict[str, dict[str, int]] = {}
        latest = (
            select(Target.ecosystem.label("ecosystem"), _category_sql().label("category"))
            .join(Target, Target.id == Job.target_id)
            .where(_is_latest())
            .subquery()
        )  # grouped outside: PostgreSQL does not see two renderings of one CASE with parameters as the same
        for ecosystem, cat, n in s.execute(
            select(latest.c.ecosystem, latest.c.category, func.count()).group_by(latest.c.ecosystem, latest.c.category)
        ):
            counts.setdefault(str(ecosystem), {})[str(cat)] = int(n)
        recent = [
            _release(r)
            for r in s.execute(
                _releases().where(Job.finished_at.is_not(None)).order_by(Job.finished_at.desc()).limit(RECENT)
            )
        ]
        trend = _trend(s, now if now is not None else time.time())
        regressions = _regressions(s)
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
    offset = (Job.finished_at - start) / width  # >= 0 here: a cast truncates as floor would
    index = func.floor(offset) if s.get_bind().dialect.name == "postgresql" else offset
    done = (
        select(cast(index, Integer).label("bucket"), _category_sql().label("category"))
        .where(Job.status == DONE, Job.finished_at >= start)
        .subquery()
    )
    buckets = [dict.fromkeys((REPRODUCED, NOT_REPRODUCED, COULD_NOT_REBUILD), 0) for _ in range(n)]
    rows = s.execute(select(done.c.bucket, done.c.category, func.count()).group_by(done.c.bucket, done.c.category))
    for i, cat, count in rows:
        if cat in buckets[min(int(i), n - 1)]:
            buckets[min(int(i), n - 1)][cat] += int(count)
    return [Bucket(start + i * width, start + (i + 1) * width, b) for i, b in enumerate(buckets)]


def _bucket_width(span: float) -> float:
    for width in (3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0):
        if span / width <= TREND_BUCKETS:
            return width
    return 365 * 86400.0


def _regressions(s: Session) -> list[Regression]:
    """Among the ``FAILURES_SCANNED`` most recent releases that did not reproduce, those whose previous version
    (in the ecosystem's version order) reproduced; the newest ``REGRESSIONS`` of them."""
    failing = s.execute(
        _releases()
        # a verdict is set only on a done job (a retry clears it): no status test, so the finished_at index is used
        .where(Job.finished_at.is_not(None), Job.verdict.in_((jobs.NOT_REPRODUCED, jobs.FAILED_VERIFICATION)))
        .order_by(Job.finished_at.desc())
        .limit(FAILURES_SCANNED)
    ).all()
    if not failing:
        return []
    wanted = {(str(r[1]), str(r[2])) for r in failing}
    packages: dict[tuple[str, str], list[Release]] = {}
    ecosystems, names = sorted({e for e, _ in wanted}), sorted({n for _, n in wanted})
    for row in s.execute(_releases().where(Target.ecosystem.in_(ecosystems), Target.name.in_(names))):
        if (str(row[1]), str(row[2])) in wanted:  # both INs use the (ecosystem, name) index; pairs checked here
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


@functools.lru_cache(maxsize=65536)  # a server sorts the same versions again on every page
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
    """The package's releases, newest version first, with their attempts; empty when the store has none."""
    mine = (Target.ecosystem == ecosystem, Target.name == name)
    with store.session() as s:
        rows = s.execute(_releases().where(*mine)).all()
        counts = dict(
            s.execute(
                select(Job.target_id, func.count(Attempt.id))
                .join(Attempt, Attempt.job_key == Job.key)
                .join(Target, Target.id == Job.target_id)
                .where(*mine)
                .group_by(Job.target_id)
            ).all()
        )
    releases = [_release(row, int(counts.get(row[0], 0))) for row in rows]
    releases.sort(key=lambda r: version_key(r.ecosystem, r.version), reverse=True)
    return releases
