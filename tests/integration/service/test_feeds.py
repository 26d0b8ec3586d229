"""k of n through the installed `rebuild`: independent services, each with its own store, data directory and key,
verify a real release with real workers and publish their trees; a consumer combines them.

- ``a`` and ``b`` verify pypi:tomli==2.0.1 from PyPI (it reproduces): both say PASSED.
- ``c`` is honestly told, by provenance it was given, that the very bytes of tomli's wheel are built from a
  source that makes other bytes: its worker rebuilds, compares, and the service signs FAILED about the wheel's
  digest. (A rebuilder that disagrees, through the real worker, comparison and signing.)

Trees are read as directories, over HTTP (``python -m http.server`` in a subprocess on 127.0.0.1), and through
each service's API (``rebuild serve``).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rebuild.service.blobs import BlobStore
from tests.integration.service.conftest import wait_for
from tests.integration.service.fastjobs import fast_release
from tests.integration.service.servers import free_port
from tests.integration.test_pipeline import REBUILD, rebuild

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.usefixtures("no_leftover_service_containers")]

TOMLI = "pypi:tomli==2.0.1"
TOMLI_WHEEL = "tomli-2.0.1-py3-none-any.whl"
TOMLI_SHA256 = "939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc"


@dataclass(frozen=True)
class Rebuilder:
    data: Path
    tree: Path

    @property
    def key(self) -> Path:
        return self.data / "keys" / "service.pub"


def service(data: Path, *args: str) -> Any:
    r = rebuild(*args, "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def run_service(root: Path, *targets: str) -> Rebuilder:
    """``rebuild init``, queue, one burst worker, publish: a rebuilder of its own (store, blobs, key)."""
    data, tree = root / "data", root / "published"
    service(data, "init")
    service(data, "queue", "add", *targets)
    service(data, "worker", "--burst", "--no-diffoscope", "--name", root.name)
    service(data, "publish", "--out", str(tree))
    return Rebuilder(data, tree)


@pytest.fixture(scope="module")
def rebuilders(tmp_path_factory: pytest.TempPathFactory, builder_image: str) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("feeds")
    a = run_service(root / "a", TOMLI)
    b = run_service(root / "b", TOMLI)
    wheel = root / TOMLI_WHEEL
    wheel.write_bytes(BlobStore(a.data / "blobs").path(TOMLI_SHA256).read_bytes())  # the rebuilt file = published
    disagreeing = fast_release(root / "c-release", 9, builder_image, published=wheel.read_bytes())
    c = run_service(root / "c", str(disagreeing))
    return {"a": a, "b": b, "c": c, "wheel": wheel}


def verify(feeds: list[str | Path], keys: list[Path], wheel: Path, threshold: int, *extra: str) -> Any:
    args = ["attestation", "verify", "--artifact", str(wheel), "--threshold", str(threshold), *extra]
    for feed in feeds:
        args += ["--from-feed", str(feed)]
    for key in keys:
        args += ["--key", str(key)]
    return rebuild(*args)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def process(args: list[str], port: int) -> Iterator[str]:
    """A server in a subprocess until the block ends; waits for its port, never for a fixed time."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, f"{args[0]} on port {port}", timeout=60)
        assert proc.poll() is None, proc.communicate()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def http_tree(directory: Path) -> Any:
    port = free_port()
    return process([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(directory),
                    str(port)], port)  # fmt: skip


def api(data: Path) -> Any:
    port = free_port()
    return process([REBUILD, "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(data)], port)


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_two_rebuilders_agree_from_directories_and_over_http(rebuilders: dict[str, Any]) -> None:
    a, b, wheel = rebuilders["a"], rebuilders["b"], rebuilders["wheel"]
    assert a.key.read_bytes() != b.key.read_bytes()  # two services, two keys
    r = verify([a.tree, b.tree], [a.key, b.key], wheel, 2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 distinct trusted signer(s) said PASSED; threshold 2 met" in r.stdout
    with http_tree(a.tree) as url_a, http_tree(b.tree) as url_b:
        r = verify([url_a, url_b], [a.key, b.key], wheel, 2, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        verdict = json.loads(r.stdout)
        assert [(f["kind"], f["status"], [s["result"] for s in f["said"]]) for f in verdict["feeds"]] == [
            ("tree", "read", ["PASSED"]), ("tree", "read", ["PASSED"])]  # fmt: skip
        assert len(verdict["signers"]) == 2
        # the same rebuilder twice (directory and mirror over HTTP) is one signer
        r = verify([a.tree, url_a], [a.key, b.key], wheel, 2)
        assert r.returncode == 1 and "1 distinct trusted signer(s) said PASSED, the policy requires 2" in r.stderr


def test_a_rebuilder_saying_failed_fails_and_is_named(rebuilders: dict[str, Any]) -> None:
    a, b, c, wheel = rebuilders["a"], rebuilders["b"], rebuilders["c"], rebuilders["wheel"]
    changes = [json.loads(line) for line in (c.tree / "changes.jsonl").read_text().splitlines()]
    assert [(e["verdict"], e["subject_sha256"]) for e in changes] == [("FAILED", TOMLI_SHA256)]
    r = verify([a.tree, c.tree], [a.key, c.key], wheel, 2)
    assert r.returncode == 1
    assert f"rebuilders disagree: {c.tree}: key " in one_line(r.stderr) and "said FAILED" in r.stderr
    # the threshold is met by a and b, and c still says FAILED: a conflict fails the verdict
    with http_tree(c.tree) as url_c:
        r = verify([a.tree, b.tree, url_c], [a.key, b.key, c.key], wheel, 2, "--json")
    verdict = json.loads(r.stdout)
    assert r.returncode == 1 and len(verdict["signers"]) == 2
    assert [(x["feed"], x["result"]) for x in verdict["conflicts"]] == [(url_c, "FAILED")]
    # c's key not trusted: its tree is reported as untrusted, and a and b pass
    r = verify([a.tree, b.tree, c.tree], [a.key, b.key], wheel, 2)
    assert r.returncode == 0 and "untrusted" in r.stdout


def test_a_missing_tree_fails_and_is_named(rebuilders: dict[str, Any], tmp_path: Path) -> None:
    a, b, wheel = rebuilders["a"], rebuilders["b"], rebuilders["wheel"]
    missing = tmp_path / "never-published"
    r = verify([a.tree, missing], [a.key, b.key], wheel, 2)
    assert r.returncode == 1 and f"{missing}: unreachable" in one_line(r.stderr)
    with http_tree(b.tree) as url_b:
        pass  # the server is gone: nothing answers there now
    r = verify([a.tree, url_b], [a.key, b.key], wheel, 2)
    assert r.returncode == 1 and f"{url_b}: unreachable" in one_line(r.stderr), r.stderr


def test_each_rebuilders_api_as_a_feed(rebuilders: dict[str, Any]) -> None:
    a, b, c, wheel = rebuilders["a"], rebuilders["b"], rebuilders["c"], rebuilders["wheel"]
    with api(a.data) as url_a, api(b.data) as url_b, api(c.data) as url_c:
        r = verify([f"{url_a}/api/v1", f"{url_b}/api/v1"], [a.key, b.key], wheel, 2, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert [f["kind"] for f in json.loads(r.stdout)["feeds"]] == ["api", "api"]
        r = verify([f"{url_a}/api/v1", f"{url_b}/api/v1", f"{url_c}/api/v1"], [a.key, b.key, c.key], wheel, 2)
        assert r.returncode == 1 and f"{url_c}/api/v1: key " in one_line(r.stderr) and "said FAILED" in r.stderr


def test_a_replayed_older_tree_is_refused_after_a_newer_one_was_read(rebuilders: dict[str, Any],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    """Each ``publish`` signs a higher snapshot version with an expiry; a reader who read the newer tree refuses
    the older one a mirror replays (the state file), and says which versions."""
    a, b, wheel = rebuilders["a"], rebuilders["b"], rebuilders["wheel"]
    old = tmp_path / "mirror-of-a"
    shutil.copytree(a.tree, old)
    before = json.loads(base64.b64decode(json.loads((a.tree / "snapshot.json").read_text())["payload"]))
    published = service(a.data, "publish", "--out", str(a.tree), "--valid-for", "2d")
    after = json.loads(base64.b64decode(json.loads((a.tree / "snapshot.json").read_text())["payload"]))
    assert published["snapshot"] == str(a.tree / "snapshot.json")
    assert after["version"] == before["version"] + 1 and after["expires"] > after["published"]
    state = str(tmp_path / "state.json")
    r = verify([a.tree, b.tree], [a.key, b.key], wheel, 2, "--feed-state", state, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["feeds"][0]["snapshotVersion"] == after["version"]
    r = verify([old, b.tree], [a.key, b.key], wheel, 2, "--feed-state", state)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (f"snapshot.json is version {before['version']}, older than version {after['version']} already seen"
            in one_line(r.stderr)), r.stderr  # fmt: skip
