"""One comparison, start to end: the byte verdict, then (only if different) the explanations."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from compare.archive import Budget
from compare.diffoscope import DiffoscopeResult, run_diffoscope
from compare.errors import CompareError
from compare.explain import Explanation, explain_files
from compare.verdict import FileVerdict, SetVerdict, compare_files, compare_sets, list_files


class Explainer(Protocol):
    def explain(self, a: Path, b: Path, side_names: tuple[str, str]) -> Explanation: ...


class StructuralExplainer:
    def __init__(self, budget_factory: type[Budget] = Budget) -> None:
        self.budget_factory = budget_factory

    def explain(self, a: Path, b: Path, side_names: tuple[str, str]) -> Explanation:
        return explain_files(a, b, self.budget_factory(), side_names)


@dataclass(frozen=True)
class ComparisonReport:
    name: str
    verdict: FileVerdict
    explanation: Explanation | None
    diffoscope: DiffoscopeResult | None

    @property
    def identical(self) -> bool:
        return self.verdict.identical

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "identical": self.identical,
            "verdict": self.verdict.as_dict(),
            "explanation": self.explanation.as_dict() if self.explanation else None,
            "diffoscope": self.diffoscope.as_dict() if self.diffoscope else None,
        }


def compare_artifacts(
    a: Path,
    b: Path,
    *,
    name: str = "",
    explainer: Explainer | None = None,
    diffoscope_dir: Path | None = None,
    diffoscope_formats: tuple[str, ...] = ("json",),
    diffoscope_timeout_s: float = 600.0,
    side_names: tuple[str, str] = ("a", "b"),
) -> ComparisonReport:
    """Compare two files. The verdict comes from bytes; explanations are added only when they differ.

    Raises:
        CompareError: an input cannot be read.
    """
    verdict = compare_files(a, b)
    if verdict.identical:
        return ComparisonReport(name or b.name, verdict, None, None)
    explanation = (explainer or StructuralExplainer()).explain(a, b, side_names)
    diff = None
    if diffoscope_dir is not None:
        diff = run_diffoscope(a, b, diffoscope_dir, diffoscope_formats, diffoscope_timeout_s)
        if diff.note:
            explanation.notes.append(diff.note)
    return ComparisonReport(name or b.name, verdict, explanation, diff)


def write_report(reports: list[ComparisonReport], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"comparisons": [r.as_dict() for r in reports]}, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class PathsComparison:
    """Two files, or two directories (their file sets, then each file present on both sides)."""

    a: Path
    b: Path
    sets: SetVerdict | None  # None for two files
    reports: list[ComparisonReport]

    @property
    def identical(self) -> bool:
        return all(r.identical for r in self.reports) and (self.sets is None or self.sets.identical)

    def as_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "sets": self.sets.as_dict() if self.sets else None,
            "comparisons": [r.as_dict() for r in self.reports],
        }


def compare_paths(
    a: Path,
    b: Path,
    *,
    report_dir: Path | None = None,
    diffoscope: bool = False,
    diffoscope_formats: tuple[str, ...] = ("json",),
    diffoscope_timeout_s: float = 600.0,
) -> PathsComparison:
    """``rebuild compare A B``: two files or two directories, explained; a report in ``report_dir`` if given.

    Without ``report_dir``, diffoscope's reports go to a new temporary directory (named in the result).

    Raises:
        CompareError: a path does not exist, or one is a file and the other a directory.
    """
    for path in (a, b):
        if not path.exists():
            raise CompareError(f"{path} does not exist")
    if a.is_dir() != b.is_dir():
        raise CompareError("compare two files or two directories, not one of each")
    reports_root = report_dir
    if diffoscope and reports_root is None:
        reports_root = Path(tempfile.mkdtemp(prefix="rebuild-compare-"))
    sets: SetVerdict | None = None
    if a.is_dir():
        files_a, files_b = list_files(a), list_files(b)
        sets = compare_sets(files_a, files_b)
        pairs = [(files_a[n], files_b[n], n) for n in sets.differing]
    else:
        pairs = [(a, b, b.name)]
    reports = [
        compare_artifacts(
            pa,
            pb,
            name=name,
            diffoscope_dir=reports_root / f"diffoscope-{name.replace('/', '_')}"
            if diffoscope and reports_root
            else None,
            diffoscope_formats=diffoscope_formats,
            diffoscope_timeout_s=diffoscope_timeout_s,
            side_names=(str(a), str(b)),
        )
        for pa, pb, name in pairs
    ]
    if report_dir is not None:
        write_report(reports, report_dir / "compare-report.json")
    return PathsComparison(a, b, sets, reports)
