"""Foreign SLSA provenance (v0.2 and v1, as GitHub Actions, npm, PyPI and slsa-github-generator write it).

Read tolerantly: unknown fields are kept, and the quirks of real generators
are accepted (``buildInvocationID`` or ``buildInvocationId``; the git source
in ``resolvedDependencies``, ``materials``, ``configSource`` or the
``GITHUB_*`` parameters; ``sha1`` or ``gitCommit``). ``describe`` says what a
statement claims and what would be rebuilt; ``resolve_foreign`` maps it to a
plan: the git commit as the source, the ecosystem from the subjects (Python
wheel/sdist, npm tarball), and the recipe for it. What the provenance does
not record (tool versions, the time) is inferred and recorded as inference.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from rebuild import fields
from rebuild.attest import uris
from rebuild.attest.statements import ParsedStatement, Subject
from rebuild.errors import InputError, PlanError
from rebuild.fetch.git import check_commit, export_commit, split_uri
from rebuild.plan import Environment, Inference, Input, Output, Source
from rebuild.python import distributions
from rebuild.python.pinning import pin_build_requirements
from rebuild.python.wheelhouse import resolve_wheelhouse
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.statements import FoundStatement, file_digests, subject_for

PYTHON_RECIPE = "python-build"
NPM_RECIPE = "npm-pack"
_HEX = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class GitSource:
    repository: str  # https://github.com/o/r
    ref: str  # refs/tags/v1 (informational; the commit is what is fetched)
    commit: str
    found_in: str  # which field it came from

    @property
    def uri(self) -> str:
        return f"git+{self.repository}" + (f"@{self.ref}" if self.ref else "")


@dataclass(frozen=True)
class ForeignProvenance:
    slsa_version: str  # "v1", "v0.2", "v0.1"
    build_type: str
    builder: str
    invocation: str
    source: GitSource | None
    entry_point: str


def _dig(doc: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _git_from(ref: Any, where: str) -> GitSource | None:
    """A git source from a ResourceDescriptor / material: ``git+URI@REF`` with a gitCommit/sha1 digest."""
    if not isinstance(ref, Mapping):
        return None
    uri = _str(ref.get("uri"))
    digest = ref.get("digest")
    digest = digest if isinstance(digest, Mapping) else {}
    commit = _str(digest.get("gitCommit")) or _str(digest.get("sha1"))
    if not uri.startswith("git+") or not _HEX.match(commit.lower()):
        return None
    repository, git_ref = split_uri(uri)
    return GitSource(repository, git_ref, commit.lower(), where)


def _git_from_github_env(env: Any, where: str) -> GitSource | None:
    """slsa-github-generator's delegator and npm's v0.2 record GITHUB_REPOSITORY / GITHUB_SHA / GITHUB_REF."""
    if not isinstance(env, Mapping):
        return None
    repo = _str(env.get("GITHUB_REPOSITORY")) or _str(env.get("github_repository"))
    sha = (_str(env.get("GITHUB_SHA")) or _str(env.get("github_sha1"))).lower()
    if not repo or not _HEX.match(sha):
        return None
    server = _str(env.get("GITHUB_SERVER_URL")) or "https://github.com"
    return GitSource(f"{server}/{repo}", _str(env.get("GITHUB_REF")) or _str(env.get("github_ref")), sha, where)


def read_foreign(stmt: ParsedStatement) -> ForeignProvenance:
    """The parts of a SLSA provenance statement a rebuild needs, whichever version wrote it."""
    p = stmt.predicate
    if stmt.predicate_type == uris.SLSA_PROVENANCE_V1:
        deps = _dig(p, "buildDefinition", "resolvedDependencies")
        source = None
        for i, dep in enumerate(deps if isinstance(deps, list) else []):
            source = _git_from(dep, f"resolvedDependencies[{i}]")
            if source:
                break
        internal = _dig(p, "buildDefinition", "internalParameters")
        source = source or _git_from_github_env(internal, "internalParameters")
        workflow = _dig(p, "buildDefinition", "externalParameters", "workflow")
        return ForeignProvenance(
            "v1",
            _str(_dig(p, "buildDefinition", "buildType")),
            _str(_dig(p, "runDetails", "builder", "id")),
            _str(_dig(p, "runDetails", "metadata", "invocationId"))
            or _str(_dig(p, "runDetails", "metadata", "invocationID")),
            source,
            _str(_dig(workflow, "path")),
        )
    # v0.2 (and v0.1: recipe instead of invocation)
    materials = p.get("materials")
    source = None
    for i, material in enumerate(materials if isinstance(materials, list) else []):
        source = _git_from(material, f"materials[{i}]")
        if source:
            break
    source = source or _git_from(_dig(p, "invocation", "configSource"), "invocation.configSource")
    source = source or _git_from_github_env(_dig(p, "invocation", "environment"), "invocation.environment")
    metadata = p.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    invocation = _str(metadata.get("buildInvocationId")) or _str(metadata.get("buildInvocationID"))
    build_type = _str(p.get("buildType")) or _str(_dig(p, "recipe", "type"))
    return ForeignProvenance(
        "v0.2" if stmt.predicate_type.endswith("v0.2") else "v0.1",
        build_type,
        _str(_dig(p, "builder", "id")),
        invocation,
        source,
        _str(_dig(p, "invocation", "configSource", "entryPoint")) or _str(_dig(p, "recipe", "entryPoint")),
    )


@dataclass(frozen=True)
class Target:
    """What would be rebuilt for one subject."""

    ecosystem: str  # "python-wheel", "python-sdist", "npm", "other"
    output: str  # the file name the build produces
    subject: Subject


def _npm_purl(name: str) -> tuple[str, str] | None:
    if not name.startswith("pkg:npm/"):
        return None
    body = name.removeprefix("pkg:npm/").replace("%40", "@")
    package, at, version = body.rpartition("@")
    return (package, version) if at and package else None


def classify_subject(subject: Subject) -> Target:
    name = subject.name
    purl = _npm_purl(name)
    if purl:
        package, version = purl
        return Target("npm", f"{package.lstrip('@').replace('/', '-')}-{version}.tgz", subject)
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".whl"):
        try:
            parse_wheel_filename(base)
            return Target("python-wheel", base, subject)
        except InvalidWheelFilename:
            pass
    if base.endswith(".tar.gz"):
        try:
            project, parsed = parse_sdist_filename(base)
            if base == f"{str(project).replace('-', '_')}-{parsed}.tar.gz":  # PEP 625 names only
                return Target("python-sdist", base, subject)
        except InvalidSdistFilename:
            pass
    if base.endswith(".tgz"):
        return Target("npm", base, subject)
    return Target("other", base, subject)


def describe(found: FoundStatement) -> dict[str, Any]:
    """Everything `rebuild provenance show` prints about one statement."""
    stmt = found.statement
    doc: dict[str, Any] = {
        "wrapper": found.loaded.wrapper,
        "where": found.loaded.origin,
        "signature": str(found.signature),
        "statementType": stmt.type,
        "predicateType": stmt.predicate_type,
        "subjects": [{"name": s.name, "digest": dict(s.digest)} for s in stmt.subjects],
    }
    if stmt.predicate_type == uris.SLSA_PROVENANCE_V1 and _dig(stmt.predicate, "buildDefinition", "buildType") == (
        uris.BUILD_TYPE
    ):
        ext = _dig(stmt.predicate, "buildDefinition", "externalParameters") or {}
        doc.update(
            builder=_str(_dig(stmt.predicate, "runDetails", "builder", "id")),
            buildType=uris.BUILD_TYPE,
            source={"uri": _str(_dig(ext, "source", "uri")), "commit": _str(_dig(ext, "source", "commit"))},
            rebuild={
                "recipe": _str(_dig(ext, "recipe", "name")),
                "outputs": [o for o in _list(_dig(ext, "outputs")) if isinstance(o, str)],
                "willRun": [step for step in _list(_dig(ext, "steps")) if isinstance(step, str)],
                "environment": _dig(ext, "environment") if isinstance(_dig(ext, "environment"), Mapping) else {},
            },
        )
        return doc
    if not stmt.predicate_type.startswith("https://slsa.dev/provenance/"):
        doc["rebuild"] = {"possible": False, "reason": "not SLSA provenance (nothing to rebuild from)"}
        if isinstance(stmt.predicate, Mapping) and stmt.predicate:
            doc["predicate"] = dict(stmt.predicate)
        return doc
    foreign = read_foreign(stmt)
    doc.update(
        slsaVersion=foreign.slsa_version,
        builder=foreign.builder,
        buildType=foreign.build_type,
        invocation=foreign.invocation,
        entryPoint=foreign.entry_point,
        source=(
            {"repository": foreign.source.repository, "ref": foreign.source.ref, "commit": foreign.source.commit}
            if foreign.source
            else None
        ),
    )
    targets = [classify_subject(s) for s in stmt.subjects]
    doc["rebuild"] = _rebuild_summary(foreign, targets)
    return doc


def _rebuild_summary(foreign: ForeignProvenance, targets: Sequence[Target]) -> dict[str, Any]:
    if foreign.source is None:
        return {"possible": False, "reason": "the provenance records no git source (repository + commit)"}
    kinds = {t.ecosystem for t in targets}
    if kinds <= {"python-wheel", "python-sdist"}:
        return {"possible": True, "recipe": PYTHON_RECIPE, "outputs": [t.output for t in targets]}
    if kinds == {"npm"}:
        return {"possible": True, "recipe": NPM_RECIPE, "outputs": [t.output for t in targets]}
    others = ", ".join(t.output for t in targets if t.ecosystem == "other")
    return {
        "possible": False,
        "reason": f"no recipe rebuilds {others or 'mixed ecosystems'} from buildType {foreign.build_type or '?'}",
    }


# --- to a plan -----------------------------------------------------------------------------------


def _published(targets: Sequence[Target], provenance: Path, held: Mapping[Path, Mapping[str, str]]) -> dict[str, Path]:
    """Output name -> the user's file for it (matched by digest; by name beside the provenance otherwise)."""
    published: dict[str, Path] = {}
    unmatched = list(held)
    for target in targets:
        for path in list(unmatched):
            if subject_for(_statement_of(target), held[path]):  # by digest only: a name proves nothing
                published[target.output] = path
                unmatched.remove(path)
                break
        else:
            beside = provenance.parent / target.output
            if beside.is_file():
                published[target.output] = beside
    if unmatched:
        raise InputError(
            f"nothing in {provenance} is about {', '.join(p.name for p in unmatched)} (no subject has its digest)",
            f"its subjects are: {', '.join(t.subject.name for t in targets)}",
        )
    if not published:
        raise InputError(
            f"none of the published artifacts ({', '.join(t.output for t in targets)}) is beside {provenance}",
            "pass the artifact you hold with --artifact FILE",
        )
    return published


def _expected_sha256(target: Target, digests: Mapping[str, str]) -> str | None:
    """The sha256 the provenance names for an output: its own, or the file's when it matched by sha512."""
    if "sha256" in target.subject.digest:
        return target.subject.digest["sha256"].lower()
    return digests["sha256"] if subject_for(_statement_of(target), digests) else None


def _statement_of(target: Target) -> ParsedStatement:
    return ParsedStatement("", "", (target.subject,), {}, {})


def _tree_facts(tarball: Path) -> tuple[str | None, int]:
    """The exported tree's pyproject.toml (if any) and the commit time (git archive's mtimes)."""
    with tarfile.open(tarball) as tf:
        members = tf.getmembers()
        mtime = int(members[0].mtime) if members else 0
        for m in members:
            if m.name == "source/pyproject.toml" and m.isfile():
                handle = tf.extractfile(m)
                return (handle.read().decode("utf-8", "replace") if handle else None), mtime
    return None, mtime


def _python_requirements(pyproject: str | None, wheel: Path | None) -> tuple[list[str], list[Inference]]:
    """pypa/build, and the repository's build requirements with the backend pinned from the published wheel."""
    system = distributions.read_build_system(pyproject, "the repository")
    legacy = system.inference()
    facts = distributions.read_wheel(wheel) if wheel is not None else None
    requires, inferences = pin_build_requirements(system.requirements, facts, None, None, system.in_tree_backend)
    return ["build", *requires], [legacy, *inferences] if legacy else inferences


def resolve_foreign(
    path: Path, found: FoundStatement, ctx: ResolveContext, held: Mapping[Path, Mapping[str, str]]
) -> Resolution:
    """Raises: PlanError (exit 2) when the statement cannot be rebuilt, naming why; FetchError (exit 3)."""
    summary = describe(found)
    rebuild = summary["rebuild"]
    if not rebuild.get("possible"):
        raise PlanError(f"{path}: cannot rebuild: {rebuild['reason']}")
    foreign = read_foreign(found.statement)
    assert foreign.source is not None  # _rebuild_summary said possible
    check_commit(foreign.source.commit)
    fields.git_repository(foreign.source.repository)  # before git sees it: a field is data, never an option
    targets = [classify_subject(s) for s in found.statement.subjects]
    published = _published(targets, path, held)
    ctx.progress("resolve", f"git {foreign.source.repository} at {foreign.source.commit[:12]}")
    tarball, tree_sha = export_commit(
        foreign.source.uri, foreign.source.commit, ctx.cache.root / "git", ctx.git_mirrors, ctx.progress
    )
    pyproject, commit_time = _tree_facts(tarball)
    recipe = ctx.book.get(rebuild["recipe"])
    by_output = {t.output: t for t in targets}
    outputs = tuple(
        Output(name, _expected_sha256(by_output[name], held.get(file) or file_digests(file)))
        for name, file in sorted(published.items())
    )
    inferences: list[Inference] = []
    inputs: tuple[Input, ...] = ()
    params: dict[str, str] = {}
    if recipe.name == PYTHON_RECIPE:
        wheel = next((p for n, p in published.items() if n.endswith(".whl")), None)
        requires, inferences = _python_requirements(pyproject, wheel)
        ctx.progress("resolve", f"resolving build requirements {', '.join(requires)}")
        inputs = resolve_wheelhouse(requires, ctx.index_url)
    else:
        inferences.append(
            Inference("node/npm", f"Debian {recipe.image.suite}'s nodejs and npm", "the provenance records no versions")
        )
    epochs: list[tuple[str, int | None]] = [
        ("SOURCE_DATE_EPOCH unset", None),
        ("SOURCE_DATE_EPOCH = the commit time", commit_time),
    ]
    candidates = []
    for label, epoch in epochs:
        env = Environment(source_date_epoch=epoch)
        plan = recipe.plan(
            Source(foreign.source.uri, tree_sha, "git", foreign.source.commit),
            params,
            env,
            inputs=inputs,
            outputs=outputs,
            inferences=(*inferences, Inference("SOURCE_DATE_EPOCH", str(epoch), f"not recorded; tried: {label}")),
        )
        candidates.append(Candidate(label, plan))
    return Resolution(
        target=str(path),
        candidates=candidates,
        published=published,
        origin=path,
        signature_status=str(found.signature),
        summary=summary,
    )
