"""Embedded mode through the installed `rebuild` command: SQLite store, store-claim workers, real Docker.

Fast jobs (``fastjobs.py``): the stock `command` recipe, whose build copies one file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rebuild.build.sandbox import LABEL
from rebuild.service.runner import WORKER_LABEL
from tests.integration.service.conftest import wait_for
from tests.integration.service.fastjobs import fast_release
from tests.integration.test_pipeline import REBUILD, rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_service_containers")]


def service(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return rebuild(*args, "--data-dir", str(data))


def as_json(r: subprocess.CompletedProcess[str]) -> Any:
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_queue_work_status_publish_and_verify(tmp_path: Path, builder_image: str) -> None:
    data = tmp_path / "data"
    assert service(data, "init", "--backoff", "1").returncode == 0
    good = [fast_release(tmp_path / f"r{n}", n, builder_image) for n in (1, 2)]
    bad = fast_release(tmp_path / "bad", 3, builder_image, published=b"published bytes that no build makes\n")
    queued = as_json(service(data, "queue", "add", *map(str, [*good, bad]), "--json"))["queued"]
    assert [row["queued"] for row in queued] == [True, True, True]
    again = as_json(service(data, "queue", "add", str(good[0]), "--json"))["queued"]
    assert again[0]["queued"] is False and again[0]["key"] == queued[0]["key"]  # the same work: one job
    assert len(as_json(service(data, "queue", "ls", "--json"))["jobs"]) == 3

    worked = as_json(service(data, "worker", "--burst", "--no-diffoscope", "--name", "w1", "--json"))
    assert sorted(row["outcome"] for row in worked["jobs"]) == ["not reproduced"] * 2 + ["reproduced"] * 2
    status = as_json(service(data, "status", "--json"))
    assert status["jobs"] == {"done": 3} and status["verdicts"] == {"reproduced": 2, "not reproduced": 1}
    history = as_json(service(data, "history", str(bad), "--json"))
    (job,) = history["jobs"]
    assert [a["outcome"] for a in job["attempts"]] == ["not reproduced", "not reproduced"]  # re-checked once
    assert "content differs" in job["attempts"][-1]["classification"]

    out = tmp_path / "published"
    published = as_json(service(data, "publish", "--out", str(out), "--json"))
    assert len(published["signed"]) == 3 and len(published["published"]) == 3
    (pub,) = (out / "keys").glob("*.pub")
    passed = out / published["published"][0]
    check = rebuild(
        "attestation", "verify", str(passed), "--key", str(pub), "--artifact", str(good[0].parent / "data-1.txt")
    )
    assert check.returncode == 0, check.stderr
    failed = next(out / p for p in published["published"] if "data-3" in p)
    # a FAILED summary is signed and about the artifact, and its verdict is FAILED: verification says so (exit 1)
    artifact = bad.parent / "data-3.txt"
    check = rebuild("attestation", "verify", str(failed), "--key", str(pub), "--artifact", str(artifact), "--json")
    verdict = json.loads(check.stdout)
    assert check.returncode == 1 and verdict["envelopes"][0]["reached"] == "result"
    assert verdict["envelopes"][0]["signers"] and "'FAILED', not PASSED" in verdict["message"]
    assert list((failed.parent / "reports").glob("*.json"))  # the report the FAILED summary names
    changes = [json.loads(line) for line in (out / "changes.jsonl").read_text().splitlines()]
    assert [c["verdict"] for c in changes].count("FAILED") == 1 and (out / "changes.atom").is_file()

    from rebuild.attest.keys import load_public_key
    from rebuild.service.publish import verify_snapshot

    assert verify_snapshot(out, [load_public_key(pub)])["files"] >= 6
    check_published_links(out, published, pub, good, tmp_path / "layout")
    # publishing again changes no bundle, and a bundle is never rewritten
    assert as_json(service(data, "publish", "--out", str(out), "--json"))["published"] == []
    passed.write_text("tampered\n")
    r = service(data, "publish", "--out", str(out))
    assert r.returncode == 1 and "write-once" in r.stderr


def check_published_links(out: Path, published: Any, pub: Path, good: list[Path], tmp: Path) -> None:
    """A PASSED bundle has its in-toto link beside it (in the snapshot); in-toto verifies it against a layout
    made here (step `rebuild`, the service's key, threshold 1); a FAILED bundle has none."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from in_toto.models.layout import Layout, Step
    from in_toto.models.metadata import Metablock
    from securesystemslib.signer import CryptoSigner

    from rebuild.attest.intoto import verify_layout
    from rebuild.attest.keys import load_public_key

    assert published["links_skipped"] == [] and len(published["links"]) == 2
    snapshot = json.loads(base64.b64decode(json.loads((out / "snapshot.json").read_text())["payload"]))
    assert set(published["links"]) <= set(snapshot["files"])
    tmp.mkdir()
    assert rebuild("key", "generate", "--out", str(tmp / "owner"), "--type", "ed25519").returncode == 0
    root = Layout()
    root.expires = "2100-01-01T00:00:00Z"
    step = Step(name="rebuild")
    step.pubkeys = [root.add_functionary_key_from_path(str(pub))["keyid"]]
    step.threshold = 1
    root.steps = [step]
    for n, release in enumerate(good, start=1):
        name = f"data-{n}.txt"
        bundle = next(out / p for p in published["published"] if name in p)
        (link,) = bundle.parent.glob("rebuild.*.link")
        assert str(link.relative_to(out)) in published["links"]
        doc = json.loads(link.read_text())["signed"]
        artifact_sha256 = hashlib.sha256((release.parent / name).read_bytes()).hexdigest()
        assert doc["products"] == {name: {"sha256": artifact_sha256}}
        assert set(doc["materials"]) == {"source"}  # the `command` recipe's plan has no other input
        step.expected_products = [["CREATE", name], ["DISALLOW", "*"]]
        metablock = Metablock(signed=root)
        metablock.create_signature(CryptoSigner(load_pem_private_key((tmp / "owner.key").read_bytes(), None)))
        layout = tmp / f"{n}.layout"
        metablock.dump(str(layout))
        verdict = verify_layout(layout, [load_public_key(tmp / "owner.pub")], link.parent)
        assert verdict.passed, verdict.message
        assert verdict.steps[0].links == (link.name,)
    failed = next(out / p for p in published["published"] if "data-3" in p)
    assert not list(failed.parent.rglob("*.link"))  # never a link for a FAILED result
    index = json.loads((failed.parents[2] / "index.json").read_text())
    bundles = [b for v in index["versions"].values() for a in v.values() for b in a["bundles"]]
    assert sorted((b["verdict"], b["link"] is None) for b in bundles) == [("FAILED", True)] + [("PASSED", False)] * 2


def docker_containers(docker_client: Any, worker: str) -> list[Any]:
    return list(
        docker_client.containers.list(
            all=True, filters={"label": [LABEL, f"{WORKER_LABEL}={worker}"]}, ignore_removed=True
        )
    )


def test_a_worker_killed_mid_build_loses_its_job_to_another(
    tmp_path: Path, builder_image: str, docker_client: Any
) -> None:
    data = tmp_path / "data"
    assert service(data, "init", "--lease", "3", "--backoff", "0.1").returncode == 0
    slow = fast_release(tmp_path / "slow", 7, builder_image, command="sleep 5")
    assert service(data, "queue", "add", str(slow)).returncode == 0
    victim = subprocess.Popen([REBUILD, "worker", "--data-dir", str(data), "--name", "victim", "--no-diffoscope"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: any(c.status == "running" for c in docker_containers(docker_client, "victim")),
                 "the victim's build container to run", timeout=120)  # fmt: skip
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert docker_containers(docker_client, "victim")  # left behind by the kill
    survivor = as_json(service(data, "worker", "--burst", "--no-diffoscope", "--name", "survivor", "--json"))
    assert [row["outcome"] for row in survivor["jobs"]] == ["reproduced"]
    (job,) = as_json(service(data, "history", str(slow), "--json"))["jobs"]
    assert job["status"] == "done" and job["verdict"] == "reproduced"
    assert [(a["worker"], a["outcome"]) for a in job["attempts"]] == [("victim", "lost"), ("survivor", "reproduced")]
    assert docker_containers(docker_client, "victim") == []  # removed by the survivor


def test_a_stopped_worker_gives_its_job_back(tmp_path: Path, builder_image: str, docker_client: Any) -> None:
    """SIGTERM (or Ctrl-C): the running job goes back to the queue, uncounted, and its container goes."""
    data = tmp_path / "data"
    assert service(data, "init").returncode == 0
    slow = fast_release(tmp_path / "slow", 8, builder_image, command="sleep 300")
    assert service(data, "queue", "add", str(slow)).returncode == 0
    worker = subprocess.Popen([REBUILD, "worker", "--data-dir", str(data), "--name", "stopping", "--no-diffoscope"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: any(c.status == "running" for c in docker_containers(docker_client, "stopping")),
                 "the build container to run", timeout=120)  # fmt: skip
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 130 and "interrupted" in err
    (job,) = as_json(service(data, "history", str(slow), "--json"))["jobs"]
    assert job["status"] == "queued" and [a["outcome"] for a in job["attempts"]] == ["interrupted"]
    assert docker_containers(docker_client, "stopping") == []
