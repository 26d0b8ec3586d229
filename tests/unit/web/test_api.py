"""/api/v1 over a real SQLite store filled through the store's own operations (add, claim, finish, retry),
read through FastAPI's test client: every answer compared with what the store's views say, and the attacks.

The end-to-end run with real workers is in tests/integration/web/test_api_service.py.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from rebuild.attest import dsse
from rebuild.attest.keys import generate
from rebuild.recipes import RecipeBook
from rebuild.service import jobs, tokens, views
from rebuild.service.blobs import BlobStore
from rebuild.service.intake import resolver_for
from rebuild.service.models import Attestation, Token
from rebuild.service.store import Store, make_engine, migrate
from rebuild.web.api import MAX_BODY
from rebuild.web.app import create_app

ARTIFACT = b"the published artifact\n"
DIGEST = hashlib.sha256(ARTIFACT).hexdigest()


@dataclass
class World:
    store: Store
    blobs: BlobStore
    client: TestClient
    keys: dict[str, str]  # target -> job key
    bundle: bytes
    log: str
    binary: str


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(store: Store, target: str, where: tuple[str, str, str], outcome: str, fields: dict[str, Any]) -> str:
    key = hashlib.sha256(target.encode()).hexdigest()
    store.add_job(target, where, key, {"target": target}, "")
    decision = None
    while decision is None or not decision.final:  # "not reproduced" is checked again before it is final
        claim = store.claim("w1", "", 60.0)
        assert claim is not None and claim.key == key
        decision = store.finish(claim, outcome, fields)
    return key


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(make_engine(url))
    store, blobs = Store(url), BlobStore(tmp_path / "blobs")
    store.put_settings(jobs.RetryPolicy(infrastructure_attempts=1).as_settings())
    log = blobs.put_bytes(b"step 1\n<script>alert(1)</script>\n")
    binary = blobs.put_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    keys = {
        "pypi:demo==1.0": _run(store, "pypi:demo==1.0", ("pypi", "demo", "1.0"), jobs.REPRODUCED,
                               {"artifacts": {"demo-1.0.tar.gz": DIGEST}, "log_blob": log,
                                "classification": "identical", "exit_code": 0}),
        "pypi:demo==1.1": _run(store, "pypi:demo==1.1", ("pypi", "demo", "1.1"), jobs.NOT_REPRODUCED,
                               {"artifacts": {"demo-1.1.tar.gz": "ab" * 32}, "diffoscope_blob": binary,
                                "classification": "content differs: demo/x.py"}),
        "pypi:<script>==1": _run(store, "pypi:<script>==1", ("pypi", "<script>", "1"), jobs.BAD_INPUT,
                                 {"detail": "no project <script>"}),
    }  # fmt: skip
    signer = generate()
    envelope = dsse.sign(json.dumps({"_type": "https://in-toto.io/Statement/v1"}).encode(), [signer])
    bundle = (envelope.to_json() + "\n").encode()
    with store.session() as s:
        job = store.job(keys["pypi:demo==1.0"])
        assert job is not None and job.attempt_id is not None
        s.add(Attestation(job_key=job.key, attempt_id=job.attempt_id, artifact="demo-1.0.tar.gz",
                          subject_sha256=DIGEST, verdict="PASSED", bundle_blob=blobs.put_bytes(bundle),
                          keyid=signer.keyid, signed_at=time.time()))  # fmt: skip
    app = create_app(store, blobs)
    app.state.resolver = resolver_for(RecipeBook([]), tmp_path / "cache", f"http://127.0.0.1:{closed_port()}/simple")
    with TestClient(app) as client:
        yield World(store, blobs, client, keys, bundle, log, binary)
    store.close()


def token(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.create(world.store, ['queue']).secret}"}


# --- reads: what the store holds -------------------------------------------------------------------------


def test_targets_are_the_stores_targets_with_their_newest_verdict(world: World) -> None:
    page = world.client.get("/api/v1/targets").json()
    by_target = {j["target"]: j for j in views.list_jobs(world.store)}
    assert page["total"] == len(by_target) == 3
    assert {t["target"]: (t["status"], t["verdict"]) for t in page["items"]} == {
        k: (v["status"], v["verdict"]) for k, v in by_target.items()
    }
    only = world.client.get("/api/v1/targets", params={"ecosystem": "pypi", "name": "<script>"}).json()
    assert [t["target"] for t in only["items"]] == ["pypi:<script>==1"]
    second = world.client.get("/api/v1/targets", params={"limit": 1, "offset": 1}).json()
    assert second["total"] == 3 and [t["target"] for t in second["items"]] == [page["items"][1]["target"]]


def test_a_release_is_its_history(world: World) -> None:
    got = world.client.get("/api/v1/releases/pypi/demo/1.0").json()
    want = views.history(world.store, "pypi:demo==1.0")
    assert (got["ecosystem"], got["name"], got["version"]) == (want["ecosystem"], want["name"], want["version"])
    assert [j["key"] for j in got["jobs"]] == [j["key"] for j in want["jobs"]]
    (job,), (wanted,) = got["jobs"], want["jobs"]
    assert (job["verdict"], job["decided_by"]) == (wanted["verdict"], wanted["decided_by"])
    assert [(a["id"], a["outcome"], a["log"], a["artifacts"]) for a in job["attempts"]] == [
        (a["id"], a["outcome"], a["log"], a["artifacts"]) for a in wanted["attempts"]
    ]
    assert [(a["verdict"], a["bundle"]) for a in job["attestations"]] == [
        (a["verdict"], a["bundle"]) for a in wanted["attestations"]
    ]
    assert world.client.get("/api/v1/releases/pypi/Demo/1.0").json()["jobs"] == got["jobs"]  # PEP 503 names


def test_an_attempt_with_its_blob_links_and_the_blobs(world: World) -> None:
    (job,) = views.history(world.store, "pypi:demo==1.1")["jobs"]
    wanted = job["attempts"][-1]
    got = world.client.get(f"/api/v1/attempts/{wanted['id']}").json()
    assert (got["outcome"], got["classification"], got["artifacts"]) == (
        wanted["outcome"], wanted["classification"], wanted["artifacts"],
    )  # fmt: skip
    assert got["diffoscope"] == world.binary and got["links"] == {"diffoscope": f"/api/v1/blobs/{world.binary}"}
    binary = world.client.get(got["links"]["diffoscope"])
    assert (
        binary.headers["content-type"] == "application/octet-stream"
        and "attachment" in binary.headers["content-disposition"]
    )
    log = world.client.get(f"/api/v1/blobs/{world.log}")
    assert log.content == world.blobs.read_bytes(world.log)
    assert log.headers["content-type"] == "text/plain; charset=utf-8"  # a <script> in a log is never HTML
    assert log.headers["x-content-type-options"] == "nosniff" and "sandbox" in log.headers["content-security-policy"]


def test_an_altered_blob_is_refused_not_served(world: World) -> None:
    world.blobs.path(world.log).write_bytes(b"altered\n")
    r = world.client.get(f"/api/v1/blobs/{world.log}")
    assert r.status_code == 503 and "not what its name says" in r.json()["detail"]


def test_stats_count_releases_by_their_newest_job(world: World) -> None:
    stats = world.client.get("/api/v1/stats").json()
    verdicts = views.status(world.store)["verdicts"]
    (pypi,) = stats["ecosystems"]
    assert pypi["counts"]["reproduced"] == verdicts["reproduced"] == 1
    assert pypi["counts"]["not reproduced"] == verdicts["not reproduced"] == 1
    assert pypi["counts"]["could not rebuild"] == verdicts["bad input"] == 1
    assert pypi["rate"] == pytest.approx(1 / 3) and stats["attestations"] == views.status(world.store)["attestations"]


def test_the_change_feed_is_a_monotonic_cursor(world: World) -> None:
    first = world.client.get("/api/v1/changes").json()
    kinds = [(c["kind"], c["target"], c["verdict"]) for c in first["changes"]]
    assert kinds == [
        ("verdict", "pypi:demo==1.0", "reproduced"), ("verdict", "pypi:demo==1.1", "not reproduced"),
        ("verdict", "pypi:<script>==1", "bad input"), ("attestation", "pypi:demo==1.0", "PASSED"),
    ]  # fmt: skip
    assert first["changes"][-1]["attestation"]["subject_sha256"] == DIGEST and first["more"] is False
    ids = [c["id"] for c in first["changes"]]
    assert ids == sorted(ids) and first["next"] == ids[-1]
    nothing = world.client.get("/api/v1/changes", params={"since": first["next"]}).json()
    assert nothing["changes"] == [] and nothing["next"] == first["next"]
    key = world.keys["pypi:demo==1.1"]
    assert world.store.retry([key]) == [key]  # a new round: its verdict is a new entry, after the cursor
    claim = world.store.claim("w2", "", 60.0)
    assert claim is not None
    world.store.finish(claim, jobs.REPRODUCED, {})
    later = world.client.get("/api/v1/changes", params={"since": first["next"]}).json()
    assert [(c["job_key"], c["verdict"]) for c in later["changes"]] == [(key, "reproduced")]
    paged = world.client.get("/api/v1/changes", params={"limit": 2}).json()
    assert paged["more"] is True and [c["id"] for c in paged["changes"]] == ids[:2]


def test_verify_says_what_this_rebuilder_says(world: World) -> None:
    said = world.client.get("/api/v1/verify", params={"purl": "pkg:pypi/Demo@1.0"}).json()
    (job,) = views.history(world.store, "pypi:demo==1.0")["jobs"]
    assert (said["purl"], said["verdict"], said["job_key"]) == ("pkg:pypi/demo@1.0", job["verdict"], job["key"])
    assert [a["bundle"] for a in said["attestations"]] == [a["bundle"] for a in job["attestations"]]
    assert world.client.get("/api/v1/verify", params={"purl": "pkg:pypi/demo@9.9"}).status_code == 404


def test_attestations_by_digest_are_the_signed_lines(world: World) -> None:
    r = world.client.get("/api/v1/attestations", params={"sha256": DIGEST})
    assert r.status_code == 200 and r.headers["content-type"] == "application/jsonl"
    assert r.content == world.bundle
    assert world.client.get("/api/v1/attestations", params={"sha256": "0" * 64}).status_code == 404


def test_the_openapi_page_documents_every_endpoint(world: World) -> None:
    paths = world.client.get("/api/v1/openapi.json").json()["paths"]
    assert {p.removeprefix("/api/v1") for p in paths} >= {
        "/targets", "/releases/{ecosystem}/{name}/{version}", "/attempts/{attempt_id}", "/blobs/{sha256}", "/stats",
        "/changes", "/verify", "/attestations", "/queue", "/retry",
    }  # fmt: skip


# --- writes ----------------------------------------------------------------------------------------------


def test_a_write_without_a_token_is_401_and_with_one_the_job_is_queued(world: World) -> None:
    body = {"target": "pypi:newthing==2.0"}
    r = world.client.post("/api/v1/queue", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "pypi:newthing==2.0" not in {j["target"] for j in views.list_jobs(world.store)}
    r = world.client.post("/api/v1/queue", json=body, headers=token(world))
    assert r.status_code == 202, r.text
    queued = {j["target"]: j for j in views.list_jobs(world.store)}
    assert queued["pypi:newthing==2.0"]["status"] == "queued" and r.json()["key"] == queued["pypi:newthing==2.0"]["key"]
    assert "does not resolve" in r.json()["note"]  # the index is a closed port: queued, a worker records why


def test_retry_with_a_token(world: World) -> None:
    key = world.keys["pypi:demo==1.1"]
    assert world.client.post("/api/v1/retry", json={"jobs": [key[:12]]}).status_code == 401
    r = world.client.post("/api/v1/retry", json={"jobs": [key[:12]]}, headers=token(world))
    assert r.status_code == 200 and r.json()["retried"] == [key]
    assert {j["key"]: j["status"] for j in views.list_jobs(world.store)}[key] == "queued"
    r = world.client.post("/api/v1/retry", json={"jobs": ["deadbeefdeadbeef"]}, headers=token(world))
    assert r.status_code == 404 and "no job is" in r.json()["detail"]


def test_revoked_unknown_malformed_and_wrong_scope_tokens(world: World) -> None:
    made = tokens.create(world.store, ["queue"], "ci")
    good = {"Authorization": f"Bearer {made.secret}"}
    assert (
        world.client.post("/api/v1/retry", json={"jobs": [world.keys["pypi:demo==1.0"]]}, headers=good).status_code
        == 200
    )
    tokens.revoke(world.store, "ci")
    for headers in (
        good, {"Authorization": "Bearer rbv_" + "A" * 43}, {"Authorization": "Bearer " + "x" * 5000},
        {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"},
    ):  # fmt: skip
        r = world.client.post("/api/v1/queue", json={"target": "pypi:a==1"}, headers=headers)
        assert r.status_code == 401 and "www-authenticate" in r.headers, headers
    other = tokens.create(world.store, ["queue"])
    with world.store.session() as s:  # a token a later version made for another scope
        s.execute(update(Token).where(Token.id == other.id).values(scopes="read"))
    r = world.client.post(
        "/api/v1/queue", json={"target": "pypi:a==1"}, headers={"Authorization": f"Bearer {other.secret}"}
    )
    assert r.status_code == 403 and "scope" in r.json()["detail"]


# --- attacks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/etc/passwd", id="a-file-on-the-server"),
        pytest.param("../../service.db", id="relative-path"),
        pytest.param("pypi:x==1; rm -rf /", id="shell"),
        pytest.param("pypi:x==1\nrebuild", id="newline"),
        pytest.param("pypi:x", id="unpinned"),
        pytest.param("pypi:" + "a" * 290 + "==1", id="long"),
        pytest.param("deb:Hello=1", id="deb-upper"),
        pytest.param("", id="empty"),
    ],
)
def test_hostile_targets_are_refused(world: World, target: str) -> None:
    before = len(views.list_jobs(world.store))
    r = world.client.post("/api/v1/queue", json={"target": target}, headers=token(world))
    assert r.status_code == 422 and len(views.list_jobs(world.store)) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"target": "pypi:a==1", "admin": True}, 422, id="extra-field"),
        pytest.param({"target": ["pypi:a==1"]}, 422, id="list"),
        pytest.param({"target": "pypi:a==1", "tags": ["mem high"]}, 400, id="bad-tag"),
        pytest.param({"target": "pypi:a==1", "tags": ["a=b"] * 17}, 422, id="many-tags"),
    ],
)
def test_hostile_bodies_are_refused(world: World, body: dict[str, Any], code: int) -> None:
    r = world.client.post("/api/v1/queue", json=body, headers=token(world))
    assert r.status_code == code and isinstance(r.json()["detail"], str | list)


def test_oversized_bodies_are_413_declared_or_streamed(world: World) -> None:
    big = json.dumps({"target": "pypi:a==1", "pad": "x" * MAX_BODY}).encode()
    r = world.client.post("/api/v1/queue", content=big, headers={**token(world), "Content-Type": "application/json"})
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 1024

    r = world.client.post(
        "/api/v1/queue", content=chunks(), headers={**token(world), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    r = world.client.post(
        "/api/v1/retry", content=b"{not json", headers={**token(world), "Content-Type": "application/json"}
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        pytest.param("/targets", {"limit": 10**9}, 422, id="huge-limit"),
        pytest.param("/targets", {"limit": 0}, 422, id="zero-limit"),
        pytest.param("/targets", {"offset": -1}, 422, id="negative-offset"),
        pytest.param("/targets", {"offset": "1e99"}, 422, id="float-offset"),
        pytest.param("/targets", {"ecosystem": "pypi' OR 1=1 --"}, 422, id="sql-ecosystem"),
        pytest.param("/changes", {"since": 2**70}, 422, id="huge-cursor"),
        pytest.param("/changes", {"since": "1; DROP TABLE jobs"}, 422, id="sql-cursor"),
        pytest.param("/attempts/0", {}, 422, id="attempt-zero"),
        pytest.param("/attempts/99999", {}, 404, id="unknown-attempt"),
        pytest.param("/attempts/1%00", {}, 422, id="nul-attempt"),
        pytest.param("/blobs/..%2F..%2Fservice.db", {}, 404, id="path-blob"),
        pytest.param("/blobs/" + "A" * 64, {}, 422, id="upper-hex-blob"),
        pytest.param("/blobs/" + "0" * 64, {}, 404, id="unknown-blob"),
        pytest.param("/releases/pypi/..%2F..%2Fetc/1", {}, 404, id="path-release"),
        pytest.param("/releases/pypi/demo/..", {}, 404, id="dotdot-version"),
        pytest.param("/releases/pypi/nothing/1", {}, 404, id="unknown-release"),
        pytest.param("/attestations", {"sha256": "../" + "0" * 61}, 422, id="path-digest"),
        pytest.param("/attestations", {}, 422, id="no-digest"),
        pytest.param("/verify", {"purl": "pkg:pypi/..%2F..%2Fetc@1"}, 400, id="purl-encoded-slash"),
        pytest.param("/verify", {"purl": "pkg:pypi/../etc@1"}, 400, id="purl-dotdot"),
        pytest.param("/verify", {"purl": "pkg:pypi/demo@1.0%00"}, 400, id="purl-nul"),
        pytest.param("/verify", {"purl": "pkg:pypi/demo@1.0\x00"}, 400, id="purl-raw-nul"),
        pytest.param("/verify", {"purl": "pkg:pypi/demo@%ZZ"}, 400, id="purl-bad-escape"),
        pytest.param("/verify", {"purl": "pkg:npm/demo@1.0"}, 400, id="purl-other-type"),
        pytest.param("/verify", {"purl": "pkg:pypi/demo@1.0?repository_url=evil"}, 400, id="purl-qualifier"),
        pytest.param("/verify", {"purl": "pkg:pypi/demo"}, 400, id="purl-no-version"),
        pytest.param("/verify", {"purl": "pkg:pypi/" + "a" * 600 + "@1"}, 422, id="purl-long"),
        pytest.param("/verify", {"purl": "https://evil/x@1"}, 400, id="not-a-purl"),
    ],
)
def test_hostile_parameters_get_4xx_never_500(world: World, path: str, params: dict[str, Any], code: int) -> None:
    r = world.client.get("/api/v1" + path, params=params)
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("application/json") and isinstance(r.json()["detail"], str | list)


def test_sql_in_a_name_is_just_a_name(world: World) -> None:
    r = world.client.get("/api/v1/targets", params={"name": "demo' OR '1'='1"})
    assert r.status_code == 200 and r.json()["total"] == 0 and r.json()["items"] == []
