"""Archives from hostile publishers: header fields that never end, broken streams, bombs.

Every input is built here, small. Bounded work is asserted by what is read and what is noted,
never by the clock: a parser that looks at most N bytes of a header cannot be quadratic in the file.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import re
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compare.archive import Budget, read_archive
from compare.errors import CompareError
from compare.explain import MAX_LISTED, Explanation, explain_streams
from compare.formats.base import MAX_NOTES, Unreadable
from compare.formats.gzip import header_span, parse_header
from compare.formats.tar import parse_pax
from compare.report import compare_artifacts
from tests.archives import gz, tar_bytes

FILES = [("pkg/__init__.py", b"VERSION = '1.0'\n"), ("pkg/core.py", b"def f():\n    return 1\n" * 20)]
MB3 = 3_000_000


class CountingReader(io.BytesIO):
    """A file that counts the bytes read from it: the measure of work for a header parser."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        self.bytes_read += len(data)
        return data


def explain(a: bytes, b: bytes, budget: Budget | None = None) -> Explanation:
    return explain_streams(io.BytesIO(a), io.BytesIO(b), budget or Budget())


def gzip_header(flags: int, *fields: bytes) -> bytes:
    return b"\x1f\x8b\x08" + bytes([flags]) + bytes(6) + b"".join(fields)


def zip_bytes(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def tar_with_pax(body: bytes, name: str = "file") -> bytes:
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, len(body)
    member = tarfile.TarInfo(name)
    member.size = 1
    return (
        pax.tobuf(tarfile.USTAR_FORMAT)
        + body
        + bytes(-len(body) % 512)
        + member.tobuf(tarfile.USTAR_FORMAT)
        + b"x"
        + bytes(511 + 1024)
    )


def pax_record(key: str, value: bytes) -> bytes:
    body = f" {key}=".encode() + value + b"\n"
    n = len(body) + len(str(len(body)))
    n += len(str(n)) - len(str(len(body)))
    return str(n).encode() + body


# --- 1. header fields with caps, parsed in one bounded pass -----------------------------------

GZIP_HEADERS = [
    ("name-over-cap", gzip_header(0x08, b"x" * MB3), 4096, "gzip header: file name not terminated within 4096 bytes"),
    ("name-small-cap", gzip_header(0x08, b"x" * 100), 16, "gzip header: file name not terminated within 16 bytes"),
    ("name-at-eof", gzip_header(0x08, b"x" * 100), 4096, "file name not terminated before the end of the file"),
    ("comment-over-cap", gzip_header(0x10, b"c" * MB3), 4096, "gzip header: comment not terminated within 4096 bytes"),
    (
        "comment-after-name",
        gzip_header(0x18, b"name\x00", b"c" * 9000),
        4096,
        "comment not terminated within 4096 bytes",
    ),
    ("extra-past-eof", gzip_header(0x04, b"\xff\xff", b"e" * 10), 4096, "extra field of 65535 bytes runs past the end"),
    ("extra-length-cut", gzip_header(0x04, b"\xff"), 4096, "extra field length is truncated"),
    ("header-crc-cut", gzip_header(0x02, b"\x01"), 4096, "header CRC is truncated"),
    ("fixed-part-cut", b"\x1f\x8b\x08\x00\x00", 4096, "truncated (5 of 10 bytes)"),
    ("not-deflate", b"\x1f\x8b\x07" + bytes(7), 4096, "compression method 7 is not deflate"),
]


@pytest.mark.parametrize("data, cap, message", [c[1:] for c in GZIP_HEADERS], ids=[c[0] for c in GZIP_HEADERS])
def test_gzip_header_fields_are_capped(data: bytes, cap: int, message: str) -> None:
    with pytest.raises(Unreadable, match=re.escape(message)):
        parse_header(data[: header_span(cap)], cap)


def test_gzip_header_fields_are_kept() -> None:
    data = gzip_header(0x1E, b"\x03\x00abc", b"name.tar\x00", b"a comment\x00", b"\x12\x34") + b"rest"
    h = parse_header(data, 4096)
    assert (h.extra, h.name, h.comment, data[h.length :]) == (b"abc", b"name.tar", b"a comment", b"rest")


def _fname(n: int, last: bytes) -> bytes:
    return gzip_header(0x08, b"x" * n + last)


def _fcomment(n: int, last: bytes) -> bytes:
    return gzip_header(0x10, b"x" * n + last)


def _second_member(n: int, last: bytes) -> bytes:
    return gz(b"first member\n") + _fname(n, last)


def _both_fields(n: int, last: bytes) -> bytes:
    return gzip_header(0x1C, b"\xff\xff", b"e" * 0xFFFF, b"n" * 500 + b"\x00", b"c" * n + last)


UNTERMINATED = [
    ("file-name", _fname, "gzip header: file name not terminated within 1024 bytes"),
    ("comment", _fcomment, "gzip header: comment not terminated within 1024 bytes"),
    ("second-member", _second_member, "gzip header: file name not terminated within 1024 bytes"),
    ("extra-name-comment", _both_fields, "gzip header: comment not terminated within 1024 bytes"),
]


@pytest.mark.parametrize("make, note", [c[1:] for c in UNTERMINATED], ids=[c[0] for c in UNTERMINATED])
def test_a_3mb_unterminated_gzip_field_is_explained_from_a_bounded_prefix(
    make: Callable[[int, bytes], bytes], note: str
) -> None:
    """The attack: 3 MB of file name with no NUL. Only a few header spans are ever read, whatever the size."""
    fa, fb = CountingReader(make(MB3, b"a")), CountingReader(make(MB3, b"b"))
    e = explain_streams(fa, fb, Budget(max_header_field=1024))
    bound = 4 * header_span(1024) + (64 << 10)  # a few header spans and one input chunk, whatever the file's size
    assert fa.bytes_read <= bound and fb.bytes_read <= bound, (fa.bytes_read, fb.bytes_read)
    assert any(note in n for n in e.notes), e.notes
    assert e.kind == "unknown" and e.classification.startswith("could not read the archive")
    assert "identical" not in e.classification


PAX = [
    ("ok", pax_record("path", b"a/b") + pax_record("comment", b"x=y\nz"), {"path": "a/b", "comment": "x=y\nz"}),
    ("digits-no-space", b"1" * 200_000, "has no length"),
    ("length-too-long", b"99 path=a\n", "has a wrong length"),
    ("length-too-short", b"3 path=a\n", "has a wrong length"),
    ("no-equals", b"9 pathab\n", "has no '='"),
    ("hdrcharset-spam", b"13 hdrcharset=" * 20_000, "has a wrong length"),
]


@pytest.mark.parametrize("body, expected", [c[1:] for c in PAX], ids=[c[0] for c in PAX])
def test_pax_records_are_split_by_their_lengths(body: bytes, expected: dict[str, str] | str) -> None:
    """Python 3.11's tarfile searches these with backtracking regexes (quadratic); here each byte is looked at once."""
    if isinstance(expected, dict):
        assert parse_pax(body) == expected
    else:
        with pytest.raises(Unreadable, match=re.escape(expected)):
            parse_pax(body)


def test_a_pax_header_over_the_cap_is_skipped_and_not_compared() -> None:
    e = explain(tar_with_pax(b"1" * MB3 + b"a"), tar_with_pax(b"1" * MB3 + b"b"), Budget(max_tar_header=4096))
    assert any("tar pax header at byte 512 is 3000001 bytes, over the limit of 4096 bytes" in n for n in e.notes)
    assert e.kind == "unknown" and "not compared" in e.classification and "identical" not in e.classification


def test_a_malformed_pax_header_is_could_not_read() -> None:
    e = explain(tar_with_pax(b"1" * 100_000 + b"a"), tar_with_pax(b"1" * 100_000 + b"b"))
    assert any("has no length" in n for n in e.notes)
    assert e.classification.startswith("could not read the archive") and "identical" not in e.classification


def test_pax_and_gnu_long_names_are_applied() -> None:
    long = "d/" * 80 + "ünïcode.txt"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            info = tarfile.TarInfo(long)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        archive = read_archive(io.BytesIO(buf.getvalue()), Budget())
        assert archive is not None and [m.name for m in archive.members] == [long]
        assert archive.members[0].sha256 == hashlib.sha256(b"abc").hexdigest()


def _zip_with_extras(extra: bytes, count: int) -> bytes:
    """``count`` central directory entries for one member, each with ``extra`` as its extra field."""
    data = zip_bytes([("f", b"data")])
    cd, eocd = data.index(b"PK\x01\x02"), data.index(b"PK\x05\x06")
    entry = bytearray(data[cd:eocd])
    entry[30:32] = struct.pack("<H", len(extra))
    directory = (bytes(entry) + extra) * count
    end = bytearray(data[eocd:])
    struct.pack_into("<HHLL", end, 8, count, count, len(directory), cd)
    return data[:cd] + directory + bytes(end)


ZIP_DIRECTORIES = [
    ("empty-subfields", _zip_with_extras(b"\x99\x99\x00\x00" * 16383, 40), 40, "overlap in the file"),
    ("subfield-past-its-field", _zip_with_extras(b"\x99\x99\xff\xff", 3), 3, "overlap in the file"),
]


@pytest.mark.parametrize("data, members, note", [c[1:] for c in ZIP_DIRECTORIES], ids=[c[0] for c in ZIP_DIRECTORIES])
def test_zip_extra_fields_are_walked_once(data: bytes, members: int, note: str) -> None:
    archive = read_archive(io.BytesIO(data), Budget())
    assert archive is not None and archive.error is None
    assert len(archive.members) == members and all(m.sha256 for m in archive.members)
    assert any(note in n for n in archive.notes)


def test_a_zip_entry_running_past_its_directory_is_could_not_read() -> None:
    data = bytearray(zip_bytes(FILES))
    cd = data.rindex(b"PK\x01\x02")
    data[cd + 28 : cd + 30] = struct.pack("<H", 0xFFFF)  # the last entry's name length
    archive = read_archive(io.BytesIO(bytes(data)), Budget())
    assert archive is not None and archive.error is not None and "runs past the directory" in archive.error
    assert [m.name for m in archive.members] == ["pkg/__init__.py"]


# --- 2. unreadable streams are "could not read", never "identical" ----------------------------


def _cut(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def _flip(data: bytes, at: int, n: int = 8) -> bytes:
    return data[:at] + bytes(b ^ 0x55 for b in data[at : at + n]) + data[at + n :]


def _crc(data: bytes, crc: int) -> bytes:
    return data[:-8] + struct.pack("<I", crc) + data[-4:]


BODY = b"".join(b"line %d of a file that is long enough to compress\n" % i for i in range(4000))
TGZ = gz(tar_bytes([*FILES, ("big.txt", BODY)]))
ZIP = zip_bytes([("a.bin", BODY), ("b.txt", b"same\n")])
A_DATA = ZIP.index(b"PK\x03\x04") + 30 + len("a.bin") + 100

CORRUPT = [
    ("gzip-both-truncated", _cut(gz(BODY), 0.5), _cut(gz(BODY), 0.7), "could not read 1 member: (content)"),
    ("gzip-both-corrupt", _flip(gz(BODY), 200), _flip(gz(BODY), 300), "could not read the archive"),
    ("gzip-crc-both-wrong", _crc(gz(BODY), 1), _crc(gz(BODY), 2), "could not read 1 member: (content)"),
    ("gzip-one-side-corrupt", gz(BODY), _flip(gz(BODY), 300), "could not read the archive and 1 member: (content)"),
    ("gzip-corrupt-late", _flip(gz(BODY), 2000), _flip(gz(BODY), 3000), "could not read 1 member: (content)"),
    ("tar.gz-both-truncated", _cut(TGZ, 0.6), _cut(TGZ, 0.8), "could not read the archive and 1 member: big.txt"),
    ("tar.gz-one-side-cut", TGZ, _cut(TGZ, 0.6), "could not read the archive and 1 member: big.txt"),
    ("zip-member-corrupt", _flip(ZIP, A_DATA), _flip(ZIP, A_DATA + 50), "could not read 1 member: a.bin"),
    ("zip-member-crc", _flip(ZIP, ZIP.index(b"PK\x01\x02") + 16, 1), ZIP, "could not read 1 member: a.bin"),
    ("xz-both-truncated", _cut(lzma.compress(BODY), 0.5), _cut(lzma.compress(BODY), 0.6), "could not read 1 member"),
    ("bzip2-both-corrupt", _flip(bz2.compress(BODY), 100), _flip(bz2.compress(BODY), 120), "could not read"),
    ("gzip-header-both-unterminated", _fname(10_000, b"a"), _fname(10_000, b"b"), "could not read the archive"),
]


@pytest.mark.parametrize("a, b, says", [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_unreadable_streams_are_never_called_identical(a: bytes, b: bytes, says: str) -> None:
    e = explain(a, b)
    assert says in e.classification, e.as_dict()
    assert "identical" not in e.classification
    assert e.kind in ("unknown", "content") and e.kind != "metadata-only"
    assert any(d.status == "could-not-read" and "could not read" in d.categories for d in e.differences)


def test_a_corrupt_zip_member_does_not_hide_the_others() -> None:
    a = zip_bytes([("a.bin", BODY), ("b.txt", b"one\n"), ("c.txt", b"same\n")])
    b = zip_bytes([("a.bin", BODY), ("b.txt", b"two\n"), ("c.txt", b"same\n")])
    at = a.index(b"PK\x03\x04") + 30 + len("a.bin") + 100
    e = explain(_flip(a, at), _flip(b, at))
    assert {d.path: d.status for d in e.differences} == {"a.bin": "could-not-read", "b.txt": "content"}
    assert e.classification == "content of 1 member; could not read 1 member: a.bin"


def test_the_verdict_is_bytes_only(tmp_path: Path) -> None:
    """Unreadable on both sides but the same bytes: identical. Other bytes: different, explained as unreadable."""
    same = _cut(TGZ, 0.5)
    (tmp_path / "a").write_bytes(same)
    (tmp_path / "b").write_bytes(same)
    (tmp_path / "c").write_bytes(_cut(TGZ, 0.6))
    assert compare_artifacts(tmp_path / "a", tmp_path / "b").identical
    report = compare_artifacts(tmp_path / "a", tmp_path / "c")
    assert not report.identical and report.explanation is not None
    assert report.explanation.classification.startswith("could not read")


# --- 3. caps: members read, notes and differences listed, expansion -----------------------------


def test_the_member_cap_holds_while_reading() -> None:
    many = [(f"m{i}", b"") for i in range(50)]
    archive = read_archive(io.BytesIO(tar_bytes(many)), Budget(max_members=5))
    assert archive is not None and len(archive.members) == 5
    assert archive.limited == "more than 5 members; the rest were not read"
    e = explain(tar_bytes(many), tar_bytes([*many, ("extra", b"")]), Budget(max_members=5))
    assert e.kind == "unknown" and "not compared (over a limit)" in e.classification


def test_the_expansion_budget_holds_for_a_tar_gz_bomb() -> None:
    zeros = [("bomb.bin", bytes(8 << 20)), ("after.txt", b"x")]
    e = explain(gz(tar_bytes(zeros)), gz(tar_bytes(zeros, mtime=1)), Budget(max_expanded_bytes=1 << 20))
    assert any("expansion limit" in n for n in e.notes)
    assert "not compared" in e.classification and "identical" not in e.classification


def test_notes_and_differences_listed_are_capped() -> None:
    evil = [(f"../escape{i}", b"%d" % i) for i in range(3 * MAX_LISTED)]
    e = explain(tar_bytes(evil), tar_bytes([(n, d + b"!") for n, d in evil]))
    assert len(e.notes) <= 2 * (MAX_NOTES + 1) and any("more notes" in n for n in e.notes)
    listed = e.as_dict()
    assert len(listed["differences"]) == MAX_LISTED and listed["differences_total"] == 3 * MAX_LISTED


# --- cross-checks against the standard library on well-formed archives ------------------------


@pytest.mark.parametrize(
    "compression",
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
    ids=["stored", "deflated", "bzip2", "lzma"],
)
def test_zip_members_match_zipfile(compression: int) -> None:
    data = zip_bytes([*FILES, ("dir/", b""), ("big.txt", BODY)], compression)
    archive = read_archive(io.BytesIO(data), Budget())
    assert archive is not None and archive.error is None
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        expected = [(i.filename, None if i.is_dir() else hashlib.sha256(z.read(i)).hexdigest()) for i in z.infolist()]
    assert [(m.name, m.sha256) for m in archive.members] == expected


@pytest.mark.parametrize(
    "fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["ustar", "gnu", "pax"]
)
def test_tar_members_match_tarfile(fmt: int) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in [*FILES, ("big.txt", BODY)]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uname = len(data), 1700000000, "builder"
            tar.addfile(info, io.BytesIO(data))
        for name, kind in (("dir", tarfile.DIRTYPE), ("link", tarfile.SYMTYPE), ("fifo", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "pkg/core.py" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info)
    archive = read_archive(io.BytesIO(gz(buf.getvalue())), Budget())
    assert archive is not None and archive.error is None and archive.format == "gzip+tar"
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        expected = [(i.name, i.mtime, i.uname, i.size if i.isreg() else None) for i in tar.getmembers()]
    assert [(m.name, m.meta["mtime"], m.meta["ownership"][2], m.size) for m in archive.members] == expected


def test_multi_member_gzip_and_trailing_bytes() -> None:
    two = gz(b"one\n") + gz(b"two\n")
    archive = read_archive(io.BytesIO(two + bytes(64)), Budget())
    assert archive is not None and archive.error is None and archive.notes == []
    assert archive.members[0].sha256 == hashlib.sha256(b"one\ntwo\n").hexdigest()
    archive = read_archive(io.BytesIO(two + b"garbage"), Budget())
    assert archive is not None and archive.members[0].sha256 == hashlib.sha256(b"one\ntwo\n").hexdigest()
    assert any("trailing data after the last gzip member" in n for n in archive.notes)


# --- property: whatever the bytes, an explanation or CompareError ------------------------------

SEEDS = {
    "tar.gz": TGZ,
    "tar": tar_bytes(FILES),
    "zip": zip_bytes([*FILES, ("inner.tar.gz", TGZ)]),
    "gzip": gzip_header(0x1E, b"\x02\x00ab", b"name\x00", b"comment\x00", b"\x00\x00") + gz(b"x")[10:],
    "xz": lzma.compress(tar_bytes(FILES)),
    "pax": tar_with_pax(pax_record("path", b"p") + pax_record("mtime", b"1.5")),
}
SMALL = {"max_depth": 2, "max_expanded_bytes": 1 << 20, "max_members": 50, "max_header_field": 64}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(SEEDS.values(), key=len))))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["set", "insert", "cut"]))
        if op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        else:
            del data[at:]
    return bytes(data)


MAGICS = [b"", b"PK\x03\x04", b"PK\x05\x06", b"!<arch>\n", b"\x1f\x8b\x08", b"\xfd7zXZ\x00", b"BZh9"]
hostile = st.one_of(
    mutated(),
    st.builds(lambda m, rest: m + rest, st.sampled_from(MAGICS), st.binary(max_size=600)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=hostile, b=hostile)
def test_explaining_hostile_bytes_never_crashes(a: bytes, b: bytes) -> None:
    try:
        e = explain(a, b, Budget(**SMALL))
    except CompareError:
        return
    assert isinstance(e, Explanation)
    if e.kind == "metadata-only":  # "content identical" only when every member was read
        assert not any(d.status in ("could-not-read", "not-compared") for d in e.differences)
