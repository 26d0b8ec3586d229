"""`rebuild check`: build as `rebuild build` does, again under variations, and name what changes the bytes.

The order of work:

1. the reference build: ``build_release`` itself, so the plan is exactly the one ``rebuild build``
   makes (and its provenance is written beside it, unsigned);
2. the same plan again, unvaried: if the two differ, the build is nondeterministic; then each
   variation is built alone and judged by what it changes beyond that noise (``differences.py``);
3. otherwise ``sde`` alone (an output that follows SOURCE_DATE_EPOCH is right), and every other
   variation at once; if that differs, ``bisect`` finds the culprits, each with its own build.

Every build runs through ``run_plan`` with the plan's builder image and the hardened sandbox; a
variation is applied by ``VariedSandbox`` to the request, or to the plan's environment (checked by
the plan's grammar again). A build that fails under a variation is "could not tell" (its row says
``failed``), never a difference.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from compare.report import compare_artifacts
from rebuild.attest.envelopes import write_jsonl
from rebuild.attest.keys import Signer
from rebuild.check import differences, tools
from rebuild.check.bisect import Bisection, bisect
from rebuild.check.report import (
    DIFFERS,
    FAILED,
    FOLLOWS,
    IDENTICAL,
    NOISE,
    NONDETERMINISTIC,
    NOT_APPLIED,
    UNRESOLVED,
    Build,
    CheckReport,
    Row,
    check_statement,
)
from rebuild.check.variations import (
    EXPECTED,
    NAMES,
    NEEDS_TOOLS,
    NOT_VARIED,
    Setting,
    Tools,
    not_applicable,
    settings,
    vary_environment,
)
from rebuild.check.varied import VariedSandbox
from rebuild.errors import InputError, SandboxError
from rebuild.pipeline import Backends, Progress, Stages, run_plan, sign
from rebuild.plan import BuildPlan, Inference, Input
from rebuild.recipes import Recipe, RecipeBook
from rebuild.release import BuildReport, build_release

HEARTBEAT_S = 5.0
REPORT_FILE = "check-report.json"
NO_VARIATION = Setting("none", "nothing (the reference built again)", "", "")


def check_release(
    tree: Path,
    work: Path,
    engine: Backends,
    book: RecipeBook,
    *,
    vary: Sequence[str],
    recipe_name: str | None = None,
    parameters: Mapping[str, str] | None = None,
    signer: Signer | None = None,
    keep: bool = True,
    requirements_resolver: Callable[[Path], tuple[tuple[Input, ...], tuple[Inference, ...]]] | None = None,
    progress: Progress = lambda s, m: None,
) -> CheckReport:
    """Check ``tree`` under the variations ``vary``; builds, logs and the report go under ``work``.

    Raises:
        InputError: ``work`` is inside ``tree`` (it would become part of the source).
        Error: the reference build could not be made (as ``rebuild build`` raises it).
    """
    if not tree.is_dir():
        raise InputError(f"source {tree} is not a directory")
    if work.resolve().is_relative_to(tree.resolve()):
        raise InputError(f"{work} is inside the source tree {tree}", "pass --out a directory outside it")
    _clear_earlier_check(work)
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    progress("check", "build 1: reference (the plan `rebuild build` makes)")
    with _heartbeat(progress, "build 1: reference"):
        reference = build_release(
            tree,
            work / "reference",
            engine,
            book,
            recipe_name=recipe_name,
            parameters=parameters,
            requirements_resolver=requirements_resolver,
            progress=progress,
        )
    runner = _Runner(reference, book.get(reference.plan.recipe.name), engine, work, keep, progress)
    progress("check", f"build 1: reference: built ({time.monotonic() - started:.1f} s)")
    runner.builds.append(
        Build(
            1, "reference", (), time.monotonic() - started, "reference", directory=work / "reference" if keep else None
        )
    )
    again = runner.build(frozenset())
    if again.outcome == FAILED:
        raise SandboxError(f"the reference build failed when run again: {again.error}", "see its build.log")
    nondeterministic = again.outcome != IDENTICAL
    runner.tools = tools.prepare(
        engine, reference.plan, need_tools=bool(NEEDS_TOOLS & set(vary)), need_passwd="user" in vary, progress=progress
    )
    recorded = {s.name: s for s in settings(vary, reference.plan, runner.tools)}
    rows = {}
    for name in vary:
        why = not_applicable(name, reference.plan, runner.tools)
        if why:
            rows[name] = Row(recorded[name], NOT_APPLIED, why, None)
    applicable = [recorded[n] for n in vary if n not in rows]
    found = None
    if nondeterministic:
        noise = differences.signature(again.comparisons)
        rows.update({s.name: runner.judge_against_noise(s, noise) for s in applicable})
    else:
        found, judged = runner.bisect(applicable)
        rows.update(judged)
    none_outcome = NONDETERMINISTIC if nondeterministic else IDENTICAL
    report = CheckReport(
        plan=reference.plan,
        artifacts=reference.artifacts,
        rows=[
            Row(NO_VARIATION, none_outcome, differences.summary(again.comparisons), again.number),
            *(rows[n] for n in vary),
        ],
        builds=runner.builds,
        culprits=tuple(n for n in vary if rows[n].outcome == DIFFERS),
        interacting=found.interacting if found else (),
        nondeterministic=nondeterministic,
        not_varied=NOT_VARIED,
        seconds=time.monotonic() - started,
        bisected=bool(found and len(found.tests) > 1),
        tools_image=runner.tools.image,
        out_dir=work if keep else None,
    )
    if nondeterministic:
        report.notes.append(_nondeterminism_note(runner.builds))
    if signer is not None:
        name = Path(next(iter(sorted(report.artifacts)))).name
        report.statement = work / f"{name}.check.intoto.jsonl"
        write_jsonl(report.statement, [sign(check_statement(report), signer)])
    if keep:
        (work / REPORT_FILE).write_text(json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n")
    return report


def _nondeterminism_note(builds: Sequence[Build]) -> str:
    varied = [b for b in builds if b.variations]
    everywhere = bool(varied) and all(b.outcome != IDENTICAL for b in varied)
    what = (
        "the output differs under every variation, including none"
        if everywhere
        else "the output differs with nothing varied"
    )
    return (
        f"{what}: that is nondeterminism (randomness, or the clock running between two builds), not a variation; "
        "bisection would mean nothing, so each variation was built on its own and judged by what it changes "
        "beyond that"
    )


class _Runner:
    """Runs and remembers the builds of one check (one per set of variations)."""

    def __init__(
        self, reference: BuildReport, recipe: Recipe, engine: Backends, work: Path, keep: bool, progress: Progress
    ) -> None:
        self.reference = reference
        self.plan: BuildPlan = reference.plan
        self.recipe = recipe
        self.engine = engine
        self.work = work
        self.keep = keep
        self.progress = progress
        self.tools = Tools()
        self.everything: frozenset[str] = frozenset()
        self.builds: list[Build] = []
        self.by_set: dict[frozenset[str], Build] = {}
        self.directories: dict[int, Path] = {}

    def label(self, names: frozenset[str]) -> str:
        if not names:
            return "none"
        if len(names) > 1 and names == self.everything:
            return "all"
        return "+".join(n for n in NAMES if n in names) if len(names) <= 3 else f"{len(names)}-variations"

    def build(self, names: frozenset[str]) -> Build:
        """The build with exactly ``names`` varied (run once; asked again, the same record)."""
        if names in self.by_set:
            return self.by_set[names]
        number = len(self.builds) + 1
        label = self.label(names)
        directory = self.work / "builds" / f"{number:02d}-{label}"
        directory.mkdir(parents=True, exist_ok=True)
        self.directories[number] = directory
        env = vary_environment(self.plan.environment, names)
        plan = dataclasses.replace(
            self.plan, environment=env, steps=self.recipe.render_steps(self.plan.parameters, env.build_path)
        )
        engine = dataclasses.replace(self.engine, sandbox=VariedSandbox(self.engine.sandbox, names, self.tools))
        what = ", ".join(n for n in NAMES if n in names) or "no variation"
        self.progress("check", f"build {number}: {label}" + (f" ({what})" if what != label.replace("+", ", ") else ""))
        started = time.monotonic()
        try:
            with (
                _heartbeat(self.progress, f"build {number}: {label}"),
                tempfile.TemporaryDirectory(prefix="rebuild-check-") as tmp,
            ):
                result = run_plan(
                    plan,
                    engine,
                    Path(tmp),
                    Stages(lambda s, m: None),
                    base_dir=self.reference_dir,
                    log_path=directory / "build.log",
                )
                for rel, path in result.outputs.items():
                    (directory / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, directory / rel)
        except SandboxError as e:  # the build failed under it: could not tell (the engine going away is not this)
            build = Build(
                number,
                label,
                tuple(sorted(names)),
                time.monotonic() - started,
                FAILED,
                error=e.message,
                directory=self._kept(directory),
            )
        else:
            comparisons = tuple(
                compare_artifacts(
                    self.reference_dir / name, directory / name, name=name, side_names=("reference", label)
                )
                for name in sorted(self.reference.artifacts)
            )
            outcome = IDENTICAL if all(c.identical for c in comparisons) else DIFFERS
            build = Build(
                number,
                label,
                tuple(sorted(names)),
                time.monotonic() - started,
                outcome,
                comparisons,
                directory=self._kept(directory),
            )
        self.progress("check", f"build {number}: {label}: {build.outcome} ({build.seconds:.1f} s)")
        self.builds.append(build)
        self.by_set[names] = build
        return build

    @property
    def reference_dir(self) -> Path:
        return self.work / "reference"

    def _kept(self, directory: Path) -> Path | None:
        return directory if self.keep else None

    def bisect(self, settings: Sequence[Setting]) -> tuple[Bisection, dict[str, Row]]:
        """A deterministic build: ``sde`` on its own, every other variation at once, then bisection."""
        rows = {}
        for setting in [s for s in settings if s.name in EXPECTED]:
            build = self.build(frozenset({setting.name}))
            outcome = {FAILED: FAILED, DIFFERS: FOLLOWS}.get(build.outcome, IDENTICAL)
            rows[setting.name] = Row(
                setting, outcome, build.error or differences.summary(build.comparisons), build.number
            )
        others = [s for s in settings if s.name not in EXPECTED]
        self.everything = frozenset(s.name for s in others)
        found = bisect([s.name for s in others], lambda names: self.build(names).outcome != IDENTICAL)
        rows.update({s.name: self.row(s, found) for s in others})
        return found, rows

    def judge_against_noise(self, setting: Setting, noise: set[differences.Item]) -> Row:
        build = self.build(frozenset({setting.name}))
        if build.outcome == FAILED:
            return Row(setting, FAILED, build.error, build.number)
        pairs = [(self.reference_dir / n, self.directories[build.number] / n) for n in self.reference.artifacts]
        beyond = differences.beyond_noise(build.comparisons, noise, pairs)
        if beyond:
            outcome = FOLLOWS if setting.name in EXPECTED else DIFFERS
            return Row(setting, outcome, "beyond the build's own noise: " + "; ".join(beyond), build.number)
        if build.outcome == IDENTICAL:
            return Row(setting, IDENTICAL, "", build.number)
        return Row(setting, NOISE, "differs no more than two builds with nothing varied", build.number)

    def row(self, setting: Setting, found: Bisection) -> Row:
        name = setting.name
        if name in found.culprits:
            build = self.by_set[frozenset({name})]
            if build.outcome == FAILED:
                return Row(setting, FAILED, f"the build fails under it: {build.error}", build.number)
            return Row(setting, DIFFERS, differences.summary(build.comparisons), build.number)
        group = next((g for g in found.interacting if name in g), None)
        if group is not None:
            build = self.by_set[frozenset(group)]
            detail = f"differs only together with {', '.join(n for n in group if n != name)}: "
            return Row(setting, UNRESOLVED, detail + differences.summary(build.comparisons), build.number)
        clean = [b for b in self.builds if name in b.variations and b.outcome == IDENTICAL]
        if not clean:  # cannot happen when bisect's answers are consistent; never claim identical without a build
            return Row(setting, UNRESOLVED, "no build isolated it", None)
        smallest = min(clean, key=lambda b: len(b.variations))
        others = len(smallest.variations) - 1
        return Row(setting, IDENTICAL, f"with {others} other variation(s)" if others else "", smallest.number)


def _clear_earlier_check(work: Path) -> None:
    """An empty directory, or an earlier check's (its builds go, so none is taken for this one's).

    Raises:
        InputError: ``work`` holds something else.
    """
    if not work.exists():
        return
    if not work.is_dir():
        raise InputError(f"{work} is not a directory", "pass --out a new or empty directory")
    if not any(work.iterdir()):
        return
    if not (work / REPORT_FILE).is_file():
        raise InputError(
            f"{work} is not empty and holds no earlier {REPORT_FILE}", "pass --out a new or empty directory"
        )
    for name in ("builds", "reference"):
        shutil.rmtree(work / name, ignore_errors=True)
    for path in [work / REPORT_FILE, *work.glob("*.check.intoto.jsonl")]:
        path.unlink(missing_ok=True)


@contextmanager
def _heartbeat(progress: Progress, what: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """A progress line every few seconds while a build runs: its number, its variations, the seconds so far."""
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(every_s):
            progress("check", f"{what}: {time.monotonic() - started:.0f} s")

    thread = threading.Thread(target=beat, name="rebuild-check-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
