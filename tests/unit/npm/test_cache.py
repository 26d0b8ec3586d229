"""Lockfile tarballs through the fetch cache: integrity checked before a byte is kept, and npm's offline store."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from rebuild.errors import EXIT_FAILED, DigestMismatchError
from rebuild.fetch.cache import BlobCache
from rebuild.npm.cache import TarballCache, fetch_locked, lay_out_offline_cache
from rebuild.npm.lockfile import LockedTarball, Lockfile, parse_lockfile


def tarball(tmp_path: Path, data: bytes, claimed: bytes | None = None, name: str = "left-pad") -> LockedTarball:
    path = tmp_path / f"{name}-1.0.0.tgz"
    path.write_bytes(data)
    sha512 = hashlib.sha512(data if claimed is None else claimed).hexdigest()
    return LockedTarball(f"node_modules/{name}", name, "1.0.0", path.as_uri(), sha512)


def test_a_tarball_is_kept_under_its_sha256_once_its_sha512_matches(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    locked = tarball(tmp_path, b"package bytes")
    lock = Lockfile("package-lock.json", 3, (locked,), ())
    inputs, inferences = fetch_locked(lock, cache)
    (item,) = inputs
    assert item.sha256 == hashlib.sha256(b"package bytes").hexdigest() and item.group == "npm"
    assert cache.path(item.sha256).read_bytes() == b"package bytes" and inferences == ()
    (tmp_path / "left-pad-1.0.0.tgz").unlink()  # a second run needs no download
    assert TarballCache(cache).get(locked) == (item.sha256, False)


def test_an_integrity_mismatch_names_the_package_and_keeps_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    locked = tarball(tmp_path, b"what the registry serves", claimed=b"what was built")
    with pytest.raises(DigestMismatchError) as e:
        TarballCache(cache).get(locked)
    assert e.value.exit_code == EXIT_FAILED  # as for any fetched input whose bytes are not the promised ones
    assert "npm package node_modules/left-pad (left-pad@1.0.0)" in e.value.message
    assert "the lockfile says sha512-" in e.value.message
    assert not any(cache.blobs.iterdir())


def test_a_poisoned_index_is_not_trusted(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    good = tarball(tmp_path, b"good")
    sha256, _ = TarballCache(cache).get(good)
    other = tarball(tmp_path, b"other", name="other")
    index = cache.root / "npm" / "sha512"
    (index / other.sha512).write_text(sha256)  # points another package's integrity at the good blob
    assert TarballCache(cache).get(other) == (hashlib.sha256(b"other").hexdigest(), True)


def test_the_offline_store_is_npm_content_v2_by_sha512(tmp_path: Path) -> None:
    files = []
    for data in (b"one", b"two"):
        path = tmp_path / f"{data.decode()}.tgz"
        path.write_bytes(data)
        files.append(path)
    assert lay_out_offline_cache(files, tmp_path / "store") == 2
    for data in (b"one", b"two"):
        hexdigest = hashlib.sha512(data).hexdigest()
        stored = tmp_path / "store/_cacache/content-v2/sha512" / hexdigest[:2] / hexdigest[2:4] / hexdigest[4:]
        assert stored.read_bytes() == data


def test_a_workspace_dependency_is_fetched_and_laid_out_in_the_offline_store(tmp_path: Path) -> None:
    """``packages/w/node_modules/b`` is a tarball like any other: fetched, checked, and where npm ci looks."""
    data = b"the workspace's own b 1.0.0"
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    doc = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "mono", "workspaces": ["packages/*"]},
            "node_modules/w": {"resolved": "packages/w", "link": True},
            "packages/w": {"name": "w", "version": "1.0.0"},
            "packages/w/node_modules/b": {
                "version": "1.0.0",
                "resolved": "https://registry.npmjs.org/b/-/b-1.0.0.tgz",
                "integrity": integrity,
            },
        },
    }
    (locked,) = parse_lockfile(json.dumps(doc).encode()).tarballs
    assert locked.path == "packages/w/node_modules/b" and locked.integrity == integrity
    served = tmp_path / "b-1.0.0.tgz"  # the registry's bytes, served from a file: no network in unit tests
    served.write_bytes(data)
    offline = dataclasses.replace(locked, url=served.as_uri())
    cache = BlobCache(tmp_path / "cache")
    (item,) = fetch_locked(Lockfile("package-lock.json", 3, (offline,), ()), cache)[0]
    assert lay_out_offline_cache([cache.path(item.sha256)], tmp_path / "npm-cache") == 1
    hexdigest = locked.sha512
    stored = tmp_path / "npm-cache/_cacache/content-v2/sha512" / hexdigest[:2] / hexdigest[2:4] / hexdigest[4:]
    assert stored.read_bytes() == data
    served.write_bytes(b"a registry that changed the bytes")
    with pytest.raises(DigestMismatchError, match="packages/w/node_modules/b"):
        TarballCache(BlobCache(tmp_path / "other-cache")).get(offline)
