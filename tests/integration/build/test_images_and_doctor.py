"""Builder images are reproducible; doctor reports the machine."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.build.images import BUILDER_USER, ImageBuilder, mmdebstrap_mode
from rebuild.recipes import RecipeBook

pytestmark = pytest.mark.docker
REBUILD = str(Path(sys.executable).parent / "rebuild")


@pytest.mark.slow
def test_default_builder_image_rebuilds_to_the_same_id(docker_client: Any, cache_dir: Path, builder_image: str) -> None:
    spec = RecipeBook().get("command").image
    mode = mmdebstrap_mode()  # unshare as rebuild-builder after setup.sh; the ID must not say which mode ran
    builder = ImageBuilder(docker_client, cache_dir, mode)
    # Built again from scratch (mmdebstrap, our own archive writer) while the image stays in the engine: the
    # ID is the sha256 of the config we write, so it is decided before docker load sees it, and other tests
    # running at the same time (pytest-xdist) keep their image.
    again = builder.build(spec)
    assert again.built is True
    assert again.digest == builder_image, f"mmdebstrap {mode.describe()} made another image"
    assert any(line.startswith("python3=") for line in again.lock)
    assert builder.lock_path(spec).read_text().splitlines() == list(again.lock)


def test_an_expected_digest_that_cannot_be_made_is_an_error(
    docker_client: Any, cache_dir: Path, builder_image: str
) -> None:
    from rebuild.errors import ImageError

    spec = RecipeBook().get("command").image
    builder = ImageBuilder(docker_client, cache_dir)
    # present by digest: used as is
    assert builder.ensure(spec, expected_digest=builder_image).digest == builder_image
    with pytest.raises(ImageError, match="not present in the local engine"):
        builder.pull_pinned("sha256:" + "0" * 64)
    with pytest.raises(ImageError, match="could not pull"):
        builder.pull_pinned("registry.invalid/x@sha256:" + "0" * 64)


def test_doctor_reports_engine_images_and_tools(builder_image: str) -> None:
    r = subprocess.run([REBUILD, "doctor", "--json"], capture_output=True, text=True, timeout=120)
    report = json.loads(r.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["docker"]["ok"] and "engine" in checks["docker"]["detail"]
    assert checks["image debian-build"]["detail"] == builder_image
    assert checks["diffoscope"]["ok"]
    assert "GiB free" in checks["cache"]["detail"]
    assert r.returncode == (0 if report["ok"] else 3)


def test_doctor_reports_the_mmdebstrap_mode(builder_image: str) -> None:
    r = subprocess.run([REBUILD, "doctor", "--json"], capture_output=True, text=True, timeout=120)
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["mmdebstrap mode"] == {"name": "mmdebstrap mode", "ok": True, "detail": mmdebstrap_mode().describe()}
    text = subprocess.run([REBUILD, "doctor"], capture_output=True, text=True, timeout=120)
    assert "mmdebstrap mode" in text.stdout and mmdebstrap_mode().describe()[:20] in text.stdout


def test_mmdebstrap_runs_unprivileged_after_setup() -> None:
    mode = mmdebstrap_mode()
    if os.geteuid() != 0:
        assert (mode.mode, mode.user) == ("unshare", None)
        return
    try:
        pwd.getpwnam(BUILDER_USER)
    except KeyError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and setup.sh has not made the user {BUILDER_USER}")
        pytest.skip(f"setup.sh has not made the user {BUILDER_USER}")
    # Independently of the chooser: can this kernel make user namespaces at all?
    kernel_allows = subprocess.run(["unshare", "--user", "--map-root-user", "true"], check=False).returncode == 0
    if kernel_allows:
        assert (mode.mode, mode.user) == ("unshare", BUILDER_USER), mode.reason
        assert mode.describe() == f"unshare as {BUILDER_USER}"
    else:
        assert mode.mode == "root" and "user namespace" in mode.reason
        assert mode.describe().startswith("root (")


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback to --mode=root is only for root")
@pytest.mark.parametrize(
    ("user", "subuid", "reason"),
    [
        ("rebuild-no-such-user", None, "no user rebuild-no-such-user; run ./setup.sh"),
        (BUILDER_USER, "", f"{BUILDER_USER} has no range of 65536 ids in"),
        (BUILDER_USER, f"{BUILDER_USER}:100000:1000\n", f"{BUILDER_USER} has no range of 65536 ids in"),
        (BUILDER_USER, f"other:100000:65536\n{BUILDER_USER}x:1:65536\n", f"{BUILDER_USER} has no range of 65536"),
    ],
    ids=["no-user", "empty-subuid", "range-too-small", "only-other-users"],
)
def test_mmdebstrap_falls_back_to_root_and_says_why(tmp_path: Path, user: str, subuid: str | None, reason: str) -> None:
    if user == BUILDER_USER:
        try:
            pwd.getpwnam(BUILDER_USER)
        except KeyError:
            pytest.skip("setup.sh has not made the builder user")
    path = tmp_path / "subuid"
    path.write_text(subuid or "")
    mode = mmdebstrap_mode(user, subuid=path, subgid=path)
    assert (mode.mode, mode.user) == ("root", None)
    assert reason in mode.reason and mode.describe() == f"root ({mode.reason})"


def test_doctor_without_docker_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock", "HOME": str(tmp_path)}
    r = subprocess.run([REBUILD, "doctor"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 3
    assert "no Docker engine answers" in r.stdout and "setup.sh" in r.stdout
