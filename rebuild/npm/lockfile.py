"""npm's ``package-lock.json`` (and ``npm-shrinkwrap.json``), lockfile versions 2 and 3, read as hostile input.

A lockfile is how an npm package pins what its build installs: each entry of
``packages`` names a tarball (``resolved``) and its bytes (``integrity``, a
Subresource Integrity string). It comes from the source under rebuild, so it
is data written by someone else: every entry is checked here before anything
is fetched. Only tarballs on the npm registry, over https, pinned by sha512,
are accepted; git, ``file:``, link and directory dependencies that lead
outside the source are refused by name (the rebuild could not pin them), and
so is an entry with no integrity or only a sha1 one. Sizes, counts and nesting
are capped. Entries bundled inside another tarball (``inBundle``) come with
their parent and are not fetched; links to directories inside the source
(workspaces) need nothing fetched.

A key is a package entry when it has a ``node_modules`` segment, at its start
(``node_modules/a/node_modules/b``) or after a directory of the source
(``packages/w/node_modules/b``, a workspace's own dependencies): all of them
are checked and fetched alike. A key without one is a directory of the
source, and must be one the root's ``workspaces`` globs name or a link
points at (a ``file:`` directory dependency); anything else is refused.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rebuild.errors import InputError
from rebuild.npm.workspaces import Directories
from rebuild.untrusted import load_json, printable

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
LOCKFILE_NAMES = ("npm-shrinkwrap.json", "package-lock.json")  # npm prefers the shrinkwrap when both exist
MAX_LOCKFILE_BYTES = 32 << 20  # the lockfiles of large monorepos are a few MiB
MAX_ENTRIES = 20_000
MAX_NESTING = 32  # node_modules/a/node_modules/b/...: real trees nest a handful deep
MAX_KEY = 1024
# npm's package name rules (validate-npm-package-name): lowercase for new packages, but old ones keep capitals
_NAME = r"(?:@[a-z0-9][a-z0-9._~-]{0,213}/)?[A-Za-z0-9][A-Za-z0-9._~-]{0,213}"
NAME = re.compile(rf"^{_NAME}$")
SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_KEY = re.compile(rf"^node_modules/{_NAME}(?:/node_modules/{_NAME})*$")  # after the directory it is under
_LOCAL = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9._@+~-]*(/[A-Za-z0-9_@][A-Za-z0-9._@+~-]*)*$")
_TARBALL_PATH = re.compile(rf"^/(?P<name>{_NAME})/-/(?P<file>[A-Za-z0-9][A-Za-z0-9._~+-]{{0,255}}\.tgz)$")
_SRI_SHA512 = re.compile(r"^sha512-([A-Za-z0-9+/]{86}==)(\?[\x21-\x7e]*)?$")


@dataclass(frozen=True)
class LockedTarball:
    """One registry tarball a lockfile pins: where it is and the sha512 of its bytes."""

    path: str  # the entry's key in ``packages`` (node_modules/a/node_modules/b)
    name: str
    version: str
    url: str
    sha512: str  # lowercase hex
    url_inferred: bool = False  # the entry had no ``resolved`` (npm's omit-lockfile-registry-resolved)

    @property
    def label(self) -> str:
        return f"{self.path} ({self.name}@{self.version})"

    @property
    def integrity(self) -> str:
        return "sha512-" + base64.b64encode(bytes.fromhex(self.sha512)).decode()

    @property
    def filename(self) -> str:
        """A file name unique per tarball (two scopes may publish the same base name)."""
        return f"{self.sha512[:16]}-{self.url.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class Lockfile:
    name: str  # the file it was read from (package-lock.json or npm-shrinkwrap.json)
    version: int
    tarballs: tuple[LockedTarball, ...]  # each tarball once, in key order
    local: tuple[str, ...]  # entries inside the source (workspaces, links): nothing to fetch


def _refuse(where: str, problem: str) -> InputError:
    return InputError(
        f"{where}: {problem}",
        "only registry tarballs pinned by sha512 can be rebuilt offline; the lockfile is data from the source",
    )


def parse_lockfile(data: bytes, what: str = "package-lock.json", registry: str = DEFAULT_REGISTRY) -> Lockfile:
    """Every tarball a lockfile v2/v3 pins, checked.

    Raises:
        InputError: (exit 2) the lockfile is not JSON, too big, of another version, or an entry is refused;
            the message names the entry.
    """
    if len(data) > MAX_LOCKFILE_BYTES:
        raise _refuse(what, f"{len(data)} bytes is more than the limit of {MAX_LOCKFILE_BYTES}")
    doc = load_json(data, what, max_bytes=MAX_LOCKFILE_BYTES)
    if not isinstance(doc, dict):
        raise _refuse(what, "it is not a JSON object")
    version = doc.get("lockfileVersion")
    if type(version) is not int or version not in (2, 3):  # not 3.0, not true
        raise _refuse(
            what, f"lockfileVersion {printable(repr(version), 40)} is not 2 or 3 (npm 7 and later write those)"
        )
    packages = doc.get("packages")
    if not isinstance(packages, dict):
        raise _refuse(what, "it has no 'packages' object")
    if len(packages) > MAX_ENTRIES:
        raise _refuse(what, f"{len(packages)} entries in 'packages' is more than the limit of {MAX_ENTRIES}")
    link_targets = set()  # each is checked as a path inside the source with its link below
    for entry in packages.values():
        target = entry.get("resolved") if isinstance(entry, dict) and entry.get("link") is True else None
        if isinstance(target, str):
            link_targets.add(target.removeprefix("file:"))
    directories = Directories(packages.get(""), link_targets, f"{what}: packages['']")

    def directory(path: str, where: str) -> None:
        """A directory of the source the lockfile may describe: a workspace, or a link's target."""
        _check_local_path(path, where)
        if not directories.named(path, where):
            raise _refuse(
                where,
                f"directory {printable(path, 200)} is neither a workspace the root's 'workspaces' names "
                "nor the target of a link",
            )

    tarballs: dict[str, LockedTarball] = {}
    local = []
    for key, entry in sorted(packages.items()):
        where = f"{what}: packages[{printable(repr(key), 200)}]"
        if not isinstance(entry, dict):
            raise _refuse(where, "the entry is not an object")
        if key == "":
            continue  # the package itself
        if not isinstance(key, str) or len(key) > MAX_KEY:
            raise _refuse(where, "the key is too long")
        segments = key.split("/")
        if "node_modules" not in segments:
            directory(key, where)  # a workspace or a directory dependency inside the source
            local.append(key)
            continue
        at = segments.index("node_modules")  # a package entry, at the top or under a directory of the source
        under, installed = "/".join(segments[:at]), "/".join(segments[at:])
        if under:
            directory(under, where)
        if not _KEY.match(installed) or ".." in segments or installed.count("/node_modules/") >= MAX_NESTING:
            raise _refuse(where, "the key is not [DIR/]node_modules/NAME[/node_modules/NAME...] of npm package names")
        locked = _entry(key, entry, where, registry)
        if locked is None:
            local.append(key)
        else:
            tarballs.setdefault(locked.sha512, locked)
    return Lockfile(what, version, tuple(tarballs.values()), tuple(local))


def _check_local_path(path: str, where: str) -> None:
    """A path inside the source: relative, normalised, no ``..`` (``file:../outside`` is refused here)."""
    if (
        not _LOCAL.match(path)
        or posixpath.normpath(path) != path
        or ".." in path.split("/")
        or path.count("/") >= MAX_NESTING * 2
    ):
        raise _refuse(where, "it is a directory or link outside the source (only paths inside it are allowed)")


def _entry(key: str, entry: dict[str, Any], where: str, registry: str) -> LockedTarball | None:
    """The tarball one ``node_modules/...`` entry pins, or None when there is nothing to fetch."""
    resolved = entry.get("resolved")
    if resolved is not None and not isinstance(resolved, str):
        raise _refuse(where, "'resolved' is not text")
    if entry.get("link") is True:
        if not isinstance(resolved, str):
            raise _refuse(where, "a link with no 'resolved' target")
        _check_local_path(resolved.removeprefix("file:"), f"{where} link to {printable(repr(resolved), 200)}")
        return None
    if entry.get("inBundle") is True and resolved is None and "integrity" not in entry:
        return None  # inside its parent's tarball, which is pinned
    if isinstance(resolved, str) and _is_git(resolved):
        raise _refuse(where, f"git dependency {printable(resolved, 200)} is not allowed (not pinned by an integrity)")
    if isinstance(resolved, str) and not resolved.startswith("https://"):
        raise _refuse(where, f"'resolved' {printable(resolved, 200)} is not an https URL on {registry}")
    name = entry.get("name", key.rsplit("node_modules/", 1)[-1])  # an alias names the real package
    version = entry.get("version")
    if not isinstance(name, str) or not NAME.match(name):
        raise _refuse(where, f"package name {printable(repr(name), 200)} is not an npm package name")
    if not isinstance(version, str) or not SEMVER.match(version):
        raise _refuse(where, f"version {printable(repr(version), 100)} is not an exact semver version")
    sha512 = _sha512_of(entry.get("integrity"), where)
    inferred = resolved is None
    url = resolved if isinstance(resolved, str) else _registry_url(registry, name, version)
    _check_registry_url(url, name, registry, where)
    return LockedTarball(key, name, version, url, sha512, inferred)


def _is_git(resolved: str) -> bool:
    return resolved.startswith(("git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:")) or resolved.endswith(
        ".git"
    )


def _sha512_of(integrity: object, where: str) -> str:
    """The sha512 of a Subresource Integrity string (of one or more hashes); the other algorithms are ignored."""
    if integrity is None:
        raise _refuse(where, "the entry has no 'integrity' (its bytes are not pinned)")
    if not isinstance(integrity, str) or len(integrity) > 1024:
        raise _refuse(where, "'integrity' is not a Subresource Integrity string")
    for token in integrity.split():
        match = _SRI_SHA512.match(token)
        if match:
            try:
                digest = base64.b64decode(match.group(1), validate=True)
            except binascii.Error as e:
                raise _refuse(where, "its sha512 integrity is not base64") from e
            if len(digest) == 64:
                return digest.hex()
    algorithms = sorted({t.split("-", 1)[0] for t in integrity.split()})
    raise _refuse(
        where,
        f"'integrity' has no sha512 (only {printable(', '.join(algorithms) or 'nothing', 100)}): "
        "sha1 is too weak to pin a tarball",
    )


def _registry_url(registry: str, name: str, version: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return f"{registry.rstrip('/')}/{name}/-/{base}-{version}.tgz"


def _check_registry_url(url: str, name: str, registry: str, where: str) -> None:
    """An https URL on the registry whose path is ``/NAME/-/FILE.tgz`` for the entry's own package."""
    parsed, want = urlparse(url), urlparse(registry)
    if (
        parsed.scheme != "https"
        or parsed.hostname != want.hostname
        or parsed.port != want.port
        or parsed.username
        or parsed.password
        or parsed.query
        or parsed.fragment
    ):
        raise _refuse(where, f"'resolved' {printable(url, 200)} is not an https URL on {registry}")
    path = parsed.path
    prefix = want.path.rstrip("/")
    if not path.startswith(prefix + "/"):
        raise _refuse(where, f"'resolved' {printable(url, 200)} is not under {registry}")
    match = _TARBALL_PATH.match(path[len(prefix) :].replace("%2f", "/").replace("%2F", "/"))
    if not match or match.group("name") != name:
        raise _refuse(where, f"'resolved' {printable(url, 200)} is not the registry tarball of {name}")


def lockfile_from_source_tar(tarball: Path, prefix: str = "source/") -> Lockfile | None:
    """The lockfile at the top of an exported source tree (``git archive --prefix=source/``), or None.

    Raises:
        InputError: the lockfile is refused (see ``parse_lockfile``).
    """
    try:
        with tarfile.open(tarball) as tf:
            found = {m.name: m for m in tf.getmembers() if m.name in {prefix + n for n in LOCKFILE_NAMES}}
            for name in LOCKFILE_NAMES:
                member = found.get(prefix + name)
                if member is None:
                    continue
                if not member.isfile():
                    raise _refuse(name, "it is not a regular file in the source (a link?)")
                if member.size > MAX_LOCKFILE_BYTES:
                    raise _refuse(name, f"{member.size} bytes is more than the limit of {MAX_LOCKFILE_BYTES}")
                handle = tf.extractfile(member)
                data = handle.read(MAX_LOCKFILE_BYTES + 1) if handle else b""
                return parse_lockfile(data, name)
    except (tarfile.TarError, OSError) as e:
        raise InputError(f"{tarball}: cannot read the source tree: {e}") from e
    return None


def lockfile_from_tree(tree: Path) -> Lockfile | None:
    """The lockfile at the top of a source directory (``rebuild build``), or None.

    Raises:
        InputError: the lockfile is a link or is refused (see ``parse_lockfile``).
    """
    for name in LOCKFILE_NAMES:
        path = tree / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise _refuse(name, "it is not a regular file in the source (a link?)")
        if path.is_file():
            try:
                with open(path, "rb") as f:
                    data = f.read(MAX_LOCKFILE_BYTES + 1)
            except OSError as e:
                raise InputError(f"{path}: {e.strerror}") from e
            return parse_lockfile(data, name)
    return None
