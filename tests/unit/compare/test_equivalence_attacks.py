"""Attacks on a content-equivalence claim (security review of issue #19), each built here as hostile bytes.

A claim says that extracting either archive gives the same files. Every case below is a pair whose members
hash the same but where extraction, or a reader other than ours, gives something else: names that land on
one path, links whose order decides where a file goes, a mode that makes a file executable, a directory
entry with data, end records and descriptors no member reads, hidden pax records, bytes after the gzip
stream, and bytes nothing explains. Each must be refused with its reason. The controls beside them show
that the honest variants of the same layouts are still claimed.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable

import pytest

from compare.equivalence import equivalence_streams
from compare.extraction import extraction_key

T0, T1 = (2021, 5, 5, 14, 18, 16), (2026, 1, 2, 3, 4, 6)
GOOD, EVIL = b"print('good')\n", b"import os; os.system('evil')\n"
Entry = tuple[str, bytes | None, dict[str, object]]


def f(name: str, data: bytes = GOOD, mode: int = 0o644, mtime: int = 1_600_000_000) -> Entry:
    return name, data, {"mode": mode, "mtime": mtime}


def d(name: str, mode: int = 0o755, mtime: int = 1_600_000_000) -> Entry:
    return name, None, {"type": tarfile.DIRTYPE, "mode": mode, "mtime": mtime}


def sym(name: str, target: str, mtime: int = 1_600_000_000) -> Entry:
    return name, None, {"type": tarfile.SYMTYPE, "linkname": target, "mtime": mtime, "mode": 0o777}


def hard(name: str, target: str) -> Entry:
    return name, None, {"type": tarfile.LNKTYPE, "linkname": target, "mode": 0o644}


def tar(*entries: Entry) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, fields in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = int(str(fields["mode"])), int(str(fields.get("mtime", 1_600_000_000)))
            info.type = fields.get("type", tarfile.REGTYPE)  # type: ignore[assignment]
            info.linkname = str(fields.get("linkname", ""))
            info.size = len(data or b"")
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def z(name: str, data: bytes = GOOD, mode: int = 0o644, when: tuple[int, ...] = T0, dos: int = 0) -> Entry:
    return name, data, {"mode": mode, "when": when, "dos": dos}


def zsym(name: str, target: str) -> Entry:
    return name, target.encode(), {"mode": 0o120777, "when": T0, "dos": 0}


def zipped(*entries: Entry, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data, fields in entries:
            info = zipfile.ZipInfo(name, fields["when"])  # type: ignore[arg-type]
            info.compress_type = method
            mode = int(str(fields["mode"]))
            info.external_attr = ((mode if mode > 0o7777 else 0o100000 | mode) << 16) | int(str(fields["dos"]))
            zf.writestr(info, data or b"")
    return out.getvalue()


def gz(data: bytes, mtime: int = 1_600_000_000) -> bytes:
    return gzip.compress(data, mtime=mtime)


def swapped(build: Callable[..., bytes], first: Entry, second: Entry) -> tuple[bytes, bytes]:
    return build(first, second), build(second, first)


# --- hand-made layouts --------------------------------------------------------


def descriptor_zip(
    local: tuple[int, int, int] | None = None,
    descriptor_crc: int | None = None,
    signature: bool = True,
    dtime: int = 0x21,
) -> bytes:
    """One stored entry with flag bit 3: local CRC and sizes (zero unless given), then a data descriptor."""
    data, name = GOOD, b"f.py"
    crc = zlib.crc32(data)
    l_crc, l_csize, l_usize = local or (0, 0, 0)
    head = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0x8, 0, dtime, 0x21, l_crc, l_csize, l_usize,
                       len(name), 0) + name  # fmt: skip
    body = struct.pack("<LLL", crc if descriptor_crc is None else descriptor_crc, len(data), len(data))
    entry = head + data + (b"PK\x07\x08" if signature else b"") + body
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0x8, 0, dtime, 0x21, crc, len(data),
                          len(data), len(name), 0, 0, 0, 0, 0o100644 << 16, 0) + name  # fmt: skip
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(entry), 0)
    return entry + central + end


def patch_eocd(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    """The zip with fields of its end of central directory record (``at`` bytes into it) overwritten."""
    out = bytearray(data)
    struct.pack_into(fmt, out, out.rfind(b"PK\x05\x06") + at, *values)
    return bytes(out)


def patch_central(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, out.find(b"PK\x01\x02") + at, *values)
    return bytes(out)


def tar_header(name: bytes, size: int, kind: bytes, mode: bytes = b"0000644\x00") -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108], block[108:116], block[116:124] = mode, b"0000000\x00", b"0000000\x00"
    block[124:136], block[136:148] = b"%011o\x00" % size, b"%011o\x00" % 1_600_000_000
    block[156:157], block[257:265] = kind, b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def pax_tar(records: bytes, mode: bytes = b"0000644\x00") -> bytes:
    """A pax header holding ``records`` as written (NULs and repeated keys too), then one member."""
    return (
        tar_header(b"PaxHeader/f.py", len(records), b"x") + padded(records)
        + tar_header(b"f.py", len(GOOD), b"0", mode) + padded(GOOD) + bytes(1024)
    )  # fmt: skip


HIDDEN = b"\x0020 path=evil/run.sh\n"


def gzip_with_header_crc(crc: int | None, mtime: int = 1_600_000_000) -> bytes:
    """A gzip file with FHCRC set: the header's CRC as computed, or ``crc`` as given."""
    header = b"\x1f\x8b\x08\x02" + struct.pack("<I", mtime) + b"\x00\xff"
    good = zlib.crc32(header) & 0xFFFF
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    inner = tar(f("f.py"))
    body = c.compress(inner) + c.flush()
    return header + struct.pack("<H", good if crc is None else crc) + body + struct.pack("<LL", zlib.crc32(inner),
                                                                                        len(inner))  # fmt: skip


# --- the cases ------------------------------------------------------------------

NFC, NFD = unicodedata.normalize("NFC", "caf\u00e9.py"), unicodedata.normalize("NFD", "caf\u00e9.py")

REFUSED: list[tuple[str, Callable[[], tuple[bytes, bytes]], str]] = [
    # 1. aliases: two names, one path; the one written last wins, so the order decides the content
    ("tar-dot-slash-alias", lambda: swapped(tar, f("a", GOOD), f("./a", EVIL)), "extract to the same path"),
    ("tar-double-slash-alias", lambda: swapped(tar, f("x/y", GOOD), f("x//y", EVIL)), "extract to the same path"),
    ("tar-dot-segment-alias", lambda: swapped(tar, f("x/y", GOOD), f("x/./y", EVIL)), "extract to the same path"),
    ("tar-dot-dot-alias", lambda: swapped(tar, f("y", GOOD), f("x/../y", EVIL)), "extract to the same path"),
    ("tar-case-alias", lambda: swapped(tar, f("README", GOOD), f("readme", EVIL)), "extract to the same path"),
    ("tar-unicode-nfc-nfd-alias", lambda: swapped(tar, f(NFC, GOOD), f(NFD, EVIL)), "extract to the same path"),
    ("zip-dot-slash-alias", lambda: swapped(zipped, z("a", GOOD), z("./a", EVIL)), "extract to the same path"),
    ("zip-case-alias", lambda: swapped(zipped, z("A.txt", GOOD), z("a.txt", EVIL)), "extract to the same path"),
    ("zip-backslash-alias", lambda: swapped(zipped, z("d\\f", GOOD), z("d/f", EVIL)), "extract to the same path"),
    ("zip-directory-and-file-alias", lambda: (zipped(z("d/", b""), z("d", GOOD)), zipped(z("d/", b""), z("d", GOOD,
     when=T1))), "extract to the same path"),
    ("alias-in-the-same-order-too", lambda: (tar(f("a", GOOD), f("./a", EVIL)),
     tar(f("a", GOOD, mtime=1), f("./a", EVIL, mtime=1))), "extract to the same path"),
    # 1. links: with a link in the archive, the order decides where a file is written
    ("tar-symlink-dir-before-or-after-a-file-in-it",
     lambda: swapped(tar, f("d/f"), sym("d", "/tmp")), "in an archive with links ('d')"),
    ("tar-hardlink-before-its-target", lambda: swapped(tar, f("x"), hard("y", "x")), "in an archive with links"),
    ("tar-order-beside-an-unrelated-symlink",
     lambda: (tar(f("a"), f("b"), sym("l", "a")), tar(f("b"), f("a"), sym("l", "a"))), "in an archive with links"),
    ("zip-symlink-entry-order", lambda: swapped(zipped, z("d/f"), zsym("d", "/tmp")), "a zip symlink"),
    # 5. a mode beyond the read/write bits changes what a file can do
    ("tar-execute-bit-added", lambda: (tar(f("run.sh")), tar(f("run.sh", mode=0o755))),
     "mode changes what it can do: 0644 -> 0755"),
    ("tar-setuid-added", lambda: (tar(f("bin/x", mode=0o755)), tar(f("bin/x", mode=0o4755))), "0755 -> 4755"),
    ("tar-directory-sticky", lambda: (tar(d("d")), tar(d("d", mode=0o1777))), "0755 -> 1777"),
    ("zip-setuid-setgid", lambda: (zipped(z("x", mode=0o755)), zipped(z("x", mode=0o6777))), "0755 -> 6777"),
    ("zip-execute-bit-removed", lambda: (zipped(z("x", mode=0o755)), zipped(z("x", mode=0o644))), "0755 -> 0644"),
    ("zip-dos-directory-bit", lambda: (zipped(z("x")), zipped(z("x", dos=0x10))), "MS-DOS attributes change"),
    # 2. a directory entry holding data (zipfile.read('d/') returns it)
    ("zip-directory-entry-with-other-data", lambda: (zipped(z("d/", b"AAAA"), z("d/f")), zipped(z("d/", EVIL),
     z("d/f"))), "directory entry 'd/' is not empty"),
    ("zip-directory-entry-with-the-same-data", lambda: (zipped(z("d/", EVIL)), zipped(z("d/", EVIL, when=T1))),
     "directory entry 'd/' is not empty"),
    # 4. bytes no member reads
    ("zip-end-record-entry-count", lambda: (zipped(z("x"), z("y")), patch_eocd(zipped(z("x"), z("y")), 8, "<HH", 1,
     1)), "the end of central directory record says 1 of 1 entries"),
    ("zip-end-record-disk-numbers", lambda: (zipped(z("x")), patch_eocd(zipped(z("x")), 4, "<HH", 3, 3)),
     "on disk 3"),
    ("zip-central-disk-start", lambda: (zipped(z("x")), patch_central(zipped(z("x")), 34, "<H", 7)),
     "version or disk fields differ"),
    ("zip-bit3-bogus-local-sizes", lambda: (descriptor_zip(), descriptor_zip(local=(0, 5, 5))),
     "local header's CRC or sizes (0, 5, 5) differ"),
    ("zip-bit3-bogus-descriptor-crc", lambda: (descriptor_zip(), descriptor_zip(descriptor_crc=0xDEADBEEF)),
     "data descriptor's CRC or sizes differ"),
    ("zip-bit3-descriptor-signature-on-one-side", lambda: (descriptor_zip(), descriptor_zip(signature=False)),
     "CRC and sizes given otherwise"),
    ("zip-bit3-local-fields-given-on-one-side", lambda: (descriptor_zip(), descriptor_zip(
     local=(zlib.crc32(GOOD), len(GOOD), len(GOOD)), dtime=0x42)), "CRC and sizes given otherwise"),
    ("tar-pax-records-hidden-after-a-nul", lambda: (pax_tar(b"11 path=f2\n" + bytes(len(HIDDEN))),
     pax_tar(b"11 path=f2\n" + HIDDEN)), "normalized records differ"),
    ("tar-pax-repeated-key-first-differs", lambda: (pax_tar(b"11 path=f2\n"),
     pax_tar(b"20 path=evil/run.sh\n11 path=f2\n")), "normalized records differ"),
    ("gzip-trailing-zeros", lambda: (gz(tar(f("f.py"))), gz(tar(f("f.py"))) + bytes(64)),
     "64 bytes after the gzip stream"),
    ("gzip-trailing-zeros-beside-a-time", lambda: (gz(tar(f("f.py"))), gz(tar(f("f.py")), 1) + bytes(64)),
     "64 bytes after the gzip stream"),
    ("gzip-header-crc-wrong", lambda: (gzip_with_header_crc(None), gzip_with_header_crc(0x1234)),
     "the header's CRC does not match"),
    # 4. bytes that differ where nothing read explains it: never "compression"
    ("tar-mode-field-written-otherwise", lambda: (pax_tar(b"11 path=f2\n"),
     pax_tar(b"11 path=f2\n", mode=b"   644 \x00")), "bytes differ outside any member: offset 1124"),
    ("tar-pax-zeros-after-the-records", lambda: (pax_tar(b"11 path=f2\n"), pax_tar(b"11 path=f2\n\x00\x00")),
     "bytes differ outside any member: offset 134"),
]  # fmt: skip

CLAIMED: list[tuple[str, Callable[[], tuple[bytes, bytes]], tuple[str, ...]]] = [
    ("tar-order-without-links", lambda: swapped(tar, f("a"), f("b", EVIL)), ("order",)),
    ("tar-symlink-times-only", lambda: (tar(f("a"), sym("l", "a")), tar(f("a", mtime=1), sym("l", "a", mtime=1))),
     ("timestamp",)),
    ("tar-read-write-bits", lambda: (tar(f("a"), d("d")), tar(f("a", mode=0o664), d("d", mode=0o775))),
     ("permissions",)),
    ("zip-read-write-bits-and-dos-archive-bit", lambda: (zipped(z("x")), zipped(z("x", mode=0o600, dos=0x20))),
     ("permissions",)),
    ("zip-deflated-empty-directory-vs-stored", lambda: (zipped(z("d/", b""), z("d/f")),
     zipped(z("d/", b""), z("d/f"), method=zipfile.ZIP_STORED)), ("compression",)),
    ("zip-bit3-times-only", lambda: (descriptor_zip(), descriptor_zip(dtime=0x42)), ("timestamp",)),
    ("gzip-header-crc-right-times-differ", lambda: (gzip_with_header_crc(None), gzip_with_header_crc(None, 1)),
     ("timestamp",)),
]  # fmt: skip


def decide(pair: tuple[bytes, bytes]) -> tuple[bool, str, tuple[str, ...], tuple[str, ...]]:
    a, b = pair
    assert a != b
    e = equivalence_streams(io.BytesIO(a), io.BytesIO(b), side_names=("published", "rebuilt"))
    return e.equivalent, e.label, e.kinds, e.reasons


@pytest.mark.parametrize(("pair", "why"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_an_attack_on_the_claim_is_refused_with_its_reason(pair: Callable[[], tuple[bytes, bytes]], why: str) -> None:
    equivalent, label, _, reasons = decide(pair())
    assert not equivalent, label
    assert any(why in r for r in reasons), reasons


@pytest.mark.parametrize(("pair", "kinds"), [c[1:] for c in CLAIMED], ids=[c[0] for c in CLAIMED])
def test_the_honest_variant_is_still_claimed(pair: Callable[[], tuple[bytes, bytes]], kinds: tuple[str, ...]) -> None:
    equivalent, label, found, reasons = decide(pair())
    assert equivalent, reasons
    assert found == kinds
    assert label.startswith("content-equivalent (metadata differs: ")


@pytest.mark.parametrize(
    ("name", "fmt", "key"),
    [
        ("./a", "tar", "a"),
        ("x//y/./z", "tar", "x/y/z"),
        ("/abs/path", "tar", "abs/path"),
        ("d/", "zip", "d"),
        ("D\\F.TXT", "zip", "d/f.txt"),
        ("D\\F.TXT", "tar", "d\\f.txt"),
        (NFD, "tar", NFC),
        ("Stra\u00dfe", "tar", "strasse"),
        ("", "tar", "."),
    ],
    ids=["dot-slash", "slashes-and-dots", "absolute", "zip-dir", "zip-backslash", "tar-backslash-is-a-name",
         "nfd", "casefold", "empty"],
)  # fmt: skip
def test_the_extraction_key_folds_what_lands_on_one_path(name: str, fmt: str, key: str) -> None:
    assert extraction_key(name, fmt) == key
