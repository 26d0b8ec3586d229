"""What a check found: every build it ran, a row per variation, the culprits; and its signed statement.

The statement has its own predicate type (``PREDICATE_TYPE``, docs/check.md). It says which variations
were tried and what each did. It is never a verification summary: a check is the release team
building twice on one machine, and a VSA ``PASSED`` stays reserved for independent rebuilds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.report import ComparisonReport
from rebuild import __version__
from rebuild.attest import statements
from rebuild.attest.statements import Subject
from rebuild.check.variations import Setting
from rebuild.errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK
from rebuild.plan import BuildPlan

PREDICATE_TYPE = "https://rebuild-verifier.dev/check/v1"
CHECKER_ID = "https://rebuild-verifier.dev/checker/v1"

# A row's outcome.
IDENTICAL = "identical"  # the varied build's bytes are the reference's
DIFFERS = "differs"  # a culprit: the variation changes the bytes
FOLLOWS = "follows"  # differs, as it should (SOURCE_DATE_EPOCH: rebuilders use the recorded value)
NOISE = "noise"  # differs, but no more than two unvaried builds do (nondeterministic build)
NONDETERMINISTIC = "nondeterministic"  # the row of no variation at all, when the reference differs from itself
FAILED = "failed"  # the build failed under the variation: could not tell
NOT_APPLIED = "not-applied"  # the variation cannot be applied here (why: in ``detail``)
UNRESOLVED = "unresolved"  # the output differs only when this variation combines with others
OUTCOMES = (IDENTICAL, DIFFERS, FOLLOWS, NOISE, NONDETERMINISTIC, FAILED, NOT_APPLIED, UNRESOLVED)


@dataclass(frozen=True)
class Build:
    number: int
    label: str
    variations: tuple[str, ...]
    seconds: float
    outcome: str  # identical, differs, failed
    comparisons: tuple[ComparisonReport, ...] = ()
    error: str = ""
    directory: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "label": self.label,
            "variations": list(self.variations),
            "seconds": round(self.seconds, 3),
            "outcome": self.outcome,
            "error": self.error,
            "comparisons": [c.as_dict() for c in self.comparisons if not c.identical],
            "directory": str(self.directory) if self.directory else None,
        }


@dataclass(frozen=True)
class Row:
    setting: Setting  # the variation (for the reference pair: name "none")
    outcome: str
    detail: str  # what differs, or why it was not applied or failed
    build: int | None  # the build that shows it

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.setting.name,
            "what": self.setting.what,
            "reference": self.setting.reference,
            "varied": self.setting.varied,
            "outcome": self.outcome,
            "identical": self.outcome in (IDENTICAL, FOLLOWS),
            "detail": self.detail,
            "build": self.build,
        }


@dataclass
class CheckReport:
    plan: BuildPlan
    artifacts: dict[str, str]  # the reference build's outputs: name -> sha256
    rows: list[Row]
    builds: list[Build]
    culprits: tuple[str, ...]
    interacting: tuple[tuple[str, ...], ...]
    nondeterministic: bool
    not_varied: tuple[tuple[str, str], ...]
    seconds: float
    bisected: bool = False
    tools_image: str = ""  # where libfaketime and the locales came from (time, locale)
    out_dir: Path | None = None
    statement: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(r.setting.name for r in self.rows if r.outcome == FAILED)

    @property
    def reproducible(self) -> bool:
        return not (self.culprits or self.interacting or self.nondeterministic or self.failed)

    @property
    def exit_code(self) -> int:
        """0 reproducible under every variation tried; 1 not (culprits, nondeterminism); 3 could not tell."""
        if self.culprits or self.interacting or self.nondeterministic:
            return EXIT_FAILED
        return EXIT_ENVIRONMENT if self.failed else EXIT_OK

    @property
    def result(self) -> str:
        if self.exit_code == EXIT_OK:
            return "reproducible"
        return "not-reproducible" if self.exit_code == EXIT_FAILED else "inconclusive"

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reproducible": self.reproducible,
            "culprits": list(self.culprits),
            "interacting": [list(group) for group in self.interacting],
            "nondeterministic": self.nondeterministic,
            "failed": list(self.failed),
            "variations": [r.as_dict() for r in self.rows],
            "artifacts": self.artifacts,
            "builds": [b.as_dict() for b in self.builds],
            "build_count": len(self.builds),
            "bisected": self.bisected,
            "not_varied": [{"what": what, "why": why} for what, why in self.not_varied],
            "tools_image": self.tools_image or None,
            "seconds": round(self.seconds, 3),
            "plan": self.plan.external_parameters(),
            "statement": str(self.statement) if self.statement else None,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "notes": self.notes,
        }


def check_statement(report: CheckReport, time_checked: str | None = None) -> bytes:
    """The in-toto statement of a check: subjects are the reference build's outputs."""
    plan = report.plan
    predicate = {
        "checker": {"id": CHECKER_ID, "version": {"rebuild-verifier": __version__}},
        "timeChecked": time_checked or statements.now_rfc3339(),
        "result": report.result,
        "culprits": list(report.culprits),
        "interacting": [list(group) for group in report.interacting],
        "nondeterministic": report.nondeterministic,
        "variations": [
            {k: v for k, v in r.as_dict().items() if k in ("name", "reference", "varied", "outcome", "detail")}
            for r in report.rows
        ],
        "notVaried": [what for what, _ in report.not_varied],
        "toolsImage": report.tools_image or None,
        "builds": len(report.builds),
        "buildDefinition": {
            "externalParameters": plan.external_parameters(),
            "resolvedDependencies": [d.to_dict() for d in plan.resolved_dependencies()],
        },
    }
    subjects = [Subject(name, {"sha256": sha}) for name, sha in sorted(report.artifacts.items())]
    return statements.statement(subjects, PREDICATE_TYPE, predicate)
