"""Builder images are reproducible; doctor reports the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.image import ImageBuilder
from rebuild.recipes import RecipeBook

pytestmark = pytest.mark.docker
REBUILD = str(Path(sys.executable).parent / "rebuild")


@pytest.mark.slow
def test_default_builder_image_rebuilds_to_the_same_id(docker_client: Any, cache_dir: Path, builder_image: str) -> None:
    spec = RecipeBook().get("command").image
    builder = ImageBuilder(docker_client, cache_dir)
    docker_client.images.remove(builder_image, force=True)
    assert builder.find_local(builder_image) is None
    again = builder.ensure(spec)
    assert again.built is True
    assert again.digest == builder_image
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


def test_doctor_without_docker_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock", "HOME": str(tmp_path)}
    r = subprocess.run([REBUILD, "doctor"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 3
    assert "no Docker engine answers" in r.stdout and "setup.sh" in r.stdout
