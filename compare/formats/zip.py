"""zip (wheels, jars): the central directory parsed by us, each member inflated and checked on its own.

Every field is bounded by the format (16-bit lengths) and by the directory
that holds it; extra fields are walked by offset, once (``zipfile`` copies
the rest of the field at each step, quadratic in its length). A member whose
data cannot be decoded, fails its CRC or is encrypted is recorded as "could
not read" and the next member is read: one corrupt member never hides the
others, and never ends the listing early so that members look "only in" one side.
"""

from __future__ import annotations

import bz2
import io
import itertools
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from compare.formats.base import (
    READ_ERRORS,
    SMALL_MEMBER,
    Archive,
    Budget,
    Content,
    Member,
    Unreadable,
    add_file,
    describe,
    hash_member,
    might_nest,
    read_exact,
    suspicious,
)

EOCD = struct.Struct("<4s4H2LH")
LOCATOR64 = struct.Struct("<4sLQL")
EOCD64 = struct.Struct("<4sQ2H2L4Q")
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
LOCAL = struct.Struct("<4s2B4HL2L2H")
EOCD_SIG, LOCATOR64_SIG, EOCD64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
CENTRAL_SIG, LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
INPUT_CHUNK = 64 << 10
OUTPUT_CHUNK = 1 << 20
MAX_LZMA_DICT = 256 << 20


def _eocd(data: IO[bytes]) -> tuple[bytes, int, int, int]:
    """(archive comment, where the central directory starts, its size, the offset of the archive in the file)."""
    size = data.seek(0, io.SEEK_END)
    span = min(size, EOCD.size + 0xFFFF + LOCATOR64.size)
    data.seek(size - span)
    tail = data.read(span)
    at = tail.rfind(EOCD_SIG, 0, len(tail) - EOCD.size + len(EOCD_SIG))  # a whole record must fit after it
    if at < 0:
        raise Unreadable("zip: no end of central directory record")
    *_, cd_size, cd_offset, comment_len = EOCD.unpack_from(tail, at)
    comment = tail[at + EOCD.size : at + EOCD.size + comment_len]
    cd_end = size - span + at
    if at >= LOCATOR64.size and tail[at - LOCATOR64.size : at - LOCATOR64.size + 4] == LOCATOR64_SIG:
        cd_end -= LOCATOR64.size + EOCD64.size  # the zip64 record sits just before its locator (as zipfile reads it)
        data.seek(max(cd_end, 0))
        record = data.read(EOCD64.size)
        if cd_end < 0 or len(record) < EOCD64.size or record[:4] != EOCD64_SIG:
            raise Unreadable("zip: the zip64 end of central directory record is missing")
        *_, cd_size, cd_offset = EOCD64.unpack(record)
    start = cd_end - cd_size
    if start < 0:
        raise Unreadable(f"zip: the central directory ({cd_size} bytes) does not fit before its end record")
    return comment, start, cd_size, start - cd_offset


def _zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Sizes and offset from the zip64 extra field, for those the header marks as 0xFFFFFFFF."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if kind == 1:
            values = extra[at + 4 : at + 4 + length]
            fields = [usize, csize, offset]
            pos = 0
            for i, value in enumerate(fields):
                if value == 0xFFFFFFFF:
                    if pos + 8 > len(values):
                        raise Unreadable("zip64 extra field is truncated")
                    (fields[i],) = struct.unpack_from("<Q", values, pos)
                    pos += 8
            return fields[0], fields[1], fields[2]
        at += 4 + length
    raise Unreadable("sizes are marked zip64 but there is no zip64 extra field")


def _decompressor(method: int, read: Callable[[int], bytes]) -> Any:
    if method == DEFLATED:
        return zlib.decompressobj(-zlib.MAX_WBITS)
    if method == BZIP2:
        return bz2.BZ2Decompressor()
    if method == LZMA:  # 2 bytes version, 2 bytes properties size, properties (LZMA1: lc/lp/pb, dictionary size)
        head = read(4)
        props = read(struct.unpack("<H", head[2:4])[0]) if len(head) == 4 else b""
        if len(props) < 5:
            raise Unreadable("LZMA properties are truncated")
        (dict_size,) = struct.unpack_from("<I", props, 1)
        if dict_size > MAX_LZMA_DICT:
            raise Unreadable(f"LZMA dictionary of {dict_size} bytes is over the limit of {MAX_LZMA_DICT}")
        lc, rest = props[0] % 9, props[0] // 9
        lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": rest % 5, "pb": rest // 5}
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1])
    raise Unreadable(f"compression method {method} is not supported")


def _chunks(f: IO[bytes], csize: int, method: int, crc: int, usize: int) -> Iterator[bytes]:
    """The member's bytes, checked against its size and CRC at the end (as zipfile does)."""
    left, got, running = csize, 0, 0

    def read(n: int) -> bytes:
        nonlocal left
        data = read_exact(f, min(n, left)) if left > 0 else b""
        if len(data) < min(n, left):
            raise Unreadable("truncated: the file ends inside its compressed data")
        left -= len(data)
        return data

    d = None if method == STORED else _decompressor(method, read)
    while True:
        if d is None:
            data = out = read(OUTPUT_CHUNK)
        elif method == DEFLATED:
            data = d.unconsumed_tail or read(INPUT_CHUNK)
            out = d.decompress(data, OUTPUT_CHUNK)
        else:
            data = read(INPUT_CHUNK) if d.needs_input else b""
            out = d.decompress(data, OUTPUT_CHUNK)
        if out:
            got += len(out)
            if got > usize:
                raise Unreadable(f"its data inflates to more than the {usize} bytes it declares")
            running = zlib.crc32(out, running)
            yield out
        if (d is not None and d.eof) or (not data and not out):
            break
    if got != usize:
        raise Unreadable(f"its data inflates to {got} bytes, not the {usize} it declares")
    if running != crc:
        raise Unreadable(f"CRC check failed ({running:#010x} != {crc:#010x})")


class _Chunked(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.buf, self.pos = chunks, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self.pos >= len(self.buf):
            self.buf, self.pos = next(self.chunks, b""), 0
            if not self.buf:
                return 0
        n = min(len(b), len(self.buf) - self.pos)
        b[:n] = self.buf[self.pos : self.pos + n]
        self.pos += n
        return n


def read_zip(data: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
    """Members in central directory order.

    Raises:
        Unreadable: no end record, or a central directory that is truncated or not one.
    """
    comment, start, cd_size, concat = _eocd(data)
    archive.meta["comment"] = comment.hex()
    data.seek(start)
    cd = data.read(cd_size)
    spans: list[tuple[int, int, str]] = []
    at = 0
    while at < len(cd):
        if archive.full(budget):
            break
        if len(cd) - at < CENTRAL.size or cd[at : at + 4] != CENTRAL_SIG:
            raise Unreadable(f"zip: the central directory entry at byte {start + at} is truncated or not one")
        fields = CENTRAL.unpack_from(cd, at)
        create_version, create_system, extract_version, _, flags, method, dtime, ddate, crc, csize, usize = fields[1:12]
        n_name, n_extra, n_comment, _, internal_attr, external_attr, offset = fields[12:]
        end = at + CENTRAL.size + n_name + n_extra + n_comment
        if end > len(cd):
            raise Unreadable(f"zip: the central directory entry at byte {start + at} runs past the directory")
        raw_name = cd[at + CENTRAL.size : at + CENTRAL.size + n_name]
        extra = cd[at + CENTRAL.size + n_name : at + CENTRAL.size + n_name + n_extra]
        entry_comment = cd[end - n_comment : end]
        at = end
        raw = raw_name.split(b"\x00", 1)[0]  # as zipfile: a name ends at its first NUL
        name = raw.decode("utf-8", "surrogateescape") if flags & 0x800 else raw.decode("cp437")
        suspicious(archive, name)
        meta: dict[str, Any] = {
            "mtime": (
                (ddate >> 9) + 1980,
                (ddate >> 5) & 0xF,
                ddate & 0x1F,
                dtime >> 11,
                (dtime >> 5) & 0x3F,
                (dtime & 0x1F) * 2,
            ),
            "mode": (external_attr >> 16) & 0o7777,
            "dos-attributes": external_attr & 0xFFFF,
            "compression": (method, csize, flags & 0x6),
            "zip-metadata": (
                extra.hex(),
                create_system,
                create_version,
                extract_version,
                entry_comment.hex(),
                internal_attr,
            ),
        }
        try:
            if 0xFFFFFFFF in (usize, csize, offset):
                usize, csize, offset = _zip64(extra, usize, csize, offset)
                meta["compression"] = (method, csize, flags & 0x6)
        except Unreadable as e:
            if name.endswith("/"):
                archive.fail(f"directory entry {name!r}: {e}")
                archive.members.append(Member(name, "dir", None, None, meta))
            else:
                add_file(archive, name, meta, Content(usize, None, None, str(e)))
            continue
        if name.endswith("/"):
            _directory(data, archive, name, raw_name, concat + offset, flags, method, csize, crc, usize)
            archive.members.append(Member(name, "dir", None, None, meta))
            continue
        if budget.expanded + usize > budget.max_expanded_bytes:
            archive.note(
                f"member {name!r} declares {usize} bytes, over the expansion limit "
                "(a zip bomb?); its content was not compared"
            )
            archive.members.append(Member(name, "file", usize, None, meta))
            continue
        keep = (might_nest(name) and depth < budget.max_depth) or usize <= SMALL_MEMBER
        try:
            stream, data_end = _open(data, archive, name, raw_name, concat + offset, flags, method, csize, crc, usize)
        except READ_ERRORS as e:
            add_file(archive, name, meta, Content(usize, None, None, describe(e)))
            continue
        spans.append((concat + offset, data_end, name))
        add_file(archive, name, meta, hash_member(stream, budget, keep))
    _overlaps(archive, spans)


def _directory(
    data: IO[bytes],
    archive: Archive,
    name: str,
    raw_name: bytes,
    pos: int,
    flags: int,
    method: int,
    csize: int,
    crc: int,
    usize: int,
) -> None:
    """A directory entry holds no data; bytes in one are extracted by some tools (``zipfile.read('d/')``).

    An empty compressed stream (a deflated directory: 2 bytes that inflate to nothing) is no data; anything
    else marks the archive as not all read, so that it is never called identical or content-equivalent.
    """
    if usize == 0 and csize == 0:
        return
    why = f"it declares {usize} bytes of data" if usize else ""
    if not why:
        try:
            stream, _ = _open(data, archive, name, raw_name, pos, flags, method, csize, crc, usize)
            extra = stream.read(1)
        except READ_ERRORS as e:
            why = f"its {csize} bytes of data cannot be read: {describe(e)}"
        else:
            why = "it holds data" if extra else ""
    if why:
        archive.fail(f"directory entry {name!r} is not empty: {why} (other tools extract it)")


def _open(
    data: IO[bytes],
    archive: Archive,
    name: str,
    raw_name: bytes,
    pos: int,
    flags: int,
    method: int,
    csize: int,
    crc: int,
    usize: int,
) -> tuple[IO[bytes], int]:
    """A stream of the member's bytes and where its data ends in the file."""
    if pos < 0:
        raise Unreadable(f"its local header offset points before the start of the file ({pos})")
    data.seek(pos)
    local = data.read(LOCAL.size)
    if len(local) < LOCAL.size or local[:4] != LOCAL_SIG:
        raise Unreadable(f"no local header at byte {pos}")
    n_name, n_extra = LOCAL.unpack(local)[10:]
    if (local_name := data.read(n_name)) != raw_name:
        archive.note(f"member {name!r}: its local header names {local_name[:80]!r} (other tools may see that name)")
    if flags & 0x1:
        raise Unreadable("it is encrypted")
    start = pos + LOCAL.size + n_name + n_extra
    data.seek(start)
    return io.BufferedReader(_Chunked(_chunks(data, csize, method, crc, usize))), start + csize


def _overlaps(archive: Archive, spans: list[tuple[int, int, str]]) -> None:
    spans.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            archive.note(f"members {first!r} and {second!r} overlap in the file (a crafted archive or a zip bomb)")
            return
