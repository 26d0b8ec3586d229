"""What an adapter hands the pipeline: the plan(s) to try and the published artifacts to compare with.

Every adapter (our own provenance, foreign SLSA provenance, a PyPI release, a
Debian ``.buildinfo``) ends in a ``Resolution``. Most have one candidate plan.
Where the provenance does not record something that changes the output (the
``SOURCE_DATE_EPOCH`` a publisher used, say), the adapter lists a small,
ordered set of candidates; the pipeline tries them in order, stops at the
first exact match and records every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.plan import BuildPlan


@dataclass(frozen=True)
class Candidate:
    label: str  # what this attempt assumes, e.g. "SOURCE_DATE_EPOCH = the wheel's zip entry time"
    plan: BuildPlan


@dataclass
class Resolution:
    target: str  # what the user asked for: a file, pypi:NAME==VER, deb:SOURCE=VER
    candidates: list[Candidate]
    published: dict[str, Path]  # output name -> the published file, already checked against its digest
    origin: Path  # the document the plan came from (referenced by the attestations)
    signature_status: str  # what is known of the origin document's signature
    summary: dict[str, Any] = field(default_factory=dict)  # what `provenance show` and the report print
    notes: list[str] = field(default_factory=list)

    @property
    def plan(self) -> BuildPlan:
        return self.candidates[0].plan
