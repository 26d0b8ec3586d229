"""tar (v7, ustar, GNU, pax), read as one pass over a stream, with our own header parsing.

Python 3.11's ``tarfile`` reads a pax header whole, whatever size it
declares, then searches it with regular expressions that backtrack
(quadratic in its length: an 80 KB header takes seconds, CVE-2024-6232).
Here a pax header, GNU long name or long link target is read only up to
``Budget.max_tar_header`` bytes (a longer one is skipped with a note) and
its records are split by their declared lengths, each byte looked at once.
Names and fields follow ``tarfile``'s reading of them.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from typing import IO, Any

from compare.formats.base import (
    SMALL_MEMBER,
    Archive,
    Budget,
    Content,
    Member,
    Unreadable,
    add_file,
    hash_member,
    might_nest,
    read_exact,
    skip,
    suspicious,
)

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
POSIX_MAGIC, GNU_MAGIC = b"ustar\x0000", b"ustar  \x00"
PAX_TYPES = (b"x", b"g", b"X")  # X: Solaris
LONG_TYPES = (b"L", b"K")  # GNU long name, long link target
NO_DATA_TYPES = (b"1", b"2", b"3", b"4", b"5", b"6")  # as tarfile: no data is skipped for these
KINDS = {b"5": "dir", b"2": "symlink", b"1": "hardlink"}
PAX_CORE = ("path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname")  # applied to the member
MAX_SPARSE_BLOCKS = 1 << 16  # old GNU sparse: extension blocks after one header
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _number(field: bytes, what: str) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # GNU base-256
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if field[0] == 0xFF else n
    text = field.split(b"\x00", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise Unreadable(f"tar header: {what} field {text[:20]!r} is not a number") from None


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156], "checksum")
    if stored == sum(block) - sum(block[148:156]) + 8 * 0x20:  # the checksum field counts as spaces
        return True
    signed: int = sum(struct.unpack_from("148b", block)) + 8 * 0x20 + sum(struct.unpack_from("356b", block, 156))
    return stored == signed  # some old tars summed signed bytes


@dataclass
class _Header:
    name: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    type: bytes
    linkname: str
    uname: str
    gname: str
    devmajor: int
    devminor: int
    format: str
    extended: bool = False  # old GNU sparse: extension blocks follow
    sparse_map: bytes = b""  # old GNU sparse: the map in the header, and the real size

    @classmethod
    def parse(cls, block: bytes, offset: int) -> _Header:
        if not _checksum_ok(block):
            raise Unreadable(f"tar header at byte {offset}: bad checksum (not a tar header)")
        if (size := _number(block[124:136], "size")) < 0:
            raise Unreadable(f"tar header at byte {offset}: negative size {size}")
        type_, magic = block[156:157], block[257:265]
        name = _text(block[0:100])
        if magic == POSIX_MAGIC and type_ not in (*LONG_TYPES, b"S") and (prefix := _text(block[345:500])):
            name = f"{prefix}/{name}"
        if type_ == b"\x00" and name.endswith("/"):
            type_ = b"5"  # a v7 directory
        device = type_ in (b"3", b"4")
        return cls(
            name=name,
            mode=_number(block[100:108], "mode"),
            uid=_number(block[108:116], "uid"),
            gid=_number(block[116:124], "gid"),
            size=size,
            mtime=_number(block[136:148], "mtime"),
            type=type_,
            linkname=_text(block[157:257]),
            uname=_text(block[265:297]),
            gname=_text(block[297:329]),
            devmajor=_number(block[329:337], "devmajor") if device else 0,
            devminor=_number(block[337:345], "devminor") if device else 0,
            format="pax"
            if type_ in PAX_TYPES
            else "gnu"
            if magic == GNU_MAGIC
            else "ustar"
            if magic[:5] == b"ustar"
            else "v7",
            extended=type_ == b"S" and block[482] != 0,
            sparse_map=block[386:495] if type_ == b"S" else b"",
        )

    def apply(self, pax: dict[str, str]) -> None:
        """pax records override the header's fields (a bad number reads as 0, as in tarfile)."""
        for key, value in pax.items():
            if key in ("path", "GNU.sparse.name"):
                self.name = value
            elif key == "linkpath":
                self.linkname = value
            elif key in ("uname", "gname"):
                setattr(self, key, value)
            elif key in ("size", "uid", "gid", "mtime"):
                try:
                    setattr(self, key, float(value) if key == "mtime" else int(value))
                except ValueError:
                    setattr(self, key, 0)
        if self.size < 0:
            raise Unreadable(f"tar member {self.name!r}: negative size {self.size}")


def parse_pax(data: bytes) -> dict[str, str]:
    """``LENGTH KEY=VALUE\\n`` records, split by their lengths; every search is bounded by its record.

    Raises:
        Unreadable: a record without a length, with a wrong length, or without '='.
    """
    return dict(pax_records(data)[0])


def pax_records(data: bytes) -> tuple[list[tuple[str, str]], int]:
    """Every record in order (a key may repeat: ``parse_pax`` keeps the last) and where they end.

    Reading stops at a NUL: what follows it is not read by this reader (nor by ``tarfile``).

    Raises:
        Unreadable: as ``parse_pax``.
    """
    records: list[tuple[str, str]] = []
    at = 0
    while at < len(data) and data[at] != 0:
        space = data.find(b" ", at, at + 21)
        digits = data[at:space] if space > at else b""
        if not digits.isdigit():
            raise Unreadable(f"tar pax header: the record at byte {at} has no length")
        end = at + int(digits)
        if end > len(data) or end <= space + 1 or data[end - 1] != 0x0A:
            raise Unreadable(f"tar pax header: the record at byte {at} has a wrong length ({int(digits)})")
        eq = data.find(b"=", space + 1, end - 1)
        if eq < 0:
            raise Unreadable(f"tar pax header: the record at byte {at} has no '='")
        key = data[space + 1 : eq].decode("utf-8", "surrogateescape")
        records.append((key, data[eq + 1 : end - 1].decode("utf-8", "surrogateescape")))
        at = end
    return records, at


class _Reader:
    def __init__(self, stream: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
        self.stream, self.archive, self.budget, self.depth = stream, archive, budget, depth
        self.offset = 0

    def read(self, n: int, what: str) -> bytes:
        data = read_exact(self.stream, n)
        if len(data) < n:
            raise Unreadable(f"tar: the archive ends inside {what} at byte {self.offset + len(data)}")
        self.offset += n
        return data

    def extension(self, header: _Header) -> bytes | None:
        """The data of a pax header or GNU long name; None when over the cap (skipped: the archive is limited)."""
        padded = header.size + (-header.size % BLOCK)
        what = "pax header" if header.type in PAX_TYPES else "GNU long name"
        if header.size > self.budget.max_tar_header:
            self.archive.limit(
                f"tar {what} at byte {self.offset} is {header.size} bytes, over the limit of "
                f"{self.budget.max_tar_header} bytes; it was skipped"
            )
            if not self.budget.take(padded):
                return None
            done = skip(self.stream, padded)
            self.offset += done
            if done < padded:
                raise Unreadable(f"tar: the archive ends inside a {what} at byte {self.offset}")
            return None
        self.budget.take(padded)
        return self.read(padded, f"a {what}")[: header.size]

    def run(self) -> None:
        global_pax: dict[str, str] = {}
        pax: dict[str, str] | None = None
        long_name = long_link = None
        while True:
            if self.budget.exhausted:
                self.archive.limit("expansion limit reached; the rest of the archive was not read")
                return
            block = read_exact(self.stream, BLOCK)
            if not block or block == ZERO_BLOCK:
                return  # the end (a missing end-of-archive marker is accepted, as tar does)
            if len(block) < BLOCK:
                raise Unreadable(f"tar: the archive ends inside a header at byte {self.offset}")
            header = _Header.parse(block, self.offset)
            self.offset += BLOCK
            self.archive.meta.setdefault("tar-format", header.format)
            self.budget.take(BLOCK)
            if header.type in PAX_TYPES or header.type in LONG_TYPES:
                data = self.extension(header)
                if self.budget.exhausted:
                    continue  # stops at the top of the loop
                if header.type in LONG_TYPES:
                    text = _text(data) if data is not None else None
                    long_name, long_link = (text, long_link) if header.type == b"L" else (long_name, text)
                    continue
                try:
                    records = parse_pax(data) if data is not None else {"(not read)": f"{header.size} bytes"}
                except Unreadable as e:
                    self.archive.fail(str(e), f"{e} (its records were ignored)")
                    records = {"(malformed)": str(e)}
                if header.type == b"g":
                    global_pax.update(records)
                else:
                    pax = {**global_pax, **records}
                continue
            if self.archive.full(self.budget):
                return
            if long_name is not None:
                header.name = long_name
            if long_link is not None:
                header.linkname = long_link
            effective = pax if pax is not None else global_pax
            header.apply(effective)
            pax, long_name, long_link = None, None, None
            if header.type == b"5":
                header.name = header.name.rstrip("/") or header.name
            if not self.member(header, effective):
                return

    def member(self, h: _Header, pax: dict[str, str]) -> bool:
        """Record one member (reading its data); False when the reading must stop at a limit."""
        suspicious(self.archive, h.name)
        meta: dict[str, Any] = {
            "mtime": h.mtime,
            "mode": h.mode,
            "ownership": (h.uid, h.gid, h.uname, h.gname),
            "pax": tuple(sorted((k, v) for k, v in pax.items() if k not in PAX_CORE)),
        }
        if h.type in NO_DATA_TYPES:
            kind = KINDS.get(h.type)
            if kind == "dir":
                self.archive.members.append(Member(h.name, "dir", None, None, meta))
            elif kind is not None:
                target = hashlib.sha256(h.linkname.encode("utf-8", "surrogateescape")).hexdigest()
                self.archive.members.append(Member(h.name, kind, None, target, {**meta, "target": h.linkname}))
            else:
                other = f"{h.type!r}:{h.devmajor}:{h.devminor}"
                self.archive.members.append(Member(h.name, "other", None, other, meta))
            return True
        # A sparse file's map says where its holes are, so it is part of the content: it goes into the digest.
        sparse = hashlib.sha256(h.sparse_map)
        more = h.extended
        for _ in range(MAX_SPARSE_BLOCKS):  # old GNU sparse: extension blocks, then the stored data
            if not more:
                break
            self.budget.take(BLOCK)
            block = self.read(BLOCK, "a sparse header")
            sparse.update(block[:504])
            more = block[504] != 0
        for key in sorted(k for k in pax if k.startswith("GNU.sparse.")):  # pax sparse 0.0 and 0.1
            sparse.update(f"{key}={pax[key]}\n".encode("utf-8", "surrogateescape"))
        is_sparse = h.type == b"S" or any(k.startswith("GNU.sparse.") for k in pax)
        keep = (might_nest(h.name) and self.depth < self.budget.max_depth) or h.size <= SMALL_MEMBER
        if h.size == 0:
            content = Content(0, EMPTY_SHA256, b"")
        else:
            content = hash_member(io.BufferedReader(_Counted(self, h.size)), self.budget, keep)
        if content.error is None and not content.over_limit and content.size < h.size:
            content = Content(content.size, None, None, f"truncated ({content.size} of {h.size} bytes)")
        if is_sparse and content.sha256 is not None:
            meta["sparse"] = True
            sparse.update(bytes.fromhex(content.sha256))
            content = Content(content.size, sparse.hexdigest(), content.kept)
        add_file(self.archive, h.name, meta, content)
        if content.over_limit:
            self.archive.limit("expansion limit reached; the rest of the archive was not read")
            return False
        if content.error is not None:
            raise Unreadable(f"tar: could not read past member {h.name!r}")
        self.offset += skip(self.stream, -h.size % BLOCK)
        return True


class _Counted(io.RawIOBase):
    """A member's data: the next ``n`` bytes of the tar stream, counted into the reader's offset."""

    def __init__(self, reader: _Reader, n: int) -> None:
        self.reader, self.left = reader, n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.left <= 0:
            return 0
        chunk = self.reader.stream.read(min(len(b), self.left))
        self.left -= len(chunk)
        self.reader.offset += len(chunk)
        b[: len(chunk)] = chunk
        return len(chunk)


def read_tar(stream: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
    """Members of the tar stream, in order.

    Raises:
        Unreadable: a header that is not one, or a stream that ends or breaks inside the archive.
    """
    _Reader(stream, archive, budget, depth).run()
