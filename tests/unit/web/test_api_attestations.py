"""``GET /api/v1/attestations?sha256=`` when a digest has more bundles than one answer holds: newest first, each
signing key's newest always in, and the cut said in ``X-Rebuild-Truncated``; then the same API served by a
real uvicorn on 127.0.0.1 and read by ``attestation verify --from-feed URL/api/v1``.

The attack: 100 PASSED, then a FAILED; an answer of the 100 oldest hid the FAILED, silently.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from rebuild.attest import dsse
from rebuild.attest.keys import PrivateKey
from rebuild.service import jobs
from rebuild.service.blobs import BlobStore
from rebuild.service.models import Attestation
from rebuild.service.store import Store, make_engine, migrate
from rebuild.web.api import MAX_BUNDLES
from rebuild.web.app import create_app
from tests.integration.service.servers import wait_for
from tests.unit.attest.test_feeds import ALICE, BOB, DIGEST, policy, summary, verify


def fill(tmp_path: Path, signed: list[tuple[PrivateKey, bool]]) -> tuple[Store, BlobStore, list[bytes]]:
    """A store whose one job has these attestations about DIGEST, in this order (oldest first)."""
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(make_engine(url))
    store, blobs = Store(url), BlobStore(tmp_path / "blobs")
    key = hashlib.sha256(b"pypi:demo==1.0").hexdigest()
    store.add_job("pypi:demo==1.0", ("pypi", "demo", "1.0"), key, {"target": "pypi:demo==1.0"}, "")
    claim = store.claim("w1", "", 60.0)
    assert claim is not None
    store.finish(claim, jobs.REPRODUCED, {"artifacts": {"demo-1.0.tar.gz": DIGEST}, "exit_code": 0})
    job = store.job(key)
    assert job is not None and job.attempt_id is not None
    bundles = []
    with store.session() as s:
        for minute, (signer, passed) in enumerate(signed):
            when = f"2025-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
            bundle = (dsse.sign(summary(passed, when=when), [signer]).to_json() + "\n").encode()
            bundles.append(bundle)
            verdict = "PASSED" if passed else "FAILED"
            s.add(Attestation(job_key=key, attempt_id=job.attempt_id, artifact="demo-1.0.tar.gz", verdict=verdict,
                              subject_sha256=DIGEST, bundle_blob=blobs.put_bytes(bundle), keyid=signer.keyid,
                              signed_at=time.time()))  # fmt: skip
    return store, blobs, bundles


MANY = [(ALICE, True)] + [(BOB, True)] * MAX_BUNDLES + [(BOB, False)]  # Alice's word is the oldest of all


def test_an_answer_is_newest_first_keeps_each_keys_newest_and_says_it_was_cut(tmp_path: Path) -> None:
    store, blobs, bundles = fill(tmp_path, MANY)
    with TestClient(create_app(store, blobs)) as client:
        r = client.get("/api/v1/attestations", params={"sha256": DIGEST})
    assert r.status_code == 200 and r.headers["x-rebuild-truncated"] == "true"
    lines = r.content.splitlines(keepends=True)
    assert lines[0] == bundles[-1]  # Bob's FAILED, the newest, first
    assert lines == [*reversed(bundles[-MAX_BUNDLES:]), bundles[0]]  # 100 newest, and Alice's only word
    assert bundles[1] not in lines  # Bob's oldest PASSED is what was cut
    store.close()


def test_an_answer_that_holds_everything_says_so(tmp_path: Path) -> None:
    store, blobs, bundles = fill(tmp_path, [(ALICE, True), (BOB, True), (BOB, False)])
    with TestClient(create_app(store, blobs)) as client:
        r = client.get("/api/v1/attestations", params={"sha256": DIGEST})
    assert r.headers["x-rebuild-truncated"] == "false" and r.content == b"".join(reversed(bundles))
    store.close()


@pytest.fixture()
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    store, blobs, _ = fill(tmp_path, request.param)
    server = uvicorn.Server(uvicorn.Config(create_app(store, blobs), host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn on 127.0.0.1", timeout=30)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join()
        store.close()


@pytest.mark.parametrize("served", [MANY], indirect=True)
def test_a_cut_api_answer_is_rejected_by_the_reader(served: str) -> None:
    verdict = verify(policy(ALICE, BOB), served)
    assert not verdict.passed and verdict.feeds[0].status == "rejected"
    assert "answer cut: the server says it left bundles out" in verdict.message


@pytest.mark.parametrize("served", [[(ALICE, True), (BOB, True), (BOB, False)]], indirect=True)
def test_a_whole_api_answer_shows_the_newest_failed(served: str) -> None:
    verdict = verify(policy(ALICE, BOB), served)
    assert not verdict.passed and [(c.signer, c.result) for c in verdict.conflicts] == [(BOB.keyid, "FAILED")]
