"""One comparison, start to end: the byte verdict, then (only if different) the explanations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from compare.archive import Budget
from compare.diffoscope import DiffoscopeResult, run_diffoscope
from compare.explain import Explanation, explain_files
from compare.verdict import FileVerdict, compare_files


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
