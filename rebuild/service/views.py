"""What `queue ls`, `status` and `history` show: plain dictionaries read from the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from rebuild.errors import InputError
from rebuild.service.intake import normalize
from rebuild.service.models import STATES, Attempt, Attestation, Job, Target, Worker
from rebuild.service.store import Store


def _job(job: Job, target: Target, attempts: int, equivalence: str | None) -> dict[str, Any]:
    """``equivalence``: what the job's last attempt found of content equivalence (None: not decided)."""
    return {
        "key": job.key,
        "target": target.target,
        "status": job.status,
        "verdict": job.verdict,
        "equivalence": equivalence,
        "detail": job.detail,
        "tags": job.tags,
        "round": job.round,
        "attempts": attempts,
        "worker": job.lease_worker,
        "not_before": job.not_before,
        "updated_at": job.updated_at,
    }


def list_jobs(store: Store, statuses: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Raises: InputError: an unknown status."""
    unknown = sorted(set(statuses) - set(STATES))
    if unknown:
        raise InputError(f"unknown status {', '.join(unknown)}", f"one of: {', '.join(STATES)}")
    counts = select(Attempt.job_key, func.count().label("n")).group_by(Attempt.job_key).subquery()
    query = (
        select(Job, Target, func.coalesce(counts.c.n, 0), Attempt.equivalence)
        .join(Target, Job.target_id == Target.id)
        .outerjoin(counts, counts.c.job_key == Job.key)
        .outerjoin(Attempt, Attempt.id == Job.attempt_id)
        .order_by(Job.created_at, Job.key)
    )
    if statuses:
        query = query.where(Job.status.in_(tuple(statuses)))
    with store.session() as s:
        return [_job(job, target, int(n), eq) for job, target, n, eq in s.execute(query).all()]


def resolve_keys(store: Store, refs: Sequence[str]) -> list[str]:
    """Job keys (or unique prefixes of at least 8) and targets, to the keys they name.

    Raises:
        InputError: something names no job, or a prefix names several.
    """
    keys = []
    with store.session() as s:
        for ref in refs:
            by_key = Job.key.startswith(ref, autoescape=True) if len(ref) >= 8 else Job.key == ref
            prefixed = list(s.scalars(select(Job.key).where(by_key).order_by(Job.key).limit(2)))
            if len(prefixed) > 1:  # a prefix names one job or none, never "all that start so"
                raise InputError(f"{ref!r} is ambiguous: it starts several job keys ({prefixed[0][:16]}..., "
                                 f"{prefixed[1][:16]}...)", "give more of the key's hex digits")  # fmt: skip
            found = list(s.scalars(
                select(Job.key).join(Target, Job.target_id == Target.id).where(Target.target == normalize(ref))
            ))  # fmt: skip
            if not found and not prefixed:
                raise InputError(f"no job is {ref!r}", "give a job key (or 8+ of its first hex digits) or a target")
            keys += [k for k in prefixed if k not in found] + found
    return keys


def status(store: Store, target: str | None = None) -> dict[str, Any]:
    """The whole service at a glance, or one target's jobs and their last attempts."""
    live = store.live_workers()
    with store.session() as s:
        if target is None:
            by_status = dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            by_verdict = dict(s.execute(select(Job.verdict, func.count()).where(Job.verdict.is_not(None))
                                        .group_by(Job.verdict)).all())  # fmt: skip
            workers = [
                {"name": w.name, "host": w.host, "mode": w.mode, "tags": w.tags, "slots": w.slots,
                 "heartbeat_at": w.heartbeat_at, "stopped": w.stopped_at is not None}
                for w in s.scalars(select(Worker).order_by(Worker.started_at))
            ]  # fmt: skip
            signed = s.scalar(select(func.count()).select_from(Attestation)) or 0
            return {"jobs": {k: int(v) for k, v in by_status.items()},
                    "verdicts": {str(k): int(v) for k, v in by_verdict.items()},
                    "attestations": int(signed), "workers": workers, "live_workers": live}  # fmt: skip
    return {"target": normalize(target), "jobs": history(store, target)["jobs"]}


def history(store: Store, target: str) -> dict[str, Any]:
    """Every job of a target (one per builder image / verifier / upstream state) and every attempt.

    Raises:
        InputError: no such target in the store.
    """
    name = normalize(target)
    with store.session() as s:
        row = s.scalar(select(Target).where(Target.target == name))
        if row is None:
            raise InputError(f"{name} is not in the store", "queue it with: rebuild queue add TARGET")
        out = []
        for job in s.scalars(select(Job).where(Job.target_id == row.id).order_by(Job.created_at)):
            attempts = s.scalars(select(Attempt).where(Attempt.job_key == job.key).order_by(Attempt.id)).all()
            signed = s.scalars(select(Attestation).where(Attestation.job_key == job.key)).all()
            last = next((a.equivalence for a in attempts if a.id == job.attempt_id), None)
            doc = _job(job, row, len(attempts), last)
            doc["decided_by"] = json.loads(job.decided_by)
            doc["attempts"] = [_attempt(a) for a in attempts]
            doc["attestations"] = [
                {"artifact": a.artifact, "verdict": a.verdict, "bundle": a.bundle_blob, "keyid": a.keyid,
                 "published": a.published_path}
                for a in signed
            ]  # fmt: skip
            out.append(doc)
    return {"target": name, "ecosystem": row.ecosystem, "name": row.name, "version": row.version, "jobs": out}


def _attempt(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id, "round": a.round, "number": a.number, "worker": a.worker, "outcome": a.outcome,
        "classification": a.classification, "detail": a.detail, "exit_code": a.exit_code,
        "started_at": a.started_at, "seconds": a.seconds, "image": a.image_digest, "verifier": a.verifier_version,
        "artifacts": json.loads(a.artifacts or "{}"), "report": a.report_blob, "compare_report": a.compare_blob,
        "log": a.log_blob, "statements": a.statements_blob, "equivalence": a.equivalence,
    }  # fmt: skip
