"""What a verify run leaves behind: ``verify-report.json`` (on every path, errors included) and the rule that an
earlier run's verdict files never outlive a new run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.equivalence import Equivalence
from compare.errors import CompareError
from compare.report import ComparisonReport
from rebuild.errors import Error
from rebuild.plan import BuildPlan
from rebuild.resolution import Resolution

# What a verify run writes into its output directory; all of it is removed before a new run starts,
# so a verdict (or a report saying "reproduced") can never outlive the run that made it.
VERDICT_FILES = (
    "*.rebuild.intoto.jsonl", "*.rebuild-failed.intoto.jsonl", "verify-report.json", "compare-report.json",
    "build.log", "*.link",  # in-toto links (STEP.KEYID8.link)
)  # fmt: skip
VERDICT_DIRS = ("rebuilt", "diffoscope-*")


def clear_verdicts(out_dir: Path) -> None:
    """Remove an earlier run's verdict files from ``out_dir`` (first thing a verify does)."""
    if not out_dir.is_dir():
        return
    for pattern in VERDICT_FILES:
        for path in out_dir.glob(pattern):
            path.unlink()
    for pattern in VERDICT_DIRS:
        for path in out_dir.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def write_failure_report(
    out_dir: Path,
    target: str,
    error: Error | CompareError,
    exit_code: int | None = None,
    attempts: Sequence[AttemptRecord] | None = None,
) -> Path:
    """A run that ended in an error still leaves a report, and it says so (never a stale "reproduced").

    Without ``attempts``, those a report of this same run already lists are kept (the verdict loop writes
    them when every candidate failed to build; ``clear_verdicts`` removed any earlier run's report).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "verify-report.json"
    kept = [a.as_dict() for a in attempts] if attempts is not None else _attempts_written(path)
    doc: dict[str, Any] = {
        "target": target,
        "reproduced": False,
        "outcome": "failed verification" if error.exit_code == 1 else "could not verify",
        "exit_code": error.exit_code if exit_code is None else exit_code,
        "error": error.message,
        "hint": error.hint,
    }
    if kept:
        doc["attempts"] = kept
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def _attempts_written(path: Path) -> list[Any]:
    try:
        doc = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return []
    attempts = doc.get("attempts") if isinstance(doc, dict) else None
    return attempts if isinstance(attempts, list) else []


REPRODUCED, DIFFERS, BUILD_FAILED = "reproduced", "differs", "build failed"  # an attempt's outcome


@dataclass
class AttemptRecord:
    label: str
    environment: dict[str, Any]
    reproduced: bool
    classification: str
    seconds: float
    outcome: str = ""  # REPRODUCED, DIFFERS (a mismatch), BUILD_FAILED (could not tell)
    error: str = ""  # why the build failed
    fallback: bool = False  # added by the resolution's fallback after an earlier attempt

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VerifyReport:
    reproduced: bool
    plan: BuildPlan
    resolution: Resolution
    comparisons: list[ComparisonReport]
    attestation: Path | None
    report: Path
    stages: dict[str, float]
    fetched: list[str]
    cached: list[str]
    image_built: bool
    build_seconds: float
    attempts: list[AttemptRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    image_lock: tuple[str, ...] = ()  # package=version of the builder image, when it was made here
    in_toto_link: Path | None = None  # the signed in-toto link, written on a full match when asked for
    equivalence: dict[str, Equivalence] = field(default_factory=dict)  # --content-equivalence, per artifact

    @property
    def provenance(self) -> Path:
        return self.resolution.origin

    @property
    def provenance_signature(self) -> str:
        return str(self.resolution.signature)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.resolution.target,
            "reproduced": self.reproduced,
            "provenance": str(self.provenance),
            "provenance_signature": self.provenance_signature,
            "provenance_signature_status": self.resolution.signature.status.value,
            "provenance_sigstore": [r.as_dict() for r in self.resolution.signature.sigstore],  # who signed it
            "summary": self.resolution.summary,
            "artifacts": [c.as_dict() for c in self.comparisons],
            "published_matches_provenance": {c.name: True for c in self.comparisons},  # checked before building
            "attestation": str(self.attestation) if self.attestation else None,
            "report": str(self.report),
            "stages": self.stages,
            "build_seconds": round(self.build_seconds, 3),
            "fetched": self.fetched,
            "cached": self.cached,
            "image_built": self.image_built,
            "attempts": [a.as_dict() for a in self.attempts],
            "image_lock": list(self.image_lock),
            "in_toto_link": str(self.in_toto_link) if self.in_toto_link else None,
            "content_equivalence": {name: e.as_dict() for name, e in self.equivalence.items()},
            "deviations": list(self.plan.deviations),
            "inferences": [i.__dict__ for i in self.plan.inferences],
            "notes": self.notes,
            "plan": self.plan.external_parameters(),
        }
