"""What the read endpoints of ``/api/v1`` answer: plain dictionaries from the store, in bounded queries.

A *release* is an (ecosystem, name, version); a target is how it was queued. Its verdict is its newest
job's. Store rows are written by workers from hostile documents: JSON columns are parsed tolerantly
(anything but an object of strings becomes ``{}``) and nothing here is trusted to be markup-free.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from packaging.utils import canonicalize_name
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from rebuild.service import jobs
from rebuild.service.models import DROPPED, Attempt, Attestation, Change, Job, Target
from rebuild.service.store import Store
from rebuild.web.purl import Purl

BLOB_KINDS = ("log", "report", "compare_report", "statements", "diffoscope")
_NOT_REPRODUCED = (jobs.NOT_REPRODUCED, jobs.FAILED_VERIFICATION)
_COULD_NOT = (jobs.BAD_INPUT, jobs.COULD_NOT_REBUILD)


def _names(raw: str | None) -> dict[str, str]:
    if not raw or raw == "{}":
        return {}
    try:
        doc = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)}


def category(status: str, verdict: str | None) -> str:
    """The dashboard's four headline categories (and dropped), from a job's state and verdict."""
    if verdict == jobs.REPRODUCED:
        return "reproduced"
    if verdict in _NOT_REPRODUCED:
        return "not reproduced"
    if verdict in _COULD_NOT or verdict is not None:
        return "could not rebuild"
    return "dropped" if status == DROPPED else "queued"


def attempt_doc(a: Attempt, target: str) -> dict[str, Any]:
    blobs = {"log": a.log_blob, "report": a.report_blob, "compare_report": a.compare_blob,
             "statements": a.statements_blob, "diffoscope": a.diffoscope_blob}  # fmt: skip
    return {
        "id": a.id, "job_key": a.job_key, "target": target, "round": a.round, "number": a.number,
        "worker": a.worker, "outcome": a.outcome, "classification": a.classification, "detail": a.detail,
        "exit_code": a.exit_code, "started_at": a.started_at, "finished_at": a.finished_at, "seconds": a.seconds,
        "image": a.image_digest, "verifier": a.verifier_version, "artifacts": _names(a.artifacts),
        "rebuilt": _names(a.rebuilt_blobs), "equivalence": a.equivalence, **blobs,
        "links": {kind: f"/api/v1/blobs/{sha}" for kind, sha in blobs.items() if sha},
    }  # fmt: skip


def attestation_doc(a: Attestation) -> dict[str, Any]:
    return {
        "id": a.id, "job_key": a.job_key, "attempt_id": a.attempt_id, "artifact": a.artifact,
        "subject_sha256": a.subject_sha256, "verdict": a.verdict, "bundle": a.bundle_blob, "keyid": a.keyid,
        "signed_at": a.signed_at, "published": a.published_path,
    }  # fmt: skip


def _newest_jobs(s: Session, target_ids: Sequence[int]) -> dict[int, Job]:
    newest: dict[int, Job] = {}
    if target_ids:
        for job in s.scalars(select(Job).where(Job.target_id.in_(tuple(target_ids))).order_by(Job.created_at, Job.key)):
            newest[job.target_id] = job
    return newest


def targets(store: Store, ecosystem: str | None, name: str | None, limit: int, offset: int) -> dict[str, Any]:
    query = select(Target)
    if ecosystem is not None:
        query = query.where(Target.ecosystem == ecosystem)
    if name is not None:
        query = query.where(Target.name == name)
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Target.id).limit(limit).offset(offset)).all()
        ids = [t.id for t in rows]
        counts = dict(s.execute(select(Job.target_id, func.count()).where(Job.target_id.in_(ids))
                                .group_by(Job.target_id)).all()) if ids else {}  # fmt: skip
        newest = _newest_jobs(s, ids)
    items = [
        {"id": t.id, "target": t.target, "ecosystem": t.ecosystem, "name": t.name, "version": t.version,
         "created_at": t.created_at, "jobs": int(counts.get(t.id, 0)),
         "status": newest[t.id].status if t.id in newest else None,
         "verdict": newest[t.id].verdict if t.id in newest else None}
        for t in rows
    ]  # fmt: skip
    return {"total": int(total), "limit": limit, "offset": offset, "items": items}


def release_targets_query(ecosystem: str, name: str, version: str) -> Select[Target]:
    """The targets of a release, by equality, so the index on (ecosystem, name) answers in one look-up.

    A PyPI name is compared in its PEP 503 form (``Foo_Bar`` is ``foo-bar``), the form intake stores, and
    as given: a row queued before intake stored that form keeps the spelling it was queued with.
    """
    names = {str(canonicalize_name(name)), name} if ecosystem == "pypi" else {name}
    where = (Target.ecosystem == ecosystem, Target.name.in_(sorted(names)), Target.version == version)
    return select(Target).where(*where).order_by(Target.id)


def _release_targets(s: Session, ecosystem: str, name: str, version: str) -> list[Target]:
    return list(s.scalars(release_targets_query(ecosystem, name, version)))


def release(store: Store, ecosystem: str, name: str, version: str) -> dict[str, Any] | None:
    """Every job, attempt and attestation of a release; None when the store has none."""
    with store.session() as s:
        found = _release_targets(s, ecosystem, name, version)
        if not found:
            return None
        by_id = {t.id: t for t in found}
        job_rows = s.scalars(select(Job).where(Job.target_id.in_(tuple(by_id))).order_by(Job.created_at, Job.key))
        out = []
        for job in job_rows:
            target = by_id[job.target_id].target
            attempts = s.scalars(select(Attempt).where(Attempt.job_key == job.key).order_by(Attempt.id)).all()
            signed = s.scalars(select(Attestation).where(Attestation.job_key == job.key).order_by(Attestation.id))
            try:
                decided = json.loads(job.decided_by)
            except ValueError:
                decided = {}
            out.append({
                "key": job.key, "target": target, "status": job.status, "verdict": job.verdict, "detail": job.detail,
                "tags": job.tags, "round": job.round, "worker": job.lease_worker, "created_at": job.created_at,
                "finished_at": job.finished_at, "decided_by": decided if isinstance(decided, dict) else {},
                "attempts": [attempt_doc(a, target) for a in attempts],
                "attestations": [attestation_doc(a) for a in signed],
            })  # fmt: skip
        first = found[0]
        return {"ecosystem": first.ecosystem, "name": first.name, "version": first.version,
                "targets": [t.target for t in found], "jobs": out}  # fmt: skip


def attempt(store: Store, attempt_id: int) -> dict[str, Any] | None:
    with store.session() as s:
        row = s.execute(
            select(Attempt, Target.target)
            .join(Job, Attempt.job_key == Job.key)
            .join(Target, Job.target_id == Target.id)
            .where(Attempt.id == attempt_id)
        ).first()
        return attempt_doc(row[0], row[1]) if row is not None else None


def _stats_row(ecosystem: str, counts: Counter[str]) -> dict[str, Any]:
    decided = counts["reproduced"] + counts["not reproduced"] + counts["could not rebuild"]
    return {"ecosystem": ecosystem, "releases": sum(counts.values()),
            "counts": {c: counts[c] for c in ("reproduced", "not reproduced", "could not rebuild", "queued",
                                              "dropped")},
            "rate": counts["reproduced"] / decided if decided else None}  # fmt: skip


def stats(store: Store) -> dict[str, Any]:
    """Targets per ecosystem by the category of their newest job, and the reproduced rate (as the dashboard
    counts releases: one target, one release)."""
    newest = select(Job.target_id, func.max(Job.created_at).label("at")).group_by(Job.target_id).subquery()
    with store.session() as s:
        rows = s.execute(
            select(Target.ecosystem, Job.status, Job.verdict, func.count(func.distinct(Target.id)))
            .join(Job, Job.target_id == Target.id)
            .join(newest, and_(newest.c.target_id == Job.target_id, newest.c.at == Job.created_at))
            .group_by(Target.ecosystem, Job.status, Job.verdict)
        ).all()
        signed = s.scalar(select(func.count()).select_from(Attestation)) or 0
    per: dict[str, Counter[str]] = {}
    for ecosystem, status, verdict, count in rows:
        per.setdefault(ecosystem, Counter())[category(status, verdict)] += int(count)
    total: Counter[str] = Counter()
    for counts in per.values():
        total.update(counts)
    return {"ecosystems": [_stats_row(e, per[e]) for e in sorted(per)], "total": _stats_row("all", total),
            "attestations": int(signed)}  # fmt: skip


def changes(store: Store, since: int, limit: int) -> dict[str, Any]:
    """Feed entries after the cursor ``since``, oldest first (the cursor is the ``changes`` table's id)."""
    with store.session() as s:
        rows = s.execute(
            select(Change, Target)
            .join(Job, Change.job_key == Job.key)
            .join(Target, Job.target_id == Target.id)
            .where(Change.id > since)
            .order_by(Change.id)
            .limit(limit)
        ).all()
        wanted = [c.attestation_id for c, _ in rows if c.attestation_id is not None]
        signed = {a.id: a for a in s.scalars(select(Attestation).where(Attestation.id.in_(wanted)))} if wanted else {}
    entries = [
        {"id": c.id, "kind": c.kind, "at": c.at, "job_key": c.job_key, "target": t.target, "ecosystem": t.ecosystem,
         "name": t.name, "version": t.version, "verdict": c.verdict,
         "attestation": attestation_doc(signed[c.attestation_id]) if c.attestation_id in signed else None}
        for c, t in rows
    ]  # fmt: skip
    return {"since": since, "next": entries[-1]["id"] if entries else since, "more": len(entries) == limit,
            "changes": entries}  # fmt: skip


def verify(store: Store, purl: Purl) -> dict[str, Any] | None:
    """What this rebuilder says about a release: its newest job's verdict and what it signed."""
    with store.session() as s:
        found = _release_targets(s, purl.ecosystem, purl.name, purl.version)
        if not found:
            return None
        all_jobs = s.scalars(
            select(Job).where(Job.target_id.in_(tuple(t.id for t in found))).order_by(Job.created_at, Job.key)
        ).all()
        if not all_jobs:
            return None
        newest = all_jobs[-1]
        signed = s.scalars(select(Attestation).where(Attestation.job_key == newest.key).order_by(Attestation.id)).all()
    return {
        "purl": str(purl), "ecosystem": purl.ecosystem, "name": purl.name, "version": purl.version,
        "verdict": newest.verdict, "status": newest.status, "when": newest.finished_at, "job_key": newest.key,
        "attestations": [attestation_doc(a) for a in signed],
    }  # fmt: skip


def bundles_for_digest(store: Store, sha256: str, limit: int) -> tuple[list[str], bool]:
    """The bundle blobs of the attestations whose subject is ``sha256``, newest first: the ``limit`` newest,
    and always each signing key's newest (so a key's latest word, a FAILED after many PASSED, is never the one
    left out); and whether any was left out (never silently: the API says so in a header).
    """
    where = Attestation.subject_sha256 == sha256
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(Attestation).where(where)) or 0
        per_key = select(func.max(Attestation.id)).where(where).group_by(Attestation.keyid)
        newest = select(Attestation.id).where(where).order_by(Attestation.id.desc()).limit(limit)
        rows = s.execute(
            select(Attestation.bundle_blob)
            .where(where, Attestation.id.in_(per_key) | Attestation.id.in_(newest.scalar_subquery()))
            .order_by(Attestation.id.desc())
        ).all()
    return [row[0] for row in rows], int(total) > len(rows)
