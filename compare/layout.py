"""Every byte of an archive accounted for: what the member readers do not look at, checked on its own.

The readers in ``compare/formats`` turn an archive into members and their
metadata. A claim that two archives hold the same content must also know
that nothing else is in the bytes: data between zip entries, a local header
that says something else than the central directory, data after a tar's end
marker, a second gzip member, bytes after the gzip stream. This module walks
each layout once, bounded, and returns (per side) what the member model does
not show: a list of problems (anything hidden makes a claim impossible) and
the normalized records that must be equal on both sides.

Only zip, tar and gzip (around a tar or a single file) are walked; other
layouts are not supported for a content-equivalence claim.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from compare.formats.base import READ_ERRORS, Budget, Unreadable, describe, read_exact
from compare.formats.gzip import FHCRC, GzipStream, read_header
from compare.formats.tar import BLOCK, PAX_TYPES, ZERO_BLOCK, pax_records
from compare.formats.zip import CENTRAL, CENTRAL_SIG, EOCD, LOCAL, LOCAL_SIG, _eocd, _zip64

TIME_KEYS = frozenset({"mtime", "atime", "ctime"})  # pax records that are timestamps
DESCRIPTOR_SIG = b"PK\x07\x08"
S_IFMT = 0o170000
S_IFLNK = 0o120000


@dataclass(frozen=True)
class ZipEntry:
    """What a zip entry says outside its content, mtime, mode and compression (which the member model reads)."""

    raw_name: bytes
    flags: int  # general purpose flags, without the compression-option bits (1, 2)
    file_type: int  # S_IFMT bits of the external attributes (a symlink, a regular file, none)
    local_extra: bytes
    header_bytes: tuple[int, ...]  # the central directory's 2nd extract-version byte and disk start; local version
    shape: tuple[str, ...]  # how the local CRC and sizes are given: in the header, zero, zip64; the data descriptor


@dataclass
class Layout:
    """One side: problems (hidden or inconsistent bytes) and what must be equal on both sides."""

    problems: list[str] = field(default_factory=list)
    zip_entries: dict[str, ZipEntry] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)  # tar: normalized record digests (order apart)
    trailer: str = ""  # tar: sha256 of the end-of-archive block and all that follows it
    trailer_hidden: bool = False  # tar: something other than zeros follows the end of the archive
    gzip_members: int = 0
    eocd: bytes = b""  # zip: the end of central directory record, its offset field zeroed
    links: int = 0  # zip: entries whose external attributes make them symlinks
    compressed: dict[str, str] = field(default_factory=dict)  # sha256 of the compressed bytes: per zip entry, gzip

    def tail(self, chunk: bytes, digest: hashlib._Hash) -> None:
        digest.update(chunk)
        self.trailer = digest.hexdigest()
        self.trailer_hidden = self.trailer_hidden or bool(chunk.strip(b"\x00"))


def zip_layout(data: IO[bytes]) -> Layout:
    """Walk a zip's central directory and local headers; every byte must belong to an entry or the directory."""
    layout = Layout()
    try:
        comment, start, cd_size, concat = _eocd(data)
    except READ_ERRORS as e:
        layout.problems.append(f"zip: {describe(e)}")
        return layout
    size = data.seek(0, io.SEEK_END)
    if concat != 0:
        layout.problems.append(f"zip: {concat} bytes before the first entry")
    if size - (start + cd_size) != EOCD.size + len(comment):
        layout.problems.append("zip: bytes between the central directory and the end of the file (or zip64 records)")
    else:
        data.seek(start + cd_size)
        record = bytearray(data.read(EOCD.size))
        record[16:20] = bytes(4)  # the central directory's offset: it moves with the compressed sizes
        layout.eocd = bytes(record)
    data.seek(start)
    cd = data.read(cd_size)
    spans: list[tuple[int, int]] = []
    at = entries = 0
    while at < len(cd):
        if len(cd) - at < CENTRAL.size or cd[at : at + 4] != CENTRAL_SIG:
            layout.problems.append(f"zip: the central directory entry at byte {start + at} is not one")
            return layout
        fields = CENTRAL.unpack_from(cd, at)
        entries += 1
        flags, method, dtime, ddate, crc, csize, usize = fields[5:12]
        n_name, n_extra, n_comment, disk_start, _, external_attr, offset = fields[12:]
        raw_name = cd[at + CENTRAL.size : at + CENTRAL.size + n_name]
        extra = cd[at + CENTRAL.size + n_name : at + CENTRAL.size + n_name + n_extra]
        at += CENTRAL.size + n_name + n_extra + n_comment
        name = _zip_name(raw_name, flags)
        if b"\x00" in raw_name:
            layout.problems.append(f"zip: entry {name!r} has a NUL in its name (bytes after it are hidden)")
        try:
            if 0xFFFFFFFF in (usize, csize, offset):
                usize, csize, offset = _zip64(extra, usize, csize, offset)
            local = _local(data, offset, raw_name, flags, method, dtime, ddate, crc, csize, usize)
            layout.compressed[name] = digest_span(data, local.begin, csize)
        except READ_ERRORS as e:
            layout.problems.append(f"zip: entry {name!r}: {describe(e)}")
            continue
        if name in layout.zip_entries:
            layout.problems.append(f"zip: entry {name!r} appears more than once")
        file_type = (external_attr >> 16) & S_IFMT
        layout.links += file_type == S_IFLNK
        header_bytes = (fields[4], disk_start, local.version)
        layout.zip_entries[name] = ZipEntry(raw_name, flags & ~0x6, file_type, local.extra, header_bytes, local.shape)
        spans.append((offset, local.end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            what = "overlap" if begin < position else f"{begin - position} bytes lie"
            layout.problems.append(f"zip: entries {what} between byte {position} and byte {begin}")
            break
        position = end
    if not layout.problems and position != start:
        layout.problems.append(f"zip: {start - position} bytes lie between the last entry and the central directory")
    if layout.eocd:
        _, disk, cd_disk, on_disk, total, *_ = EOCD.unpack(layout.eocd)
        if (disk, cd_disk) != (0, 0) or on_disk != total or total != entries:
            layout.problems.append(
                f"zip: the end of central directory record says {on_disk} of {total} entries on disk {disk} "
                f"(directory on disk {cd_disk}); the central directory holds {entries}"
            )
    return layout


def _zip_name(raw: bytes, flags: int) -> str:
    """The name as ``compare.formats.zip`` reads it (up to a NUL; UTF-8 when flagged, else cp437)."""
    cut = raw.split(b"\x00", 1)[0]
    return cut.decode("utf-8", "surrogateescape") if flags & 0x800 else cut.decode("cp437")


@dataclass(frozen=True)
class _Local:
    extra: bytes
    begin: int  # where the entry's data begins
    end: int  # where the entry ends (after its data descriptor)
    version: int  # the local header's version needed to extract (both bytes)
    shape: tuple[str, ...]


def _local(
    data: IO[bytes],
    offset: int,
    raw_name: bytes,
    flags: int,
    method: int,
    dtime: int,
    ddate: int,
    crc: int,
    csize: int,
    usize: int,
) -> _Local:
    """The local header and data descriptor of an entry, which must agree with the central directory.

    The local CRC and sizes are the central directory's, or (with a data descriptor, flag bit 3) zero; sizes
    may be the zip64 marker. A data descriptor holds exactly the central directory's CRC and sizes.

    Raises:
        Unreadable: no local header, or one (or a descriptor) that names or describes the entry otherwise.
    """
    data.seek(offset)
    head = data.read(LOCAL.size)
    if len(head) < LOCAL.size or head[:4] != LOCAL_SIG:
        raise Unreadable(f"no local header at byte {offset}")
    _, v_low, v_high, l_flags, l_method, l_time, l_date, l_crc, l_csize, l_usize, n_name, n_extra = LOCAL.unpack(head)
    if data.read(n_name) != raw_name:
        raise Unreadable("its local header names another file")
    if (l_flags, l_method, l_time, l_date) != (flags, method, dtime, ddate):
        raise Unreadable("its local header's flags, method or time differ from the central directory's")
    local = (l_crc, l_csize, l_usize)
    if local == (crc, csize, usize):
        shape = ["in the local header"]
    elif flags & 0x8 and local == (0, 0, 0):
        shape = ["zero in the local header"]
    elif 0xFFFFFFFF in (l_csize, l_usize) and l_crc in (crc, 0):
        shape = [f"zip64 in the local header (CRC {'given' if l_crc else 'zero'})"]
    else:
        raise Unreadable(f"its local header's CRC or sizes {local} differ from the central directory's")
    begin = offset + LOCAL.size + n_name + n_extra
    descriptor = 0
    if flags & 0x8:  # sizes and CRC follow the data, in a descriptor (signature optional; zip64 sizes: 8 bytes)
        wide = 0xFFFFFFFF in (l_csize, l_usize) or csize > 0xFFFFFFFF or usize > 0xFFFFFFFF
        data.seek(begin + csize)
        signed = data.read(4) == DESCRIPTOR_SIG
        if not signed:
            data.seek(begin + csize)
        body = data.read(20 if wide else 12)
        if len(body) < (20 if wide else 12) or struct.unpack("<LQQ" if wide else "<LLL", body) != (crc, csize, usize):
            raise Unreadable("its data descriptor's CRC or sizes differ from the central directory's")
        descriptor = len(body) + (4 if signed else 0)
        shape.append(f"data descriptor{' with signature' if signed else ''}{', zip64' if wide else ''}")
    data.seek(offset + LOCAL.size + n_name)
    local_extra = read_exact(data, n_extra)
    return _Local(local_extra, begin, begin + csize + descriptor, v_low | v_high << 8, tuple(shape))


def digest_span(data: IO[bytes], begin: int, length: int | None) -> str:
    """sha256 of ``length`` bytes from ``begin`` (None: to the end), read a chunk at a time."""
    data.seek(begin)
    h, left = hashlib.sha256(), length
    while left is None or left > 0:
        chunk = data.read(1 << 20 if left is None else min(left, 1 << 20))
        if not chunk:
            break
        h.update(chunk)
        if left is not None:
            left -= len(chunk)
    return h.hexdigest()


def gzip_tar_layout(data: IO[bytes], budget: Budget, tar: bool) -> Layout:
    """One gzip member, nothing after it; inside, a tar walked record by record (or a single file)."""
    layout = Layout()
    stream = GzipStream(data, budget.max_header_field, layout.problems.append)
    reader = io.BufferedReader(stream)
    tail = hashlib.sha256()
    try:
        if tar:
            layout.tail(_walk_tar(reader, layout, budget), tail)
        while chunk := reader.read(1 << 20):  # the rest of the stream: decoded (CRC checked), counted
            if not budget.take(len(chunk)):
                layout.problems.append("over the expansion limit: not all of it was read")
                return layout
            if tar:
                layout.tail(chunk, tail)
    except READ_ERRORS as e:
        layout.problems.append(f"gzip: {describe(e)}")
    layout.gzip_members = stream.members
    size = data.seek(0, io.SEEK_END)
    try:
        data.seek(0)
        header = read_header(data, budget.max_header_field)
        layout.compressed["(gzip stream)"] = digest_span(data, header.length, None)
        data.seek(0)
        raw = data.read(header.length)
        if header.flags & FHCRC and int.from_bytes(raw[-2:], "little") != zlib.crc32(raw[:-2]) & 0xFFFF:
            layout.problems.append("gzip: the header's CRC does not match the header")
    except READ_ERRORS as e:
        layout.problems.append(f"gzip: {describe(e)}")
    if stream.members != 1:
        layout.problems.append(f"gzip: {stream.members} members (one was expected)")
    elif not layout.problems and size != stream.end:
        layout.problems.append(f"gzip: {size - stream.end} bytes after the gzip stream (at byte {stream.end})")
    return layout


def tar_layout(data: IO[bytes], budget: Budget) -> Layout:
    layout, tail = Layout(), hashlib.sha256()
    try:
        layout.tail(_walk_tar(data, layout, budget), tail)
        while chunk := data.read(1 << 20):
            layout.tail(chunk, tail)
    except READ_ERRORS as e:
        layout.problems.append(f"tar: {describe(e)}")
    return layout


def _size(block: bytes) -> int:
    field_ = block[124:136]
    if field_[:1] in (b"\x80", b"\xff"):
        if field_[0] == 0xFF:
            raise Unreadable("tar: negative size")
        return int.from_bytes(field_[1:], "big")
    text = field_.split(b"\x00", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise Unreadable(f"tar: size field {text[:20]!r} is not a number") from None


def _walk_tar(stream: IO[bytes], layout: Layout, budget: Budget) -> bytes:
    """Records (extension headers, header, data and padding), each normalized and hashed.

    Normalized: the mode, mtime and checksum fields of every header are zeroed (the member model compares
    mode and mtime and classifies them); pax records keep every key but the timestamps, and a pax header left
    empty by that is dropped (one side may need it for a fractional mtime). Everything else is compared as is.
    """
    record = hashlib.sha256()
    while True:
        block = read_exact(stream, BLOCK)
        if not block or block == ZERO_BLOCK:
            return block  # the end-of-archive block (whatever follows is the trailer)
        if len(block) < BLOCK or not budget.take(BLOCK):
            raise Unreadable("the archive ends inside a header, or is over the expansion limit")
        if block[156:157] == b"S":
            raise Unreadable("an old GNU sparse member (its extension blocks are not walked)")
        size = _size(block)
        padded = size + (-size % BLOCK)
        if block[156:157] in PAX_TYPES:
            if size > budget.max_tar_header:
                raise Unreadable(f"a pax header of {size} bytes is over the limit")
            raw = read_exact(stream, padded)
            if len(raw) < padded:
                raise Unreadable("the archive ends inside a pax header")
            records, parsed = pax_records(raw[:size])
            kept = [(k, v) for k, v in records if k not in TIME_KEYS]
            if len({k for k, _ in kept}) == len(kept):
                kept.sort()  # each key once: their order does not matter (a repeated key's does: the last wins)
            hidden = raw[parsed:].rstrip(b"\x00")  # after a NUL (no reader of records looks), and the padding
            if kept or hidden:
                record.update(_normal(block, pax=True) + repr(kept).encode("utf-8", "surrogateescape"))
                record.update(b"hidden:" + hidden)
            continue
        record.update(_normal(block, pax=False))
        if block[156:157] in (b"1", b"2", b"3", b"4", b"5", b"6"):
            padded = 0  # as tarfile: no data follows these, whatever the size field says
        left = padded
        while left:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                raise Unreadable("the archive ends inside a member's data")
            if not budget.take(len(chunk)):
                raise Unreadable("over the expansion limit")
            record.update(chunk)
            left -= len(chunk)
        if block[156:157] not in (b"L", b"K"):  # a GNU long name belongs to the header after it
            layout.records[record.hexdigest()] += 1
            record = hashlib.sha256()


def _normal(block: bytes, pax: bool) -> bytes:
    """A header block with mode, mtime and checksum zeroed (and, for a pax header, its size: its records vary)."""
    out = bytearray(block)
    out[100:108] = bytes(8)
    out[136:156] = bytes(20)  # mtime and checksum
    if pax:
        out[124:136] = bytes(12)
    return bytes(out)


def compare_layouts(a: Layout, b: Layout, side_names: tuple[str, str]) -> list[str]:
    """What the two layouts differ in beyond the member model (every such difference is unclassified)."""
    problems = [f"{side}: {p}" for side, layout in zip(side_names, (a, b), strict=True) for p in layout.problems]
    for name in sorted(set(a.zip_entries) & set(b.zip_entries)):
        ea, eb = a.zip_entries[name], b.zip_entries[name]
        if ea.raw_name != eb.raw_name:
            problems.append(f"zip entry {name!r}: its name is encoded otherwise")
        if ea.flags != eb.flags:
            problems.append(f"zip entry {name!r}: general purpose flags {ea.flags:#x} -> {eb.flags:#x}")
        if ea.file_type != eb.file_type:
            problems.append(f"zip entry {name!r}: file type {ea.file_type:#o} -> {eb.file_type:#o}")
        if ea.local_extra != eb.local_extra:
            problems.append(f"zip entry {name!r}: local header extra field differs")
        if ea.header_bytes != eb.header_bytes:
            what = f"({ea.header_bytes} -> {eb.header_bytes})"
            problems.append(f"zip entry {name!r}: version or disk fields differ {what}")
        if ea.shape != eb.shape:
            problems.append(f"zip entry {name!r}: CRC and sizes given otherwise ({ea.shape} -> {eb.shape})")
    if a.eocd != b.eocd:
        problems.append("zip: the end of central directory record differs (entry counts, disk numbers or comment)")
    if a.records != b.records:
        problems.append("tar: headers or data differ beyond mode and mtime (normalized records differ)")
    if a.trailer != b.trailer and (a.trailer_hidden or b.trailer_hidden):
        problems.append("tar: data after the end-of-archive block differs")
    return problems
