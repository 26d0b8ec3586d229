"""``pypi:NAME==VERSION``: rebuild a published pure-Python wheel from the sdist published beside it.

The release's files come from the index's simple API (PEP 691 JSON when the
index answers with it, else the PEP 503 HTML page; relative and absolute file
URLs), each with the sha256 the index gives. The sdist and wheel are fetched
and checked, then read: the backend and its exact version come from the
wheel's ``Generator:`` line, the rest of ``build-system.requires`` is pinned
to the newest versions uploaded before the wheel was, and pip resolves it all
to hash-pinned wheels for an offline build. What publishers did with
``SOURCE_DATE_EPOCH`` varies by backend, so the plan comes with a short,
ordered list of candidates; the pipeline stops at the first exact match. The
candidates run on each builder Python the release allows (its Requires-Python
and build requirements; ``rebuild.python.builders``), the first one first. A
setuptools release also gets a fallback (``rebuild.python.fallbacks``): an
option its setuptools refuses is dropped, and a wheel whose metadata differs
is tried with the setuptools of its ``wheel``'s era.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from compare.digest import sha256_file
from rebuild.errors import DigestMismatchError, InputError, PlanError
from rebuild.fetch.fetcher import Fetcher
from rebuild.plan import Environment, Inference, Output, Source
from rebuild.python import distributions
from rebuild.python.builders import Release, python_builds
from rebuild.python.fallbacks import SetuptoolsFallback
from rebuild.python.index import IndexFile, SimpleIndex
from rebuild.python.pep740 import check_release
from rebuild.python.pinning import epoch_candidates, pin_build_requirements
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext, write_origin

RECIPE = "python-wheel"


def parse_target(target: str) -> tuple[str, str | None]:
    spec = target.removeprefix("pypi:").strip()
    name, sep, version = spec.partition("==")
    if not name or (sep and not version) or any(c in name for c in "<>=!~ "):
        raise InputError(f"{target!r} is not pypi:NAME or pypi:NAME==VERSION")
    return name, version or None


def _choose_version(files: list[IndexFile], name: str, wanted: str | None) -> Version:
    versions = {f.version for f in files if f.version is not None}
    if not versions:
        raise InputError(f"project {name!r} has no files on the index")
    if wanted is None:
        final = [v for v in versions if not v.is_prerelease]
        return max(final or versions)
    try:
        version = Version(wanted)
    except InvalidVersion as e:
        raise InputError(f"{wanted!r} is not a valid version") from e
    if version not in versions:
        raise InputError(f"{name} has no release {wanted} on the index", f"the newest is {max(versions)}")
    return version


def _choose_files(files: list[IndexFile], name: str, version: Version) -> tuple[IndexFile, IndexFile, list[str]]:
    release = [f for f in files if f.version == version]
    notes: list[str] = []
    sdists = [f for f in release if f.is_sdist]
    wheels = [f for f in release if f.filename.endswith(".whl")]
    pure = sorted((f for f in wheels if f.is_pure_wheel), key=lambda f: ("-py3-none-any" not in f.filename, f.filename))
    if not pure:
        if wheels:
            tags = ", ".join(sorted({f.filename.split("-", 2)[-1].removesuffix(".whl") for f in wheels})[:4])
            raise PlanError(
                f"{name} {version} has only platform wheels ({tags}); this verifies pure-Python wheels",
                "compiled wheels depend on the compiler and platform of their build",
            )
        raise PlanError(f"{name} {version} publishes no wheel, so there is nothing to compare a rebuild with")
    tar_sdists = [f for f in sdists if f.filename.endswith(".tar.gz")]
    if not tar_sdists:
        if sdists:
            raise PlanError(f"{name} {version}'s only sdist is a .zip ({sdists[0].filename}); .tar.gz sdists are read")
        raise PlanError(
            f"{name} {version} has no sdist on the index, so there is no source to rebuild the wheel from",
            "a release needs its sdist published beside the wheel",
        )
    for f in (tar_sdists[0], pure[0]):
        if not f.sha256:
            raise PlanError(f"the index gives no sha256 for {f.filename}", "a file without a digest cannot be checked")
    if len(pure) > 1:
        notes.append(f"verifying {pure[0].filename}; also published: {', '.join(f.filename for f in pure[1:])}")
    return tar_sdists[0], pure[0], notes


def resolve_pypi(target: str, ctx: ResolveContext) -> Resolution:
    """Raises: InputError/PlanError (exit 2), FetchError (exit 3), DigestMismatchError (exit 1)."""
    name, wanted = parse_target(target)
    index = SimpleIndex(ctx.index_url)
    ctx.progress("resolve", f"reading {index.project_url(name)}")
    files = index.files(name)
    version = _choose_version(files, name, wanted)
    sdist, wheel, notes = _choose_files(files, name, version)
    fetcher = Fetcher(ctx.cache)
    ctx.progress("resolve", f"fetching {sdist.filename} and {wheel.filename}, checked against the index's sha256")
    sdist_path = fetcher.fetch(sdist.url, sdist.sha256, f"sdist {sdist.filename}")
    wheel_path = fetcher.fetch(wheel.url, wheel.sha256, f"wheel {wheel.filename}")
    for own in ctx.artifacts:  # the user's own copy must be the file the index publishes
        if sha256_file(own) != wheel.sha256:
            raise DigestMismatchError(
                f"--artifact {own.name} is not the {wheel.filename} the index publishes (sha256 differs)",
                f"the index's sha256 is {wheel.sha256}",
            )
    # PEP 740: who published the files (the Integrity API beside the index); none offered is no error
    published_by = check_release(
        index.url, name, str(version), [(f.filename, f.sha256) for f in (sdist, wheel)], ctx.sigstore, ctx.work_dir,
        ctx.progress,
    )  # fmt: skip
    sdist_facts = distributions.read_sdist(sdist_path)
    wheel_facts = distributions.read_wheel(wheel_path)
    system = sdist_facts.build_system
    legacy = system.inference()
    inferences = [legacy] if legacy else []
    requires, pinned = pin_build_requirements(
        system.requirements, wheel_facts, wheel.upload_time, index, system.in_tree_backend
    )
    inferences += pinned
    recipe = ctx.book.get(RECIPE)
    release = Release(
        (("the sdist's PKG-INFO", sdist_facts.requires_python), ("the wheel's METADATA", wheel_facts.requires_python)),
        requires, wheel.upload_time, wheel.filename, system.backend,
    )  # fmt: skip
    builds = python_builds(recipe.builder_images, release, index, ctx.index_url, ctx.progress)
    params = {"source_strip": "1"}
    umask = "0002" if wheel_facts.group_writable else "0022"
    if wheel_facts.group_writable:
        inferences.append(Inference("umask", umask, "the published wheel has group-writable members"))
    zone = distributions.infer_timezone(wheel_path, sdist_path)
    if zone is not None:
        inferences.append(
            Inference("TZ", zone[0], f"the wheel's zip times are the sdist's file mtimes in {zone[1]} local time")
        )
    candidates = []
    for build in builds:  # the first Python the release allows, then the others
        for label, epoch, tz in epoch_candidates(sdist_facts, wheel_facts, zone):
            env = Environment(source_date_epoch=epoch, tz=tz, umask=umask)
            plan = recipe.plan(
                Source(sdist.url, sdist.sha256, "sdist"),
                {**params, **build.parameters},
                env,
                inputs=build.wheelhouse,
                outputs=(Output(wheel.filename, wheel.sha256),),
                inferences=(*inferences, *build.inferences, Inference("SOURCE_DATE_EPOCH", str(epoch), label)),
                image=build.image.spec,
            )
            candidates.append(Candidate(f"{build.label}, {label}", plan))
    summary = {
        "ecosystem": "pypi",
        "index": index.url,
        "project": name,
        "version": str(version),
        "sdist": {"filename": sdist.filename, "url": sdist.url, "sha256": sdist.sha256},
        "wheel": {
            "filename": wheel.filename,
            "url": wheel.url,
            "sha256": wheel.sha256,
            "uploaded": wheel.upload_time.isoformat() if wheel.upload_time else None,
        },
        "backend": system.backend,
        "generator": wheel_facts.generator,
        "build_requirements": requires,
        "pythons": [build.image.python for build in builds],
        "publish_attestations": published_by.records,
    }
    origin = write_origin(ctx, "pypi-release.json", summary)
    resolution = Resolution(
        target=target,
        candidates=candidates,
        published={wheel.filename: wheel_path},
        origin=origin,
        signature_status=published_by.signature,
        summary=summary,
        notes=notes,
    )
    if system.backend.startswith("setuptools"):  # a refused option; the setuptools of the wheel's era
        resolution.fallback = SetuptoolsFallback(
            recipe, index, ctx.index_url, requires, wheel.filename, system.backend, wheel_facts.generator,
            wheel.upload_time, ctx.cache.root / "python",
        )  # fmt: skip
    return resolution
