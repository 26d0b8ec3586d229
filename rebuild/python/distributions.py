"""What a Python wheel and sdist say about how they were built.

A published wheel records its build backend and version (``WHEEL``'s
``Generator:`` line) and, in its zip entries, the time it was built with; the
sdist records ``build-system.requires`` and ``build-backend`` in
``pyproject.toml`` and, in ``PKG-INFO``'s mtime, when it was made. Both say
which Pythons the release runs on (``Requires-Python`` in ``PKG-INFO`` and in
the wheel's ``METADATA``), which decides the builder Pythons to try. From these
the PyPI adapter infers an exact backend and a short, ordered list of
``SOURCE_DATE_EPOCH`` candidates. Every inference is recorded in the plan.
"""

from __future__ import annotations

import calendar
import io
import re
import tarfile
import tomllib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rebuild.errors import InputError, PlanError
from rebuild.plan import Inference
from rebuild.untrusted import printable

# Generator name in WHEEL -> the distribution that is the backend (or provides bdist_wheel)
GENERATOR_DISTRIBUTIONS = {
    "flit": "flit_core",
    "flit_core": "flit_core",
    "hatchling": "hatchling",
    "poetry": "poetry-core",
    "poetry-core": "poetry-core",
    "pdm-backend": "pdm-backend",
    "pdm-pep517": "pdm-pep517",
    "bdist_wheel": "wheel",
    "setuptools": "setuptools",
    "uv": "uv_build",  # uv's build backend, built into uv or as the uv_build package: one version scheme
}
# Backends whose wheels have fixed timestamps when SOURCE_DATE_EPOCH is unset
FIXED_TIME_BACKENDS = ("flit_core", "poetry", "pdm")
_GENERATOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*\(?\s*v?([0-9][A-Za-z0-9.+!\-]*)\)?")
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")  # pip's default for projects without build-system.requires
MAX_METADATA = 1 << 20  # PKG-INFO and METADATA are read up to this size (a long description is rarely larger)


@dataclass(frozen=True)
class BuildSystem:
    """A pyproject.toml's ``[build-system]``: ``requires`` is None when it does not say."""

    requires: tuple[str, ...] | None
    backend: str = DEFAULT_BACKEND
    in_tree_backend: bool = False  # backend-path: the source builds itself
    has_pyproject: bool = True

    @property
    def requirements(self) -> list[str]:
        """What pip installs to build: the declared requires, or its legacy default."""
        return list(self.requires if self.requires is not None else LEGACY_REQUIRES)

    def inference(self) -> Inference | None:
        """The legacy default, recorded as inference, when the source does not declare its requirements."""
        if self.requires is not None:
            return None
        why = (
            "no pyproject.toml: pip's default for setup.py projects"
            if not self.has_pyproject
            else "pyproject.toml has no build-system.requires: pip's default"
        )
        return Inference("build-system.requires", ", ".join(LEGACY_REQUIRES), why)


def check_requirement(text: str, where: str) -> str:
    """A build requirement from a document, as pip will read it: a PEP 508 name and version, nothing more.

    A direct URL (``name @ https://...``, ``file://``) would make pip fetch an sdist and run its ``setup.py``
    on this machine while it resolves; an option (``--index-url=...``, ``-r FILE``) would change what pip
    does. Both are refused.

    Raises:
        PlanError: not a plain requirement, or a direct URL.
    """
    try:
        parsed = Requirement(text)
    except InvalidRequirement as e:
        reason = str(e).splitlines()[0]
        shown = printable(text, 200)
        raise PlanError(f"{where}: build requirement {shown!r} is not a PEP 508 requirement: {reason}") from e
    if parsed.url is not None or text.lstrip().startswith("-"):
        raise PlanError(
            f"{where}: build requirement {printable(text, 200)!r} names a URL; only index releases are resolved",
            "a direct URL would make pip run code from it on this machine while resolving",
        )
    return text.strip()


def read_build_system(text: str | None, where: str) -> BuildSystem:
    """Parse ``[build-system]`` of a pyproject.toml's text (None: there is no pyproject.toml).

    Raises:
        InputError: the text is not TOML.
    """
    if text is None:
        return BuildSystem(None, has_pyproject=False)
    try:
        table = tomllib.loads(text).get("build-system", {})
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{where}: pyproject.toml is not valid TOML: {e}") from e
    if not isinstance(table, dict):
        return BuildSystem(None)
    raw = table.get("requires")
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        return BuildSystem(None, in_tree_backend=bool(table.get("backend-path")))
    backend = table.get("build-backend")
    return BuildSystem(
        tuple(check_requirement(r, where) for r in raw),
        backend if isinstance(backend, str) and backend else DEFAULT_BACKEND,
        bool(table.get("backend-path")),
    )


@dataclass(frozen=True)
class WheelFacts:
    generator: str  # the raw Generator: value, "" when absent
    generator_name: str
    generator_version: str
    entry_times: tuple[int, ...]  # distinct zip entry times, as UTC epochs, sorted
    group_writable: bool = False  # most of the project's files have mode g+w: built under umask 0002
    requires_python: str = ""  # METADATA's Requires-Python, as written ("" when absent)


@dataclass(frozen=True)
class SdistFacts:
    top_dir: str
    build_system: BuildSystem
    pkg_info_mtime: int | None
    requires_python: str = ""  # PKG-INFO's Requires-Python, as written ("" when absent)


def metadata_field(text: str, name: str) -> str:
    """The first value of header ``name`` in core metadata (PKG-INFO, METADATA), "" when absent.

    Only the header block is read (up to the first empty line: the description follows it).
    """
    wanted = name.lower() + ":"
    for line in text.splitlines():
        if not line.strip():
            break
        if line.lower().startswith(wanted):
            return line.split(":", 1)[1].strip()
    return ""


def read_wheel(path: Path) -> WheelFacts:
    """Raises: InputError: not a readable wheel."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            wheel_files = [i for i in infos if i.filename.endswith(".dist-info/WHEEL") and i.filename.count("/") == 1]
            with zf.open(wheel_files[0]) if wheel_files else io.BytesIO() as f:
                text = f.read(MAX_METADATA).decode("utf-8", "replace")  # never the whole of a hostile member
            metadata = [i for i in infos if i.filename.endswith(".dist-info/METADATA") and i.filename.count("/") == 1]
            with zf.open(metadata[0]) if metadata else io.BytesIO() as f:
                metadata_text = f.read(MAX_METADATA).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, KeyError, zlib.error, EOFError) as e:
        raise InputError(f"{path.name} is not a readable wheel: {e}") from e
    generator = ""
    for line in text.splitlines():
        if line.lower().startswith("generator:"):
            generator = line.split(":", 1)[1].strip()
            break
    match = _GENERATOR.match(generator)
    times = sorted({calendar.timegm((*i.date_time, 0, 0, 0)) for i in infos})
    # the project's own files (dist-info is written by the backend: wheel's RECORD is always 0664)
    own = [i for i in infos if not i.is_dir() and ".dist-info/" not in i.filename]
    group_writable = bool(own) and sum(bool((i.external_attr >> 16) & 0o020) for i in own) * 2 > len(own)
    return WheelFacts(
        generator,
        match.group(1) if match else "",
        match.group(2).rstrip(".") if match else "",
        tuple(times),
        group_writable,
        metadata_field(metadata_text, "Requires-Python"),
    )


def read_sdist(path: Path) -> SdistFacts:
    """Raises: InputError: not a readable .tar.gz sdist."""
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
            if not members:
                raise InputError(f"{path.name} is empty")
            top = members[0].name.split("/", 1)[0]
            by_name = {m.name.lstrip("./"): m for m in members}
            pyproject = by_name.get(f"{top}/pyproject.toml")
            pkg_info = by_name.get(f"{top}/PKG-INFO")
            text = None
            if pyproject is not None and pyproject.isfile():
                handle = tf.extractfile(pyproject)
                text = handle.read(MAX_METADATA).decode("utf-8", "replace") if handle else None
            pkg_info_text = ""
            if pkg_info is not None and pkg_info.isfile():
                handle = tf.extractfile(pkg_info)
                pkg_info_text = handle.read(MAX_METADATA).decode("utf-8", "replace") if handle else ""
    except (OSError, tarfile.TarError, EOFError, zlib.error) as e:
        raise InputError(f"{path.name} is not a readable sdist: {e}") from e
    return SdistFacts(
        top,
        read_build_system(text, path.name),
        int(pkg_info.mtime) if pkg_info else None,
        metadata_field(pkg_info_text, "Requires-Python"),
    )


def pin(requirement: str, version: str) -> str:
    """``requirement`` (extras and marker kept) pinned to exactly ``version``."""
    req = Requirement(requirement)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{req.name}{extras}=={version}{marker}"


def requirement_name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def is_fixed_time_backend(backend: str) -> bool:
    return backend.split(".", 1)[0].split(":", 1)[0] in FIXED_TIME_BACKENDS


# Zones tried, in order, when a wheel's zip times are the sdist's file times in some local time
CANDIDATE_ZONES = (
    "Europe/London", "Europe/Berlin", "Europe/Helsinki", "Europe/Moscow", "America/New_York", "America/Chicago",
    "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo",
    "Australia/Sydney", "Pacific/Auckland",
)  # fmt: skip


def infer_timezone(wheel: Path, sdist: Path) -> tuple[str, str] | None:
    """(POSIX TZ string, zone name) the publisher's build ran in, when the wheel's zip times are local file times.

    Backends that write file mtimes (flit without SOURCE_DATE_EPOCH, setuptools) turn them into zip times
    in the build machine's local time. The sdist keeps the same files' mtimes in UTC; the difference
    gives the offset at each file's date, and the first zone whose rules give every offset names the
    time zone. The POSIX TZ rule is used in the build (no tz database needed in the builder image).
    """
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        with tarfile.open(sdist, "r:*") as tf:
            mtimes = {m.name.split("/", 1)[1]: m.mtime for m in tf.getmembers() if m.isfile() and "/" in m.name}
        with zipfile.ZipFile(wheel) as zf:
            infos = [i for i in zf.infolist() if ".dist-info/" not in i.filename and not i.is_dir()]
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError):
        return None
    pairs = []
    for info in infos:
        mtime = mtimes.get(info.filename, mtimes.get(f"src/{info.filename}"))
        if mtime is not None:
            local = calendar.timegm((*info.date_time, 0, 0, 0))
            pairs.append((float(mtime), round((local - int(mtime) // 2 * 2) / 900) * 900))
    if not pairs or all(offset == 0 for _, offset in pairs):
        return None
    if any(abs(offset) > 14 * 3600 for _, offset in pairs):
        return None  # not local times of the files (a backend's fixed timestamp, or rewritten mtimes)
    for zone in CANDIDATE_ZONES:
        try:
            rules = ZoneInfo(zone)
        except ZoneInfoNotFoundError:
            continue
        stamps = ((dt.datetime.fromtimestamp(m, dt.UTC).astimezone(rules), o) for m, o in pairs)
        if all(when.utcoffset() == dt.timedelta(seconds=offset) for when, offset in stamps):
            rule = _posix_rule(zone)
            if rule:
                return rule, zone
    offsets = {offset for _, offset in pairs}
    if len(offsets) == 1:
        (offset,) = offsets
        hours, minutes = divmod(abs(offset) // 60, 60)
        name = f"{'+' if offset >= 0 else '-'}{hours:02d}{minutes:02d}"
        return f"<{name}>{'-' if offset >= 0 else ''}{hours}:{minutes:02d}", f"UTC{name}"
    return None


def _posix_rule(zone: str) -> str | None:
    """The POSIX TZ rule at the end of a TZif file (its rule for times after the last transition)."""
    import zoneinfo

    for root in zoneinfo.TZPATH:
        path = Path(root) / zone
        if path.is_file():
            lines = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)
            return lines[-1].decode("ascii", "replace") if len(lines) == 2 and lines[-1] else None
    return None
