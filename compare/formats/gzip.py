"""gzip (RFC 1952): member headers parsed with capped fields, members inflated with zlib.

The standard library's reader is not used: its header loop reads a file name
one byte at a time to the end of the input, and it reports a damaged stream
in ways that are easy to mistake for an empty one. Here each header is parsed
from one bounded read; a field over its cap or unterminated is an
``Unreadable`` whose message says which field and why.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from compare.formats.base import CHUNK, Unreadable

MAGIC = b"\x1f\x8b"
FHCRC, FEXTRA, FNAME, FCOMMENT = 0x02, 0x04, 0x08, 0x10
FIXED = 10
MAX_EXTRA = 0xFFFF  # XLEN is 16 bits
INPUT_CHUNK = 64 << 10


def header_span(max_field: int) -> int:
    """The most bytes a header can take (so one read holds all of it): fixed part, extra, name, comment, CRC."""
    return FIXED + 2 + MAX_EXTRA + 2 * (max_field + 1) + 2


@dataclass(frozen=True)
class GzipHeader:
    flags: int
    mtime: int
    xfl: int
    os: int
    extra: bytes
    name: bytes
    comment: bytes
    length: int  # bytes the header takes; the deflate stream starts there

    def meta(self) -> dict[str, Any]:
        return {
            "gzip-mtime": self.mtime,
            "gzip-header": (
                self.name.decode("latin-1"),
                self.comment.decode("latin-1"),
                self.extra.hex(),
                self.os,
                self.flags & ~FNAME,
            ),
            "gzip-level": self.xfl,
        }


def _zero_terminated(buf: bytes, at: int, max_field: int, what: str) -> tuple[bytes, int]:
    """The field at ``at`` and where the next one starts; the search never looks past the cap."""
    end = buf.find(b"\x00", at, at + max_field + 1)
    if end < 0:
        if len(buf) < at + max_field + 1:
            raise Unreadable(f"gzip header: {what} not terminated before the end of the file")
        raise Unreadable(f"gzip header: {what} not terminated within {max_field} bytes")
    return buf[at:end], end + 1


def parse_header(buf: bytes, max_field: int) -> GzipHeader:
    """The header at the start of ``buf`` (at most ``header_span(max_field)`` bytes are looked at).

    Raises:
        Unreadable: not a gzip header, truncated, or a field over its cap or unterminated.
    """
    if len(buf) < FIXED:
        raise Unreadable(f"gzip header: truncated ({len(buf)} of {FIXED} bytes)")
    if buf[:2] != MAGIC:
        raise Unreadable("gzip header: no gzip magic")
    if buf[2] != 8:
        raise Unreadable(f"gzip header: compression method {buf[2]} is not deflate")
    flags, (mtime,), xfl, os_ = buf[3], struct.unpack_from("<I", buf, 4), buf[8], buf[9]
    at, extra, name, comment = FIXED, b"", b"", b""
    if flags & FEXTRA:
        if len(buf) < at + 2:
            raise Unreadable("gzip header: extra field length is truncated")
        (xlen,) = struct.unpack_from("<H", buf, at)
        if len(buf) < at + 2 + xlen:
            raise Unreadable(f"gzip header: extra field of {xlen} bytes runs past the end of the file")
        extra, at = buf[at + 2 : at + 2 + xlen], at + 2 + xlen
    if flags & FNAME:
        name, at = _zero_terminated(buf, at, max_field, "file name")
    if flags & FCOMMENT:
        comment, at = _zero_terminated(buf, at, max_field, "comment")
    if flags & FHCRC:
        if len(buf) < at + 2:
            raise Unreadable("gzip header: header CRC is truncated")
        at += 2
    return GzipHeader(flags, mtime, xfl, os_, extra, name, comment, at)


def read_header(f: IO[bytes], max_field: int) -> GzipHeader:
    """Parse the header at the current position of a seekable file, leaving it at the deflate stream."""
    start = f.tell()
    header = parse_header(f.read(header_span(max_field)), max_field)
    f.seek(start + header.length)
    return header


class GzipStream(io.RawIOBase):
    """The inflated bytes of every member of a gzip file (seekable), each checked against its CRC and size.

    Raises (from reads):
        Unreadable: a header over a cap, a corrupt or truncated deflate stream, a CRC or size mismatch.
    """

    def __init__(self, f: IO[bytes], max_field: int, note: Callable[[str], None]) -> None:
        self.f, self.max_field, self.note = f, max_field, note
        self.d: Any = None  # the current member's zlib decompressor, None between members
        self.crc = self.size = 0
        self.done = False
        self.members = 0
        self.end = 0  # where the last complete member (its trailer) ends in the file

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not len(b):
            return 0  # zlib reads max_length 0 as "no limit"
        while not self.done:
            if self.d is None and not self._next_member():
                self.done = True
                break
            tail = self.d.unconsumed_tail
            data = tail or self.f.read(INPUT_CHUNK)
            try:
                out = self.d.decompress(data, len(b))
            except zlib.error as e:
                raise Unreadable(f"gzip member {self.members}: corrupt deflate stream ({e})") from e
            if out:
                self.crc = zlib.crc32(out, self.crc)
                self.size += len(out)
            if self.d.eof:
                self._end_member()
            elif not data and not out:
                raise Unreadable(f"gzip member {self.members}: truncated (the file ends inside the deflate stream)")
            if out:
                b[: len(out)] = out
                return len(out)
        return 0

    def _next_member(self) -> bool:
        start = self.f.tell()
        head = self.f.read(header_span(self.max_field))
        if not head:
            return False
        if head[:2] != MAGIC and self.members:
            if head.strip(b"\x00") or self._nonzero_after():
                self.note(f"trailing data after the last gzip member at byte {start} (ignored)")
            return False
        header = parse_header(head, self.max_field)
        self.f.seek(start + header.length)
        self.d, self.crc, self.size = zlib.decompressobj(-zlib.MAX_WBITS), 0, 0
        self.members += 1
        return True

    def _nonzero_after(self) -> bool:
        while chunk := self.f.read(CHUNK):
            if chunk.strip(b"\x00"):
                return True
        return False

    def _end_member(self) -> None:
        self.f.seek(self.f.tell() - len(self.d.unused_data))
        trailer = self.f.read(8)
        self.d = None
        self.end = self.f.tell()
        if len(trailer) < 8:
            raise Unreadable(f"gzip member {self.members}: truncated (the CRC and size trailer is missing)")
        crc, isize = struct.unpack("<II", trailer)
        if crc != self.crc:
            raise Unreadable(f"gzip member {self.members}: CRC check failed ({crc:#010x} != {self.crc:#010x})")
        if isize != self.size & 0xFFFFFFFF:
            raise Unreadable(f"gzip member {self.members}: length check failed ({isize} != {self.size})")
