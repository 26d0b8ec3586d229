"""``deb:SOURCE=VERSION``: rebuild a Debian source package from the configured archive and suite.

The source package and the archive's binary packages come through the
archive's signed indices (``rebuild/debian/archive.py``). With no ``.buildinfo`` to
say which build dependencies were installed, the builder image gets the
suite's current build dependencies; that is recorded as a deviation, so a
PASSED statement made this way says so. ``debian_plan`` is shared with the
``.buildinfo`` adapter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from debian import deb822
from debian.debian_support import DpkgArchTable

from rebuild.build.images import ImageSpec
from rebuild.debian import control
from rebuild.debian.archive import ARCH, BinaryPackage, DebianArchive, SourcePackage
from rebuild.errors import DigestMismatchError, EnvironmentFailure, InputError, PlanError
from rebuild.plan import BuildPlan, Environment, Inference, Input, Output, Source
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext, write_origin

RECIPE = "debian-binary"
BUILD_ROOT = "/build/reproducible-path"  # where reproduce.debian.net builds
TOOLS = ("build-essential", "fakeroot")  # the sandbox builds as a non-root user: fakeroot is needed
BUILD_DEPENDS = ("Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep")
DPKG_TABLES = "/usr/share/dpkg"  # dpkg's architecture tables: what "linux-any" or "any-amd64" match


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


def build_dependency_names(
    fields: Mapping[str, str],
    *,
    arch: str = ARCH,
    profiles: Collection[str] = (),
    arch_table: DpkgArchTable | None = None,
    where: str = "Sources entry",
) -> list[str]:
    """The packages to install for a source's Build-Depends(-Arch/-Indep), as the build would need them.

    Of each entry's alternatives, the first that applies on ``arch`` with
    ``profiles`` (its ``[arch]`` and ``<profile>`` restrictions, as dpkg reads
    them); an entry none of whose alternatives applies is left out. Versions
    and architecture qualifiers (``python3:any``) are dropped: the suite has
    one version of each. ``arch_table`` is read from dpkg's tables when an
    ``[arch]`` restriction needs it.

    Raises:
        InputError: a relation python-debian cannot parse.
        EnvironmentFailure: dpkg's architecture tables are needed and missing.
    """
    names = set(TOOLS)
    for key in BUILD_DEPENDS:
        for alternatives in control.relations(fields.get(key, ""), f"{where} {key}"):
            for relation in alternatives:
                if relation["arch"]:
                    arch_table = arch_table or _arch_table()
                    if not deb822.PkgRelation.holds_on_arch(relation, arch, arch_table):
                        continue
                if deb822.PkgRelation.holds_with_profiles(relation, profiles):
                    names.add("debhelper" if relation["name"] == "debhelper-compat" else relation["name"])
                    break
    return sorted(names)


def _arch_table() -> DpkgArchTable:
    try:
        return DpkgArchTable.load_arch_table(DPKG_TABLES)
    except (OSError, ValueError) as e:
        raise EnvironmentFailure(
            f"dpkg's architecture tables ({DPKG_TABLES}) cannot be read: {e}",
            "install dpkg (mmdebstrap needs it too); they say which [arch] build dependencies apply",
        ) from e


def fetch_source(archive: DebianArchive, source: SourcePackage) -> tuple[Input, ...]:
    """Fetch the .dsc and its files; check each against the .dsc's own Checksums-Sha256."""
    dsc_path = archive.fetcher.fetch(source.dsc.uri, source.dsc.sha256, source.dsc.name)
    # old .dsc files may carry a Latin-1 Maintainer; only the checksums matter here, and they are ASCII
    text = dsc_path.read_bytes().decode("utf-8", "replace")
    dsc = control.read_document(text, source.dsc.name, deb822.Dsc).fields
    listed = control.checksums(dsc, "Checksums-Sha256", source.dsc.name)
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
    ctx.progress("resolve", archive.index_report())
    if not binaries:
        raise PlanError(f"the {ctx.suite} archive publishes no {name} {source.version} binaries for amd64 or all")
    ctx.progress("resolve", f"fetching {source.dsc.name} and {len(binaries)} published .deb(s)")
    files = fetch_source(archive, source)
    published = fetch_published(archive, binaries)
    packages = build_dependency_names(source.fields, where=f"{ctx.suite} Sources entry {name}")
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
        build_path=f"{BUILD_ROOT}/{name}-{control.upstream_version(source.version, source.dsc.name)}",
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
