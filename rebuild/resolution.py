"""What an adapter hands the pipeline: the plan(s) to try and the published artifacts to compare with.

Every adapter (our own provenance, foreign SLSA provenance, a PyPI release, a
Debian ``.buildinfo``) ends in a ``Resolution``. Most have one candidate plan.
Where the provenance does not record something that changes the output (the
``SOURCE_DATE_EPOCH`` a publisher used, say), the adapter lists a small,
ordered set of candidates; the pipeline tries them in order, stops at the
first exact match and records every attempt.

What is known of the origin document's signature is a ``Signature``: a
status to decide on, and the words a report prints.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from compare.report import ComparisonReport
from rebuild.attest.sigstore import SigstoreResult
from rebuild.plan import BuildPlan


class SignatureStatus(enum.Enum):
    """What is known of a document's signature. Only VERIFIED counts when keys are given."""

    VERIFIED = "verified"
    SIGSTORE_VERIFIED = "verified with Sigstore"  # the certificate, the log entry, the identity policy
    DOES_NOT_VERIFY = "does not verify"
    SIGSTORE_DOES_NOT_VERIFY = "sigstore, does not verify"  # a certificate, a log entry or a signature is wrong
    IDENTITY_MISMATCH = "signed by another identity"  # Sigstore: not whom the policy expects
    SIGSTORE_NOT_CHECKED = "sigstore, not checked"  # a bundle the library cannot check (named in ``detail``)
    NOT_CHECKED = "signed, not checked"
    UNSIGNED = "unsigned"
    DESCRIBED = "described"  # known only by an adapter's words (see ``Signature.described``)


@dataclass(frozen=True)
class Signature:
    """What is known of a document's signature.

    ``detail`` replaces the standard words where they do not say enough: which
    keyring verified an archive's InRelease, that a ``.buildinfo``'s OpenPGP
    block was not checked, that a release's files are checked against an
    index's digests instead.
    """

    status: SignatureStatus
    keyid: str = ""  # the trusted key that verified it
    detail: str = ""
    sigstore: tuple[SigstoreResult, ...] = ()  # who signed, when SIGSTORE_VERIFIED (PEP 740: one per file)

    @classmethod
    def described(cls, text: str) -> Signature:
        """A signature known only by an adapter's words, with no status to decide on."""
        return cls(SignatureStatus.DESCRIBED, detail=text)

    def trusted(self, pinned: bool) -> bool:
        """Verified by a trusted key, or by Sigstore under an identity the user pinned."""
        return self.status is SignatureStatus.VERIFIED or (self.status is SignatureStatus.SIGSTORE_VERIFIED and pinned)

    @property
    def trusted_builder(self) -> bool:
        """Verified with Sigstore, and every signer is a ``--trusted-builder`` (never without a verified identity)."""
        return (
            self.status is SignatureStatus.SIGSTORE_VERIFIED
            and bool(self.sigstore)
            and all(r.trusted_builder for r in self.sigstore)
        )

    @property
    def refused(self) -> bool:
        """A Sigstore signature that was checked and is wrong, or whose signer is not the expected one."""
        return self.status in (SignatureStatus.SIGSTORE_DOES_NOT_VERIFY, SignatureStatus.IDENTITY_MISMATCH)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "words": str(self), "sigstore": [r.as_dict() for r in self.sigstore]}

    def __str__(self) -> str:
        if self.detail or self.status is SignatureStatus.DESCRIBED:
            return self.detail
        return {
            SignatureStatus.VERIFIED: f"verified with key {self.keyid[:16]}",
            SignatureStatus.DOES_NOT_VERIFY: "signature does NOT verify with the given key(s)",
            SignatureStatus.SIGSTORE_VERIFIED: "verified with Sigstore",
            SignatureStatus.SIGSTORE_DOES_NOT_VERIFY: "Sigstore signature does NOT verify",
            SignatureStatus.IDENTITY_MISMATCH: "signed with Sigstore by another identity than the expected one",
            SignatureStatus.SIGSTORE_NOT_CHECKED: "signed with a Sigstore certificate: not checked",
            SignatureStatus.NOT_CHECKED: "signed, not checked (no --provenance-key)",
            SignatureStatus.UNSIGNED: "unsigned",
        }[self.status]


@dataclass(frozen=True)
class Candidate:
    label: str  # what this attempt assumes, e.g. "SOURCE_DATE_EPOCH = the wheel's zip entry time"
    plan: BuildPlan


@dataclass(frozen=True)
class Outcome:
    """What came of one candidate, as a resolution's fallback sees it: a failed build, or a comparison."""

    candidate: Candidate
    build_error: str = ""  # the build failed: its one-line message ("" when it built)
    build_log: str = ""  # the end of a failed build's log (untrusted: the build wrote it)
    comparisons: tuple[ComparisonReport, ...] = ()  # the rebuilt files against the published ones


@dataclass(frozen=True)
class Followup:
    """What a fallback adds after an attempt: candidates to try next, and the pending ones as rewritten.

    ``pending`` replaces the candidates not tried yet one for one (e.g. the same option dropped from each);
    None leaves them as they are. Each of ``extra`` counts against the verify loop's bound.
    """

    extra: tuple[Candidate, ...] = ()
    pending: tuple[Candidate, ...] | None = None
    notes: tuple[str, ...] = ()  # for the report: what was tried next, and why


class Fallback(Protocol):
    """An adapter's hook, called after each attempt that did not reproduce (``verify.verify_resolution``)."""

    def __call__(self, outcome: Outcome, pending: Sequence[Candidate]) -> Followup: ...


@dataclass(init=False)
class Resolution:
    target: str  # what the user asked for: a file, pypi:NAME==VER, deb:SOURCE=VER
    candidates: list[Candidate]
    published: dict[str, Path]  # output name -> the published file, already checked against its digest
    origin: Path  # the document the plan came from (referenced by the attestations)
    signature: Signature  # what is known of the origin document's signature
    summary: dict[str, Any]  # what `provenance show` and the report print
    notes: list[str]
    fallback: Fallback | None = None  # more candidates decided from an attempt's outcome (PyPI: setuptools)

    def __init__(
        self,
        target: str,
        candidates: list[Candidate],
        published: dict[str, Path],
        origin: Path,
        signature_status: Signature | str,
        summary: dict[str, Any] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        """``signature_status`` as text is ``Signature.described(text)``: for adapters that do not give one yet."""
        self.target = target
        self.candidates = candidates
        self.published = published
        self.origin = origin
        self.signature = (
            signature_status if isinstance(signature_status, Signature) else Signature.described(signature_status)
        )
        self.summary = {} if summary is None else summary
        self.notes = [] if notes is None else notes

    @property
    def signature_status(self) -> str:
        """The signature in words, as reports print it (``str(self.signature)``)."""
        return str(self.signature)

    @property
    def plan(self) -> BuildPlan:
        return self.candidates[0].plan
