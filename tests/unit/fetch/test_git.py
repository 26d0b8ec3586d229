"""Git sources from a local repository: the fetch and the export are both bounded by --max-input-bytes."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from compare.digest import sha256_file
from rebuild.errors import FetchError
from rebuild.fetch.git import export_commit

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]


def commit(repo: Path, files: dict[str, bytes], message: str) -> str:
    for name, data in files.items():
        (repo / name).write_bytes(data)
    subprocess.run([*GIT, "-C", str(repo), "add", "--", *files], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "--quiet", "-m", message], check=True)
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository whose first commit holds 2 MB that do not compress, the second only a small file."""
    repo = tmp_path / "origin"
    repo.mkdir()
    subprocess.run(["git", "init", "--quiet", "--", str(repo)], check=True)
    big = commit(repo, {"big.bin": os.urandom(2 << 20)}, "big")
    subprocess.run(["git", "-C", str(repo), "rm", "--quiet", "big.bin"], check=True)
    small = commit(repo, {"small.txt": b"small\n"}, "small")
    return repo, big, small


def repositories(git_root: Path) -> list[Path]:
    return sorted(git_root.iterdir()) if git_root.exists() else []


def test_a_fetch_over_the_limit_is_stopped_and_its_repository_removed(
    origin: tuple[Path, str, str], tmp_path: Path
) -> None:
    repo, big, _small = origin
    git_root = tmp_path / "cache" / "git"
    with pytest.raises(FetchError, match=r"git fetch of file://.* brought more than the limit of 1000000 bytes") as e:
        export_commit(f"git+file://{repo}", big, git_root, {}, max_bytes=1_000_000)
    assert "--max-input-bytes" in e.value.hint
    assert repositories(git_root) == []  # no partial pack left behind
    assert not (tmp_path / "cache" / "blobs").exists() or not any((tmp_path / "cache" / "blobs").rglob("*"))


def test_a_fetch_under_the_limit_exports_only_the_pinned_commit(origin: tuple[Path, str, str], tmp_path: Path) -> None:
    repo, _big, small = origin
    git_root = tmp_path / "cache" / "git"
    tarball, sha = export_commit(f"git+file://{repo}", small, git_root, {}, max_bytes=1_000_000)
    assert sha256_file(tarball) == sha
    with tarfile.open(tarball) as tar:
        assert [m.name for m in tar.getmembers() if m.isfile()] == ["source/small.txt"]
    (fetched,) = repositories(git_root)
    assert (fetched / "shallow").is_file()  # --depth=1: the 2 MB of the parent commit were never brought


def test_a_tree_over_the_limit_is_refused_after_a_small_fetch(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    repo.mkdir()
    subprocess.run(["git", "init", "--quiet", "--", str(repo)], check=True)
    zeros = commit(repo, {"zeros.bin": bytes(3 << 20)}, "3 MB that compress to almost nothing")
    with pytest.raises(FetchError, match="is larger than the limit of 1000000 bytes"):
        export_commit(f"git+file://{repo}", zeros, tmp_path / "cache" / "git", {}, max_bytes=1_000_000)
