"""Turning a source tree into a source artifact with a digest, and reading its build settings.

A tree is packed into a deterministic tarball: sorted names, numeric owner
0, mode 0644/0755, every mtime set to ``SOURCE_DATE_EPOCH``, no ``.git``.
The tarball's sha256 is the source digest a plan records; the tarball is
published beside the release, so a rebuilder fetches exactly those bytes.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rebuild.errors import InputError

EXCLUDED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", ".tox", ".mypy_cache", ".pytest_cache"}
SETTINGS_FILE = "rebuild.toml"


@dataclass(frozen=True)
class TreeSettings:
    """What a project says about its own build in ``rebuild.toml`` ([build] table)."""

    recipe: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    source_date_epoch: int | None = None


def read_settings(tree: Path) -> TreeSettings:
    path = tree / SETTINGS_FILE
    if not path.is_file():
        return TreeSettings()
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"{path}: {e}") from e
    build = doc.get("build", {})
    if not isinstance(build, dict):
        raise InputError(f"{path}: [build] is not a table")
    params = build.get("parameters", {})
    epoch = build.get("source_date_epoch")
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise InputError(f"{path}: build.parameters must map names to strings")
    if epoch is not None and not isinstance(epoch, int):
        raise InputError(f"{path}: build.source_date_epoch must be an integer")
    recipe = build.get("recipe")
    return TreeSettings(recipe if isinstance(recipe, str) else None, dict(params), epoch)


def default_epoch(tree: Path) -> tuple[int, str]:
    """SOURCE_DATE_EPOCH for a tree that does not set one, and where it came from."""
    try:
        out = subprocess.run(
            ["git", "-C", str(tree), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip().isdigit():
            return int(out.stdout.strip()), "the last git commit's time"
    except (OSError, subprocess.TimeoutExpired):
        pass
    newest = max((int(p.stat().st_mtime) for p in _walk(tree)), default=0)
    return newest, "the newest file modification time in the tree"


def _walk(tree: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for name in sorted(filenames):
            found.append(Path(dirpath) / name)
        for name in dirnames:
            found.append(Path(dirpath) / name)
    return found


def pack_tree(tree: Path, epoch: int, exclude: tuple[Path, ...] = ()) -> bytes:
    """A deterministic tarball of ``tree`` (same files and modes give the same bytes)."""
    if not tree.is_dir():
        raise InputError(f"source {tree} is not a directory")
    excluded = {p.resolve() for p in exclude}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(_walk(tree), key=lambda p: p.relative_to(tree).as_posix()):
            if path.resolve() in excluded or any(parent.resolve() in excluded for parent in path.parents):
                continue
            rel = path.relative_to(tree).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            st = path.lstat()
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                tar.addfile(info)
            elif path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif path.is_file():
                info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o111 else 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return buf.getvalue()
