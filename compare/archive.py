"""Reading release archives into members, without external tools and without extracting.

Formats, detected by magic bytes (most specific first): zip (wheels, jars),
ar (.deb), gzip / xz / bzip2 / zstd (a tar inside, or a single file), and
tar; one reader per format under ``compare/formats``. Each member is hashed
while streamed; nothing is written to disk, so hostile names (absolute,
``..``) cannot escape, and symlinks are recorded as their target text, never
followed. Header fields are read with caps and in linear time; an expansion
budget and a member cap bound time and memory against bombs; nested archives
are read up to a depth and size. What cannot be decoded is recorded as
"could not read" (``Archive.error``, ``Member.error``), never as content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from compare.formats.ar import read_ar
from compare.formats.base import ELF_MAGIC, READ_ERRORS, Archive, Budget, Member, describe
from compare.formats.compressed import (
    compressed,
    gzip_header,
    no_header,
    open_bzip2,
    open_gzip,
    open_xz,
    open_zstd,
)
from compare.formats.tar import read_tar
from compare.formats.zip import read_zip

__all__ = ["ELF_MAGIC", "READERS", "Archive", "Budget", "Member", "read_archive", "sniff"]

MAGICS: tuple[tuple[str, int, bytes], ...] = (
    ("zip", 0, b"PK\x03\x04"),
    ("zip", 0, b"PK\x05\x06"),
    ("ar", 0, b"!<arch>\n"),
    ("gzip", 0, b"\x1f\x8b"),
    ("xz", 0, b"\xfd7zXZ\x00"),
    ("bzip2", 0, b"BZh"),
    ("zstd", 0, b"\x28\xb5\x2f\xfd"),
    ("tar", 257, b"ustar"),
)

READERS: dict[str, Callable[[IO[bytes], Archive, Budget, int], None]] = {
    "zip": read_zip,
    "ar": read_ar,
    "gzip": compressed(open_gzip, gzip_header),
    "xz": compressed(open_xz, no_header),
    "bzip2": compressed(open_bzip2, no_header),
    "zstd": compressed(open_zstd, no_header),
    "tar": read_tar,
}


def sniff(head: bytes) -> str | None:
    for name, offset, magic in MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def read_archive(data: IO[bytes], budget: Budget, depth: int = 0) -> Archive | None:
    """Members of the archive in ``data`` (seekable), or None when it is not an archive.

    Never raises for what the bytes hold: a reader that cannot go on leaves ``Archive.error``.
    """
    head = data.read(512)
    data.seek(0)
    kind = sniff(head)
    if kind is None:
        return None
    archive = Archive(kind, [])
    try:
        READERS[kind](data, archive, budget, depth)
    except READ_ERRORS as e:
        archive.fail(describe(e), f"{kind} archive is corrupt or truncated: {describe(e)}")
    if archive.notes_dropped:
        archive.notes.append(f"... and {archive.notes_dropped} more notes")
    return archive
