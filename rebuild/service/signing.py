"""Only the service signs: final results become signed bundles, with the service key.

A worker leaves the statements ``rebuild verify`` would sign, unsigned, in the blob directory. Here the
service checks each one against what the store recorded before it signs anything: a PASSED summary only
for a job whose final verdict is "reproduced", about a digest the attempt compared; a FAILED summary
(naming the comparison report's digest) for every final "not reproduced"; SLSA provenance of the rebuild
only beside a PASSED; a content-equivalence claim beside the FAILED summary of the same artifact, in its
bundle, only after ``claims.check_claim`` found it agrees with the store. Other final verdicts (bad input,
could not rebuild, failed verification) are recorded in the store and signed by no one: nothing was rebuilt
and compared.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import parse_envelopes
from rebuild.attest.keys import Signer
from rebuild.attest.statements import ParsedStatement, parse_statement
from rebuild.errors import InputError, VerificationError
from rebuild.service import jobs
from rebuild.service.blobs import BlobStore
from rebuild.service.claims import check_claim
from rebuild.service.models import DONE, Attempt, Attestation, Job
from rebuild.service.store import Store

SIGNED_VERDICTS = {jobs.REPRODUCED: "PASSED", jobs.NOT_REPRODUCED: "FAILED"}


def sign_pending(store: Store, blobs: BlobStore, signer: Signer) -> tuple[list[dict[str, Any]], list[str]]:
    """Sign every final reproduced / not-reproduced result that has no attestation yet.

    Returns what was signed, and why each result that was not signed was refused (its statements
    disagree with the store, or its blobs are missing or altered): one bad result never stops the others.
    """
    signed, refused = [], []
    verifier_id = store.settings().get("verifier_id")
    with store.session() as s:
        have = select(Attestation.job_key)
        pending = s.scalars(
            select(Job).where(Job.status == DONE, Job.verdict.in_(tuple(SIGNED_VERDICTS)), Job.key.not_in(have))
        ).all()
        for job in pending:
            attempt = s.get(Attempt, job.attempt_id) if job.attempt_id is not None else None
            if attempt is None or attempt.statements_blob is None:
                continue
            try:
                bundles = bundles_for(job, attempt, blobs, signer, verifier_id)
            except (VerificationError, InputError) as e:
                said = f"job {job.key[:16]}: "
                refused.append(e.message if e.message.startswith(said) else said + e.message)
                continue
            for artifact, sha256, bundle in bundles:
                row = Attestation(
                    job_key=job.key, attempt_id=attempt.id, artifact=artifact, subject_sha256=sha256,
                    verdict=SIGNED_VERDICTS[str(job.verdict)], bundle_blob=blobs.put_bytes(bundle),
                    keyid=signer.keyid, signed_at=time.time(),
                )  # fmt: skip
                s.add(row)
                signed.append({"key": job.key, "artifact": artifact, "verdict": row.verdict, "bundle": row.bundle_blob})
    return signed, refused


def bundles_for(
    job: Job, attempt: Attempt, blobs: BlobStore, signer: Signer, verifier_id: str | None = None
) -> list[tuple[str, str, bytes]]:
    """``(artifact, its sha256, the signed .intoto.jsonl)`` per artifact, after checking every statement.

    Raises:
        VerificationError: a statement disagrees with the recorded verdict or artifacts.
    """
    assert attempt.statements_blob is not None
    passed = job.verdict == jobs.REPRODUCED
    compared: dict[str, str] = json.loads(attempt.artifacts or "{}")
    text = blobs.read_bytes(attempt.statements_blob).decode()
    provenance: list[bytes] = []
    summaries: list[tuple[str, str, bytes]] = []
    claims: list[tuple[ParsedStatement, bytes]] = []
    inputs: dict[str, object] = {}  # a FAILED summary's subject sha256 -> its inputAttestations
    for loaded in parse_envelopes(text, f"statements of attempt {attempt.id}"):
        payload = loaded.envelope.payload
        statement = parse_statement(payload, f"attempt {attempt.id}")
        digests = {d.get("sha256", "") for d in (subject.digest for subject in statement.subjects)}
        if statement.predicate_type == uris.SLSA_PROVENANCE_V1:
            if not passed:
                raise VerificationError(f"job {job.key[:16]}: rebuild provenance for a result that did not pass")
            provenance.append(payload)
            continue
        if statement.predicate_type == uris.CONTENT_EQUIVALENCE_V1:
            if passed:
                raise VerificationError(f"job {job.key[:16]}: a content-equivalence claim for a result that passed")
            claims.append((statement, payload))
            continue
        if statement.predicate_type != uris.SLSA_VSA_V1:
            raise VerificationError(f"job {job.key[:16]}: unexpected statement {statement.predicate_type}")
        result = statement.predicate.get("verificationResult")
        if len(statement.subjects) != 1:
            raise VerificationError(f"job {job.key[:16]}: a summary has {len(statement.subjects)} subjects, not one")
        (sha256,) = digests
        name = next((n for n, d in compared.items() if d == sha256), None)
        if result != ("PASSED" if passed else "FAILED") or name is None:
            raise VerificationError(f"job {job.key[:16]}: a summary says {result} about {sha256[:16]}, which the "
                                    f"store does not record as {job.verdict} for a compared artifact")  # fmt: skip
        report = statement.predicate.get("report")
        if not passed and (
            not isinstance(report, dict) or report.get("digest", {}).get("sha256") != attempt.compare_blob
        ):
            raise VerificationError(f"job {job.key[:16]}: the FAILED summary does not name the recorded report")
        if sha256 in {s[1] for s in summaries}:
            raise VerificationError(f"job {job.key[:16]}: two summaries about {sha256[:16]}")
        summaries.append((name, sha256, payload))
        inputs[sha256] = statement.predicate.get("inputAttestations")
    claimed: dict[str, bytes] = {}
    for statement, payload in claims:
        _, sha256, _ = check_claim(statement, attempt, blobs, compared, inputs, verifier_id)
        if sha256 in claimed:
            raise VerificationError(f"job {job.key[:16]}: two content-equivalence claims about {sha256[:16]}")
        claimed[sha256] = payload
    out = []
    for name, sha256, payload in summaries:
        ours = [p for p in provenance if sha256 in _subject_digests(p)]
        beside = [claimed[sha256]] if sha256 in claimed else []  # never instead of the FAILED summary
        envelopes = [dsse.sign(p, [signer]) for p in [*ours, payload, *beside]]
        out.append((name, sha256, "".join(e.to_json() + "\n" for e in envelopes).encode()))
    return out


def _subject_digests(payload: bytes) -> set[str]:
    return {subject.digest.get("sha256", "") for subject in parse_statement(payload).subjects}
