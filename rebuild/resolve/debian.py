"""``deb:SOURCE=VERSION``: rebuild a Debian source package from the configured archive and suite.

The source package and the archive's binary packages come through the
archive's signed indices (``debian_archive.py``). With no ``.buildinfo`` to
say which build dependencies were installed, the builder image gets the
suite's current build dependencies; that is recorded as a deviation, so a
PASSED statement made this way says so. ``debian_plan`` is shared with the
``.buildinfo`` adapter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from rebuild.build.images import ImageSpec
from rebuild.debian import control
from rebuild.debian.archive import BinaryPackage, DebianArchive, SourcePackage, upstream_free
from rebuild.errors import DigestMismatchError, InputError, PlanError
from rebuild.plan import BuildPlan, Environment, Inference, Input, Output, Source
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext, write_origin

RECIPE = "debian-binary"
BUILD_ROOT = "/build/reproducible-path"  # where reproduce.debian.net builds
TOOLS = ("build-essential", "fakeroot")  # the sandbox builds as a non-root user: fakeroot is needed


def parse_target(target: str) -> tuple[str, str | None]:
    spec = target.removeprefix("deb:").strip()
    name, sep, version = spec.partition("=")
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.\-]+", name) or (sep and not version):
        raise InputError(f"{target!r} is not deb:SOURCE or deb:SOURCE=VERSION")
    return name, version or None


def build_mode(architectures: Sequence[str]) -> str:
    arches = {a for a in architectures if a != "source"}
    if arches == {"all"}:
        return "-A"
    if "all" not in arches:
        return "-B"
    return "-b"


def build_dependency_names(fields: Mapping[str, str]) -> list[str]:
    """The packages to install for a source's Build-Depends(-Arch/-Indep): first alternatives, no versions."""
    names = []
    for key in ("Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep"):
        for item in fields.get(key, "").replace("\n", " ").split(","):
            first = item.split("|")[0].strip()
            first = re.sub(r"\[.*?\]|<.*?>|\(.*?\)", "", first).strip()
            name = first.split(":")[0].strip()
            if not name:
                continue
            names.append("debhelper" if name == "debhelper-compat" else name)
    return sorted(set(names) | set(TOOLS))


def fetch_source(archive: DebianArchive, source: SourcePackage) -> tuple[Input, ...]:
    """Fetch the .dsc and its files; check each against the .dsc's own Checksums-Sha256."""
    dsc_path = archive.fetcher.fetch(source.dsc.uri, source.dsc.sha256, source.dsc.name)
    text = control.unwrap_clearsigned(dsc_path.read_text("utf-8", "replace"), source.dsc.name).text
    listed = control.checksums(control.parse_one(text, source.dsc.name).get("Checksums-Sha256", ""), source.dsc.name)
    for f in source.files:
        if f.name not in listed:
            raise PlanError(f"{source.dsc.name} does not list {f.name}")
        if listed[f.name][0] != f.sha256:
            raise DigestMismatchError(f"{f.name}: the .dsc says sha256 {listed[f.name][0]}, the archive {f.sha256}")
        archive.fetcher.fetch(f.uri, f.sha256, f.name)
    return tuple(Input("source", f.name, f.uri, f.sha256) for f in source.files)


def debian_plan(
    ctx: ResolveContext,
    source: SourcePackage,
    files: tuple[Input, ...],
    outputs: Sequence[Output],
    packages: Sequence[str],
    *,
    build_path: str,
    mode: str,
    epoch: int | None,
    locale: str = "C.UTF-8",
    tz: str = "UTC",
    extra: Mapping[str, str] | None = None,
    inferences: Sequence[Inference] = (),
    deviations: Sequence[str] = (),
) -> BuildPlan:
    recipe = ctx.book.get(RECIPE)
    parent, _, source_dir = build_path.rstrip("/").rpartition("/")
    if not parent or not source_dir:
        raise PlanError(f"build path {build_path!r} must be an absolute directory below /")
    params = {"dsc": source.dsc.name, "source_dir": source_dir, "build_mode": mode}
    spec = ImageSpec(
        recipe.image.name, tuple(sorted(set(packages))), ctx.suite, ctx.archive, "minbase", recipe.image.epoch
    )
    env = Environment(source_date_epoch=epoch, build_path=parent, tz=tz, locale=locale, extra=dict(extra or {}))
    return recipe.plan(
        Source(source.dsc.uri, source.dsc.sha256, "dsc"),
        params,
        env,
        inputs=files,
        outputs=outputs,
        inferences=inferences,
        deviations=deviations,
        image=spec,
    )


def fetch_published(archive: DebianArchive, binaries: Sequence[BinaryPackage]) -> dict[str, Path]:
    return {b.file.name: archive.fetcher.fetch(b.file.uri, b.file.sha256, b.file.name) for b in binaries}


def resolve_deb(target: str, ctx: ResolveContext) -> Resolution:
    """Raises: InputError (exit 2) for an unknown source or version; FetchError (exit 3)."""
    name, version = parse_target(target)
    archive = DebianArchive(ctx.archive, ctx.suite, ctx.cache)
    ctx.progress("resolve", f"reading {ctx.archive} {ctx.suite} (signed indices)")
    source = archive.source(name, version)
    binaries = archive.binaries_of(name, source.version)
    if not binaries:
        raise PlanError(f"the {ctx.suite} archive publishes no {name} {source.version} binaries for amd64 or all")
    ctx.progress("resolve", f"fetching {source.dsc.name} and {len(binaries)} published .deb(s)")
    files = fetch_source(archive, source)
    published = fetch_published(archive, binaries)
    packages = build_dependency_names(source.fields)
    deviation = (
        f"no .buildinfo: build dependencies are {ctx.suite}'s current versions of {', '.join(packages)} "
        "(the versions installed are in the image lock)"
    )
    plan = debian_plan(
        ctx,
        source,
        files,
        [Output(b.file.name, b.file.sha256) for b in binaries],
        packages,
        build_path=f"{BUILD_ROOT}/{name}-{upstream_free(source.version).rsplit('-', 1)[0]}",
        mode=build_mode([b.architecture for b in binaries]),
        epoch=None,
        inferences=[
            Inference("SOURCE_DATE_EPOCH", "from debian/changelog", "dpkg-buildpackage sets it from the changelog"),
            Inference("Build-Path", BUILD_ROOT, "reproduce.debian.net's build path"),
        ],
        deviations=[deviation],
    )
    summary = {
        "ecosystem": "debian",
        "archive": ctx.archive,
        "suite": ctx.suite,
        "archiveSignature": archive.signature,
        "source": name,
        "version": source.version,
        "dsc": {"uri": source.dsc.uri, "sha256": source.dsc.sha256},
        "binaries": [{"name": b.file.name, "sha256": b.file.sha256} for b in binaries],
        "buildDepends": packages,
    }
    origin = write_origin(ctx, "debian-source.json", summary)
    return Resolution(
        target=target,
        candidates=[Candidate("the suite's current build dependencies", plan)],
        published=published,
        origin=origin,
        signature_status=archive.signature,
        summary=summary,
        notes=[deviation],
    )
