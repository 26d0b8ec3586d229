"""The archive's indices: the fast scan finds what python-debian's full parse finds; lookups choose right."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from debian import deb822
from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.debian.archive import PACKAGES_FIELDS, DebianArchive
from rebuild.debian.index import Index
from rebuild.errors import InputError
from rebuild.fetch.cache import BlobCache

SHA = "5b" * 32


def sources_entry(name: str, version: str) -> str:
    upstream = version.split(":")[-1].rsplit("-", 1)[0]
    return (
        f"Package: {name}\nBinary: {name}\nVersion: {version}\nBuild-Depends: debhelper-compat (= 13)\n"
        f"Directory: pool/main/{name[0]}/{name}\nChecksums-Sha256:\n {SHA} 1 {name}_{version}.dsc\n"
        f" {SHA} 2 {name}_{upstream}.orig.tar.gz\n"
    )


def packages_entry(package: str, version: str, source: str = "", arch: str = "amd64") -> str:
    source_line = f"Source: {source}\n" if source else ""
    return (
        f"Package: {package}\n{source_line}Version: {version}\nArchitecture: {arch}\n"
        f"Filename: pool/main/x/{package}_{version}_{arch}.deb\nSHA256: {SHA}\n"
    )


SOURCES = "\n".join(
    [
        sources_entry("hello", "2.10-3"),
        sources_entry("hello", "2.9-1"),
        sources_entry("hello", "2.10-2"),
        sources_entry("hello-traditional", "2.10-6"),
        sources_entry("gcc-12", "12.2.0-14"),
    ]
)
PACKAGES = "\n".join(
    [
        packages_entry("hello", "2.10-3"),
        packages_entry("hello-dbgsym", "2.10-3", "hello"),
        packages_entry("hello", "2.9-1"),
        packages_entry("cpp-12", "12.2.0-14", "gcc-12"),
        packages_entry("libgcc-s1", "12.2.0-14+b1", "gcc-12 (12.2.0-14)"),
        packages_entry("gcc-12-base", "12.2.0-14", "gcc-12", "all"),
        packages_entry("debhelper", "13.9-1", arch="all"),
        packages_entry("debhelper", "13.11.4", arch="all"),
    ]
)


TEXTS = {"main/source/Sources.xz": SOURCES, "main/binary-amd64/Packages.xz": PACKAGES}


class FakeArchive(DebianArchive):
    """The archive's lookups over fixed index texts (no InRelease, no network)."""

    def release(self) -> dict[str, tuple[str, int]]:
        self.release_sha256 = "00" * 32
        return {name: (hashlib.sha256(text.encode()).hexdigest(), len(text)) for name, text in TEXTS.items()}

    def index(self, name: str) -> str:
        return TEXTS[name]


@pytest.fixture
def archive(tmp_path: Path) -> DebianArchive:
    return FakeArchive("http://deb.example", "bookworm", BlobCache(tmp_path))


def test_the_newest_source_version_in_debian_order(archive: DebianArchive) -> None:
    source = archive.source("hello", None)
    assert source.version == "2.10-3" and source.dsc.name == "hello_2.10-3.dsc"
    assert [f.name for f in source.files] == ["hello_2.10.orig.tar.gz"]
    assert source.dsc.uri == "http://deb.example/pool/main/h/hello/hello_2.10-3.dsc"
    assert source.fields["Build-Depends"] == "debhelper-compat (= 13)"
    assert archive.source("hello", "2.9-1").version == "2.9-1"


def test_an_unknown_source_or_version_is_named(archive: DebianArchive) -> None:
    with pytest.raises(InputError, match=r"bookworm has hello 2\.9-1, 2\.10-2, 2\.10-3, not 1\.0$"):
        archive.source("hello", "1.0")
    with pytest.raises(InputError, match="has no source package 'hell'"):
        archive.source("hell", None)


def test_binaries_of_a_source_version(archive: DebianArchive) -> None:
    assert [(b.package, b.version, b.architecture) for b in archive.binaries_of("gcc-12", "12.2.0-14")] == [
        ("cpp-12", "12.2.0-14", "amd64"),
        ("gcc-12-base", "12.2.0-14", "all"),
        ("libgcc-s1", "12.2.0-14+b1", "amd64"),  # a binNMU names its source version in parentheses
    ]
    assert [b.file.name for b in archive.binaries_of("hello", "2.10-3")] == [
        "hello-dbgsym_2.10-3_amd64.deb",
        "hello_2.10-3_amd64.deb",
    ]
    assert archive.binaries_of("hello", "2.10-2") == []


def test_versions_of_binary_packages(archive: DebianArchive) -> None:
    assert archive.versions({"debhelper", "hello", "absent"}) == {
        "debhelper": {"13.9-1", "13.11.4"},
        "hello": {"2.10-3", "2.9-1"},
    }


NAMES = st.sampled_from(["hello", "hello-dbgsym", "gcc-12", "libgcc-s1", "a+b", "x.y"])
ENTRY = st.tuples(NAMES, st.sampled_from(["1.0-1", "2:1.0", "1.0~rc1"]), st.one_of(st.just(""), NAMES))


@given(st.lists(ENTRY, max_size=12), st.sets(NAMES, max_size=3), st.booleans())
@settings(max_examples=200, deadline=None)
def test_the_scan_finds_what_python_debians_full_parse_finds(
    entries: list[tuple[str, str, str]], names: set[str], or_source: bool
) -> None:
    text = "\n".join(packages_entry(p, v, s) for p, v, s in entries)
    found = Index.from_text(text, deb822.Packages, "t", PACKAGES_FIELDS).find(names, or_source=or_source)
    full = [
        p
        for p in deb822.Packages.iter_paragraphs(text, use_apt_pkg=False)
        if p["Package"] in names or (or_source and p.source in names)
    ]
    assert [dict(p) for p in found] == [dict(p) for p in full]
