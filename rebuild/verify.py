"""The verdict loop: check the resolution, try each candidate until one matches byte for byte, explain, attest.

Where the verdict is decided: ``_decide``, from bytes and digests only.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compare.digest import sha256_file
from compare.equivalence import Equivalence, content_equivalence
from compare.errors import CompareError
from compare.report import ComparisonReport, compare_artifacts, write_report
from rebuild.attest import statements, uris
from rebuild.attest.keys import PublicKey, Signer
from rebuild.attest.sigstore import SigstorePolicy
from rebuild.attest.verdicts import sign_verdict
from rebuild.build.sandbox import Limits
from rebuild.errors import EnvironmentFailure, Error, PlanError, SandboxError, VerificationError
from rebuild.fetch.cache import BlobCache
from rebuild.pipeline import (
    DEFAULT_MAX_INPUT_BYTES,
    Backends,
    Progress,
    RunResult,
    Stages,
    connect_backends,
    run_plan,
)
from rebuild.plan import BuildPlan, Output
from rebuild.python.wheelhouse import DEFAULT_INDEX
from rebuild.recipes import RecipeBook
from rebuild.report import (
    BUILD_FAILED,
    DIFFERS,
    REPRODUCED,
    AttemptRecord,
    VerifyReport,
    clear_verdicts,
    write_failure_report,
)
from rebuild.resolution import Candidate, Outcome, Resolution
from rebuild.resolve import resolve
from rebuild.resolve.context import DEFAULT_DEBIAN_ARCHIVE, ResolveContext


def verify_target(
    target: str,
    out_dir: Path,
    context: ResolveContext,
    book: RecipeBook,
    backends: Callable[[], Backends],
    *,
    signer: Signer | None = None,
    attest_failures: bool = False,
    diffoscope: bool = True,
    verifier_id: str = uris.VERIFIER_ID,
    progress: Progress = lambda s, m: None,
    in_toto_step: str | None = None,
    content_equivalence: bool = False,
) -> VerifyReport:
    """``rebuild verify TARGET``: resolve, check, rebuild, compare, attest, with a report on every path.

    ``backends`` is called only once the target has resolved: bad input never waits on a Docker engine.

    Raises:
        Error: any failure, after ``verify-report.json`` in ``out_dir`` has said so.
    """
    clear_verdicts(out_dir)  # before anything: no earlier verdict outlives this run
    stages = Stages(progress)
    try:
        with stages.stage("resolve", f"resolving {target}"):
            resolution = resolve(target, context)
            check_resolution(resolution, book)
        return verify_resolution(
            resolution, out_dir, backends(), book, signer=signer, attest_failures=attest_failures,
            diffoscope=diffoscope, verifier_id=verifier_id, progress=progress, stages=stages,
            in_toto_step=in_toto_step, content_equivalence=content_equivalence,
        )  # fmt: skip
    except (Error, CompareError) as e:
        write_failure_report(out_dir, target, e)
        raise
    except KeyboardInterrupt:
        write_failure_report(out_dir, target, EnvironmentFailure("interrupted"), exit_code=130)
        raise
    except Exception as e:  # a bug: the report still says this run verified nothing
        write_failure_report(out_dir, target, EnvironmentFailure(f"internal error: {type(e).__name__}: {e}"))
        raise


@dataclass
class Verifier:
    """One `rebuild verify` invocation: how every target is resolved, rebuilt and signed.

    The Docker engine is connected once, when the first target has resolved.
    """

    book: RecipeBook
    cache_dir: Path
    limits: Limits = field(default_factory=Limits)
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    signer: Signer | None = None
    provenance_keys: Sequence[PublicKey] = ()
    artifacts: Sequence[Path] = ()
    index_url: str = DEFAULT_INDEX
    git_mirrors: Mapping[str, str] = field(default_factory=dict)
    archive: str = DEFAULT_DEBIAN_ARCHIVE
    allow_newer_build_deps: bool = False
    attest_failures: bool = False
    diffoscope: bool = True
    verifier_id: str = uris.VERIFIER_ID
    progress: Progress = lambda s, m: None
    in_toto_step: str | None = None  # with a signer: also write an in-toto link for this step on a full match
    sigstore: SigstorePolicy = field(default_factory=SigstorePolicy)  # trust root, --expect-*, --trusted-builder
    connect_engine: Callable[[], Backends] | None = None  # default: the local engine (the service labels its own)
    content_equivalence: bool = False  # on a mismatch, decide (and with a signer, claim) content equivalence
    _backends: Backends | None = None

    def backends(self) -> Backends:
        if self._backends is None and self.connect_engine is not None:
            self._backends = self.connect_engine()
        if self._backends is None:
            self._backends = connect_backends(
                self.cache_dir, limits=self.limits, max_input_bytes=self.max_input_bytes, git_mirrors=self.git_mirrors
            )
        return self._backends

    def verify(self, target: str, out_dir: Path) -> VerifyReport:
        """Raises: Error, after ``out_dir/verify-report.json`` has said so."""
        context = ResolveContext(
            cache=BlobCache(self.cache_dir), book=self.book, work_dir=out_dir, artifacts=self.artifacts,
            provenance_keys=self.provenance_keys, index_url=self.index_url, git_mirrors=self.git_mirrors,
            archive=self.archive, allow_newer_build_deps=self.allow_newer_build_deps, progress=self.progress,
            sigstore=self.sigstore,
        )  # fmt: skip
        return verify_target(
            target, out_dir, context, self.book, self.backends, signer=self.signer,
            attest_failures=self.attest_failures, diffoscope=self.diffoscope, verifier_id=self.verifier_id,
            progress=self.progress, in_toto_step=self.in_toto_step, content_equivalence=self.content_equivalence,
        )  # fmt: skip


@dataclass
class _Attempt:
    """One candidate tried: the plan as run (image digest, git tree digest filled in), and what came of it.

    A build that failed has no ``result`` and no comparisons, and its ``error``: it says nothing of the bytes.
    """

    plan: BuildPlan
    result: RunResult | None
    comparisons: list[ComparisonReport]
    record: AttemptRecord
    error: SandboxError | None = None

    @property
    def reproduced(self) -> bool:
        return self.record.reproduced

    def outcome(self, candidate: Candidate) -> Outcome:
        if self.error is not None:
            return Outcome(candidate, self.error.message, self.error.log[-MAX_LOG_SEEN:])
        return Outcome(candidate, comparisons=tuple(self.comparisons))


MAX_FALLBACK_ATTEMPTS = 4  # candidates a resolution's fallback may add to one run
MAX_LOG_SEEN = 64 << 10  # the end of a failed build's log a fallback reads


def verify_resolution(
    resolution: Resolution,
    out_dir: Path,
    engine: Backends,
    book: RecipeBook,
    *,
    signer: Signer | None = None,
    attest_failures: bool = False,
    diffoscope: bool = True,
    verifier_id: str = uris.VERIFIER_ID,
    progress: Progress = lambda s, m: None,
    stages: Stages | None = None,
    in_toto_step: str | None = None,
    content_equivalence: bool = False,
) -> VerifyReport:
    """Try each candidate plan until one matches byte for byte; explain a mismatch; attest the verdict.

    With ``in_toto_step`` and a signer, a full match also writes a signed in-toto link for that step.
    With ``content_equivalence``, a mismatch is also checked for content equivalence (``compare.equivalence``);
    with a signer, each equivalent artifact gets a FAILED summary and a separate content-equivalence statement.
    """
    stages = stages or Stages(progress)
    started = statements.now_rfc3339()
    check_resolution(resolution, book)
    clear_verdicts(out_dir)  # an earlier run's verdict must never outlive this one
    out_dir.mkdir(parents=True, exist_ok=True)
    byproducts = book.get(resolution.plan.recipe.name).byproducts
    attempts: list[_Attempt] = []
    notes = list(resolution.notes)
    pending, added = list(resolution.candidates), 0
    while pending:
        candidate = pending.pop(0)
        if len(resolution.candidates) > 1 or attempts:
            progress("attempt", f"{len(attempts) + 1}/{len(attempts) + 1 + len(pending)}: {candidate.label}")
        attempt = _try_candidate(candidate, resolution, engine, out_dir, stages, byproducts)
        attempt.record.fallback = candidate not in resolution.candidates
        attempts.append(attempt)
        if attempt.reproduced:
            break
        if resolution.fallback is not None and added < MAX_FALLBACK_ATTEMPTS:
            budget = MAX_FALLBACK_ATTEMPTS - added
            pending, more, said = _follow(resolution, book, attempt.outcome(candidate), pending, budget)
            added += more
            notes += said
    built = [a for a in attempts if a.result is not None]
    runs = [a.result for a in built if a.result is not None]
    if not built:  # every candidate failed to build: could not tell (exit 3), with every attempt in the report
        error = attempts[-1].error
        assert error is not None
        if len(attempts) > 1:
            error.hint = f"{len(attempts)} candidates tried, none built; {error.hint}".removesuffix("; ")
        write_failure_report(out_dir, resolution.target, error, attempts=[a.record for a in attempts])
        raise error
    last = built[-1]  # a mismatch anywhere is "not reproduced", even when a later candidate failed to build
    comparisons = last.comparisons
    if not last.reproduced and diffoscope:
        comparisons = _explain(resolution.published, out_dir, stages)
    report_path = out_dir / "compare-report.json"
    write_report(comparisons, report_path)
    attestation = None
    equivalence = _equivalence(comparisons, resolution.published, out_dir / "rebuilt", stages) if (
        content_equivalence and not last.reproduced
    ) else {}  # fmt: skip
    claims = {name: e for name, e in equivalence.items() if e.equivalent}
    with stages.stage("attest", "signing the attestations" if signer else "no key: nothing signed"):
        if signer is not None and (last.reproduced or attest_failures or claims):
            attestation = sign_verdict(
                last.plan, resolution.origin, comparisons, last.reproduced, report_path, out_dir / "rebuilt",
                out_dir, signer, verifier_id, started, resolution.signature, claims,
            )  # fmt: skip
        in_toto_link = None
        if signer is not None and in_toto_step and last.reproduced:  # a full match only, never a mismatch
            from rebuild.attest.intoto import write_rebuild_link  # imports in-toto: only when asked for

            products = {c.name: c.verdict.b.sha256 for c in comparisons}
            in_toto_link = write_rebuild_link(last.plan, products, out_dir, signer, in_toto_step)
    report = VerifyReport(
        reproduced=last.reproduced,
        plan=last.plan,
        resolution=resolution,
        comparisons=comparisons,
        attestation=attestation,
        report=out_dir / "verify-report.json",
        stages=stages.seconds,
        fetched=[name for run in runs for name in run.fetched],
        cached=[name for run in runs for name in run.cached],
        image_built=any(run.image.built for run in runs),
        build_seconds=sum(run.build.seconds for run in runs),
        attempts=[a.record for a in attempts],
        notes=notes,
        image_lock=runs[-1].image.lock,
        in_toto_link=in_toto_link,
        equivalence=equivalence,
    )
    report.report.write_text(json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n")
    return report


def _follow(
    resolution: Resolution, book: RecipeBook, outcome: Outcome, pending: list[Candidate], budget: int
) -> tuple[list[Candidate], int, list[str]]:
    """Ask the resolution's fallback what to try after ``outcome``: (the pending candidates, how many were
    added, notes). What it gives is checked like every candidate; a fallback that fails adds nothing.
    """
    assert resolution.fallback is not None
    try:
        followup = resolution.fallback(outcome, tuple(pending))
        rewritten = list(pending if followup.pending is None else followup.pending)
        if len(rewritten) != len(pending):
            raise PlanError(f"a fallback rewrote {len(pending)} pending candidate(s) into {len(rewritten)}")
        extra = list(followup.extra[:budget])
        published = {name: sha256_file(path) for name, path in resolution.published.items()}
        for candidate in [*extra, *rewritten]:
            book.get(candidate.plan.recipe.name).check_plan(candidate.plan)
            _check_published(candidate.plan, published)
    except Error as e:
        return pending, 0, [f"no fallback after {outcome.candidate.label}: {e.message}"]
    notes = list(followup.notes)
    if len(followup.extra) > budget:
        notes.append(f"{len(followup.extra) - budget} fallback candidate(s) not tried: at most {MAX_FALLBACK_ATTEMPTS}")
    return [*extra, *rewritten], len(extra), notes


def _try_candidate(
    candidate: Candidate,
    resolution: Resolution,
    engine: Backends,
    out_dir: Path,
    stages: Stages,
    byproducts: tuple[str, ...],
) -> _Attempt:
    """Rebuild one candidate into ``out_dir/rebuilt`` and compare each output with the published file.

    A build that fails is an attempt too (``BUILD_FAILED``): ``out_dir/rebuilt`` keeps the last files built.
    """
    began = time.monotonic()
    rebuilt_dir = out_dir / "rebuilt"
    with tempfile.TemporaryDirectory(prefix="rebuild-verify-") as tmp:
        try:
            result = run_plan(
                candidate.plan, engine, Path(tmp), stages, resolution.origin.parent, out_dir / "build.log", byproducts
            )
        except SandboxError as e:  # the build failed, timed out or made other files: could not tell
            environment = candidate.plan.external_parameters()["environment"]
            seconds = round(time.monotonic() - began, 3)
            record = AttemptRecord(
                candidate.label, environment, False, f"build failed: {e.message}", seconds, BUILD_FAILED, e.message
            )
            return _Attempt(candidate.plan, None, [], record, e)
        shutil.rmtree(rebuilt_dir, ignore_errors=True)
        for name, path in [*result.outputs.items(), *result.extras.items()]:
            (rebuilt_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, rebuilt_dir / name)
    plan = dataclasses.replace(
        candidate.plan, image=dataclasses.replace(candidate.plan.image, digest=result.image.digest)
    )
    if result.source_sha256:
        plan = dataclasses.replace(plan, source=dataclasses.replace(plan.source, sha256=result.source_sha256))
    published = resolution.published
    with stages.stage("compare", f"comparing {len(published)} artifact(s) byte for byte"):
        comparisons = [
            compare_artifacts(published[name], rebuilt_dir / name, name=name, side_names=("published", "rebuilt"))
            for name in sorted(published)
        ]
    reproduced = _decide(comparisons, plan.outputs)
    record = AttemptRecord(
        candidate.label,
        plan.external_parameters()["environment"],
        reproduced,
        "identical" if reproduced else _classification(comparisons),
        round(time.monotonic() - began, 3),
        REPRODUCED if reproduced else DIFFERS,
    )
    return _Attempt(plan, result, comparisons, record)


def _explain(published: Mapping[str, Path], out_dir: Path, stages: Stages) -> list[ComparisonReport]:
    """The last attempt compared again, with diffoscope's report beside the structural explanation."""
    with stages.stage("explain", "running diffoscope on the last attempt"):
        return [
            compare_artifacts(
                published[name],
                out_dir / "rebuilt" / name,
                name=name,
                diffoscope_dir=out_dir / f"diffoscope-{name.replace('/', '_')}",
                diffoscope_formats=("json", "html"),  # the HTML is what the dashboard links to
                side_names=("published", "rebuilt"),
            )
            for name in sorted(published)
        ]


def _equivalence(
    comparisons: Sequence[ComparisonReport], published: Mapping[str, Path], rebuilt_dir: Path, stages: Stages
) -> dict[str, Equivalence]:
    """Content equivalence of each artifact whose bytes differ (a missing rebuilt file: nothing to decide)."""
    with stages.stage("equivalence", "checking content equivalence of what differs"):
        return {
            c.name: content_equivalence(published[c.name], rebuilt_dir / c.name, side_names=("published", "rebuilt"))
            for c in comparisons
            if not c.identical and (rebuilt_dir / c.name).is_file() and not (rebuilt_dir / c.name).is_symlink()
        }


def _classification(comparisons: Sequence[ComparisonReport]) -> str:
    parts = [
        f"{c.name}: {c.explanation.classification if c.explanation else 'differs'}"
        for c in comparisons
        if not c.identical
    ]
    return "; ".join(parts)


def _decide(comparisons: Sequence[ComparisonReport], outputs: Sequence[Output]) -> bool:
    """THE verdict: reproduced if and only if, for every output the provenance names, the published bytes,
    the digest the provenance names and the rebuilt bytes are one and the same.
    """
    expected = {o.name: o.sha256 for o in outputs}
    return (
        bool(comparisons)
        and {c.name for c in comparisons} == set(expected)
        and all(c.verdict.identical and c.verdict.a.sha256 == expected[c.name] for c in comparisons)
    )


def check_resolution(resolution: Resolution, book: RecipeBook) -> None:
    """Every candidate is what its recipe makes, and every published file is what the provenance names.

    Runs right after resolve, before any engine is asked, and again before anything is built.

    Raises:
        RecipeError, PlanError: a plan is not its recipe's (exit 2).
        VerificationError: a published file is not the artifact the provenance names (exit 1).
    """
    published_sha256 = {name: sha256_file(path) for name, path in resolution.published.items()}
    for candidate in resolution.candidates:
        book.get(candidate.plan.recipe.name).check_plan(candidate.plan)
        _check_published(candidate.plan, published_sha256)


def _check_published(plan: BuildPlan, published: Mapping[str, str]) -> None:
    """Each published artifact must be the one the provenance names, by digest, before anything is rebuilt.

    Raises:
        PlanError: the plan names an output without a digest, or published files and outputs differ.
        VerificationError: a published file is not what the provenance names (exit 1; nothing is attested).
    """
    names = {o.name for o in plan.outputs}
    if not names:
        raise PlanError("the provenance names no output: there is nothing to verify")
    if set(published) != names:
        raise PlanError(
            f"the published artifacts ({', '.join(sorted(published)) or 'none'}) are not the outputs the "
            f"provenance names ({', '.join(sorted(names))})"
        )
    for output in plan.outputs:
        if output.sha256 is None:
            raise PlanError(f"the provenance names no sha256 for {output.name}: there is nothing to verify against")
        actual = published[output.name]
        if actual != output.sha256:
            raise VerificationError(
                f"published {output.name} is not the artifact the provenance names "
                f"(its sha256 is {actual}, the provenance says {output.sha256})",
                "the file was altered, or it belongs to another release",
            )
