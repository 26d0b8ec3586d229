"""in-toto end to end: links written by `rebuild verify --in-toto-link` against the real engine, checked by the
`in-toto-verify` command the in-toto package installs and by `rebuild attestation verify-layout`, with a layout
made here with the in-toto package's API (step `rebuild`, two rebuilder keys from `rebuild key generate`,
threshold 2).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner

from tests.integration.test_pipeline import EXAMPLES, provenance_of, rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]
IN_TOTO_VERIFY = str(Path(sys.executable).parent / "in-toto-verify")
ARTIFACT = "hello-1.0.tar.gz"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    for name, kind in (("owner", "ed25519"), ("alice", "ed25519"), ("bob", "ecdsa-p256"), ("mallory", "ed25519")):
        r = rebuild("key", "generate", "--out", str(d / name), "--type", kind)
        assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Path:
    out = tmp_path_factory.mktemp("release")
    r = rebuild("build", str(EXAMPLES / "hello"), "--out", str(out), "--key", str(keys / "owner.key"))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, keys: Path, release: Path) -> dict[str, Path]:
    """One `rebuild verify --in-toto-link` per rebuilder, each with its own key and output directory."""
    d = tmp_path_factory.mktemp("runs")
    for name in ("alice", "bob", "mallory"):
        r = rebuild(
            "verify", str(provenance_of(release)), "--key", str(keys / f"{name}.key"), "--out", str(d / name),
            "--in-toto-link", "--json",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["in_toto_link"] is not None
    return {name: d / name for name in ("alice", "bob", "mallory")}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Path:
    """Made with in-toto's API: step `rebuild` by alice and bob, threshold 2; an inspection matches the artifact."""
    root = Layout()
    root.expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    step = Step(name="rebuild")
    step.pubkeys = [root.add_functionary_key_from_path(str(keys / f"{n}.pub"))["keyid"] for n in ("alice", "bob")]
    step.threshold = 2
    step.expected_products = [["CREATE", ARTIFACT], ["DISALLOW", "*"]]
    inspection = Inspection(name="check-artifact")
    inspection.run = ["true"]
    inspection.expected_materials = [
        ["REQUIRE", ARTIFACT], ["MATCH", ARTIFACT, "WITH", "PRODUCTS", "FROM", "rebuild"], ["DISALLOW", "*"],
    ]  # fmt: skip
    root.steps = [step]
    root.inspect = [inspection]
    metablock = Metablock(signed=root)
    metablock.create_signature(CryptoSigner(load_pem_private_key((keys / "owner.key").read_bytes(), None)))
    path = tmp_path_factory.mktemp("layout") / "root.layout"
    metablock.dump(str(path))
    return path


def links_for(case: str, runs: dict[str, Path], into: Path) -> Path:
    into.mkdir()
    names = {
        "both": ("alice", "bob"),
        "one": ("alice",),
        "tampered": ("alice", "bob"),
        "unauthorised": ("alice", "mallory"),
    }
    for name in names[case]:
        (link,) = runs[name].glob("rebuild.*.link")
        shutil.copy(link, into)
    if case == "tampered":
        (bob,) = runs["bob"].glob("rebuild.*.link")
        doc = json.loads((into / bob.name).read_text())
        doc["signed"]["products"][ARTIFACT]["sha256"] = "0" * 64
        (into / bob.name).write_text(json.dumps(doc))
    return into


CASES = [
    ("both", 0, ""),
    ("one", 1, "too few links"),
    ("tampered", 1, "too few links"),
    ("unauthorised", 1, "too few links"),
]


@pytest.mark.parametrize(("case", "code", "reason"), CASES, ids=[c[0] for c in CASES])
def test_in_toto_verify_accepts_our_links(
    case: str, code: int, reason: str, runs: dict[str, Path], layout: Path, keys: Path, release: Path, tmp_path: Path
) -> None:
    """The in-toto package's own command, with the artifact in its working directory for the inspection."""
    links = links_for(case, runs, tmp_path / "links")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(release / ARTIFACT, work)
    command = [IN_TOTO_VERIFY, "--layout", str(layout), "--verification-keys", str(keys / "owner.pub")]
    r = subprocess.run(
        [*command, "--link-dir", str(links)], cwd=work, capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == code, r.stdout + r.stderr


@pytest.mark.parametrize(("case", "code", "reason"), CASES, ids=[c[0] for c in CASES])
def test_verify_layout_agrees(
    case: str, code: int, reason: str, runs: dict[str, Path], layout: Path, keys: Path, release: Path, tmp_path: Path
) -> None:
    links = links_for(case, runs, tmp_path / "links")
    r = rebuild(
        "attestation", "verify-layout", str(layout), "--layout-key", str(keys / "owner.pub"), "--links", str(links),
        "--artifact", str(release / ARTIFACT),
    )  # fmt: skip
    assert r.returncode == code, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    if code == 0:
        assert "PASSED in-toto verification" in r.stdout
    else:
        assert f"error: in-toto verification FAILED, {reason}" in r.stderr
    if case == "tampered":
        assert "Broken link signature" in r.stderr
    if case == "unauthorised":
        assert "which the layout does not authorise for step 'rebuild'" in r.stderr


def test_no_link_without_the_option(keys: Path, release: Path, tmp_path: Path) -> None:
    r = rebuild("verify", str(provenance_of(release)), "--key", str(keys / "alice.key"), "--out", str(tmp_path / "v"))
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "v").glob("*.rebuild.intoto.jsonl")) and not list((tmp_path / "v").glob("*.link"))


def test_no_link_for_a_mismatch(keys: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    assert rebuild("build", str(EXAMPLES / "clock"), "--out", str(release)).returncode == 0
    out = tmp_path / "v"
    r = rebuild(
        "verify", str(provenance_of(release)), "--key", str(keys / "alice.key"), "--out", str(out), "--in-toto-link",
        "--no-diffoscope",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "NOT REPRODUCED" in r.stdout
    assert not list(out.glob("*.link"))
    assert json.loads((out / "verify-report.json").read_text())["in_toto_link"] is None
