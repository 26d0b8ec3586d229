"""A Debian ``.buildinfo`` (deb822, optionally OpenPGP clearsigned): rebuild exactly what it records.

Fields read: Source (with the source version in parentheses for binNMUs),
Version, Architecture, Build-Architecture, Build-Path, Checksums-Sha256,
Installed-Build-Depends, Environment, Binary-Only-Changes. The builder image
is made with mmdebstrap from exactly the recorded package versions; a version
the archive no longer has is listed (exit 3) unless
``--allow-newer-build-deps``, which uses the archive's version and records
each such deviation in the plan, the report and any attestation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from debian import deb822

from rebuild.debian import control
from rebuild.debian.archive import DebianArchive
from rebuild.errors import EnvironmentFailure, InputError, PlanError
from rebuild.fields import component
from rebuild.plan import Inference, Output
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.debian import TOOLS, build_mode, debian_plan, fetch_source
from rebuild.untrusted import MAX_DOCUMENT_BYTES, dig, load_json, printable

REQUIRED = ("Source", "Version", "Architecture", "Checksums-Sha256", "Installed-Build-Depends")
LOCALE_VARIABLES = ("LC_ALL", "LANG")
KEPT_VARIABLES = ("DEB_BUILD_OPTIONS", "DEB_BUILD_PROFILES", "LANGUAGE")


class MissingBuildDependenciesError(EnvironmentFailure):
    """Recorded build-dependency versions the archive does not have (exit 3)."""


def read_buildinfo(path: Path) -> tuple[deb822.BuildInfo, bool]:
    """The fields of a .buildinfo, and whether it carried an OpenPGP signature block.

    Raises:
        InputError: unreadable, not UTF-8, garbled signature block, or a required field is missing (exit 2).
    """
    data = control.read_file(path)
    parsed = control.read_document(control.decode(data, str(path)), str(path), deb822.BuildInfo)
    for name in REQUIRED:
        if not str(parsed.fields.get(name) or "").strip():
            raise PlanError(f"{path.name} is missing field {name!r}", "a .buildinfo cannot be rebuilt without it")
    return parsed.fields, parsed.signed


@dataclass(frozen=True)
class Pins:
    """What the builder image installs for the recorded build dependencies, and what could not be had."""

    packages: list[str]  # package=version
    deviations: list[str]
    missing: list[str]


def pin_build_dependencies(
    recorded: Sequence[tuple[str, str]], available: Mapping[str, set[str]], *, allow_newer: bool, where: str
) -> Pins:
    """Each recorded version if the archive has it; else, with ``allow_newer``, the archive's newest (a deviation).

    "Newest" is dpkg's version order, never a text sort (which ranks 1.9-1 above 1.10-1).
    """
    packages, deviations, missing = [], [], []
    for package, version in recorded:
        have = available.get(package, set())
        if version in have:
            packages.append(f"{package}={version}")
        elif not allow_newer:
            listed = f" [archive has {', '.join(control.debian_sorted(have, where))}]" if have else ""
            missing.append(f"{package} (= {version}){listed}")
        elif have:
            newest = control.newest(have, f"{where}: {package}")
            packages.append(f"{package}={newest}")
            deviations.append(f"build dependency {package}: recorded {version}, used the archive's {newest}")
        else:
            deviations.append(f"build dependency {package} (= {version}) is not in the archive: left out")
    return Pins(packages, deviations, missing)


def resolve_buildinfo(path: Path, ctx: ResolveContext) -> Resolution:
    fields, signed = read_buildinfo(path)
    if fields.get("Binary-Only-Changes"):
        raise PlanError(f"{path.name} is a binNMU (Binary-Only-Changes); rebuilding binNMUs is not supported yet")
    try:
        name, recorded_version = fields.get_source()
    except (KeyError, ValueError) as e:
        shown = printable(repr(fields.get("Source")), 200)
        raise PlanError(f"{path.name}: Source {shown} is not 'name' or 'name (version)'") from e
    source_version = str(recorded_version or fields["Version"])
    build_arch = fields.get("Build-Architecture", "amd64")
    if build_arch != "amd64":
        raise PlanError(f"{path.name} was built on {build_arch}; this machine rebuilds amd64 builds")
    try:
        checksums = control.checksums(fields, "Checksums-Sha256", path.name)
        recorded = control.exact_versions(fields["Installed-Build-Depends"], f"{path.name}: Installed-Build-Depends")
        env = control.environment(fields, path.name)
    except InputError as e:
        raise PlanError(e.message, "a .buildinfo as dpkg-genbuildinfo writes it is needed") from e
    debs = {f: sha for f, (sha, _) in checksums.items() if f.endswith((".deb", ".udeb"))}
    for filename in debs:  # looked for beside the .buildinfo: one file name, never a path
        component(f"{path.name} Checksums-Sha256 file", filename)
    if not debs:
        raise PlanError(f"{path.name} records no .deb in Checksums-Sha256: nothing to compare a rebuild with")
    unpinned = [p for p, v in recorded if not v]
    if unpinned:
        raise PlanError(f"{path.name}: Installed-Build-Depends has no exact version for {', '.join(unpinned)}")

    archive = DebianArchive(ctx.archive, ctx.suite, ctx.cache)
    ctx.progress("resolve", f"checking {len(recorded)} recorded build dependencies against {ctx.archive} {ctx.suite}")
    available = archive.versions({p for p, _ in recorded})
    pins = pin_build_dependencies(
        recorded, available, allow_newer=ctx.allow_newer_build_deps, where=f"{ctx.archive} {ctx.suite}"
    )
    packages, deviations, missing = pins.packages, pins.deviations, pins.missing
    if missing:
        raise MissingBuildDependenciesError(
            f"{len(missing)} recorded build dependenc{'y is' if len(missing) == 1 else 'ies are'} not in "
            f"{ctx.archive} {ctx.suite}: {', '.join(missing)}",
            "pass --archive with a snapshot.debian.org URL from the build date, "
            "or --allow-newer-build-deps to use the archive's versions (recorded as deviations)",
        )
    recorded_names = {p for p, _ in recorded}
    inferences = [
        Inference(tool, "the archive's version", "the sandbox builds as a non-root user")
        for tool in TOOLS
        if tool not in recorded_names
    ]
    packages += [tool for tool in TOOLS if tool not in recorded_names]

    epoch_text = env.get("SOURCE_DATE_EPOCH")
    if epoch_text is not None and not (epoch_text.isascii() and epoch_text.isdigit()):
        raise PlanError(f"{path.name}: Environment SOURCE_DATE_EPOCH={epoch_text!r} is not an integer")
    if epoch_text is None:
        inferences.append(Inference("SOURCE_DATE_EPOCH", "from debian/changelog", "not recorded; dpkg sets it"))
    build_path = fields.get("Build-Path", "").strip()
    if not build_path:
        build_path = f"/build/reproducible-path/{name}"
        inferences.append(Inference("Build-Path", build_path, "not recorded"))
    locale = next((env[v] for v in LOCALE_VARIABLES if v in env), "C.UTF-8")
    extra = {k: v for k, v in env.items() if k in KEPT_VARIABLES or k.startswith("DEB_")}

    source = archive.source(name, source_version)
    ctx.progress("resolve", f"fetching {source.dsc.name}, checked against the archive and the .dsc")
    files = fetch_source(archive, source)
    published = _published(path, debs, archive, name, source_version, ctx)
    plan = debian_plan(
        ctx,
        source,
        files,
        [Output(f, sha) for f, sha in sorted(debs.items())],
        packages,
        build_path=build_path,
        mode=build_mode(fields["Architecture"].split()),
        epoch=int(epoch_text) if epoch_text is not None else None,
        locale=locale,
        tz=env.get("TZ", "UTC"),
        extra=extra,
        inferences=inferences,
        deviations=deviations,
    )
    signature = "OpenPGP clearsigned: signature not checked here" if signed else "unsigned"
    summary = {
        "ecosystem": "debian",
        "buildinfo": str(path),
        "source": name,
        "version": source_version,
        "architecture": fields["Architecture"],
        "buildPath": build_path,
        "installedBuildDepends": len(recorded),
        "archive": ctx.archive,
        "archiveSignature": archive.signature,
        "deviations": deviations,
    }
    return Resolution(
        target=str(path),
        candidates=[Candidate("the recorded build dependencies" if not deviations else "with deviations", plan)],
        published=published,
        origin=path,
        signature_status=signature,
        summary=summary,
        notes=list(deviations),
    )


def _published(
    path: Path, debs: dict[str, str], archive: DebianArchive, name: str, version: str, ctx: ResolveContext
) -> dict[str, Path]:
    """The .debs to compare with: given, beside the .buildinfo, or the archive's (checked against the record)."""
    given = {p.name: p for p in ctx.artifacts}
    unknown = sorted(set(given) - set(debs))
    if unknown:
        raise InputError(f"--artifact {', '.join(unknown)} is not recorded in {path.name}")
    in_archive = {b.file.name: b for b in archive.binaries_of(name, version)}
    out = {}
    for filename, sha in debs.items():
        if filename in given:
            out[filename] = given[filename]
        elif (path.parent / filename).is_file():
            out[filename] = path.parent / filename
        elif filename in in_archive:
            out[filename] = archive.fetcher.fetch(in_archive[filename].file.uri, sha, f"published {filename}")
        else:
            raise InputError(
                f"published {filename} is neither beside {path.name} nor in {ctx.archive} {ctx.suite}",
                "pass it with --artifact FILE",
            )
    return out


def write_buildinfo(run_dir: Path, dest: Path) -> Path:
    """The .buildinfo dpkg wrote for a rebuild in ``run_dir`` (a `rebuild verify` output directory), at ``dest``.

    The report and the .buildinfo are read as untrusted: the directory may come from anywhere.

    Raises:
        InputError: the directory holds no Debian rebuild, or its .buildinfo does not match its report.
    """
    report_path = run_dir / "verify-report.json"
    try:
        report = load_json(control.read_file(report_path, MAX_DOCUMENT_BYTES), str(report_path))
    except InputError as e:
        raise InputError(
            f"{report_path}: not a rebuild's report ({e.message})", "give a `rebuild verify --out` directory"
        ) from e
    found = sorted(p for p in (run_dir / "rebuilt").glob("*.buildinfo") if p.is_file() and not p.is_symlink())
    if dig(report, "plan", "recipe", "name") != "debian-binary" or not found:
        raise InputError(f"{run_dir} holds no Debian rebuild (no .buildinfo from dpkg in rebuilt/)")
    data = control.read_file(found[0])
    fields = control.read_document(control.decode(data, found[0].name), found[0].name, deb822.BuildInfo).fields
    recorded = control.checksums(fields, "Checksums-Sha256", found[0].name)
    artifacts = dig(report, "artifacts", default=[])
    for artifact in artifacts if isinstance(artifacts, list) else []:
        name = dig(artifact, "name")
        if isinstance(name, str) and name in recorded and recorded[name][0] != dig(artifact, "verdict", "b", "sha256"):
            raise InputError(f"{found[0].name} does not match the rebuilt {printable(name, 200)}")
    dest = dest if dest.suffix == ".buildinfo" and not dest.is_dir() else dest / found[0].name
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)  # dpkg's bytes, as written
    except OSError as e:
        raise InputError(f"cannot write {dest}: {e.strerror or e}") from e
    return dest
