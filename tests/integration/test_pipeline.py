"""The main job end to end, through the installed `rebuild` command and the real Docker engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]
REBUILD = str(Path(sys.executable).parent / "rebuild")
EXAMPLES = ROOT / "examples"


def rebuild(
    *args: str, cache: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if cache is not None:
        full_env["REBUILD_CACHE_DIR"] = str(cache)
    return subprocess.run([REBUILD, *args], capture_output=True, text=True, env=full_env, timeout=900, check=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("keys")
    assert rebuild("key", "generate", "--out", str(d / "k")).returncode == 0
    return d / "k.key", d / "k.pub"


@pytest.fixture(scope="module")
def hello_release(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    release = tmp_path_factory.mktemp("release")
    r = rebuild("build", str(EXAMPLES / "hello"), "--out", str(release), "--key", str(keys[0]))
    assert r.returncode == 0, r.stderr
    return release


def provenance_of(release: Path) -> Path:
    (found,) = release.glob("*.provenance.intoto.jsonl")
    return found


def test_reproducible_example_verifies_and_its_attestation_checks(
    hello_release: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    r = rebuild(
        "verify", str(provenance_of(hello_release)), "--key", str(keys[0]), "--out", str(tmp_path / "v"), "--json"
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["reproduced"] is True
    assert set(report["stages"]) == {"resolve", "fetch", "image", "build", "compare", "attest"}
    (attestation,) = (tmp_path / "v").glob("*.rebuild.intoto.jsonl")
    check = rebuild(
        "attestation",
        "verify",
        str(attestation),
        "--key",
        str(keys[1]),
        "--artifact",
        str(hello_release / "hello-1.0.tar.gz"),
    )
    assert check.returncode == 0, check.stderr
    assert "verified hello-1.0.tar.gz" in check.stdout
    # the rebuild's own provenance is a plan too: it verifies again
    again = rebuild(
        "verify", str(attestation), "--artifact", str(hello_release / "hello-1.0.tar.gz"), "--out", str(tmp_path / "v2")
    )
    assert again.returncode == 0, again.stderr + again.stdout


def test_non_reproducible_example_is_explained_and_never_passed(keys: tuple[Path, Path], tmp_path: Path) -> None:
    release = tmp_path / "release"
    assert rebuild("build", str(EXAMPLES / "clock"), "--out", str(release), "--key", str(keys[0])).returncode == 0
    out = tmp_path / "v"
    r = rebuild("verify", str(provenance_of(release)), "--key", str(keys[0]), "--out", str(out), "--attest-failures")
    assert r.returncode == 1, r.stderr
    assert "NOT REPRODUCED" in r.stdout
    # BUILD_INFO carries a random id, so its content differs whatever the clock says; whether the tar mtimes
    # differ too depends on the second each build ran in, so it is not asserted (compare's unit tests cover it)
    assert "content of 1 member" in r.stdout and "clock-1.0/BUILD_INFO" in r.stdout
    assert not list(out.glob("*.rebuild.intoto.jsonl"))
    (failed,) = out.glob("*.rebuild-failed.intoto.jsonl")
    assert "PASSED" not in subprocess.run(
        [REBUILD, "attestation", "show", str(failed), "--json"], capture_output=True, text=True
    ).stdout.replace('"verified": false', "")
    check = rebuild(
        "attestation", "verify", str(failed), "--key", str(keys[1]), "--artifact", str(release / "clock-1.0.tar.gz")
    )
    assert check.returncode == 1 and "'FAILED', not PASSED" in check.stderr
    report = json.loads((out / "compare-report.json").read_text())
    assert report["comparisons"][0]["explanation"]["kind"] == "content"


def test_altered_published_artifact(hello_release: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    altered = tmp_path / "hello-1.0.tar.gz"
    data = bytearray((hello_release / "hello-1.0.tar.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    r = rebuild(
        "verify",
        str(provenance_of(hello_release)),
        "--artifact",
        str(altered),
        "--key",
        str(keys[0]),
        "--out",
        str(tmp_path / "v"),
    )
    assert r.returncode == 1
    assert "hello-1.0.tar.gz is not an artifact" in r.stderr
    assert "a subject has its name, but not its digest: the file was altered" in r.stderr
    assert not list((tmp_path / "v").glob("*.rebuild.intoto.jsonl"))
    assert json.loads((tmp_path / "v" / "verify-report.json").read_text())["outcome"] == "failed verification"


def test_source_digest_mismatch_names_the_input(hello_release: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    shutil.copytree(hello_release, release)
    (source,) = release.glob("hello-source-*.tar")
    source.write_bytes(source.read_bytes() + b"\0" * 512)
    r = rebuild("verify", str(provenance_of(release)), "--out", str(tmp_path / "v"), cache=tmp_path / "fresh-cache")
    assert r.returncode == 1, r.stderr
    assert "error: source: sha256 is" in r.stderr and "the plan says" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("field", ["steps", "environment", "recipe"])
def test_provenance_missing_a_field_exits_2(hello_release: Path, tmp_path: Path, field: str) -> None:
    from rebuild.attest.envelopes import read_envelopes

    (loaded,) = read_envelopes(provenance_of(hello_release))
    statement = json.loads(loaded.envelope.payload)
    del statement["predicate"]["buildDefinition"]["externalParameters"][field]
    broken = tmp_path / "broken.intoto.json"
    broken.write_text(json.dumps(statement))  # a bare statement, so no signature needs faking
    shutil.copy(hello_release / "hello-1.0.tar.gz", tmp_path)
    r = rebuild("verify", str(broken), "--out", str(tmp_path / "v"))
    assert r.returncode == 2, r.stderr
    assert f"missing field '{field}" in r.stderr


def test_docker_down_exits_3_with_one_line(hello_release: Path, tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    for args in (
        ["verify", str(provenance_of(hello_release)), "--out", str(tmp_path / "v")],
        ["build", str(EXAMPLES / "hello"), "--out", str(tmp_path / "r")],
        ["image", "build", "--all"],
    ):
        r = rebuild(*args, env=env)
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.splitlines()[-2].startswith("error: no Docker engine answers at unix://"), r.stderr
        assert "Traceback" not in r.stderr


def test_build_failure_is_exit_3_not_a_mismatch(tmp_path: Path) -> None:
    r = rebuild("build", str(EXAMPLES / "hello"), "--out", str(tmp_path / "r"), "--param", "command=exit 7")
    assert r.returncode == 3
    assert "build failed: exit 7" in r.stderr and "build.log" in r.stderr


def test_build_timeout_is_exit_3(tmp_path: Path) -> None:
    r = rebuild(
        "build", str(EXAMPLES / "hello"), "--out", str(tmp_path / "r"), "--param", "command=sleep 60", "--timeout", "2"
    )
    assert r.returncode == 3 and "timed out after 2 s" in r.stderr


def test_warm_cache_fetches_nothing_and_builds_no_image(hello_release: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = json.loads(
        rebuild("verify", str(provenance_of(hello_release)), "--out", str(tmp_path / "a"), "--json", cache=cache).stdout
    )
    assert first["fetched"] == ["source"]
    second = json.loads(
        rebuild("verify", str(provenance_of(hello_release)), "--out", str(tmp_path / "b"), "--json", cache=cache).stdout
    )
    assert second["reproduced"] and second["fetched"] == [] and second["cached"] == ["source"]
    assert second["image_built"] is False


def test_two_verifies_in_parallel_on_one_cache(hello_release: Path, tmp_path: Path) -> None:
    env = {**os.environ, "REBUILD_CACHE_DIR": str(tmp_path / "shared-cache")}
    procs = [
        subprocess.Popen(
            [REBUILD, "verify", str(provenance_of(hello_release)), "--out", str(tmp_path / f"o{i}"), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    results: list[Any] = [p.communicate(timeout=600) for p in procs]
    for proc, (stdout, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 0, stderr
        assert json.loads(stdout)["reproduced"] is True


@pytest.mark.network
def test_python_wheel_recipe_and_timestamp_classification(tmp_path: Path) -> None:
    """A real wheel, built twice with different SOURCE_DATE_EPOCH: 'content identical, timestamps differ'."""
    wheels = []
    for epoch in ("1700000000", "1710000000"):
        out = tmp_path / epoch
        r = rebuild("build", str(EXAMPLES / "pyhello"), "--out", str(out), "--source-date-epoch", epoch)
        assert r.returncode == 0, r.stderr
        (wheel,) = out.glob("*.whl")
        wheels.append(wheel)
    r = rebuild(
        "verify", str(next((tmp_path / "1700000000").glob("*.provenance.intoto.jsonl"))), "--out", str(tmp_path / "v")
    )
    assert r.returncode == 0, r.stderr
    r = rebuild("compare", str(wheels[0]), str(wheels[1]), "--json")
    assert r.returncode == 1
    explanation = json.loads(r.stdout)["comparisons"][0]["explanation"]
    assert explanation["classification"] == "content identical, timestamps differ", explanation


def test_provenance_signature_is_checked_with_the_given_key(
    hello_release: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    good = rebuild(
        "verify",
        str(provenance_of(hello_release)),
        "--provenance-key",
        str(keys[1]),
        "--out",
        str(tmp_path / "a"),
        "--json",
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["provenance_signature"].startswith("verified with key")
    assert rebuild("key", "generate", "--out", str(tmp_path / "other")).returncode == 0
    bad = rebuild(
        "verify",
        str(provenance_of(hello_release)),
        "--provenance-key",
        str(tmp_path / "other.pub"),
        "--out",
        str(tmp_path / "b"),
    )
    assert bad.returncode == 1
    assert "provenance is not signed by a trusted key" in bad.stderr


@pytest.mark.network
def test_legacy_setup_py_project_records_the_inferred_build_requirements(tmp_path: Path) -> None:
    tree = tmp_path / "legacy"
    (tree / "legacy").mkdir(parents=True)
    (tree / "legacy" / "__init__.py").write_text("VALUE = 1\n")
    (tree / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='legacy', version='0.1', packages=['legacy'])\n"
    )
    r = rebuild(
        "build",
        str(tree),
        "--recipe",
        "python-wheel",
        "--source-date-epoch",
        "1700000000",
        "--out",
        str(tmp_path / "release"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    inferences = json.loads(r.stdout)["plan"]["inferences"]
    assert {
        "field": "build-system.requires",
        "value": "setuptools>=40.8.0, wheel",
        "reason": "no pyproject.toml: pip's default for setup.py projects",
    } in inferences
    (provenance,) = (tmp_path / "release").glob("*.provenance.intoto.jsonl")
    v = rebuild("verify", str(provenance), "--out", str(tmp_path / "v"), "--json")
    assert v.returncode == 0, v.stderr + v.stdout
    assert json.loads(v.stdout)["inferences"] == inferences
