"""The content-addressed cache: blobs named by their sha256, safe to share.

Writers stage into a private temporary file in the same directory and
``os.replace`` it into place, so concurrent runs never see a half-written
blob, and a blob is only ever stored under the digest of its own bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compare.digest import sha256_file
from rebuild.errors import DigestMismatchError


def default_cache_dir() -> Path:
    """``$REBUILD_CACHE_DIR``, else ``$XDG_CACHE_HOME/rebuild-verifier``, else ``~/.cache/...``."""
    explicit = os.environ.get("REBUILD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rebuild-verifier"


class BlobCache:
    """Blobs under ``root/blobs/sha256/<hex>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"

    def path(self, sha256: str) -> Path:
        return self.blobs / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A temporary path to write into; removed if still there afterwards."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.blobs, prefix=".incoming-")
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def commit(self, staged: Path, expected_sha256: str, what: str) -> Path:
        """Move a staged file into the cache if, and only if, its bytes match.

        Raises:
            DigestMismatchError: the staged bytes are not the expected ones.
        """
        actual = sha256_file(staged)
        if actual != expected_sha256:
            raise DigestMismatchError(
                f"{what}: sha256 is {actual}, the plan says {expected_sha256}",
                "the input changed since the provenance was written, or the provenance is wrong",
            )
        final = self.path(expected_sha256)
        os.chmod(staged, 0o644)
        os.replace(staged, final)
        return final
