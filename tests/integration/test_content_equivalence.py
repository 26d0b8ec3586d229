"""`rebuild verify --content-equivalence` through the installed CLI and the real Docker engine.

The local cases are honest constructions: `examples/pyhello` is built hermetically with `rebuild build`, then
its wheel is repacked as a publisher might have published it (every entry's name, time, mode and compression
kept, one thing changed), and the publisher's provenance (signed again with the release key) names that
published wheel. The rebuild makes the original wheel; what the repacked one differs in decides the claim.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from rebuild.attest import dsse
from rebuild.attest.envelopes import read_envelopes, write_jsonl
from rebuild.attest.keys import load_private_key
from tests.conftest import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]
REBUILD = str(Path(sys.executable).parent / "rebuild")
CE = "https://rebuild-verifier.dev/content-equivalence/v1"
VSA = "https://slsa.dev/verification_summary/v1"
WHEEL = "pyhello-1.0-py2.py3-none-any.whl"


def rebuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REBUILD, *args], capture_output=True, text=True, env=dict(os.environ), timeout=900,
                          check=False)  # fmt: skip


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("keys")
    assert rebuild("key", "generate", "--out", str(d / "k")).returncode == 0
    return d / "k.key", d / "k.pub"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    out = tmp_path_factory.mktemp("release")
    r = rebuild("build", str(ROOT / "examples" / "pyhello"), "--out", str(out), "--key", str(keys[0]))
    assert r.returncode == 0, r.stderr
    return out


def published(
    release: Path, tmp: Path, key: Path, change: Callable[[zipfile.ZipInfo, bytes], tuple[zipfile.ZipInfo, bytes]]
) -> Path:
    """A copy of the release whose wheel is repacked entry by entry through ``change``, and whose provenance
    (re-signed by the release key) names the repacked wheel's digest."""
    import hashlib
    import shutil

    shutil.copytree(release, tmp, dirs_exist_ok=True)
    original = (release / WHEEL).read_bytes()
    with zipfile.ZipFile(release / WHEEL) as src, zipfile.ZipFile(tmp / WHEEL, "w") as dst:
        for info in src.infolist():
            new_info, data = change(info, src.read(info))
            dst.writestr(new_info, data)
    old, new = hashlib.sha256(original).hexdigest(), hashlib.sha256((tmp / WHEEL).read_bytes()).hexdigest()
    assert old != new
    provenance = tmp / f"{WHEEL}.provenance.intoto.jsonl"
    (loaded,) = read_envelopes(provenance)
    payload = loaded.envelope.payload.replace(old.encode(), new.encode())
    assert payload != loaded.envelope.payload
    write_jsonl(provenance, [dsse.sign(payload, [load_private_key(key)])])
    return provenance


def statements(bundle: Path) -> list[dict[str, object]]:
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in bundle.read_text().splitlines()]


def test_one_changed_byte_in_one_member_is_failed_and_never_claimed(
    release: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    def one_byte(info: zipfile.ZipInfo, data: bytes) -> tuple[zipfile.ZipInfo, bytes]:
        return info, data.replace(b"hello, ", b"hellp, ", 1) if info.filename == "pyhello/__init__.py" else data

    provenance = published(release, tmp_path / "pub", keys[0], one_byte)
    out = tmp_path / "v"
    r = rebuild("verify", str(provenance), "--content-equivalence", "--attest-failures", "--key", str(keys[0]),
                "--out", str(out), "--no-diffoscope")  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "NOT REPRODUCED" in r.stdout
    assert "not content-equivalent: member 'pyhello/__init__.py': content differs" in r.stdout
    report = json.loads((out / "verify-report.json").read_text())
    assert report["content_equivalence"][WHEEL]["equivalent"] is False
    (bundle,) = out.glob("*.intoto.jsonl")
    found = statements(bundle)
    assert [s["predicateType"] for s in found] == [VSA]
    assert found[0]["predicate"]["verificationResult"] == "FAILED"  # type: ignore[index]


def test_only_timestamps_changed_is_claimed_beside_a_failed_summary(
    release: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    def later(info: zipfile.ZipInfo, data: bytes) -> tuple[zipfile.ZipInfo, bytes]:
        info.date_time = (2025, 6, 1, 12, 0, 0)
        return info, data

    provenance = published(release, tmp_path / "pub", keys[0], later)
    out = tmp_path / "v"
    r = rebuild("verify", str(provenance), "--content-equivalence", "--key", str(keys[0]), "--out", str(out),
                "--no-diffoscope")  # fmt: skip
    assert r.returncode == 1, r.stderr  # bit for bit it did not reproduce
    assert "NOT REPRODUCED" in r.stdout
    assert f"{WHEEL}: content-equivalent (metadata differs: timestamps)" in r.stdout
    (bundle,) = out.glob("*.rebuild-failed.intoto.jsonl")
    found = statements(bundle)
    assert [s["predicateType"] for s in found] == [VSA, CE]
    assert found[0]["predicate"]["verificationResult"] == "FAILED"  # type: ignore[index]
    digest = found[1]["subject"][0]["digest"]["sha256"]  # type: ignore[index]
    assert digest == json.loads((out / "verify-report.json").read_text())["artifacts"][0]["verdict"]["a"]["sha256"]

    refused = rebuild(
        "attestation", "verify", str(bundle), "--key", str(keys[1]), "--artifact", str(provenance.parent / WHEEL)
    )
    assert refused.returncode == 1
    assert "a content-equivalence claim exists for this artifact" in refused.stderr
    accepted = rebuild("attestation", "verify", str(bundle), "--key", str(keys[1]), "--artifact",
                       str(provenance.parent / WHEEL), "--accept", "content-equivalent")  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    assert "content-equivalent (metadata differs: timestamps)" in accepted.stdout.splitlines()[0]


@pytest.mark.network
@pytest.mark.slow
def test_six_from_pypi_gets_a_claim_that_counts_only_when_accepted(keys: tuple[Path, Path], tmp_path: Path) -> None:
    """six 1.16.0's wheel was built with setuptools without SOURCE_DATE_EPOCH: its entries carry the build clock."""
    out = tmp_path / "six"
    r = rebuild("verify", "pypi:six==1.16.0", "--content-equivalence", "--key", str(keys[0]), "--out", str(out),
                "--no-diffoscope")  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "six-1.16.0-py2.py3-none-any.whl: content-equivalent (metadata differs: timestamps)" in r.stdout
    (bundle,) = out.glob("*.rebuild-failed.intoto.jsonl")
    assert [s["predicateType"] for s in statements(bundle)] == [VSA, CE]
    digest = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"  # PyPI's sha256 of the wheel
    refused = rebuild("attestation", "verify", str(bundle), "--key", str(keys[1]), "--digest", digest)
    assert refused.returncode == 1
    assert "is not accepted" in refused.stderr
    accepted = rebuild("attestation", "verify", str(bundle), "--key", str(keys[1]), "--digest", digest, "--accept",
                       "content-equivalent")  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    assert all(
        "content-equivalent (metadata differs: timestamps)" in accepted.stdout.splitlines()[i] for i in (0, 1, 2)
    )
