"""The pipeline, top to bottom: resolve -> fetch -> image -> build -> compare -> attest.

``build_release`` runs a project's build hermetically and writes its
provenance; ``verify_provenance`` rebuilds from a provenance, compares with
the published artifacts, and attests. Both share ``run_plan`` (fetch, image,
build). Where the verdict is decided: ``_decide`` below, from bytes only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from compare.digest import sha256_bytes, sha256_file
from compare.report import ComparisonReport, compare_artifacts, write_report
from rebuild import dsse, statements, uris
from rebuild.cache import BlobCache
from rebuild.envelopes import write_jsonl
from rebuild.errors import Error, InputError, PlanError, RecipeError, SandboxError, VerificationError
from rebuild.fetch import Fetcher
from rebuild.gitsource import export_commit
from rebuild.image import BuilderImage, ImageSpec
from rebuild.keys import Signer
from rebuild.plan import (
    BuildPlan,
    Environment,
    Inference,
    Input,
    Output,
    Source,
)
from rebuild.recipes import RecipeBook
from rebuild.resolution import Resolution
from rebuild.sandbox import BuildRequest, BuildResult, Limits, Mount, Sandbox, safe_output_name
from rebuild.source import default_epoch, pack_tree, read_settings
from rebuild.statements import ResourceRef, Subject

Progress = Callable[[str, str], None]
DEFAULT_MAX_INPUT_BYTES = 2 << 30
# What a verify run writes into its output directory; all of it is removed before a new run starts,
# so a verdict (or a report saying "reproduced") can never outlive the run that made it.
VERDICT_FILES = (
    "*.rebuild.intoto.jsonl", "*.rebuild-failed.intoto.jsonl", "verify-report.json", "compare-report.json",
    "build.log",
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


def write_failure_report(out_dir: Path, target: str, error: Error) -> Path:
    """A run that ended in an error still leaves a report, and it says so (never a stale "reproduced")."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "verify-report.json"
    doc = {
        "target": target,
        "reproduced": False,
        "outcome": "failed verification" if error.exit_code == 1 else "could not verify",
        "exit_code": error.exit_code,
        "error": error.message,
        "hint": error.hint,
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


class Images(Protocol):
    def ensure(self, spec: ImageSpec, expected_digest: str | None = None) -> BuilderImage: ...
    def pull_pinned(self, reference: str) -> BuilderImage: ...


@dataclass
class Stages:
    """Per-stage wall times, and the progress lines people see."""

    progress: Progress
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self.progress(name, message)
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - started, 3)


@dataclass(frozen=True)
class Engine:
    """The swappable parts a run needs (tests pass fakes for the sandbox or images)."""

    sandbox: Sandbox
    images: Images
    cache: BlobCache
    limits: Limits = field(default_factory=Limits)
    git_mirrors: Mapping[str, str] = field(default_factory=dict)  # URL prefix -> replacement
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES  # per fetched input, when the plan declares no size


@dataclass
class RunResult:
    outputs: dict[str, Path]
    build: BuildResult
    image: BuilderImage
    fetched: list[str]
    cached: list[str]
    source_sha256: str = ""  # for a git source: the sha256 of the tree exported at the commit
    extras: dict[str, Path] = field(default_factory=dict)  # other files the build wrote (dpkg's .buildinfo)


# --- shared: fetch -> image -> build --------------------------------------------


def run_plan(
    plan: BuildPlan,
    engine: Engine,
    work: Path,
    stages: Stages,
    base_dir: Path | None,
    log_path: Path,
    byproducts: tuple[str, ...] = (),
) -> RunResult:
    fetcher = Fetcher(engine.cache, base_dir, max_bytes=engine.max_input_bytes)
    inputs_root = work / "inputs"
    with stages.stage("fetch", f"fetching {1 + len(plan.inputs)} input(s), each checked against its sha256"):
        source_sha = ""
        if plan.source.kind == "git":
            source, source_sha = export_commit(
                plan.source.uri,
                plan.source.commit,
                engine.cache.root / "git",
                engine.git_mirrors,
                stages.progress,
                max_bytes=engine.max_input_bytes,
            )
        else:
            source = fetcher.fetch(plan.source.uri, plan.source.sha256, "source")
        # a Debian .dsc keeps its own name: dpkg-source finds the files it names beside it
        source_name = plan.source.uri.rsplit("/", 1)[-1] if plan.source.kind == "dsc" else "source.tar"
        _place(source, inputs_root / "source" / safe_output_name(source_name).name)
        for item in plan.inputs:
            path = fetcher.fetch(item.uri, item.sha256, f"input {item.group}/{item.filename}")
            _place(path, inputs_root / item.group / safe_output_name(item.filename).name)
    with stages.stage("image", f"builder image {plan.image.digest[:19] or plan.image.reference}"):
        if plan.image.spec:
            image = engine.images.ensure(
                ImageSpec.from_dict(plan.image.spec), expected_digest=plan.image.digest or None
            )
        else:
            image = engine.images.pull_pinned(plan.image.reference)
    mounts = tuple(Mount(d, f"/inputs/{d.name}") for d in sorted(inputs_root.iterdir()))
    request = BuildRequest(
        image=image.digest,
        steps=plan.steps,
        env=plan.environment.variables(),
        inputs=mounts,
        build_path=plan.environment.build_path,
        umask=plan.environment.umask,
        limits=engine.limits,
        outputs=tuple(o.name for o in plan.outputs),
        byproducts=byproducts,
    )
    out = work / "outputs"
    out.mkdir()
    with stages.stage("build", f"building offline in the sandbox ({len(plan.steps)} steps)"):
        try:
            result = engine.sandbox.run(request, out)
        except SandboxError as e:
            log_path.write_text(e.log)  # the log of a failed build is kept, never lost
            e.hint = f"the build log is {log_path}"
            raise
    log_path.write_text(result.log)
    produced = {p.as_posix(): out / p for p in result.outputs}
    expected = [o.name for o in plan.outputs]
    missing = [name for name in expected if name not in produced]
    if missing:
        made = ", ".join(sorted(produced)) or "nothing"
        raise SandboxError(
            f"the build did not produce {', '.join(missing)} (it made: {made})",
            f"see the build log {log_path}",
            log=result.log,
        )
    if not produced:
        raise SandboxError("the build produced no output files", "the recipe's steps must write into /out")
    chosen = {name: produced[name] for name in expected} if expected else produced
    extras = {name: path for name, path in produced.items() if name not in chosen}
    return RunResult(chosen, result, image, fetcher.stats.fetched, fetcher.stats.cached, source_sha, extras)


def _place(blob: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob, dest)
    except OSError:
        shutil.copyfile(blob, dest)


def _sign(payload: bytes, signer: Signer | None) -> dsse.Envelope:
    return dsse.sign(payload, [signer] if signer else [])


# --- build: a project's own hermetic build --------------------------------------


@dataclass
class BuildReport:
    plan: BuildPlan
    artifacts: dict[str, str]  # name -> sha256
    provenance: Path
    source_archive: Path
    signed: bool
    stages: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "artifacts": self.artifacts,
            "provenance": str(self.provenance),
            "source": str(self.source_archive),
            "signed": self.signed,
            "plan": self.plan.external_parameters(),
            "stages": self.stages,
        }


def build_release(
    tree: Path,
    out_dir: Path,
    engine: Engine,
    book: RecipeBook,
    *,
    recipe_name: str | None = None,
    parameters: Mapping[str, str] | None = None,
    source_date_epoch: int | None = None,
    signer: Signer | None = None,
    requirements_resolver: Callable[[Path], tuple[tuple[Input, ...], tuple[Inference, ...]]] | None = None,
    progress: Progress = lambda s, m: None,
) -> BuildReport:
    """Build ``tree`` hermetically; write the artifacts, the source archive and the provenance into ``out_dir``."""
    stages = Stages(progress)
    with stages.stage("resolve", f"planning the build of {tree}"):
        settings = read_settings(tree)
        name = recipe_name or settings.recipe
        if not name:
            raise InputError(f"no recipe for {tree}", "pass --recipe NAME or set [build] recipe in rebuild.toml")
        recipe = book.get(name)
        params = {**settings.parameters, **(parameters or {})}
        inferences: list[Inference] = []
        epoch = source_date_epoch if source_date_epoch is not None else settings.source_date_epoch
        if epoch is None:
            epoch, why = default_epoch(tree)
            inferences.append(Inference("SOURCE_DATE_EPOCH", str(epoch), why))
        env = Environment(source_date_epoch=epoch)
        recipe.render_steps(params, env.build_path)  # a missing or unknown parameter fails here, before any work
        out_dir.mkdir(parents=True, exist_ok=True)
        source_bytes = pack_tree(tree, epoch, exclude=(out_dir,))
        source_sha = sha256_bytes(source_bytes)
        source_name = f"{tree.resolve().name}-source-{source_sha[:12]}.tar"
        (out_dir / source_name).write_bytes(source_bytes)
        inputs: tuple[Input, ...] = ()
        if "wheelhouse" in recipe.input_groups:
            if requirements_resolver is None:
                raise RecipeError(f"recipe {recipe.name} needs a wheelhouse and no resolver was given")
            inputs, inferred = requirements_resolver(tree)
            inferences.extend(inferred)
    with stages.stage("image", f"builder image {recipe.image.tag}"):
        image = engine.images.ensure(recipe.image)
    plan = recipe.plan(
        Source(source_name, source_sha, "tarball"), params, env, inputs=inputs, inferences=inferences,
        image_digest=image.digest,
    )  # fmt: skip
    started = statements.now_rfc3339()
    with tempfile.TemporaryDirectory(prefix="rebuild-build-") as tmp:
        result = run_plan(plan, engine, Path(tmp), stages, base_dir=out_dir, log_path=out_dir / "build.log")
        artifacts = {}
        for rel, path in sorted(result.outputs.items()):
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            artifacts[rel] = sha256_file(dest)
    plan = dataclasses.replace(plan, outputs=tuple(Output(n, s) for n, s in artifacts.items()))
    with stages.stage("attest", "writing the provenance"):
        payload = statements.rebuild_provenance(
            plan.subjects(),
            plan.external_parameters(),
            plan.resolved_dependencies(),
            invocation_id=str(uuid.uuid4()),
            started_on=started,
            finished_on=statements.now_rfc3339(),
        )
        provenance = out_dir / f"{next(iter(artifacts))}.provenance.intoto.jsonl"
        write_jsonl(provenance, [_sign(payload, signer)])
    return BuildReport(plan, artifacts, provenance, out_dir / source_name, signer is not None, stages.seconds)


# --- verify: rebuild what a resolution describes, compare, attest ---------------


@dataclass
class AttemptRecord:
    label: str
    environment: dict[str, Any]
    reproduced: bool
    classification: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VerifyReport:
    reproduced: bool
    plan: BuildPlan
    resolution: Resolution
    comparisons: list[ComparisonReport]
    published_matches_provenance: dict[str, bool]
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

    @property
    def provenance(self) -> Path:
        return self.resolution.origin

    @property
    def provenance_signature(self) -> str:
        return self.resolution.signature_status

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.resolution.target,
            "reproduced": self.reproduced,
            "provenance": str(self.provenance),
            "provenance_signature": self.provenance_signature,
            "summary": self.resolution.summary,
            "artifacts": [c.as_dict() for c in self.comparisons],
            "published_matches_provenance": self.published_matches_provenance,
            "attestation": str(self.attestation) if self.attestation else None,
            "report": str(self.report),
            "stages": self.stages,
            "build_seconds": round(self.build_seconds, 3),
            "fetched": self.fetched,
            "cached": self.cached,
            "image_built": self.image_built,
            "attempts": [a.as_dict() for a in self.attempts],
            "image_lock": list(self.image_lock),
            "deviations": list(self.plan.deviations),
            "inferences": [i.__dict__ for i in self.plan.inferences],
            "notes": self.notes,
            "plan": self.plan.external_parameters(),
        }


def verify_resolution(
    resolution: Resolution,
    out_dir: Path,
    engine: Engine,
    book: RecipeBook,
    *,
    signer: Signer | None = None,
    attest_failures: bool = False,
    diffoscope: bool = True,
    verifier_id: str = uris.VERIFIER_ID,
    progress: Progress = lambda s, m: None,
    stages: Stages | None = None,
) -> VerifyReport:
    """Rebuild each candidate plan in turn until one matches byte for byte; compare; attest the verdict."""
    stages = stages or Stages(progress)
    started = statements.now_rfc3339()
    check_resolution(resolution, book)
    published = resolution.published
    byproducts = book.get(resolution.plan.recipe.name).byproducts
    clear_verdicts(out_dir)  # an earlier run's verdict must never outlive this one
    out_dir.mkdir(parents=True, exist_ok=True)
    attempts: list[AttemptRecord] = []
    fetched: list[str] = []
    cached: list[str] = []
    image_built = False
    build_seconds = 0.0
    rebuilt_dir = out_dir / "rebuilt"
    for number, candidate in enumerate(resolution.candidates, start=1):
        plan = candidate.plan
        if len(resolution.candidates) > 1:
            progress("attempt", f"{number}/{len(resolution.candidates)}: {candidate.label}")
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="rebuild-verify-") as tmp:
            result = run_plan(
                plan, engine, Path(tmp), stages, resolution.origin.parent, out_dir / "build.log", byproducts
            )
            shutil.rmtree(rebuilt_dir, ignore_errors=True)
            rebuilt = {}
            for name, path in [*result.outputs.items(), *result.extras.items()]:
                rebuilt[name] = rebuilt_dir / name
                rebuilt[name].parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, rebuilt[name])
        image_lock = result.image.lock
        fetched += result.fetched
        cached += result.cached
        image_built = image_built or result.image.built
        build_seconds += result.build.seconds
        plan = dataclasses.replace(plan, image=dataclasses.replace(plan.image, digest=result.image.digest))
        if result.source_sha256:
            plan = dataclasses.replace(plan, source=dataclasses.replace(plan.source, sha256=result.source_sha256))
        with stages.stage("compare", f"comparing {len(published)} artifact(s) byte for byte"):
            comparisons = [
                compare_artifacts(published[name], rebuilt[name], name=name, side_names=("published", "rebuilt"))
                for name in sorted(published)
            ]
        reproduced = _decide(comparisons, plan.outputs)
        attempts.append(
            AttemptRecord(
                candidate.label,
                plan.external_parameters()["environment"],
                reproduced,
                "identical" if reproduced else _classification(comparisons),
                round(time.monotonic() - began, 3),
            )
        )
        if reproduced:
            break
    if not reproduced and diffoscope:
        with stages.stage("explain", "running diffoscope on the last attempt"):
            comparisons = [
                compare_artifacts(
                    published[name],
                    rebuilt_dir / name,
                    name=name,
                    diffoscope_dir=out_dir / f"diffoscope-{name.replace('/', '_')}",
                    side_names=("published", "rebuilt"),
                )
                for name in sorted(published)
            ]
    report_path = out_dir / "compare-report.json"
    write_report(comparisons, report_path)
    expected = {o.name: o.sha256 for o in plan.outputs}
    matches = {c.name: c.verdict.a.sha256 == expected.get(c.name) for c in comparisons}
    notes = list(resolution.notes)
    notes += [
        f"published {n} is not the artifact the provenance names (sha256 differs)"
        for n, ok in matches.items()
        if not ok
    ]
    attestation = None
    with stages.stage("attest", "signing the attestations" if signer else "no key: nothing signed"):
        if signer is not None and (reproduced or attest_failures):
            attestation = _attest(
                plan, resolution.origin, comparisons, reproduced, report_path, rebuilt_dir, out_dir, signer,
                verifier_id, started,
            )  # fmt: skip
    report = VerifyReport(
        reproduced,
        plan,
        resolution,
        comparisons,
        matches,
        attestation,
        out_dir / "verify-report.json",
        stages.seconds,
        fetched,
        cached,
        image_built,
        build_seconds,
        attempts,
        notes,
        image_lock,
    )
    report.report.write_text(json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n")
    return report


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


def _attest(
    plan: BuildPlan,
    origin: Path,
    comparisons: Sequence[ComparisonReport],
    reproduced: bool,
    report_path: Path,
    rebuilt_dir: Path,
    out_dir: Path,
    signer: Signer,
    verifier_id: str,
    started_on: str,
) -> Path:
    original = ResourceRef(origin.name, {"sha256": sha256_file(origin)}, name="original-provenance")
    envelopes = []
    if reproduced:
        subjects = [Subject(c.name, {"sha256": sha256_file(rebuilt_dir / c.name)}) for c in comparisons]
        deps = [*plan.resolved_dependencies(), original]
        payload = statements.rebuild_provenance(
            subjects,
            plan.external_parameters(),
            deps,
            invocation_id=str(uuid.uuid4()),
            started_on=started_on,
            finished_on=statements.now_rfc3339(),
        )
        envelopes.append(_sign(payload, signer))
    report_ref = None if reproduced else ResourceRef(report_path.name, {"sha256": sha256_file(report_path)})
    for c in comparisons:
        vsa = statements.verification_summary(
            Subject(c.name, {"sha256": c.verdict.a.sha256}),
            passed=reproduced and c.identical,
            resource_uri=c.name,
            input_attestations=[original],
            verifier_id=verifier_id,
            deviations=plan.deviations,
            report=report_ref,
        )
        envelopes.append(_sign(vsa, signer))
    first = sorted(c.name for c in comparisons)[0].replace("/", "_")
    path = out_dir / f"{first}.{'rebuild' if reproduced else 'rebuild-failed'}.intoto.jsonl"
    write_jsonl(path, envelopes)
    return path
