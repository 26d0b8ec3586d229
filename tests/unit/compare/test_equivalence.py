"""Content equivalence of two archives: equivalent only when every member's content is the same and every other
difference is of a named kind; every attack on that (hidden bytes, a type, a target, duplicates) is refused."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable

import pytest

from compare.archive import Budget
from compare.equivalence import content_equivalence, equivalence_streams

T0, T1 = (2021, 5, 5, 14, 18, 16), (2026, 1, 2, 3, 4, 6)
FILES = {"pkg/__init__.py": b"print('hello')\n" * 40, "pkg-1.0.dist-info/METADATA": b"Name: pkg\nVersion: 1.0\n"}


def wheel(
    when: tuple[int, ...] = T0,
    files: dict[str, bytes] | None = None,
    mode: int = 0o644,
    level: int = 6,
    method: int = zipfile.ZIP_DEFLATED,
    order: list[str] | None = None,
    comment: bytes = b"",
    extra: bytes = b"",
    file_type: int = 0o100000,
) -> bytes:
    files = FILES if files is None else files
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in order or list(files):
            info = zipfile.ZipInfo(name, when)
            info.compress_type, info.external_attr, info.extra = method, (file_type | mode) << 16, extra
            z.writestr(info, files[name], compresslevel=level)
        z.comment = comment
    return buf.getvalue()


def sdist(
    mtime: float = 1_600_000_000,
    gzip_mtime: int = 1_600_000_000,
    data: bytes = b"print(1)\n",
    uid: int = 0,
    link: str | None = None,
    after: bytes = b"",
    level: int = 9,
) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("pkg-1.0/setup.py")
        info.size, info.mtime, info.mode, info.uid = len(data), mtime, 0o644, uid
        t.addfile(info, io.BytesIO(data))
        if link is not None:
            sym = tarfile.TarInfo("pkg-1.0/link")
            sym.type, sym.linkname, sym.mtime = tarfile.SYMTYPE, link, int(mtime)
            t.addfile(sym)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=gzip_mtime, compresslevel=level) as g:
        g.write(raw.getvalue() + after)
    return out.getvalue()


def check(a: bytes, b: bytes, budget: Budget | None = None) -> tuple[bool, str, tuple[str, ...]]:
    e = equivalence_streams(io.BytesIO(a), io.BytesIO(b), budget, ("published", "rebuilt"))
    return e.equivalent, e.label, e.kinds


EQUIVALENT: list[tuple[str, Callable[[], bytes], Callable[[], bytes], tuple[str, ...]]] = [
    ("zip-timestamps", wheel, lambda: wheel(T1), ("timestamp",)),
    ("zip-permissions", wheel, lambda: wheel(mode=0o664), ("permissions",)),
    ("zip-order", wheel, lambda: wheel(order=list(reversed(FILES))), ("order",)),
    ("zip-stored-vs-deflated", wheel, lambda: wheel(method=zipfile.ZIP_STORED), ("compression",)),
    ("zip-level", wheel, lambda: wheel(level=1), ("compression",)),
    ("zip-everything-named", wheel, lambda: wheel(T1, mode=0o600, level=1, order=list(reversed(FILES))),
     ("timestamp", "permissions", "order", "compression")),
    ("tgz-times", sdist, lambda: sdist(1_700_000_000, 1_700_000_000), ("timestamp",)),
    ("tgz-fractional-mtime-one-side", sdist, lambda: sdist(1_700_000_000.25), ("timestamp",)),
    ("tgz-gzip-level", sdist, lambda: sdist(level=1), ("compression",)),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "kinds"), [c[1:] for c in EQUIVALENT], ids=[c[0] for c in EQUIVALENT])
def test_metadata_of_named_kinds_only_is_equivalent(
    a: Callable[[], bytes], b: Callable[[], bytes], kinds: tuple[str, ...]
) -> None:
    first, second = a(), b()
    assert first != second
    equivalent, label, found = check(first, second)
    assert equivalent, label
    assert found == kinds
    assert label.startswith("content-equivalent (metadata differs: ")


def _zip_with_bytes_after() -> bytes:
    data = bytearray(wheel(T1))
    return bytes(data) + b"hidden"


def _zip_with_bytes_before() -> bytes:
    return b"MZ-stub" + wheel(T1)


def _second_gzip_member() -> bytes:
    return sdist(1_700_000_000) + gzip.compress(b"more", mtime=0)


def _duplicate() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in [*FILES.items(), ("pkg/__init__.py", b"shadow")]:
            z.writestr(zipfile.ZipInfo(name, T1), data)
    return buf.getvalue()


def _one_byte_changed() -> bytes:
    files = dict(FILES)
    files["pkg/__init__.py"] = files["pkg/__init__.py"].replace(b"hello", b"hellp", 1)
    return wheel(files=files)  # the published timestamps, one byte of one member changed


NOT_EQUIVALENT: list[tuple[str, Callable[[], bytes], Callable[[], bytes], str]] = [
    ("one-byte-in-one-member", wheel, _one_byte_changed, "content differs"),
    ("member-only-on-one-side", wheel, lambda: wheel(T1, files={**FILES, "extra.py": b""}), "only in rebuilt"),
    ("duplicate-member", wheel, _duplicate, "more than once"),
    ("zip-symlink-file-type", wheel, lambda: wheel(T1, file_type=0o120000), "file type"),
    ("zip-comment", wheel, lambda: wheel(T1, comment=b"built by me"), "comment differs"),
    ("zip-extra-field", wheel, lambda: wheel(T1, extra=b"\xca\xfe\x02\x00hi"), "zip-metadata differs"),
    ("zip-bytes-after-the-end", wheel, _zip_with_bytes_after, "zip"),
    ("zip-bytes-before-the-start", wheel, _zip_with_bytes_before, "not an archive"),
    ("tar-content", sdist, lambda: sdist(data=b"print(2)\n"), "content differs"),
    ("tar-ownership", sdist, lambda: sdist(uid=1000), "ownership differs"),
    ("tar-symlink-target", lambda: sdist(link="a"), lambda: sdist(link="b"), "content differs"),
    ("tar-data-after-the-end", sdist, lambda: sdist(after=bytes(1024) + b"payload"), "after the end-of-archive"),
    ("gzip-second-member", sdist, _second_gzip_member, "members (one was expected)"),
    ("gzip-trailing-garbage", sdist, lambda: sdist() + b"garbage", "trailing data"),
    ("zip-vs-tgz", wheel, sdist, "format differs"),
    ("not-archives", lambda: b"plain text one", lambda: b"plain text two", "not an archive"),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "why"), [c[1:] for c in NOT_EQUIVALENT], ids=[c[0] for c in NOT_EQUIVALENT])
def test_anything_else_is_not_equivalent(a: Callable[[], bytes], b: Callable[[], bytes], why: str) -> None:
    equivalent, label, _ = check(a(), b())
    assert not equivalent
    assert label.startswith("not content-equivalent: ")
    assert why in label


def test_every_reason_is_kept_and_a_content_difference_is_named_first() -> None:
    files = dict(FILES)
    files["pkg/__init__.py"] = b"other"
    e = equivalence_streams(io.BytesIO(wheel()), io.BytesIO(wheel(T1, files=files, comment=b"x")))
    assert not e.equivalent
    assert e.reasons[0] == "member 'pkg/__init__.py': content differs"
    assert any("comment" in r for r in e.reasons)


def test_recompressed_bytes_with_the_same_header_are_a_compression_difference() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo("a")
        data = b"abcabcabd" * 500
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))

    def gz(level: int) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = c.compress(raw.getvalue()) + c.flush()
        trailer = zlib.crc32(raw.getvalue()).to_bytes(4, "little") + len(raw.getvalue()).to_bytes(4, "little")
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + trailer  # same header: xfl 0 on both

    a, b = gz(1), gz(9)
    assert a != b
    e = equivalence_streams(io.BytesIO(a), io.BytesIO(b))
    assert e.equivalent, e.reasons
    assert [(d.kind, d.field) for d in e.differences] == [("compression", "compressed-data")]


def test_members_and_differences_are_listed_with_their_digests() -> None:
    import hashlib

    e = equivalence_streams(io.BytesIO(wheel()), io.BytesIO(wheel(T1)))
    assert {m.path: m.sha256 for m in e.members} == {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}
    assert {(d.kind, d.member, d.field) for d in e.differences} == {("timestamp", n, "mtime") for n in FILES}


def test_a_limit_means_not_equivalent() -> None:
    e = equivalence_streams(io.BytesIO(wheel()), io.BytesIO(wheel(T1)), Budget(max_members=1))
    assert not e.equivalent
    assert "not all of it was read" in e.label


def test_ar_is_not_claimed() -> None:
    def ar(mtime: int) -> bytes:
        header = f"{'a/':<16}{mtime:<12}{0:<6}{0:<6}{100644:<8}{2:<10}`\n".encode()
        return b"!<arch>\n" + header + b"hi"

    e = equivalence_streams(io.BytesIO(ar(1)), io.BytesIO(ar(2)))
    assert not e.equivalent
    assert "not supported" in e.label


def test_files_that_cannot_be_opened_are_a_compare_error(tmp_path: object) -> None:
    from pathlib import Path

    from compare.errors import CompareError

    with pytest.raises(CompareError, match="cannot read"):
        content_equivalence(Path("/nonexistent/a.whl"), Path("/nonexistent/b.whl"))
