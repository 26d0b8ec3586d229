"""Streamed digests: several algorithms in one pass, memory independent of size."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ALGORITHMS = ("sha256", "sha384", "sha512")
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40, "gitCommit": 40}
_HEX = re.compile(r"^[0-9a-f]+$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    """The identity of a file's bytes: its length and its digests."""

    size: int
    digests: dict[str, str]

    @property
    def sha256(self) -> str:
        return self.digests["sha256"]


def is_valid_hex(algorithm: str, value: str) -> bool:
    """True when ``value`` is lowercase hex of the right length for ``algorithm``."""
    expected = _HEX_LENGTH.get(algorithm)
    return expected is not None and len(value) == expected and bool(_HEX.match(value))


def digest_file(path: str | os.PathLike[str], algorithms: Iterable[str] = ("sha256",)) -> FileDigest:
    """Hash a file once, feeding every requested algorithm from the same chunks.

    Raises:
        OSError: the file cannot be read (callers wrap it at their boundary).
    """
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            size += n
            for h in hashers.values():
                h.update(view[:n])
    return FileDigest(size=size, digests={name: h.hexdigest() for name, h in hashers.items()})


def sha256_file(path: str | os.PathLike[str]) -> str:
    return digest_file(path).sha256


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_tree(root: Path) -> str:
    """A digest of a directory: paths, kinds, modes and file contents, in sorted order.

    Symlinks are hashed as their target text, never followed.
    """
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            h.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_dir():
            h.update(f"D {rel}\n".encode())
        elif path.is_file():
            h.update(f"F {rel} {st.st_mode & 0o111:o} {sha256_file(path)}\n".encode())
    return h.hexdigest()
