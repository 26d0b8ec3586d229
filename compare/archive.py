"""Reading release archives into members, without external tools and without extracting.

Formats, detected by magic bytes (most specific first): zip (wheels, jars),
ar (.deb), gzip / xz / bzip2 / zstd (a tar inside, or a single file), and
tar. Each member is hashed while streamed; nothing is written to disk, so
hostile names (absolute, ``..``) cannot escape, and symlinks are recorded as
their target text, never followed. An expansion budget bounds time and
memory against bombs; nested archives are read up to a depth and size.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

CHUNK = 1 << 20


@dataclass
class Budget:
    """How much reading one explanation may do."""

    max_depth: int = 3
    max_expanded_bytes: int = 8 << 30  # over all members, all depths
    max_nested_bytes: int = 256 << 20  # an inner archive is held in memory up to this size
    max_members: int = 500_000
    expanded: int = 0

    def take(self, n: int) -> bool:
        self.expanded += n
        return self.expanded <= self.max_expanded_bytes


@dataclass
class Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, other
    size: int | None
    sha256: str | None  # None when not read (over budget, or unreadable)
    meta: dict[str, Any] = field(default_factory=dict)
    nested: bytes | None = None  # the bytes of an inner archive (to recurse into) or of a small member


@dataclass
class Archive:
    format: str
    members: list[Member]
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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


def sniff(head: bytes) -> str | None:
    for name, offset, magic in MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _suspicious(name: str) -> str | None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts:
        return f"member {name!r} has an absolute or '..' path (not extracted; compared by name only)"
    return None


def _hash_stream(
    f: IO[bytes], budget: Budget, keep: bool, limit_note: Callable[[], None]
) -> tuple[int, str | None, bytes | None]:
    """Hash a member's stream; keep its bytes when asked and small enough."""
    h = hashlib.sha256()
    size = 0
    kept: list[bytes] | None = [] if keep else None
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        if size == 0 and kept is None and chunk.startswith(ELF_MAGIC):
            kept = []  # an executable: kept, to tell a build-id difference from a code difference
        size += len(chunk)
        if not budget.take(len(chunk)):
            limit_note()
            return size, None, None
        h.update(chunk)
        if kept is not None:
            if size > budget.max_nested_bytes:
                kept = None
            else:
                kept.append(chunk)
    return size, h.hexdigest(), b"".join(kept) if kept is not None else None


ELF_MAGIC = b"\x7fELF"
SMALL_MEMBER = 64 << 10  # members up to this size are kept, so a text difference can be quoted


def _might_nest(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith((".zip", ".whl", ".jar", ".tar", ".tgz", ".gz", ".xz", ".bz2", ".zst", ".deb", ".egg"))


def read_archive(data: IO[bytes], budget: Budget, depth: int = 0) -> Archive | None:
    """Members of the archive in ``data`` (seekable), or None when it is not an archive."""
    head = data.read(512)
    data.seek(0)
    kind = sniff(head)
    if kind is None:
        return None
    reader = READERS[kind]
    archive = Archive(kind, [])
    try:
        reader(data, archive, budget, depth)
    except (
        zipfile.BadZipFile,
        tarfile.TarError,
        EOFError,
        OSError,
        zlib.error,
        lzma.LZMAError,
        ValueError,
        struct.error,
        NotImplementedError,
    ) as e:
        archive.notes.append(f"{kind} archive is corrupt or truncated: {type(e).__name__}: {e}")
    if len(archive.members) > budget.max_members:
        archive.notes.append(f"more than {budget.max_members} members; the rest were not read")
        del archive.members[budget.max_members :]
    return archive


def _over_budget(archive: Archive, name: str) -> Callable[[], None]:
    return lambda: archive.notes.append(f"member {name!r} exceeds the expansion limit; its content was not compared")


def _read_zip(data: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
    with zipfile.ZipFile(data) as zf:
        archive.meta["comment"] = zf.comment.hex()
        for info in zf.infolist():
            if (note := _suspicious(info.filename)) is not None:
                archive.notes.append(note)
            meta = {
                "mtime": info.date_time,
                "mode": (info.external_attr >> 16) & 0o7777,
                "compression": (info.compress_type, info.compress_size, info.flag_bits & 0x6),
                "zip-metadata": (
                    info.extra.hex(),
                    info.create_system,
                    info.create_version,
                    info.extract_version,
                    info.comment.hex(),
                    info.internal_attr,
                    info.external_attr & 0xFFFF,
                ),
            }
            if info.is_dir():
                archive.members.append(Member(info.filename, "dir", None, None, meta))
                continue
            if budget.expanded + info.file_size > budget.max_expanded_bytes:
                archive.notes.append(
                    f"member {info.filename!r} declares {info.file_size} bytes, over the expansion limit "
                    "(a zip bomb?); its content was not compared"
                )
                archive.members.append(Member(info.filename, "file", info.file_size, None, meta))
                continue
            with zf.open(info) as f:
                size, digest, kept = _hash_stream(
                    f,
                    budget,
                    (_might_nest(info.filename) and depth < budget.max_depth) or info.file_size <= SMALL_MEMBER,
                    _over_budget(archive, info.filename),
                )
            archive.members.append(Member(info.filename, "file", size, digest, meta, kept))


def _read_tar_stream(stream: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        archive.meta["tar-format"] = tar.format if hasattr(tar, "format") else None
        for info in tar:
            if (note := _suspicious(info.name)) is not None:
                archive.notes.append(note)
            meta = {
                "mtime": info.mtime,
                "mode": info.mode,
                "ownership": (info.uid, info.gid, info.uname, info.gname),
                "pax": tuple(
                    sorted(
                        (k, v)
                        for k, v in info.pax_headers.items()
                        if k not in ("path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname")
                    )
                ),
            }
            if info.isreg():
                f = tar.extractfile(info)
                assert f is not None
                keep = (_might_nest(info.name) and depth < budget.max_depth) or info.size <= SMALL_MEMBER
                size, digest, kept = _hash_stream(f, budget, keep, _over_budget(archive, info.name))
                archive.members.append(Member(info.name, "file", size, digest, meta, kept))
            elif info.isdir():
                archive.members.append(Member(info.name, "dir", None, None, meta))
            elif info.issym() or info.islnk():
                kind = "symlink" if info.issym() else "hardlink"
                target = hashlib.sha256(info.linkname.encode()).hexdigest()
                archive.members.append(Member(info.name, kind, None, target, {**meta, "target": info.linkname}))
            else:
                archive.members.append(
                    Member(info.name, "other", None, f"{info.type!r}:{info.devmajor}:{info.devminor}", meta)
                )


def _read_compressed(
    opener: Callable[[IO[bytes]], IO[bytes]], header: Callable[[IO[bytes]], dict[str, Any]]
) -> Callable[[IO[bytes], Archive, Budget, int], None]:
    """A reader for a compression layer: a tar inside becomes the members; else one member, 'content'."""

    def read(data: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
        archive.meta.update(header(data))
        data.seek(0)
        stream = opener(data)
        head = stream.read(512)
        if len(head) >= 262 and head[257:262] == b"ustar":
            archive.format += "+tar"
            _read_tar_stream(io.BufferedReader(_Prefixed(head, stream)), archive, budget, depth)
            return
        rest = io.BufferedReader(_Prefixed(head, stream))
        size, digest, kept = _hash_stream(rest, budget, depth < budget.max_depth, _over_budget(archive, "(content)"))
        archive.members.append(Member("(content)", "file", size, digest, {}, kept))

    return read


class _Prefixed(io.RawIOBase):
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


def _gzip_header(data: IO[bytes]) -> dict[str, Any]:
    raw = data.read(10)
    if len(raw) < 10:
        raise EOFError("gzip header is truncated")
    flags, mtime, xfl, os_ = raw[3], struct.unpack("<I", raw[4:8])[0], raw[8], raw[9]
    name = b""
    if flags & 0x04:  # FEXTRA
        (xlen,) = struct.unpack("<H", data.read(2))
        data.read(xlen)
    if flags & 0x08:  # FNAME
        while (c := data.read(1)) not in (b"\x00", b""):
            name += c
    return {"gzip-mtime": mtime, "gzip-header": (name.decode("latin-1"), os_, flags & ~0x08), "gzip-level": xfl}


def _no_header(data: IO[bytes]) -> dict[str, Any]:
    return {}


def _zstd_open(data: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError as e:
        raise NotImplementedError("zstd archives need the 'zstandard' module, which is not installed") from e
    return zstandard.ZstdDecompressor().stream_reader(data)  # type: ignore[no-any-return]


def _read_ar(data: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
    data.read(8)
    while True:
        header = data.read(60)
        if not header:
            return
        if len(header) < 60 or header[58:60] != b"`\n":
            raise EOFError("ar member header is truncated or corrupt")
        name = header[0:16].decode("latin-1").rstrip()
        if name.endswith("/") and name != "/":
            name = name[:-1]
        size = int(header[48:58].decode().strip() or 0)
        meta = {
            "mtime": int(header[16:28].decode().strip() or 0),
            "ownership": (header[28:34].decode().strip(), header[34:40].decode().strip()),
            "mode": header[40:48].decode().strip(),
        }
        content = io.BufferedReader(_Limited(data, size))
        got, digest, kept = _hash_stream(content, budget, depth < budget.max_depth, _over_budget(archive, name))
        if got < size:
            raise EOFError(f"ar member {name!r} is truncated ({got} of {size} bytes)")
        archive.members.append(Member(name, "file", size, digest, meta, kept))
        if size % 2:
            data.read(1)


class _Limited(io.RawIOBase):
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


READERS: dict[str, Callable[[IO[bytes], Archive, Budget, int], None]] = {
    "zip": _read_zip,
    "ar": _read_ar,
    "gzip": _read_compressed(lambda d: gzip.GzipFile(fileobj=d, mode="rb"), _gzip_header),  # type: ignore[arg-type,return-value]
    "xz": _read_compressed(lambda d: lzma.LZMAFile(d), _no_header),  # noqa: SIM115 - closed with the archive
    "bzip2": _read_compressed(lambda d: bz2.BZ2File(d), _no_header),
    "zstd": _read_compressed(_zstd_open, _no_header),
    "tar": _read_tar_stream,
}
