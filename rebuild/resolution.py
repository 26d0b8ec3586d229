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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.plan import BuildPlan


class SignatureStatus(enum.Enum):
    """What is known of a document's signature. Only VERIFIED counts when keys are given."""

    VERIFIED = "verified"
    DOES_NOT_VERIFY = "does not verify"
    SIGSTORE_NOT_CHECKED = "sigstore, not checked"
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

    @classmethod
    def described(cls, text: str) -> Signature:
        """A signature known only by an adapter's words, with no status to decide on."""
        return cls(SignatureStatus.DESCRIBED, detail=text)

    def __str__(self) -> str:
        if self.detail or self.status is SignatureStatus.DESCRIBED:
            return self.detail
        return {
            SignatureStatus.VERIFIED: f"verified with key {self.keyid[:16]}",
            SignatureStatus.DOES_NOT_VERIFY: "signature does NOT verify with the given key(s)",
            SignatureStatus.SIGSTORE_NOT_CHECKED: (
                "signed with a Sigstore certificate: not checked (needs the Sigstore trust root; pass --provenance-key)"
            ),
            SignatureStatus.NOT_CHECKED: "signed, not checked (no --provenance-key)",
            SignatureStatus.UNSIGNED: "unsigned",
        }[self.status]


@dataclass(frozen=True)
class Candidate:
    label: str  # what this attempt assumes, e.g. "SOURCE_DATE_EPOCH = the wheel's zip entry time"
    plan: BuildPlan


@dataclass(init=False)
class Resolution:
    target: str  # what the user asked for: a file, pypi:NAME==VER, deb:SOURCE=VER
    candidates: list[Candidate]
    published: dict[str, Path]  # output name -> the published file, already checked against its digest
    origin: Path  # the document the plan came from (referenced by the attestations)
    signature: Signature  # what is known of the origin document's signature
    summary: dict[str, Any]  # what `provenance show` and the report print
    notes: list[str]

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
