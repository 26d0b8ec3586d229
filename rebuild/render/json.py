"""JSON for machines: one document on stdout per command, progress silent."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def emit(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")  # ASCII: lone surrogates are escaped


class JsonRenderer:
    def progress(self, stage: str, message: str) -> None:
        pass

    def error(self, message: str, hint: str) -> None:
        from rebuild.render.text import TextRenderer

        TextRenderer().error(message, hint)  # on stderr, as for people: stdout stays one JSON document

    def doctor(self, report: DoctorReport) -> None:
        emit(report.as_dict())

    def images(self, images: Sequence[BuilderImage]) -> None:
        emit({"images": [{"image": i.reference, "digest": i.digest, "built": i.built} for i in images]})

    def build(self, report: BuildReport, out_dir: Path) -> None:
        emit(report.as_dict())

    def verify(self, report: VerifyReport) -> None:
        emit(report.as_dict())

    def verify_failed(self, report_file: Path) -> None:
        sys.stdout.write(report_file.read_text())

    def batch(self, rows: Sequence[BatchRow]) -> None:
        emit({"results": [row.as_dict() for row in rows]})

    def buildinfo(self, path: Path) -> None:
        emit({"buildinfo": str(path)})

    def provenance(self, file: Path, statements: Sequence[dict[str, Any]], problems: Sequence[str]) -> None:
        emit({"file": str(file), "statements": list(statements), "problems": list(problems)})

    def comparison(self, result: PathsComparison) -> None:
        emit(result.as_dict())

    def key(self, info: dict[str, Any]) -> None:
        emit(info)

    def attestation_verdict(self, verdict: AttestationVerdict, threshold: int) -> None:
        emit(verdict.as_dict())

    def feeds_verdict(self, verdict: FeedsVerdict) -> None:
        emit(verdict.as_dict())

    def layout_verdict(self, verdict: LayoutVerdict) -> None:
        emit(verdict.as_dict())

    def attestations(self, shown: Sequence[dict[str, Any]]) -> None:
        emit({"verified": False, "envelopes": list(shown)})

    def check(self, report: CheckReport) -> None:
        emit(report.as_dict())
