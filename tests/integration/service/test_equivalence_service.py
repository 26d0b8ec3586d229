"""Content equivalence in the service, end to end through the installed `rebuild` command: embedded store, a
real burst worker process, real Docker, six 1.16.0 from real PyPI (its wheel was built with setuptools without
SOURCE_DATE_EPOCH: content identical, timestamps differ).

The worker records the label; `queue ls`, `status` and `history` show it; `publish` signs the worker's claim
beside the FAILED summary in one bundle, which `attestation verify` counts only with `--accept`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pipeline import rebuild

pytestmark = [
    pytest.mark.docker,
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.usefixtures("builder_image", "no_leftover_service_containers"),
]

TARGET = "pypi:six==1.16.0"
WHEEL = "six-1.16.0-py2.py3-none-any.whl"
WHEEL_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"  # PyPI's
LABEL = "content-equivalent (metadata differs: timestamps)"
VSA = "https://slsa.dev/verification_summary/v1"
CE = "https://rebuild-verifier.dev/content-equivalence/v1"


def service(data: Path, *args: str) -> Any:
    r = rebuild(*args, "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_six_is_recorded_content_equivalent_and_its_claim_published_beside_failed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert service(data, "init")["settings"]["content_equivalence"] == "true"  # on by default
    service(data, "queue", "add", TARGET)
    worked = service(data, "worker", "--burst", "--no-diffoscope", "--name", "w1")
    assert [row["outcome"] for row in worked["jobs"]] == ["not reproduced"] * 2  # checked again, as ever

    (job,) = service(data, "queue", "ls")["jobs"]
    assert job["verdict"] == "not reproduced" and job["equivalence"] == LABEL
    history = service(data, "history", TARGET)["jobs"][0]
    assert [a["equivalence"] for a in history["attempts"]] == [LABEL, LABEL]
    assert history["attempts"][-1]["classification"].endswith("content identical, timestamps differ")
    assert service(data, "status", TARGET)["jobs"][0]["attempts"][-1]["equivalence"] == LABEL
    table = rebuild("queue", "ls", "--data-dir", str(data), env={"COLUMNS": "250"})
    assert table.returncode == 0 and "content-equivalent" in table.stdout.splitlines()[0] and LABEL in table.stdout
    text = rebuild("history", TARGET, "--data-dir", str(data))
    assert text.returncode == 0 and text.stdout.count(f"; {LABEL}") == 2

    out = tmp_path / "published"
    published = service(data, "publish", "--out", str(out))
    assert published["refused"] == [] and [s["verdict"] for s in published["signed"]] == ["FAILED"]
    bundle = out / "pypi" / "six" / "1.16.0" / WHEEL / "rebuild.intoto.jsonl"
    found = [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in bundle.read_text().splitlines()]
    assert [s["predicateType"] for s in found] == [VSA, CE]
    assert found[0]["predicate"]["verificationResult"] == "FAILED"  # the summary stays FAILED
    assert found[1]["subject"][0]["digest"]["sha256"] == WHEEL_SHA256
    assert found[1]["predicate"]["rebuilt"]["digest"]["sha256"] != WHEEL_SHA256

    key = data / "keys" / "service.pub"
    args = ("attestation", "verify", str(bundle), "--key", str(key), "--digest", f"sha256:{WHEEL_SHA256}")
    refused = rebuild(*args)
    assert refused.returncode == 1 and "a content-equivalence claim exists for this artifact" in refused.stderr
    accepted = rebuild(*args, "--accept", "content-equivalent")
    assert accepted.returncode == 0, accepted.stderr
    assert LABEL in accepted.stdout.splitlines()[0]
