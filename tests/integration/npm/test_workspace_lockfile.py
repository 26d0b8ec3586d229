"""A real monorepo's package-lock.json, written by the host's npm against the real registry: the workspace's own
dependency (``packages/w/node_modules/is-number``, another version than the root's) is read, fetched from the
registry through the fetch cache, checked against its sha512 integrity, and laid out where ``npm ci --offline``
finds it. No Docker: the host's npm installs from the laid-out store with the network cut off by ``--offline``.
And the security review's case through the CLI: a git dependency of a workspace is refused by name, exit 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rebuild.fetch.cache import BlobCache
from rebuild.npm.cache import fetch_locked, lay_out_offline_cache
from rebuild.npm.lockfile import Lockfile, lockfile_from_tree
from tests.integration.test_pipeline import rebuild

NPM_FLAGS = ("--ignore-scripts", "--no-audit", "--no-fund", "--update-notifier=false")


def npm_env(cache: Path) -> dict[str, str]:
    """The host's npm with no user config (no mirror, no omit-resolved), its own cache, the public registry."""
    return {
        **os.environ,
        "npm_config_userconfig": "/dev/null",
        "npm_config_registry": "https://registry.npmjs.org/",
        "npm_config_cache": str(cache),
    }


@pytest.fixture()
def monorepo(tmp_path: Path) -> Path:
    """One workspace that needs is-number 6.0.0 while the root needs 7.0.0: npm nests the workspace's copy."""
    if shutil.which("npm") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true and the host's npm is required")
        pytest.skip("no npm on this host")
    root = tmp_path / "mono"
    (root / "packages" / "w").mkdir(parents=True)
    (root / "package.json").write_text(
        json.dumps({"name": "mono", "version": "1.0.0", "private": True, "workspaces": ["packages/*"],
                    "dependencies": {"is-number": "7.0.0"}})
    )  # fmt: skip
    (root / "packages" / "w" / "package.json").write_text(
        json.dumps({"name": "w", "version": "1.0.0", "dependencies": {"is-number": "6.0.0"}})
    )
    subprocess.run(
        ["npm", "install", "--package-lock-only", *NPM_FLAGS],
        cwd=root, env=npm_env(tmp_path / "npm-online-cache"), check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return root


def npm_ci_offline(root: Path, store: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(root / "node_modules", ignore_errors=True)
    return subprocess.run(
        ["npm", "ci", "--offline", *NPM_FLAGS],
        cwd=root, env=npm_env(store), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.network
def test_a_real_workspace_lockfile_is_fetched_checked_and_installs_offline(monorepo: Path, tmp_path: Path) -> None:
    lockfile = lockfile_from_tree(monorepo)
    assert lockfile is not None and lockfile.version == 3
    by_path = {t.path: t for t in lockfile.tarballs}
    assert set(by_path) == {"node_modules/is-number", "packages/w/node_modules/is-number"}
    nested = by_path["packages/w/node_modules/is-number"]
    assert (nested.name, nested.version) == ("is-number", "6.0.0") and not nested.url_inferred
    assert nested.url == "https://registry.npmjs.org/is-number/-/is-number-6.0.0.tgz"
    assert set(lockfile.local) == {"packages/w", "node_modules/w"}

    cache = BlobCache(tmp_path / "cache")
    inputs, inferences = fetch_locked(lockfile, cache)
    assert len(inputs) == 2 and inferences == ()
    blobs = [cache.path(item.sha256) for item in inputs]
    # every byte kept is the lockfile's integrity (and the plan's sha256 is that of the same bytes)
    assert sorted(hashlib.sha512(b.read_bytes()).hexdigest() for b in blobs) == sorted(
        by_path[p].sha512 for p in by_path
    )
    assert all(hashlib.sha256(b.read_bytes()).hexdigest() == i.sha256 for b, i in zip(blobs, inputs, strict=True))

    # without the workspace's own dependency (as before the fix), npm ci --offline cannot install
    top_only = Lockfile(lockfile.name, lockfile.version, (by_path["node_modules/is-number"],), lockfile.local)
    (top_input,) = fetch_locked(top_only, cache)[0]
    lay_out_offline_cache([cache.path(top_input.sha256)], tmp_path / "store-top-only")
    missing = npm_ci_offline(monorepo, tmp_path / "store-top-only")
    assert missing.returncode != 0 and "ENOTCACHED" in missing.stderr, missing.stderr
    assert "is-number-6.0.0.tgz" in missing.stderr  # the workspace's copy is the one npm could not find

    assert lay_out_offline_cache(blobs, tmp_path / "store") == 2
    done = npm_ci_offline(monorepo, tmp_path / "store")
    assert done.returncode == 0, done.stderr
    installed = json.loads((monorepo / "packages/w/node_modules/is-number/package.json").read_text())
    assert installed["version"] == "6.0.0"
    assert json.loads((monorepo / "node_modules/is-number/package.json").read_text())["version"] == "7.0.0"


@pytest.mark.docker
@pytest.mark.usefixtures("docker_client")  # `rebuild build` connects to the engine first; nothing is built
def test_rebuild_build_refuses_a_git_dependency_of_a_workspace(tmp_path: Path) -> None:
    tree = tmp_path / "mono"
    tree.mkdir()
    (tree / "package.json").write_text('{"name": "mono", "version": "1.0.0", "workspaces": ["packages/*"]}')
    lock = {
        "name": "mono",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "mono", "workspaces": ["packages/*"]},
            "packages/w": {"version": "1.0.0"},
            "packages/w/node_modules/b": {
                "version": "1.0.0",
                "resolved": "git+ssh://evil/x.git",
                "integrity": "sha1-abc",
            },
        },
    }
    (tree / "package-lock.json").write_text(json.dumps(lock))
    for extra in ((), ("--json",)):
        result = rebuild(
            "build", str(tree), "--recipe", "npm-ci", "--param", "source_strip=0", "--out", str(tmp_path / "out"),
            *extra,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert (
            "error: package-lock.json: packages['packages/w/node_modules/b']: git dependency git+ssh://evil/x.git "
            "is not allowed" in result.stderr
        )
        assert "Traceback" not in result.stderr
