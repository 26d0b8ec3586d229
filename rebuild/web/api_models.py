"""The JSON shapes of ``/api/v1``: what the OpenAPI page documents, and what every answer is checked against.

Every string here came from a store row that a worker, a resolver or a document wrote: a client shows
it as text, never as markup. Blob fields are sha256 hex; ``links`` point at ``/api/v1/blobs/{sha256}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Problem(_Out):
    detail: str = Field(description="What is wrong, in one line.")


class TargetOut(_Out):
    id: int
    target: str = Field(description="The normalized target, as `rebuild queue add` took it.")
    ecosystem: str
    name: str
    version: str
    created_at: float
    jobs: int
    status: str | None = Field(description="The newest job's state: queued, running, done or dropped.")
    verdict: str | None = Field(description="The newest job's final verdict, once it has one.")


class TargetPage(_Out):
    total: int
    limit: int
    offset: int
    items: list[TargetOut]


class AttemptOut(_Out):
    id: int
    job_key: str
    target: str
    round: int
    number: int
    worker: str
    outcome: str | None
    classification: str
    detail: str
    exit_code: int | None
    started_at: float
    finished_at: float | None
    seconds: float | None
    image: str
    verifier: str
    artifacts: dict[str, str] = Field(description="Published file name -> its sha256, as compared.")
    rebuilt: dict[str, str] = Field(description="Rebuilt file name -> the sha256 of the rebuilt file.")
    report: str | None
    compare_report: str | None
    log: str | None
    statements: str | None
    diffoscope: str | None
    equivalence: str | None = Field(
        default=None,
        description="Content equivalence of a 'not reproduced' result: 'content-equivalent (metadata differs: "
        "timestamps)', or 'no: WHY' (one per differing artifact, '; '-joined); null when not decided.",
    )
    links: dict[str, str] = Field(description="Blob kind -> URL of the blob under /api/v1/blobs.")


class AttestationOut(_Out):
    id: int
    job_key: str
    attempt_id: int
    artifact: str
    subject_sha256: str
    verdict: str = Field(description="PASSED or FAILED.")
    bundle: str = Field(description="sha256 of the signed bundle (.intoto.jsonl) in the blob directory.")
    keyid: str
    signed_at: float
    published: str | None


class JobOut(_Out):
    key: str
    target: str
    status: str
    verdict: str | None
    detail: str
    tags: str
    round: int
    worker: str | None
    created_at: float
    finished_at: float | None
    decided_by: dict[str, Any] = Field(description="What the job's key hashes: the target and upstream digests.")
    attempts: list[AttemptOut]
    attestations: list[AttestationOut]


class ReleaseOut(_Out):
    ecosystem: str
    name: str
    version: str
    targets: list[str]
    jobs: list[JobOut] = Field(description="Every job of the release, oldest first.")


class EcosystemStats(_Out):
    ecosystem: str
    releases: int
    counts: dict[str, int] = Field(description="Releases by their newest job: reproduced, not reproduced, "
                                   "could not rebuild, queued (queued or running), dropped.")  # fmt: skip
    rate: float | None = Field(description="Reproduced over releases with a final verdict; null before one.")


class StatsOut(_Out):
    ecosystems: list[EcosystemStats]
    total: EcosystemStats
    attestations: int


class ChangeOut(_Out):
    id: int = Field(description="The cursor: pass the last one seen as `since`.")
    kind: str = Field(description="verdict (a job's final verdict) or attestation (a signed bundle).")
    at: float
    job_key: str
    target: str
    ecosystem: str
    name: str
    version: str
    verdict: str
    attestation: AttestationOut | None


class ChangesPage(_Out):
    since: int
    next: int = Field(description="The cursor to ask with next time (equal to `since` when nothing is new).")
    more: bool = Field(description="True when the page was full: ask again at once with `next`.")
    changes: list[ChangeOut]


class VerifyOut(_Out):
    purl: str = Field(description="The purl as understood (normalized).")
    ecosystem: str
    name: str
    version: str
    verdict: str | None = Field(description="The newest job's final verdict; null while it is queued or runs.")
    status: str = Field(description="The newest job's state.")
    when: float | None = Field(description="When that verdict was reached.")
    job_key: str
    attestations: list[AttestationOut] = Field(description="What this rebuilder signed for the release.")


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(max_length=300, description="pypi:NAME==VERSION or deb:SOURCE=VERSION.")
    tags: list[str] = Field(default_factory=list, max_length=16, description="KEY=VALUE routing tags.")


class QueuedOut(_Out):
    target: str
    key: str
    queued: bool = Field(description="False when a job with the same key already existed.")
    status: str
    tags: str
    note: str


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[str] = Field(min_length=1, max_length=100, description="Job keys (8+ hex digits) or targets.")


class RetryOut(_Out):
    retried: list[str] = Field(description="Keys queued again (final or dropped jobs; others are unchanged).")
