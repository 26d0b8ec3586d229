"""The service on three real PyPI releases: one reproduces, one differs only in timestamps, one does not exist.

Embedded mode (SQLite), one burst worker, then the published tree's PASSED and FAILED bundles are checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pipeline import rebuild

pytestmark = [
    pytest.mark.docker,
    pytest.mark.network,
    pytest.mark.usefixtures("builder_image", "no_leftover_service_containers"),
]

TOMLI_WHEEL = "tomli-2.0.1-py3-none-any.whl"
TOMLI_SHA256 = "939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc"
SIX_WHEEL = "six-1.16.0-py2.py3-none-any.whl"


def service(data: Path, *args: str) -> Any:
    r = rebuild(*args, "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_three_pypi_releases_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    service(data, "init")
    targets = ["pypi:tomli==2.0.1", "pypi:six==1.16.0", "pypi:no-such-project-rebuild-verifier-xyz==1.0"]
    queued = service(data, "queue", "add", *targets)["queued"]
    assert [row["queued"] for row in queued] == [True, True, True]
    assert "does not resolve" in queued[2]["note"]
    service(data, "worker", "--burst", "--no-diffoscope")
    status = service(data, "status")
    assert status["verdicts"] == {"reproduced": 1, "not reproduced": 1, "bad input": 1}, status
    six = service(data, "status", "pypi:six==1.16.0")["jobs"][0]
    assert six["verdict"] == "not reproduced"
    assert six["attempts"][-1]["classification"].endswith("content identical, timestamps differ")
    unknown = service(data, "history", targets[2])["jobs"][0]
    assert unknown["verdict"] == "bad input" and "no project" in unknown["attempts"][0]["detail"]

    out = tmp_path / "published"
    service(data, "publish", "--out", str(out))
    (key,) = (out / "keys").glob("*.pub")
    passed = out / "pypi" / "tomli" / "2.0.1" / TOMLI_WHEEL / "rebuild.intoto.jsonl"
    check = rebuild("attestation", "verify", str(passed), "--key", str(key), "--digest", f"sha256:{TOMLI_SHA256}")
    assert check.returncode == 0, check.stderr
    failed = out / "pypi" / "six" / "1.16.0" / SIX_WHEEL / "rebuild.intoto.jsonl"
    six_sha256 = six["attempts"][-1]["artifacts"][SIX_WHEEL]
    check = rebuild(
        "attestation", "verify", str(failed), "--key", str(key), "--digest", f"sha256:{six_sha256}", "--json"
    )
    verdict = json.loads(check.stdout)
    assert check.returncode == 1 and verdict["envelopes"][-1]["reached"] == "result"  # signature and subject passed
    # FAILED, with the service's content-equivalence claim beside it (see test_equivalence_service.py)
    assert "a content-equivalence claim exists for this artifact" in verdict["message"]
    index = json.loads((out / "pypi" / "six" / "index.json").read_text())
    assert index["versions"]["1.16.0"][SIX_WHEEL]["latest"] == "FAILED"
    assert not (out / "pypi" / "no-such-project-rebuild-verifier-xyz").exists()  # nothing verified, nothing signed
