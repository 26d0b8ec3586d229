"""`rebuild verify pypi:...` against the real index and real Docker; the unhappy paths with a local index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pipeline import rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]

# one real release per backend, with what a faithful rebuild must find
PER_BACKEND = {
    "pypi:tomli==2.0.1": ("flit 3.6.0", "reproduced"),
    "pypi:packaging==24.1": ("flit 3.9.0", "reproduced"),  # zip times in the publisher's time zone
    "pypi:iniconfig==2.0.0": ("hatchling 1.12.2", "reproduced"),
    "pypi:tomlkit==0.12.3": ("poetry-core 1.8.1", "reproduced"),
    "pypi:dep-logic==0.4.4": ("pdm-backend (2.3.3)", "reproduced"),
    "pypi:setuptools-scm==8.1.0": ("bdist_wheel (0.43.0)", "reproduced"),
    "pypi:requests==2.32.3": ("bdist_wheel (0.43.0)", "not reproduced"),  # setuptools without SOURCE_DATE_EPOCH
}


@pytest.mark.network
def test_one_release_per_backend_in_one_batch(tmp_path: Path) -> None:
    listing = tmp_path / "releases.txt"
    listing.write_text("# one per backend\n" + "\n".join(PER_BACKEND) + "\n")
    rebuild("key", "generate", "--out", str(tmp_path / "k"))
    r = rebuild(
        "verify", "--from", str(listing), "--json", "--no-diffoscope", "--key", str(tmp_path / "k.key"),
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    rows = {row["target"]: row for row in json.loads(r.stdout)["results"]}
    assert r.returncode == 1, r.stderr  # requests is not reproduced: the batch's exit code is the highest
    for target, (generator, verdict) in PER_BACKEND.items():
        row = rows[target]
        assert row["summary"]["generator"] == generator, row
        assert row["verdict"] == verdict, row
    requests = rows["pypi:requests==2.32.3"]
    assert requests["detail"].endswith("content identical, timestamps differ") and requests["attempts"] == 3
    assert requests["attestation"] is None
    assert "TZ of the publisher (Europe/London)" in rows["pypi:packaging==24.1"]["matched"]
    report = json.loads(Path(rows["pypi:iniconfig==2.0.0"]["report"]).read_text())
    inferred = {i["field"]: i for i in report["inferences"]}
    assert (
        inferred["hatchling"]["value"] == "1.12.2" and "Generator: hatchling 1.12.2" in inferred["hatchling"]["reason"]
    )
    attestation = rows["pypi:tomli==2.0.1"]["attestation"]
    check = rebuild("attestation", "verify", attestation, "--key", str(tmp_path / "k.pub"), "--digest",
                    "sha256:939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc")  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


# issue #20: a release that needs Python >= 3.12, one built with uv_build (platform wheels only), and a
# universal setuptools wheel whose setuptools (66.0.0) takes no --universal through pip
PER_PYTHON_CASE = {
    "pypi:sphinx==9.1.0": ("3.13", "reproduced"),
    "pypi:ffmpeg-normalize==1.42.1": ("3.11", "reproduced"),
    "pypi:wcwidth==0.2.6": ("3.11", "not reproduced"),  # the publisher's file times are in the zip
}


@pytest.mark.network
def test_a_python_3_13_release_a_uv_build_release_and_an_old_universal_wheel(tmp_path: Path) -> None:
    r = rebuild("verify", *PER_PYTHON_CASE, "--json", "--no-diffoscope", "--out", str(tmp_path / "out"))
    rows = {row["target"]: row for row in json.loads(r.stdout)["results"]}
    assert r.returncode == 1, r.stderr  # wcwidth is not reproduced; none is "could not rebuild"
    reports = {}
    for target, (python, verdict) in PER_PYTHON_CASE.items():
        row = rows[target]
        assert row["verdict"] == verdict, row
        reports[target] = report = json.loads(Path(row["report"]).read_text())
        assert all(a["label"].startswith(f"Python {python}, ") for a in report["attempts"]), report["attempts"]
    sphinx = reports["pypi:sphinx==9.1.0"]
    (python,) = [i for i in sphinx["inferences"] if i["field"] == "python"]
    assert python["value"] == "3.13.5 (Debian trixie)"
    assert "the sdist's PKG-INFO says Requires-Python '>=3.12'" in python["reason"]
    assert "left out: Python 3.11.2 (Debian bookworm): the sdist's PKG-INFO says '>=3.12'" in python["reason"]
    assert sphinx["plan"]["builderImage"]["spec"]["suite"] == "trixie"
    uv = reports["pypi:ffmpeg-normalize==1.42.1"]
    (pinned,) = [i for i in uv["inferences"] if i["field"] == "uv_build"]
    assert pinned["value"] == "0.12.5" and "'Generator: uv 0.12.5'" in pinned["reason"]  # uv's own backend
    wheels = [name for name in uv["fetched"] + uv["cached"] if "uv_build-0.12.5-" in name]
    assert wheels and "manylinux_2_17_x86_64" in wheels[0]  # a platform wheel, resolved for bookworm's glibc
    wcwidth = reports["pypi:wcwidth==0.2.6"]
    assert rows["pypi:wcwidth==0.2.6"]["detail"].endswith("content identical, timestamps differ")
    (way,) = [i for i in wcwidth["inferences"] if i["field"] == "wheel tag py2.py3"]
    assert way["value"] == "[bdist_wheel] universal = 1" and "setuptools 66.0.0" in way["reason"]
    assert wcwidth["attempts"][0]["label"].startswith("Python 3.11, [bdist_wheel] universal = 1, ")


def test_each_python_image_has_the_python_and_glibc_its_recipe_states(docker_client: Any, cache_dir: Path) -> None:
    """Build requirements are resolved for the recipe's python and platform before the image exists."""
    from rebuild.build.images import ImageBuilder
    from rebuild.recipes import RecipeBook

    probe = "import platform; print(platform.python_version(), platform.libc_ver()[1])"
    for name in ("python-wheel", "python-build"):
        for image in RecipeBook().get(name).builder_images:
            digest = ImageBuilder(docker_client, cache_dir).ensure(image.spec).digest
            out = docker_client.containers.run(digest, ["python3", "-c", probe], network_disabled=True, remove=True)
            python, glibc = out.decode().split()
            assert (python, f"manylinux_{glibc.replace('.', '_')}_x86_64") == (image.python, image.platform), name


@pytest.mark.network
def test_unknown_project_is_named(tmp_path: Path) -> None:
    r = rebuild("verify", "pypi:no-such-project-rebuild-verifier-xyz==1.0", "--out", str(tmp_path))
    assert r.returncode == 2 and "no project 'no-such-project-rebuild-verifier-xyz'" in r.stderr


@pytest.mark.parametrize(
    ("files", "code", "message"),
    [
        (["demo-1.0-py3-none-any.whl"], 2, "demo 1.0 has no sdist on the index"),
        (["demo-1.0.tar.gz", "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"], 2, "has only platform wheels"),
        (["demo-1.0.tar.gz!", "demo-1.0-py3-none-any.whl"], 1, "sdist demo-1.0.tar.gz: sha256 is"),
    ],
)
def test_releases_that_cannot_be_verified(tmp_path: Path, files: list[str], code: int, message: str) -> None:
    """A local index: no sdist, only platform wheels, an sdist whose bytes are not the ones the index names."""
    index = local_index(tmp_path, files)
    r = rebuild("verify", "pypi:demo==1.0", "--index-url", index, "--out", str(tmp_path / "v"))
    assert r.returncode == code, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "v").glob("*.intoto.jsonl"))


def test_batch_keeps_going_after_a_failure(tmp_path: Path) -> None:
    index = local_index(tmp_path, ["demo-1.0-py3-none-any.whl"])
    args = ["verify", "pypi:demo==1.0", "pypi:demo==9.9", "--index-url", index, "--out", str(tmp_path / "v")]
    r = rebuild(*args)
    assert r.returncode == 2
    assert "0 reproduced, 0 not reproduced, 0 failed verification, 2 could not rebuild of 2" in r.stdout
    rows = json.loads(rebuild(*args, "--json").stdout)["results"]
    assert [row["verdict"] for row in rows] == ["could not rebuild"] * 2
    assert "has no sdist" in rows[0]["detail"] and "has no release 9.9" in rows[1]["detail"]


def local_index(root: Path, names: list[str]) -> str:
    """A PEP 503 index of made-up files; a name ending in '!' is listed with a sha256 its bytes do not have."""
    import io
    import tarfile
    import zipfile

    files = root / "files"
    files.mkdir()
    links = []
    for listed in names:
        name = listed.rstrip("!")
        if name.endswith(".whl"):
            with zipfile.ZipFile(files / name, "w") as zf:
                zf.writestr("demo/__init__.py", "x = 1\n")
        else:
            with tarfile.open(files / name, "w:gz") as tf:
                data = b"Name: demo\n"
                info = tarfile.TarInfo("demo-1.0/PKG-INFO")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        sha = hashlib.sha256((files / name).read_bytes()).hexdigest()
        if listed.endswith("!"):
            sha = hashlib.sha256(b"other bytes").hexdigest()
        links.append(f'<a href="../../files/{name}#sha256={sha}">{name}</a>')
    page = root / "simple" / "demo"
    page.mkdir(parents=True)
    (page / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")
    return f"file://{root}/simple"


def test_the_users_own_copy_must_be_the_published_wheel(tmp_path: Path) -> None:
    index = local_index(tmp_path, ["demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl"])
    mine = tmp_path / "demo-1.0-py3-none-any.whl"
    mine.write_bytes(b"a wheel someone handed me")
    r = rebuild("verify", "pypi:demo==1.0", "--index-url", index, "--artifact", str(mine), "--out", str(tmp_path / "v"))
    assert r.returncode == 1, r.stderr
    assert "--artifact demo-1.0-py3-none-any.whl is not the demo-1.0-py3-none-any.whl the index publishes" in r.stderr
