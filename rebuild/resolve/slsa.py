"""Foreign SLSA provenance (v0.2 and v1, as GitHub Actions, npm, PyPI and slsa-github-generator write it).

Read tolerantly: unknown fields are kept, and the quirks of real generators
are accepted (``buildInvocationID`` or ``buildInvocationId``; the git source
in ``resolvedDependencies``, ``materials``, ``configSource`` or the
``GITHUB_*`` parameters; ``sha1`` or ``gitCommit``). ``what_rebuilds``
decides what a statement would rebuild (``Recorded``, ``Rebuildable`` or
``NotRebuildable``); ``describe`` says what a statement claims and serialises
that decision; ``resolve_foreign`` acts on it and maps the statement to a
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
from rebuild.npm.cache import fetch_locked
from rebuild.npm.lockfile import lockfile_from_source_tar
from rebuild.plan import Environment, Inference, Input, Output, Source
from rebuild.python import distributions
from rebuild.python.pinning import pin_build_requirements
from rebuild.python.wheelhouse import resolve_wheelhouse
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.published import file_digests, find_published, has_digest
from rebuild.resolve.statements import FoundStatement
from rebuild.untrusted import dig, dig_str

PYTHON_RECIPE = "python-build"
NPM_RECIPE = "npm-pack"
NPM_CI_RECIPE = "npm-ci"  # npm-pack with the dependencies its package-lock.json pins
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


def _strings(value: object) -> tuple[str, ...]:
    """The strings of a JSON list (anything else in it skipped), or () when it is not a list."""
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _git_from(ref: object, where: str) -> GitSource | None:
    """A git source from a ResourceDescriptor / material: ``git+URI@REF`` with a gitCommit/sha1 digest."""
    uri = dig_str(ref, "uri")
    commit = dig_str(ref, "digest", "gitCommit") or dig_str(ref, "digest", "sha1")
    if not uri.startswith("git+") or not _HEX.match(commit.lower()):
        return None
    repository, git_ref = split_uri(uri)
    return GitSource(repository, git_ref, commit.lower(), where)


def _git_from_github_env(env: object, where: str) -> GitSource | None:
    """slsa-github-generator's delegator and npm's v0.2 record GITHUB_REPOSITORY / GITHUB_SHA / GITHUB_REF."""
    repo = dig_str(env, "GITHUB_REPOSITORY") or dig_str(env, "github_repository")
    sha = (dig_str(env, "GITHUB_SHA") or dig_str(env, "github_sha1")).lower()
    if not repo or not _HEX.match(sha):
        return None
    server = dig_str(env, "GITHUB_SERVER_URL") or "https://github.com"
    return GitSource(f"{server}/{repo}", dig_str(env, "GITHUB_REF") or dig_str(env, "github_ref"), sha, where)


def read_foreign(stmt: ParsedStatement) -> ForeignProvenance:
    """The parts of a SLSA provenance statement a rebuild needs, whichever version wrote it."""
    p = stmt.predicate
    if stmt.predicate_type == uris.SLSA_PROVENANCE_V1:
        deps = dig(p, "buildDefinition", "resolvedDependencies")
        source = None
        for i, dep in enumerate(deps if isinstance(deps, list) else []):
            source = _git_from(dep, f"resolvedDependencies[{i}]")
            if source:
                break
        internal = dig(p, "buildDefinition", "internalParameters")
        source = source or _git_from_github_env(internal, "internalParameters")
        return ForeignProvenance(
            "v1",
            dig_str(p, "buildDefinition", "buildType"),
            dig_str(p, "runDetails", "builder", "id"),
            dig_str(p, "runDetails", "metadata", "invocationId")
            or dig_str(p, "runDetails", "metadata", "invocationID"),
            source,
            dig_str(p, "buildDefinition", "externalParameters", "workflow", "path"),
        )
    # v0.2 (and v0.1: recipe instead of invocation)
    materials = p.get("materials")
    source = None
    for i, material in enumerate(materials if isinstance(materials, list) else []):
        source = _git_from(material, f"materials[{i}]")
        if source:
            break
    source = source or _git_from(dig(p, "invocation", "configSource"), "invocation.configSource")
    source = source or _git_from_github_env(dig(p, "invocation", "environment"), "invocation.environment")
    invocation = dig_str(p, "metadata", "buildInvocationId") or dig_str(p, "metadata", "buildInvocationID")
    build_type = dig_str(p, "buildType") or dig_str(p, "recipe", "type")
    return ForeignProvenance(
        "v0.2" if stmt.predicate_type.endswith("v0.2") else "v0.1",
        build_type,
        dig_str(p, "builder", "id"),
        invocation,
        source,
        dig_str(p, "invocation", "configSource", "entryPoint") or dig_str(p, "recipe", "entryPoint"),
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


@dataclass(frozen=True)
class Recorded:
    """What this project's own provenance records it rebuilds: the recipe, its outputs, the steps, the environment."""

    recipe: str
    outputs: tuple[str, ...]
    steps: tuple[str, ...]
    environment: Mapping[str, object]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "outputs": list(self.outputs),
            "willRun": list(self.steps),
            "environment": dict(self.environment),
        }


@dataclass(frozen=True)
class Rebuildable:
    """A foreign statement a recipe rebuilds (its steps are the recipe's, known once the plan is made)."""

    recipe: str
    outputs: tuple[str, ...]
    source: GitSource

    def as_dict(self) -> dict[str, Any]:
        return {"possible": True, "recipe": self.recipe, "outputs": list(self.outputs)}


@dataclass(frozen=True)
class NotRebuildable:
    """Why nothing can be rebuilt from a statement."""

    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"possible": False, "reason": self.reason}


def rebuildable(foreign: ForeignProvenance, targets: Sequence[Target]) -> Rebuildable | NotRebuildable:
    """Whether a recipe rebuilds a foreign statement's subjects from its git source, and which."""
    if foreign.source is None:
        return NotRebuildable("the provenance records no git source (repository + commit)")
    kinds = {t.ecosystem for t in targets}
    outputs = tuple(t.output for t in targets)
    if kinds <= {"python-wheel", "python-sdist"}:
        return Rebuildable(PYTHON_RECIPE, outputs, foreign.source)
    if kinds == {"npm"}:
        return Rebuildable(NPM_RECIPE, outputs, foreign.source)
    others = ", ".join(t.output for t in targets if t.ecosystem == "other")
    return NotRebuildable(
        f"no recipe rebuilds {others or 'mixed ecosystems'} from buildType {foreign.build_type or '?'}"
    )


def what_rebuilds(stmt: ParsedStatement) -> Recorded | Rebuildable | NotRebuildable:
    """What a rebuild of one statement would be, whichever kind of statement it is."""
    if stmt.predicate_type == uris.SLSA_PROVENANCE_V1 and _is_own(stmt):
        ext = dig(stmt.predicate, "buildDefinition", "externalParameters")
        environment = dig(ext, "environment")
        return Recorded(
            dig_str(ext, "recipe", "name"),
            _strings(dig(ext, "outputs")),
            _strings(dig(ext, "steps")),
            environment if isinstance(environment, Mapping) else {},
        )
    if not stmt.predicate_type.startswith("https://slsa.dev/provenance/"):
        return NotRebuildable("not SLSA provenance (nothing to rebuild from)")
    return rebuildable(read_foreign(stmt), [classify_subject(s) for s in stmt.subjects])


def _is_own(stmt: ParsedStatement) -> bool:
    return dig(stmt.predicate, "buildDefinition", "buildType") == uris.BUILD_TYPE


def describe(found: FoundStatement) -> dict[str, Any]:
    """Everything `rebuild provenance show` prints about one statement."""
    stmt = found.statement
    doc: dict[str, Any] = {
        "wrapper": found.loaded.wrapper,
        "where": found.loaded.origin,
        "signature": str(found.signature),
        "signatureStatus": found.signature.status.value,
        "statementType": stmt.type,
        "predicateType": stmt.predicate_type,
        "subjects": [{"name": s.name, "digest": dict(s.digest)} for s in stmt.subjects],
    }
    if found.signature.sigstore:
        doc["sigstore"] = [r.as_dict() for r in found.signature.sigstore]
    rebuild = what_rebuilds(stmt)
    if isinstance(rebuild, Recorded):
        ext = dig(stmt.predicate, "buildDefinition", "externalParameters")
        doc.update(
            builder=dig_str(stmt.predicate, "runDetails", "builder", "id"),
            buildType=uris.BUILD_TYPE,
            source={"uri": dig_str(ext, "source", "uri"), "commit": dig_str(ext, "source", "commit")},
            rebuild=rebuild.as_dict(),
        )
        return doc
    if not stmt.predicate_type.startswith("https://slsa.dev/provenance/"):
        doc["rebuild"] = rebuild.as_dict()
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
    doc["rebuild"] = rebuild.as_dict()
    return doc


# --- to a plan -----------------------------------------------------------------------------------


def _expected_sha256(target: Target, digests: Mapping[str, str]) -> str | None:
    """The sha256 the provenance names for an output: its own, or the file's when it matched by sha512."""
    if "sha256" in target.subject.digest:
        return target.subject.digest["sha256"].lower()
    return digests["sha256"] if has_digest(target.subject.digest, digests) else None


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
    targets = [classify_subject(s) for s in found.statement.subjects]
    decision = rebuildable(read_foreign(found.statement), targets)
    if isinstance(decision, NotRebuildable):
        raise PlanError(f"{path}: cannot rebuild: {decision.reason}")
    source = decision.source
    check_commit(source.commit)
    fields.git_repository(source.repository)  # before git sees it: a field is data, never an option
    by_output: dict[str, Target] = {}
    for target in targets:
        by_output.setdefault(target.output, target)
    published = find_published({n: t.subject.digest for n, t in by_output.items()}, held, path.parent, path.name)
    if not published:
        raise InputError(
            f"none of the published artifacts ({', '.join(by_output)}) is beside {path}",
            "pass the artifact you hold with --artifact FILE",
        )
    ctx.progress("resolve", f"git {source.repository} at {source.commit[:12]}")
    tarball, tree_sha = export_commit(source.uri, source.commit, ctx.cache.root / "git", ctx.git_mirrors, ctx.progress)
    pyproject, commit_time = _tree_facts(tarball)
    recipe = ctx.book.get(decision.recipe)
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
        lockfile = lockfile_from_source_tar(tarball)
        if lockfile is not None:  # its dependencies are installed offline from the lockfile (npm ci)
            recipe = ctx.book.get(NPM_CI_RECIPE)
            ctx.progress("resolve", f"{lockfile.name}: fetching {len(lockfile.tarballs)} tarball(s) it pins")
            inputs, inferred = fetch_locked(lockfile, ctx.cache, ctx.progress)
            inferences.extend(inferred)
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
            Source(source.uri, tree_sha, "git", source.commit),
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
        signature_status=found.signature,
        summary=describe(found),
    )
