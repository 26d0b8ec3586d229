"""The parsed-index cache: used on the second resolve, missed on a new InRelease, never trusted when damaged.

Each test serves a small archive from a directory (``file://``): an InRelease listing the sha256 of its
``Sources.xz`` and ``Packages.xz``, read by the same code as deb.debian.org's (only the OpenPGP check is
left out: the test archive is not signed by Debian). Whether an index was parsed is observed by counting
the archive's reads of it, never by timing.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import sqlite3
from pathlib import Path

import pytest
from debian import deb822
from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.debian.archive import PACKAGES, PACKAGES_FIELDS, SOURCES, SOURCES_FIELDS, DebianArchive
from rebuild.debian.index import Index, Reduction, Table
from rebuild.debian.index_cache import MAGIC, IndexCache, cache_key
from rebuild.errors import FetchError
from rebuild.fetch.cache import BlobCache
from tests.unit.debian.test_index import PACKAGES as PACKAGES_TEXT
from tests.unit.debian.test_index import SOURCES as SOURCES_TEXT
from tests.unit.debian.test_index import packages_entry


class LocalArchive(DebianArchive):
    """A test archive in a directory: everything as for Debian's, but no OpenPGP signature to check."""

    def __init__(self, url: str, cache: BlobCache, index_cache: IndexCache | None = None) -> None:
        super().__init__(url, "bookworm", cache, index_cache)
        self.reads: list[str] = []  # the indices decompressed and scanned (what the cache saves)

    @staticmethod
    def _check_signature(path: Path) -> str:
        return "not checked: a test archive"

    def index(self, name: str) -> str:
        self.reads.append(name)
        return super().index(name)


def publish(root: Path, sources: str, packages: str, extra: str = "") -> str:
    """Write the archive's indices and an InRelease listing their sha256; return its URL."""
    listing = []
    for name, text in ((SOURCES, sources), (PACKAGES, packages)):
        data = lzma.compress(text.encode())
        path = root / "dists" / "bookworm" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        listing.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    release = "Origin: Test\nSuite: bookworm\n" + extra + "SHA256:\n" + "\n".join(listing) + "\n"
    (root / "dists" / "bookworm" / "InRelease").write_text(release)
    return f"file://{root}"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return publish(tmp_path / "archive", SOURCES_TEXT, PACKAGES_TEXT)


@pytest.fixture
def cache(tmp_path: Path) -> BlobCache:
    return BlobCache(tmp_path / "cache")


def answers(archive: DebianArchive) -> tuple[object, ...]:
    """What a deb: resolve asks the indices, as comparable values."""
    source = archive.source("hello", None)
    binaries = archive.binaries_of("gcc-12", "12.2.0-14")
    versions = archive.versions({"debhelper", "hello"})
    return source.version, source.dsc, dict(source.fields), binaries, versions


def entries(cache: BlobCache) -> list[Path]:
    return sorted(p for p in (cache.root / "debian-indices").iterdir() if not p.name.startswith("."))


def test_the_second_resolve_reads_the_parsed_indices_from_the_cache(url: str, cache: BlobCache) -> None:
    first = LocalArchive(url, cache)
    expected = answers(first)
    assert sorted(first.reads) == [PACKAGES, SOURCES]
    assert first.index_cache.stats.stored == [f"bookworm {SOURCES}", f"bookworm {PACKAGES}"]
    assert len(entries(cache)) == 2

    second = LocalArchive(url, cache)
    assert answers(second) == expected
    assert second.reads == []  # neither index decompressed nor scanned
    assert second.index_cache.stats.hits == [f"bookworm {SOURCES}", f"bookworm {PACKAGES}"]
    assert second.index_report() == (
        f"bookworm {SOURCES}: parsed form from the cache; bookworm {PACKAGES}: parsed form from the cache"
    )


def test_a_paragraph_keeps_only_the_fields_the_lookups_read(tmp_path: Path, cache: BlobCache) -> None:
    sources = (
        "Package: hello\nBinary: hello\nVersion: 2.10-3\nMaintainer: Someone <s@example.org>\n"
        "Files:\n 0123 1 hello_2.10-3.dsc\nBuild-Depends: debhelper-compat (= 13)\nVcs-Git: https://x\n"
        "Checksums-Sha256:\n " + "5b" * 32 + " 1 hello_2.10-3.dsc\nTestsuite: autopkgtest\n"
    )
    url = publish(tmp_path / "archive", sources, PACKAGES_TEXT)
    cold, warm = LocalArchive(url, cache), LocalArchive(url, cache)
    for archive in (cold, warm):  # the same paragraph on both paths
        fields = archive.source("hello", None).fields
        assert sorted(fields) == ["Binary", "Build-Depends", "Checksums-Sha256", "Package", "Version"]
        assert fields["Build-Depends"] == "debhelper-compat (= 13)"
        assert fields["Checksums-Sha256"] == [{"sha256": "5b" * 32, "size": "1", "name": "hello_2.10-3.dsc"}]
    assert cold.reads == [SOURCES] and warm.reads == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("packages", id="a-new-Packages"),
        pytest.param("date", id="the-same-indices-under-a-new-InRelease"),
    ],
)
def test_a_new_inrelease_misses_the_cache(url: str, cache: BlobCache, tmp_path: Path, change: str) -> None:
    answers(LocalArchive(url, cache))
    if change == "packages":
        packages = PACKAGES_TEXT + "\n" + packages_entry("debhelper", "13.15.3", arch="all")
        publish(tmp_path / "archive", SOURCES_TEXT, packages)
    else:
        publish(tmp_path / "archive", SOURCES_TEXT, PACKAGES_TEXT, extra="Date: Sat, 10 Jun 2023 08:55:31 UTC\n")
    archive = LocalArchive(url, cache)
    versions = archive.versions({"debhelper"})
    assert archive.reads == [PACKAGES]
    assert archive.index_cache.stats.misses == [f"bookworm {PACKAGES}"]
    assert versions == {
        "debhelper": {"13.9-1", "13.11.4", "13.15.3"} if change == "packages" else {"13.9-1", "13.11.4"}
    }
    assert len(entries(cache)) == 3  # the old InRelease's two stay (a mirror may still serve it); the new Packages


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "a-flipped-byte":
        at = len(data) - 100
        path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "no-header":
        path.write_bytes(data[len(MAGIC) :])
    elif how == "a-header-with-a-wrong-length":
        path.write_bytes(data + b"extra")
    elif how == "garbage":
        path.write_bytes(os.urandom(4096))
    elif how == "a-symlink":
        target = path.with_name("elsewhere")
        path.rename(target)
        path.symlink_to(target)
    elif how == "a-fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("a-flipped-byte", "sha256 is not the one its header records"),
        ("truncated", r"truncated\?"),
        ("empty", "no table header"),
        ("no-header", "no table header"),
        ("a-header-with-a-wrong-length", r"where the header says \d+"),
        ("garbage", "no table header"),
        ("a-symlink", "Too many levels of symbolic links"),
        ("a-fifo", "not a regular file"),
    ],
)
def test_a_damaged_entry_is_refused_parsed_again_and_rewritten(
    url: str, cache: BlobCache, how: str, reason: str
) -> None:
    expected = answers(LocalArchive(url, cache))
    for entry in entries(cache):
        corrupt(entry, how)
    archive = LocalArchive(url, cache)
    assert answers(archive) == expected
    assert sorted(archive.reads) == [PACKAGES, SOURCES]
    assert len(archive.index_cache.stats.refused) == 2
    assert all(re.search(reason, r) for r in archive.index_cache.stats.refused), archive.index_cache.stats.refused
    assert archive.index_cache.stats.stored == [f"bookworm {SOURCES}", f"bookworm {PACKAGES}"]
    again = LocalArchive(url, cache)
    assert answers(again) == expected and again.reads == []  # rewritten: the next run reads it


def keys(archive: DebianArchive) -> dict[str, str]:
    release = archive.release()
    return {
        SOURCES: cache_key(archive.release_sha256, SOURCES, release[SOURCES][0], SOURCES_FIELDS),
        PACKAGES: cache_key(archive.release_sha256, PACKAGES, release[PACKAGES][0], PACKAGES_FIELDS),
    }


def forge(cache: BlobCache, key: str, change: str) -> None:
    """Rewrite an entry with ``change`` applied to its table and a header that matches: a consistent forgery."""
    index_cache = IndexCache(cache.root / "debian-indices")
    table = index_cache.load(key, "t")
    assert table is not None
    db = sqlite3.connect(":memory:")
    db.deserialize(table.dump())
    db.executescript(change)
    index_cache.store(key, Table(db), "t")
    assert index_cache.stats.stored == ["t"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # SQLite converts what a column's affinity allows (42 to '42' in a TEXT column): these are not converted
        ("UPDATE paragraph SET body = CAST(body AS BLOB) WHERE id = 0", "wrong type"),
        ("UPDATE name SET name = X'68656c6c6f'", "wrong type"),
        ("UPDATE name SET field = 2 WHERE rowid = 1", "wrong type"),
        ("UPDATE name SET field = 'package' WHERE rowid = 1", "wrong type"),
        ("UPDATE name SET paragraph = 'first' WHERE rowid = 1", "wrong type"),
        ("UPDATE name SET paragraph = 0.5 WHERE rowid = 1", "wrong type"),
        ("UPDATE name SET paragraph = 99999 WHERE rowid = 1", "pointing nowhere"),
        ("CREATE VIEW extra AS SELECT 1", "not the table's schema"),
        ("CREATE TRIGGER t AFTER INSERT ON name BEGIN SELECT 1; END", "not the table's schema"),
        ("CREATE INDEX by_name ON name(name)", "not the table's schema"),
        (
            "CREATE TABLE n2(name, field, paragraph); INSERT INTO n2 SELECT * FROM name; DROP TABLE name;"
            "ALTER TABLE n2 RENAME TO name",
            "not the table's schema",
        ),
        ("DROP TABLE paragraph", "not the table's schema"),
    ],
)
def test_a_forged_entry_of_the_wrong_shape_is_refused(url: str, cache: BlobCache, change: str, reason: str) -> None:
    first = LocalArchive(url, cache)
    expected = answers(first)
    for key in keys(first).values():
        forge(cache, key, change)
    archive = LocalArchive(url, cache)
    assert answers(archive) == expected
    assert sorted(archive.reads) == [PACKAGES, SOURCES]
    refused = archive.index_cache.stats.refused
    assert len(refused) == 2 and all(re.search(reason, r) for r in refused), refused


def test_an_entry_that_is_not_a_table_under_a_consistent_header_is_refused(url: str, cache: BlobCache) -> None:
    first = LocalArchive(url, cache)
    expected = answers(first)
    for key in keys(first).values():
        body = b"SQLite format 3\x00" + os.urandom(8192)
        header = (
            f"key sha256:{hashlib.sha256(key.encode()).hexdigest()}\n"
            f"table sha256:{hashlib.sha256(body).hexdigest()} {len(body)}\n"
        )
        first.index_cache.path(key).write_bytes(MAGIC + header.encode() + body)
    archive = LocalArchive(url, cache)
    assert answers(archive) == expected
    assert [r.split(": ", 1)[1][:27] for r in archive.index_cache.stats.refused] == ["not a readable SQLite table"] * 2


def test_an_entry_written_for_another_key_is_refused(url: str, cache: BlobCache) -> None:
    first = LocalArchive(url, cache)
    expected = answers(first)
    by_name = keys(first)
    sources_entry, packages_entry_path = (first.index_cache.path(by_name[n]) for n in (SOURCES, PACKAGES))
    data = sources_entry.read_bytes()
    sources_entry.write_bytes(packages_entry_path.read_bytes())  # swapped: each sound, each under the wrong name
    packages_entry_path.write_bytes(data)
    archive = LocalArchive(url, cache)
    assert answers(archive) == expected
    assert [r.split(": ", 1)[1] for r in archive.index_cache.stats.refused] == ["written for another key"] * 2


def test_a_huge_entry_is_refused_unread_and_a_huge_table_is_not_stored(url: str, cache: BlobCache) -> None:
    first = LocalArchive(url, cache)
    expected = answers(first)
    limit = max(p.stat().st_size for p in entries(cache)) + 1000
    for key in keys(first).values():
        forge(cache, key, f"UPDATE paragraph SET body = body || hex(zeroblob({limit})) WHERE id = 0")
    small = IndexCache(cache.root / "debian-indices", max_bytes=limit)
    archive = LocalArchive(url, cache, small)
    assert answers(archive) == expected
    assert sorted(archive.reads) == [PACKAGES, SOURCES]
    assert all(re.search(rf"\d+ bytes is over the limit of {limit}$", r) for r in small.stats.refused[:2])
    assert small.stats.stored == [f"bookworm {SOURCES}", f"bookworm {PACKAGES}"]  # the sound tables, rewritten

    tiny = IndexCache(cache.root / "tiny", max_bytes=1000)
    archive = LocalArchive(url, cache, tiny)
    assert answers(archive) == expected
    assert tiny.stats.stored == [] and all("over the limit of 1000; not stored" in r for r in tiny.stats.refused)


def test_an_entry_path_that_is_a_directory_costs_a_parse_never_the_run(url: str, cache: BlobCache) -> None:
    first = LocalArchive(url, cache)
    expected = answers(first)
    for path in entries(cache):
        path.unlink()
        (path / "x").mkdir(parents=True)
    archive = LocalArchive(url, cache)
    assert answers(archive) == expected
    refused = archive.index_cache.stats.refused
    assert [r.split(": ", 1)[1] for r in refused[::2]] == ["not a regular file"] * 2
    assert all("not stored" in r for r in refused[1::2]) and archive.index_cache.stats.stored == []
    assert [p.name for p in (cache.root / "debian-indices").iterdir() if p.name.startswith(".")] == []


def test_a_corrupt_table_handed_to_a_lookup_is_an_error_not_a_traceback() -> None:
    table = Table.scan(PACKAGES_TEXT, PACKAGES_FIELDS)
    db = sqlite3.connect(":memory:")
    db.deserialize(table.dump())
    db.execute("UPDATE paragraph SET body = CAST(body AS BLOB)")
    with pytest.raises(FetchError, match="the parsed index cannot be read"):
        Index(Table(db), deb822.Packages, "t").find(["hello"])


# --- the reduction: python-debian reads the kept fields of a reduced paragraph as in the whole one ---------

KEYS = ["Package", "Version", "version", "Description", "Source", "X-Odd", "\x85Version", "#Version", "Ve"]
TEXT = st.text(st.characters(blacklist_characters="\n", max_codepoint=0x2030), max_size=8)
LINE = st.one_of(
    st.builds(lambda k, sep, v: k + sep + v, st.sampled_from(KEYS), st.sampled_from([": ", ":", " : ", "\t:"]), TEXT),
    st.builds(lambda lead, v: lead + v, st.sampled_from([" ", "\t", "\x85", "\xa0", "\r"]), TEXT),
    st.sampled_from(["", " ", "\t ", "\r", " \r", "garbage", "#", "-----BEGIN PGP SIGNATURE-----"]),
    st.sampled_from(["-----END PGP SIGNATURE-----", "-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA256"]),
    st.builds(lambda v: "\r" + v, TEXT),
)
PLAIN_LINE = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", st.sampled_from(["Package", "Version", "Description", "Source", "Tag"]), TEXT),
    st.builds(lambda v: " x" + v, TEXT),
)
STRICT = {"whitespace-separates-paragraphs": False}
WANTED = ["Package", "Version", "version", "Source"]  # every spelling of the kept fields among KEYS


def read(paragraph: str, fields: list[str] | None = None) -> dict[str, str] | str:
    """python-debian's reading of the paragraph (of only ``fields``, when given), or the error it raised."""
    try:
        parsed = deb822.Packages(paragraph.split("\n"), fields=fields, strict=STRICT)
    except (ValueError, KeyError, TypeError, UnicodeError) as e:
        return type(e).__name__
    return {k: v for k, v in parsed.items() if k.lower() in {"package", "version", "source"}}


@given(st.lists(st.one_of(LINE, PLAIN_LINE), max_size=10), st.lists(PLAIN_LINE, min_size=1, max_size=10))
@settings(max_examples=400, deadline=None)
def test_python_debian_reads_a_reduced_paragraph_as_it_reads_those_fields_of_the_whole(
    lines: list[str], plain: list[str]
) -> None:
    reduce = Reduction(["Package", "Version", "Source"])
    for paragraph in ("\n".join(lines), "\n".join(plain)):
        # python-debian's own way of reading only some fields; or its reading of the whole paragraph, which
        # refuses a value of any field it cannot write back (a line break inside one): a paragraph with a
        # line that may be OpenPGP armour is not reduced
        readings = (read(paragraph, WANTED), read(paragraph))
        assert read(reduce(paragraph)) in readings
        assert read(reduce.line_by_line(paragraph)) in readings
        if not any(line.lstrip("\r").startswith("-----") for line in paragraph.split("\n")):
            assert read(reduce(paragraph)) == readings[0]


NAME_LINE = st.builds(lambda k, n: f"{k}: {n}", st.sampled_from(["Package", "Source"]), st.sampled_from(["a", "b"]))
PARAGRAPH = st.lists(st.one_of(NAME_LINE, PLAIN_LINE, LINE), min_size=1, max_size=8).map("\n".join)
ARCHIVE_PARAGRAPH = st.lists(st.one_of(NAME_LINE, PLAIN_LINE), min_size=1, max_size=8).map("\n".join)


@given(st.one_of(st.lists(ARCHIVE_PARAGRAPH, max_size=6), st.lists(PARAGRAPH, max_size=6)), st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_table_holds_what_python_debian_reads_of_the_named_paragraphs(paragraphs: list[str], or_source: bool) -> None:
    """The whole-text reduction (an index of plain lines) and the paragraph one give python-debian's reading."""
    text = "\n\n".join(paragraphs)
    table = Table.scan(text, ["Version"])
    named = re.compile(
        r"\n(?:Package|Source)[ \t]*:[ \t]*a(?=\s|\(|$)" if or_source else r"\nPackage[ \t]*:[ \t]*a(?=\s|\(|$)"
    )
    expected = [p for p in ("\n" + text).split("\n\n") if named.search("\n" + p)]
    found = table.bodies(["a"], or_source=or_source)
    assert len(found) == len(expected)
    for body, paragraph in zip(found, expected, strict=True):  # as above: armour keeps a paragraph whole
        assert read(body) in (read(paragraph, WANTED), read(paragraph))
        if not any(line.lstrip("\r").startswith("-----") for line in paragraph.split("\n")):
            assert read(body) == read(paragraph, WANTED)
