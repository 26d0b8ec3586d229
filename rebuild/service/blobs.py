"""A content-addressed blob directory: logs, reports, statements and rebuilt files, by sha256.

Rows in the store name blobs; blobs are never rows. A blob is written once, atomically (a temporary
file renamed into place), so readers never see part of one and many workers may share the directory
(a network mount on many machines).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from compare.digest import sha256_file
from rebuild.errors import InputError

_HEX = frozenset("0123456789abcdef")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Raises: InputError: not a sha256."""
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise InputError(f"{sha256!r} is not a sha256 blob name")
        return self.root / "sha256" / sha256[:2] / sha256

    def put_file(self, source: Path) -> str:
        digest = sha256_file(source)
        dest = self.path(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        dest = self.path(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
        return digest

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name.

        Raises:
            InputError: missing, or its bytes are not its name (the directory was altered).
        """
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError as e:
            raise InputError(f"blob {sha256} is missing from {self.root}") from e
        if hashlib.sha256(data).hexdigest() != sha256:
            raise InputError(f"blob {sha256} in {self.root} is not what its name says (altered?)")
        return data
