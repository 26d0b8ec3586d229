"""Intake (normalized targets, keys, unresolved targets), signing checks and the published tree, without Docker."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rebuild.attest import statements
from rebuild.attest.dsse import sign as dsse_sign
from rebuild.attest.keys import generate, load_public_key, write_keypair
from rebuild.attest.snapshot import SNAPSHOT_TYPE, snapshot_payload
from rebuild.attest.statements import ResourceRef, Subject
from rebuild.errors import InputError, ProvenanceError, VerificationError
from rebuild.service import jobs
from rebuild.service.blobs import BlobStore
from rebuild.service.config import ServicePaths, init_service
from rebuild.service.intake import add_targets, describe, normalize
from rebuild.service.models import Attempt, Job
from rebuild.service.publish import _flag_regressions, publish, verify_snapshot
from rebuild.service.store import Store, engine_url
from rebuild.service.views import history, list_jobs, resolve_keys
from rebuild.untrusted import path_component

SHA_A = "a" * 64


@pytest.mark.parametrize(
    ("target", "normalized"),
    [
        ("pypi:Tomli==2.0.1", "pypi:tomli==2.0.1"),
        ("pypi:Foo_Bar", "pypi:foo-bar"),
        ("deb:hello=2.10-3", "deb:hello=2.10-3"),
    ],
)
def test_normalize(target: str, normalized: str) -> None:
    assert normalize(target) == normalized


def test_unresolved_targets_are_keyed_by_target_and_error() -> None:
    one = describe("pypi:Nope==1", None, InputError("no project 'nope'"))
    assert one.where == ("pypi", "nope", "1") and one.decided_by["unresolved"] == "no project 'nope'"
    assert describe("pypi:nope==1", None, InputError("no project 'nope'")).key == one.key


def test_db_urls() -> None:
    assert engine_url("postgresql://u@h:5/d") == "postgresql+psycopg://u@h:5/d"
    with pytest.raises(InputError, match="not a database URL"):
        engine_url("mysql://h/d")


@pytest.fixture()
def service(tmp_path: Path) -> tuple[Store, ServicePaths]:
    paths = ServicePaths(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    init_service(paths)
    return Store.open(paths.db), paths


def test_a_store_that_was_not_made_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not initialized"):
        Store.open(f"sqlite:///{tmp_path / 'none.db'}")


def _finished(store: Store, blobs: BlobStore, n: int, outcome: str, payloads: list[bytes], compare: str | None) -> str:
    """A job whose attempt left these unsigned statements, finished with ``outcome``."""
    decided = {"target": f"t{n}"}
    job, _ = store.add_job(f"/r/pkg-{n}.0.tar.gz.intoto.jsonl", ("generic", "pkg", f"{n}.0"), jobs.job_key(decided),
                           decided, "")  # fmt: skip
    claim = store.claim("w", "", 60)
    assert claim is not None and claim.key == job.key
    bundle = "".join(dsse_sign(p, []).to_json() + "\n" for p in payloads).encode()
    fields = {"artifacts": {f"pkg-{n}.0.tar.gz": SHA_A}, "statements_blob": blobs.put_bytes(bundle),
              "compare_blob": compare}  # fmt: skip
    store.finish(claim, outcome, fields)
    if outcome == jobs.NOT_REPRODUCED:  # the re-check
        again = store.claim("w", "", 60)
        assert again is not None
        store.finish(again, outcome, fields)
    return job.key


def _vsa(n: int, passed: bool, report: str | None = None) -> bytes:
    ref = ResourceRef("compare-report.json", {"sha256": report}) if report else None
    subject = Subject(f"pkg-{n}.0.tar.gz", {"sha256": SHA_A})
    return statements.verification_summary(
        subject, passed=passed, resource_uri=subject.name, input_attestations=[], report=ref
    )


def test_sign_and_publish_a_tree(service: tuple[Store, ServicePaths], tmp_path: Path) -> None:
    store, paths = service
    blobs = paths.blobs
    report = blobs.put_bytes(b'{"comparisons": []}\n')
    _finished(store, blobs, 1, jobs.REPRODUCED, [_vsa(1, True)], None)
    failed_key = _finished(store, blobs, 2, jobs.NOT_REPRODUCED, [_vsa(2, False, report)], report)
    out = tmp_path / "out"
    signer = paths.signer()
    public = load_public_key(paths.public_key)
    doc = publish(store, blobs, out, signer, public, paths.public_key.read_bytes())
    assert sorted(doc["published"]) == ["generic/pkg/1.0/pkg-1.0.tar.gz/rebuild.intoto.jsonl",
                                        "generic/pkg/2.0/pkg-2.0.tar.gz/rebuild.intoto.jsonl"]  # fmt: skip
    assert (out / "generic/pkg/2.0/pkg-2.0.tar.gz/reports" / f"{report}.json").is_file()
    index = json.loads((out / "generic/pkg/index.json").read_text())
    assert index["versions"]["1.0"]["pkg-1.0.tar.gz"]["latest"] == "PASSED"
    assert verify_snapshot(out, [public])["files"] == 7
    other = generate()
    write_keypair(other, tmp_path / "other")
    with pytest.raises(VerificationError, match="not signed by a trusted key"):
        verify_snapshot(out, [load_public_key(tmp_path / "other.pub")])
    (out / "changes.jsonl").write_text("")
    with pytest.raises(VerificationError, match=r"changes\.jsonl"):
        verify_snapshot(out, [public])
    # a signed listing naming a file outside the tree is refused, never read
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    listing = snapshot_payload({"../outside": hashlib.sha256(b"secret").hexdigest()}, signer.keyid, 9,
                               datetime.now(UTC).replace(microsecond=0), timedelta(days=1))  # fmt: skip
    envelope = dsse_sign(json.dumps(listing).encode(), [signer], payload_type=SNAPSHOT_TYPE)
    (out / "snapshot.json").write_text(envelope.to_json())
    with pytest.raises(VerificationError, match="not a safe relative path"):
        verify_snapshot(out, [public])
    assert store.retry([failed_key]) == [failed_key]
    hist = history(store, "/r/pkg-2.0.tar.gz.intoto.jsonl")
    assert hist["jobs"][0]["status"] == "queued" and len(hist["jobs"][0]["attestations"]) == 1
    assert resolve_keys(store, [failed_key[:12]]) == [failed_key]
    assert {row["status"] for row in list_jobs(store, ["queued"])} == {"queued"}


def test_a_summary_that_disagrees_with_the_store_is_never_signed(
    service: tuple[Store, ServicePaths], tmp_path: Path
) -> None:
    store, paths = service
    _finished(store, paths.blobs, 3, jobs.NOT_REPRODUCED, [_vsa(3, True)], None)  # PASSED, but not reproduced
    doc = publish(store, paths.blobs, tmp_path / "out", paths.signer(), load_public_key(paths.public_key), b"")
    assert doc["signed"] == [] and doc["bundles"] == 0
    assert "does not record" in doc["refused"][0]
    with store.session() as s:
        assert s.query(Job).count() == 1 and s.query(Attempt).count() == 2


def test_add_targets_queues_an_unresolvable_target(service: tuple[Store, ServicePaths]) -> None:
    store, _ = service

    def resolver(target: str, work: Path):  # type: ignore[no-untyped-def]
        raise ProvenanceError(f"{target} holds no SLSA provenance statement")

    rows = add_targets(store, ["/nowhere/x.intoto.jsonl", "/nowhere/x.intoto.jsonl"], "", resolver)
    assert [r["queued"] for r in rows] == [True, False] and "does not resolve" in rows[0]["note"]


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../etc", "_etc"),
        ("a/b", "a_b"),
        ("", "_"),
        ("ok-1.0", "ok-1.0"),
        ("..", "_"),
        ("-rf", "rf"),
        (".hidden", "hidden"),
    ],
)
def test_path_components_from_outside_are_contained(name: str, safe: str) -> None:
    assert path_component(name) == safe


def test_a_failed_after_a_passed_is_a_regression() -> None:
    where = {"ecosystem": "pypi", "name": "a", "version": "1", "artifact": "a.whl"}
    entries = [
        {**where, "verdict": "PASSED"},
        {**where, "verdict": "FAILED"},
        {**where, "artifact": "b", "verdict": "FAILED"},
    ]
    _flag_regressions(entries)
    assert [(e["seq"], e["previous"], e["regression"]) for e in entries] == [
        (1, None, False),
        (2, "PASSED", True),
        (3, None, False),
    ]


def test_blobs_are_checked_on_read(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    digest = blobs.put_bytes(b"x")
    blobs.path(digest).write_bytes(b"y")
    with pytest.raises(InputError, match="not what its name says"):
        blobs.read_bytes(digest)
    with pytest.raises(InputError):
        blobs.path("../../etc/passwd")
