"""The npm equivalent of the wheelhouse: a lockfile's tarballs, brought through the fetch cache, checked, and
laid out as an offline npm cache for the sandbox.

``fetch_locked`` downloads each tarball a lockfile pins (capped, like every
input) and keeps it in the content-addressed cache only if its sha512 is the
lockfile's ``integrity``; a mismatch is a ``DigestMismatchError`` naming the
package (exit 1, as for any fetched input whose bytes are not the promised
ones). The plan then names each tarball by URL and sha256, so the fetch stage
checks them again like any other input and the rebuild's provenance lists
them. ``lay_out_offline_cache`` writes what ``npm ci --offline`` reads:
npm's content-addressed store (cacache ``content-v2/sha512/..``), where npm
finds a tarball by the integrity its lockfile names, and checks it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from rebuild.errors import DigestMismatchError
from rebuild.fetch.cache import BlobCache
from rebuild.fetch.fetcher import DEFAULT_MAX_BYTES, Fetcher
from rebuild.npm.lockfile import LockedTarball, Lockfile
from rebuild.plan import Inference, Input

GROUP = "npm"  # mounted at /inputs/npm/; the offline cache at /inputs/npm-cache/
CACHE_GROUP = "npm-cache"
_CHUNK = 1 << 20


def _digests(path: Path) -> tuple[str, str]:
    """(sha512, sha256) of a file, in one read."""
    h512, h256 = hashlib.sha512(), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h512.update(chunk)
            h256.update(chunk)
    return h512.hexdigest(), h256.hexdigest()


class TarballCache:
    """Registry tarballs in the project's blob cache, found again by the sha512 a lockfile names."""

    def __init__(self, cache: BlobCache, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.cache = cache
        self.fetcher = Fetcher(cache, max_bytes=max_bytes)
        self.index = cache.root / "npm" / "sha512"  # <sha512 hex> holds the sha256 of the blob

    def _cached(self, tarball: LockedTarball) -> str | None:
        try:
            sha256 = (self.index / tarball.sha512).read_text().strip()
        except OSError:
            return None
        if len(sha256) != 64 or not self.cache.has(sha256):
            return None
        sha512, actual256 = _digests(self.cache.path(sha256))  # never trust the index alone
        return sha256 if (sha512, actual256) == (tarball.sha512, sha256) else None

    def get(self, tarball: LockedTarball) -> tuple[str, bool]:
        """The sha256 of the tarball's bytes, and whether it was downloaded now.

        Raises:
            FetchError: it cannot be downloaded (exit 3).
            DigestMismatchError: its sha512 is not the lockfile's integrity (exit 1).
        """
        cached = self._cached(tarball)
        if cached:
            return cached, False
        what = f"npm package {tarball.label}"
        with self.cache.staging() as staged:
            self.fetcher.download(tarball.url, staged, what)
            sha512, sha256 = _digests(staged)
            if sha512 != tarball.sha512:
                got = LockedTarball(tarball.path, tarball.name, tarball.version, tarball.url, sha512).integrity
                raise DigestMismatchError(
                    f"{what}: {tarball.url} has integrity {got[:30]}..., the lockfile says {tarball.integrity[:30]}...",
                    "the lockfile or the registry's tarball is not what was built; nothing was rebuilt",
                )
            self.cache.commit(staged, sha256, what)
        self.index.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.index, prefix=".incoming-")
        with os.fdopen(fd, "w") as f:
            f.write(sha256 + "\n")
        os.replace(tmp, self.index / tarball.sha512)
        return sha256, True


def fetch_locked(
    lockfile: Lockfile,
    cache: BlobCache,
    progress: Callable[[str, str], None] = lambda s, m: None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[tuple[Input, ...], tuple[Inference, ...]]:
    """The plan's inputs for a lockfile's tarballs (each checked against its integrity), and what was inferred.

    Raises:
        FetchError, DigestMismatchError: see ``TarballCache.get``.
    """
    store = TarballCache(cache, max_bytes)
    inputs = []
    downloaded = 0
    for tarball in lockfile.tarballs:
        sha256, fresh = store.get(tarball)
        downloaded += fresh
        inputs.append(Input(GROUP, tarball.filename, tarball.url, sha256))
    progress(
        "resolve",
        f"{lockfile.name}: {len(inputs)} tarball(s) checked against their sha512 integrity ({downloaded} downloaded)",
    )
    inferred = [t.label for t in lockfile.tarballs if t.url_inferred]
    inferences = (
        (
            Inference(
                "npm tarball URLs",
                f"{len(inferred)} of {len(inputs)}",
                f"{lockfile.name} records no 'resolved' for {', '.join(inferred[:5])}"
                + (" ..." if len(inferred) > 5 else "")
                + ": the registry's URL for NAME@VERSION was used (the integrity still pins the bytes)",
            ),
        )
        if inferred
        else ()
    )
    return tuple(sorted(inputs, key=lambda i: i.filename)), inferences


def lay_out_offline_cache(tarballs: Iterable[Path], dest: Path) -> int:
    """npm's content store under ``dest/_cacache``: each tarball at the path of its sha512. Returns how many.

    npm (pacote) reads a tarball whose lockfile entry has ``resolved`` and ``integrity`` straight from this
    store by digest, offline, and checks the bytes against the integrity as it reads them.
    """
    count = 0
    for path in tarballs:
        sha512 = _digests(path)[0]
        target = dest / "_cacache" / "content-v2" / "sha512" / sha512[:2] / sha512[2:4] / sha512[4:]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
        count += 1
    return count
