"""Verifying many targets at once: each in its own directory, one row each, never one crash for all.

The exit code of a batch is the highest of its rows': 0 all reproduced, 1 something did not
reproduce (or failed verification), 2 bad input, 3 could not rebuild.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.errors import CompareError
from rebuild.errors import EXIT_ENVIRONMENT, Error, InputError
from rebuild.report import VerifyReport
from rebuild.untrusted import path_component

VERDICTS = ("reproduced", "not reproduced", "failed verification", "could not rebuild")


@dataclass(frozen=True)
class BatchRow:
    target: str
    verdict: str  # one of VERDICTS
    detail: str  # the classification of a mismatch, or why it could not be rebuilt
    exit_code: int
    seconds: float
    attempts: int = 0
    matched: str | None = None  # the label of the attempt that reproduced
    report: str | None = None
    attestation: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    # --content-equivalence on a mismatch: "content-equivalent (metadata differs: ...)" or "no: WHY"; "" when not asked
    equivalence: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_targets(targets: Sequence[str], from_file: Path | None) -> list[str]:
    """The targets given, then those in ``from_file`` (one per line, ``#`` comments).

    Raises:
        InputError: the file cannot be read, or there is nothing to verify.
    """
    found = list(targets)
    if from_file is not None:
        try:
            lines = from_file.read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read --from {from_file}: {e}") from e
        found += [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    if not found:
        raise InputError(
            "nothing to verify", "give a provenance file, pypi:NAME==VERSION, deb:SOURCE=VERSION or --from"
        )
    return found


def target_directory(out_dir: Path, target: str) -> Path:
    """Where one target of a batch writes: a single safe path component made from the target."""
    return out_dir / path_component(Path(target).name if Path(target).exists() else target)


def target_directories(out_dir: Path, targets: Sequence[str]) -> dict[str, Path]:
    """One directory per target, never shared: two files with one name get ``NAME`` and ``NAME-2``
    (the second run would otherwise clear the first one's verdict)."""
    chosen: dict[str, Path] = {}
    taken: set[Path] = set()
    for target in targets:
        path, number = target_directory(out_dir, target), 1
        while path in taken:
            number += 1
            path = target_directory(out_dir, target).with_name(f"{target_directory(out_dir, target).name}-{number}")
        taken.add(path)
        chosen.setdefault(target, path)
    return chosen


def row_of(target: str, report: VerifyReport, seconds: float) -> BatchRow:
    return BatchRow(
        target=target,
        verdict="reproduced" if report.reproduced else "not reproduced",
        detail=next((a.classification for a in reversed(report.attempts) if a.outcome != "build failed"), ""),
        exit_code=0 if report.reproduced else 1,
        seconds=seconds,
        attempts=len(report.attempts),
        matched=next((a.label for a in report.attempts if a.reproduced), None),
        report=str(report.report),
        attestation=str(report.attestation) if report.attestation else None,
        summary=dict(report.resolution.summary),
        equivalence=equivalence_column(report),
    )


def equivalence_column(report: VerifyReport) -> str:
    """What the batch table says of content equivalence: one label per artifact that differs."""
    if report.reproduced or not report.equivalence:
        return ""
    labels = [e.label if e.equivalent else "no: " + e.label.removeprefix("not content-equivalent: ")
              for e in report.equivalence.values()]  # fmt: skip
    return "; ".join(dict.fromkeys(labels))


def verify_batch(
    targets: Sequence[str],
    verify_one: Callable[[str], VerifyReport],
    *,
    on_error: Callable[[BaseException], None] = lambda e: None,
    progress: Callable[[str, str], None] = lambda s, m: None,
) -> list[BatchRow]:
    """Verify each target in turn; a failure (even an internal error) becomes that target's row."""
    rows = []
    for target in targets:
        progress("target", target)
        started = time.monotonic()
        try:
            report = verify_one(target)
        except (Error, CompareError) as e:
            on_error(e)
            verdict = "failed verification" if e.exit_code == 1 else "could not rebuild"
            rows.append(BatchRow(target, verdict, e.message, e.exit_code, time.monotonic() - started))
        except Exception as e:  # a bug in one target must not lose the others' results
            on_error(e)
            detail = f"internal error: {type(e).__name__}: {e}"
            rows.append(BatchRow(target, "could not rebuild", detail, EXIT_ENVIRONMENT, time.monotonic() - started))
        else:
            rows.append(row_of(target, report, time.monotonic() - started))
    return [dataclasses.replace(row, seconds=round(row.seconds, 1)) for row in rows]


def exit_code(rows: Sequence[BatchRow]) -> int:
    """The highest of the rows' exit codes (0 only when every target reproduced)."""
    return max((row.exit_code for row in rows), default=0)
