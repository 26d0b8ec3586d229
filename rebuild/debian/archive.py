"""A Debian archive (deb.debian.org, a mirror, or a snapshot URL): signed indices, sources and binaries.

The chain of trust is the archive's own: ``InRelease`` is checked with
``gpgv`` against the Debian archive keyring when both are on this machine
(else reported as "not checked"), it gives the sha256 of ``Sources.xz`` and
``Packages.xz``, and those give the sha256 of every ``.dsc``, source file
and ``.deb``. Every file is fetched through the content-addressed cache and
checked against that digest before use. InRelease is read by ``control``;
``Sources`` and ``Packages`` by ``index`` (python-debian parses the
paragraphs a lookup needs), whose parsed form ``index_cache`` keeps under
the digest of the InRelease it came from.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from debian import deb822

from rebuild.debian import control
from rebuild.debian.index import Index, P, Table
from rebuild.debian.index_cache import IndexCache, cache_key
from rebuild.errors import FetchError, InputError, VerificationError
from rebuild.fetch.cache import BlobCache
from rebuild.fetch.fetcher import Fetcher

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
ARCH = "amd64"
SOURCES = "main/source/Sources.xz"
PACKAGES = f"main/binary-{ARCH}/Packages.xz"
# The fields the lookups below (and the plan made from a Sources entry) read; a paragraph keeps only these.
SOURCES_FIELDS = (
    "Package", "Binary", "Version", "Architecture", "Format", "Directory", "Checksums-Sha256",
    "Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep",
    "Build-Conflicts", "Build-Conflicts-Arch", "Build-Conflicts-Indep",
)  # fmt: skip
PACKAGES_FIELDS = ("Package", "Source", "Version", "Architecture", "Filename", "Size", "SHA256")


@dataclass(frozen=True)
class DebFile:
    name: str
    uri: str
    sha256: str


@dataclass(frozen=True)
class SourcePackage:
    name: str
    version: str
    dsc: DebFile
    files: tuple[DebFile, ...]  # the .dsc's other files (orig/debian tarballs)
    fields: deb822.Sources  # the Sources entry's SOURCES_FIELDS


@dataclass(frozen=True)
class BinaryPackage:
    package: str
    version: str
    architecture: str
    file: DebFile


def pool_prefix(source: str) -> str:
    return source[:4] if source.startswith("lib") else source[:1]


class DebianArchive:
    def __init__(self, url: str, suite: str, cache: BlobCache, index_cache: IndexCache | None = None) -> None:
        self.url = url.rstrip("/")
        self.suite = suite
        self.fetcher = Fetcher(cache)
        self.cache = cache
        self.index_cache = index_cache or IndexCache(cache.root / "debian-indices")
        self.signature = "not read yet"
        self.release_sha256 = ""  # of the InRelease bytes whose signature was checked
        self._release: dict[str, tuple[str, int]] | None = None
        self._sources: Index[deb822.Sources] | None = None
        self._packages: Index[deb822.Packages] | None = None

    # --- indices -----------------------------------------------------------------------

    def release(self) -> dict[str, tuple[str, int]]:
        """SHA256 of every index the suite's InRelease names.

        Raises:
            FetchError: InRelease cannot be fetched or read (exit 3).
            VerificationError: its signature does not verify with the Debian keyring (exit 1).
        """
        if self._release is not None:
            return self._release
        url = f"{self.url}/dists/{self.suite}/InRelease"
        with tempfile.TemporaryDirectory(prefix="rebuild-release-") as tmp:
            path = Path(tmp) / "InRelease"
            self.fetcher.download(url, path, f"{self.suite} InRelease")
            data = path.read_bytes()
            self.signature = self._check_signature(path)
        self.release_sha256 = hashlib.sha256(data).hexdigest()
        try:  # the bytes gpgv checked, read by the same rules as every other control file
            fields = control.read_document(control.decode(data, url), url, deb822.Release).fields
            release = control.checksums(fields, "SHA256", url)
        except InputError as e:
            raise FetchError(e.message, "the mirror may be broken; try another --archive") from e
        if not release:
            raise FetchError(f"{url} lists no SHA256 indices")
        self._release = release
        return release

    @staticmethod
    def _check_signature(path: Path) -> str:
        gpgv = shutil.which("gpgv")
        if gpgv is None or not KEYRING.is_file():
            return "InRelease signature not checked (gpgv or the Debian archive keyring is missing)"
        proc = subprocess.run(
            [gpgv, "--keyring", str(KEYRING), str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise VerificationError(
                f"the archive's InRelease signature does not verify with {KEYRING}",
                "the mirror may be compromised or stale; try another --archive",
            )
        return f"InRelease verified with {KEYRING.name}"

    def index(self, name: str) -> str:
        """The text of an index (e.g. ``main/source/Sources.xz``), checked against InRelease."""
        release = self.release()
        if name not in release:
            raise FetchError(f"{self.suite}'s InRelease does not list {name}")
        sha, _size = release[name]
        path = self.fetcher.fetch(f"{self.url}/dists/{self.suite}/{name}", sha, f"{self.suite} {name}")
        try:
            return lzma.decompress(path.read_bytes()).decode("utf-8", "replace")
        except lzma.LZMAError as e:
            raise FetchError(f"{name} from {self.url} is not valid xz: {e}") from e

    def sources(self) -> Index[deb822.Sources]:
        if self._sources is None:
            self._sources = self._parsed(SOURCES, deb822.Sources, SOURCES_FIELDS)
        return self._sources

    def packages(self) -> Index[deb822.Packages]:
        if self._packages is None:
            self._packages = self._parsed(PACKAGES, deb822.Packages, PACKAGES_FIELDS)
        return self._packages

    def _parsed(self, name: str, kind: type[P], fields: tuple[str, ...]) -> Index[P]:
        """The index's table: from the cache when this InRelease's entry is there and sound, else parsed and kept."""
        release = self.release()
        if name not in release:
            raise FetchError(f"{self.suite}'s InRelease does not list {name}")
        key = cache_key(self.release_sha256, name, release[name][0], fields)
        what = f"{self.suite} {name}"
        table = self.index_cache.load(key, what)
        if table is None:
            table = Table.scan(self.index(name), fields)
            self.index_cache.store(key, table, what)
        return Index(table, kind, what)

    def index_report(self) -> str:
        """Where this run's parsed indices came from, for the progress line."""
        stats = self.index_cache.stats
        parts = [f"{w}: parsed form from the cache" for w in stats.hits]
        parts += [f"refused a cache entry, {r}" for r in stats.refused]
        parts += [f"{w}: parsed" for w in stats.misses]
        return "; ".join(parts) or "no index read"

    # --- lookups -----------------------------------------------------------------------

    def source(self, name: str, version: str | None) -> SourcePackage:
        """This source version, or with no version the suite's newest (in dpkg's version order).

        Raises:
            InputError: the suite has no such source (version), naming the versions it has.
        """
        found = [p for p in self.sources().find([name]) if p.get("Package") == name and p.get("Version")]
        if not found:
            raise InputError(f"the {self.suite} archive at {self.url} has no source package {name!r}")
        where = f"{self.suite} Sources entry {name}"
        wanted = version if version is not None else control.newest({p["Version"] for p in found}, where)
        chosen = [p for p in found if p["Version"] == wanted]
        if not chosen:
            have = ", ".join(control.debian_sorted({p["Version"] for p in found}, where))
            raise InputError(f"{self.suite} has {name} {have}, not {version}", "pass one of those versions")
        para = chosen[-1]
        directory = para.get("Directory", f"pool/main/{pool_prefix(name)}/{name}")
        try:
            files = control.checksums(para, "Checksums-Sha256", where)
        except InputError as e:
            raise FetchError(e.message) from e
        debs = [DebFile(f, f"{self.url}/{directory}/{f}", sha) for f, (sha, _) in sorted(files.items())]
        dsc = next((d for d in debs if d.name.endswith(".dsc")), None)
        if dsc is None:
            raise FetchError(f"the Sources entry of {name} {wanted} names no .dsc")
        return SourcePackage(name, wanted, dsc, tuple(d for d in debs if d is not dsc), para)

    def binaries_of(self, source: str, version: str) -> list[BinaryPackage]:
        """The .debs built from this source version (this architecture and ``all``)."""
        out = []
        for p in self.packages().find([source], or_source=True):
            try:
                built_from = (p.source, str(p.source_version))
            except (KeyError, ValueError):  # no Package or Version, or a version python-debian refuses
                continue
            if built_from == (source, version) and "Filename" in p and "SHA256" in p:
                filename = p["Filename"]
                out.append(
                    BinaryPackage(
                        p["Package"],
                        p["Version"],
                        p.get("Architecture", ""),
                        DebFile(filename.rsplit("/", 1)[-1], f"{self.url}/{filename}", p["SHA256"]),
                    )
                )
        return sorted(out, key=lambda b: b.file.name)

    def versions(self, names: Collection[str]) -> dict[str, set[str]]:
        """The versions the suite has of these binary packages (this architecture and ``all``)."""
        out: dict[str, set[str]] = {}
        for p in self.packages().find(names):
            if p.get("Package") in names and p.get("Version"):
                out.setdefault(p["Package"], set()).add(p["Version"])
        return out
