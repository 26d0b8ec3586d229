"""The read model of one release's page, one attempt's files and one attestation's bundle.

Rows are read as plain columns (no ORM objects): a release with a thousand attempts is one query for them.
What a column holds (a worker name, a classification, a JSON list of digests) is text for the templates to
escape and for ``reports`` to check; blob names are checked by ``BlobStore.path`` before a file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rebuild.service.models import Attempt, Attestation, Job, Target
from rebuild.service.store import Store
from rebuild.web.queries import PENDING, Release, category


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
    equivalence: str | None  # content equivalence of a "not reproduced" result, as the worker found it


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


_ATTEMPT = (
    Attempt.id, Attempt.round, Attempt.number, Attempt.worker, Attempt.started_at, Attempt.seconds, Attempt.outcome,
    Attempt.classification, Attempt.detail, Attempt.exit_code, Attempt.image_digest, Attempt.verifier_version,
    Attempt.artifacts, Attempt.rebuilt_blobs, Attempt.report_blob, Attempt.compare_blob, Attempt.log_blob,
    Attempt.statements_blob, Attempt.diffoscope_blob, Attempt.equivalence,
)  # fmt: skip
_ATTESTATION = (Attestation.id, Attestation.artifact, Attestation.verdict, Attestation.keyid, Attestation.signed_at,
                Attestation.published_path)  # fmt: skip


def _attempt(row: Any) -> AttemptRow:
    values = list(row)
    values[6] = values[6] or "running"  # no outcome yet
    return AttemptRow(*values)


def release(store: Store, target_id: int) -> ReleaseView | None:
    """Every job of a release, newest first, with every attempt (newest first) and attestation."""
    with store.session() as s:
        target = s.execute(
            select(Target.id, Target.ecosystem, Target.name, Target.version, Target.target).where(
                Target.id == target_id
            )
        ).first()
        if target is None:
            return None
        job_rows = s.execute(
            select(Job.key, Job.status, Job.verdict, Job.detail, Job.round, Job.created_at, Job.finished_at)
            .where(Job.target_id == target_id)
            .order_by(Job.created_at.desc(), Job.key.desc())
        ).all()
        keys = [j[0] for j in job_rows]
        attempts: dict[str, list[AttemptRow]] = {k: [] for k in keys}
        for key, *row in s.execute(select(Attempt.job_key, *_ATTEMPT).where(Attempt.job_key.in_(keys))
                                   .order_by(Attempt.id.desc())):  # fmt: skip
            attempts[key].append(_attempt(row))
        signed: dict[str, list[AttestationRow]] = {k: [] for k in keys}
        for key, *row in s.execute(select(Attestation.job_key, *_ATTESTATION).where(Attestation.job_key.in_(keys))
                                   .order_by(Attestation.id)):  # fmt: skip
            signed[key].append(AttestationRow(*row))
    views = [
        JobView(key, status, verdict, category(status, verdict), detail, round_, created, finished, attempts[key],
                signed[key])
        for key, status, verdict, detail, round_, created, finished in job_rows
    ]  # fmt: skip
    newest = views[0] if views else None
    head = Release(
        target.id, target.ecosystem, target.name, target.version,
        newest.category if newest else PENDING, (newest.verdict or newest.status) if newest else "no job",
        newest.finished_at if newest else None, sum(len(v.attempts) for v in views),
    )  # fmt: skip
    return ReleaseView(head, target.target, views)


def attempt(store: Store, attempt_id: int) -> tuple[AttemptRow, int, str] | None:
    """One attempt, its release's id and target."""
    with store.session() as s:
        row = s.execute(
            select(*_ATTEMPT, Target.id, Target.target)
            .join(Job, Job.key == Attempt.job_key)
            .join(Target, Target.id == Job.target_id)
            .where(Attempt.id == attempt_id)
        ).first()
    if row is None:
        return None
    *fields, target_id, target = row
    return _attempt(fields), int(target_id), str(target)


def attestation_blob(store: Store, attestation_id: int) -> str | None:
    """The blob name of an attestation's bundle."""
    with store.session() as s:
        return s.scalar(select(Attestation.bundle_blob).where(Attestation.id == attestation_id))
