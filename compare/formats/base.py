"""What every reader produces (an archive's members) and the budget it reads under.

A member whose content cannot be decoded keeps an ``error``; a member not
read because of a limit has neither a digest nor an error. The two are
reported differently: "could not read" and "not compared" are both "could
not tell", and neither is ever "identical".
"""

from __future__ import annotations

import hashlib
import io
import lzma
import struct
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

CHUNK = 1 << 20
ELF_MAGIC = b"\x7fELF"
SMALL_MEMBER = 64 << 10  # members up to this size are kept, so a text difference can be quoted
MAX_NOTES = 50  # per archive: a hostile archive can make one note per member; the rest are counted


class Unreadable(Exception):
    """A header or stream that cannot be decoded: the reader records why and stops, or skips the member."""


# What decoding hostile bytes may raise. Anything else is a bug of ours and propagates.
READ_ERRORS = (Unreadable, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, struct.error, NotImplementedError)


def describe(e: BaseException) -> str:
    return str(e) if isinstance(e, Unreadable) else f"{type(e).__name__}: {e}"


@dataclass
class Budget:
    """How much reading one explanation may do (both sides, all depths)."""

    max_depth: int = 3
    max_expanded_bytes: int = 8 << 30  # over all members, all depths
    max_nested_bytes: int = 256 << 20  # an inner archive is held in memory up to this size
    max_members: int = 500_000  # per archive, checked while reading: the rest are not read
    max_header_field: int = 4 << 10  # a gzip file name or comment
    max_tar_header: int = 1 << 20  # a tar pax header, GNU long name or long link target
    expanded: int = 0

    def take(self, n: int) -> bool:
        self.expanded += n
        return self.expanded <= self.max_expanded_bytes

    @property
    def exhausted(self) -> bool:
        return self.expanded > self.max_expanded_bytes


@dataclass
class Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, other
    size: int | None
    sha256: str | None  # None when not read: ``error`` says why, or (no error) a limit stopped it
    meta: dict[str, Any] = field(default_factory=dict)
    nested: bytes | None = None  # the bytes of an inner archive (to recurse into) or of a small member
    error: str | None = None  # why the content could not be read (a corrupt or truncated stream)


@dataclass
class Archive:
    format: str
    members: list[Member]
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the first part that could not be read (a corrupt header or stream), and why
    limited: str | None = None  # the first part not read because of a limit, and which
    notes_dropped: int = 0

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        else:
            self.notes_dropped += 1

    def full(self, budget: Budget) -> bool:
        """True (and the archive marked as cut short) when another member would pass the member cap."""
        if len(self.members) < budget.max_members:
            return False
        self.limit(f"more than {budget.max_members} members; the rest were not read")
        return True

    def fail(self, reason: str, note: str | None = None) -> None:
        """Record a part that could not be read: the archive can no longer be called identical to anything."""
        if self.error is None:
            self.error = reason
        self.note(note or reason)

    def limit(self, reason: str) -> None:
        """Record a part not read because of a limit: its content is not compared."""
        if self.limited is None:
            self.limited = reason
        self.note(reason)


@dataclass(frozen=True)
class Content:
    """A member's content as hashed: a digest, or why there is none."""

    size: int
    sha256: str | None
    kept: bytes | None
    error: str | None = None

    @property
    def over_limit(self) -> bool:
        return self.sha256 is None and self.error is None


def hash_member(f: IO[bytes], budget: Budget, keep: bool) -> Content:
    """Hash a member's stream; keep its bytes when asked (or an executable) and small enough.

    A decoding error is caught here and returned, so one corrupt member never hides the others.
    """
    h = hashlib.sha256()
    size = 0
    kept: list[bytes] | None = [] if keep else None
    try:
        while chunk := f.read(CHUNK):
            if size == 0 and kept is None and chunk.startswith(ELF_MAGIC):
                kept = []  # an executable: kept, to tell a build-id difference from a code difference
            size += len(chunk)
            if not budget.take(len(chunk)):
                return Content(size, None, None)
            h.update(chunk)
            if kept is not None:
                if size > budget.max_nested_bytes:
                    kept = None
                else:
                    kept.append(chunk)
    except READ_ERRORS as e:
        return Content(size, None, None, describe(e))
    return Content(size, h.hexdigest(), b"".join(kept) if kept is not None else None)


def add_file(archive: Archive, name: str, meta: dict[str, Any], content: Content) -> Member:
    member = Member(name, "file", content.size, content.sha256, meta, content.kept, content.error)
    if content.over_limit:
        archive.note(f"member {name!r} exceeds the expansion limit; its content was not compared")
    elif content.error is not None:
        archive.note(f"member {name!r}: could not read its content: {content.error}")
    archive.members.append(member)
    return member


def might_nest(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith((".zip", ".whl", ".jar", ".tar", ".tgz", ".gz", ".xz", ".bz2", ".zst", ".deb", ".egg"))


def suspicious(archive: Archive, name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts:
        archive.note(f"member {name!r} has an absolute or '..' path (not extracted; compared by name only)")


def read_exact(f: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream."""
    data = f.read(n)
    if len(data) >= n or not data:
        return data
    parts, got = [data], len(data)
    while got < n and (chunk := f.read(min(n - got, CHUNK))):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def skip(f: IO[bytes], n: int) -> int:
    """Read and drop ``n`` bytes, a chunk at a time (streams cannot seek); the number actually skipped."""
    done = 0
    while done < n and (chunk := f.read(min(n - done, CHUNK))):
        done += len(chunk)
    return done


class Limited(io.RawIOBase):
    """The next ``n`` bytes of a stream."""

    def __init__(self, f: IO[bytes], n: int) -> None:
        self.f, self.left = f, n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.left <= 0:
            return 0
        chunk = self.f.read(min(len(b), self.left))
        self.left -= len(chunk)
        b[: len(chunk)] = chunk
        return len(chunk)


class Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        chunk = self.rest.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)
