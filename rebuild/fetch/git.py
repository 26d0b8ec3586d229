"""Git sources: a repository URI and a commit, fetched and checked, exported as a tarball.

The commit id is the source's digest: git checks every object it fetches
against its id, and the export is made from exactly that commit (never from a
branch or tag name). ``--git-mirror FROM=TO`` rewrites repository URLs, so a
rebuilder can use a local mirror. The export (``git archive``, prefix
``source/``) is kept in the content-addressed cache; its sha256 is recorded
in the rebuild's provenance beside the commit.

Both are bounded by the same limit (``--max-input-bytes``): the export's
size, and how much a ``git fetch`` may add to the repository. git has no
limit of its own on what a fetch brings (``receive.maxInputSize`` is for
pushes), so the repository directory is measured while git runs; over the
limit, git (its whole process group) is killed and the repository, which
may hold a partial pack, is removed. The pinned commit is fetched first
with ``--depth=1`` (its tree is all an export needs); a server that refuses
that gets the full fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from compare.digest import sha256_file
from rebuild import fields
from rebuild.errors import FetchError, InputError
from rebuild.fetch.cache import BlobCache

_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1 or SHA-256 object names
# No prompts, no system config, and only transports that cannot run a command (never ext::, fd::).
GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",
    "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file",
}
WATCH_SECONDS = 0.5  # how often a running fetch's repository is measured
MAX_STDERR = 64 << 10


def split_uri(uri: str) -> tuple[str, str]:
    """``git+https://host/o/r@refs/tags/v1`` -> (``https://host/o/r``, ``refs/tags/v1``); the ref may be empty."""
    url = uri.removeprefix("git+")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, ""
    authority, slash, path = rest.partition("/")
    repo_path, at, ref = path.partition("@")
    return f"{scheme}://{authority}{slash}{repo_path}", ref if at else ""


def apply_mirrors(url: str, mirrors: Mapping[str, str]) -> str:
    """The URL with the longest matching ``FROM`` prefix replaced by its ``TO``."""
    for prefix in sorted(mirrors, key=len, reverse=True):
        if url.startswith(prefix):
            return mirrors[prefix] + url[len(prefix) :]
    return url


def parse_mirrors(values: list[str]) -> dict[str, str]:
    mirrors = {}
    for value in values:
        src, sep, dst = value.partition("=")
        if not sep or not src or not dst:
            raise InputError(f"--git-mirror {value!r} is not FROM=TO", "e.g. https://github.com/=file:///srv/mirror/")
        mirrors[src] = dst
    return mirrors


def check_commit(commit: str) -> str:
    if not _COMMIT.match(commit):
        raise InputError(f"git commit {commit!r} is not a full 40- or 64-hex object name")
    return commit


def _git(
    args: list[str], cwd: Path | None = None, timeout: float = 600, stdout: IO[bytes] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **GIT_ENV}
    out: IO[bytes] | int = stdout if stdout is not None else subprocess.PIPE
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, stdout=out, stderr=subprocess.PIPE, env=env, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        raise FetchError("git is not installed", "apt-get install git (setup.sh does)") from e
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"git {args[0]} timed out after {timeout:.0f} s") from e


def _size(root: Path) -> int:
    """Bytes of the regular files under ``root`` (symlinks not followed; files git renames meanwhile skipped)."""
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            total += info.st_size
    return total


def _fetch(
    args: list[str], repo: Path, url: str, max_bytes: int, timeout: float = 600
) -> subprocess.CompletedProcess[bytes]:
    """``git fetch ARGS`` in ``repo``, stopped when the repository grows by more than ``max_bytes``.

    Raises:
        FetchError: over the limit (the repository is removed), timed out, or git is not installed.
    """
    before = _size(repo)
    env = {**os.environ, **GIT_ENV}
    deadline = time.monotonic() + timeout
    grown = 0
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: git never blocks on a full one
        try:
            proc = subprocess.Popen(
                ["git", "fetch", *args], cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env=env, start_new_session=True,  # its own process group: index-pack and the transport go too
            )  # fmt: skip
        except FileNotFoundError as e:
            raise FetchError("git is not installed", "apt-get install git (setup.sh does)") from e
        try:
            while True:
                try:
                    proc.wait(timeout=WATCH_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    grown = _size(repo) - before
                    if grown > max_bytes or time.monotonic() > deadline:
                        break
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it may have ended just now
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        grown = max(grown, _size(repo) - before)  # also when git ended before it was measured
        if grown > max_bytes:
            shutil.rmtree(repo, ignore_errors=True)
            raise FetchError(
                f"git fetch of {url} brought more than the limit of {max_bytes} bytes; stopped, and the partial "
                "repository removed",
                "raise --max-input-bytes if the repository is really that large",
            )
        if time.monotonic() > deadline and proc.returncode != 0:
            raise FetchError(f"git fetch timed out after {timeout:.0f} s")
        err.seek(0)
        stderr = err.read(MAX_STDERR)
    return subprocess.CompletedProcess(["git", "fetch", *args], proc.returncode, b"", stderr)


def _has_commit(repo: Path, commit: str) -> bool:
    proc = _git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=repo)
    return proc.returncode == 0 and proc.stdout.decode().strip() == commit


def export_commit(
    uri: str,
    commit: str,
    git_root: Path,
    mirrors: Mapping[str, str],
    progress: Callable[[str, str], None] = lambda s, m: None,
    max_bytes: int = 2 << 30,
) -> tuple[Path, str]:
    """The cached tarball of the tree at ``commit``, and its sha256.

    Raises:
        FetchError: the repository cannot be reached, or does not hold the commit (exit 3).
    """
    check_commit(commit)
    url, _ref = split_uri(uri)
    url = fields.git_repository(apply_mirrors(url, mirrors))  # a document's URL reaches git's command line
    repo = git_root / hashlib.sha256(url.encode()).hexdigest()[:32]
    if not (repo / "HEAD").is_file():
        repo.mkdir(parents=True, exist_ok=True)
        _git(["init", "--quiet", "--bare", "--", str(repo)])
    if not _has_commit(repo, commit):
        progress("fetch", f"git fetch {url} {commit[:12]}")
        by_id = _fetch(["--quiet", "--no-tags", "--depth=1", "--", url, commit], repo, url, max_bytes)
        if by_id.returncode != 0 or not _has_commit(repo, commit):
            every = _fetch(["--quiet", "--no-tags", "--", url, "+refs/*:refs/rebuild/*"], repo, url, max_bytes)
            if every.returncode != 0:
                reason = (every.stderr or by_id.stderr).decode(errors="replace").strip().splitlines()
                raise FetchError(
                    f"cannot fetch git repository {url}: {reason[-1] if reason else 'git failed'}",
                    "is it reachable? --git-mirror FROM=TO points at a mirror",
                )
            if not _has_commit(repo, commit):
                raise FetchError(f"git repository {url} has no commit {commit}", "the provenance names another commit")
    cache = BlobCache(git_root.parent)
    with cache.staging() as staged:
        with open(staged, "wb") as out:
            archive = _git(["archive", "--format=tar", "--prefix=source/", commit], cwd=repo, stdout=out)
        if archive.returncode != 0:
            raise FetchError(f"git archive of {commit[:12]} failed: {archive.stderr.decode(errors='replace').strip()}")
        if staged.stat().st_size > max_bytes:
            raise FetchError(
                f"the source tree at {commit[:12]} is larger than the limit of {max_bytes} bytes",
                "raise --max-input-bytes if the source is really that large",
            )
        sha = sha256_file(staged)
        return cache.commit(staged, sha, f"git export of {commit[:12]}"), sha
