"""A compression layer (gzip, xz, bzip2, zstd): a tar inside becomes the members; else one member, '(content)'."""

from __future__ import annotations

import bz2
import io
import lzma
from collections.abc import Callable
from typing import IO, Any

from compare.formats.base import Archive, Budget, Prefixed, add_file, hash_member, read_exact
from compare.formats.gzip import GzipStream, read_header
from compare.formats.tar import read_tar

Opener = Callable[[IO[bytes], Archive, Budget], IO[bytes]]
Header = Callable[[IO[bytes], Budget], dict[str, Any]]
Reader = Callable[[IO[bytes], Archive, Budget, int], None]


def compressed(opener: Opener, header: Header) -> Reader:
    """A reader for one compression layer.

    A stream that breaks before its first 512 bytes raises (the archive is unreadable); one that breaks
    later makes the member being read unreadable.
    """

    def read(data: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
        archive.meta.update(header(data, budget))
        data.seek(0)
        stream = opener(data, archive, budget)
        head = read_exact(stream, 512)
        rest = io.BufferedReader(Prefixed(head, stream))
        if len(head) >= 262 and head[257:262] == b"ustar":
            archive.format += "+tar"
            read_tar(rest, archive, budget, depth)
            return
        add_file(archive, "(content)", {}, hash_member(rest, budget, depth < budget.max_depth))

    return read


def gzip_header(data: IO[bytes], budget: Budget) -> dict[str, Any]:
    return read_header(data, budget.max_header_field).meta()


def no_header(data: IO[bytes], budget: Budget) -> dict[str, Any]:
    return {}


def open_gzip(data: IO[bytes], archive: Archive, budget: Budget) -> IO[bytes]:
    return io.BufferedReader(GzipStream(data, budget.max_header_field, archive.note))


def open_xz(data: IO[bytes], archive: Archive, budget: Budget) -> IO[bytes]:
    return lzma.LZMAFile(data)


def open_bzip2(data: IO[bytes], archive: Archive, budget: Budget) -> IO[bytes]:
    return bz2.BZ2File(data)


def open_zstd(data: IO[bytes], archive: Archive, budget: Budget) -> IO[bytes]:
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError as e:
        raise NotImplementedError("zstd archives need the 'zstandard' module, which is not installed") from e
    return zstandard.ZstdDecompressor().stream_reader(data)  # type: ignore[no-any-return]
