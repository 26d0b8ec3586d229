"""A sandbox that applies variations to every request it runs, and the reordered source archive.

``VariedSandbox`` is a ``Sandbox``: ``run_plan`` runs a varied build exactly as it runs any other
(fetch by digest, the plan's image, the hardened container), and the variations are applied at the
last moment, to the request, by ``variations.vary_request``.

``file-order`` rewrites the source archive with its members in reverse order (each directory still
before what it holds): the recipe unpacks it as usual, the files are created in the other order, and
on the build's tmpfs readdir returns them in the other order too. The bytes of the files, their
names, modes and times are unchanged; only the archive's own bytes differ, so a build that hashes
its source archive differs under it as well.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rebuild.build.sandbox import BuildRequest, BuildResult, Mount, Sandbox
from rebuild.check.variations import Tools, vary_request
from rebuild.errors import SandboxError

SOURCE_MOUNT = "/inputs/source"
_COMPRESSION = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


class VariedSandbox:
    def __init__(self, inner: Sandbox, names: Iterable[str], tools: Tools) -> None:
        self.inner = inner
        self.names = frozenset(names)
        self.tools = tools

    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        varied = vary_request(request, self.names, self.tools)
        if "file-order" not in self.names:
            return self.inner.run(varied, out_dir)
        with tempfile.TemporaryDirectory(prefix="rebuild-check-order-") as tmp:
            return self.inner.run(reorder_source(varied, Path(tmp)), out_dir)


def reorder_source(request: BuildRequest, work: Path) -> BuildRequest:
    """The request with its source directory replaced by one whose tar archives are reversed.

    Raises:
        SandboxError: there is no source mount, or no tar archive in it.
    """
    mount = next((m for m in request.inputs if m.target == SOURCE_MOUNT), None)
    if mount is None:
        raise SandboxError("file-order: the build has no source to reorder")
    dest = work / "source"
    dest.mkdir()
    reordered = 0
    for entry in sorted(mount.source.iterdir()):
        if entry.is_file() and not entry.is_symlink() and _is_tar(entry):
            reverse_archive(entry, dest / entry.name)
            reordered += 1
        else:
            _link(entry, dest / entry.name)
    if not reordered:
        raise SandboxError("file-order: the source is not a tar archive")
    inputs = tuple(Mount(dest, m.target) if m is mount else m for m in request.inputs)
    return dataclasses.replace(request, inputs=inputs)


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


_Tree = dict[str, "_Tree"]


def reversed_order(names: list[str]) -> list[int]:
    """Indexes of tar members in reverse name order at every level, each directory before its content.

    A name that appears twice keeps its occurrences in order (``reverse_archive`` puts hard links last,
    so their targets are always there first).
    """
    tree: _Tree = {}
    at: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        node = tree
        for part in name.strip("/").split("/"):
            node = node.setdefault(part, {})
        at.setdefault(name.strip("/"), []).append(i)
    order: list[int] = []

    def visit(node: _Tree, prefix: str) -> None:
        for part in sorted(node, reverse=True):
            path = prefix + part
            order.extend(at.get(path, []))
            visit(node[part], path + "/")

    visit(tree, "")
    return order


def reverse_archive(src: Path, dest: Path) -> None:
    """Copy a tar archive (plain or gzip, bzip2, xz) with its members in ``reversed_order``."""
    with open(src, "rb") as f:
        head = f.read(8)
    mode = next((f"w:{kind}" for magic, kind in _COMPRESSION if head.startswith(magic)), "w")
    with tarfile.open(src, "r:*") as tar:
        members = tar.getmembers()
        links = [m for m in members if m.islnk()]
        others = [m for m in members if not m.islnk()]
        ordered = [others[i] for i in reversed_order([m.name for m in others])] + links
        fmt = tarfile.PAX_FORMAT if any(m.pax_headers for m in members) else tarfile.GNU_FORMAT
        with tarfile.open(dest, mode, format=fmt) as out:  # type: ignore[call-overload]
            for member in ordered:
                out.addfile(member, tar.extractfile(member) if member.isfile() else None)
