"""The setuptools of a ``wheel`` release's era: what a publisher who built with ``bdist_wheel (X)`` likely had.

A wheel whose ``WHEEL`` says ``Generator: bdist_wheel (0.37.1)`` was built by
an environment with ``wheel`` 0.37.1, often one not updated for a while (pytz
2024.1 was built in 2024 with a wheel from 2021). Its setuptools is then of the
same age rather than the newest at the upload, and setuptools' metadata
changed between the two (``Metadata-Version``, field order, ``License-File``,
where license files go). The setuptools of that era is the newest one uploaded
while that ``wheel`` version was the newest: before the first later ``wheel``
release, and never after the published wheel itself.

Both projects' upload times come from the index (PEP 700 ``upload-time``); the
answer is kept in a small JSON file under the cache, only once the ``wheel``
version has a successor (the past does not change; a current one's era is still
running). Everything read (the index, the Generator's version, the cache file)
is checked: versions with ``packaging``, times as RFC 3339, sizes capped.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from rebuild.python.index import SimpleIndex
from rebuild.python.pinning import newest_before
from rebuild.untrusted import parse_rfc3339

MAX_VERSION_TEXT = 40  # a version from a WHEEL file or the cache longer than this is refused
MAX_CACHE_BYTES = 1 << 20
MAX_CACHE_ENTRIES = 2000


@dataclass(frozen=True)
class Era:
    """The setuptools of ``wheel``'s era, and the ``wheel`` release that ended it."""

    wheel: Version
    setuptools: Version
    successor: Version  # the first wheel release after ``wheel``
    until: datetime  # when it was uploaded (or the published wheel's upload, when earlier)

    def describe(self) -> str:
        return (
            f"setuptools {self.setuptools}: the newest uploaded while wheel {self.wheel} was current "
            f"(before wheel {self.successor}, {self.until.date()})"
        )


def parse_version(text: str) -> Version | None:
    """A version as a hostile document writes it: None unless ``packaging`` reads it, within a length cap."""
    if not isinstance(text, str) or not text or len(text) > MAX_VERSION_TEXT:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def wheel_releases(index: SimpleIndex) -> dict[Version, datetime]:
    """Each final, not yanked ``wheel`` release with the time of its first upload.

    Raises:
        FetchError, InputError: the index cannot be read.
    """
    first: dict[Version, datetime] = {}
    for f in index.files("wheel"):
        version = f.version
        if version is None or version.is_prerelease or f.yanked or f.upload_time is None:
            continue
        if version not in first or f.upload_time < first[version]:
            first[version] = f.upload_time
    return first


def setuptools_of_era(
    index: SimpleIndex, wheel: Version, not_after: datetime | None, cache_dir: Path | None = None
) -> Era | None:
    """The setuptools of ``wheel``'s era, or None: the version is not on the index, it is still the newest
    (its era is now, which the pin as of the upload already is), or no setuptools wheel predates the end.

    Raises:
        FetchError, InputError: the index cannot be read.
    """
    key = f"{index.url} wheel=={wheel} not-after {not_after.isoformat() if not_after else '-'}"
    cache = cache_dir / "setuptools-era.json" if cache_dir is not None else None
    known = _read_cache(cache)
    if key in known:
        return known[key]
    releases = wheel_releases(index)
    if wheel not in releases:
        return None
    later = [(when, version) for version, when in releases.items() if version > wheel]
    if not later:
        return None
    until, successor = min(later)  # the first later release to appear (a patch of an older line counts too)
    cutoff = min(until, not_after) if not_after is not None else until
    newest = newest_before(index, "setuptools", SpecifierSet(), cutoff)
    found = parse_version(newest or "")
    if found is None:
        return None
    era = Era(wheel, found, successor, cutoff)
    if cache is not None:
        _write_cache(cache, {**known, key: era})
    return era


def _read_cache(path: Path | None) -> dict[str, Era]:
    """The cache file, every entry checked; a file that is not what this module writes counts as empty."""
    if path is None or not path.is_file():
        return {}
    try:
        with open(path, "rb") as f:
            body = f.read(MAX_CACHE_BYTES + 1)
        doc = json.loads(body) if len(body) <= MAX_CACHE_BYTES else None
    except (OSError, ValueError):
        return {}
    out: dict[str, Era] = {}
    for key, entry in doc.items() if isinstance(doc, dict) else ():
        if not isinstance(entry, dict) or len(out) >= MAX_CACHE_ENTRIES:
            continue
        versions = [parse_version(entry.get(name, "")) for name in ("wheel", "setuptools", "successor")]
        until = parse_rfc3339(entry["until"]) if isinstance(entry.get("until"), str) else None
        wheel, setuptools, successor = versions
        if wheel is None or setuptools is None or successor is None or until is None or successor <= wheel:
            continue
        out[key] = Era(wheel, setuptools, successor, until)
    return out


def _write_cache(path: Path, entries: dict[str, Era]) -> None:
    """Written whole to a temporary file and renamed: a reader never sees half of it. Best effort."""
    doc = {
        key: {
            "wheel": str(e.wheel),
            "setuptools": str(e.setuptools),
            "successor": str(e.successor),
            "until": e.until.isoformat().replace("+00:00", "Z"),
        }
        for key, e in list(entries.items())[-MAX_CACHE_ENTRIES:]
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".setuptools-era-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        return
