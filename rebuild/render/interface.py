"""What a renderer must show: one method per kind of result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from compare.report import PathsComparison
from rebuild.attest.policy import AttestationVerdict
from rebuild.batch import BatchRow
from rebuild.build.images import BuilderImage
from rebuild.check.report import CheckReport
from rebuild.doctor import DoctorReport
from rebuild.release import BuildReport
from rebuild.report import VerifyReport

if TYPE_CHECKING:  # in-toto is imported only by the commands that speak it
    from rebuild.attest.feeds import FeedsVerdict
    from rebuild.attest.intoto import LayoutVerdict


class Renderer(Protocol):
    def progress(self, stage: str, message: str) -> None:
        """A line about work under way (on stderr; silent for machines)."""

    def error(self, message: str, hint: str) -> None: ...

    def doctor(self, report: DoctorReport) -> None: ...

    def images(self, images: Sequence[BuilderImage]) -> None: ...

    def build(self, report: BuildReport, out_dir: Path) -> None: ...

    def verify(self, report: VerifyReport) -> None: ...

    def verify_failed(self, report_file: Path) -> None:
        """A single verify that ended in an error: its failure report (machines get it on stdout)."""

    def batch(self, rows: Sequence[BatchRow]) -> None: ...

    def buildinfo(self, path: Path) -> None: ...

    def provenance(self, file: Path, statements: Sequence[dict[str, Any]], problems: Sequence[str]) -> None: ...

    def comparison(self, result: PathsComparison) -> None: ...

    def key(self, info: dict[str, Any]) -> None: ...

    def attestation_verdict(self, verdict: AttestationVerdict, threshold: int) -> None: ...

    def feeds_verdict(self, verdict: FeedsVerdict) -> None:
        """`attestation verify --from-feed`: what each rebuilder (feed, key) said, passed or not."""

    def layout_verdict(self, verdict: LayoutVerdict) -> None:
        """An in-toto layout's verification: PASSED with its steps and links, or (for machines) FAILED too."""

    def attestations(self, shown: Sequence[dict[str, Any]]) -> None: ...

    def check(self, report: CheckReport) -> None:
        """`rebuild check`: a row per variation (identical? what differs), the culprits, the builds run."""
