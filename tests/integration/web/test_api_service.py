"""/api/v1 on a real HTTP server (uvicorn on a free port of 127.0.0.1) over a store that real workers filled.

The store: the end-to-end scenario of the rebuilder service (tomli 2.0.1 reproduces, six 1.16.0 does not, a
project that does not exist is bad input), run by `rebuild worker --burst` on the real Docker engine and
signed by `rebuild publish`. Every read endpoint is compared with what `rebuild history / status / queue ls
--json` say the store holds, never with values written here. The writes go through `rebuild token create`
and are seen in `rebuild queue ls --json`. The change feed's triggers are checked on SQLite and on a real
PostgreSQL, with writers committing concurrently while a reader follows the cursor.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rebuild.service.blobs import BlobStore
from rebuild.service.store import Store, make_engine, migrate
from tests.integration.service.conftest import fresh_postgres, postgres_url, store_url  # noqa: F401  (fixtures)
from tests.integration.service.servers import free_port, wait_for
from tests.integration.test_pipeline import rebuild

TARGETS = ["pypi:tomli==2.0.1", "pypi:six==1.16.0", "pypi:no-such-project-rebuild-verifier-xyz==1.0"]


@dataclass(frozen=True)
class Api:
    url: str
    data: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, None, headers)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                return int(r.status), {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return int(e.code), {k.lower(): v for k, v in e.headers.items()}, e.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)


def cli(data: Path, *args: str) -> Any:
    r = rebuild(*args, "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, builder_image: str) -> Path:
    """The service's end-to-end run: init, queue the three targets, one burst worker, publish."""
    data = tmp_path_factory.mktemp("api-run") / "data"
    cli(data, "init")
    cli(data, "queue", "add", *TARGETS)
    cli(data, "worker", "--burst", "--no-diffoscope", "--name", "w1")
    status = cli(data, "status")
    assert status["verdicts"] == {"reproduced": 1, "not reproduced": 1, "bad input": 1}, status
    cli(data, "publish", "--out", str(data.parent / "published"))
    return data


@pytest.fixture(scope="module")
def api(scenario: Path) -> Iterator[Api]:
    """The application on uvicorn, a real socket on 127.0.0.1, until the module's tests are done."""
    import uvicorn

    from rebuild.web.app import create_app

    store = Store.open(f"sqlite:///{scenario / 'service.db'}")
    app = create_app(store, BlobStore(scenario / "blobs"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to listen")
        yield Api(f"http://127.0.0.1:{port}", scenario)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        store.close()


@pytest.mark.docker
@pytest.mark.network
def test_every_read_endpoint_says_what_the_store_holds(api: Api) -> None:
    jobs = {j["target"]: j for j in cli(api.data, "queue", "ls")["jobs"]}
    targets = api.json("/api/v1/targets?limit=500")
    assert targets["total"] == len(jobs) == 3
    assert {t["target"]: t["verdict"] for t in targets["items"]} == {k: j["verdict"] for k, j in jobs.items()}

    status = cli(api.data, "status")
    stats = api.json("/api/v1/stats")
    assert stats["attestations"] == status["attestations"] > 0
    (pypi,) = stats["ecosystems"]
    assert pypi["counts"]["reproduced"] == status["verdicts"]["reproduced"]
    assert pypi["counts"]["not reproduced"] == status["verdicts"]["not reproduced"]
    assert pypi["counts"]["could not rebuild"] == status["verdicts"]["bad input"]

    feed = api.json("/api/v1/changes")
    verdicts = sorted((c["target"], c["verdict"]) for c in feed["changes"] if c["kind"] == "verdict")
    assert verdicts == sorted((k, j["verdict"]) for k, j in jobs.items())
    signed_in_feed = [c["attestation"]["bundle"] for c in feed["changes"] if c["kind"] == "attestation"]
    assert len(signed_in_feed) == status["attestations"]
    assert api.json(f"/api/v1/changes?since={feed['next']}")["changes"] == []

    for target in TARGETS:
        history = cli(api.data, "history", target)
        release = api.json(f"/api/v1/releases/{history['ecosystem']}/{history['name']}/{history['version']}")
        assert [j["key"] for j in release["jobs"]] == [j["key"] for j in history["jobs"]]
        for got, want in zip(release["jobs"], history["jobs"], strict=True):
            assert (got["status"], got["verdict"], got["decided_by"]) == (want["status"], want["verdict"],
                                                                          want["decided_by"])  # fmt: skip
            assert [a["bundle"] for a in got["attestations"]] == [a["bundle"] for a in want["attestations"]]
            for attempt, wanted in zip(got["attempts"], want["attempts"], strict=True):
                one = api.json(f"/api/v1/attempts/{wanted['id']}")
                assert one == attempt
                assert (one["outcome"], one["classification"], one["artifacts"], one["log"], one["compare_report"]) == (
                    wanted["outcome"], wanted["classification"], wanted["artifacts"], wanted["log"],
                    wanted["compare_report"],
                )  # fmt: skip
                for kind, link in one["links"].items():
                    code, headers, body = api.get(link)
                    assert code == 200 and hashlib.sha256(body).hexdigest() == one[kind]
                    assert headers["x-content-type-options"] == "nosniff"
                    assert headers["content-type"] in ("text/plain; charset=utf-8", "application/octet-stream")
        said = api.json(f"/api/v1/verify?purl=pkg:pypi/{history['name']}@{history['version']}")
        newest = history["jobs"][-1]
        assert (said["verdict"], said["job_key"]) == (newest["verdict"], newest["key"])
        assert [a["bundle"] for a in said["attestations"]] == [a["bundle"] for a in newest["attestations"]]


@pytest.mark.docker
@pytest.mark.network
def test_attestations_by_digest_are_the_published_bundles(api: Api) -> None:
    """What `--from-feed URL` reads: the lines of every bundle about a digest, byte for byte as published."""
    checked = 0
    for target in TARGETS[:2]:
        (job,) = cli(api.data, "history", target)["jobs"]
        for signed in job["attestations"]:
            digest = job["attempts"][-1]["artifacts"][signed["artifact"]]
            code, headers, body = api.get(f"/api/v1/attestations?sha256={digest}")
            assert code == 200 and headers["content-type"] == "application/jsonl"
            published = (api.data.parent / "published" / signed["published"]).read_bytes()
            assert body == published
            checked += 1
    assert checked == 2
    code, _, body = api.get("/api/v1/attestations?sha256=" + "0" * 64)
    assert code == 404 and "detail" in json.loads(body)


@pytest.mark.docker
@pytest.mark.network
def test_writes_need_a_queue_token(api: Api) -> None:
    body = {"target": "pypi:no-such-project-rebuild-verifier-api==2.0"}
    code, headers, _ = api.request("POST", "/api/v1/queue", body)
    assert code == 401 and headers["www-authenticate"].startswith("Bearer")
    assert body["target"] not in {j["target"] for j in cli(api.data, "queue", "ls")["jobs"]}

    made = cli(api.data, "token", "create", "--scope", "queue", "--name", "api-test")
    auth = {"Authorization": f"Bearer {made['token']}"}
    code, _, answer = api.request("POST", "/api/v1/queue", body, auth)
    assert code == 202, answer
    queued = {j["target"]: j for j in cli(api.data, "queue", "ls")["jobs"]}
    assert queued[body["target"]]["status"] == "queued" and queued[body["target"]]["key"] == json.loads(answer)["key"]

    six = next(j for j in queued.values() if j["target"] == "pypi:six==1.16.0")
    code, _, answer = api.request("POST", "/api/v1/retry", {"jobs": [six["key"]]}, auth)
    assert code == 200 and json.loads(answer)["retried"] == [six["key"]]
    assert {j["key"]: j["status"] for j in cli(api.data, "queue", "ls")["jobs"]}[six["key"]] == "queued"

    cli(api.data, "token", "revoke", "api-test")
    code, headers, _ = api.request("POST", "/api/v1/queue", {"target": "pypi:x==1"}, auth)
    assert code == 401 and "invalid_token" in headers["www-authenticate"]


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/v1/blobs/..%2F..%2Fservice.db", "/api/v1/blobs/../../service.db", "/api/v1/releases/pypi/../../etc/1",
        "/api/v1/releases/pypi/six/1.16.0%00", "/api/v1/verify?purl=pkg:pypi/six@1.16.0%2500",
        "/api/v1/verify?purl=pkg:pypi/..%252F..%252Fservice.db@1", "/api/v1/targets?limit=99999999999999999999",
    ],
)  # fmt: skip
def test_raw_hostile_paths_on_the_wire(api: Api, raw_path: str) -> None:
    """Sent as is (no client normalizing ``..``): a 4xx JSON answer, never a file and never a 500."""
    host, port = api.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.putrequest("GET", raw_path, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert 400 <= response.status < 500 and b"SQLite format" not in body and "detail" in json.loads(body)


def test_the_feed_misses_nothing_while_writers_commit_concurrently(store_url: str) -> None:  # noqa: F811
    """Triggers fill ``changes`` in the writers' transactions; a reader following the cursor while four
    writers finish jobs at once ends with every verdict exactly once, ids increasing (SQLite and PostgreSQL)."""
    from fastapi.testclient import TestClient

    from rebuild.service import jobs
    from rebuild.web.app import create_app

    migrate(make_engine(store_url))
    store = Store(store_url)
    keys = [hashlib.sha256(f"t{n}".encode()).hexdigest() for n in range(40)]
    for n, key in enumerate(keys):
        store.add_job(f"pypi:feed{n}==1", ("pypi", f"feed{n}", "1"), key, {"n": n}, "")
    seen: list[int] = []
    done = threading.Event()

    def writer() -> None:
        writer_store = Store(store_url)
        while (claim := writer_store.claim(f"w{threading.get_ident()}", "", 60.0)) is not None:
            writer_store.finish(claim, jobs.REPRODUCED, {})
        writer_store.close()

    with TestClient(create_app(store, BlobStore(Path("/nonexistent")))) as client:

        def follow() -> None:
            cursor = 0
            while True:
                final = done.is_set()
                page = client.get(f"/api/v1/changes?since={cursor}&limit=7").json()
                seen.extend(c["id"] for c in page["changes"])
                cursor = page["next"]
                if final and not page["more"]:
                    return

        reader = threading.Thread(target=follow)
        reader.start()
        writers = [threading.Thread(target=writer) for _ in range(4)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(timeout=300)
        done.set()
        reader.join(timeout=300)
        everything = client.get("/api/v1/changes?limit=500").json()["changes"]
    assert sorted(c["job_key"] for c in everything) == sorted(keys)
    assert seen == [c["id"] for c in everything] and seen == sorted(set(seen))
    store.close()
