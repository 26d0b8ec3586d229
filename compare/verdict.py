"""The verdict: identical if and only if same length and same bytes. Nothing else decides it."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.digest import FileDigest, digest_file
from compare.errors import CompareError


@dataclass(frozen=True)
class FileVerdict:
    identical: bool
    a: FileDigest
    b: FileDigest

    def as_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "a": {"size": self.a.size, "sha256": self.a.sha256},
            "b": {"size": self.b.size, "sha256": self.b.sha256},
        }


def _digest(path: Path) -> FileDigest:
    try:
        if path.is_symlink() or not path.is_file():
            raise CompareError(f"{path} is not a regular file")
        return digest_file(path)
    except OSError as e:
        raise CompareError(f"{path} cannot be read: {e.strerror}") from e


def compare_files(a: Path, b: Path) -> FileVerdict:
    """Both sides hashed at once (hashlib releases the GIL), each streamed.

    Raises:
        CompareError: either side is missing or unreadable.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        fa, fb = pool.submit(_digest, a), pool.submit(_digest, b)
        da, db = fa.result(), fb.result()
    return FileVerdict(da.size == db.size and da.sha256 == db.sha256, da, db)


@dataclass(frozen=True)
class SetVerdict:
    """Two sets of files by name: which match, which differ, which are on one side only."""

    matching: tuple[str, ...]
    differing: tuple[str, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    files: dict[str, FileVerdict]

    @property
    def identical(self) -> bool:
        return not (self.differing or self.only_a or self.only_b) and bool(self.matching)

    def as_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "matching": list(self.matching),
            "differing": list(self.differing),
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
        }


def list_files(root: Path) -> dict[str, Path]:
    """Regular files under ``root`` by relative POSIX name; symlinks are not followed."""
    found = {}
    for dirpath, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(dirpath) / name
            found[path.relative_to(root).as_posix()] = path
    return found


def compare_sets(a: dict[str, Path], b: dict[str, Path]) -> SetVerdict:
    """Compare two named sets of files (directories, or outputs against published artifacts)."""
    files = {name: compare_files(a[name], b[name]) for name in sorted(set(a) & set(b))}
    return SetVerdict(
        matching=tuple(n for n, v in files.items() if v.identical),
        differing=tuple(n for n, v in files.items() if not v.identical),
        only_a=tuple(sorted(set(a) - set(b))),
        only_b=tuple(sorted(set(b) - set(a))),
        files=files,
    )
